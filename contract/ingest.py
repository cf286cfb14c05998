"""Ingest: XML 130 envelopes or tabular folders -> the canonical dataset plus a rejection report.

The readers are their own modules: the hardened XML reader (contract.xml_reader) and the tabular
one (contract.tabular); batches of whole claims are validated by contract.batch (a dossier is
accepted or rejected whole). This module runs them over a source, in worker processes for many
envelope files or a large tabular input, and through contract.writer (the one writer) writes the
canonical tables and keeps every rejected record in ``rejections.parquet`` with the field and the
error. The public names of those modules that callers import from here are re-exported.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from contract import xml_reader
from contract.batch import (
    BatchResult,
    EnvelopeBatch,
    add_error,
    check_batch,
    decide_batch,
    gather_units,
    raw_tables,
    validate_batch,
)
from contract.file_batches import Taken, file_batches, job_batches
from contract.limits import Limits
from contract.ordered_input import Layout, OrderedInput, ordered_layout
from contract.schema import (
    FACILITIES,
    LABELS,
    REJECTIONS_COLUMNS,
)
from contract.tabular import (
    Spilled,
    is_tabular,
    partitions,
    read_tabular_file,
    spill_folder,
    spill_tabular,
    spilled_input,
    table_source,
    tabular_sources,
)
from contract.validate import (
    GROUP,
    RECORD,
    SOURCE,
    UNIT,
    ContractError,
    check_table,
    rejection_rows,
)
from contract.writer import IngestReport, _Run, commit
from contract.xml_reader import (
    HostileInput,
    envelope_files,
    file_error_message,
    inflated_size,
    read_envelope,
)

__all__ = [
    "BatchResult",
    "EnvelopeBatch",
    "HostileInput",
    "IngestReport",
    "Limits",
    "file_error_message",
    "ingest",
    "is_tabular",
    "load_dataset",
    "read_envelope",
    "read_tabular_file",
    "validate_batch",
]

Progress = Callable[[int, int], None]


def ingest(
    src: Path,
    out: Path,
    *,
    limits: Limits | None = None,
    linkage_key: str,
    progress: Progress | None = None,
    spill_dir: Path | None = None,
) -> IngestReport:
    """Read SRC (an envelope file, a folder of envelopes, or a tabular folder) into OUT.

    ``linkage_key`` keys the hashes that link people and cards; the caller passes it (there is no
    default, so a deployment cannot silently fall back to a public development key).
    ``spill_dir``: where a large tabular input is spilled (a private temporary folder is made
    under it; default the system temporary folder, never OUT: the spill holds personal data)."""
    src, out = Path(src), Path(out)
    if not src.exists():
        raise FileNotFoundError(f"{src} does not exist")
    limits = limits or Limits()
    if not linkage_key:
        raise ValueError("ingest needs a linkage key")
    out.mkdir(parents=True, exist_ok=True)
    batch_memory_pool()
    report = IngestReport(out)
    run = _Run(out, report, linkage_key, limits)
    try:
        if is_tabular(src):
            _ingest_tabular(src, run, limits, progress, spill_dir)
        else:
            _ingest_envelopes(src, run, limits, progress)
    finally:
        run.close()
    return report


def batch_memory_pool() -> None:
    """Arrow's allocations of this process from jemalloc rather than the default (mimalloc).

    Ingest allocates and frees the same large buffers batch after batch; mimalloc hands them back
    to the operating system at once and takes them again as fresh pages, and on the 2-core
    machine page faults were a third of ingest's CPU time (tabular 100k: system time 2.6-3.9 s
    with mimalloc, 0.75-1.7 s with jemalloc, user time the same). jemalloc keeps freed pages for
    a while (its decay), so batch k+1 reuses batch k's. A process-wide setting: ingest is a
    batch process (the CLI, a Spark task), and buffers already made keep their own pool. Where
    pyarrow is built without jemalloc, the default pool stays."""
    try:
        pool = pa.jemalloc_memory_pool()
    except (NotImplementedError, pa.ArrowNotImplementedError):
        return
    if pa.default_memory_pool().backend_name != pool.backend_name:
        pa.set_memory_pool(pool)


# Ground truth of a simulated world (simulator/): not part of the contract, copied as is.
TRUTH_FILES = ("truth.parquet", "truth_lines.parquet")


def _ingest_tabular(
    src: Path, run: _Run, limits: Limits, progress: Progress | None, spill_dir: Path | None
) -> None:
    parts = partitions(src, limits)
    workers = min(limits.workers, parts)
    layout = None
    if limits.ordered_input and parts > 1:  # (one partition: read whole, in memory)
        layout = _layout_apart(tabular_sources(src), parts * ORDERED_SPLIT)
    if workers > 1:
        _pool_tabular(src, workers, run, limits, progress, spill_dir, layout)
    else:
        with contextlib.ExitStack() as stack:
            if layout is not None:  # read partition by partition, nothing spilled
                feed = OrderedInput(layout, None)
                spilled, fill = feed.spilled, feed.fill
            else:
                spilled = stack.enter_context(spilled_input(src, limits, spill_dir, parts=parts))
                fill = _spilled_already
            done = 0
            for q in range(spilled.parts):
                fill(q)
                batch, n, total = spilled.batch(q)
                commit(validate_batch(batch, limits, run.linkage_key), run)
                done += n
                if progress:
                    progress(done, total)
    ingest_side_tables(src, run, limits)


# An input in claim order is cut into partitions this many times smaller than the spill's
# (50,000 claims: ~16,700): the reader of its three tables runs beside the workers in this
# process, and smaller partitions keep the workers' share of memory down. 4M claims, 2 workers,
# all processes' peak (bench/bench_ingest.py --tabular 4000000 --tabular-paths ordered,
# 2026-12-05): 2.14 GB with partitions of 25,000 claims (2 here) at 56,000 claims/s, 1.88 GB
# with ~16,700 (3) at 52,600/s.
ORDERED_SPLIT = 3


def _layout_apart(sources: dict, parts: int) -> Layout | None:
    """ordered_layout in a process of its own: its key columns (~750 MB at 4M claims) are given
    back to the system when it ends, instead of staying in this process's allocator (and in
    every worker forked from it) for the whole ingest."""
    with _pool(1, multiprocessing.get_context("fork")) as pool:
        try:
            return pool.submit(ordered_layout, sources, parts).result()
        except BaseException:
            _stop_workers(pool)
            raise


def _spilled_already(q: int) -> None:
    """A spilled input's partitions are all on disk before the first is taken."""


@dataclass
class _Part:
    """Partition q validated and committed by a worker: its tables as Arrow IPC files beside the
    spill (sent back through the pool's pipe they were pickled and unpickled, ~0.45 CPU-s a
    partition of 50,000 claims), the claim keys it wrote and its counts."""

    q: int
    files: dict[str, Path]
    keys: list[str]
    report: IngestReport
    claims: int


def _partition_job(args: tuple[Spilled, int, Limits, str]) -> _Part:
    """Worker: partition q of a spilled tabular input validated and committed as this process
    alone would (commit, into Arrow files instead of parquet)."""
    spilled, q, limits, key = args
    batch, n, _total = spilled.batch(q)
    run = _Run(None, IngestReport(None), key, limits)
    commit(validate_batch(batch, limits, key), run)
    del batch
    files = {}
    for name, w in run.writers.items():
        w.flush()
        files[name] = spilled.folder / f"out-{q}-{name}.arrow"
        with pa.ipc.new_file(files[name], w.schema) as f:
            for t in w.tables:
                f.write_table(t)
    return _Part(q, files, list(run.seen_claims), run.report, n)


def _take_part(part: _Part, spilled: Spilled, run: _Run, limits: Limits) -> None:
    """A worker's partition into this process's files. Its commit was exact unless a claim key
    it wrote was written by an earlier partition (partitions by key hash never share one, but
    this process does not rely on it): then the partition is validated and committed here again,
    as one process does it."""
    try:
        if not run.seen_claims.isdisjoint(part.keys):
            batch, _n, _total = spilled.batch(part.q)
            commit(validate_batch(batch, limits, run.linkage_key), run)
            return
        rep, got = run.report, part.report
        rep.read.update(got.read)
        rep.rejected.update(got.rejected)
        rep.skipped_tables.update(got.skipped_tables)
        rep.file_errors.extend(got.file_errors)
        rep.written.update(got.written)
        for name, path in part.files.items():
            with pa.memory_map(str(path)) as mm:
                w = run.writer(name)
                w.write_arrow(pa.ipc.open_file(mm).read_all())
                w.flush()  # a partition's rows as row groups now: its file unmapped at once
        if not spilled.ordered:  # (in claim order, no key is in two partitions: not kept)
            run.seen_claims.update(part.keys)
    finally:
        for path in part.files.values():
            path.unlink(missing_ok=True)


def _pool_tabular(
    src: Path,
    workers: int,
    run: _Run,
    limits: Limits,
    progress: Progress | None,
    spill_dir: Path | None,
    layout: Layout | None = None,
) -> None:
    """Tabular ingest on worker processes: the partitions validated and committed by the workers
    and written here in partition order: the tables and the rejection report are one process's,
    row for row (_take_part). An input in claim order (LAYOUT, contract.ordered_input) is read
    here a partition at a time while the workers validate the ones before; any other is first
    spilled whole, its three tables side by side by the workers. At most `workers` partitions
    (one more read ahead) are out at once: memory is bounded by a few partitions (~50,000 claims
    each), not by the input."""
    ctx = multiprocessing.get_context("fork")  # the spill's files are read by the workers
    gc.freeze()
    done = 0
    try:
        # the folder outlives the workers: on an error they stop before it is removed
        with spill_folder(spill_dir) as folder, _pool(workers, ctx) as pool:
            pending: deque = deque()
            try:
                if layout is None:
                    spilled = spill_tabular(src, limits, folder, True, pool.map)
                    fill, ahead = _spilled_already, 0
                else:
                    feed = OrderedInput(layout, folder)
                    spilled, fill, ahead = feed.spilled, feed.fill, 1
                parts = iter(range(spilled.parts))

                def submit(q: int) -> None:
                    fill(q)
                    job = (spilled, q, limits, run.linkage_key)
                    pending.append(pool.submit(_partition_job, job))

                for q in itertools.islice(parts, workers + ahead):
                    submit(q)
                while pending:
                    part = pending.popleft().result()
                    q = next(parts, None)  # the next one starts before this one is written
                    if q is not None:
                        submit(q)
                    _take_part(part, spilled, run, limits)
                    spilled.drop(part.q)
                    done += part.claims
                    del part
                    if progress:
                        progress(done, spilled.n_claims)
            except BaseException:
                _stop_workers(pool)
                raise
    finally:
        gc.unfreeze()


def _pool(workers: int, ctx) -> ProcessPoolExecutor:
    """Worker processes that end with their parent: killed (SIGKILL, the OOM killer) the parent
    cannot stop them, and a forked worker holds its own end of the task queue's pipe, so it would
    wait on it for ever."""
    return ProcessPoolExecutor(workers, ctx, initializer=_end_with_parent, initargs=(os.getpid(),))


def _end_with_parent(parent: int) -> None:
    """In a worker: SIGTERM ends it (a forked worker inherits the CLI's handler, which raises:
    the pool caught that as the task's error and the worker went on to its next task, minutes
    long), and a daemon thread ends the process when PARENT is gone (reparented)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Stop the workers now, not after their tasks (a table's spill at 4M claims runs ~40 s, and
    a stopping container's grace period is shorter): what they were writing is in the spill's
    folder, removed after them. The executor has no public way to do it before Python 3.14."""
    for proc in list(getattr(pool, "_processes", {}).values()):
        with contextlib.suppress(Exception):
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def ingest_side_tables(src: Path, run: _Run, limits: Limits) -> None:
    """After the claims of a tabular folder: facilities and labels, the simulated truth copied."""
    run.report.files_read = sum(table_source(src, s) is not None for s in ("xml1", "xml2", "xml3"))
    for name in TRUTH_FILES:  # simulated ground truth travels with the data, unchanged
        if (src / name).exists():
            shutil.copyfile(src / name, run.out / name)
    for stem, table in (("facilities", FACILITIES), ("labels", LABELS)):
        p = table_source(src, stem)
        if p is None:
            continue
        run.report.files_read += 1
        df = read_tabular_file(p, table)
        df[SOURCE] = p.name
        df[RECORD] = np.arange(len(df))
        df[GROUP] = np.arange(len(df))
        c = check_table(df, table, limits.max_field_chars)
        key = c.frame[table.fields[0].name]
        add_error(
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


def _validated(group: list[Taken], limits: Limits, linkage_key: str) -> BatchResult:
    """One result for these batches: a batch alone validated as it is (validate_batch), several
    (consecutive small files) as one batch whose units are decided each as if alone
    (gather_units, decide_batch(units=...)): one field check, one decision, one commit for a
    group instead of one each per file (an envelope of one dossier paid ~75 ms of them)."""
    if len(group) == 1:
        raw, prior = raw_tables(group[0].pending)
        result = validate_batch(raw, limits, linkage_key, prior, from_xml=True)
    else:
        raw, prior, units = gather_units([t.pending for t in group])
        result = decide_batch(check_batch(raw, limits, True), linkage_key, prior, units)
    for k, t in enumerate(group):
        if t.file_error is not None:
            name, msg = t.file_error
            row: dict = dict.fromkeys(REJECTIONS_COLUMNS, "")
            row.update(source_file=name, table="file", error=msg)
            if result.grouped:
                row[UNIT] = k
            result.file_errors.append((name, msg))
            result.rejections.append(pd.DataFrame([row]))
        if t.skipped is not None:
            result.skipped.update(t.skipped)
    return result


def envelope_results(path: Path, limits: Limits, linkage_key: str) -> Iterator[BatchResult]:
    """Validated batches of one envelope file, streamed; a refused file ends with its error."""
    for t in file_batches(path, limits):
        yield _validated([t], limits, linkage_key)


# At most this many batches (a batch of a file each) are decided together.
GROUP_UNITS = 4_096


def _files_job(args: tuple[list[Path], Limits, str]) -> list[BatchResult]:
    """Worker: validated batches of several small files, consecutive batches (of one file or
    several) gathered up to chunk_claims claims and validated together (_validated)."""
    # The cyclic garbage collector paused for the job (bounded: JOB_BYTES of input): the records
    # it reads are tens of thousands of small objects, none in a cycle, whose collections cost
    # ~15% of the job's CPU.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _job(args)
    finally:
        if enabled:
            gc.enable()


def _job(args: tuple[list[Path], Limits, str]) -> list[BatchResult]:
    paths, limits, key = args
    results: list[BatchResult] = []
    group: list[Taken] = []
    claims = 0
    for t in job_batches(paths, limits):
        if group and (claims + t.claims > limits.chunk_claims or len(group) >= GROUP_UNITS):
            results.append(_validated(group, limits, key))
            group, claims = [], 0
        group.append(t)
        claims += t.claims
    if group:
        results.append(_validated(group, limits, key))
    for r in results:
        r.checked = {}  # commit never reads it: not pickled back to the parent a second time
    return results


# Files above this size are streamed in the main process rather than sent to a worker whole;
# smaller files are grouped into jobs of about JOB_BYTES. Jobs of 48 MB hold two typical files
# of 1,000 dossiers (~23 MB each), validated as one batch of 2,000 claims: the per-column fixed
# cost of the field checks paid once for both (~8% less CPU per claim than jobs of one file).
STREAM_BYTES = 128 * 1024**2
JOB_BYTES = 48 * 1024**2


def _ingest_envelopes(src: Path, run: _Run, limits: Limits, progress: Progress | None) -> None:
    files = envelope_files(src)
    if not files:
        raise ContractError(f"{src}: no .xml envelopes and no xml1 table found")
    sizes = [inflated_size(p) for p in files]  # (a gzip file's inflated size)
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
    if total >= xml_reader.COMPILED_MIN_INPUT:  # large: the compiled reader (before any fork)
        xml_reader.load_compiled()
    if workers <= 1 and max(sizes) <= STREAM_BYTES:  # small files, one job at a time
        for paths, size in jobs:
            for result in _files_job((paths, limits, run.linkage_key)):
                commit(result, run)
            done += size
            if progress:
                progress(done, total)
        return
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
    gc.freeze()  # this process's objects kept out of the workers' (and its own) collections
    try:
        _pool_jobs(jobs, workers, ctx, run, limits, progress, total)
    finally:
        gc.unfreeze()


def _pool_jobs(jobs, workers, ctx, run: _Run, limits: Limits, progress, total: int) -> None:
    done = 0
    with _pool(workers, ctx) as pool:
        pending: deque = deque()
        queue = iter(jobs)
        try:
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
        except BaseException:  # SIGTERM, an error: the workers stopped, not waited for
            _stop_workers(pool)
            raise


def load_dataset(folder: Path) -> dict[str, pd.DataFrame]:
    """Read a canonical dataset written by ingest (the tables that exist)."""
    folder = Path(folder)
    out = {}
    for name in ("claims", "drug_lines", "service_lines", "facilities", "labels", "rejections"):
        p = folder / f"{name}.parquet"
        if p.exists():
            out[name] = pd.read_parquet(p)
    return out
