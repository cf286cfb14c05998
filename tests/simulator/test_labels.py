"""Labels look like an agency's: reviewed claims only, cost- and rule-driven, late, incomplete."""

from __future__ import annotations

import pandas as pd


def test_only_reviewed_claims_and_biased_to_expensive(sim_world):
    lab, x1 = sim_world.labels, sim_world.xml1
    assert lab["MA_LK"].is_unique and lab["MA_LK"].isin(x1["MA_LK"]).all()
    assert 0.01 < len(lab) / len(x1) < 0.15
    cost = x1.set_index("MA_LK")["T_BHTT"]
    assert cost.loc[lab["MA_LK"]].mean() > 2 * cost.mean()


def test_decisions_come_weeks_later_and_before_the_end(sim_world):
    lab = sim_world.labels.merge(sim_world.xml1[["MA_LK", "NGAY_RA"]], on="MA_LK")
    decided = pd.to_datetime(lab["NGAY_KET_LUAN"], format="%Y%m%d")
    end = pd.to_datetime(lab["NGAY_RA"].str[:8], format="%Y%m%d")
    assert ((decided - end).dt.days >= 14).all()
    assert (decided - end).dt.days.median() > 28
    last = pd.to_datetime(sim_world.xml1["NGAY_VAO"].str[:6].max() + "01") + pd.offsets.MonthEnd(0)
    assert (decided <= last).all()


def test_labels_amounts_and_missed_abuse(sim_world):
    lab = sim_world.labels
    assert (lab.loc[lab["LABEL"] == 1, "T_XUATTOAN"] > 0).all()
    assert (lab.loc[lab["LABEL"] == 0, "T_XUATTOAN"] == 0).all()
    assert lab.loc[lab["LABEL"] == 1, "LY_DO"].notna().all()
    t = sim_world.truth
    reviewed_abusive = lab[lab["MA_LK"].isin(t["MA_LK"])]
    assert (reviewed_abusive["LABEL"] == 0).any(), "some abuse is missed on review"
    assert (~t["MA_LK"].isin(lab["MA_LK"])).mean() > 0.5, "most abuse is never reviewed"
    found = lab[(lab["LABEL"] == 1) & lab["MA_LK"].isin(t["MA_LK"])].merge(t, on="MA_LK")
    assert (found["T_XUATTOAN"] <= found["overbilled"] + 0.01).all()
