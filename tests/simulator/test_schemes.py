"""Each abuse scheme leaves the footprint it should, and only abusive claims carry it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator import SCHEMES
from simulator import catalogue as cat


def claims_of(w, scheme: str, variant: str | None = None) -> pd.DataFrame:
    t = w.truth[w.truth["scheme"] == scheme]
    if variant is not None:
        t = t[t["variant"] == variant]
    return w.xml1[w.xml1["MA_LK"].isin(t["MA_LK"])].merge(t, on="MA_LK")


def honest(w) -> pd.DataFrame:
    return w.xml1[~w.xml1["MA_LK"].isin(w.truth["MA_LK"])]


def ts(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, format="%Y%m%d%H%M")


def test_every_scheme_present_with_money_and_actors(abusive):
    t = abusive.truth
    for name in SCHEMES:
        sub = t[t["scheme"] == name]
        assert len(sub) > 20, name
        assert sub["overbilled"].sum() > 0, name
        assert name in set(abusive.actors["scheme"]), name
    assert (t["overbilled"] <= t["T_BHTT"] + 0.01).all()
    lines = abusive.truth_lines.groupby("MA_LK")["overbilled"].sum()
    assert np.allclose(lines.reindex(t["MA_LK"]).fillna(0).to_numpy(), t["overbilled"], atol=0.011)


def test_abusers_bill_mostly_honest_claims(abusive):
    t = abusive.truth[abusive.truth["actor_type"] == "facility"]
    x = abusive.xml1
    per_fac = x.groupby("MA_CSKCB").size()
    ab = t.groupby("actor_id").size()
    share = (ab / per_fac.reindex(ab.index)).dropna()
    assert share.median() < 0.5


def test_schemes_start_in_some_month_and_some_actors_switch(abusive):
    a = abusive.actors
    assert a["start_month"].nunique() > 3
    fac = a[a["actor_type"] == "facility"]
    multi = fac.groupby("actor_id")["scheme"].nunique()
    assert (multi > 1).any()


def test_ghost_visits_are_month_end_templates_billed_in_full(abusive):
    g = claims_of(abusive, "ghost")
    day = ts(g["NGAY_VAO"])
    assert ((day + pd.offsets.MonthEnd(0) - day.dt.normalize()).dt.days < 7).all()
    h = ts(honest(abusive)["NGAY_VAO"])
    assert ((h + pd.offsets.MonthEnd(0) - h.dt.normalize()).dt.days < 7).mean() < 0.35
    assert (g.groupby("MA_CSKCB")["MA_BENH_CHINH"].nunique() == 1).all()
    assert np.allclose(g["overbilled"], g["T_BHTT_x"], atol=0.01)


def test_upcoding_bills_pricier_siblings_or_more_severe_codes(abusive):
    svc = claims_of(abusive, "upcoding", "service")
    tl = abusive.truth_lines
    changed = tl[tl["MA_LK"].isin(svc["MA_LK"]) & tl["line_changed"]]
    x3 = abusive.xml3.merge(changed[["MA_LK", "STT"]], on=["MA_LK", "STT"])
    targets = {it.code for it in cat.ITEMS if it.key in {i.upcode_to for i in cat.ITEMS}}
    assert len(x3) and x3["MA_DICH_VU"].isin(targets).all()
    dx = claims_of(abusive, "upcoding", "diagnosis")
    severe = {d.upcode_icd for d in cat.DISEASES if d.upcode_icd}
    assert dx["MA_BENH_CHINH"].isin(severe).all()
    assert not honest(abusive)["MA_BENH_CHINH"].isin(severe - {"J18.9"}).any()


def test_unbundling_bills_included_components_with_the_surgery(abusive):
    u = claims_of(abusive, "unbundling")
    x3 = abusive.xml3
    comp_codes = {cat.ITEMS[cat.ITEM[k]].code for k in ("ANAESTH", "INFUSION")}
    comp = x3[x3["MA_DICH_VU"].isin(comp_codes)]
    assert set(comp["MA_LK"]) <= set(u["MA_LK"])
    parent = x3[x3["MA_NHOM"].isin([8, 18]) & x3["MA_LK"].isin(u["MA_LK"])]
    j = comp.merge(parent[["MA_LK", "NGAY_YL"]], on=["MA_LK", "NGAY_YL"])
    assert j["MA_LK"].nunique() == u["MA_LK"].nunique()


def _tests_per_claim(w, ids) -> pd.Series:
    x3 = w.xml3[w.xml3["MA_LK"].isin(ids) & w.xml3["MA_NHOM"].isin([1, 2, 3])]
    return x3.groupby("MA_LK").size().reindex(list(ids)).fillna(0)


def test_needless_tests_far_above_peers_with_the_same_diagnosis(abusive):
    n = claims_of(abusive, "needless_tests")
    h = honest(abusive)
    h = h[h["MA_BENH_CHINH"].isin(n["MA_BENH_CHINH"]) & h["MA_LOAI_KCB"].isin(["01", "05"])]
    tn = _tests_per_claim(abusive, n["MA_LK"]).mean()
    th = _tests_per_claim(abusive, h["MA_LK"]).mean()
    assert tn > th + 5


def test_duplicates_have_a_twin(abusive):
    d = claims_of(abusive, "duplicate")
    key = ["MA_THE_BHYT", "MA_CSKCB", "T_BHTT"]
    x = abusive.xml1.rename(columns={"T_BHTT": "T_BHTT"})
    x = x.assign(day=x["NGAY_VAO"].str[:8])
    counts = x.groupby([*key, "day"]).size()
    dd = d.rename(columns={"T_BHTT_x": "T_BHTT"}).assign(day=d["NGAY_VAO"].str[:8])
    assert (counts.reindex(pd.MultiIndex.from_frame(dd[[*key, "day"]])).to_numpy() >= 2).all()
    h = x[~x["MA_LK"].isin(abusive.truth["MA_LK"])]
    assert not h.duplicated([*key, "day"]).any()


def _los(df) -> pd.Series:
    return (ts(df["NGAY_RA"]).dt.normalize() - ts(df["NGAY_VAO"]).dt.normalize()).dt.days


def test_padded_stays_are_longer_than_peers(abusive):
    p = claims_of(abusive, "padded_stay", "longer_stay")
    h = honest(abusive)
    h = h[h["MA_LOAI_KCB"] == "03"]
    lvl = abusive.facilities.set_index("MA_CSKCB")["TUYEN"]
    peer = (
        h.assign(los=_los(h), lvl=h["MA_CSKCB"].map(lvl))
        .groupby(["MA_BENH_CHINH", "lvl"])["los"]
        .mean()
    )
    pp = p.assign(los=_los(p), lvl=p["MA_CSKCB"].map(lvl))
    ref = peer.reindex(pd.MultiIndex.from_frame(pp[["MA_BENH_CHINH", "lvl"]])).to_numpy()
    assert np.nanmean(pp["los"].to_numpy() - ref) > 2


def test_extra_bed_days_exceed_the_stay(abusive):
    p = claims_of(abusive, "padded_stay", "extra_bed_days")
    x3 = abusive.xml3
    beds = x3[x3["MA_NHOM"].isin([14, 15, 16])].groupby("MA_LK")["SO_LUONG"].sum()
    assert (beds.reindex(p["MA_LK"]).to_numpy() > np.maximum(_los(p).to_numpy(), 1)).all()


def test_split_admissions_are_readmitted_the_same_day(abusive):
    s = claims_of(abusive, "split_admission").sort_values(["MA_THE_BHYT", "NGAY_VAO"])
    first = s.groupby("MA_THE_BHYT").nth(0).set_index("MA_THE_BHYT")
    second = s.groupby("MA_THE_BHYT").nth(1).set_index("MA_THE_BHYT")
    both = first.index.intersection(second.index)
    assert len(both) > 0.8 * len(first)
    f, g = first.loc[both], second.loc[both]
    assert (f["NGAY_RA"].str[:8] == g["NGAY_VAO"].str[:8]).mean() > 0.9
    assert (f["MA_BENH_CHINH"] == g["MA_BENH_CHINH"]).all()
    assert (f["MA_CSKCB"] == g["MA_CSKCB"]).all()


def test_card_sharing_footprints(abusive):
    x = abusive.xml1
    conc = claims_of(abusive, "card_sharing", "concurrent")
    stays = x[x["MA_LOAI_KCB"] == "03"][["MA_THE_BHYT", "MA_CSKCB", "NGAY_VAO", "NGAY_RA"]]
    j = conc.merge(stays, on="MA_THE_BHYT", suffixes=("", "_stay"))
    inside = (
        (j["NGAY_VAO"] > j["NGAY_VAO_stay"])
        & (j["NGAY_VAO"] < j["NGAY_RA_stay"])
        & (j["MA_CSKCB"] != j["MA_CSKCB_stay"])
    )
    assert j[inside]["MA_LK"].nunique() == len(conc)
    dead = claims_of(abusive, "card_sharing", "deceased")
    deaths = x[x["KET_QUA_DTRI"] == 5].groupby("MA_THE_BHYT")["NGAY_RA"].min()
    assert len(dead) and (dead["NGAY_VAO"] > deaths.reindex(dead["MA_THE_BHYT"]).to_numpy()).all()
    borrowed = claims_of(abusive, "card_sharing", "borrowed")
    assert np.allclose(borrowed["overbilled"], borrowed["T_BHTT_x"], atol=0.01)


def test_overprice_above_the_approved_price(abusive):
    o = claims_of(abusive, "overprice")
    tl = abusive.truth_lines
    ch = tl[tl["MA_LK"].isin(o["MA_LK"]) & tl["line_changed"] & (tl["table"] == "XML3")]
    x3 = abusive.xml3.merge(ch[["MA_LK", "STT"]], on=["MA_LK", "STT"])
    lvl = abusive.facilities.set_index("MA_CSKCB")["TUYEN"].map({"TW": 0, "T": 1, "H": 2, "X": 3})
    code = x3["MA_DICH_VU"].fillna(x3["MA_VAT_TU"])
    item = code.map({it.code: i for i, it in enumerate(cat.ITEMS)}).to_numpy()
    approved = cat.ITEM_ARRAYS["approved"][item, x3["MA_LK"].str[:5].map(lvl).to_numpy()]
    assert len(x3) and (x3["DON_GIA_BH"].to_numpy() > approved).all()


def test_drug_padding(abusive):
    sup_codes = {it.code for it in cat.ITEMS if it.supportive}
    x2 = abusive.xml2
    s = claims_of(abusive, "drug_padding", "supportive")
    assert set(s["MA_LK"]) <= set(x2.loc[x2["MA_THUOC"].isin(sup_codes), "MA_LK"])
    hon = x2[x2["MA_LK"].isin(honest(abusive)["MA_LK"]) & x2["MA_THUOC"].isin(sup_codes)]
    dx = abusive.xml1.set_index("MA_LK").loc[hon["MA_LK"].unique(), "MA_BENH_CHINH"]
    assert set(dx) <= {"C34.9"}  # albumin is a listed part of advanced lung-cancer care only
    q = claims_of(abusive, "drug_padding", "quantity")
    tl = abusive.truth_lines
    pad = tl[tl["MA_LK"].isin(q["MA_LK"]) & tl["line_changed"] & (tl["table"] == "XML2")]
    assert len(pad) and (pad["overbilled"] > 0).mean() > 0.8


def test_chronic_overlap_starts_inside_the_previous_supply(abusive):
    x = abusive.xml1[abusive.xml1["MA_LOAI_KCB"] == "05"].sort_values(["MA_THE_BHYT", "NGAY_VAO"])
    start = ts(x["NGAY_VAO"]).dt.normalize()
    prev_end = (
        (start + pd.to_timedelta(x["SO_NGAY_DTRI"], unit="D")).groupby(x["MA_THE_BHYT"]).shift()
    )
    prev_id = x["MA_LK"].groupby(x["MA_THE_BHYT"]).shift()
    hit = start < prev_end
    co = set(claims_of(abusive, "chronic_overlap")["MA_LK"])
    assert len(co) and co <= set(x["MA_LK"][hit])
    # an honest pickup may follow an abusive one early; it never overlaps an honest one
    abusive_ids = set(abusive.truth["MA_LK"])
    assert (x["MA_LK"][hit].isin(abusive_ids) | prev_id[hit].isin(abusive_ids)).all()


def test_cost_climb_facility_outgrows_peers(abusive):
    t = abusive.truth[abusive.truth["scheme"] == "cost_climb"]
    climber = t["actor_id"].value_counts().index[0]  # the most affected climbing facility
    x = abusive.xml1.assign(m=abusive.xml1["NGAY_VAO"].str[:6])
    per = x.groupby(["MA_CSKCB", "m"])["T_BHTT"].mean().unstack()
    ratio = per.iloc[:, -3:].mean(axis=1) / per.iloc[:, :3].mean(axis=1)
    peers = ratio.drop(t["actor_id"].unique(), errors="ignore")
    assert ratio[climber] > 1.25
    assert ratio[climber] - 1 > 3 * max(peers.median() - 1, 0.02)


def test_referral_kickback_concentrates_on_one_hospital(abusive):
    k = claims_of(abusive, "referral_kickback")
    sent = k[k["MA_NOI_DEN"].notna()]
    assert len(sent)
    top = sent.groupby("actor_id")["MA_NOI_DEN"].agg(
        lambda s: s.value_counts(normalize=True).iloc[0]
    )
    assert (top == 1.0).all()
    received = k[k["MA_NOI_DI"].notna()]
    assert (
        received["MA_CSKCB"]
        .isin(abusive.facilities.loc[abusive.facilities["LOAI_HINH"] == "TU_NHAN", "MA_CSKCB"])
        .all()
    )
    h = honest(abusive)
    honest_to_private = h["MA_NOI_DEN"].isin(received["MA_CSKCB"]).mean()
    assert honest_to_private < 0.001


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_scheme_off_means_absent(name, tmp_path):
    from simulator import simulate

    rates = {k: 0.0 for k in SCHEMES}
    rates[name] = SCHEMES[name].rate * 2
    r = simulate(tmp_path / "w", 8_000, months=6, seed=2, schemes=rates)
    t = pd.read_parquet(tmp_path / "w" / "truth.parquet")
    assert set(t["scheme"]) <= {name}
    assert r.claims == 8_000 or r.claims >= 7_990
