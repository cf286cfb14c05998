"""The case-store writes of the scoring API, off the request threads: a queue drained by one writer
thread per worker, the rows of the requests waiting in it recorded together (a group commit), with
their claim documents (serving.casefile.fill_store).

Durable before acknowledged: `CaseWriter.write` returns only once the transaction holding its
rows has committed, and raises the writer's error otherwise (an unreachable store: the API answers
503), so a response is never sent for claims that are not recorded. Under load the requests of a
worker share transactions instead of queueing for the database one by one. Writes are idempotent
(scored claims by claim and model version, cases by claim: serving.store.Store.record_scores), so
a request the client sends again, or two workers recording the same claim at the same moment (the
loser's transaction is retried once), never records a claim twice. `close` stops taking writes and
drains the queue: every write accepted before it is recorded (the service calls it when a worker
shuts down; an interpreter exit does too).

A request's rows come as frames or, from the API's small requests, as records (lists of dicts:
no DataFrame is built for them); the default fill (serving.caserows.fill_batch) records records
and small batches value by value, larger frames through serving.casefile.fill_store. Requests
of the two kinds never share a transaction.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy.exc import IntegrityError

from scoring.scorer import OPEN_BANDS
from serving.store import StoreBusy

log = logging.getLogger("claimradar.writer")


class WriterClosed(StoreBusy):
    """The writer no longer takes writes (the worker is shutting down): answered 503."""


@dataclass
class _Job:
    scored: pd.DataFrame | list[dict]  # records: serving.caserows
    tables: dict[str, pd.DataFrame] | dict[str, list[dict]]
    frame: pd.DataFrame | list[dict] | None
    actor: str
    done: threading.Event = field(default_factory=threading.Event)
    new: int = 0
    error: BaseException | None = None


_STOP = object()


class CaseWriter:
    """One writer thread over a case store (serving.store.Store)."""

    def __init__(
        self,
        store,
        *,
        open_bands: tuple[str, ...] = OPEN_BANDS,
        max_claims: int = 5_000,
        fill: Callable | None = None,
    ) -> None:
        """max_claims: claims per transaction at most (a request is never split). fill: the
        function that records a scored batch (default serving.caserows.fill_batch: frames or
        records)."""
        if fill is None:
            from serving.caserows import fill_batch as fill
        self.store, self.open_bands, self.max_claims = store, open_bands, max_claims
        self._fill = fill
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self.transactions = 0  # commits so far (several requests may share one)
        self.jobs = 0  # writes recorded so far
        self._thread = threading.Thread(target=self._run, name="case-writer", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        atexit.register(lambda: (w := ref()) is not None and w.close())

    # -- the request side ------------------------------------------------------------------------
    def write(
        self,
        scored: pd.DataFrame | list[dict],
        tables: dict,
        frame: pd.DataFrame | list[dict] | None,
        actor: str,
        timeout: float | None = None,
    ) -> int:
        """Record scored rows (scoring.scorer.score) with their canonical tables and feature rows,
        all frames or all records (serving.caserows); returns once committed, with the number
        of new scored claims. Raises the store's error when the commit failed, WriterClosed
        after close(), TimeoutError after `timeout`."""
        job = _Job(scored, tables, frame, actor)
        with self._lock:
            if self._closed:
                raise WriterClosed("the case writer is closed")
            self._queue.put(job)
        if not job.done.wait(timeout):
            raise TimeoutError("the case store did not record the scores in time")
        if job.error is not None:
            raise job.error
        return job.new

    def close(self, timeout: float | None = 60.0) -> None:
        """Stop taking writes; record every write already accepted, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    # -- the writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        while not stop:
            jobs = [self._queue.get()]
            if jobs[0] is _STOP:
                break
            claims = len(jobs[0].scored)
            while claims < self.max_claims:  # whatever else is waiting joins this transaction
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True  # record what was taken, then stop
                    break
                jobs.append(nxt)
                claims += len(nxt.scored)
            try:
                self._commit(jobs)
            except BaseException as e:  # never leave a request waiting on a dead thread
                log.exception("case writer failed")
                for j in jobs:
                    if not j.done.is_set():
                        j.error = e
                        j.done.set()

    def _commit(self, jobs: list[_Job]) -> None:
        for group in _groups(jobs):
            error: BaseException | None = None
            new = 0
            for attempt in range(2):
                try:
                    new = self._record(group)
                    error = None
                    break
                except IntegrityError as e:  # another worker recorded a claim of ours first
                    error = e
                    log.info("case store conflict, retrying (attempt %d)", attempt + 1)
                    time.sleep(0.05)
                except BaseException as e:  # the store is down: every request of it hears so
                    error = e
                    break
            self.transactions += 1
            for j in group:
                j.error, j.new = error, (new if j is group[0] else 0)
                self.jobs += error is None
                j.done.set()

    def _record(self, jobs: list[_Job]) -> int:
        scored, tables, frame = _merge(jobs)
        if not len(scored):
            return 0
        return self._fill(
            self.store, scored, tables, frame, jobs[0].actor, open_bands=self.open_bands,
            facility_months=False, chunk=max(len(scored), 1),
        )  # fmt: skip


def _groups(jobs: list[_Job]) -> list[list[_Job]]:
    """Jobs in order, gathered into transactions: one actor each (the audit trail names it), no
    claim key twice (a claim sent again by another request is recorded after the first copy, as
    if the requests had come one by one)."""
    groups: list[list[_Job]] = []
    keys: list[set] = []
    for j in jobs:
        ids = _ids(j.scored)
        last = groups[-1] if groups else None
        same = last is not None and _rows(last[0]) == _rows(j) and last[0].actor == j.actor
        if same and not (keys[-1] & ids):
            last.append(j)
            keys[-1] |= ids
        else:
            groups.append([j])
            keys.append(ids)
    return groups


def _rows(job: _Job) -> bool:
    return isinstance(job.scored, list)


def _ids(scored) -> set[str]:
    if isinstance(scored, list):
        return {str(r["claim_id"]) for r in scored}
    return set(scored["claim_id"].astype(str))


def _merge(jobs: list[_Job]) -> tuple:
    """Several requests' rows (no claim key in two of them, all frames or all records) as one
    batch."""
    if len(jobs) == 1:
        j = jobs[0]
        return j.scored, j.tables, j.frame
    if _rows(jobs[0]):
        names = {n for j in jobs for n, t in j.tables.items() if t is not None}
        tables = {n: [r for j in jobs for r in j.tables.get(n) or ()] for n in names}
        frames = [j.frame for j in jobs if j.frame is not None]
        frame = [r for f in frames for r in f] if len(frames) == len(jobs) else None
        return [r for j in jobs for r in j.scored], tables, frame
    names = {n for j in jobs for n, t in j.tables.items() if t is not None}
    tables = {
        n: pd.concat([j.tables[n] for j in jobs if j.tables.get(n) is not None], ignore_index=True)
        for n in names
    }
    frames = [j.frame for j in jobs if j.frame is not None]
    frame = pd.concat(frames, ignore_index=True) if len(frames) == len(jobs) else None
    return pd.concat([j.scored for j in jobs], ignore_index=True), tables, frame
