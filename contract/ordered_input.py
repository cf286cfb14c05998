"""Tabular input already in claim order, cut into partitions by row ranges as it is read.

Facility and provincial exports list a claim's lines together and in the order of the claims.
Such an input needs no spill by claim-key hash (contract.tabular), whose whole-input files (~2.7 GB
per million claims, written before the first partition can be validated) were a third of ingest's
time at 4M claims. It is found by one pass over the MA_LK columns alone (ordered_layout) when:

- every table is parquet (a file or a folder of files);
- in the claims table, each claim key's rows are consecutive;
- in each line table, the rows of a claim key are in the order of their claims (a line whose key is
  in no claim may stand anywhere: it rides with the lines before it and is rejected as an orphan,
  as in any partition).

Then partition q is a run of consecutive claims and, in each line table, the rows between the
first line of its first claim and the first line of the next partition's: every row of a claim key
together, as hash partitioning puts them, so each claim is decided as there; the dataset and the
rejection report hold the same rows, in the order of the files instead of the hash's. Any other
input takes the spill. The partitions are read in order (OrderedInput.fill), while earlier ones
are validated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from contract.schema import Table
from contract.tabular import (
    Spilled,
    _file_schema,
    _Spill,
    key_groups,
    prepared_pieces,
    spilled_schema,
)


@dataclass
class Layout:
    """Partition q of table t is its rows bounds[t][q] .. bounds[t][q + 1]."""

    bounds: dict[str, np.ndarray]
    parts: int
    n_claims: int


def ordered_layout(sources: dict[str, tuple[Path, Table]], parts: int) -> Layout | None:
    """The row ranges of about PARTS partitions of consecutive claims, or None when the input is
    not in claim order (module text) or makes one partition."""
    if parts <= 1 or any(p.suffix == ".csv" for p, _ in sources.values()):
        return None
    keys = _key_column(sources["claims"][0])
    if keys is None or len(keys) == 0:
        return None
    enc = pc.dictionary_encode(keys)  # the dictionary in order of first appearance
    del keys
    ids = enc.indices.to_numpy(zero_copy_only=False)
    if np.any(ids[1:] < ids[:-1]):  # a key seen again after another one
        return None
    n = len(ids)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])  # first row of each claim key
    targets = np.arange(parts, dtype=np.int64) * n // parts  # each moved back to its key's start
    cut = np.r_[np.unique(starts[np.searchsorted(starts, targets, side="right") - 1]), n]
    key_cut = np.r_[ids[cut[:-1]], len(enc.dictionary)].astype(np.int64)
    bounds = {"claims": cut.astype(np.int64)}
    for name, (p, _table) in sources.items():
        if name == "claims":
            continue
        rows = _line_bounds(p, enc.dictionary, key_cut)
        if rows is None:
            return None
        bounds[name] = rows
    return Layout(bounds, len(cut) - 1, n)


def _line_bounds(p: Path, claim_keys: pa.Array, key_cut: np.ndarray) -> np.ndarray | None:
    """A line table's partition bounds: the first row whose claim is at or after each partition's
    first claim (keys in claim order, else None)."""
    keys = _key_column(p)
    if keys is None:
        return None
    n = len(keys)
    if n == 0:
        return np.zeros(len(key_cut), dtype=np.int64)
    # runs of one key (a claim's lines), each looked up once
    change = pc.not_equal(keys.slice(1), keys.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    runs = np.flatnonzero(np.r_[True, change])
    claim = pc.index_in(keys.take(pa.array(runs)), value_set=claim_keys)
    claim = claim.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    known = claim[claim >= 0]
    if np.any(known[1:] < known[:-1]):
        return None
    at = np.maximum.accumulate(claim)  # a line without a claim rides with the lines before it
    rows = np.r_[runs, n][np.searchsorted(at, key_cut, side="left")]
    rows[0], rows[-1] = 0, n
    return rows.astype(np.int64)


def _key_column(p: Path) -> pa.Array | None:
    """Every row's GROUP (key_groups) of a parquet table, reading its MA_LK column alone; None
    without one (the spill handles it)."""
    names = _file_schema(p).names
    upper = [str(c).strip().upper() for c in names]
    if "MA_LK" not in upper:
        return None
    col = names[upper.index("MA_LK")]
    if p.is_dir():
        t = ds.dataset(p, format="parquet").to_table(columns=[col])
    else:
        t = pq.ParquetFile(p).read(columns=[col])
    return key_groups(t)


class _Cursor:
    """A table's prepared pieces (contract.tabular.prepared_pieces), taken N rows at a time."""

    def __init__(self, p: Path, table: Table):
        self.pieces = prepared_pieces(p, table)
        self.rest: pa.Table | None = None

    def take(self, n: int) -> list[pa.Table]:
        out = []
        while n > 0:
            if self.rest is None or self.rest.num_rows == 0:
                piece = next(self.pieces, None)
                if piece is None:
                    raise RuntimeError("a table ended before the rows its MA_LK column counted")
                self.rest = piece[0]
            t = self.rest.slice(0, n)
            self.rest = self.rest.slice(t.num_rows)
            out.append(t)
            n -= t.num_rows
        return out


class OrderedInput:
    """An input in claim order as a Spilled whose partitions are read on demand (fill, in
    order): into Arrow IPC files in FOLDER (for worker processes), or kept in memory (None)."""

    def __init__(self, sources: dict[str, tuple[Path, Table]], layout: Layout, folder: Path | None):
        self.layout = layout
        self.cursors = {name: _Cursor(p, table) for name, (p, table) in sources.items()}
        self.spilled = Spilled(
            sources,
            {name: _Spill(folder, name, layout.parts, keep=True) for name in sources},
            {name: spilled_schema(p, table) for name, (p, table) in sources.items()},
            layout.parts,
            layout.n_claims,
        )
        self.next = 0

    def fill(self, q: int) -> None:
        """Partition Q read (partitions are read in order, each once)."""
        if q != self.next:
            raise ValueError(f"partition {q} read out of order (next is {self.next})")
        self.next += 1
        for name, cursor in self.cursors.items():
            bounds = self.layout.bounds[name]
            pieces = cursor.take(int(bounds[q + 1] - bounds[q]))
            spill = self.spilled.spills[name]
            if spill.folder is None:
                spill.pieces[q] = pieces
            elif pieces:
                path = spill.folder / f"{name}-{q}.arrow"
                with pa.ipc.new_file(path, self.spilled.schemas[name]) as f:
                    for t in pieces:
                        f.write_table(t)
                spill.written.add(q)
