"""The service's window gauges (serving.metrics): band shares, the risk score and the rejection
rate over the last N claims received; in process on a fresh registry, and over HTTP on the real
service's /metrics."""

import pytest
from prometheus_client import CollectorRegistry

from serving.metrics import Metrics


def _out(bands_risks, errors=0):
    return {"scored": [{"band": b, "risk_score": r} for b, r in bands_risks],
            "errors": [{"index": i} for i in range(errors)]}  # fmt: skip


def test_window_gauges_follow_the_last_claims():
    reg = CollectorRegistry()
    m = Metrics(window=10, registry=reg)

    def value(name, **labels):
        return reg.get_sample_value(name, labels)

    m.observe(_out([("high", 0.9), ("low", 0.1), ("low", 0.2), ("review", 0.5)], errors=1), 0.01)
    assert value("claimradar_window_claims") == 5
    assert value("claimradar_window_rejection_rate") == pytest.approx(1 / 5)
    assert value("claimradar_window_band_share", band="low") == pytest.approx(2 / 4)
    assert value("claimradar_window_band_share", band="high") == pytest.approx(1 / 4)
    assert value("claimradar_window_band_share", band="watch") == 0
    assert value("claimradar_window_risk_score", stat="mean") == pytest.approx(1.7 / 4)
    assert value("claimradar_window_risk_score", stat="p50") == pytest.approx(0.35)
    # ten more low-risk claims push the first ones out of the window
    m.observe(_out([("low", 0.05)] * 10), 0.01)
    assert value("claimradar_window_claims") == 10
    assert value("claimradar_window_rejection_rate") == 0
    assert value("claimradar_window_band_share", band="low") == 1
    assert value("claimradar_window_risk_score", stat="p99") == pytest.approx(0.05)
    # the counters still count everything
    assert value("claimradar_scored_claims_total", band="low") == 12
    assert value("claimradar_rejected_claims_total") == 1


def test_window_gauges_on_the_service_metrics(service, sim_dataset):
    from claims_json import claims_json

    claims = claims_json(sim_dataset.parent / "tabular", 12)
    with service.client() as c:
        r = c.post("/score", json={"claims": [*claims, dict(claims[0], NGAY_RA="x")]})
        assert r.status_code == 200
        text = c.get("/metrics").text
    samples = {}
    for line in text.splitlines():
        if line.startswith("claimradar_window_"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    shares = [v for k, v in samples.items() if k.startswith("claimradar_window_band_share{")]
    assert len(shares) == 4 and sum(shares) == pytest.approx(1.0)
    assert samples["claimradar_window_claims"] >= 13
    assert 0 < samples["claimradar_window_rejection_rate"] < 1
    assert 0 <= samples['claimradar_window_risk_score{stat="mean"}'] <= 1


def test_window_gauges_recomputed_at_most_every_interval_and_then_caught_up():
    """The service recomputes the window at most once a second (a recomputation walks the whole
    window); the claims observed in between are shown once the interval has passed, with no
    further request."""
    import time

    reg = CollectorRegistry()
    m = Metrics(window=10, registry=reg, every=0.3)

    def claims():
        return reg.get_sample_value("claimradar_window_claims")

    m.observe(_out([("high", 0.9)]), 0.01)
    assert claims() == 1  # the first request is shown at once
    m.observe(_out([("low", 0.1), ("low", 0.2)]), 0.01)
    assert claims() == 1  # within the interval: not recomputed
    deadline = time.monotonic() + 10
    while claims() != 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert claims() == 3
    assert reg.get_sample_value("claimradar_window_band_share", {"band": "low"}) == 2 / 3
    # the counters are not throttled
    assert reg.get_sample_value("claimradar_scored_claims_total", {"band": "low"}) == 2


def test_requests_scored_together_are_counted():
    from serving.combine import Combiner

    reg = CollectorRegistry()
    m = Metrics(registry=reg)
    comb = Combiner(lambda key, payloads: list(payloads), observe=m.batch)
    key = object()
    assert comb.run(key, {"1"}, "a") == "a"
    assert reg.get_sample_value("claimradar_requests_per_batch_count") == 1
    assert reg.get_sample_value("claimradar_requests_per_batch_bucket", {"le": "1.0"}) == 1
    m.batch(5)
    assert reg.get_sample_value("claimradar_requests_per_batch_sum") == 6
    assert reg.get_sample_value("claimradar_requests_per_batch_bucket", {"le": "4.0"}) == 1
