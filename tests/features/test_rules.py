"""Each verification rule on hand-made claims: a claim that breaks it (flag and amount at stake)
and a near-identical one that does not."""

from __future__ import annotations

import pandas as pd
import pytest
from handmade import EXAM, card, dataset, dline, episode, sline

from features.pipeline import build_features
from features.rules import RULE_BY_NAME, RULES

X_RAY = {"MA_DICH_VU": "18.0001.0001"}
BED = {"MA_NHOM": 15, "MA_DICH_VU": "K01.1902", "TEN_DICH_VU": "Ngày giường", "MA_MAY": None}
SURGERY = {"MA_NHOM": 8, "MA_DICH_VU": "27.0001.0001", "TEN_DICH_VU": "Mổ", "MA_MAY": None}


def ep(ma_lk, n, day, vt="03", days=4, **kw):
    """An episode on card n, admitted 2025-03-`day` 08:00, discharged `days` later 10:00."""
    start = f"202503{day:02d}0800"
    end = f"202503{day + days:02d}1000" if days else f"202503{day:02d}1000"
    kw.setdefault("drugs", [dline()])
    kw.setdefault("services", [sline(**X_RAY)])
    return episode(ma_lk, card_no=card(n), start=start, end=end, vt=vt,
                   clinician=f"{n:06d}/QNA-CCHN", **kw)  # fmt: skip


def _episodes():
    E = []
    # R01 card validity: card expired before admission
    E += [ep("R01P", 1, 3, GT_THE_DEN="20250301"), ep("R01N", 2, 3)]
    # R02 totals: the claim total above the lines
    p = ep("R02P", 3, 3)
    p[0].update(T_TONGCHI_BV=p[0]["T_TONGCHI_BV"] + 100_000, T_BHTT=p[0]["T_BHTT"] + 50_000)
    E += [p, ep("R02N", 4, 3)]
    # R03 line arithmetic: the fund share of a drug line at 100 % while MUC_HUONG is 80
    E += [ep("R03P", 5, 3, drugs=[dline(T_BHTT=200_000.0, T_BNCCT=0.0)]), ep("R03N", 6, 3)]
    # R04 benefit level: card digit 4 (80 %) billed at 100 %; digit 1 (100 %) is fine
    E += [
        ep("R04P", 7, 3, drugs=[dline(pct=100)], services=[sline(pct=100, **X_RAY)]),
        episode("R04N", card_no=card(8, digit=1), start="202503030800", end="202503071000",
                drugs=[dline(pct=100)], services=[sline(pct=100, **X_RAY)],
                clinician="000008/QNA-CCHN"),
    ]  # fmt: skip
    # R05 bed-day lines on an outpatient exam
    E += [
        ep("R05P", 9, 5, vt="01", days=0, services=[sline(**EXAM, price=38_700), sline(**BED,
           price=200_000)]),
        ep("R05N", 10, 5, services=[sline(**BED, price=200_000, qty=4)]),
    ]  # fmt: skip
    # R06 bed-days beyond the stay: 7 billed on a 4-day stay
    E += [
        ep("R06P", 11, 5, services=[sline(**BED, price=200_000, qty=7)]),
        ep("R06N", 12, 5, services=[sline(**BED, price=200_000, qty=4)]),
    ]
    # R07 an order after discharge
    E += [ep("R07P", 13, 5, drugs=[dline(NGAY_YL="202503121000")]), ep("R07N", 14, 5)]
    # R08 inpatient (03) under 4 hours; the same as 09 is right
    E += [
        episode("R08P", card_no=card(15), start="202503070800", end="202503071000", vt="03",
                services=[sline(**BED, price=200_000)], clinician="000015/QNA-CCHN"),
        episode("R08N", card_no=card(16), start="202503070800", end="202503071000", vt="09",
                services=[sline(**X_RAY)], clinician="000016/QNA-CCHN"),
    ]  # fmt: skip
    # R09 sex vs diagnosis: a man delivering; R10 age vs diagnosis: a perinatal code at 40
    E += [
        ep("R09P", 17, 7, MA_BENH_CHINH="O80", GIOI_TINH=1),
        ep("R09N", 18, 7, MA_BENH_CHINH="O80", GIOI_TINH=2, NGAY_SINH="199001010000"),
        ep("R10P", 19, 7, MA_BENH_CHINH="P07.3", NGAY_SINH="198501010000"),
        ep("R10N", 20, 7, MA_BENH_CHINH="P07.3", NGAY_SINH="202503010000"),
    ]
    # R11 duplicate: the same episode again 20 minutes later; the first is not flagged
    E += [
        ep("R11N", 21, 9, vt="01", days=0),
        episode("R11P", card_no=card(21), start="202503090820", end="202503091000", vt="01",
                drugs=[dline()], services=[sline(**X_RAY)], clinician="000021/QNA-CCHN"),
    ]  # fmt: skip
    # R12 an exam at another facility during a stay
    E += [
        ep("R12N", 22, 9),
        episode("R12P", card_no=card(22), start="202503101400", end="202503101500", vt="01",
                facility="49002", services=[sline(**EXAM, price=38_700)],
                clinician="000122/QNA-CCHN"),
    ]  # fmt: skip
    # R13 a second 30-day supply 10 days into the first (same diagnosis); a refill at day 29
    chronic = {"MA_BENH_CHINH": "I10", "MA_BENH_KT": None}
    month = [dline(qty=30, LIEU_DUNG="1 viên/lần x 1 lần/ngày [1]")]
    E += [
        episode("R13A", card_no=card(23), start="202503100800", end="202503100900", vt="05",
                drugs=month, services=[sline(**EXAM, price=38_700)], **chronic),
        episode("R13P", card_no=card(23), start="202503200800", end="202503200900", vt="05",
                facility="49002", drugs=month, services=[sline(**EXAM, price=38_700)],
                clinician="000123/QNA-CCHN", **chronic),
        episode("R13B", card_no=card(24), start="202503100800", end="202503100900", vt="05",
                drugs=month, services=[sline(**EXAM, price=38_700)], **chronic),
        episode("R13N", card_no=card(24), start="202504080800", end="202504080900", vt="05",
                drugs=month, services=[sline(**EXAM, price=38_700)], **chronic),
    ]  # fmt: skip
    # R16 clinician volume: 13 exams in one hour by one clinician (the 13th breaks it)
    for i in range(13):
        E.append(
            episode(f"R16{i:02d}", card_no=card(100 + i), start=f"2025031108{i * 4:02d}",
                    end=f"2025031109{i * 4:02d}", vt="01", drugs=[],
                    services=[sline(**EXAM, price=38_700)], clinician="000999/QNA-CCHN")
        )  # fmt: skip
    # R17 one surgeon in two operations at once; the first one is not flagged
    op1 = {
        **SURGERY,
        "NGUOI_THUC_HIEN": "000777/QNA-CCHN",
        "NGAY_YL": "202503120900",
        "NGAY_TH_YL": "202503120900",
        "NGAY_KQ": "202503121000",
    }
    op2 = {
        **op1,
        "NGAY_YL": "202503120930",
        "NGAY_TH_YL": "202503120930",
        "NGAY_KQ": "202503121030",
    }
    op3 = {
        **op1,
        "NGAY_YL": "202503121100",
        "NGAY_TH_YL": "202503121100",
        "NGAY_KQ": "202503121200",
    }
    E += [
        ep("R17N", 30, 12, services=[sline(price=2_000_000, **op1)]),
        episode("R17P", card_no=card(31), start="202503120805", end="202503161000",
                services=[sline(price=2_000_000, **op2)], clinician="000031/QNA-CCHN"),
        episode("R17M", card_no=card(32), start="202503120810", end="202503161000",
                services=[sline(price=2_000_000, **op3)], clinician="000032/QNA-CCHN"),
    ]  # fmt: skip
    # R18 a visit after the patient's death
    E += [
        ep("R18D", 33, 13, KET_QUA_DTRI=5),
        episode("R18P", card_no=card(33), start="202503250800", end="202503250900", vt="01",
                services=[sline(**EXAM, price=38_700)], clinician="000133/QNA-CCHN"),
        episode("R18N", card_no=card(34), start="202503250800", end="202503250900", vt="01",
                services=[sline(**EXAM, price=38_700)], clinician="000134/QNA-CCHN"),
    ]  # fmt: skip
    # R19 anaesthesia billed apart from the surgery it is part of (same order time); alone, or an
    # infusion the day after the operation, it is not
    anaesthesia = {"MA_NHOM": 8, "MA_DICH_VU": "01.0253.0384", "TEN_DICH_VU": "Gây mê",
                   "MA_MAY": None, "NGAY_YL": "202503140900", "NGAY_TH_YL": "202503140900",
                   "NGAY_KQ": "202503141000"}  # fmt: skip
    infusion = {"MA_NHOM": 18, "MA_DICH_VU": "01.0201.0212", "TEN_DICH_VU": "Truyền tĩnh mạch",
                "MA_MAY": None, "NGAY_YL": "202503150900", "NGAY_TH_YL": "202503150900",
                "NGAY_KQ": "202503151000"}  # the day after  # fmt: skip
    operation = {**SURGERY, **{k: anaesthesia[k] for k in ("NGAY_YL", "NGAY_TH_YL", "NGAY_KQ")}}
    later = {**operation, "NGAY_YL": "202503141200", "NGAY_TH_YL": "202503141200",
             "NGAY_KQ": "202503141300"}  # another surgery, another surgeon's hours  # fmt: skip
    alone = {**anaesthesia, "NGAY_YL": "202503141500", "NGAY_TH_YL": "202503141500",
             "NGAY_KQ": "202503141600"}  # fmt: skip
    E += [
        ep("R19P", 35, 14, services=[sline(price=2_000_000, **operation),
                                     sline(price=650_000, **anaesthesia)]),
        ep("R19A", 36, 14, services=[sline(price=650_000, **alone)]),
        ep("R19N", 37, 14, services=[sline(price=2_000_000, **later),
                                     sline(price=21_400, **infusion)]),
    ]  # fmt: skip
    return E


# rule -> (positive claim, its amount at stake or None to skip, negative claims)
CASES = {
    "card_invalid": ("R01P", "fund", ["R01N"]),
    "totals_mismatch": ("R02P", 50_000.0, ["R02N"]),
    "line_arithmetic": ("R03P", 40_000.0, ["R03N"]),
    "benefit_level": ("R04P", 100_000.0, ["R04N"]),
    "bed_on_outpatient": ("R05P", 160_000.0, ["R05N"]),
    "bed_days_over_stay": ("R06P", 3 * 160_000.0, ["R06N"]),
    "order_outside_stay": ("R07P", 160_000.0, ["R07N"]),
    "visit_type_duration": ("R08P", 160_000.0, ["R08N"]),
    "sex_diagnosis": ("R09P", "fund", ["R09N"]),
    "age_diagnosis": ("R10P", "fund", ["R10N"]),
    "duplicate": ("R11P", "fund", ["R11N"]),
    "overlapping_stay": ("R12P", "fund", ["R12N"]),
    "chronic_supply_overlap": ("R13P", 240_000.0 * 20 / 30, ["R13A", "R13B", "R13N"]),
    "clinician_volume": ("R1612", 30_960.0, ["R1611", "R1600"]),
    "simultaneous_procedures": ("R17P", 1_600_000.0, ["R17N", "R17M"]),
    "deceased_patient": ("R18P", "fund", ["R18N", "R18D"]),
    "bundled_component": ("R19P", 520_000.0, ["R19A", "R19N"]),
}


@pytest.fixture(scope="module")
def frame(tmp_path_factory) -> pd.DataFrame:
    tables = dataset(tmp_path_factory.mktemp("rules"), _episodes())
    return build_features(tables).set_index("claim_id")


@pytest.mark.parametrize("name", list(CASES))
def test_rule_positive_and_negative(frame, name):
    rule = RULE_BY_NAME[name]
    pos, amount, negs = CASES[name]
    assert frame.at[pos, rule.flag] == 1, f"{rule.code} should fire on {pos}"
    got = frame.at[pos, rule.amount]
    want = frame.at[pos, "fund_claimed"] if amount == "fund" else amount
    assert got == pytest.approx(want, rel=1e-6), f"{rule.code} amount"
    for neg in negs:
        assert frame.at[neg, rule.flag] == 0, f"{rule.code} should not fire on {neg}"
        assert frame.at[neg, rule.amount] == 0


def test_only_the_aimed_rule_fires(frame):
    """Every hand-made claim breaks at most the rule it was made for."""
    flags = [r.flag for r in RULES]
    hits = frame[flags].sum(axis=1)
    single = {pos for pos, _, _ in CASES.values()}
    assert (hits[~hits.index.isin(single)] == 0).all(), hits[hits > 0]
    assert (hits[list(single)] == 1).all(), hits[list(single)]
    assert (frame["rule_count"] == hits).all()
    assert (frame["rule_amount"] <= frame["fund_claimed"] + 1e-6).all()


def _priced(tmp, price: float, n_prior: int = 25):
    """n_prior X-rays at 300,000 in February at the provincial hospital, then one in March at
    `price` (and a clean one at 300,000)."""
    eps = [
        episode(f"P{i:02d}", card_no=card(200 + i), start=f"202502{1 + i % 27:02d}0800",
                end=f"202502{1 + i % 27:02d}1000", vt="01", drugs=[],
                services=[sline(**X_RAY)], clinician=f"{200 + i:06d}/QNA-CCHN")
        for i in range(n_prior)
    ]  # fmt: skip
    eps += [
        episode("PHIGH", card_no=card(300), start="202503050800", end="202503051000", vt="01",
                drugs=[], services=[sline(price=price, **X_RAY)]),
        episode("PFAIR", card_no=card(301), start="202503050800", end="202503051000", vt="01",
                drugs=[], services=[sline(**X_RAY)], clinician="000301/QNA-CCHN"),
    ]  # fmt: skip
    return dataset(tmp, eps)


def test_price_above_learned_reference(tmp_path):
    f = build_features(_priced(tmp_path, 400_000)).set_index("claim_id")
    r = RULE_BY_NAME["price_above_approved"]
    assert f.at["PHIGH", r.flag] == 1
    assert f.at["PHIGH", r.amount] == pytest.approx(100_000 * 0.8)
    assert f.at["PFAIR", r.flag] == 0
    # February had no earlier month to learn from: nothing is judged
    assert f.loc[f.index.str.startswith("P0"), r.flag].sum() == 0


def test_price_list_and_unlisted_items(tmp_path):
    tables = _priced(tmp_path, 400_000, n_prior=2)
    plist = pd.DataFrame(
        {"code": ["18.0001.0001", "18.0001.0001"], "level": ["T", "H"], "price": [350_000, 1.0]}
    )
    path = tmp_path / "prices.csv"
    plist.to_csv(path, index=False)
    f = build_features(tables, price_list=path).set_index("claim_id")
    r, u = RULE_BY_NAME["price_above_approved"], RULE_BY_NAME["item_not_listed"]
    assert f.at["PHIGH", r.flag] == 1 and f.at["PHIGH", r.amount] == pytest.approx(40_000)
    assert f.at["PFAIR", r.flag] == 0  # 300,000 is within 5 % of nothing: below the list price
    assert f.at["P00", r.flag] == 0  # the list applies from the first month
    # the exam fee line of no claim here is listed... X-ray only claims: nothing unlisted
    assert f[u.flag].sum() == 0
    plist2 = plist.assign(code="99.9999.9999")
    plist2.to_csv(path, index=False)
    f2 = build_features(tables, price_list=path).set_index("claim_id")
    assert (f2[u.flag] == 1).all()
    assert f2.at["PFAIR", u.amount] == pytest.approx(240_000)


def test_rule_registry_is_complete():
    codes = [r.code for r in RULES]
    assert len(set(codes)) == len(codes) == 19
    for r in RULES:
        for lang in ("vi", "en"):
            text = r.message(123_456.0, lang)
            assert "123" in text, (r.code, text)
        assert r.what_en and r.what_vi and r.stake_en
