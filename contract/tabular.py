"""The tabular input format: a folder of xml1/xml2/xml3 (and facilities, labels) tables as Parquet
or CSV with XML 130 column names, read and cut into batches of whole claims for ingest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from contract.limits import Limits
from contract.schema import CLAIMS, DRUG_LINES, SERVICE_LINES, Table
from contract.validate import GROUP, RECORD, SOURCE, ContractError, as_text


def is_tabular(src: Path) -> bool:
    return src.is_dir() and table_source(src, "xml1") is not None


def table_source(folder: Path, stem: str) -> Path | None:
    for cand in (folder / f"{stem}.parquet", folder / f"{stem}.csv", folder / stem):
        if cand.exists():
            return cand
    return None


def read_tabular_file(path: Path, table: Table) -> pd.DataFrame:
    """One table of the tabular input format, checked for its required columns."""
    if path.suffix == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    else:
        df = pd.read_parquet(path)
    df.columns = [str(c).strip().upper() for c in df.columns]
    present = set(df.columns)
    missing = [
        f.xml for f in table.required if f.xml not in present and not present & set(f.aliases)
    ]
    if missing:
        raise ContractError(
            f"{path.name}: missing required column(s) {', '.join(missing)} "
            f"for table {table.name} ({table.xml_table or 'tabular input'})"
        )
    return df


def tabular_batches(
    src: Path, limits: Limits
) -> Iterator[tuple[dict[str, pd.DataFrame], int, int]]:
    frames: dict[str, pd.DataFrame] = {}
    for stem, table in (("xml1", CLAIMS), ("xml2", DRUG_LINES), ("xml3", SERVICE_LINES)):
        p = table_source(src, stem)
        if p is None:
            if stem == "xml1":
                raise ContractError(f"{src}: no xml1.parquet or xml1.csv (the claim summaries)")
            continue
        df = read_tabular_file(p, table)
        df[SOURCE] = p.name
        first = 2 if p.suffix == ".csv" else 0  # CSV: the line number in the file
        df[RECORD] = np.arange(first, len(df) + first)
        key = as_text(df["MA_LK"]) if "MA_LK" in df else pd.Series([pd.NA] * len(df), dtype="str")
        df[GROUP] = key.fillna("(missing MA_LK)").to_numpy()
        frames[table.name] = df
    n_claims = len(frames["claims"])
    k = max(1, -(-n_claims // limits.chunk_claims))
    if k == 1:
        yield frames, n_claims, n_claims
        return
    # Whole claims per batch: rows go to the bucket of their MA_LK's hash.
    # Each table is put in bucket order once (stable: file order within a bucket) and cut into
    # contiguous slices, so a batch costs its own size. A mask per bucket over the whole table
    # cost the table's size per batch, and so did a take per batch from the file's chunked
    # columns (Arrow concatenates the chunks for each take): both quadratic.
    cuts: dict[str, tuple[pd.DataFrame, np.ndarray]] = {}
    for name in list(frames):
        df = frames.pop(name)
        bucket = pd.util.hash_array(df[GROUP].to_numpy(dtype=object)) % k
        order = np.argsort(bucket, kind="stable")
        cuts[name] = (df.take(order), np.searchsorted(bucket[order], np.arange(k + 1)))
        del df
    for b in range(k):
        part = {
            name: ordered.iloc[bounds[b] : bounds[b + 1]]
            for name, (ordered, bounds) in cuts.items()
        }
        yield part, len(part["claims"]), n_claims
