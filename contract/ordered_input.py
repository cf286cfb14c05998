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
    """Partition q of table t (of SOURCES, contract.tabular.tabular_sources) is its rows
    bounds[t][q] .. bounds[t][q + 1]."""

    bounds: dict[str, np.ndarray]
    parts: int
    n_claims: int
    sources: dict[str, tuple[Path, Table]]


def ordered_layout(sources: dict[str, tuple[Path, Table]], parts: int) -> Layout | None:
    """The row ranges of about PARTS partitions of consecutive claims, or None when the input is
    not in claim order (module text) or makes one partition."""
    if parts <= 1 or any(p.suffix == ".csv" for p, _ in sources.values()):
        return None
    name = _key_name(sources["claims"][0])
    if name is None:
        return None
    keys = pa.concat_arrays(list(_key_batches(sources["claims"][0], name)))
    n = len(keys)
    if n == 0:
        return None
    starts = _run_starts(keys)  # the first row of each run of one key
    claim_keys = keys.take(pa.array(starts))  # one per run, in file order
    del keys
    if _repeats(claim_keys):  # a claim key again after another one
        return None
    targets = np.arange(parts, dtype=np.int64) * n // parts  # each moved back to its key's start
    first = np.unique(np.searchsorted(starts, targets, side="right") - 1)  # claim runs
    cut = np.r_[starts[first], n].astype(np.int64)
    run_cut = np.r_[first, len(starts)].astype(np.int64)
    bounds = {"claims": cut}
    for name, (p, _table) in sources.items():
        if name == "claims":
            continue
        rows = _line_bounds(p, claim_keys, run_cut)
        if rows is None:
            return None
        bounds[name] = rows
    return Layout(bounds, len(cut) - 1, n, sources)


def _repeats(keys: pa.Array) -> bool:
    """Whether a key is there twice: side by side once sorted (a sort of millions of keys costs
    less than a hash set of them, ~1.8 s against ~4 s at 4M claims)."""
    s = keys.take(pc.sort_indices(keys))
    return len(s) > 1 and pc.any(pc.equal(s.slice(1), s.slice(0, len(s) - 1))).as_py()


def _run_starts(keys: pa.Array) -> np.ndarray:
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    change = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1))
    return np.flatnonzero(np.r_[True, change.to_numpy(zero_copy_only=False)])


def _line_bounds(p: Path, claim_keys: pa.Array, run_cut: np.ndarray) -> np.ndarray | None:
    """A line table's partition bounds: the first row whose claim is in or after each partition
    (by claim run, RUN_CUT); None if its keys are not in claim order.

    Its keys are read a record batch at a time, each run of one key looked up among the claims
    the batch spans (_span; lines in claim order find theirs there: a hash set of the claims of a
    batch stays in the caches, one of millions did not and cost ~4x per key at 4M claims); the
    few not found there (a line of no claim, or one out of order) among all of them at the end.
    """
    name = _key_name(p)
    if name is None:
        return None
    runs: list[np.ndarray] = []  # each run's claim run (-1: none; -2: not in the window)
    heads: list[np.ndarray] = []  # each run's first row
    missed: list[pa.Array] = []
    seen = done = 0
    last = None  # the key of the row before this batch
    for keys in _key_batches(p, name):
        starts = _run_starts(keys)
        if last is not None and starts.size and keys[0].as_py() == last:
            starts = starts[1:]  # the batch begins inside the run of the batch before
        last = keys[len(keys) - 1].as_py() if len(keys) else last
        if starts.size:
            lookup = keys.take(pa.array(starts))
            window = claim_keys.slice(seen, _span(claim_keys, seen, lookup))
            at = pc.index_in(lookup, value_set=window).fill_null(-1).to_numpy(zero_copy_only=False)
            run = np.where(at >= 0, at + seen, -2).astype(np.int64)
            if (run == -2).any():
                missed.append(lookup.filter(pa.array(run == -2)))
            if (run >= 0).any():
                seen = int(run[run >= 0].max())
            runs.append(run)
            heads.append(starts + done)
        done += len(keys)
    if not runs:
        return np.r_[0, np.full(len(run_cut) - 1, done)].astype(np.int64)
    run, head = np.concatenate(runs), np.concatenate(heads)
    if missed:  # among all the claims
        far = pc.index_in(pa.concat_arrays(missed), value_set=claim_keys).fill_null(-1)
        run[run == -2] = far.to_numpy(zero_copy_only=False)
    known = run[run >= 0]
    if np.any(known[1:] < known[:-1]):
        return None
    at = np.maximum.accumulate(run)  # a line of no claim rides with the lines before it
    rows = np.r_[head, done][np.searchsorted(at, run_cut, side="left")]
    rows[0], rows[-1] = 0, done
    return rows.astype(np.int64)


def _span(claim_keys: pa.Array, seen: int, lookup: pa.Array) -> int:
    """How many claims from the SEEN-th one the batch's lines can be of: up to the claim of its
    last line found there by a scan (lines in claim order; the last few tried, in case they are
    of no claim); else all the rest."""
    rest = claim_keys.slice(seen)
    for back in range(1, min(SPAN_TRIES, len(lookup)) + 1):
        k = pc.index(rest, lookup[len(lookup) - back]).as_py()
        if k >= 0:
            return k + 1
    return len(rest)


SPAN_TRIES = 8


def _key_name(p: Path) -> str | None:
    """The MA_LK column's name in a parquet table (None: none; the spill handles it)."""
    names = _file_schema(p).names
    upper = [str(c).strip().upper() for c in names]
    return names[upper.index("MA_LK")] if "MA_LK" in upper else None


def _key_batches(p: Path, name: str, rows: int = 1 << 20):
    """The GROUP (key_groups) of a parquet table's rows, a record batch of its MA_LK column at a
    time, in file order."""
    if p.is_dir():
        batches = ds.dataset(p, format="parquet").to_batches(columns=[name], batch_size=rows)
    else:
        batches = pq.ParquetFile(p).iter_batches(batch_size=rows, columns=[name])
    for b in batches:
        yield key_groups(pa.Table.from_batches([b]))


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

    def __init__(self, layout: Layout, folder: Path | None):
        self.layout = layout
        sources = layout.sources
        self.cursors = {name: _Cursor(p, table) for name, (p, table) in sources.items()}
        self.spilled = Spilled(
            sources,
            {name: _Spill(folder, name, layout.parts, keep=True) for name in sources},
            {name: spilled_schema(p, table) for name, (p, table) in sources.items()},
            layout.parts,
            layout.n_claims,
            ordered=True,
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
