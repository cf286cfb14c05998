"""Prometheus counters of the scoring service, published on BentoML's /metrics.

Created inside the worker (not at import): BentoML sets PROMETHEUS_MULTIPROC_DIR when a worker
starts, and prometheus_client must see it to write where /metrics reads.
"""

from __future__ import annotations


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.claims = Counter("claimradar_scored_claims", "Claims scored, by band.", ["band"])
        self.rejected = Counter(
            "claimradar_rejected_claims", "Claims refused with field-level errors."
        )
        self.errors = Counter(
            "claimradar_request_errors", "Requests refused as a whole, by kind.", ["kind"]
        )
        self.seconds = Histogram(
            "claimradar_scoring_seconds",
            "Time to validate, featurize and score one request.",
            buckets=(0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30),
        )

    def observe(self, out: dict, seconds: float) -> None:
        for r in out["scored"]:
            self.claims.labels(band=r["band"]).inc()
        if out["errors"]:
            self.rejected.inc(len(out["errors"]))
        self.seconds.observe(seconds)

    def error(self, kind: str) -> None:
        self.errors.labels(kind=kind).inc()
