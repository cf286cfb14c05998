"""The honest world looks like care in a province: levels, workloads, referrals, seasons."""

from __future__ import annotations

import numpy as np
import pandas as pd


def test_facilities_of_every_level(sim_world):
    f = sim_world.facilities
    assert set(f["TUYEN"]) == {"TW", "T", "H", "X"}
    assert set(f["LOAI_HINH"]) == {"CONG_LAP", "TU_NHAN"}
    assert f["MA_CSKCB"].is_unique and f["MA_CSKCB"].str.fullmatch(r"49[0-9A-Z]{3}").all()
    assert (
        f.loc[f["TUYEN"] == "X", "SO_GIUONG"] < f.loc[f["TUYEN"] == "H", "SO_GIUONG"].min()
    ).all()


def test_clinician_workloads_are_realistic(sim_world):
    x = sim_world.xml3.merge(sim_world.xml1[["MA_LK", "NGAY_VAO"]], on="MA_LK")
    exams = x[x["MA_NHOM"] == 13]
    per_day = exams.groupby([exams["MA_BAC_SI"], exams["NGAY_VAO"].str[:8]]).size()
    assert per_day.quantile(0.99) < 80
    assert 2 <= per_day.median() <= 40


def test_referrals_go_up_the_levels(sim_world):
    x = sim_world.xml1
    lvl = sim_world.facilities.set_index("MA_CSKCB")["TUYEN"]
    origin = x[x["MA_NOI_DEN"].notna() & ~x["MA_LK"].isin(sim_world.truth["MA_LK"])]
    assert len(origin) and (origin["MA_LOAI_RV"] == 2).all()
    assert origin["MA_NOI_DEN"].map(lvl).isin(["T", "TW"]).all()
    target = x[x["MA_DOITUONG_KCB"] == "1.3"]
    assert target["GIAY_CHUYEN_TUYEN"].notna().all() and target["MA_NOI_DI"].notna().all()
    pair = origin.merge(
        target,
        left_on=["MA_THE_BHYT", "MA_NOI_DEN"],
        right_on=["MA_THE_BHYT", "MA_CSKCB"],
        suffixes=("_o", "_t"),
    )
    ts = lambda s: pd.to_datetime(s, format="%Y%m%d%H%M")  # noqa: E731
    gap = ts(pair["NGAY_VAO_t"]) - ts(pair["NGAY_RA_o"])
    close = pair[(gap > pd.Timedelta(0)) & (gap < pd.Timedelta(days=2))]
    assert close["MA_LK_o"].nunique() > 0.9 * len(origin)


def test_seasons_and_chronic_monthly_visits(sim_world):
    x = sim_world.xml1
    month = x["NGAY_VAO"].str[4:6]
    resp = x["MA_BENH_CHINH"].str.startswith("J")
    assert resp[month == "01"].mean() > 1.2 * resp[month == "07"].mean()
    dengue = x["MA_BENH_CHINH"] == "A97.0"
    assert dengue[month == "09"].mean() > 1.5 * dengue[month == "03"].mean()
    ch = x[x["MA_LOAI_KCB"] == "05"].sort_values(["MA_THE_BHYT", "NGAY_VAO"])
    gap = pd.to_datetime(ch["NGAY_VAO"].str[:8]).groupby(ch["MA_THE_BHYT"]).diff().dt.days
    assert 29 <= gap.median() <= 34


def test_private_facilities_charge_the_patient_the_difference(sim_world):
    x = sim_world.xml1.merge(sim_world.facilities[["MA_CSKCB", "LOAI_HINH"]], on="MA_CSKCB")
    private = x["LOAI_HINH"] == "TU_NHAN"
    assert (x.loc[private, "T_BNTT"] > 0).mean() > 0.9
    assert (x.loc[~private, "T_BNTT"] > 0).mean() < 0.2
    assert np.isin(x["MA_DOITUONG_KCB"].unique(), ["1.1", "1.2", "1.3", "2", "3.1", "3.2"]).all()
