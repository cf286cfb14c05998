"""The feature registry: every model input's name, group, unit, description and the sentence
that explains it with the claim's value and its peers' value (vi/en). The explanations of the
scoring service read it; `feature_names()` is the ordered model input list.

Categorical features are integer-coded (`categorical_names()`): visit type (MA_LOAI_KCB as int),
facility level (1 TW, 2 T, 3 H, 4 X, 0 unknown), ICD-10 chapter of the principal diagnosis (1-22,
0 unknown) and sex (1, 2, 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.schema import COST_GROUPS

FEATURE_VERSION = "1.0"


@dataclass(frozen=True)
class Feature:
    name: str
    group: str  # claim | lines | patient | facility | clinician | peer | rule
    unit: str  # VND, count, days, hours, years, share, ratio, z, code, flag, per day
    en: str
    vi: str
    template_en: str
    template_vi: str
    peer: str | None = None  # the feature holding the peers' value, when there is one
    categorical: bool = False

    def explain(self, value, peer=None, lang: str = "vi") -> str:
        """The sentence for this feature with the claim's value and the peers' value."""
        tpl = self.template_vi if lang == "vi" else self.template_en
        return tpl.format(value=fmt(value, self.unit, lang), peer=fmt(peer, self.unit, lang))


def fmt(x, unit: str, lang: str = "vi") -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "không có" if lang == "vi" else "n/a"
    x = float(x)
    sep = "." if lang == "vi" else ","
    if unit == "VND":
        return f"{x:,.0f}".replace(",", sep) + (" đ" if lang == "vi" else " VND")
    if unit == "share":
        return f"{x:.0%}"
    if unit in ("ratio", "per day"):
        return f"{x:.2f}".replace(".", "," if lang == "vi" else ".")
    if unit == "z":
        return f"{x:+.1f}".replace(".", "," if lang == "vi" else ".")
    if unit == "hours":
        return f"{x:.1f}".replace(".", "," if lang == "vi" else ".")
    return f"{x:,.0f}".replace(",", sep)


_F: list[Feature] = []


def _add(name, group, unit, en, vi, tpl_en=None, tpl_vi=None, peer=None, categorical=False):
    tpl_en = tpl_en or (en + ": {value}" + (" (peers: {peer})" if peer else ""))
    tpl_vi = tpl_vi or (vi + ": {value}" + (" (nhóm tương đồng: {peer})" if peer else ""))
    _F.append(Feature(name, group, unit, en, vi, tpl_en, tpl_vi, peer, categorical))


# -- the claim itself -------------------------------------------------------------------------
_add(
    "visit_type_code",
    "claim",
    "code",
    "Visit type (MA_LOAI_KCB)",
    "Loại khám chữa bệnh",
    categorical=True,
)
_add(
    "facility_level_code",
    "claim",
    "code",
    "Facility level (1 central … 4 commune)",
    "Tuyến cơ sở (1 trung ương … 4 xã)",
    categorical=True,
)
_add(
    "icd_chapter",
    "claim",
    "code",
    "ICD-10 chapter of the principal diagnosis",
    "Chương ICD-10 của bệnh chính",
    categorical=True,
)
_add("sex", "claim", "code", "Sex", "Giới tính", categorical=True)
_add("age_years", "claim", "years", "Age at admission", "Tuổi khi vào viện")
_add("is_emergency", "claim", "flag", "Emergency admission", "Cấp cứu")
_add("wrong_route", "claim", "flag", "Wrong-route visit (MA_DOITUONG_KCB 3.x)", "Trái tuyến")
_add("referred_in", "claim", "flag", "Referred from another facility", "Chuyển tuyến đến")
_add("referred_out", "claim", "flag", "Referred to another facility", "Chuyển tuyến đi")
_add("n_secondary_icd", "claim", "count", "Number of secondary diagnoses", "Số bệnh kèm theo")
_add("admit_hour", "claim", "hours", "Hour of admission", "Giờ vào viện")
_add("admit_weekend", "claim", "flag", "Admitted on a weekend", "Vào viện cuối tuần")
_add(
    "days_to_month_end",
    "claim",
    "days",
    "Days from admission to the end of the month",
    "Số ngày từ khi vào viện đến cuối tháng",
)
_add("died", "claim", "flag", "Patient died", "Tử vong")
_add("transferred", "claim", "flag", "Discharged by transfer", "Ra viện do chuyển tuyến")
_add("is_inpatient", "claim", "flag", "Inpatient-type visit", "Điều trị nội trú")
_add("card_pct", "claim", "share", "Benefit % of the card's benefit digit", "Mức hưởng theo mã thẻ")
_add("facility_beds", "claim", "count", "Facility's beds", "Số giường của cơ sở")
_add(
    "stay_days",
    "claim",
    "days",
    "Length of stay (days)",
    "Số ngày nằm viện",
    "The stay lasted {value} days; peers of the same diagnosis stay {peer} days",
    "Thời gian điều trị {value} ngày, nhóm cùng bệnh {peer} ngày",
    peer="peer_median_stay_days",
)
_add("stay_hours", "claim", "hours", "Length of the episode (hours)", "Thời gian lượt khám (giờ)")
_add(
    "treatment_days",
    "claim",
    "days",
    "Treatment days declared (SO_NGAY_DTRI)",
    "Số ngày điều trị kê khai",
)
_add(
    "treatment_days_gap",
    "claim",
    "days",
    "Declared treatment days beyond the stay",
    "Số ngày điều trị kê khai vượt thời gian nằm viện",
)
_add(
    "claim_cost",
    "claim",
    "VND",
    "Total cost of the claim",
    "Tổng chi phí",
    "The claim costs {value}, against {peer} for the median of its peers",
    "Tổng chi phí {value}, trung vị nhóm tương đồng {peer}",
    peer="peer_median_total_cost",
)
_add("claim_fund", "claim", "VND", "Amount claimed from the fund", "Số tiền đề nghị quỹ thanh toán")

# -- its lines --------------------------------------------------------------------------------
_GROUP_VI = {
    "lab": "xét nghiệm", "imaging": "chẩn đoán hình ảnh", "functional": "thăm dò chức năng",
    "drug": "thuốc", "blood": "máu và chế phẩm máu", "surgery": "phẫu thuật",
    "ratio_service": "DVKT thanh toán theo tỷ lệ", "supply": "vật tư y tế",
    "transport": "vận chuyển", "exam": "tiền khám", "bed": "tiền giường", "procedure": "thủ thuật",
    "other": "dịch vụ khác",
}  # fmt: skip
for _g in COST_GROUPS:
    _codes = ", ".join(map(str, COST_GROUPS[_g]))
    _peer = "peer_median_cost_drug" if _g == "drug" else None
    _add(
        f"cost_{_g}",
        "lines",
        "VND",
        f"Cost of {_g.replace('_', ' ')} (MA_NHOM {_codes})",
        f"Chi phí {_GROUP_VI[_g]}",
        peer=_peer,
    )
_add(
    "diag_cost",
    "lines",
    "VND",
    "Cost of lab, imaging and functional tests",
    "Chi phí cận lâm sàng",
    "Tests and imaging cost {value}; peers {peer}",
    "Chi phí cận lâm sàng {value}, nhóm tương đồng {peer}",
    peer="peer_median_diag_cost",
)
_add("n_drug_lines", "lines", "count", "Drug lines", "Số dòng thuốc")
_add(
    "n_service_lines",
    "lines",
    "count",
    "Service and supply lines",
    "Số dòng dịch vụ, vật tư",
    "{value} service lines; peers have {peer}",
    "{value} dòng dịch vụ, nhóm tương đồng {peer}",
    peer="peer_median_n_service_lines",
)
_add("n_lines", "lines", "count", "All lines", "Tổng số dòng chi tiết")
_add("n_lab", "lines", "count", "Lab test lines", "Số xét nghiệm")
_add("n_imaging", "lines", "count", "Imaging lines", "Số chẩn đoán hình ảnh")
_add("n_functional", "lines", "count", "Functional test lines", "Số thăm dò chức năng")
_add("n_procedures", "lines", "count", "Surgery and procedure lines", "Số phẫu thuật, thủ thuật")
_add("n_exams", "lines", "count", "Exam fees billed", "Số lần khám tính tiền")
_add(
    "bed_days",
    "lines",
    "days",
    "Bed-days billed",
    "Số ngày giường",
    "{value} bed-days billed; peers {peer}",
    "{value} ngày giường, nhóm tương đồng {peer}",
    peer="peer_median_bed_days",
)
_add(
    "drug_days",
    "lines",
    "days",
    "Longest drug supply on the claim (quantity / daily dose)",
    "Số ngày thuốc dài nhất (số lượng / liều ngày)",
)
_add("supply_days", "lines", "days", "Days of drugs taken home", "Số ngày thuốc mang về")
_add("n_clinicians", "lines", "count", "Distinct ordering clinicians", "Số bác sĩ chỉ định")
_add("cost_per_day", "lines", "VND", "Cost per day of stay", "Chi phí mỗi ngày điều trị")
_add("fund_share", "lines", "share", "Fund share of the cost", "Tỷ lệ quỹ chi trả")
_add("self_pay_share", "lines", "share", "Patient self-pay share", "Tỷ lệ người bệnh tự trả")
_add("drug_share", "lines", "share", "Drug share of the cost", "Tỷ lệ chi phí thuốc")
_add(
    "diag_share",
    "lines",
    "share",
    "Tests and imaging share of the cost",
    "Tỷ lệ chi phí cận lâm sàng",
)
_add(
    "imaging_per_day",
    "lines",
    "per day",
    "Imaging per day of stay",
    "Số chẩn đoán hình ảnh mỗi ngày",
)
_add("lab_per_day", "lines", "per day", "Lab tests per day of stay", "Số xét nghiệm mỗi ngày")
_add("services_per_day", "lines", "per day", "Service lines per day of stay", "Số dịch vụ mỗi ngày")
_add(
    "drug_days_over_stay",
    "lines",
    "ratio",
    "Inpatient drug days over the stay",
    "Số ngày thuốc so với số ngày nằm viện",
)
_add(
    "bed_days_over_stay",
    "lines",
    "ratio",
    "Bed-days over the stay",
    "Số ngày giường so với số ngày nằm viện",
)
_add(
    "costly_share",
    "lines",
    "share",
    "Share of cost in items of 1 million VND or more",
    "Tỷ lệ chi phí vật tư, dịch vụ từ 1 triệu đồng",
)
_add(
    "top_line_share",
    "lines",
    "share",
    "Share of cost in the costliest line",
    "Tỷ lệ chi phí của dòng đắt nhất",
)
_add(
    "supportive_share",
    "lines",
    "share",
    "Share of cost in supportive drugs",
    "Tỷ lệ chi phí thuốc hỗ trợ",
    "Supportive drugs make up {value} of the cost",
    "Thuốc hỗ trợ chiếm {value} tổng chi phí",
)
_add(
    "out_of_scope_share",
    "lines",
    "share",
    "Share of cost outside the insured scope",
    "Tỷ lệ chi phí ngoài phạm vi BHYT",
)
_add(
    "offhours_share",
    "lines",
    "share",
    "Share of lines ordered at night or on weekends",
    "Tỷ lệ y lệnh ngoài giờ, cuối tuần",
)

# -- item level: each line against its item statistics of the 6 months before the claim's month
# (features.lines.item_reference; docs/features.md "Item-level peer features")
_add(
    "dose_ratio_max",
    "lines",
    "ratio",
    "Highest units per day of a drug over the drug's usual for the visit type",
    "Số đơn vị thuốc mỗi ngày cao nhất so với mức thường dùng của thuốc",
    "A drug is billed at {value} times its usual units per day",
    "Có thuốc được kê {value} lần số đơn vị mỗi ngày thường dùng",
)
_add(
    "dose_ratio_weighted",
    "lines",
    "ratio",
    "Drug units per day over the usual, weighted by the lines' cost",
    "Số đơn vị thuốc mỗi ngày so với mức thường dùng (bình quân theo chi phí)",
)
_add(
    "dose_excess_amount",
    "lines",
    "VND",
    "Drug cost beyond the usual units per day",
    "Chi phí thuốc vượt mức thường dùng mỗi ngày",
    "{value} of drugs beyond their usual units per day",
    "Chi phí thuốc vượt mức thường dùng: {value}",
)
_add(
    "pricier_share",
    "lines",
    "share",
    "Share of service lines priced above their sibling codes' usual price",
    "Tỷ lệ dịch vụ có giá cao hơn mức thường gặp của nhóm dịch vụ cùng loại",
    "{value} of the service lines are the pricier codes of their sibling group",
    "{value} dòng dịch vụ là mã đắt hơn trong nhóm dịch vụ cùng loại",
)
_add(
    "rare_service_share",
    "lines",
    "share",
    "Share of the cost in items rarely billed for the diagnosis at this level",
    "Tỷ lệ chi phí dịch vụ, thuốc hiếm khi chỉ định cho bệnh này ở cùng tuyến",
    "{value} of the cost is in items peers rarely bill for this diagnosis",
    "{value} chi phí là dịch vụ, thuốc cơ sở cùng tuyến hiếm khi chỉ định cho bệnh này",
)
_add(
    "rare_lines",
    "lines",
    "count",
    "Lines rarely billed for the diagnosis at this level",
    "Số dòng hiếm khi chỉ định cho bệnh này ở cùng tuyến",
)

# -- patient history (windows end the day before the claim) ----------------------------------
for _n in (7, 30, 90, 365):
    _add(
        f"pat_visits_{_n}d",
        "patient",
        "count",
        f"Patient's visits in the previous {_n} days",
        f"Số lượt KCB của người bệnh trong {_n} ngày trước",
    )
for _n in (90, 365):
    _add(
        f"pat_cost_{_n}d",
        "patient",
        "VND",
        f"Patient's cost in the previous {_n} days",
        f"Chi phí của người bệnh trong {_n} ngày trước",
    )
    _add(
        f"pat_facilities_{_n}d",
        "patient",
        "count",
        f"Distinct facilities visited in the previous {_n} days",
        f"Số cơ sở người bệnh đã đến trong {_n} ngày trước",
    )
_add(
    "pat_inpatient_365d",
    "patient",
    "count",
    "Patient's stays in the previous 365 days",
    "Số đợt nằm viện trong 365 ngày trước",
)
_add(
    "pat_days_since_last",
    "patient",
    "days",
    "Days since the patient's previous visit",
    "Số ngày từ lần KCB trước",
)
_add(
    "pat_days_since_last_here",
    "patient",
    "days",
    "Days since the patient's previous visit at this facility",
    "Số ngày từ lần KCB trước tại cơ sở này",
)
_add(
    "pat_supply_remaining_days",
    "patient",
    "days",
    "Days of earlier drug supply still running at admission",
    "Số ngày thuốc của đơn trước còn lại khi đến khám",
)
_add(
    "pat_died_before",
    "patient",
    "flag",
    "An earlier claim recorded the patient's death",
    "Hồ sơ trước ghi nhận đã tử vong",
)
_add(
    "pat_identity_mismatch",
    "patient",
    "flag",
    "Sex or birth date differ from the person's earlier claims",
    "Giới tính, ngày sinh khác các hồ sơ trước của cùng người",
)
_add(
    "chronic_supply_left_days",
    "patient",
    "days",
    "Days left on an earlier long drug supply (overlap check)",
    "Số ngày thuốc còn lại của đơn dài ngày trước",
)

# -- facility: rolling windows and monthly profile as of the end of the previous month --------
for _n in (7, 30):
    _add(
        f"fac_claims_{_n}d",
        "facility",
        "count",
        f"Facility's claims of this visit type in the previous {_n} days",
        f"Số hồ sơ cùng loại KCB của cơ sở trong {_n} ngày trước",
    )
    _add(
        f"fac_cost_mean_{_n}d",
        "facility",
        "VND",
        f"Facility's cost per visit of this type in the previous {_n} days",
        f"Chi phí bình quân lượt cùng loại của cơ sở trong {_n} ngày trước",
    )
_add(
    "cost_vs_fac_30d",
    "facility",
    "ratio",
    "Claim cost over the facility's 30-day mean",
    "Chi phí so với bình quân 30 ngày của cơ sở",
)
_add(
    "fac_cost_shift_7d",
    "facility",
    "ratio",
    "Facility's last-7-day cost per visit over its previous month",
    "Chi phí bình quân 7 ngày gần nhất so với tháng trước của cơ sở",
)
_add(
    "fac_claims_prev_month",
    "facility",
    "count",
    "Facility's claims last month",
    "Số hồ sơ của cơ sở tháng trước",
)
_add(
    "fac_cost_per_visit_prev",
    "facility",
    "VND",
    "Facility's cost per visit of this type last month",
    "Chi phí bình quân lượt cùng loại của cơ sở tháng trước",
    "The facility's cost per visit was {value} last month; facilities of its level {peer}",
    "Chi phí bình quân lượt của cơ sở tháng trước {value}, cơ sở cùng tuyến {peer}",
    peer="fac_peer_cost_per_visit_prev",
)
_add(
    "fac_peer_cost_per_visit_prev",
    "facility",
    "VND",
    "Median cost per visit of same-level facilities last month",
    "Trung vị chi phí bình quân lượt của cơ sở cùng tuyến tháng trước",
)
_add(
    "fac_cost_vs_peers",
    "facility",
    "ratio",
    "Facility's cost per visit over same-level peers (last month)",
    "Chi phí bình quân lượt của cơ sở so với cơ sở cùng tuyến",
    "The facility bills {value} times what same-level facilities bill per visit",
    "Cơ sở có chi phí bình quân lượt gấp {value} lần cơ sở cùng tuyến",
)
_add(
    "fac_growth_yoy",
    "facility",
    "ratio",
    "Facility's cost per visit last month over the same month a year before",
    "Chi phí bình quân lượt tháng trước so với cùng kỳ năm trước",
    "The facility's cost per visit is {value} times that of a year before",
    "Chi phí bình quân lượt của cơ sở gấp {value} lần cùng kỳ năm trước",
)
_add(
    "fac_growth_trend",
    "facility",
    "ratio",
    "Facility's cost per visit last month over the three months before",
    "Chi phí bình quân lượt tháng trước so với ba tháng trước đó",
    "The facility's cost per visit grew to {value} times its recent trend",
    "Chi phí bình quân lượt của cơ sở tăng {value} lần so với xu hướng gần đây",
)
_add(
    "fac_inpatient_share",
    "facility",
    "share",
    "Facility's inpatient share last month",
    "Tỷ lệ điều trị nội trú của cơ sở tháng trước",
)
_add(
    "fac_bed_occupancy",
    "facility",
    "share",
    "Facility's bed-days billed over its beds",
    "Công suất giường bệnh (ngày giường / số giường)",
    "Bed-days billed last month fill {value} of the facility's beds",
    "Ngày giường thanh toán tháng trước bằng {value} công suất giường",
)
_add(
    "fac_imaging_rate",
    "facility",
    "per day",
    "Facility's imaging per claim last month",
    "Số chẩn đoán hình ảnh mỗi hồ sơ của cơ sở tháng trước",
)
_add(
    "fac_cost_index",
    "facility",
    "ratio",
    "Facility's cost over the peer median for the same diagnoses (last month)",
    "Chi phí của cơ sở so với trung vị cùng bệnh (tháng trước)",
)
_add(
    "fac_case_mix",
    "facility",
    "VND",
    "Expected cost of the facility's diagnosis mix",
    "Chi phí kỳ vọng theo cơ cấu bệnh của cơ sở",
)
_add(
    "fac_stay_index",
    "facility",
    "ratio",
    "Facility's stays over the peer median for the same diagnoses (last month)",
    "Thời gian nằm viện của cơ sở so với trung vị cùng bệnh (tháng trước)",
)

# -- clinician --------------------------------------------------------------------------------
_add(
    "clin_claims_hour",
    "clinician",
    "count",
    "Clinician's claims in the hour up to this one",
    "Số hồ sơ của bác sĩ trong 60 phút đến lượt này",
)
_add(
    "clin_claims_today",
    "clinician",
    "count",
    "Clinician's claims that day up to this one",
    "Số hồ sơ của bác sĩ trong ngày đến lượt này",
)
_add(
    "clin_claims_prev_month",
    "clinician",
    "count",
    "Clinician's claims last month",
    "Số hồ sơ của bác sĩ tháng trước",
)
_add(
    "clin_claims_per_day",
    "clinician",
    "per day",
    "Clinician's claims per working day",
    "Số hồ sơ mỗi ngày làm việc của bác sĩ",
)
_add(
    "clin_peak_hour",
    "clinician",
    "count",
    "Clinician's busiest hour last month (claims)",
    "Số hồ sơ trong giờ cao điểm của bác sĩ tháng trước",
)
_add(
    "clin_cost_per_claim",
    "clinician",
    "VND",
    "Clinician's cost per claim last month",
    "Chi phí bình quân hồ sơ của bác sĩ tháng trước",
)
_add(
    "clin_cost_vs_peers",
    "clinician",
    "ratio",
    "Clinician's cost per claim over same-level clinicians",
    "Chi phí bình quân hồ sơ của bác sĩ so với bác sĩ cùng tuyến",
)
_add(
    "clin_cost_index",
    "clinician",
    "ratio",
    "Clinician's cost over the peer median for the same diagnoses",
    "Chi phí của bác sĩ so với trung vị cùng bệnh",
)
_add(
    "clin_referral_share",
    "clinician",
    "share",
    "Clinician's share of claims referred out",
    "Tỷ lệ chuyển tuyến của bác sĩ",
)
_add(
    "clin_referral_concentration",
    "clinician",
    "share",
    "Share of the clinician's referrals going to one facility",
    "Tỷ lệ chuyển tuyến của bác sĩ đến cùng một cơ sở",
    "{value} of this clinician's referrals go to one facility",
    "{value} ca chuyển tuyến của bác sĩ đến cùng một cơ sở",
)

# -- peer deviations (diagnosis block x visit type x facility level, previous 6 months) --------
_METRIC = {
    "total_cost": ("total cost", "tổng chi phí", "VND"),
    "cost_drug": ("drug cost", "chi phí thuốc", "VND"),
    "diag_cost": ("tests and imaging cost", "chi phí cận lâm sàng", "VND"),
    "n_service_lines": ("service lines", "số dòng dịch vụ", "count"),
    "stay_days": ("length of stay", "số ngày điều trị", "days"),
    "bed_days": ("bed-days", "số ngày giường", "days"),
}
_add(
    "peer_n",
    "peer",
    "count",
    "Peer claims (same diagnosis, visit type, level; 6 months)",
    "Số hồ sơ trong nhóm tương đồng (cùng bệnh, loại KCB, tuyến; 6 tháng)",
)
for _m, (_en, _vi, _unit) in _METRIC.items():
    _add(
        f"peer_median_{_m}",
        "peer",
        _unit,
        f"Peers' median {_en}",
        f"Trung vị {_vi} của nhóm tương đồng",
    )
    _add(
        f"peer_ratio_{_m}",
        "peer",
        "ratio",
        f"{_en.capitalize()} over the peers' median",
        f"{_vi.capitalize()} so với trung vị nhóm tương đồng",
        f"The claim's {_en} is {{value}} times the peers' median",
        f"{_vi.capitalize()} gấp {{value}} lần trung vị nhóm tương đồng",
    )
    _add(
        f"peer_z_{_m}",
        "peer",
        "z",
        f"Robust z-score of the {_en} among peers",
        f"Độ lệch chuẩn hóa của {_vi} so với nhóm tương đồng",
        f"The claim's {_en} lies {{value}} robust deviations from its peers",
        f"{_vi.capitalize()} lệch {{value}} độ lệch chuẩn so với nhóm tương đồng",
    )

# -- rules --------------------------------------------------------------------------------------
from features.rules import RULES  # noqa: E402  (rules depend on nothing here)

for _r in RULES:
    _add(
        _r.flag,
        "rule",
        "flag",
        f"[{_r.code}] {_r.what_en}",
        f"[{_r.code}] {_r.what_vi}",
        f"Rule {_r.code}: {_r.what_en}",
        f"Quy tắc {_r.code}: {_r.what_vi}",
    )
    _add(
        _r.amount,
        "rule",
        "VND",
        f"[{_r.code}] amount at stake: {_r.stake_en}",
        f"[{_r.code}] số tiền liên quan",
        f"Rule {_r.code} puts {{value}} at stake",
        f"Quy tắc {_r.code}: số tiền liên quan {{value}}",
    )
_add("rule_count", "rule", "count", "Rules the claim breaks", "Số quy tắc vi phạm")
_add(
    "rule_amount",
    "rule",
    "VND",
    "Largest amount at stake over the rules (≤ the fund amount)",
    "Số tiền liên quan lớn nhất theo quy tắc",
)

FEATURES: dict[str, Feature] = {f.name: f for f in _F}
assert len(FEATURES) == len(_F), "duplicate feature name"


def feature_names() -> list[str]:
    """The model inputs, in order."""
    return list(FEATURES)


def categorical_names() -> list[str]:
    return [f.name for f in _F if f.categorical]


def explain(name: str, value, peer=None, lang: str = "vi") -> str:
    return FEATURES[name].explain(value, peer, lang)
