"""Shadow scoring: while a challenger is registered beside the champion, the service scores every
request with it too and records its scores in the case store beside the champion's (no case is
opened for them), so `claimradar compare` can judge it on live claims. The response is the
champion's alone: the challenger scores after the answer, on its own thread, and a busy shadow
drops requests rather than slow the service (counted in `dropped`).

The shadow keeps its own per-key online state in memory, never the served model's (a shared
Redis state would otherwise remember each claim twice).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from scoring import registry
from serving.online import ScoringState

log = logging.getLogger("claimradar.shadow")


class ShadowState(ScoringState):
    """A ScoringState that loads the registry's challenger when a champion also exists (and is
    another version), else nothing; its writes open no case."""

    def __init__(self, *args, max_pending: int = 8, **kwargs) -> None:
        kwargs["online_store"] = "memory"
        super().__init__(*args, **kwargs)
        if self.writer is not None:
            from serving.writer import CaseWriter

            self.writer.close()
            self.writer = CaseWriter(self.store, open_bands=())
        self.max_pending, self.pending, self.dropped = max_pending, 0, 0
        self._gate = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="shadow")

    def _wanted(self, client) -> tuple[int | None, str]:
        champion = registry.version_by_alias(client, "champion")
        challenger = registry.version_by_alias(client, "challenger")
        if champion is None or challenger is None or challenger == champion:
            return None, "challenger"
        return challenger, "challenger"

    def load(self):
        client = registry.connect(self.tracking_uri, self.artifact_root)
        if self._wanted(client)[0] is None:  # promoted, or no challenger: nothing to shadow
            self.served = None
            return None
        return super().load()

    def submit(self, kind: str, payload, actor: str) -> bool:
        """Score `payload` (claims for kind "records", envelope bytes for "envelope") in the
        background; False when there is no challenger or the shadow is busy."""
        served = self.served
        if served is None:
            return False
        with self._gate:
            if self.pending >= self.max_pending:
                self.dropped += 1
                return False
            self.pending += 1
        self._pool.submit(self._run, kind, payload, actor, served)
        return True

    def _run(self, kind: str, payload, actor: str, served) -> None:
        try:
            if kind == "records":
                self.score_records(payload, actor=f"shadow:{actor}", served=served)
            else:
                self.score_envelope(payload, f"shadow:{actor}", served)
        except Exception:  # the champion answered; a shadow failure only costs its record
            log.exception("shadow scoring with v%s failed", served.version)
        finally:
            with self._gate:
                self.pending -= 1

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True)  # the accepted shadow work is recorded, then the writer
        super().stop()
