"""Facility early warning: a facility whose cost per visit jumps against its trend and its peers
is listed first, with the evidence; steady facilities are not flagged."""

from __future__ import annotations

import pytest

from features.early_warning import facility_warnings


def test_a_facility_billing_double_is_flagged(world):
    c = world["claims"]
    target = c["facility_id"].value_counts().index[0]  # the busiest facility
    june = (c["facility_id"] == target) & (c["admitted_at"] >= "2025-06-01")
    tables = dict(world)
    tables["claims"] = c.assign(total_cost=c["total_cost"].where(~june, c["total_cost"] * 2))
    w = facility_warnings(tables, "2025-06")
    assert w.iloc[0]["facility_id"] == target and bool(w.iloc[0]["warning"])
    assert w.iloc[0]["growth_vs_trend"] == pytest.approx(1.0, abs=0.35)
    assert w["warning"].sum() == 1
    for col in ("cost_per_visit", "cost_per_visit_trend", "peer_growth_median", "robust_z"):
        assert w[col].notna().all(), col


def test_an_honest_month_and_bad_arguments(world):
    w = facility_warnings(world, "2025-05")
    assert len(w) == world["claims"]["facility_id"].nunique()
    with pytest.raises(ValueError, match="YYYY-MM"):
        facility_warnings(world, "May 2025")
    with pytest.raises(ValueError, match="no claims"):
        facility_warnings(world, "2030-01")
