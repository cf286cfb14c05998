"""The public API: simulate(), SCHEMES, determinism, validation of arguments."""

from __future__ import annotations

import pandas as pd
import pytest

from simulator import SCHEMES, SimulationResult, simulate

FILES = ("xml1", "xml2", "xml3", "facilities", "labels", "truth", "truth_lines", "truth_actors")


def test_schemes_have_rates_and_descriptions():
    assert len(SCHEMES) == 13
    for name, s in SCHEMES.items():
        assert 0 < s.rate < 0.05 and len(s.description) > 20, name
        assert s.actor in ("facility", "clinician", "patient", "card")


def test_same_seed_same_world_other_seed_other_world(tmp_path):
    a = simulate(tmp_path / "a", 4_000, months=3, seed=9)
    b = simulate(tmp_path / "b", 4_000, months=3, seed=9)
    c = simulate(tmp_path / "c", 4_000, months=3, seed=10)
    assert isinstance(a, SimulationResult) and a.claims == b.claims == 4_000
    for f in FILES:
        pd.testing.assert_frame_equal(pd.read_parquet(a.paths[f]), pd.read_parquet(b.paths[f]))
    assert (tmp_path / "a" / "manifest.json").read_text() == (
        tmp_path / "b" / "manifest.json"
    ).read_text()
    x_a = pd.read_parquet(a.paths["xml1"])
    x_c = pd.read_parquet(c.paths["xml1"])
    assert not x_a["T_BHTT"].equals(x_c["T_BHTT"])


def test_progress_and_counts(tmp_path):
    seen = []
    r = simulate(
        tmp_path / "w", 3_000, months=2, start="2025-11", progress=lambda s, f: seen.append((s, f))
    )
    fr = [f for _, f in seen]
    assert fr == sorted(fr) and fr[-1] == 1.0 and len(seen) >= 5
    x1 = pd.read_parquet(r.paths["xml1"])
    assert len(x1) == r.claims == 3_000
    assert x1["NGAY_VAO"].str[:6].isin(["202511", "202512"]).all()
    assert r.drug_lines == len(pd.read_parquet(r.paths["xml2"]))
    assert r.calibration is None
    assert "claims" in r.summary()


def test_no_schemes_means_no_abuse(tmp_path):
    r = simulate(tmp_path / "w", 3_000, months=2, schemes={k: 0.0 for k in SCHEMES})
    assert r.abusive_claims == 0 and len(pd.read_parquet(r.paths["truth"])) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"schemes": {"bogus": 0.1}}, "unknown scheme"),
        ({"schemes": {"ghost": 0.9}}, "between"),
        ({"start": "2025/01"}, "YYYY-MM"),
        ({"months": 0}, "months"),
        ({"claims": 10}, "at least"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    args = {"out": tmp_path / "w", "claims": 1_000} | kwargs
    with pytest.raises(ValueError, match=match):
        simulate(**args)


def test_every_claim_starts_inside_the_period(abusive):
    month = abusive.xml1["NGAY_VAO"].str[:6]
    assert month.min() == "202501" and month.max() == "202512"
