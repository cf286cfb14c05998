"""Per-claim features as Ibis expressions: the claim's own columns (time, stay, age, route), its
lines folded into costs per cost group, counts and intensities, and the line-level checks of the
verification rules (arithmetic, prices, order times, benefit level, bed lines).

`enrich` gives one row per claim with everything the profiles and the pair rules need; the
snapshot of the online path stores those rows, so both paths read the same definitions.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from contract.schema import COST_GROUPS

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
    by = c.birth_date.substr(0, 4).cast("int64")
    bm = c.birth_date.substr(4, 2).cast("int64")
    bd = c.birth_date.substr(6, 2).cast("int64")
    before_birthday = (bm > 0) & (
        (adm.month() < bm) | ((adm.month() == bm) & (bd > 0) & (adm.day() < bd))
    )
    age = adm.year() - by - before_birthday.ifelse(1, 0)
    leap = ((adm.year() % 4 == 0) & (adm.year() % 100 != 0)) | (adm.year() % 400 == 0)
    days_in_month = ibis.cases(
        (adm.month() == 2, leap.ifelse(29, 28)),
        (adm.month().isin([4, 6, 9, 11]), 30),
        else_=31,
    )
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


# ---------------------------------------------------------------------------------------------
# Lines


def line_table(drug_lines: ir.Table, service_lines: ir.Table) -> ir.Table:
    """Drug and service lines in one shape. `item_key` identifies the priced item: the drug code
    with its strength, the supply code, else the service code."""
    d = drug_lines
    dose = d.dosage.re_extract(DAILY_DOSE, 1).nullif("").replace(",", ".").cast("float64")
    drugs = d.select(
        claim_id=d.claim_id,
        line_key=ibis.literal("D") + d.line_no.cast("string"),
        is_drug=ibis.literal(1),
        cost_group=d.cost_group.cast("int64"),
        item_key=d.drug_code + "|" + d.strength.fill_null(""),
        scope=d.scope.cast("int64"),
        quantity=d.quantity.cast("float64"),
        unit_price=d.unit_price.cast("float64"),
        fund_unit_price=d.unit_price.cast("float64"),
        service_ratio=ibis.literal(100.0),
        insurance_ratio=d.insurance_ratio.cast("float64"),
        amount=d.amount.cast("float64"),
        insured_amount=d.insured_amount.cast("float64"),
        benefit_pct=d.benefit_pct.cast("float64"),
        line_fund=d.fund_claimed.cast("float64"),
        other_sources=d.other_sources.cast("float64"),
        clinician_id=d.clinician_id,
        performer_id=ibis.null("string"),
        ordered_at=d.ordered_at.cast("timestamp"),
        performed_at=ibis.null("timestamp"),
        result_at=ibis.null("timestamp"),
        daily_dose=(dose > 0).ifelse(dose, ibis.null("float64")),
        supportive=d.drug_name.lower().re_search(SUPPORTIVE_DRUGS).ifelse(1, 0),
    )
    s = service_lines
    services = s.select(
        claim_id=s.claim_id,
        line_key=ibis.literal("S") + s.line_no.cast("string"),
        is_drug=ibis.literal(0),
        cost_group=s.cost_group.cast("int64"),
        item_key=s.supply_code.fill_null(s.service_code),
        scope=s.scope.cast("int64"),
        quantity=s.quantity.cast("float64"),
        unit_price=s.unit_price.cast("float64"),
        fund_unit_price=s.insured_unit_price.fill_null(s.unit_price).cast("float64"),
        service_ratio=s.service_ratio.fill_null(100).cast("float64"),
        insurance_ratio=s.insurance_ratio.cast("float64"),
        amount=s.amount.cast("float64"),
        insured_amount=s.insured_amount.cast("float64"),
        benefit_pct=s.benefit_pct.cast("float64"),
        line_fund=s.fund_claimed.cast("float64"),
        other_sources=s.other_sources.cast("float64"),
        clinician_id=s.clinician_id,
        performer_id=s.performer_id,
        ordered_at=s.ordered_at.cast("timestamp"),
        performed_at=s.performed_at.cast("timestamp"),
        result_at=s.result_at.cast("timestamp"),
        daily_dose=ibis.null("float64"),
        supportive=ibis.literal(0),
    )
    return drugs.union(services)


def _line_claim(lines: ir.Table, base: ir.Table) -> ir.Table:
    b = base.select(
        b_claim_id=base.claim_id,
        month=base.month,
        facility_level=base.facility_level,
        visit_type=base.visit_type,
        admitted_at=base.admitted_at,
        discharged_at=base.discharged_at,
        card_pct=base.card_pct,
        benefit_exempt=(
            (base.facility_level == "X")
            | (base.small_episode == 1)
            | (base.copay_waived == 1)
            | base.card_pct.isnull()
        ).ifelse(1, 0),
    )
    return lines.join(b, lines.claim_id == b.b_claim_id).drop("b_claim_id")


def price_points(lines: ir.Table, base: ir.Table) -> ir.Table:
    """Distinct (item, facility level, month, fund unit price) with their line counts: what the
    learned approved-price reference is computed from (small, so the snapshot keeps it)."""
    lc = _line_claim(lines, base)
    lc = lc.filter(lc.fund_unit_price.notnull() & lc.item_key.notnull())
    return lc.group_by(
        item_key=lc.item_key, facility_level=lc.facility_level, month=lc.month,
        price=lc.fund_unit_price,
    ).agg(n=lc.count())  # fmt: skip


def learned_price_reference(points: ir.Table, months: int, quantile: float, min_lines: int):
    """Per item, level and target month: the `quantile` of the fund unit prices billed over the
    `months` months before it (a weighted quantile over the distinct prices, so exact and the same
    on every engine)."""
    offsets = ibis.memtable({"k": list(range(1, months + 1))})
    e = points.cross_join(offsets).mutate(target=points.month + offsets.k)
    g = e.group_by("item_key", "facility_level", "target", "price").agg(n=e.n.sum())
    part = [g.item_key, g.facility_level, g.target]
    w_cum = ibis.window(group_by=part, order_by=g.price, rows=(None, 0))
    w_all = ibis.window(group_by=part)
    g = g.mutate(cum=g.n.sum().over(w_cum), total=g.n.sum().over(w_all))
    g = g.filter((g.cum >= g.total * quantile) & (g.total >= min_lines))
    return g.group_by(item_key=g.item_key, facility_level=g.facility_level, month=g.target).agg(
        ref_price=g.price.min()
    )


def listed_price_reference(price_list: ir.Table, base: ir.Table) -> ir.Table:
    """An approved price list (code, level, price[, strength]) expanded to every month seen."""
    pl = price_list
    key = pl.strength.isnull().ifelse(pl.code, pl.code + "|" + pl.strength)
    months = base.select("month").distinct()
    ref = pl.select(item_key=key, facility_level=pl.level, ref_price=pl.price.cast("float64"))
    return ref.cross_join(months)


PRICE_TOLERANCE = 1.05  # a price is "above" when it exceeds the reference by more than 5 %


def _line_findings(lc: ir.Table, listed: bool) -> dict[str, tuple[ir.Value, ir.Value]]:
    """The line-level rule pieces, by rule: (the line offends, the fund money at stake)."""
    g = lc.cost_group
    fund = lc.line_fund.fill_null(0.0)
    ratio = lc.service_ratio / 100.0
    ins_ratio = lc.insurance_ratio.fill_null(100.0) / 100.0
    benefit = lc.benefit_pct.fill_null(100.0) / 100.0
    # line arithmetic (xml130.md §5.2 #4): amount = qty x price (x service ratio); insured amount
    # = qty x fund price x ratios; fund = insured x benefit - other sources
    exp_amount = lc.quantity * lc.unit_price
    exp_insured = lc.quantity * lc.fund_unit_price * ratio * ins_ratio
    exp_fund = lc.insured_amount * benefit - lc.other_sources.fill_null(0.0)
    amount_bad = ((lc.amount - exp_amount).abs() > 1.0) & (
        (lc.amount - exp_amount * ratio).abs() > 1.0
    )
    insured_bad = (lc.insured_amount - exp_insured).abs() > 1.0
    fund_bad = lc.line_fund - exp_fund > 1.0
    arith_bad = (amount_bad | insured_bad.fill_null(False) | fund_bad.fill_null(False)).fill_null(
        False
    )
    fair_fund = ibis.least(lc.insured_amount.fill_null(exp_insured), exp_insured) * benefit
    arith_stake = ibis.greatest(fund - fair_fund.fill_null(fund), 0.0)
    # price above the approved (or learned) price for the facility level
    over = lc.fund_unit_price > lc.ref_price * PRICE_TOLERANCE
    price_bad = over.fill_null(False)
    price_stake = (lc.fund_unit_price - lc.ref_price) * lc.quantity * ratio * ins_ratio * benefit
    unlisted = lc.ref_price.isnull() & lc.item_key.notnull()
    if not listed:  # a learned reference is missing for rare items: that is no finding
        unlisted = lc.is_drug < 0
    # order times outside the stay (xml130.md §5.2 #11)
    outside = (
        (lc.ordered_at < lc.admitted_at)
        | (lc.ordered_at > lc.discharged_at)
        | (lc.result_at < lc.ordered_at)
    ).fill_null(False)
    # MUC_HUONG above what the card's benefit digit allows (§5.2 #16)
    benefit_bad = ((lc.benefit_pct > lc.card_pct) & (lc.benefit_exempt == 0)).fill_null(False)
    benefit_stake = lc.insured_amount.fill_null(0.0) * (lc.benefit_pct - lc.card_pct) / 100.0
    # bed-day lines where the visit type has no beds (§5.2 #10)
    bed_out = (g.isin([15, 16]) & lc.visit_type.isin(NO_INPATIENT_BED)) | (
        (g == 14) & lc.visit_type.isin(NO_DAY_BED)
    )
    return {
        "arith": (arith_bad, arith_stake),
        "price": (price_bad, price_stake),
        "unlisted": (unlisted, fund),
        "outside": (outside, fund),
        "benefit": (benefit_bad, benefit_stake),
        "bed_out": (bed_out, fund),
    }


def line_aggregates(
    lines: ir.Table, base: ir.Table, price_ref: ir.Table, listed: bool = False
) -> ir.Table:
    """One row per claim with lines: costs per cost group, counts, drug days, and the line-level
    rule pieces (count of offending lines and fund money at stake)."""
    lc = _line_claim(lines, base)
    ref = price_ref.select(
        r_item=price_ref.item_key,
        r_level=price_ref.facility_level,
        r_month=price_ref.month,
        ref_price=price_ref.ref_price,
    )
    lc = lc.left_join(
        ref,
        [lc.item_key == ref.r_item, lc.facility_level == ref.r_level, lc.month == ref.r_month],
    ).drop("r_item", "r_level", "r_month")
    findings = _line_findings(lc, listed)
    g = lc.cost_group
    fund = lc.line_fund.fill_null(0.0)
    is_bed = g.isin(COST_GROUPS["bed"])
    drug_days = (lc.is_drug == 1).ifelse(lc.quantity / lc.daily_dose, ibis.null("float64"))
    hour = lc.ordered_at.hour()
    offhours = (lc.ordered_at.day_of_week.index() >= 5) | (hour < 7) | (hour >= 17)

    def s(cond, value=None):
        return cond.ifelse(value if value is not None else 1.0, 0.0).sum()

    aggs = {f"cost_{name}": s(g.isin(codes), lc.amount) for name, codes in COST_GROUPS.items()}
    aggs |= dict(
        n_drug_lines=lc.is_drug.sum().cast("float64"),
        n_service_lines=(1 - lc.is_drug).sum().cast("float64"),
        n_lab=s(g.isin(COST_GROUPS["lab"])),
        n_imaging=s(g.isin(COST_GROUPS["imaging"])),
        n_functional=s(g.isin(COST_GROUPS["functional"])),
        n_procedures=s(g.isin([8, 18])),
        n_exams=s(g.isin(COST_GROUPS["exam"]), lc.quantity),
        bed_days=s(is_bed, lc.quantity),
        bed_fund=s(is_bed, fund),
        exam_fund=s(g.isin(COST_GROUPS["exam"]), fund),
        drug_fund=s(lc.is_drug == 1, fund),
        drug_days=drug_days.max(),
        supportive_cost=s(lc.supportive == 1, lc.amount),
        costly_cost=s(lc.unit_price >= COSTLY_UNIT_PRICE, lc.amount),
        top_line_amount=lc.amount.max(),
        out_of_scope_cost=s(lc.scope == 2, lc.amount),
        offhours_lines=s(offhours.fill_null(False)),
        main_clinician=(g == 13).ifelse(lc.clinician_id, ibis.null("string")).min(),
        any_clinician=lc.clinician_id.min(),
        lines_drug_amount=s(lc.is_drug == 1, lc.amount),
        lines_supply_amount=s(g.isin(COST_GROUPS["supply"]), lc.amount),
        lines_amount=lc.amount.sum(),
        lines_fund=fund.sum(),
    )
    for name, (bad, stake) in findings.items():
        aggs |= {f"{name}_lines": s(bad), f"{name}_stake": s(bad, stake)}
    agg = lc.group_by(a_claim_id=lc.claim_id).agg(**aggs)
    # distinct clinicians in two plain aggregations: DISTINCT aggregates cannot spill to disk
    pairs = lines.select("claim_id", "clinician_id").distinct()
    pairs = pairs.filter(pairs.clinician_id.notnull())
    nc = pairs.group_by(c_claim_id=pairs.claim_id).agg(n_clinicians=pairs.count())
    agg = agg.left_join(nc, agg.a_claim_id == nc.c_claim_id).drop("c_claim_id")
    return agg.mutate(n_clinicians=agg.n_clinicians.fill_null(0).cast("float64"))


def procedure_lines(lines: ir.Table, base: ir.Table) -> ir.Table:
    """Surgery lines (MA_NHOM 8) with their performer and time span in minutes: what the
    simultaneous-procedure check joins (kept in the snapshot). Procedures of group 18 (dressings,
    infusions, dialysis runs) are left out: one nurse rightly runs several at once."""
    lc = _line_claim(lines, base).filter(lambda t: t.cost_group.isin(SURGERY_GROUPS))
    lc = lc.filter(lc.performer_id.notnull())
    start = lc.performed_at.fill_null(lc.ordered_at)
    sd = day_number(start)
    smin = sd * 1440 + start.hour() * 60 + start.minute()
    ed = day_number(lc.result_at)
    emin = ed * 1440 + lc.result_at.hour() * 60 + lc.result_at.minute()
    b = base.select(p_claim_id=base.claim_id, p_admit_min=base.admit_min)
    out = lc.join(b, lc.claim_id == b.p_claim_id)
    return out.select(
        claim_id=out.claim_id,
        line_key=out.line_key,
        performer_id=out.performer_id,
        admit_min=out.p_admit_min,
        start_day=sd,
        start_min=smin,
        end_min=ibis.greatest(emin.fill_null(smin + 30), smin + 1),
        line_fund=out.line_fund.fill_null(0.0),
    )


def enrich(base: ir.Table, agg: ir.Table) -> ir.Table:
    """Claim columns + line aggregates + the per-claim derived features and claim-level checks."""
    t = base.left_join(agg, base.claim_id == agg.a_claim_id).drop("a_claim_id")
    fill = {c: 0.0 for c in agg.columns if c not in ("a_claim_id", "drug_days", "top_line_amount",
                                                    "main_clinician", "any_clinician")}  # fmt: skip
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
    )
