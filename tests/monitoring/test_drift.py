"""The drift measures on hand-made samples: PSI, the tests, the baseline of the training months,
share changes, and the data-quality counts of a rejections table."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from claimradar.cli import app
from monitoring import drift
from monitoring.quality import data_quality


def test_psi_is_zero_for_the_same_sample_and_grows_with_the_shift():
    rng = np.random.default_rng(0)
    ref = pd.Series(rng.normal(size=5000))
    assert drift.psi_of(ref, ref) == pytest.approx(0.0, abs=1e-12)
    small = drift.column_drift(ref, pd.Series(rng.normal(0.1, size=2000)))
    large = drift.column_drift(ref, pd.Series(rng.normal(0.8, size=2000)))
    assert 0 < small["psi"] < 0.05 < 0.25 < large["psi"]
    assert large["test"] == "ks" and large["p_value"] < 1e-10
    assert large["cur_mean"] == pytest.approx(0.8, abs=0.1)


def test_missing_values_are_a_bin_of_their_own():
    ref = pd.Series([1.0, 2.0, 3.0, 4.0] * 250)
    cur = pd.Series([1.0, 2.0, np.nan, np.nan] * 250)
    bins = drift.numeric_bins(ref, cur)
    assert bins.loc[bins["bin"] == drift.MISSING, "cur"].item() == 500
    assert drift.psi(bins) > 1


def test_categories_use_chi_square():
    ref = pd.Series(["a"] * 500 + ["b"] * 500)
    same = drift.column_drift(ref, pd.Series(["a"] * 250 + ["b"] * 250), categorical=True)
    moved = drift.column_drift(ref, pd.Series(["a"] * 100 + ["b"] * 300 + ["c"] * 100), True)
    assert same["test"] == "chi2" and same["psi"] == pytest.approx(0, abs=1e-12)
    assert same["p_value"] > 0.5 and moved["p_value"] < 1e-6 and moved["psi"] > 0.25


def test_baseline_is_the_training_months_own_swing():
    rng = np.random.default_rng(1)
    months = pd.Series(np.repeat(["2025-01", "2025-02", "2025-03"], 1000))
    steady = pd.DataFrame({"x": rng.normal(size=3000)})
    swinging = pd.DataFrame({"x": rng.normal(size=3000) + np.repeat([0.0, 1.0, 2.0], 1000)})
    b_steady = drift.baseline_psi(steady, months, ["2025-02", "2025-03"], "x", False)
    b_swing = drift.baseline_psi(swinging, months, ["2025-02", "2025-03"], "x", False)
    assert b_steady < 0.05 < 0.5 < b_swing
    assert drift.baseline_psi(steady, months, [], "x", False) == 0.0


def test_share_change_with_a_z_test():
    same = drift.share_change(50, 1000, 10, 200)
    up = drift.share_change(10, 1000, 30, 200)
    assert same["change"] == pytest.approx(0) and same["p_value"] > 0.9
    assert up["cur_share"] == pytest.approx(0.15) and up["p_value"] < 1e-6


def _rejection(claim_id, table, field, facility=None, day=None):
    rec = {k: v for k, v in (("MA_CSKCB", facility), ("NGAY_VAO", day)) if v}
    rec["HO_TEN"] = "Nguyen Van A"  # personal data in the refused record: never reported
    return {"claim_id": claim_id, "table": table, "field": field, "error": "bad",
            "record_json": json.dumps(rec)}  # fmt: skip


def test_data_quality_counts_refused_claims_per_facility_and_field():
    rej = pd.DataFrame(
        [_rejection(f"A{i}", "claims", "GIOI_TINH", "01001", "202507011000") for i in range(6)]
        + [_rejection("A0", "drug_lines", "SO_LUONG")]
        + [_rejection("B1", "claims", "NGAY_RA", "01002", "202507150800")]
        + [_rejection("C1", "claims", "NGAY_RA", "01001", "202506150800")]  # another month
        + [_rejection("D1", "claims", "NGAY_VAO", "01001")]  # no readable date
    )
    kept = pd.DataFrame({"claim_id": [f"K{i}" for i in range(30)],
                         "facility_id": ["01001"] * 14 + ["01002"] * 16})  # fmt: skip
    q = data_quality(rej, kept, "2025-07", facility_rate=0.2, facility_min_claims=20)
    assert (q["claims"], q["rejected_claims"], q["undated_rejected_claims"]) == (37, 7, 1)
    assert q["rejection_rate"] == pytest.approx(7 / 37)
    fac = {f["facility_id"]: f for f in q["by_facility"]}
    assert fac["01001"]["rejected"] == 6 and fac["01001"]["rate"] == pytest.approx(0.3)
    assert fac["01001"]["over"] and not fac["01002"]["over"]
    fields = {(f["table"], f["field"]): f["claims"] for f in q["by_field"]}
    assert fields == {("claims", "GIOI_TINH"): 6, ("drug_lines", "SO_LUONG"): 1,
                      ("claims", "NGAY_RA"): 1}  # fmt: skip
    assert "Nguyen" not in json.dumps(q)


@pytest.mark.parametrize("month", ["2025-13", "July", "2025-7"])
def test_monitor_refuses_a_bad_month(tmp_path, month):
    r = CliRunner().invoke(app, ["monitor", str(tmp_path), "--month", month])
    assert r.exit_code == 2 and "YYYY-MM" in r.output and "Traceback" not in r.output
