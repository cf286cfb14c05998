"""Prometheus counters of the scoring service, published on BentoML's /metrics.

Created inside the worker (not at import): BentoML sets PROMETHEUS_MULTIPROC_DIR when a worker
starts, and prometheus_client must see it to write where /metrics reads.

Besides the counters, gauges over a window of the last `window` claims the worker received (issue
16, the same key figures `claimradar monitor` reports per month): the share of each band, the
risk score's mean and quantiles, and the share of claims refused with field-level errors. With
several workers each keeps its own window; /metrics shows the most recently updated one.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

BANDS = ("high", "review", "watch", "low")
QUANTILES = (0.5, 0.9, 0.99)


class Metrics:
    def __init__(self, window: int = 1000, registry=None) -> None:
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
            seen = list(self._window)
        scored = [x for x in seen if x is not None]
        n = len(seen)
        self.window_claims.set(n)
        self.rejection_rate.set((n - len(scored)) / n if n else 0.0)
        for b in BANDS:
            self.band_share.labels(band=b).set(
                sum(1 for band, _ in scored if band == b) / len(scored) if scored else 0.0
            )
        risk = np.array([r for _, r in scored], dtype="float64")
        if len(risk):
            self.score.labels(stat="mean").set(float(risk.mean()))
            for q, v in zip(QUANTILES, np.quantile(risk, QUANTILES), strict=True):
                self.score.labels(stat=f"p{round(q * 100):d}").set(float(v))

    def error(self, kind: str) -> None:
        self.errors.labels(kind=kind).inc()
