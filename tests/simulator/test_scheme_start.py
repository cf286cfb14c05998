"""simulate(scheme_start=...): a scheme that starts in a given month has no claim before it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from simulator import simulate


def test_scheme_starts_in_the_given_month(tmp_path):
    base = simulate(tmp_path / "a", 12_000, months=6, start="2025-01", seed=4)
    r = simulate(
        tmp_path / "b",
        12_000,
        months=6,
        start="2025-01",
        seed=4,
        scheme_start={"needless_tests": "2025-04", "ghost": "2025-05"},
    )
    truth = pd.read_parquet(r.paths["truth"]).merge(
        pd.read_parquet(r.paths["xml1"])[["MA_LK", "NGAY_VAO"]], on="MA_LK"
    )
    month = truth["NGAY_VAO"].str[:6]
    for scheme, first in (("needless_tests", "202504"), ("ghost", "202505")):
        own = month[truth["scheme"] == scheme]
        assert len(own) > 0 and (own >= first).all(), scheme
    # other schemes still run from the first month
    assert (month[truth["scheme"] == "padded_stay"] < "202504").any()
    actors = pd.read_parquet(r.paths["truth_actors"])
    assert (actors.loc[actors["scheme"] == "needless_tests", "start_month"] >= "2025-04").all()
    # the monthly rate is kept: half the months, about half the claims
    assert r.by_scheme["needless_tests"] == pytest.approx(base.by_scheme["needless_tests"] / 2, 0.1)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["scheme_start"] == {"ghost": "2025-05", "needless_tests": "2025-04"}


@pytest.mark.parametrize(
    ("start", "match"),
    [
        ({"bogus": "2025-02"}, "unknown scheme"),
        ({"ghost": "2024-12"}, "within"),
        ({"ghost": "May"}, "YYYY-MM"),
    ],
)
def test_bad_scheme_start(tmp_path, start, match):
    with pytest.raises(ValueError, match=match):
        simulate(tmp_path / "w", 2_000, months=3, start="2025-01", scheme_start=start)
