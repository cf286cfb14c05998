"""Per-claim features as Ibis expressions: the claim's own columns (time, stay, age, route) and
`enrich`, which joins them with the claim's lines folded into costs per cost group, counts,
intensities and the line-level checks of the verification rules (those live in features.lines:
arithmetic, prices, order times, benefit level, bed lines).

`enrich` gives one row per claim with everything the profiles and the pair rules need; the
snapshot of the online path stores those rows, so both paths read the same definitions.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

EPOCH = ibis.date("1970-01-01")
# Visit types whose episode is a stay (xml130.md §4.1): beds and overlapping stays are judged on
# these; 09 (under 4 h) is inpatient-type but must not bill beds.
STAY_TYPES = ("03", "04", "06")
INPATIENT_TYPES = ("03", "04", "06", "09")
# Where bed-day lines (MA_NHOM 14-16) have no place (xml130.md §5.2 #10): inpatient bed-days
# (15, 16) outside stays, and day-care beds (14) on exams, drug pickups and stays under 4 h.
NO_INPATIENT_BED = ("01", "02", "05", "07", "08", "09")
NO_DAY_BED = ("01", "05", "07", "09")
SURGERY_GROUPS = (8,)
LEVEL_CODES = {"TW": 1, "T": 2, "H": 3, "X": 4}
# Base salary (lương cơ sở) by start date, VND: 15 % of it is the small-episode threshold under
# which the fund pays 100 % regardless of the card's benefit digit.
BASE_SALARY = ((ibis.date("2024-07-01"), 2_340_000), (ibis.date("2023-07-01"), 1_800_000))
BASE_SALARY_BEFORE = 1_490_000
CARD_PCT = {"1": 100, "2": 100, "3": 95, "4": 80, "5": 100}
COSTLY_UNIT_PRICE = 1_000_000  # VND; a line item at or above this unit price is "costly"
# Supportive drugs that verification letters single out (brain/liver "tonics", albumin outside
# its indications, vitamins in infusions): matched on the lower-cased drug name.
SUPPORTIVE_DRUGS = (
    r"albumin|glutathion|ornithin|citicolin|cerebrolysin|ginkgo|piracetam|arginin|"
    r"cholin alfoscerat|peptid|vitamin|acetyl.?leucin|silymarin|tanakan"
)
# Drug lines: the daily total in square brackets at the end of LIEU_DUNG ("... [3]", "[0,5]").
DAILY_DOSE = r"\[([0-9]+(?:[.,][0-9]+)?)\]"

# ICD-10 chapters by the first three characters (WHO ranges).
ICD_CHAPTERS = (
    ("A00", "B99"), ("C00", "D48"), ("D50", "D89"), ("E00", "E90"), ("F00", "F99"),
    ("G00", "G99"), ("H00", "H59"), ("H60", "H95"), ("I00", "I99"), ("J00", "J99"),
    ("K00", "K93"), ("L00", "L99"), ("M00", "M99"), ("N00", "N99"), ("O00", "O99"),
    ("P00", "P96"), ("Q00", "Q99"), ("R00", "R99"), ("S00", "T98"), ("V01", "Y98"),
    ("Z00", "Z99"), ("U00", "U99"),
)  # fmt: skip

# Sex-specific ICD-10 blocks (the ICD-10 sex edits; TT 06 "sex" column): (first, last, sex).
SEX_SPECIFIC = (
    ("B26", "B26", 1), ("C60", "C63", 1), ("D29", "D29", 1), ("D40", "D40", 1),
    ("E29", "E29", 1), ("N40", "N51", 1), ("Q53", "Q55", 1), ("R86", "R86", 1),
    ("C51", "C58", 2), ("D06", "D07", 2), ("D25", "D28", 2), ("D39", "D39", 2),
    ("E28", "E28", 2), ("N70", "N98", 2), ("O00", "O99", 2), ("Q50", "Q52", 2),
    ("R87", "R87", 2), ("Z32", "Z37", 2), ("Z39", "Z39", 2),
)  # fmt: skip
# Age-specific blocks: (first, last, min age, max age) in whole years at admission.
AGE_SPECIFIC = (
    ("P00", "P96", 0, 0),  # perinatal conditions: first year of life
    ("O00", "O99", 10, 55),  # pregnancy, childbirth
    ("Z32", "Z37", 10, 55),
    ("R95", "R95", 0, 0),  # sudden infant death
    ("N95", "N95", 30, 120),  # menopausal disorders
    ("R54", "R54", 50, 120),  # senility
    ("C61", "C61", 20, 120),  # prostate cancer
    ("N40", "N40", 30, 120),  # prostatic hyperplasia
)  # fmt: skip


def day_number(ts: ir.TimestampValue) -> ir.IntegerValue:
    return ts.date().delta(EPOCH, unit="day")


def _in_blocks(icd3: ir.StringValue, blocks) -> ir.BooleanValue:
    cond = ibis.literal(False)
    for lo, hi, *_ in blocks:
        cond = cond | ((icd3 >= lo) & (icd3 <= hi))
    return cond


def _safe_div(a, b):
    return (b != 0).ifelse(a / b, ibis.null("float64"))


# ---------------------------------------------------------------------------------------------
# The claim's own columns


def _age_years(adm: ir.TimestampValue, birth_date: ir.StringValue) -> ir.IntegerValue:
    """Whole years at admission from NGAY_SINH (yyyymmdd[hhmm]; month or day 00 when unknown)."""
    by = birth_date.substr(0, 4).cast("int64")
    bm = birth_date.substr(4, 2).cast("int64")
    bd = birth_date.substr(6, 2).cast("int64")
    before_birthday = (bm > 0) & (
        (adm.month() < bm) | ((adm.month() == bm) & (bd > 0) & (adm.day() < bd))
    )
    return adm.year() - by - before_birthday.ifelse(1, 0)


def _days_in_month(adm: ir.TimestampValue) -> ir.IntegerValue:
    leap = ((adm.year() % 4 == 0) & (adm.year() % 100 != 0)) | (adm.year() % 400 == 0)
    return ibis.cases(
        (adm.month() == 2, leap.ifelse(29, 28)),
        (adm.month().isin([4, 6, 9, 11]), 30),
        else_=31,
    )


def claim_base(claims: ir.Table, facilities: ir.Table) -> ir.Table:
    """One row per claim: keys, time as day and minute numbers, stay, age, route, money."""
    fac = facilities.select(
        fac_id=facilities.facility_id,
        facility_level=facilities.level,
        facility_beds=facilities.beds.cast("float64"),
    )  # ingest keeps one row per facility code
    c = claims.left_join(fac, claims.facility_id == fac.fac_id).drop("fac_id")
    adm, dis = c.admitted_at, c.discharged_at
    admit_day = day_number(adm)
    discharge_day = day_number(dis)
    level = c.facility_level.fill_null("U")
    icd = c.primary_icd.upper().replace(".", "")
    icd3 = icd.substr(0, 3)
    chapter = ibis.cases(
        *[((icd3 >= lo) & (icd3 <= hi), i + 1) for i, (lo, hi) in enumerate(ICD_CHAPTERS)],
        else_=0,
    )
    age = _age_years(adm, c.birth_date)
    days_in_month = _days_in_month(adm)
    card_digit = c.card_number.substr(2, 1)
    card_pct = ibis.cases(*[(card_digit == k, v) for k, v in CARD_PCT.items()], else_=None)
    base_salary = ibis.cases(
        *[(adm.date() >= d, v) for d, v in BASE_SALARY], else_=BASE_SALARY_BEFORE
    )
    n_secondary = (c.secondary_icd.length() - c.secondary_icd.replace(";", "").length() + 1).cast(
        "int64"
    )
    route = c.route_code.fill_null("")
    out = c.select(
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
        facility_level=level,
        facility_beds=c.facility_beds,
        visit_type_code=c.visit_type.cast("int64"),
        facility_level_code=ibis.cases(*[(level == k, v) for k, v in LEVEL_CODES.items()], else_=0),
        icd3=icd3,
        icd_chapter=chapter,
        peer_key=icd3 + "|" + c.visit_type + "|" + level,
        admit_day=admit_day,
        admit_min=admit_day * 1440 + adm.hour() * 60 + adm.minute(),
        discharge_day=discharge_day,
        discharge_min=discharge_day * 1440 + dis.hour() * 60 + dis.minute(),
        month=adm.year() * 12 + adm.month() - 1,
        stay_days=(discharge_day - admit_day).cast("float64"),
        stay_hours=((discharge_day - admit_day) * 24 + dis.hour() - adm.hour()).cast("float64")
        + (dis.minute() - adm.minute()).cast("float64") / 60.0,
        treatment_days=c.treatment_days.cast("float64"),
        age_years=age.cast("float64"),
        sex=c.sex.cast("int64"),
        is_emergency=(route == "2").ifelse(1, 0),
        wrong_route=route.startswith("3").ifelse(1, 0),
        referred_in=c.referred_from.notnull().ifelse(1, 0),
        referred_out=c.referred_to.notnull().ifelse(1, 0),
        n_secondary_icd=c.secondary_icd.isnull().ifelse(0, n_secondary).cast("float64"),
        admit_hour=adm.hour().cast("float64"),
        admit_weekend=(adm.day_of_week.index() >= 5).ifelse(1, 0),
        days_to_month_end=(days_in_month - adm.day()).cast("float64"),
        died=c.outcome.isin([5, 8]).ifelse(1, 0),
        transferred=c.discharge_type.isin([2, 5]).ifelse(1, 0),
        is_stay=c.visit_type.isin(STAY_TYPES).ifelse(1, 0),
        is_inpatient=c.visit_type.isin(INPATIENT_TYPES).ifelse(1, 0),
        card_pct=card_pct,
        card_valid_from_day=c.card_valid_from.substr(0, 8)
        .as_date("%Y%m%d")
        .delta(EPOCH, unit="day"),
        card_valid_to_day=c.card_valid_to.right(8).as_date("%Y%m%d").delta(EPOCH, unit="day"),
        copay_waived=c.copay_waiver_date.notnull().ifelse(1, 0),
        small_episode=(c.total_insured_cost.fill_null(c.total_cost) < base_salary * 0.15).ifelse(
            1, 0
        ),
        total_cost=c.total_cost,
        fund_claimed=c.fund_claimed,
        total_drugs=c.total_drugs,
        total_supplies=c.total_supplies,
        total_insured_cost=c.total_insured_cost,
        patient_self_pay=c.patient_self_pay,
        patient_copay=c.patient_copay,
    )
    return out


def enrich(base: ir.Table, agg: ir.Table) -> ir.Table:
    """Claim columns + line aggregates + the per-claim derived features and claim-level checks."""
    t = base.left_join(agg, base.claim_id == agg.a_claim_id).drop("a_claim_id")
    fill = {c: 0.0 for c in agg.columns if c not in ("a_claim_id", "drug_days", "top_line_amount",
                                                    "main_clinician", "any_clinician",
                                                    "dose_ratio_max")}  # fmt: skip
    t = t.mutate(**{c: t[c].fill_null(v) for c, v in fill.items()})
    days = ibis.greatest(t.stay_days, 1.0)
    cost = t.total_cost
    drug_days = t.drug_days.fill_null(0.0)
    supply_days = (t.is_inpatient == 1).ifelse(0.0, drug_days).round(0)
    allowed_beds = ibis.greatest(t.stay_days, 1.0) + ((t.died + t.transferred) > 0).ifelse(1, 0)
    excess_beds = ibis.greatest(t.bed_days - allowed_beds, 0.0)
    has_lines = (t.n_drug_lines + t.n_service_lines) > 0
    totals_bad = (
        ((t.total_drugs - t.lines_drug_amount).abs() > 1.0)
        | ((t.total_supplies - t.lines_supply_amount).abs() > 1.0)
        | ((t.total_cost - t.lines_amount).abs() > 1.0)
        | ((t.fund_claimed - t.lines_fund).abs() > 1.0)
    ).fill_null(False) | (~has_lines & (t.fund_claimed > 0))
    short_stay = t.visit_type.isin(["03", "04"]) & (t.discharge_min - t.admit_min < 240)
    long_exam = (t.visit_type == "01") & (t.discharge_min - t.admit_min > 1440)
    icd3 = t.icd3
    sex_bad = ibis.literal(False)
    for lo, hi, sex in SEX_SPECIFIC:
        sex_bad = sex_bad | ((icd3 >= lo) & (icd3 <= hi) & t.sex.isin([1, 2]) & (t.sex != sex))
    age_bad = ibis.literal(False)
    for lo, hi, amin, amax in AGE_SPECIFIC:
        age_bad = age_bad | (
            (icd3 >= lo) & (icd3 <= hi) & ((t.age_years < amin) | (t.age_years > amax))
        )
    card_bad = (t.admit_day < t.card_valid_from_day) | (t.discharge_day > t.card_valid_to_day)
    return t.mutate(
        clinician=t.main_clinician.fill_null(t.any_clinician),
        supply_days=supply_days,
        supply_end_day=t.admit_day + supply_days,
        n_lines=t.n_drug_lines + t.n_service_lines,
        cost_per_day=cost / days,
        fund_share=_safe_div(t.fund_claimed, cost),
        self_pay_share=_safe_div(t.patient_self_pay, cost),
        drug_share=_safe_div(t.cost_drug, cost),
        diag_cost=t.cost_lab + t.cost_imaging + t.cost_functional,
        diag_share=_safe_div(t.cost_lab + t.cost_imaging + t.cost_functional, cost),
        imaging_per_day=t.n_imaging / days,
        lab_per_day=t.n_lab / days,
        services_per_day=t.n_service_lines / days,
        drug_days_over_stay=(t.is_inpatient == 1).ifelse(drug_days / days, ibis.null("float64")),
        bed_days_over_stay=(t.bed_days > 0).ifelse(t.bed_days / days, ibis.null("float64")),
        treatment_days_gap=t.treatment_days - (t.stay_days + 1) * t.is_inpatient,
        costly_share=_safe_div(t.costly_cost, cost),
        top_line_share=_safe_div(t.top_line_amount, cost),
        supportive_share=_safe_div(t.supportive_cost, cost),
        out_of_scope_share=_safe_div(t.out_of_scope_cost, cost),
        offhours_share=_safe_div(t.offhours_lines, t.n_drug_lines + t.n_service_lines),
        # item-level pieces against the item statistics of earlier months (features.lines)
        dose_ratio_weighted=_safe_div(t.dose_ratio_amount, t.dose_amount),
        pricier_share=_safe_div(t.n_pricier_lines, t.n_sibling_lines),
        rare_service_share=_safe_div(t.rare_amount, t.dx_known_amount),
        # claim-level checks
        rule_card_invalid=card_bad.fill_null(False).ifelse(1, 0),
        rule_card_invalid_amount=card_bad.fill_null(False).ifelse(t.fund_claimed, 0.0),
        rule_totals_mismatch=totals_bad.ifelse(1, 0),
        rule_totals_mismatch_amount=totals_bad.ifelse(
            ibis.greatest(t.fund_claimed - t.lines_fund, 0.0), 0.0
        ),
        rule_line_arithmetic=(t.arith_lines > 0).ifelse(1, 0),
        rule_line_arithmetic_amount=t.arith_stake,
        rule_benefit_level=(t.benefit_lines > 0).ifelse(1, 0),
        rule_benefit_level_amount=t.benefit_stake,
        rule_bed_on_outpatient=(t.bed_out_lines > 0).ifelse(1, 0),
        rule_bed_on_outpatient_amount=t.bed_out_stake,
        rule_bed_days_over_stay=(excess_beds > 0).ifelse(1, 0),
        rule_bed_days_over_stay_amount=_safe_div(t.bed_fund, t.bed_days).fill_null(0.0)
        * excess_beds,
        rule_order_outside_stay=(t.outside_lines > 0).ifelse(1, 0),
        rule_order_outside_stay_amount=t.outside_stake,
        rule_visit_type_duration=(short_stay | long_exam).ifelse(1, 0),
        rule_visit_type_duration_amount=short_stay.ifelse(t.bed_fund, 0.0),
        rule_sex_diagnosis=sex_bad.fill_null(False).ifelse(1, 0),
        rule_sex_diagnosis_amount=sex_bad.fill_null(False).ifelse(t.fund_claimed, 0.0),
        rule_age_diagnosis=age_bad.fill_null(False).ifelse(1, 0),
        rule_age_diagnosis_amount=age_bad.fill_null(False).ifelse(t.fund_claimed, 0.0),
        rule_price_above_approved=(t.price_lines > 0).ifelse(1, 0),
        rule_price_above_approved_amount=t.price_stake,
        rule_item_not_listed=(t.unlisted_lines > 0).ifelse(1, 0),
        rule_item_not_listed_amount=t.unlisted_stake,
        rule_bundled_component=(t.bundled_lines > 0).ifelse(1, 0),
        rule_bundled_component_amount=t.bundled_stake,
    )
