"""Point-in-time profiles on hand-made claims: patient windows end the day before, ties on the
same day never see each other, monthly profiles come from the previous month, peers from
previous months only."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from handmade import EXAM, card, dataset, episode, sline

from features.pipeline import build_features
from features.profiles import PEER_MIN


def visit(ma_lk, n, when, facility="49001", price=38_700, clinician=None, **kw):
    """A one-hour outpatient exam (yyyyMMddHHmm) on card n."""
    end = when[:8] + f"{int(when[8:10]) + 1:02d}" + when[10:]
    return episode(ma_lk, card_no=card(n), start=when, end=end, vt="01", drugs=[],
                   services=[sline(**EXAM, price=price)], facility=facility,
                   clinician=clinician or f"{n:06d}/QNA-CCHN", **kw)  # fmt: skip


@pytest.fixture(scope="module")
def frame(tmp_path_factory) -> pd.DataFrame:
    eps = [
        # one patient: two visits on 3 March (two facilities), then 8 March, then 12 April
        visit("A1", 1, "202503030800"),
        visit("A2", 1, "202503031400", facility="49002"),
        visit("A3", 1, "202503080800"),
        visit("A4", 1, "202504120800"),
        # a facility's February and March: February costs set the March profile
        *[visit(f"F2{i}", 10 + i, f"202502{10 + i:02d}0900", facility="49003",
                price=50_000 + 10_000 * i) for i in range(3)],
        *[visit(f"F3{i}", 20 + i, f"202503{10 + i:02d}0900", facility="49003",
                price=500_000) for i in range(3)],
        # peers: J06 exams at level T in January (enough of them), judged in February
        *[visit(f"PJ{i:02d}", 40 + i, f"202501{1 + i:02d}1000", price=40_000 + 100 * i,
                MA_BENH_CHINH="J06.9") for i in range(PEER_MIN + 2)],
        visit("PF1", 90, "202502050800", price=400_000, MA_BENH_CHINH="J06.9"),
        visit("PF2", 91, "202501250800", price=400_000, MA_BENH_CHINH="J06.9"),
    ]  # fmt: skip
    return build_features(dataset(tmp_path_factory.mktemp("profiles"), eps)).set_index("claim_id")


def test_patient_windows_end_the_day_before(frame):
    f = frame
    # the two visits of 3 March never count each other, whatever their order
    assert f.at["A1", "pat_visits_7d"] == 0 and f.at["A2", "pat_visits_7d"] == 0
    assert math.isnan(f.at["A2", "pat_days_since_last"])
    assert f.at["A3", "pat_visits_7d"] == 2 and f.at["A3", "pat_days_since_last"] == 5
    assert f.at["A3", "pat_facilities_90d"] == 2
    assert f.at["A3", "pat_days_since_last_here"] == 5
    # 12 April: 8 March is 35 days back, 3 March 40
    assert f.at["A4", "pat_visits_30d"] == 0 and f.at["A4", "pat_visits_90d"] == 3
    assert f.at["A4", "pat_cost_90d"] == pytest.approx(3 * 38_700)


def test_facility_profile_is_the_previous_month(frame):
    f = frame
    feb_mean = (50_000 + 60_000 + 70_000) / 3
    for i in range(3):
        assert f.at[f"F3{i}", "fac_cost_per_visit_prev"] == pytest.approx(feb_mean)
        assert f.at[f"F3{i}", "fac_claims_prev_month"] == 3
        assert f.at[f"F3{i}", "fac_inpatient_share"] == 0
    # February itself has no earlier month
    assert math.isnan(f.at["F20", "fac_cost_per_visit_prev"])
    # the rolling window sees the facility's February-March change within March
    assert f.at["F32", "fac_cost_mean_7d"] == pytest.approx(500_000)
    assert f.at["F32", "fac_cost_shift_7d"] == pytest.approx(500_000 / feb_mean)
    assert f.at["F32", "fac_cost_mean_30d"] == pytest.approx((180_000 + 1_000_000) / 5)


def test_peer_deviation_uses_previous_months_only(frame):
    f = frame
    jan = pd.Series([40_000 + 100 * i for i in range(PEER_MIN + 2)] + [400_000])
    assert f.at["PF1", "peer_n"] == len(jan)
    assert f.at["PF1", "peer_median_total_cost"] == pytest.approx(jan.median())
    assert f.at["PF1", "peer_ratio_total_cost"] == pytest.approx(400_000 / jan.median())
    assert f.at["PF1", "peer_z_total_cost"] > 10
    # January claims have no earlier month: no peer comparison
    assert f.at["PF2", "peer_n"] == 0 and math.isnan(f.at["PF2", "peer_z_total_cost"])


def test_clinician_windows_count_up_to_the_claim(frame):
    f = frame
    assert f.at["A1", "clin_claims_hour"] == 1 and f.at["A1", "clin_claims_today"] == 1
    # A1 and A2 share the card (and the default clinician of card 1): A2 sees A1 that day
    assert f.at["A2", "clin_claims_today"] == 2
