"""The verification rules (xml130.md §5.2): deterministic checks, each giving a flag, the fund
money at stake, a reason code and a message (vi/en). They are model features and hard reasons.

Checks on one claim and its own lines live in `claim_features` and `lines` (line arithmetic,
totals, prices, order times, benefit level, beds, visit type, sex and age vs diagnosis, card
validity); the checks that compare claims with each other live here (duplicates, overlapping
stays, overlapping drug supply, simultaneous procedures, clinician volume, deceased patient).
Every comparison looks only at claims admitted before the claim (same minute: the smaller MA_LK
first), so the earlier claim of a pair is never flagged by the later one.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir


@dataclass(frozen=True)
class Rule:
    code: str
    name: str  # feature columns: rule_<name> (0/1) and rule_<name>_amount (VND at stake)
    what_en: str
    what_vi: str
    stake_en: str
    message_en: str
    message_vi: str

    @property
    def flag(self) -> str:
        return f"rule_{self.name}"

    @property
    def amount(self) -> str:
        return f"rule_{self.name}_amount"

    def message(self, amount: float, lang: str = "vi") -> str:
        text = self.message_vi if lang == "vi" else self.message_en
        return text.format(amount=_vnd(amount, lang))


def _vnd(x: float, lang: str = "vi") -> str:
    if x != x:
        return "?"
    return f"{x:,.0f}".replace(",", ".") + " đ" if lang == "vi" else f"{x:,.0f} VND"


R = Rule
RULES: tuple[Rule, ...] = (
    R("R01", "card_invalid",
      "Card not valid on the visit dates (GT_THE_TU after NGAY_VAO or GT_THE_DEN before NGAY_RA)",
      "Thẻ BHYT không còn giá trị trong thời gian khám chữa bệnh",
      "the whole fund amount",
      "The card was not valid on the visit dates; {amount} claimed from the fund.",
      "Thẻ BHYT không có giá trị sử dụng trong thời gian điều trị; đề nghị thanh toán {amount}."),
    R("R02", "totals_mismatch",
      "Claim totals differ from the sums of its lines (T_THUOC, T_VTYT, T_TONGCHI_BV, T_BHTT)",
      "Tổng tiền trên XML1 không khớp tổng các dòng chi tiết XML2/XML3",
      "the fund amount claimed beyond the sum of the lines",
      "Claim totals do not match the lines; {amount} claimed beyond what the lines add up to.",
      "Tổng hợp chi phí không khớp chi tiết; {amount} đề nghị vượt tổng các dòng chi tiết."),
    R("R03", "line_arithmetic",
      "Line arithmetic wrong: amount ≠ quantity × price × ratios, or fund share above MUC_HUONG",
      "Thành tiền dòng chi tiết không đúng số lượng × đơn giá × tỷ lệ",
      "fund money on the lines beyond what quantity × price × ratios give",
      "Line amounts do not follow quantity × price × ratios; {amount} above the correct amount.",
      "Thành tiền không đúng số lượng × đơn giá × tỷ lệ; chênh lệch {amount}."),
    R("R04", "benefit_level",
      "MUC_HUONG above the card's benefit digit (not a small episode, commune station or waiver)",
      "Mức hưởng cao hơn mức hưởng theo mã thẻ",
      "insured amount × the excess percentage points",
      "Benefit level above the card's entitlement; {amount} paid in excess.",
      "Mức hưởng vượt quyền lợi ghi trên thẻ; chênh lệch {amount}."),
    R("R05", "bed_on_outpatient",
      "Bed-day lines (MA_NHOM 14-16) on a visit type without beds (exam, drug pickup, < 4 h)",
      "Thanh toán ngày giường cho lượt khám ngoại trú hoặc nội trú dưới 4 giờ",
      "the fund amount of those bed lines",
      "Bed-days billed on a visit that has no bed; {amount}.",
      "Tính ngày giường cho lượt khám không được tính giường; {amount}."),
    R("R06", "bed_days_over_stay",
      "Bed-days billed beyond the stay (more than NGAY_RA − NGAY_VAO, +1 for death or transfer)",
      "Số ngày giường vượt số ngày điều trị thực tế",
      "the excess bed-days × the fund amount per bed-day",
      "More bed-days billed than the stay had; {amount} for the extra days.",
      "Số ngày giường vượt thời gian nằm viện; {amount} cho số ngày vượt."),
    R("R07", "order_outside_stay",
      "Order times (NGAY_YL) outside the stay, or a result before its order",
      "Y lệnh ngoài thời gian điều trị",
      "the fund amount of those lines",
      "Items ordered outside the stay; {amount}.",
      "Y lệnh ngoài khoảng thời gian vào viện - ra viện; {amount}."),
    R("R08", "visit_type_duration",
      "Visit type vs duration: inpatient (03/04) under 4 h (should be 09), exam (01) over 24 h",
      "Loại KCB không phù hợp thời gian điều trị (nội trú dưới 4 giờ)",
      "the bed-day fund amount of an inpatient stay under 4 h",
      "Visit type does not fit the duration; {amount} of bed-days at stake.",
      "Mã loại KCB không phù hợp thời gian điều trị; {amount} tiền giường."),
    R("R09", "sex_diagnosis",
      "Principal diagnosis specific to the other sex (ICD-10 sex edits)",
      "Chẩn đoán không phù hợp giới tính",
      "the whole fund amount",
      "The diagnosis does not fit the patient's sex (possible borrowed card); {amount}.",
      "Chẩn đoán không phù hợp giới tính người bệnh (nghi mượn thẻ); {amount}."),
    R("R10", "age_diagnosis",
      "Principal diagnosis implausible at the patient's age (perinatal, pregnancy, senility...)",
      "Chẩn đoán không phù hợp tuổi",
      "the whole fund amount",
      "The diagnosis does not fit the patient's age (possible borrowed card); {amount}.",
      "Chẩn đoán không phù hợp tuổi người bệnh (nghi mượn thẻ); {amount}."),
    R("R11", "duplicate",
      "Duplicate: an earlier claim of the same person, facility and day with near-identical lines",
      "Hồ sơ trùng lặp",
      "the whole fund amount of the later claim",
      "Same person, facility and day as an earlier claim with the same lines; {amount}.",
      "Trùng người bệnh, cơ sở, ngày và chi phí với một hồ sơ trước; {amount}."),
    R("R12", "overlapping_stay",
      "Overlapping episodes of one person at two facilities (one of them a stay)",
      "Thời gian điều trị chồng lấn tại hai cơ sở",
      "the whole fund amount of the later claim",
      "The person was being treated at another facility at the same time; {amount}.",
      "Người bệnh đang điều trị tại cơ sở khác cùng thời gian; {amount}."),
    R("R13", "chronic_supply_overlap",
      "A long drug supply (≥ 14 days) for a diagnosis whose earlier supply has > 7 days left",
      "Cấp thuốc ngoại trú trùng thời gian với đơn thuốc trước",
      "the drug fund amount × the share of the supply already covered",
      "Drugs supplied again while an earlier supply for the same diagnosis still had more than "
      "7 days left; {amount}.",
      "Cấp thuốc khi đơn trước cùng bệnh còn trên 7 ngày thuốc; {amount}."),
    R("R14", "price_above_approved",
      "Unit price above the approved price for the facility level (price list, else the 90th "
      "percentile of the previous 3 months + 5 %)",
      "Đơn giá cao hơn giá được phê duyệt theo hạng cơ sở",
      "(price − approved price) × quantity × ratios × MUC_HUONG",
      "Prices above the approved price; {amount} above it.",
      "Đơn giá vượt giá phê duyệt; chênh lệch {amount}."),
    R("R15", "item_not_listed",
      "Item not in the approved price list for the facility level (only with a price list)",
      "Thuốc, dịch vụ không có trong danh mục được phê duyệt",
      "the fund amount of those lines",
      "Items outside the approved list; {amount}.",
      "Thuốc, DVKT ngoài danh mục được phê duyệt; {amount}."),
    R("R16", "clinician_volume",
      "Implausible clinician volume: more than 12 claims in an hour or 65 in a day",
      "Số lượt khám của bác sĩ vượt định mức",
      "the exam fee fund amount",
      "The clinician billed more than 12 claims in an hour or 65 in a day; {amount} of exam fees.",
      "Bác sĩ khám quá 12 lượt trong một giờ hoặc 65 lượt trong ngày; {amount} tiền khám."),
    R("R17", "simultaneous_procedures",
      "The performer's surgeries (MA_NHOM 8) overlap in time with surgeries of another claim",
      "Người thực hiện có thủ thuật, phẫu thuật trùng thời gian",
      "the fund amount of the overlapping procedure lines",
      "The performer was doing another procedure at the same time; {amount}.",
      "Người thực hiện đồng thời làm thủ thuật khác; {amount}."),
    R("R18", "deceased_patient",
      "A visit after an earlier claim recorded the patient's death",
      "Khám chữa bệnh sau khi đã tử vong",
      "the whole fund amount",
      "An earlier claim recorded this patient's death; {amount}.",
      "Hồ sơ trước ghi nhận người bệnh đã tử vong; {amount}."),
    R("R19", "bundled_component",
      "A service already included in the price of another service billed with it (anaesthesia "
      "or infusion with a surgery, a suture with a delivery), ordered at the same time",
      "Thanh toán tách riêng chi phí đã có trong giá dịch vụ kỹ thuật",
      "the fund amount of the component lines",
      "Billed apart from a service whose price already includes it; {amount}.",
      "Thanh toán riêng chi phí đã kết cấu trong giá dịch vụ kỹ thuật; {amount}."),
)  # fmt: skip
RULE_BY_NAME = {r.name: r for r in RULES}
# The rules whose flag proves money the fund does not owe, whatever a model says: the same claim
# billed twice, a component billed apart from the service whose price includes it, bed-days beyond
# the stay. The queue's head may hold the claims they prove (configs/train.toml [priority]
# head_rules, a subset; scoring.ranking.proven_of).
PROVING_RULES = ("duplicate", "bundled_component", "bed_days_over_stay")


def proven_by_codes(rule_codes, names=PROVING_RULES) -> bool:
    """A stored row's rule codes (",R11,R14,", as the case store keeps them; None or not text:
    none) name one of the rules `names`: each code matched whole."""
    text = rule_codes if isinstance(rule_codes, str) else ""
    return any(f",{RULE_BY_NAME[n].code}," in text for n in names)


CLINICIAN_HOUR_MAX = 12
CLINICIAN_DAY_MAX = 65
PAIR_DAYS = 90  # the pair checks look this many days back
SIMULTANEOUS_MIN = 10  # surgeries of one performer overlapping by more than 10 minutes
CHRONIC_MIN_SUPPLY = 14
CHRONIC_MAX_LEFT = 7


def rule_columns() -> list[str]:
    return [c for r in RULES for c in (r.flag, r.amount)]


def _before(b_min, b_id, a_min, a_id):
    return (b_min < a_min) | ((b_min == a_min) & (b_id < a_id))


def pair_rules(e: ir.Table, targets: ir.Table) -> ir.Table:
    """Duplicates, overlapping episodes and overlapping drug supply of each target claim against
    the same person's earlier claims. Keyed pr_claim_id."""
    a = targets.select(
        a_id=targets.claim_id,
        a_person=targets.person_key,
        a_fac=targets.facility_id,
        a_day=targets.admit_day,
        a_min=targets.admit_min,
        a_cost=targets.total_cost,
        a_lines=targets.n_lines,
        a_stay=targets.is_stay,
        a_from=targets.referred_from,
        a_supply=targets.supply_days,
        a_icd=targets.icd3,
    )
    b = e.select(
        b_id=e.claim_id,
        b_person=e.person_key,
        b_fac=e.facility_id,
        b_day=e.admit_day,
        b_min=e.admit_min,
        b_end=e.discharge_min,
        b_cost=e.total_cost,
        b_lines=e.n_lines,
        b_stay=e.is_stay,
        b_supply=e.supply_days,
        b_supply_end=e.supply_end_day,
        b_icd=e.icd3,
    )
    j = a.join(
        b,
        [
            a.a_person == b.b_person,
            b.b_day >= a.a_day - PAIR_DAYS,
            b.b_day <= a.a_day,
            b.b_id != a.a_id,
        ],
    )
    j = j.filter(_before(j.b_min, j.b_id, j.a_min, j.a_id))
    dup = (
        (j.b_fac == j.a_fac)
        & (j.b_day == j.a_day)
        & (j.b_lines == j.a_lines)
        & ((j.b_cost - j.a_cost).abs() <= ibis.greatest(j.a_cost, j.b_cost) * 0.01)
    )
    overlap = (
        (j.b_fac != j.a_fac)
        & ((j.a_stay + j.b_stay) > 0)
        & (j.b_end - j.a_min >= 60)
        & (j.a_from.isnull() | (j.a_from != j.b_fac))
    )
    left = (j.b_supply_end - j.a_day).cast("float64")
    chronic = (
        (j.b_icd == j.a_icd)
        & (j.b_supply >= CHRONIC_MIN_SUPPLY)
        & (j.a_supply >= CHRONIC_MIN_SUPPLY)
        & (left > CHRONIC_MAX_LEFT)
    )
    g = j.group_by(pr_claim_id=j.a_id).agg(
        pr_duplicate=dup.ifelse(1, 0).max(),
        pr_overlap=overlap.ifelse(1, 0).max(),
        pr_chronic_left=chronic.ifelse(left, 0.0).max(),
    )
    return g


def procedure_rule(procs: ir.Table, target_ids: ir.Table) -> ir.Table:
    """Procedure lines of target claims that overlap in time with a procedure of the same
    performer on an earlier-admitted claim. Keyed sp_claim_id."""
    ids = target_ids.select(t_id=target_ids.claim_id)
    a = procs.join(ids, procs.claim_id == ids.t_id).drop("t_id")
    a = a.select(
        a_id=a.claim_id, a_line=a.line_key, a_perf=a.performer_id, a_day=a.start_day,
        a_start=a.start_min, a_end=a.end_min, a_min=a.admit_min, a_fund=a.line_fund,
    )  # fmt: skip
    b = procs.select(
        b_id=procs.claim_id, b_perf=procs.performer_id, b_day=procs.start_day,
        b_start=procs.start_min, b_end=procs.end_min, b_min=procs.admit_min,
    )  # fmt: skip
    j = a.join(
        b,
        [
            a.a_perf == b.b_perf,
            b.b_day >= a.a_day - 1,
            b.b_day <= a.a_day + 1,
            b.b_id != a.a_id,
            b.b_start < a.a_end - SIMULTANEOUS_MIN,
            a.a_start < b.b_end - SIMULTANEOUS_MIN,
        ],
    )
    j = j.filter(_before(j.b_min, j.b_id, j.a_min, j.a_id))
    per_line = j.group_by(l_id=j.a_id, l_line=j.a_line).agg(l_fund=j.a_fund.max())
    return per_line.group_by(sp_claim_id=per_line.l_id).agg(
        sp_lines=per_line.count().cast("float64"), sp_fund=per_line.l_fund.sum()
    )


def cross_claim_rules(t: ir.Table) -> dict[str, ir.Value]:
    """Rule columns from the pair, procedure and window results joined onto the targets."""
    dup = t.pr_duplicate.fill_null(0)
    ovl = t.pr_overlap.fill_null(0)
    left = t.pr_chronic_left.fill_null(0.0)
    chronic = left > 0
    supply = ibis.greatest(t.supply_days, 1.0)
    volume = (t.n_exams > 0) & (
        (t.clin_claims_hour > CLINICIAN_HOUR_MAX) | (t.clin_claims_today > CLINICIAN_DAY_MAX)
    )
    sim = t.sp_lines.fill_null(0.0) > 0
    dead = t.pat_died_before > 0
    return {
        "rule_duplicate": dup,
        "rule_duplicate_amount": (dup > 0).ifelse(t.fund_claimed, 0.0),
        "rule_overlapping_stay": ovl,
        "rule_overlapping_stay_amount": (ovl > 0).ifelse(t.fund_claimed, 0.0),
        "rule_chronic_supply_overlap": chronic.ifelse(1, 0),
        "rule_chronic_supply_overlap_amount": chronic.ifelse(
            t.drug_fund * ibis.least(left / supply, 1.0), 0.0
        ),
        "chronic_supply_left_days": left,
        "rule_clinician_volume": volume.ifelse(1, 0),
        "rule_clinician_volume_amount": volume.ifelse(t.exam_fund, 0.0),
        "rule_simultaneous_procedures": sim.ifelse(1, 0),
        "rule_simultaneous_procedures_amount": t.sp_fund.fill_null(0.0),
        "rule_deceased_patient": dead.ifelse(1, 0),
        "rule_deceased_patient_amount": dead.ifelse(t.fund_claimed, 0.0),
    }
