"""One claim's enriched row in plain Python: `claim_features.claim_base`, `lines.line_table`,
`lines.line_aggregates` and `claim_features.enrich` written once more as per-row arithmetic, for
the online hot path (no SQL per request). The Ibis definitions stay the source of truth: every
constant is theirs, and tests/features/test_online_state.py checks these rows against
`assembly.enriched_claims` on whole simulated months and on random claims (hypothesis).

Nulls follow SQL: None propagates through arithmetic and comparisons, `_and`/`_or` are
three-valued, a condition that is None counts as false where SQL's CASE would take ELSE, sums skip
None (and are None when nothing is left), GREATEST/LEAST skip None (DuckDB's behaviour).
"""

from __future__ import annotations

import operator as op
import re
from datetime import date

from contract.schema import COST_GROUPS
from features import claim_features as cf
from features import lines as ln
from features.engine import NEEDED
from features.online_state import items as it
from features.online_state.sql import (
    EPOCH_ORDINAL,
    abs_,
    and3,
    cmp,
    day_number,
    div,
    greatest,
    least,
    mul,
    or3,
    records,
    round_half_away,
    sub,
    to_float,
)

_DOSE = re.compile(cf.DAILY_DOSE)
_SUPPORTIVE = re.compile(cf.SUPPORTIVE_DRUGS)
_SALARY = tuple((date.fromisoformat(str(d.op().value)[:10]), v) for d, v in cf.BASE_SALARY)
_GROUPS = {name: frozenset(codes) for name, codes in COST_GROUPS.items()}
# agg columns enrich leaves null when a claim has no lines (the others are filled with 0)
_KEEP_NULL = ("drug_days", "top_line_amount", "main_clinician", "any_clinician", "dose_ratio_max")


def _int(s) -> int | None:
    try:
        return int(s)
    except (TypeError, ValueError):
        return None


def _ymd_day(s) -> int | None:
    if s is None or len(s) != 8 or not s.isdigit():
        return None
    try:
        return date(int(s[:4]), int(s[4:6]), int(s[6:8])).toordinal() - EPOCH_ORDINAL
    except ValueError:
        return None


def _in_blocks(icd3, blocks) -> bool | None:
    if icd3 is None:
        return None
    return any(lo <= icd3 <= hi for lo, hi, *_ in blocks)


def _age(adm, birth) -> int | None:
    if birth is None:
        return None
    by, bm, bd = _int(birth[0:4]), _int(birth[4:6]), _int(birth[6:8])
    if by is None:
        return None
    before = and3(
        cmp(bm, 0, op.gt),
        or3(
            cmp(adm.month, bm, op.lt),
            and3(
                adm.month == bm if bm is not None else None,
                cmp(bd, 0, op.gt),
                cmp(adm.day, bd, op.lt),
            ),
        ),
    )
    return adm.year - by - (1 if before else 0)


def _days_in_month(adm) -> int:
    y = adm.year
    leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
    if adm.month == 2:
        return 29 if leap else 28
    return 30 if adm.month in (4, 6, 9, 11) else 31


def claim_base(c: dict, facility: dict | None) -> dict:
    """claim_features.claim_base for one claim (a dict of canonical columns, None for nulls);
    `facility`: its row of the facilities table (level, beds) or None."""
    adm, dis = c["admitted_at"], c["discharged_at"]
    ad, dd = day_number(adm), day_number(dis)
    level = (facility or {}).get("level")
    level = "U" if level is None else level
    beds = to_float((facility or {}).get("beds"))
    icd = c.get("primary_icd")
    icd3 = None if icd is None else icd.upper().replace(".", "")[:3]
    chapter = 0
    if icd3 is not None:
        for i, (lo, hi) in enumerate(cf.ICD_CHAPTERS):
            if lo <= icd3 <= hi:
                chapter = i + 1
                break
    card = c.get("card_number")
    card_pct = None if card is None else cf.CARD_PCT.get(card[2:3])
    salary = next((v for d, v in _SALARY if adm.date() >= d), cf.BASE_SALARY_BEFORE)
    sec = c.get("secondary_icd")
    route = c.get("route_code") or ""
    vt = c["visit_type"]
    age = _age(adm, c.get("birth_date"))
    insured = c.get("total_insured_cost")
    insured = c.get("total_cost") if insured is None else insured
    vfrom, vto = c.get("card_valid_from"), c.get("card_valid_to")
    out = {
        k: c.get(k)
        for k in (
            "claim_id",
            "person_key",
            "card_key",
            "facility_id",
            "visit_type",
            "referred_to",
            "referred_from",
            "admitted_at",
            "discharged_at",
            "birth_date",
        )
    }
    out.update(
        facility_level=level,
        facility_beds=beds,
        visit_type_code=_int(vt),
        facility_level_code=cf.LEVEL_CODES.get(level, 0),
        icd3=icd3,
        icd_chapter=chapter,
        peer_key=None if icd3 is None or vt is None else f"{icd3}|{vt}|{level}",
        admit_day=ad,
        admit_min=ad * 1440 + adm.hour * 60 + adm.minute,
        discharge_day=dd,
        discharge_min=dd * 1440 + dis.hour * 60 + dis.minute,
        month=adm.year * 12 + adm.month - 1,
        stay_days=float(dd - ad),
        stay_hours=float((dd - ad) * 24 + dis.hour - adm.hour) + (dis.minute - adm.minute) / 60.0,
        treatment_days=to_float(c.get("treatment_days")),
        age_years=to_float(age),
        sex=c.get("sex"),
        is_emergency=1 if route == "2" else 0,
        wrong_route=1 if route.startswith("3") else 0,
        referred_in=0 if c.get("referred_from") is None else 1,
        referred_out=0 if c.get("referred_to") is None else 1,
        n_secondary_icd=0.0 if sec is None else float(sec.count(";") + 1),
        admit_hour=float(adm.hour),
        admit_weekend=1 if adm.weekday() >= 5 else 0,
        days_to_month_end=float(_days_in_month(adm) - adm.day),
        died=1 if c.get("outcome") in (5, 8) else 0,
        transferred=1 if c.get("discharge_type") in (2, 5) else 0,
        is_stay=1 if vt in cf.STAY_TYPES else 0,
        is_inpatient=1 if vt in cf.INPATIENT_TYPES else 0,
        card_pct=card_pct,
        card_valid_from_day=None if vfrom is None else _ymd_day(vfrom[:8]),
        card_valid_to_day=None if vto is None else _ymd_day(vto[-8:]),
        copay_waived=0 if c.get("copay_waiver_date") is None else 1,
        small_episode=1 if insured is not None and insured < salary * 0.15 else 0,
    )
    for k in (
        "total_cost",
        "fund_claimed",
        "total_drugs",
        "total_supplies",
        "total_insured_cost",
        "patient_self_pay",
        "patient_copay",
    ):
        out[k] = to_float(c.get(k))
    return out


def daily_dose(text: str | None) -> float | None:
    """The daily dose a LIEU_DUNG text states (None when it states none, or not above 0)."""
    if text is None:
        return None
    m = _DOSE.search(text)
    if not (m and m.group(1)):
        return None
    dose = float(m.group(1).replace(",", "."))
    return dose if dose > 0 else None


def supportive(name: str | None) -> int:
    """1 for a supportive drug (by its name), else 0."""
    return 0 if name is None or not _SUPPORTIVE.search(name.lower()) else 1


def drug_line(d: dict) -> dict:
    name = d.get("drug_name")
    code = d.get("drug_code")
    return {
        "line_key": f"D{d.get('line_no')}",
        "is_drug": 1,
        "cost_group": d.get("cost_group"),
        "item_key": None if code is None else f"{code}|{d.get('strength') or ''}",
        "scope": d.get("scope"),
        "quantity": to_float(d.get("quantity")),
        "unit_price": to_float(d.get("unit_price")),
        "fund_unit_price": to_float(d.get("unit_price")),
        "service_ratio": 100.0,
        "insurance_ratio": to_float(d.get("insurance_ratio")),
        "amount": to_float(d.get("amount")),
        "insured_amount": to_float(d.get("insured_amount")),
        "benefit_pct": to_float(d.get("benefit_pct")),
        "line_fund": to_float(d.get("fund_claimed")),
        "other_sources": to_float(d.get("other_sources")),
        "clinician_id": d.get("clinician_id"),
        "performer_id": None,
        "ordered_at": d.get("ordered_at"),
        "performed_at": None,
        "result_at": None,
        "daily_dose": daily_dose(d.get("dosage")),
        "supportive": supportive(name),
    }


def service_line(s: dict) -> dict:
    supply, service = s.get("supply_code"), s.get("service_code")
    ratio = s.get("service_ratio")
    fup = s.get("insured_unit_price")
    return {
        "line_key": f"S{s.get('line_no')}",
        "is_drug": 0,
        "cost_group": s.get("cost_group"),
        "item_key": supply if supply is not None else service,
        "scope": s.get("scope"),
        "quantity": to_float(s.get("quantity")),
        "unit_price": to_float(s.get("unit_price")),
        "fund_unit_price": to_float(s.get("unit_price") if fup is None else fup),
        "service_ratio": 100.0 if ratio is None else float(ratio),
        "insurance_ratio": to_float(s.get("insurance_ratio")),
        "amount": to_float(s.get("amount")),
        "insured_amount": to_float(s.get("insured_amount")),
        "benefit_pct": to_float(s.get("benefit_pct")),
        "line_fund": to_float(s.get("fund_claimed")),
        "other_sources": to_float(s.get("other_sources")),
        "clinician_id": s.get("clinician_id"),
        "performer_id": s.get("performer_id"),
        "ordered_at": s.get("ordered_at"),
        "performed_at": s.get("performed_at"),
        "result_at": s.get("result_at"),
        "daily_dose": None,
        "supportive": 0,
    }


def benefit_exempt(b: dict) -> int:
    return int(
        b["facility_level"] == "X"
        or b["small_episode"] == 1
        or b["copay_waived"] == 1
        or b["card_pct"] is None
    )


def findings(
    x: dict, b: dict, ref, listed: bool, bundled: bool = False
) -> dict[str, tuple[bool, float | None]]:
    """lines._line_findings for one line `x` of claim `b` with its reference price `ref`
    (`bundled`: the line is a component billed with its parent, `bundled_lines`)."""
    g = x["cost_group"]
    fund = 0.0 if x["line_fund"] is None else x["line_fund"]
    q, up, fup, amt, ins = (
        x[k] for k in ("quantity", "unit_price", "fund_unit_price", "amount", "insured_amount")
    )
    ratio = x["service_ratio"] / 100.0
    ins_ratio = (100.0 if x["insurance_ratio"] is None else x["insurance_ratio"]) / 100.0
    bp = x["benefit_pct"]
    benefit = (100.0 if bp is None else bp) / 100.0
    exp_amount = mul(q, up)
    exp_insured = mul(q, fup, ratio, ins_ratio)
    other = x["other_sources"] or 0.0
    exp_fund = None if ins is None else ins * benefit - other
    amount_bad = and3(
        cmp(abs_(sub(amt, exp_amount)), 1.0, op.gt),
        cmp(abs_(sub(amt, mul(exp_amount, ratio))), 1.0, op.gt),
    )
    insured_bad = bool(cmp(abs_(sub(ins, exp_insured)), 1.0, op.gt))
    fund_bad = bool(cmp(sub(x["line_fund"], exp_fund), 1.0, op.gt))
    arith_bad = bool(or3(amount_bad, insured_bad, fund_bad))
    fair = least(exp_insured if ins is None else ins, exp_insured)
    fair = None if fair is None else fair * benefit
    arith_stake = greatest(fund - (fund if fair is None else fair), 0.0)
    price_bad = bool(cmp(fup, None if ref is None else ref * ln.PRICE_TOLERANCE, op.gt))
    price_stake = mul(sub(fup, ref), q, ratio, ins_ratio, benefit)
    unlisted = listed and ref is None and x["item_key"] is not None
    oa = x["ordered_at"]
    outside = bool(
        or3(
            cmp(oa, b["admitted_at"], op.lt),
            cmp(oa, b["discharged_at"], op.gt),
            cmp(x["result_at"], oa, op.lt),
        )
    )
    cp = b["card_pct"]
    benefit_bad = bool(and3(cmp(bp, cp, op.gt), benefit_exempt(b) == 0))
    benefit_stake = None if bp is None or cp is None else (ins or 0.0) * (bp - cp) / 100.0
    vt = b["visit_type"]
    bed_out = bool(
        or3(
            and3(None if g is None else g in (15, 16), vt in cf.NO_INPATIENT_BED),
            and3(None if g is None else g == 14, vt in cf.NO_DAY_BED),
        )
    )
    return {
        "arith": (arith_bad, arith_stake),
        "price": (price_bad, price_stake),
        "unlisted": (unlisted, fund),
        "outside": (outside, fund),
        "benefit": (benefit_bad, benefit_stake),
        "bed_out": (bed_out, fund),
        "bundled": (bundled, fund),
    }


def _s(acc: dict, key: str, cond, value) -> None:
    """s(cond, value): SUM(CASE WHEN cond THEN value ELSE 0 END), None skipped."""
    v = value if cond else 0.0
    if v is not None:
        acc[key] = v if acc.get(key) is None else acc[key] + v
    else:
        acc.setdefault(key, None)


def _max(acc: dict, key: str, v) -> None:
    cur = acc.get(key)
    acc[key] = v if cur is None else (cur if v is None else max(cur, v))


def _min(acc: dict, key: str, v) -> None:
    cur = acc.get(key)
    acc[key] = v if cur is None else (cur if v is None else min(cur, v))


def line_aggregates(
    lines: list[dict], b: dict, refs, listed: bool, items: it.ItemLookup = it.no_items
) -> dict | None:
    """lines.line_aggregates for one claim `b` and its lines (drug_line / service_line rows);
    `refs(item_key, level, month)` gives the matching reference prices (a list, [None] when
    none); `items(key, level, month)` the item statistics (lines.item_reference). None when
    the claim has no lines (the left join's nulls)."""
    if not lines:
        return None
    acc: dict = {}
    level, month = b["facility_level"], b["month"]
    for x, bundled in zip(lines, bundled_lines(lines), strict=True):
        for ref in refs(x["item_key"], level, month):
            _line_into(acc, x, b, ref, listed, bundled)
            it.into(acc, x, b, items, _s, _max)
    clin = {x["clinician_id"] for x in lines if x["clinician_id"] is not None}
    acc["n_clinicians"] = float(len(clin))
    return acc


def bundled_lines(lines: list[dict]) -> list[bool]:
    """lines._bundled for one claim's lines: a component of lines.BUNDLED_IN ordered at the same
    time as one of its parents."""
    comps = [x["item_key"] in ln.BUNDLED_IN and x["ordered_at"] is not None for x in lines]
    if not any(comps):
        return comps
    at = {(x["ordered_at"], p) for x in lines if x["ordered_at"] is not None
          for p in ln.parent_kinds(x["item_key"], x["cost_group"])}  # fmt: skip
    return [c and any((x["ordered_at"], p) in at for p in ln.BUNDLED_IN[x["item_key"]])
            for c, x in zip(comps, lines, strict=True)]  # fmt: skip


def _line_into(acc: dict, x: dict, b: dict, ref, listed: bool, bundled: bool = False) -> None:
    g = x["cost_group"]
    fund = 0.0 if x["line_fund"] is None else x["line_fund"]
    amt, q, is_drug = x["amount"], x["quantity"], x["is_drug"]
    for name, codes in _GROUPS.items():
        _s(acc, f"cost_{name}", g in codes, amt)
    is_bed, is_exam = g in _GROUPS["bed"], g in _GROUPS["exam"]
    _s(acc, "n_drug_lines", True, float(is_drug))
    _s(acc, "n_service_lines", True, float(1 - is_drug))
    _s(acc, "n_lab", g in _GROUPS["lab"], 1.0)
    _s(acc, "n_imaging", g in _GROUPS["imaging"], 1.0)
    _s(acc, "n_functional", g in _GROUPS["functional"], 1.0)
    _s(acc, "n_procedures", g in (8, 18), 1.0)
    _s(acc, "n_exams", is_exam, q)
    _s(acc, "bed_days", is_bed, q)
    _s(acc, "bed_fund", is_bed, fund)
    _s(acc, "exam_fund", is_exam, fund)
    _s(acc, "drug_fund", is_drug == 1, fund)
    dd = x["daily_dose"]
    _max(acc, "drug_days", q / dd if is_drug == 1 and q is not None and dd is not None else None)
    _s(acc, "supportive_cost", x["supportive"] == 1, amt)
    up = x["unit_price"]
    _s(acc, "costly_cost", up is not None and up >= cf.COSTLY_UNIT_PRICE, amt)
    _max(acc, "top_line_amount", amt)
    _s(acc, "out_of_scope_cost", x["scope"] == 2, amt)
    oa = x["ordered_at"]
    off = oa is not None and (oa.weekday() >= 5 or oa.hour < 7 or oa.hour >= 17)
    _s(acc, "offhours_lines", off, 1.0)
    _min(acc, "main_clinician", x["clinician_id"] if g == 13 else None)
    _min(acc, "any_clinician", x["clinician_id"])
    _s(acc, "lines_drug_amount", is_drug == 1, amt)
    _s(acc, "lines_supply_amount", g in _GROUPS["supply"], amt)
    _s(acc, "lines_amount", True, amt)
    _s(acc, "lines_fund", True, fund)
    for name, (bad, stake) in findings(x, b, ref, listed, bundled).items():
        _s(acc, f"{name}_lines", bad, 1.0)
        _s(acc, f"{name}_stake", bad, stake)


AGG_COLUMNS = (
    *(f"cost_{n}" for n in COST_GROUPS),
    "n_drug_lines",
    "n_service_lines",
    "n_lab",
    "n_imaging",
    "n_functional",
    "n_procedures",
    "n_exams",
    "bed_days",
    "bed_fund",
    "exam_fund",
    "drug_fund",
    "drug_days",
    "supportive_cost",
    "costly_cost",
    "top_line_amount",
    "out_of_scope_cost",
    "offhours_lines",
    "main_clinician",
    "any_clinician",
    "lines_drug_amount",
    "lines_supply_amount",
    "lines_amount",
    "lines_fund",
    *(
        f"{n}_{k}"
        for n in ("arith", "price", "unlisted", "outside", "benefit", "bed_out", "bundled")
        for k in ("lines", "stake")
    ),
    "n_clinicians",
    *it.ITEM_COLUMNS,
)


def _diagnosis_checks(t: dict) -> tuple[bool, bool]:
    """The sex and age edits of the principal diagnosis (claim_features.SEX/AGE_SPECIFIC), with
    SQL's nulls: no diagnosis, sex or age, no finding."""
    icd3, sex, age = t["icd3"], t["sex"], t["age_years"]
    if icd3 is None:
        return False, False
    sex_bad = sex in (1, 2) and any(lo <= icd3 <= hi and sex != s for lo, hi, s in cf.SEX_SPECIFIC)
    age_bad = age is not None and any(
        lo <= icd3 <= hi and (age < a0 or age > a1) for lo, hi, a0, a1 in cf.AGE_SPECIFIC
    )
    return bool(sex_bad), bool(age_bad)


def enrich(b: dict, agg: dict | None) -> dict:
    """claim_features.enrich for one claim: its base row `b` and line aggregates `agg`."""
    t = dict(b)
    agg = agg or {}
    for c in AGG_COLUMNS:
        v = agg.get(c)
        t[c] = 0.0 if v is None and c not in _KEEP_NULL else v
    days = max(t["stay_days"], 1.0)
    cost = t["total_cost"]
    drug_days = t["drug_days"] or 0.0
    supply_days = 0.0 if t["is_inpatient"] == 1 else float(round_half_away(drug_days))
    allowed = max(t["stay_days"], 1.0) + (1 if t["died"] + t["transferred"] > 0 else 0)
    excess = max(t["bed_days"] - allowed, 0.0)
    n_lines = t["n_drug_lines"] + t["n_service_lines"]
    has_lines = n_lines > 0

    def off(a, b_):
        return cmp(abs_(sub(a, b_)), 1.0, op.gt)

    totals = bool(
        or3(
            off(t["total_drugs"], t["lines_drug_amount"]),
            off(t["total_supplies"], t["lines_supply_amount"]),
            off(cost, t["lines_amount"]),
            off(t["fund_claimed"], t["lines_fund"]),
        )
    )
    totals = or3(totals, and3(not has_lines, cmp(t["fund_claimed"], 0.0, op.gt)))
    span = t["discharge_min"] - t["admit_min"]
    short = t["visit_type"] in ("03", "04") and span < 240
    long_exam = t["visit_type"] == "01" and span > 1440
    sex_bad, age_bad = _diagnosis_checks(t)
    card_bad = bool(
        or3(
            cmp(t["admit_day"], t["card_valid_from_day"], op.lt),
            cmp(t["discharge_day"], t["card_valid_to_day"], op.gt),
        )
    )
    fund = t["fund_claimed"]
    diag = t["cost_lab"] + t["cost_imaging"] + t["cost_functional"]
    main = t["main_clinician"]
    t.update(
        clinician=main if main is not None else t["any_clinician"],
        supply_days=supply_days,
        supply_end_day=t["admit_day"] + supply_days,
        n_lines=n_lines,
        cost_per_day=None if cost is None else cost / days,
        fund_share=div(fund, cost),
        self_pay_share=div(t["patient_self_pay"], cost),
        drug_share=div(t["cost_drug"], cost),
        diag_cost=diag,
        diag_share=div(diag, cost),
        imaging_per_day=t["n_imaging"] / days,
        lab_per_day=t["n_lab"] / days,
        services_per_day=t["n_service_lines"] / days,
        drug_days_over_stay=drug_days / days if t["is_inpatient"] == 1 else None,
        bed_days_over_stay=t["bed_days"] / days if t["bed_days"] > 0 else None,
        treatment_days_gap=sub(t["treatment_days"], (t["stay_days"] + 1) * t["is_inpatient"]),
        costly_share=div(t["costly_cost"], cost),
        top_line_share=div(t["top_line_amount"], cost),
        supportive_share=div(t["supportive_cost"], cost),
        out_of_scope_share=div(t["out_of_scope_cost"], cost),
        offhours_share=div(t["offhours_lines"], n_lines),
        **it.enrich(t),
    )
    bed_rate = div(t["bed_fund"], t["bed_days"])
    rules = {
        "card_invalid": (card_bad, fund if card_bad else 0.0),
        "totals_mismatch": (
            bool(totals),
            greatest(sub(fund, t["lines_fund"]), 0.0) if totals else 0.0,
        ),
        "line_arithmetic": (t["arith_lines"] > 0, t["arith_stake"]),
        "benefit_level": (t["benefit_lines"] > 0, t["benefit_stake"]),
        "bed_on_outpatient": (t["bed_out_lines"] > 0, t["bed_out_stake"]),
        "bed_days_over_stay": (excess > 0, (0.0 if bed_rate is None else bed_rate) * excess),
        "order_outside_stay": (t["outside_lines"] > 0, t["outside_stake"]),
        "visit_type_duration": (short or long_exam, t["bed_fund"] if short else 0.0),
        "sex_diagnosis": (sex_bad, fund if sex_bad else 0.0),
        "age_diagnosis": (age_bad, fund if age_bad else 0.0),
        "price_above_approved": (t["price_lines"] > 0, t["price_stake"]),
        "item_not_listed": (t["unlisted_lines"] > 0, t["unlisted_stake"]),
        "bundled_component": (t["bundled_lines"] > 0, t["bundled_stake"]),
    }
    for name, (flag, amount) in rules.items():
        t[f"rule_{name}"] = 1 if flag else 0
        t[f"rule_{name}_amount"] = amount
    return t


def enriched_rows(
    batch: dict, facilities: dict, refs, listed: bool, items: it.ItemLookup = it.no_items
) -> list[dict]:
    """The enriched rows (assembly.enriched_claims) of a batch of canonical tables, plus each
    claim's `_lines` (its line rows, for the procedure lines and the price points)."""
    by_claim: dict[str, list[dict]] = {}
    for d in records(batch.get("drug_lines"), NEEDED["drug_lines"]):
        by_claim.setdefault(d["claim_id"], []).append(drug_line(d))
    for s in records(batch.get("service_lines"), NEEDED["service_lines"]):
        by_claim.setdefault(s["claim_id"], []).append(service_line(s))
    out = []
    for c in records(batch["claims"], NEEDED["claims"]):
        b = claim_base(c, facilities.get(c["facility_id"]))
        lines = by_claim.get(c["claim_id"], [])
        row = enrich(b, line_aggregates(lines, b, refs, listed, items))
        row["_lines"] = lines
        out.append(row)
    return out
