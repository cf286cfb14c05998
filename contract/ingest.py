"""Ingest: XML 130 envelopes or tabular folders -> the canonical dataset plus a rejection report.

Envelopes are streamed (lxml iterparse, one dossier in memory at a time) through a hardened
parser: no DTDs, no entities, no network, limits on size, depth and field length. A dossier is
accepted or rejected whole; every rejected record is kept in ``rejections.parquet`` with the field
and the error.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import itertools
import json
import multiprocessing
import re
import shutil
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from lxml import etree

from contract.schema import (
    CLAIMS,
    DRUG_LINES,
    FACILITIES,
    LABELS,
    LINKAGE_COLUMNS,
    REJECTIONS_COLUMNS,
    SERVICE_LINES,
    XML_LAYOUT,
    XML_TABLES,
    Table,
)
from contract.validate import (
    GROUP,
    INTERNAL,
    RECORD,
    SOURCE,
    Checked,
    ContractError,
    as_text,
    check_table,
    linkage_keys,
    rejection_rows,
)

LINE_TABLES = (DRUG_LINES, SERVICE_LINES)
# One raw record: its field names in document order and their texts.
Rec = tuple[tuple[str, ...], tuple[str | None, ...]]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 4 * 1024**3
    max_depth: int = 32
    max_field_chars: int = 65_536
    max_table_bytes: int = 64 * 1024**2
    chunk_claims: int = 2_000
    workers: int = 2


class HostileInput(ValueError):
    """A file refused before or while parsing (DTD, entities, size, depth, not XML)."""


@dataclass
class IngestReport:
    out: Path
    files_read: int = 0
    read: Counter = field(default_factory=Counter)  # table -> records read
    written: Counter = field(default_factory=Counter)  # table -> records written
    rejected: Counter = field(default_factory=Counter)  # table -> records rejected
    skipped_tables: Counter = field(default_factory=Counter)  # XML4..XML15 seen and skipped
    file_errors: list[tuple[str, str]] = field(default_factory=list)  # (file, message)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def summary(self) -> str:
        skipped = sum(self.skipped_tables.values())
        return (
            f"read {self.read['claims']:,} claims, {self.read['drug_lines']:,} drug lines, "
            f"{self.read['service_lines']:,} service lines from {self.files_read} file(s); "
            f"wrote {self.written['claims']:,} claims, {self.written['drug_lines']:,} drug lines, "
            f"{self.written['service_lines']:,} service lines; rejected {self.rejected_total:,} "
            f"record(s) and {len(self.file_errors)} file(s); skipped {skipped:,} other table(s) "
            f"-> {self.out}"
        )


# ---------------------------------------------------------------------------------------------
# Hardened XML reading


_PROLOG_ITEM = re.compile(rb"\s*(<\?.*?\?>|<!--.*?-->)", re.S)


def check_prolog(data: bytes, what: str) -> None:
    """Refuse anything before the root element but an XML declaration, PIs and comments.

    DTDs are how billion-laughs and external-entity (XXE) attacks get in, and no XML 130 file
    needs one, so a DOCTYPE anywhere in the prolog refuses the document outright.
    """
    pos = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    while True:
        m = _PROLOG_ITEM.match(data, pos)
        if not m:
            break
        pos = m.end()
    rest = data[pos:].lstrip()
    if rest.startswith(b"<!DOCTYPE") or rest.startswith(b"<!ENTITY"):
        raise HostileInput(f"{what} declares a DTD (<!DOCTYPE>); DTDs and entities are not allowed")
    if len(data) >= 65_536 and (not rest or rest[:2] in (b"<!", b"<?")):
        raise HostileInput(f"{what} has no root element in its first 64 KiB")
    if not rest:
        raise HostileInput(f"{what} is empty or has no root element")
    if not rest.startswith(b"<") or rest[1:2] in (b"!", b"?", b""):
        raise HostileInput(f"{what} is not XML (it does not start with an element)")


@functools.cache
def _parser() -> etree.XMLParser:
    # One parser per process, reused (creating one costs more than parsing a small table).
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        recover=False,
    )


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1] if "}" in tag else tag


@dataclass
class Dossier:
    """One HOSO: the raw records of its tables, keyed by XML table name."""

    number: int
    records: dict[str, list[Rec]]
    errors: list[tuple[str, str, str, str]]  # (table, field, value, error) that reject it whole
    skipped: list[str]


def _decode_table(node: etree._Element, limits: Limits) -> bytes | etree._Element:
    children = [c for c in node if isinstance(c.tag, str)]
    if children:  # plain XML placed inside NOIDUNGFILE
        return children[0]
    text = (node.text or "").strip()
    if len(text) > limits.max_table_bytes * 4 // 3 + 4:
        raise ValueError(f"NOIDUNGFILE larger than {limits.max_table_bytes:,} bytes")
    if text.startswith("<"):  # plain XML as text or CDATA
        return text.encode("utf-8")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"NOIDUNGFILE is neither base64 nor XML ({e})") from None


_NESTED_XML1 = etree.XPath("count(*/*)")
_NESTED_LINES = etree.XPath("count(*/*/*/*)")


def _parse_table(loai: str, payload: bytes | etree._Element, limits: Limits) -> list[Rec]:
    if isinstance(payload, bytes):
        check_prolog(payload[:65_536], f"the {loai} document")
        root = etree.fromstring(payload, _parser())
    else:
        root = payload
    root_tag, list_tag, rec_tag = XML_LAYOUT[loai]
    if _local(root.tag) != root_tag:
        raise ValueError(f"root element is {_local(root.tag)}, expected {root_tag}")
    namespaced = "}" in root.tag
    if rec_tag is None:
        records = [root]
        nested = _NESTED_XML1(root) if not namespaced else 0
    elif not namespaced:
        records = root.findall(f"{list_tag}/{rec_tag}")
        nested = _NESTED_LINES(root)
    else:
        records = [e for e in root.iter() if _local(e.tag) == rec_tag]
        nested = 0
    if nested:
        raise ValueError("a field holds nested elements")
    out: list[Rec] = []
    for rec in records:
        if namespaced:  # rare: strip namespaces field by field
            pairs = [(_local(c.tag), c.text) for c in rec if isinstance(c.tag, str)]
        else:  # comments and PIs were removed by the parser: children are elements
            pairs = [(c.tag, c.text) for c in rec]
        tags, texts = zip(*pairs, strict=True) if pairs else ((), ())
        if len(set(tags)) != len(tags):
            dup = next(t for t in tags if tags.count(t) > 1)
            raise ValueError(f"field {dup} appears twice in one record")
        out.append((tags, texts))
    return out


def read_envelope(source: Path | bytes, limits: Limits) -> Iterator[Dossier]:
    """Yield the dossiers of one GIAMDINHHS file (a path, or the bytes of one); raise HostileInput
    / etree.XMLSyntaxError where the file stops being acceptable (dossiers before that point were
    yielded)."""
    size = len(source) if isinstance(source, bytes) else source.stat().st_size
    if size > limits.max_file_bytes:
        raise HostileInput(f"file is {size:,} bytes, over the limit of {limits.max_file_bytes:,}")
    if isinstance(source, bytes):
        check_prolog(source[:65_536], "the file")
        stream = io.BytesIO(source)
    else:
        with source.open("rb") as fh:
            check_prolog(fh.read(65_536), "the file")
        stream = str(source)
    depth = 0
    number = 0
    context = etree.iterparse(
        stream,
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    for event, elem in context:
        if event == "start":
            depth += 1
            if depth > limits.max_depth:
                raise HostileInput(f"elements nested deeper than {limits.max_depth}")
            if depth == 1 and _local(elem.tag) != "GIAMDINHHS":
                raise HostileInput(f"root element is {_local(elem.tag)}, expected GIAMDINHHS")
            continue
        depth -= 1
        if _local(elem.tag) != "HOSO":
            continue
        number += 1
        yield _read_dossier(elem, number, limits)
        # Free what has been read: the dossier and the siblings before it.
        elem.clear()
        parent = elem.getparent()
        if parent is not None:
            while elem.getprevious() is not None:
                del parent[0]
    del context


def _read_dossier(elem: etree._Element, number: int, limits: Limits) -> Dossier:
    records: dict[str, list] = {}
    errors: list[tuple[str, str, str, str]] = []
    skipped: list[str] = []
    for fh in elem:
        if _local(fh.tag) != "FILEHOSO":
            continue
        loai_el = content = None
        for c in fh:
            name = _local(c.tag)
            if name == "LOAIHOSO":
                loai_el = c
            elif name == "NOIDUNGFILE":
                content = c
        loai = (loai_el.text or "").strip().upper() if loai_el is not None else ""
        if loai not in XML_LAYOUT:
            skipped.append(loai or "(none)")
            continue
        if content is None:
            errors.append((loai, "NOIDUNGFILE", "", "missing NOIDUNGFILE"))
            continue
        try:
            payload = _decode_table(content, limits)
            records.setdefault(loai, []).extend(_parse_table(loai, payload, limits))
        except (ValueError, etree.XMLSyntaxError) as e:
            value = (content.text or "")[:200]
            errors.append((loai, "NOIDUNGFILE", value, f"{loai}: {e}"))
    if "XML1" not in records and not errors:
        errors.append(("XML1", "LOAIHOSO", "", "dossier has no XML1 claim summary"))
    if len(records.get("XML1", [])) > 1:
        errors.append(("XML1", "TONG_HOP", "", "dossier has more than one XML1 claim summary"))
    return Dossier(number, records, errors, skipped)


# ---------------------------------------------------------------------------------------------
# Batches: validate, cross-check, cascade, write


def arrow_schema(table: Table, extra: tuple[str, ...] = ()) -> pa.Schema:
    types = {
        "str": pa.string(),
        "Int64": pa.int64(),
        "float64": pa.float64(),
        "datetime64[us]": pa.timestamp("us"),
    }
    fields = [pa.field(f.name, types[f.dtype]) for f in table.fields]
    fields += [pa.field(c, pa.string()) for c in extra]
    return pa.schema(fields)


REJECTIONS_SCHEMA = pa.schema([pa.field(c, pa.string()) for c in REJECTIONS_COLUMNS])


class _Writer:
    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema = path, schema
        self.writer = pq.ParquetWriter(path, schema, compression="zstd")
        self.rows = 0

    def write(self, df: pd.DataFrame) -> None:
        if len(df):
            t = pa.Table.from_pandas(
                df[self.schema.names], schema=self.schema, preserve_index=False
            )
            self.writer.write_table(t)
            self.rows += len(df)

    def close(self) -> None:
        self.writer.close()


@dataclass
class _Run:
    out: Path
    report: IngestReport
    linkage_key: str
    limits: Limits
    writers: dict[str, _Writer] = field(default_factory=dict)
    seen_claims: dict[str, None] = field(default_factory=dict)  # claim keys written so far

    def writer(self, name: str) -> _Writer:
        if name not in self.writers:
            if name == "rejections":
                schema = REJECTIONS_SCHEMA
            else:
                t = {
                    "claims": CLAIMS,
                    "drug_lines": DRUG_LINES,
                    "service_lines": SERVICE_LINES,
                    "facilities": FACILITIES,
                    "labels": LABELS,
                }[name]
                schema = arrow_schema(t, LINKAGE_COLUMNS if t is CLAIMS else ())
            self.writers[name] = _Writer(self.out / f"{name}.parquet", schema)
        return self.writers[name]

    def reject(self, rows: pd.DataFrame) -> None:
        if len(rows):
            self.writer("rejections").write(rows.astype("str"))

    def close(self) -> None:
        for name in ("claims", "drug_lines", "service_lines", "rejections"):
            self.writer(name)
        for w in self.writers.values():
            w.close()


@dataclass
class BatchResult:
    """A validated batch: good canonical rows (still carrying INTERNAL columns) and rejections."""

    good: dict[str, pd.DataFrame]
    checked: dict[str, Checked]
    rejections: list[pd.DataFrame]
    read: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    file_errors: list[tuple[str, str]] = field(default_factory=list)


def validate_batch(
    raw: dict[str, pd.DataFrame],
    limits: Limits,
    linkage_key: str,
    prior_errors: pd.DataFrame | None = None,
    from_xml: bool = False,
    max_time: pd.Timestamp | None = None,
) -> BatchResult:
    """Validate one batch of whole claims (claims + their lines); decide what is rejected.

    ``raw`` maps table name -> frame with XML 130 column names and the INTERNAL columns.
    ``prior_errors`` are dossier-level rejections (GROUP plus the rejection columns).
    ``max_time``: admission/discharge times later than this are field errors (the scoring API
    passes its clock plus the allowed skew); None: no bound.
    Pure: writes nothing, so workers can run it in parallel.
    """
    checked = {
        t.name: check_table(
            raw.get(t.name, pd.DataFrame()), t, limits.max_field_chars, from_xml, max_time
        )
        for t in (CLAIMS, *LINE_TABLES)
    }
    claims = checked["claims"]
    cf = claims.frame
    # A claim key must be unique: the first occurrence stands, later ones are rejected.
    ids = cf["claim_id"]
    dup = ids.duplicated(keep="first") & ids.notna()
    _add_error(claims, dup, "MA_LK", ids, DUPLICATE)
    # Lines must belong to the claim summary of their group (dossier, or MA_LK in tables).
    group_claim = cf.loc[~dup.to_numpy()].drop_duplicates(GROUP).set_index(GROUP)["claim_id"]
    for t in LINE_TABLES:
        c = checked[t.name]
        owner = c.frame[GROUP].map(group_claim)
        no_owner = owner.isna()
        mismatch = ~no_owner & c.frame["claim_id"].notna() & (c.frame["claim_id"] != owner)
        _add_error(
            c, no_owner, "MA_LK", c.frame["claim_id"], "no claim summary (XML1) with this MA_LK"
        )
        _add_error(
            c,
            mismatch,
            "MA_LK",
            c.frame["claim_id"],
            "MA_LK differs from the claim summary of the same dossier",
        )
    # A claim is accepted or rejected whole.
    bad_groups = set()
    for c in checked.values():
        bad_groups.update(c.frame.loc[c.bad.to_numpy(), GROUP].tolist())
    result = BatchResult({}, checked, [])
    if prior_errors is not None and len(prior_errors):
        bad_groups.update(prior_errors[GROUP].tolist())
        result.rejections.append(prior_errors[list(REJECTIONS_COLUMNS)])
    for name, c in checked.items():
        reject = c.frame[GROUP].isin(bad_groups)
        result.read[name] += len(c.frame)
        result.rejected[name] += int(reject.sum())
        result.rejections.append(rejection_rows(c, reject, WITH_CLAIM))
        good = c.frame.loc[~reject.to_numpy()]
        if name == "claims":
            good = pd.concat([good, linkage_keys(good, linkage_key)], axis=1)
        result.good[name] = good
    return result


DUPLICATE = "duplicate claim key (MA_LK): the first claim with this key was kept"
WITH_CLAIM = "rejected with its claim: another record of it has errors"


def commit(result: BatchResult, run: _Run) -> None:
    """Write a validated batch; claims already written under the same key are rejected here."""
    rep = run.report
    rep.read.update(result.read)
    rep.rejected.update(result.rejected)
    rep.skipped_tables.update(result.skipped)
    rep.file_errors.extend(result.file_errors)
    for rows in result.rejections:
        run.reject(rows)
    claims = result.good["claims"]
    dup_groups = set(claims.loc[claims["claim_id"].isin(run.seen_claims), GROUP])
    for name, good in result.good.items():
        if dup_groups:
            drop = good[GROUP].isin(dup_groups)
            if drop.any():
                table = {"claims": CLAIMS, "drug_lines": DRUG_LINES, "service_lines": SERVICE_LINES}
                c = Checked(
                    table[name],
                    good.reset_index(drop=True),
                    drop.reset_index(drop=True),
                    pd.DataFrame({"row": [], "field": [], "value": [], "error": []}),
                )
                if name == "claims":
                    _add_error(c, c.bad, "MA_LK", c.frame["claim_id"], DUPLICATE)
                run.reject(rejection_rows(c, c.bad, WITH_CLAIM))
                rep.rejected[name] += int(drop.sum())
                good = good.loc[~drop.to_numpy()]
        if name == "claims":
            run.seen_claims.update(dict.fromkeys(good["claim_id"]))
        run.writer(name).write(good)
        rep.written[name] += len(good)


def _add_error(c: Checked, mask: pd.Series, xml_field: str, values: pd.Series, msg: str) -> None:
    mask = mask.fillna(False).astype(bool).to_numpy()
    if not mask.any():
        return
    idx = np.flatnonzero(mask)
    new = pd.DataFrame(
        {
            "row": idx,
            "field": xml_field,
            "value": values.iloc[idx].astype("str").to_numpy(),
            "error": msg,
        }
    )
    c.errors = pd.concat([c.errors, new], ignore_index=True)
    c.bad = c.bad | pd.Series(mask)


# ---------------------------------------------------------------------------------------------
# Sources


def is_tabular(src: Path) -> bool:
    return src.is_dir() and _table_source(src, "xml1") is not None


def _table_source(folder: Path, stem: str) -> Path | None:
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


def _tabular_batches(
    src: Path, limits: Limits
) -> Iterator[tuple[dict[str, pd.DataFrame], int, int]]:
    frames: dict[str, pd.DataFrame] = {}
    for stem, table in (("xml1", CLAIMS), ("xml2", DRUG_LINES), ("xml3", SERVICE_LINES)):
        p = _table_source(src, stem)
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
    buckets = {
        name: pd.util.hash_array(df[GROUP].to_numpy(dtype=object)) % k
        for name, df in frames.items()
    }
    for b in range(k):
        part = {name: df.loc[buckets[name] == b] for name, df in frames.items()}
        yield part, len(part["claims"]), n_claims


def _envelope_files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    return sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() == ".xml")


def ingest(
    src: Path,
    out: Path,
    *,
    limits: Limits | None = None,
    linkage_key: str,
    progress: Progress | None = None,
) -> IngestReport:
    """Read SRC (an envelope file, a folder of envelopes, or a tabular folder) into OUT.

    ``linkage_key`` keys the hashes that link people and cards; the caller passes it (there is no
    default, so a deployment cannot silently fall back to a public development key)."""
    src, out = Path(src), Path(out)
    if not src.exists():
        raise FileNotFoundError(f"{src} does not exist")
    limits = limits or Limits()
    if not linkage_key:
        raise ValueError("ingest needs a linkage key")
    out.mkdir(parents=True, exist_ok=True)
    report = IngestReport(out)
    run = _Run(out, report, linkage_key, limits)
    try:
        if is_tabular(src):
            _ingest_tabular(src, run, limits, progress)
        else:
            _ingest_envelopes(src, run, limits, progress)
    finally:
        run.close()
    return report


# Ground truth of a simulated world (simulator/): not part of the contract, copied as is.
TRUTH_FILES = ("truth.parquet", "truth_lines.parquet")


def _ingest_tabular(src: Path, run: _Run, limits: Limits, progress: Progress | None) -> None:
    done = 0
    for batch, n, total in _tabular_batches(src, limits):
        commit(validate_batch(batch, limits, run.linkage_key), run)
        done += n
        if progress:
            progress(done, total)
    run.report.files_read = sum(_table_source(src, s) is not None for s in ("xml1", "xml2", "xml3"))
    for name in TRUTH_FILES:  # simulated ground truth travels with the data, unchanged
        if (src / name).exists():
            shutil.copyfile(src / name, run.out / name)
    for stem, table in (("facilities", FACILITIES), ("labels", LABELS)):
        p = _table_source(src, stem)
        if p is None:
            continue
        run.report.files_read += 1
        df = read_tabular_file(p, table)
        df[SOURCE] = p.name
        df[RECORD] = np.arange(len(df))
        df[GROUP] = np.arange(len(df))
        c = check_table(df, table, limits.max_field_chars)
        key = c.frame[table.fields[0].name]
        _add_error(
            c,
            key.duplicated(keep="first") & key.notna(),
            table.fields[0].xml,
            key,
            "duplicate key: the first row with this key was kept",
        )
        run.report.read[table.name] += len(df)
        run.report.rejected[table.name] += int(c.bad.sum())
        run.reject(rejection_rows(c, c.bad, ""))
        good = c.frame.loc[~c.bad.to_numpy()]
        run.writer(table.name).write(good)
        run.report.written[table.name] += len(good)


def envelope_results(path: Path, limits: Limits, linkage_key: str) -> Iterator[BatchResult]:
    """Validated batches of one envelope file, streamed; a refused file ends with its error."""
    batch = EnvelopeBatch()
    skipped: Counter = Counter()
    try:
        for d in read_envelope(path, limits):
            batch.add(path.name, d)
            skipped.update(d.skipped)
            if batch.claims >= limits.chunk_claims:
                yield batch.validate(limits, linkage_key)
    except (HostileInput, etree.XMLSyntaxError, OSError) as e:
        msg = file_error_message(e)
        row = dict.fromkeys(REJECTIONS_COLUMNS, "")
        row.update(source_file=path.name, table="file", error=msg)
        last = batch.validate(limits, linkage_key)
        last.file_errors.append((path.name, msg))
        last.rejections.append(pd.DataFrame([row]))
        last.skipped.update(skipped)
        yield last
        return
    last = batch.validate(limits, linkage_key)
    last.skipped.update(skipped)
    yield last


def _files_job(args: tuple[list[Path], Limits, str]) -> list[BatchResult]:
    """Worker: validated batches of several small files (bigger batches validate faster)."""
    paths, limits, key = args
    results: list[BatchResult] = []
    for path in paths:
        results.extend(envelope_results(path, limits, key))
    return results


# Files above this size are streamed in the main process rather than sent to a worker whole;
# smaller files are grouped into jobs of about JOB_BYTES.
STREAM_BYTES = 128 * 1024**2
JOB_BYTES = 24 * 1024**2


def _ingest_envelopes(src: Path, run: _Run, limits: Limits, progress: Progress | None) -> None:
    files = _envelope_files(src)
    if not files:
        raise ContractError(f"{src}: no .xml envelopes and no xml1 table found")
    sizes = [p.stat().st_size for p in files]
    total, done = sum(sizes), 0
    run.report.files_read = len(files)
    jobs: list[tuple[list[Path], int]] = []
    for path, size in zip(files, sizes, strict=True):
        if jobs and jobs[-1][1] + size <= JOB_BYTES:
            jobs[-1][0].append(path)
            jobs[-1] = (jobs[-1][0], jobs[-1][1] + size)
        else:
            jobs.append(([path], size))
    workers = min(limits.workers, len(jobs))
    if workers <= 1 or max(sizes) > STREAM_BYTES:
        for path, size in zip(files, sizes, strict=True):
            for result in envelope_results(path, limits, run.linkage_key):
                commit(result, run)
            done += size
            if progress:
                progress(done, total)
        return
    # Worker processes parse and validate; this process commits results in file order (so "the
    # first claim with a key is kept" is deterministic) and is the only writer.
    # fork: the workers start at once with everything imported; no writer thread runs yet.
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: deque = deque()
        queue = iter(jobs)
        for paths, size in itertools.islice(queue, 2 * workers):
            pending.append((pool.submit(_files_job, (paths, limits, run.linkage_key)), size))
        while pending:
            future, size = pending.popleft()
            for result in future.result():
                commit(result, run)
            done += size
            if progress:
                progress(done, total)
            nxt = next(queue, None)
            if nxt is not None:
                job = pool.submit(_files_job, (nxt[0], limits, run.linkage_key))
                pending.append((job, nxt[1]))


def file_error_message(e: Exception) -> str:
    if isinstance(e, etree.XMLSyntaxError):
        return (
            f"malformed or truncated XML: {e.msg}; "
            "dossiers complete before this point were read, the rest of the file was not"
        )
    return f"file refused: {e}"


class EnvelopeBatch:
    """Dossiers gathered into raw columnar tables (and dossier-level errors) for validate_batch."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.rows: dict[str, list] = {"claims": [], "drug_lines": [], "service_lines": []}
        self.errors: list[dict] = []
        self.claims = 0

    def add(self, source: str, d: Dossier) -> None:
        group = f"{source}#{d.number}"
        self.claims += 1
        for loai, recs in d.records.items():
            rows = self.rows[XML_TABLES[loai].name]
            for i, (tags, texts) in enumerate(recs, 1):
                rows.append((tags, texts, group, source, f"HOSO {d.number}/{loai} {i}"))
        first = (d.records.get("XML1") or [((), ())])[0]
        ma_lk = dict(zip(*first, strict=True)).get("MA_LK") or ""
        for table, fld, value, error in d.errors:
            self.errors.append(
                {
                    "source_file": source,
                    "claim_id": ma_lk,
                    "table": XML_TABLES[table].name,
                    "record": f"HOSO {d.number}/{table}",
                    "field": fld,
                    "value": value,
                    "error": error,
                    "record_json": json.dumps({"LOAIHOSO": table}),
                    GROUP: group,
                }
            )

    def take(self) -> tuple[dict[str, pd.DataFrame], pd.DataFrame | None]:
        """The raw tables and the dossier-level errors gathered so far; the batch starts anew."""
        raw = {name: columnar(rows) for name, rows in self.rows.items()}
        prior = pd.DataFrame(self.errors) if self.errors else None
        self.reset()
        return raw, prior

    def validate(self, limits: Limits, linkage_key: str) -> BatchResult:
        raw, prior = self.take()
        return validate_batch(raw, limits, linkage_key, prior, from_xml=True)


def columnar(rows: list) -> pd.DataFrame:
    """Raw records -> one string frame. Records of the same shape (same field names in the same
    order, the usual case) are transposed together, which keeps per-field Python work out."""
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype="str") for c in INTERNAL})
    shapes: dict[tuple[str, ...], list[int]] = {}
    for i, r in enumerate(rows):
        shapes.setdefault(r[0], []).append(i)
    parts = []
    for tags, idx in shapes.items():
        cols: dict[str, pa.Array] = {}
        if tags:
            for tag, values in zip(tags, zip(*(rows[i][1] for i in idx), strict=True), strict=True):
                cols[tag] = pa.array(values, pa.string())
        cols[GROUP] = pa.array([rows[i][2] for i in idx], pa.string())
        cols[SOURCE] = pa.array([rows[i][3] for i in idx], pa.string())
        cols[RECORD] = pa.array([rows[i][4] for i in idx], pa.string())
        cols["_pos"] = pa.array(idx, pa.int64())
        parts.append(pa.table(cols))
    table = pa.concat_tables(parts, promote_options="default") if len(parts) > 1 else parts[0]
    df = table.to_pandas()
    if len(parts) > 1:
        df = df.sort_values("_pos", kind="stable").reset_index(drop=True)
    return df.drop(columns="_pos")


def load_dataset(folder: Path) -> dict[str, pd.DataFrame]:
    """Read a canonical dataset written by ingest (the tables that exist)."""
    folder = Path(folder)
    out = {}
    for name in ("claims", "drug_lines", "service_lines", "facilities", "labels", "rejections"):
        p = folder / f"{name}.parquet"
        if p.exists():
            out[name] = pd.read_parquet(p)
    return out
