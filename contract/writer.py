"""Writing what ingest accepts and rejects: the dataset's parquet files (one writer per table,
row groups of FLUSH_ROWS), the rejection report, and the commit of a validated batch (a claim whose
key was already written is rejected here, with its lines). contract.ingest runs the readers and
the workers; this module is the one writer they share (a worker's part is kept as Arrow and
written by the parent)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from contract.batch import DUPLICATE, WITH_CLAIM, BatchResult, add_error
from contract.limits import Limits
from contract.schema import (
    CLAIMS,
    DRUG_LINES,
    FACILITIES,
    LABELS,
    LINKAGE_COLUMNS,
    REJECTIONS_COLUMNS,
    SERVICE_LINES,
    Table,
)
from contract.validate import GROUP, UNIT, Checked, rejection_rows


@dataclass
class IngestReport:
    out: Path | None
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


# Columns with about one value per record (a claim's, a person's, a card's): no dictionary.
IDENTIFIERS = frozenset(
    ("claim_id", "patient_id", "national_id", "phone", "card_number", "record_number")
) | frozenset(LINKAGE_COLUMNS)


class _Writer:
    """One table's parquet file. Frames are gathered up to FLUSH_ROWS rows and written as one
    row group: many small batches (envelopes of a dossier or a few) made one row group and one
    pandas-to-Arrow conversion each, ~10 ms apiece. Without a path the Arrow tables are kept
    (``tables``) instead of written: a worker's part, written by the parent (write_arrow)."""

    FLUSH_ROWS = 65_536
    SMALL_ROWS = 4_096  # frames this small on average are concatenated before conversion

    def __init__(self, path: Path | None, schema: pa.Schema):
        self.path, self.schema = path, schema
        # Min/max statistics on numbers and times (what a reader prunes row groups by); none on
        # text, whose min/max cost 15-20% of the write and prune nothing in unsorted claims.
        stats = [f.name for f in schema if not pa.types.is_string(f.type)]
        # Dictionary pages only where values repeat: an identifier column's dictionary is as
        # large as the column (encoded for nothing: ~10% of the write, and larger files).
        dictionary = [f.name for f in schema if f.name not in IDENTIFIERS]
        self.writer = (
            None
            if path is None
            else pq.ParquetWriter(
                path,
                schema,
                compression="zstd",
                write_statistics=stats,
                use_dictionary=dictionary,
            )
        )
        self.tables: list[pa.Table] = []  # converted, not yet written (or a worker's part)
        self.table_rows = 0
        self.rows = 0
        self.pending: list[pd.DataFrame] = []
        self.pending_rows = 0

    def write(self, df: pd.DataFrame) -> None:
        if len(df):
            self.pending.append(df[self.schema.names])
            self.pending_rows += len(df)
            self.rows += len(df)
            if self.pending_rows >= self.FLUSH_ROWS:
                self.flush()

    def write_arrow(self, table: pa.Table) -> None:
        """Rows already converted (a worker's part): after the frames before them."""
        if len(table):
            self._convert()
            self.tables.append(table)
            self.table_rows += len(table)
            self.rows += len(table)
            if self.table_rows >= self.FLUSH_ROWS:
                self.flush()

    def _convert(self) -> None:
        if not self.pending:
            return
        frames, rows = self.pending, self.pending_rows
        self.pending, self.pending_rows = [], 0
        if len(frames) > 1 and rows < self.SMALL_ROWS * len(frames):  # one conversion
            frames = [pd.concat(frames)]
        for f in frames:
            self.tables.append(pa.Table.from_pandas(f, schema=self.schema, preserve_index=False))
        self.table_rows += rows

    def flush(self) -> None:
        self._convert()
        if self.writer is None or not self.tables:
            return
        tables, self.tables, self.table_rows = self.tables, [], 0
        self.writer.write_table(pa.concat_tables(tables))  # large frames: not copied into one

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


@dataclass
class _Run:
    out: Path | None  # None: the tables kept as Arrow (a worker's part, see _partition_job)
    report: IngestReport
    linkage_key: str
    limits: Limits
    writers: dict[str, _Writer] = field(default_factory=dict)
    seen_claims: set[str] = field(default_factory=set)  # claim keys written so far

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
            path = None if self.out is None else self.out / f"{name}.parquet"
            self.writers[name] = _Writer(path, schema)
        return self.writers[name]

    def reject(self, rows: pd.DataFrame) -> None:
        if len(rows):
            self.writer("rejections").write(rows.astype("str"))

    def close(self) -> None:
        for name in ("claims", "drug_lines", "service_lines", "rejections"):
            self.writer(name)
        for w in self.writers.values():
            w.close()


def commit(result: BatchResult, run: _Run) -> None:
    """Write a validated batch; claims already written under the same key are rejected here.

    A batch of several units (files decided together, result.grouped) is written as deciding
    and committing them one by one would write it: a claim whose key a claim of an earlier unit
    holds is rejected as if that one had been written first, and the rejection report keeps
    per-unit order (commit_order)."""
    rep = run.report
    rep.read.update(result.read)
    rep.rejected.update(result.rejected)
    rep.skipped_tables.update(result.skipped)
    rep.file_errors.extend(result.file_errors)
    rejections = list(result.rejections)
    claims = result.good["claims"]
    # Membership in a hash set: the cost of a batch is its own size, never the claims written
    # so far (Series.isin(a growing collection) rebuilt its lookup at every batch: quadratic).
    seen = run.seen_claims
    keys = claims["claim_id"].tolist()
    written = np.fromiter((k in seen for k in keys), bool, len(keys))
    if result.grouped:  # kept by an earlier unit: written before this one, one by one
        first: dict = {}
        for i, (k, u) in enumerate(zip(keys, claims[UNIT].tolist(), strict=True)):
            if first.setdefault(k, u) < u:
                written[i] = True
    dup_groups = set(claims.loc[written, GROUP])
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
                    add_error(c, c.bad, "MA_LK", c.frame["claim_id"], DUPLICATE)
                units = good[UNIT].to_numpy() if result.grouped else None
                rejections.append(rejection_rows(c, c.bad, WITH_CLAIM, units))
                rep.rejected[name] += int(drop.sum())
                good = good.loc[~drop.to_numpy()]
        if name == "claims":
            run.seen_claims.update(good["claim_id"].tolist())
        run.writer(name).write(good)
        rep.written[name] += len(good)
    for rows in commit_order(rejections) if result.grouped else rejections:
        run.reject(rows)


def commit_order(rejections: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The rejection rows of units decided together in the order of deciding them one by one:
    unit by unit, and in each unit in the order of the list (its dossier errors, its claims,
    drug and service lines, its file error, the claims and lines commit rejects)."""
    rows = [r for r in rejections if len(r)]
    if not rows:
        return []
    frame = pd.concat(rows, ignore_index=True)
    order = np.argsort(frame[UNIT].to_numpy(dtype=np.int64), kind="stable")
    return [frame.take(order).drop(columns=UNIT)]
