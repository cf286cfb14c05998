"""A claim's lines: drug and service lines in one table, their prices against the approved (or
learned) price for the facility level, and per claim the aggregates, counts and line-level rule
pieces (arithmetic, price, unlisted items, order times, benefit level, bed-days: the offending
lines and the fund money at stake). Plain Ibis expressions, like the claim's own columns
(features.claim_features)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from contract.schema import COST_GROUPS
from features.claim_features import (
    COSTLY_UNIT_PRICE,
    DAILY_DOSE,
    NO_DAY_BED,
    NO_INPATIENT_BED,
    SUPPORTIVE_DRUGS,
    SURGERY_GROUPS,
    day_number,
)


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
        icd3=base.icd3,
        stay_days=base.stay_days,
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
    learned approved-price reference is computed from (small, so the snapshot keeps it).

    The item statistics (`item_reference`) ride along as pseudo items whose key says what they
    count: `dose:<item>|<visit type>` with a drug line's units per day of stay as the "price",
    `dx:<icd3>|<item>` one per line billed for that principal diagnosis, `dx:<icd3>|` one per
    claim of it (price 0). So the snapshot, the online plan and the online state carry them
    wherever they carry the price points."""
    lc = _line_claim(lines, base)
    real = lc.filter(lc.fund_unit_price.notnull() & lc.item_key.notnull())
    real = real.select(item_key=real.item_key, facility_level=real.facility_level,
                       month=real.month, price=real.fund_unit_price)  # fmt: skip
    upd = units_per_day(lc)
    dose = lc.filter(upd.notnull() & lc.visit_type.notnull())
    dose = dose.select(item_key="dose:" + dose.item_key + "|" + dose.visit_type,
                       facility_level=dose.facility_level, month=dose.month,
                       price=units_per_day(dose))  # fmt: skip
    dx = lc.filter(lc.icd3.notnull() & lc.item_key.notnull())
    dx = dx.select(item_key="dx:" + dx.icd3 + "|" + dx.item_key,
                   facility_level=dx.facility_level, month=dx.month,
                   price=ibis.literal(0.0))  # fmt: skip
    b = base.filter(base.icd3.notnull())
    per_claim = b.select(item_key="dx:" + b.icd3 + "|", facility_level=b.facility_level,
                         month=b.month, price=ibis.literal(0.0))  # fmt: skip
    pts = real.union(dose).union(dx).union(per_claim)
    return pts.group_by("item_key", "facility_level", "month", "price").agg(n=pts.count())


# -- item statistics: usual dose, sibling prices, diagnosis-item rates -------------------------
ITEM_MONTHS = 6  # item statistics read the 6 months before the claim's month
ITEM_MIN = 10  # fewer lines (dose, siblings) or claims (diagnosis) than this: no statistic
RARE_RATE = 0.05  # an item billed on fewer than 5 % of the diagnosis' claims is rare for it


def units_per_day(lc: ir.Table) -> ir.Value:
    """A drug line's units per day of its claim's stay (a day for visits without a stay)."""
    ok = (lc.is_drug == 1) & (lc.quantity > 0) & lc.item_key.notnull()
    return ok.ifelse(lc.quantity / ibis.greatest(lc.stay_days, 1.0), ibis.null("float64"))


def sibling_key(item_key: ir.StringValue) -> ir.StringValue:
    """A service or supply code's sibling group: its catalogue chapter, the part before the
    first "." (XX of XX.YYYY.ZZZZ for technical services, e.g. 18 imaging; Nxx of supply
    codes). Drug lines (item keys with "|") have none: their codes share one prefix."""
    prefix = item_key.re_extract(r"^([^.|]+)\.", 1).nullif("")
    return item_key.contains("|").ifelse(ibis.null("string"), prefix)


def item_reference(points: ir.Table) -> ir.Table:
    """Per (key, facility level, target month) the item statistics over the ITEM_MONTHS months
    before it, one table (item_key, facility_level, month, value):
    - `dose:<item>|<visit type>`: the median units per day (ITEM_MIN lines at least);
    - `sib:<chapter>`: the median fund unit price of the chapter's lines (ITEM_MIN at least);
    - `dx:<icd3>|<item>` / `dx:<icd3>|`: lines of the item / claims of the diagnosis."""
    is_pseudo = points.item_key.startswith("dose:") | points.item_key.startswith("dx:")
    real = points.filter(~is_pseudo)
    sib = real.mutate(item_key="sib:" + sibling_key(real.item_key))
    sib = sib.filter(sib.item_key.notnull())
    dose = points.filter(points.item_key.startswith("dose:"))
    med = learned_price_reference(dose.union(sib), ITEM_MONTHS, 0.5, ITEM_MIN)
    med = med.select("item_key", "facility_level", "month", value=med.ref_price)
    dx = points.filter(points.item_key.startswith("dx:"))
    offsets = ibis.memtable({"k": list(range(1, ITEM_MONTHS + 1))})
    dx = dx.cross_join(offsets)
    counts = dx.group_by(item_key=dx.item_key, facility_level=dx.facility_level,
                         month=dx.month + dx.k).agg(value=dx.n.sum().cast("float64"))  # fmt: skip
    return med.union(counts)


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

# Services already paid within another service's price (xml130.md §5.2: the portal rejects an item
# "already in a service's price"): component code -> the parents whose price includes it, each a
# service code or "group:N" (every service of cost group N, MA_NHOM). A component line ordered at
# the same moment (NGAY_YL) as one of its parents on the same claim is billed twice: the rule
# bundled_component. The price circular's notes on what a service's price includes are the full
# table; these are the common cases (anaesthesia and infusion within a surgery; suture and
# infusion within a normal delivery).
SURGERY_PARENT = "group:8"
BUNDLED_IN: dict[str, tuple[str, ...]] = {
    "01.0253.0384": (SURGERY_PARENT,),  # endotracheal anaesthesia
    "01.0201.0212": (SURGERY_PARENT, "13.0003.0665"),  # intravenous infusion
    "03.3826.0217": ("13.0003.0665",),  # soft-tissue suture < 10 cm, within a normal delivery
}
BUNDLE_PARENTS: tuple[str, ...] = tuple(sorted({p for ps in BUNDLED_IN.values() for p in ps}))


def parent_kinds(item_key: str | None, cost_group) -> list[str]:
    """The BUNDLE_PARENTS a line is (its service code, its cost group; a component is never a
    parent): claim.py's and batch.py's side of `_bundled`."""
    out: list[str] = []
    if item_key in BUNDLED_IN:
        return out
    for p in BUNDLE_PARENTS:
        if p.startswith("group:"):
            if cost_group is not None and cost_group == cost_group and int(p[6:]) == cost_group:
                out.append(p)
        elif item_key == p:
            out.append(p)
    return out


def _is_parent(lc: ir.Table, p: str) -> ir.BooleanValue:
    component = lc.item_key.isin(list(BUNDLED_IN)).fill_null(False)
    if p.startswith("group:"):
        return (lc.cost_group == int(p[6:])).fill_null(False) & ~component
    return (lc.item_key == p).fill_null(False) & ~component


def _bundled(lc: ir.Table) -> ir.Table:
    """The lines with `bundled`: a component of BUNDLED_IN ordered at the same time as one of its
    parents on the same claim."""
    kinds = {p: _is_parent(lc, p) for p in BUNDLE_PARENTS}
    anyp = ibis.or_(*kinds.values())
    par = lc.filter(anyp & lc.ordered_at.notnull())
    par = par.group_by(q_claim_id=par.claim_id, q_at=par.ordered_at).agg(
        **{f"q_{i}": _is_parent(par, p).ifelse(1, 0).max() for i, p in enumerate(BUNDLE_PARENTS)}
    )
    lc = lc.left_join(par, [lc.claim_id == par.q_claim_id, lc.ordered_at == par.q_at])
    hit = ibis.literal(False)
    for code, parents in BUNDLED_IN.items():
        with_parent = ibis.or_(*((lc[f"q_{BUNDLE_PARENTS.index(p)}"] == 1) for p in parents))
        hit = hit | ((lc.item_key == code) & with_parent.fill_null(False)).fill_null(False)
    drop = ["q_claim_id", "q_at", *(f"q_{i}" for i in range(len(BUNDLE_PARENTS)))]
    return lc.mutate(bundled=hit).drop(*drop)


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
        "bundled": (lc.bundled, fund),
    }


def _join_items(lc: ir.Table, items: ir.Table) -> ir.Table:
    """The line with its item statistics (item_reference): usual units per day of the drug for
    the visit type, the usual price of the sibling group, the diagnosis' claims and its lines
    of the item."""
    keys = {
        "dose_ref": "dose:" + lc.item_key + "|" + lc.visit_type,
        "sib_ref": "sib:" + sibling_key(lc.item_key),
        "dx_item_n": "dx:" + lc.icd3 + "|" + lc.item_key,
        "dx_claims": "dx:" + lc.icd3 + "|",
    }
    lc = lc.mutate(**{f"k_{name}": key for name, key in keys.items()})
    for name in keys:
        r = items.select(
            j_key=items.item_key, j_level=items.facility_level, j_month=items.month,
            **{name: items.value},
        )  # fmt: skip
        lc = lc.left_join(
            r,
            [lc[f"k_{name}"] == r.j_key, lc.facility_level == r.j_level, lc.month == r.j_month],
        ).drop("j_key", "j_level", "j_month", f"k_{name}")
    return lc


def item_pieces(lc: ir.Table) -> dict[str, ir.Value]:
    """Per line: units per day over the drug's usual (dose_ratio), priced above its sibling
    group's usual price (pricier; null without a sibling statistic), rare for the diagnosis
    at the level (rare; null when the diagnosis has fewer than ITEM_MIN claims)."""
    upd = units_per_day(lc)
    ratio = (lc.dose_ref > 0).ifelse(upd / lc.dose_ref, ibis.null("float64"))
    has_sib = lc.sib_ref.notnull() & lc.fund_unit_price.notnull()
    pricier = has_sib.ifelse(
        lc.fund_unit_price > lc.sib_ref * PRICE_TOLERANCE, ibis.null("boolean")
    )
    known = lc.dx_claims >= ITEM_MIN
    rare = known.ifelse(lc.dx_item_n.fill_null(0.0) < lc.dx_claims * RARE_RATE,
                        ibis.null("boolean"))  # fmt: skip
    return {"dose_ratio": ratio, "pricier": pricier, "rare": rare}


def line_aggregates(
    lines: ir.Table,
    base: ir.Table,
    price_ref: ir.Table,
    listed: bool = False,
    items: ir.Table | None = None,
) -> ir.Table:
    """One row per claim with lines: costs per cost group, counts, drug days, the line-level
    rule pieces (count of offending lines and fund money at stake) and, with `items`
    (item_reference), the item-level pieces (dose, pricier siblings, rare services)."""
    lc = _bundled(_line_claim(lines, base))
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
    if items is None:
        items = ibis.memtable(
            {"item_key": [], "facility_level": [], "month": [], "value": []},
            schema={"item_key": "string", "facility_level": "string", "month": "int64",
                    "value": "float64"},
        )  # fmt: skip
    lc = _join_items(lc, items)
    findings = _line_findings(lc, listed)
    piece = item_pieces(lc)
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
        dose_ratio_max=piece["dose_ratio"].max(),
        dose_amount=s(piece["dose_ratio"].notnull(), lc.amount),
        dose_ratio_amount=s(piece["dose_ratio"].notnull(), lc.amount * piece["dose_ratio"]),
        dose_excess_amount=s(
            piece["dose_ratio"] > 1.0, lc.amount * (1.0 - 1.0 / piece["dose_ratio"])
        ),
        n_sibling_lines=s(piece["pricier"].notnull()),
        n_pricier_lines=s(piece["pricier"].fill_null(False)),
        dx_known_amount=s(piece["rare"].notnull(), lc.amount),
        rare_lines=s(piece["rare"].fill_null(False)),
        rare_amount=s(piece["rare"].fill_null(False), lc.amount),
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
