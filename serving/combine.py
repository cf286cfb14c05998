"""Concurrent small requests scored together: the requests of a worker that wait while one is being
scored are taken as one batch by the next (the group commit of serving.writer, for the features
and the model). One claim scored alone costs ~3x its share of a batch of ten (the per-key state's
lock, LightGBM's and TreeSHAP's fixed cost per call, the rules' column views), and under load a
worker's request threads queue on the state's lock anyway; taken together they queue once.

Nothing waits for company: a request that finds no batch running is scored at once, alone, so a
lone client sees no added latency. A batch holds only requests for the same served model and no
claim key twice (a claim sent again is scored after its first copy, as if the requests had come
one by one), at most `max_claims` claims. When a batch fails, each of its requests is scored
again alone, so one request's failure is its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class _Job:
    key: Hashable  # requests of one key (the same object) may share a batch
    ids: frozenset  # the request's claim keys
    payload: Any
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = max(len(self.ids), 1)


class Combiner:
    """Runs `score(key, payloads) -> results` (one result per payload, in order) over the
    requests waiting together."""

    def __init__(
        self,
        score: Callable[[Hashable, list], Sequence],
        max_claims: int = 128,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        """observe: called with the number of requests of each batch scored (the service's
        /metrics: serving.metrics.Metrics.batch)."""
        self._score, self.max_claims, self.observe = score, max_claims, observe
        self._cond = threading.Condition()
        self._pending: list[_Job] = []
        self._busy = False
        self.batches = 0  # score calls so far
        self.combined = 0  # requests scored in a batch of more than one

    def run(self, key: Hashable, ids, payload) -> Any:
        """The result of scoring `payload` (claim keys `ids`), maybe beside other requests';
        raises what scoring it raised."""
        job = _Job(key, frozenset(ids), payload)
        with self._cond:
            self._pending.append(job)
            while self._busy and not job.done:
                self._cond.wait()
            if not job.done:  # nobody is scoring: this thread scores what waits, its own too
                self._busy = True
                taken, self._pending = self._pending, []
        if not job.done:
            try:
                for group in batches(taken, self.max_claims):
                    self._run(group)
            finally:  # none of the requests taken may wait for an answer that will not come
                for j in taken:
                    if not j.done:
                        j.error, j.done = RuntimeError("the batch was not scored"), True
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
        if job.error is not None:
            raise job.error
        return job.result

    def _run(self, group: list[_Job]) -> None:
        try:
            got = self._score(group[0].key, [j.payload for j in group])
            if len(got) != len(group):
                raise RuntimeError(f"{len(got)} results for {len(group)} requests")
            self.batches += 1
            self.combined += len(group) if len(group) > 1 else 0
            if self.observe is not None:
                self.observe(len(group))
            for j, r in zip(group, got, strict=True):
                j.result, j.done = r, True
        except Exception as e:
            if len(group) == 1:
                group[0].error, group[0].done = e, True
                return
            for j in group:  # alone: a failure stays with the request that causes it
                self._run([j])


def batches(jobs: list[_Job], max_claims: int) -> list[list[_Job]]:
    """Jobs in arrival order gathered into batches: one key each, no claim key twice, at most
    max_claims claims (a request is never split). A job joins the first open batch it fits
    after every batch holding one of its claim keys, so a claim's copies keep their order."""
    out: list[list[_Job]] = []
    keys: list[set] = []
    sizes: list[int] = []
    for j in jobs:
        after = max((i for i, k in enumerate(keys) if k & j.ids), default=-1)
        for i in range(after + 1, len(out)):
            if out[i][0].key is j.key and sizes[i] + j.size <= max_claims:
                out[i].append(j)
                keys[i] |= j.ids
                sizes[i] += j.size
                break
        else:
            out.append([j])
            keys.append(set(j.ids))
            sizes.append(j.size)
    return out
