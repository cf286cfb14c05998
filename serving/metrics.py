"""Prometheus counters of the scoring service, published on BentoML's /metrics.

Created inside the worker (not at import): BentoML sets PROMETHEUS_MULTIPROC_DIR when a worker
starts, and prometheus_client must see it to write where /metrics reads.

Besides the counters, gauges over a window of the last `window` claims the worker received (issue
16, the same key figures `claimradar monitor` reports per month): the share of each band, the
risk score's mean and quantiles, and the share of claims refused with field-level errors. With
several workers each keeps its own window; /metrics shows the most recently updated one. The gauges
are recomputed at most every `every` seconds (the service: 1 s, far below a scrape interval): a
recomputation walks the whole window (its quantiles, band shares), which per request cost ~10% of a
busy worker's CPU; the claims of the requests in between are in the window and counted at the
next recomputation, which a flusher thread runs once the interval has passed.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

BANDS = ("high", "review", "watch", "low")
QUANTILES = (0.5, 0.9, 0.99)


class Metrics:
    def __init__(self, window: int = 1000, registry=None, every: float = 0.0) -> None:
        """every: seconds between recomputations of the window gauges (0: at every request)."""
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        reg = {"registry": registry if registry is not None else REGISTRY}

        self.claims = Counter(
            "claimradar_scored_claims", "Claims scored, by band.", ["band"], **reg
        )
        self.rejected = Counter(
            "claimradar_rejected_claims", "Claims refused with field-level errors.", **reg
        )
        self.errors = Counter(
            "claimradar_request_errors", "Requests refused as a whole, by kind.", ["kind"], **reg
        )
        self.seconds = Histogram(
            "claimradar_scoring_seconds",
            "Time to validate, featurize and score one request.",
            buckets=(0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30),
            **reg,
        )
        self.together = Histogram(
            "claimradar_requests_per_batch",
            "Requests scored in one batch: more than one when concurrent requests were scored "
            "together (serving.combine).",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            **reg,
        )
        live = {"multiprocess_mode": "livemostrecent", **reg}
        self.band_share = Gauge(
            "claimradar_window_band_share",
            "Share of the window's scored claims in each band.",
            ["band"],
            **live,
        )
        self.score = Gauge(
            "claimradar_window_risk_score",
            "Risk score over the window's scored claims: mean and quantiles.",
            ["stat"],
            **live,
        )
        self.rejection_rate = Gauge(
            "claimradar_window_rejection_rate",
            "Share of the window's claims refused with field-level errors.",
            **live,
        )
        self.window_claims = Gauge(
            "claimradar_window_claims", "Claims received in the window (scored + refused).", **live
        )
        # the window: (band, risk score) of a scored claim, or None for a refused one
        self._window: deque = deque(maxlen=window)
        self._lock = threading.Lock()
        self.every = every
        self._last = float("-inf")  # when the gauges were last recomputed (monotonic)
        self._pending = threading.Event()  # claims in the window the gauges do not show yet
        self._flusher: threading.Thread | None = None

    def observe(self, out: dict, seconds: float) -> None:
        for r in out["scored"]:
            self.claims.labels(band=r["band"]).inc()
        if out["errors"]:
            self.rejected.inc(len(out["errors"]))
        self.seconds.observe(seconds)
        self._slide(out)

    def _slide(self, out: dict) -> None:
        with self._lock:
            self._window.extend((r["band"], float(r["risk_score"])) for r in out["scored"])
            self._window.extend(None for _ in out["errors"])
            due = time.monotonic() - self._last >= self.every
            if due:
                self._last = time.monotonic()
        if due:
            self._gauges()
            return
        self._pending.set()
        if self._flusher is None:
            with self._lock:
                if self._flusher is None:
                    self._flusher = threading.Thread(
                        target=self._flush, name="metrics-window", daemon=True
                    )
                    self._flusher.start()

    def _flush(self) -> None:
        """Recompute the gauges once the interval has passed, while requests come in between."""
        while True:
            self._pending.wait()
            time.sleep(max(0.0, self._last + self.every - time.monotonic()))
            self._pending.clear()
            with self._lock:
                self._last = time.monotonic()
            self._gauges()

    def _gauges(self) -> None:
        with self._lock:
            seen = list(self._window)
        scored = [x for x in seen if x is not None]
        n = len(seen)
        self.window_claims.set(n)
        self.rejection_rate.set((n - len(scored)) / n if n else 0.0)
        counts = dict.fromkeys(BANDS, 0)
        for band, _ in scored:
            counts[band] = counts.get(band, 0) + 1
        for b in BANDS:
            self.band_share.labels(band=b).set(counts[b] / len(scored) if scored else 0.0)
        risk = np.fromiter((r for _, r in scored), dtype="float64", count=len(scored))
        if len(risk):
            self.score.labels(stat="mean").set(float(risk.mean()))
            for q, v in zip(QUANTILES, np.quantile(risk, QUANTILES), strict=True):
                self.score.labels(stat=f"p{round(q * 100):d}").set(float(v))

    def batch(self, requests: int) -> None:
        self.together.observe(requests)

    def error(self, kind: str) -> None:
        self.errors.labels(kind=kind).inc()
