"""Honest claims follow the insurance arithmetic and the timing rules of xml130.md §5.2 exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contract.schema import CLAIMS, DRUG_LINES, SERVICE_LINES
from simulator import catalogue as cat


def cents(s: pd.Series) -> np.ndarray:
    return np.rint(s.to_numpy(dtype=float) * 100).astype(np.int64)


def half_up(num: np.ndarray, den: int) -> np.ndarray:
    return (num * 2 + den) // (2 * den)


@pytest.fixture(scope="module")
def honest(sim_world):
    ids = sim_world.honest_ids
    x1 = sim_world.xml1[sim_world.xml1["MA_LK"].isin(ids)]
    x2 = sim_world.xml2[sim_world.xml2["MA_LK"].isin(ids)]
    x3 = sim_world.xml3[sim_world.xml3["MA_LK"].isin(ids)]
    return x1, x2, x3


def test_line_arithmetic(honest):
    _, x2, x3 = honest
    for df, price in ((x2, "DON_GIA"), (x3, "DON_GIA_BV")):
        q2 = np.rint(df["SO_LUONG"].to_numpy() * 2).astype(np.int64)
        assert np.allclose(q2 / 2, df["SO_LUONG"]), "quantities are whole half-units"
        p = df[price].to_numpy().astype(np.int64)
        bv = q2 * p * 50
        assert (cents(df["THANH_TIEN_BV"]) == bv).all()
        bh_price = df["DON_GIA_BH"].to_numpy().astype(np.int64) if price == "DON_GIA_BV" else p
        bh = half_up(q2 * bh_price * 50 * df["TYLE_TT_BH"].to_numpy(), 100)
        assert (cents(df["THANH_TIEN_BH"]) == bh).all()
        bhtt = half_up(bh * df["MUC_HUONG"].to_numpy(), 100)
        assert (cents(df["T_BHTT"]) == bhtt).all()
        assert (cents(df["T_BNCCT"]) == bh - bhtt).all()
        assert (cents(df["T_BNTT"]) == cents(df["THANH_TIEN_BV"]) - bh).all()
        assert df["TYLE_TT_BH"].between(0, 100).all() and df["MUC_HUONG"].between(0, 100).all()


def test_claim_totals_are_sums_of_lines(honest):
    x1, x2, x3 = honest
    lines = pd.concat([x2.assign(drug=True), x3.assign(drug=False)])
    for col in ("THANH_TIEN_BV", "THANH_TIEN_BH", "T_BNTT", "T_BNCCT", "T_BHTT"):
        lines[col + "_c"] = cents(lines[col])
    lines["supply"] = lines["MA_NHOM"].isin([10, 11]) & ~lines["drug"]
    g = lines.groupby("MA_LK")
    x = x1.set_index("MA_LK")
    tot = (
        pd.DataFrame(
            {
                "T_TONGCHI_BV": g["THANH_TIEN_BV_c"].sum(),
                "T_TONGCHI_BH": g["THANH_TIEN_BH_c"].sum(),
                "T_BNTT": g["T_BNTT_c"].sum(),
                "T_BNCCT": g["T_BNCCT_c"].sum(),
                "T_BHTT": g["T_BHTT_c"].sum(),
                "T_THUOC": lines[lines["drug"]].groupby("MA_LK")["THANH_TIEN_BV_c"].sum(),
                "T_VTYT": lines[lines["supply"]].groupby("MA_LK")["THANH_TIEN_BV_c"].sum(),
            }
        )
        .reindex(x.index)
        .fillna(0)
        .astype(np.int64)
    )
    for col in tot.columns:
        assert (cents(x[col]) == tot[col].to_numpy()).all(), col
    assert (cents(x["T_BHTT"]) == cents(x["T_TONGCHI_BH"]) - cents(x["T_BNCCT"])).all()
    assert (cents(x["T_BHTT_GDV"]) == cents(x["T_BHTT"])).all()
    # every line's benefit level is its claim's
    muc = pd.concat([x2[["MA_LK", "MUC_HUONG"]], x3[["MA_LK", "MUC_HUONG"]]])
    assert muc.groupby("MA_LK")["MUC_HUONG"].nunique().max() == 1


def test_card_valid_and_days_rules(honest):
    x1, _, _ = honest
    assert (x1["GT_THE_TU"] <= x1["NGAY_VAO"].str[:8]).all()
    assert (x1["NGAY_RA"].str[:8] <= x1["GT_THE_DEN"]).all()
    vao = pd.to_datetime(x1["NGAY_VAO"], format="%Y%m%d%H%M")
    ra = pd.to_datetime(x1["NGAY_RA"], format="%Y%m%d%H%M")
    assert (ra >= vao).all()
    days = (ra.dt.normalize() - vao.dt.normalize()).dt.days
    t = x1["MA_LOAI_KCB"]
    assert (x1.loc[t.isin(["01", "07", "09"]), "SO_NGAY_DTRI"] == 0).all()
    stay = t.isin(["02", "03", "04", "06"])
    assert (x1.loc[stay, "SO_NGAY_DTRI"] == days[stay] + 1).all()
    assert x1.loc[t == "05", "SO_NGAY_DTRI"].isin([28, 30]).all()
    assert (x1.loc[t == "01", "NGAY_RA"].str[:8] == x1.loc[t == "01", "NGAY_VAO"].str[:8]).all()
    short = t == "09"
    assert ((ra - vao)[short] < pd.Timedelta(hours=4)).all()
    assert (x1.loc[~t.isin(["03", "04", "06", "09"]), "NGAY_VAO_NOI_TRU"].isna()).all()
    nt = pd.to_datetime(x1["NGAY_VAO_NOI_TRU"], format="%Y%m%d%H%M")
    assert ((nt >= vao) | nt.isna()).all()


def test_bed_days_only_on_stays_and_within_the_stay(honest):
    x1, _, x3 = honest
    beds = x3[x3["MA_NHOM"].isin([14, 15, 16])]
    j = beds.merge(x1[["MA_LK", "MA_LOAI_KCB", "NGAY_VAO", "NGAY_RA"]], on="MA_LK")
    assert j["MA_LOAI_KCB"].isin(["03", "04", "06"]).all()
    per = j.groupby("MA_LK").agg(
        bed=("SO_LUONG", "sum"), vao=("NGAY_VAO", "first"), ra=("NGAY_RA", "first")
    )
    stay = (pd.to_datetime(per["ra"].str[:8]) - pd.to_datetime(per["vao"].str[:8])).dt.days
    assert (per["bed"] <= np.maximum(stay, 1)).all()
    assert beds["MA_GIUONG"].str.fullmatch(r"[HTCK][0-9]{3}").all()


def test_order_times_inside_the_episode(honest):
    x1, x2, x3 = honest
    b = x1.set_index("MA_LK")[["NGAY_VAO", "NGAY_RA"]]
    for df in (x2, x3):
        j = df.join(b, on="MA_LK")
        assert (j["NGAY_YL"] >= j["NGAY_VAO"]).all() and (j["NGAY_YL"] <= j["NGAY_RA"]).all()
        assert (j["NGAY_TH_YL"] >= j["NGAY_YL"]).all() and (j["NGAY_TH_YL"] <= j["NGAY_RA"]).all()
    kq = x3.join(b, on="MA_LK").dropna(subset=["NGAY_KQ"])
    assert ((kq["NGAY_KQ"] >= kq["NGAY_TH_YL"]) & (kq["NGAY_KQ"] <= kq["NGAY_RA"])).all()


def test_prices_at_or_below_the_approved_price(honest, sim_world):
    _, _, x3 = honest
    lvl = dict(zip(sim_world.facilities["MA_CSKCB"], sim_world.facilities["TUYEN"], strict=True))
    level = x3["MA_LK"].str[:5].map(lvl).map({"TW": 0, "T": 1, "H": 2, "X": 3}).to_numpy()
    code = np.where(x3["MA_DICH_VU"].isna(), x3["MA_VAT_TU"], x3["MA_DICH_VU"])
    by_code = {it.code: i for i, it in enumerate(cat.ITEMS)}
    item = np.array([by_code[c] for c in code])
    approved = cat.ITEM_ARRAYS["approved"][item, level]
    assert (x3["DON_GIA_BH"].to_numpy() <= approved).all()
    assert (x3["DON_GIA_BV"].to_numpy() >= x3["DON_GIA_BH"].to_numpy()).all()


def test_values_follow_the_contract(sim_world):
    for df, table in (
        (sim_world.xml1, CLAIMS),
        (sim_world.xml2, DRUG_LINES),
        (sim_world.xml3, SERVICE_LINES),
    ):
        for f in table.fields:
            if f.required:
                assert f.xml in df and df[f.xml].notna().all(), f.xml
            if f.xml not in df or df[f.xml].isna().all():
                continue
            v = df[f.xml].dropna()
            if f.pattern:
                assert v.astype(str).str.fullmatch(f.pattern.strip("^$")).all(), f.xml
            if f.allowed:
                assert v.isin(f.allowed).all(), f.xml
            if f.max_len and f.kind in ("text", "code", "birth"):
                assert (v.astype(str).str.len() <= f.max_len).all(), f.xml
            if f.kind == "timestamp":
                assert v.str.fullmatch(r"[0-9]{12}").all(), f.xml
    x1 = sim_world.xml1
    assert x1["MA_LK"].is_unique
    assert x1["MA_LOAI_KCB"].str.fullmatch(r"0[1-9]").all()
    assert x1["MA_DOITUONG_KCB"].isin(cat.ROUTES).all()
    assert x1["NGAY_SINH"].str.fullmatch(r"[0-9]{8}0000").all()
    assert x1["SO_CCCD"].str.fullmatch(r"0[0-9]{11}").all()
    assert x1["HO_TEN"].str.split().str.len().ge(3).all()
    assert x1["MA_CSKCB"].isin(sim_world.facilities["MA_CSKCB"]).all()
    assert x1["MA_DKBD"].isin(sim_world.facilities["MA_CSKCB"]).all()


def test_honest_world_has_no_overlaps_and_no_visits_after_death(honest):
    x1, _, _ = honest
    d = x1[["MA_THE_BHYT", "NGAY_VAO", "NGAY_RA", "KET_QUA_DTRI"]].sort_values(
        ["MA_THE_BHYT", "NGAY_VAO"]
    )
    same = d["MA_THE_BHYT"].eq(d["MA_THE_BHYT"].shift())
    prev_end = d.groupby("MA_THE_BHYT")["NGAY_RA"].transform(lambda s: s.cummax().shift())
    assert not (same & (d["NGAY_VAO"] <= prev_end)).any()
    died = d["KET_QUA_DTRI"] == 5
    assert died.any()
    last = ~d["MA_THE_BHYT"].eq(d["MA_THE_BHYT"].shift(-1))
    assert (last[died]).all()
