"""The data contract: canonical tables, dtypes and units, and the one mapping from XML 130 names.

Every stage imports this module. XML 130 names (4750 layout, with the older 4210 names as aliases)
appear only here and at the edges (ingest, the API schema, exports); the rest of the code speaks the
canonical snake_case names. Money is VND with 2 decimals; timestamps are naive local time (UTC+7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

SCHEMA_VERSION = "1.0"

Kind = Literal["text", "code", "int", "quantity", "money", "timestamp", "date", "birth"]

# Canonical pandas dtypes per kind. Codes stay strings so leading zeros and dots survive.
DTYPES: dict[str, str] = {
    "text": "str",
    "code": "str",
    "birth": "str",
    "int": "Int64",
    "quantity": "float64",
    "money": "float64",
    "timestamp": "datetime64[us]",
    "date": "datetime64[us]",
}
# Decimals kept for each numeric kind (xml130.md §4.6): quantities and unit prices 3, amounts 2.
DECIMALS = {"quantity": 3, "money": 2}


@dataclass(frozen=True)
class Field:
    """One column of a canonical table and the XML 130 field it comes from."""

    name: str
    xml: str
    kind: Kind
    required: bool = False
    description: str = ""
    max_len: int | None = None
    pattern: str | None = None
    allowed: tuple[int, ...] | None = None
    aliases: tuple[str, ...] = ()
    personal: bool = False

    @property
    def dtype(self) -> str:
        return DTYPES[self.kind]

    @property
    def unit(self) -> str:
        return {
            "money": "VND",
            "timestamp": "local time UTC+7, minute",
            "date": "local date UTC+7",
        }.get(self.kind, "")


@dataclass(frozen=True)
class Table:
    name: str
    xml_table: str  # XML1, XML2, XML3, or "" for tables that have no XML 130 counterpart
    fields: tuple[Field, ...]
    description: str = ""

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required(self) -> list[Field]:
        return [f for f in self.fields if f.required]

    def by_xml(self) -> dict[str, Field]:
        """XML name (and every accepted alias) -> field."""
        out: dict[str, Field] = {}
        for f in self.fields:
            out[f.xml] = f
            for a in f.aliases:
                out[a] = f
        return out

    def empty(self) -> pd.DataFrame:
        return pd.DataFrame({f.name: pd.Series([], dtype=f.dtype) for f in self.fields})


# Patterns for codes whose format is fixed by the standard (xml130.md §2-§4).
FACILITY = r"^[0-9A-Z]{5}$"
ICD10 = r"^[A-Z][0-9]{2}(\.?[0-9A-Z]{1,4})?$"
ICD10_LIST = r"^[A-Z][0-9]{2}(\.?[0-9A-Z]{1,4})?(;[A-Z][0-9]{2}(\.?[0-9A-Z]{1,4})?){0,11}$"
CARD = r"^[A-Z]{2}[0-9]{13}$"
CARD_LIST = r"^[A-Z]{2}[0-9]{13}(;[A-Z]{2}[0-9]{13})*$"
DATE8_LIST = r"^[0-9]{8}(;[0-9]{8})*$"
FACILITY_LIST = r"^[0-9A-Z]{5}(;[0-9A-Z]{5})*$"
VISIT_TYPE = r"^[0-9]{2}$"
ROUTE = r"^[0-9]{1,2}(\.[0-9]{1,2})?$"
BED = r"^[HTCK][0-9]{3}(;[HTCK][0-9]{3})*$"
BIRTH = r"^[0-9]{8}([0-9]{4})?$"

F = Field

CLAIMS = Table(
    "claims",
    "XML1",
    (
        F(
            "claim_id",
            "MA_LK",
            "code",
            True,
            "Episode key linking every table",
            100,
            pattern=r"^\S+$",
        ),
        F("seq", "STT", "int", description="Sequence number within the submission"),
        F("patient_id", "MA_BN", "code", True, "Facility's own patient ID", 100, personal=True),
        F("patient_name", "HO_TEN", "text", description="Patient name", max_len=255, personal=True),
        F(
            "national_id",
            "SO_CCCD",
            "code",
            description="National ID or passport",
            max_len=15,
            personal=True,
        ),
        F(
            "birth_date",
            "NGAY_SINH",
            "birth",
            True,
            "Date of birth yyyyMMdd[HHmm]; 0000 = unknown",
            12,
            BIRTH,
        ),
        F("sex", "GIOI_TINH", "int", True, "1 male, 2 female, 3 undetermined", allowed=(1, 2, 3)),
        F("blood_group", "NHOM_MAU", "code", max_len=5),
        F("nationality_code", "MA_QUOCTICH", "code", max_len=3),
        F("ethnicity_code", "MA_DANTOC", "code", max_len=2),
        F("occupation_code", "MA_NGHE_NGHIEP", "code", max_len=5),
        F("address", "DIA_CHI", "text", max_len=1024, personal=True),
        F("residence_province", "MATINH_CU_TRU", "code", max_len=3),
        F("residence_district", "MAHUYEN_CU_TRU", "code", max_len=3),
        F("residence_commune", "MAXA_CU_TRU", "code", max_len=5),
        F("phone", "DIEN_THOAI", "code", max_len=15, personal=True),
        F(
            "card_number",
            "MA_THE_BHYT",
            "code",
            description="Insurance card number(s), ';'",
            max_len=50,
            pattern=CARD_LIST,
            aliases=("MA_THE",),
            personal=True,
        ),
        F("registered_facility", "MA_DKBD", "code", max_len=50, pattern=FACILITY_LIST),
        F(
            "card_valid_from",
            "GT_THE_TU",
            "code",
            description="yyyyMMdd per card, ';'",
            max_len=50,
            pattern=DATE8_LIST,
        ),
        F(
            "card_valid_to",
            "GT_THE_DEN",
            "code",
            description="yyyyMMdd per card, ';'",
            max_len=50,
            pattern=DATE8_LIST,
        ),
        F("copay_waiver_date", "NGAY_MIEN_CCT", "code", max_len=50, aliases=("MIEN_CUNG_CT",)),
        F("visit_reason", "LY_DO_VV", "text"),
        F("admission_reason", "LY_DO_VNT", "text"),
        F("admission_reason_code", "MA_LY_DO_VNT", "code", max_len=5),
        F("admission_diagnosis", "CHAN_DOAN_VAO", "text"),
        F("discharge_diagnosis", "CHAN_DOAN_RV", "text", aliases=("TEN_BENH",)),
        F(
            "primary_icd",
            "MA_BENH_CHINH",
            "code",
            True,
            "Principal ICD-10 code",
            7,
            ICD10,
            aliases=("MA_BENH",),
        ),
        F(
            "secondary_icd",
            "MA_BENH_KT",
            "code",
            description="Secondary ICD-10 codes, ';', <= 12",
            max_len=100,
            pattern=ICD10_LIST,
            aliases=("MA_BENHKHAC",),
        ),
        F("traditional_icd", "MA_BENH_YHCT", "code", max_len=255),
        F("procedure_codes", "MA_PTTT_QT", "code", max_len=125),
        F(
            "route_code",
            "MA_DOITUONG_KCB",
            "code",
            description="Beneficiary / route category",
            max_len=4,
            pattern=ROUTE,
            aliases=("MA_LYDO_VVIEN",),
        ),
        F("referred_from", "MA_NOI_DI", "code", max_len=5, aliases=("MA_NOI_CHUYEN",)),
        F("referred_to", "MA_NOI_DEN", "code", max_len=5),
        F("injury_type", "MA_TAI_NAN", "int"),
        F("admitted_at", "NGAY_VAO", "timestamp", True, "Arrival time"),
        F("inpatient_admitted_at", "NGAY_VAO_NOI_TRU", "timestamp"),
        F("discharged_at", "NGAY_RA", "timestamp", True, "End of the visit or treatment"),
        F("referral_number", "GIAY_CHUYEN_TUYEN", "code", max_len=50),
        F("treatment_days", "SO_NGAY_DTRI", "int", True, "Treatment days as declared"),
        F("treatment_method", "PP_DIEU_TRI", "text"),
        F("outcome", "KET_QUA_DTRI", "int", description="1 cured ... 5 died ... 8"),
        F("discharge_type", "MA_LOAI_RV", "int", aliases=("TINH_TRANG_RV",)),
        F("note", "GHI_CHU", "text"),
        F("paid_at", "NGAY_TTOAN", "timestamp"),
        F("total_drugs", "T_THUOC", "money", True, "Sum of drug lines at hospital price"),
        F("total_supplies", "T_VTYT", "money", True, "Sum of supply lines (groups 10, 11)"),
        F(
            "total_cost",
            "T_TONGCHI_BV",
            "money",
            True,
            "Total cost at hospital price",
            aliases=("T_TONGCHI",),
        ),
        F("total_insured_cost", "T_TONGCHI_BH", "money", description="Total within insured scope"),
        F("patient_self_pay", "T_BNTT", "money", True, "Patient pays, outside the scope"),
        F("patient_copay", "T_BNCCT", "money", True, "Patient co-payment inside the scope"),
        F("fund_claimed", "T_BHTT", "money", True, "Amount claimed from the fund"),
        F("other_sources", "T_NGUONKHAC", "money"),
        F(
            "fund_claimed_ffs",
            "T_BHTT_GDV",
            "money",
            description="Fund amount outside capitation",
            aliases=("T_NGOAIDS",),
        ),
        F("settlement_year", "NAM_QT", "int"),
        F("settlement_month", "THANG_QT", "int"),
        F("visit_type", "MA_LOAI_KCB", "code", True, "Visit type 01..16", 2, VISIT_TYPE),
        F("department_codes", "MA_KHOA", "code", max_len=50),
        F("facility_id", "MA_CSKCB", "code", True, "Treating facility", 5, FACILITY),
        F("living_area", "MA_KHUVUC", "code", max_len=2),
        F("weight_kg", "CAN_NANG", "code", max_len=6),
        F("newborn_weights", "CAN_NANG_CON", "code", max_len=100),
        F("five_year_date", "NAM_NAM_LIEN_TUC", "code", max_len=8),
        F("reexam_dates", "NGAY_TAI_KHAM", "code", max_len=50),
        F("record_number", "MA_HSBA", "code", max_len=100),
        F("signer_id", "MA_TTDV", "code", max_len=10, personal=True),
        F("reserved", "DU_PHONG", "text"),
    ),
    "One row per care episode (XML1, TONG_HOP).",
)

_OTHER_SOURCES = (
    F("other_state_budget", "T_NGUONKHAC_NSNN", "money"),
    F("other_foreign_aid", "T_NGUONKHAC_VTNN", "money"),
    F("other_domestic_aid", "T_NGUONKHAC_VTTN", "money"),
    F("other_remaining", "T_NGUONKHAC_CL", "money"),
    F("other_sources", "T_NGUONKHAC", "money"),
)

DRUG_LINES = Table(
    "drug_lines",
    "XML2",
    (
        F("claim_id", "MA_LK", "code", True, "Episode key", 100, pattern=r"^\S+$"),
        F("line_no", "STT", "int", True, "Line number"),
        F("drug_code", "MA_THUOC", "code", True, "Active-ingredient code", 255),
        F("processing_method", "MA_PP_CHEBIEN", "code", max_len=255),
        F("drug_source_facility", "MA_CSKCB_THUOC", "code", max_len=10),
        F("cost_group", "MA_NHOM", "int", True, "Cost group (MA_NHOM)", allowed=(4, 5, 6, 7, 17)),
        F("drug_name", "TEN_THUOC", "text", max_len=1024),
        F("unit", "DON_VI_TINH", "text", max_len=50),
        F("strength", "HAM_LUONG", "text", max_len=1024),
        F("route", "DUONG_DUNG", "code", max_len=4),
        F("dosage_form", "DANG_BAO_CHE", "text", max_len=1024),
        F("dosage", "LIEU_DUNG", "text", max_len=1024),
        F("instructions", "CACH_DUNG", "text", max_len=1024),
        F("registration_number", "SO_DANG_KY", "code", max_len=255),
        F("tender_info", "TT_THAU", "code", max_len=50),
        F("scope", "PHAM_VI", "int", allowed=(1, 2, 3)),
        F(
            "insurance_ratio",
            "TYLE_TT_BH",
            "int",
            description="Insurance payment %",
            aliases=("TYLE_TT",),
        ),
        F("quantity", "SO_LUONG", "quantity", True),
        F("unit_price", "DON_GIA", "quantity", True, "Unit price, VND (3 decimals)"),
        F("amount", "THANH_TIEN_BV", "money", True, "Quantity x price", aliases=("THANH_TIEN",)),
        F("insured_amount", "THANH_TIEN_BH", "money"),
        *_OTHER_SOURCES,
        F("benefit_pct", "MUC_HUONG", "int", description="Benefit %"),
        F("patient_self_pay", "T_BNTT", "money"),
        F("patient_copay", "T_BNCCT", "money"),
        F("fund_claimed", "T_BHTT", "money", True),
        F("department_code", "MA_KHOA", "code", max_len=50),
        F("clinician_id", "MA_BAC_SI", "code", max_len=255),
        F("service_codes", "MA_DICH_VU", "code", max_len=255),
        F("ordered_at", "NGAY_YL", "timestamp", True),
        F("performed_at", "NGAY_TH_YL", "timestamp"),
        F("payment_method", "MA_PTTT", "int", allowed=(1, 2, 3)),
        F("supply_source", "NGUON_CTRA", "int"),
        F("war_wound", "VET_THUONG_TP", "int"),
        F("reserved", "DU_PHONG", "text"),
    ),
    "One row per drug line (XML2, CHI_TIET_THUOC).",
)

SERVICE_LINES = Table(
    "service_lines",
    "XML3",
    (
        F("claim_id", "MA_LK", "code", True, "Episode key", 100, pattern=r"^\S+$"),
        F("line_no", "STT", "int", True, "Line number"),
        F("service_code", "MA_DICH_VU", "code", max_len=50),
        F("procedure_codes", "MA_PTTT_QT", "code", max_len=255),
        F("supply_code", "MA_VAT_TU", "code", max_len=255),
        F(
            "cost_group",
            "MA_NHOM",
            "int",
            True,
            "Cost group (MA_NHOM)",
            allowed=(1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19),
        ),
        F("supply_package", "GOI_VTYT", "code", max_len=3),
        F("supply_name", "TEN_VAT_TU", "text", max_len=1024),
        F("service_name", "TEN_DICH_VU", "text", max_len=1024),
        F("fuel_code", "MA_XANG_DAU", "code", max_len=20),
        F("unit", "DON_VI_TINH", "text", max_len=50),
        F("scope", "PHAM_VI", "int", allowed=(1, 2, 3)),
        F("quantity", "SO_LUONG", "quantity", True),
        F(
            "unit_price",
            "DON_GIA_BV",
            "quantity",
            True,
            "Hospital unit price, VND",
            aliases=("DON_GIA",),
        ),
        F("insured_unit_price", "DON_GIA_BH", "quantity", description="Unit price the fund pays"),
        F("tender_info", "TT_THAU", "code", max_len=50),
        F("service_ratio", "TYLE_TT_DV", "int", description="Service-specific payment %"),
        F("insurance_ratio", "TYLE_TT_BH", "int", aliases=("TYLE_TT",)),
        F("amount", "THANH_TIEN_BV", "money", True, aliases=("THANH_TIEN",)),
        F("insured_amount", "THANH_TIEN_BH", "money"),
        F("package_ceiling", "T_TRANTT", "money"),
        F("benefit_pct", "MUC_HUONG", "int"),
        *_OTHER_SOURCES,
        F("patient_self_pay", "T_BNTT", "money"),
        F("patient_copay", "T_BNCCT", "money"),
        F("fund_claimed", "T_BHTT", "money", True),
        F("department_code", "MA_KHOA", "code", max_len=50),
        F("bed_code", "MA_GIUONG", "code", max_len=50, pattern=BED),
        F("clinician_id", "MA_BAC_SI", "code", max_len=255),
        F("performer_id", "NGUOI_THUC_HIEN", "code", max_len=255),
        F("line_icd", "MA_BENH", "code", max_len=100),
        F("line_traditional_icd", "MA_BENH_YHCT", "code", max_len=255),
        F("ordered_at", "NGAY_YL", "timestamp", True),
        F("performed_at", "NGAY_TH_YL", "timestamp"),
        F("result_at", "NGAY_KQ", "timestamp"),
        F("payment_method", "MA_PTTT", "int", allowed=(1, 2, 3)),
        F("war_wound", "VET_THUONG_TP", "int"),
        F("anaesthesia", "PP_VO_CAM", "int", allowed=(1, 2, 3, 4)),
        F("body_site", "VI_TRI_TH_DVKT", "int"),
        F("machine_id", "MA_MAY", "code", max_len=1024),
        F("supply_model", "MA_HIEU_SP", "code", max_len=255),
        F("reusable", "TAI_SU_DUNG", "int"),
        F("reserved", "DU_PHONG", "text"),
    ),
    "One row per technical service, exam, bed-day, supply or transport line (XML3, CHI_TIET_DVKT).",
)

FACILITIES = Table(
    "facilities",
    "",
    (
        F("facility_id", "MA_CSKCB", "code", True, "Facility code", 5, FACILITY),
        F("facility_name", "TEN_CSKCB", "text", max_len=255),
        F(
            "level",
            "TUYEN",
            "code",
            description="TW central, T provincial, H district, X commune",
            pattern=r"^(TW|T|H|X)$",
        ),
        F(
            "ownership",
            "LOAI_HINH",
            "code",
            description="CONG_LAP public, TU_NHAN private",
            pattern=r"^(CONG_LAP|TU_NHAN)$",
        ),
        F("beds", "SO_GIUONG", "int"),
        F("province", "MATINH", "code", max_len=3),
    ),
    "One row per facility (optional input).",
)

LABELS = Table(
    "labels",
    "",
    (
        F("claim_id", "MA_LK", "code", True, "Episode key", 100, pattern=r"^\S+$"),
        F(
            "label",
            "LABEL",
            "int",
            True,
            "1 = abuse found on verification, 0 = clean",
            allowed=(0, 1),
        ),
        F("rejected_amount", "T_XUATTOAN", "money", description="Amount rejected, VND"),
        F("reason", "LY_DO", "text", max_len=1024),
        F("decided_at", "NGAY_KET_LUAN", "timestamp", description="Decision date yyyyMMdd[HHmm]"),
    ),
    "Verification outcomes (optional input).",
)

TABLES: dict[str, Table] = {
    t.name: t for t in (CLAIMS, DRUG_LINES, SERVICE_LINES, FACILITIES, LABELS)
}
XML_TABLES: dict[str, Table] = {"XML1": CLAIMS, "XML2": DRUG_LINES, "XML3": SERVICE_LINES}
# File stems of the tabular input format -> table.
TABULAR_FILES: dict[str, Table] = {
    "xml1": CLAIMS,
    "xml2": DRUG_LINES,
    "xml3": SERVICE_LINES,
    "facilities": FACILITIES,
    "labels": LABELS,
}

# Inner document layout per table (xml130.md §1.2): root element and repeatable record element.
XML_LAYOUT: dict[str, tuple[str, str | None, str | None]] = {
    "XML1": ("TONG_HOP", None, None),
    "XML2": ("CHITIEU_CHITIET_THUOC", "DSACH_CHI_TIET_THUOC", "CHI_TIET_THUOC"),
    "XML3": ("CHITIEU_CHITIET_DVKT_VTYT", "DSACH_CHI_TIET_DVKT", "CHI_TIET_DVKT"),
}

# Linkage keys derived at ingest (keyed hashes; DESIGN decision 10). Not part of the XML.
LINKAGE_COLUMNS = ("person_key", "card_key")

REJECTIONS_COLUMNS = (
    "source_file",
    "claim_id",
    "table",
    "record",
    "field",
    "value",
    "error",
    "record_json",
)

# MA_NHOM groupings used across the project (xml130.md §3.3).
COST_GROUPS = {
    "lab": (1,),
    "imaging": (2,),
    "functional": (3,),
    "drug": (4, 5, 6),
    "blood": (7, 17),
    "surgery": (8,),
    "ratio_service": (9,),
    "supply": (10, 11),
    "transport": (12,),
    "exam": (13,),
    "bed": (14, 15, 16),
    "procedure": (18,),
    "other": (19,),
}

VISIT_TYPES = {
    "01": "outpatient exam",
    "02": "outpatient treatment",
    "03": "inpatient",
    "04": "day-care inpatient",
    "05": "chronic outpatient with drugs",
    "06": "commune station stay",
    "07": "drug pickup",
    "08": "chronic outpatient with services",
    "09": "inpatient under 4 hours",
    "10": "other",
}


def contract_markdown() -> str:
    """The field tables of docs/data-contract.md, generated from this module (a test keeps the
    document in step with the code)."""
    out = []
    for t in TABLES.values():
        source = f"XML 130 table {t.xml_table}" if t.xml_table else "tabular input only"
        out.append(f"### `{t.name}` ({source})\n\n{t.description}\n")
        out.append("| column | XML 130 name | 4210 / other names | type | unit | required | rule |")
        out.append("| --- | --- | --- | --- | --- | --- | --- |")
        for f in t.fields:
            rule = []
            if f.max_len:
                rule.append(f"≤ {f.max_len} chars")
            if f.pattern:
                rule.append(f"`{f.pattern}`")
            if f.allowed:
                rule.append("one of " + ", ".join(map(str, f.allowed)))
            if f.personal:
                rule.append("personal data")
            desc = f" — {f.description}" if f.description else ""
            rules = "; ".join(rule).replace("|", "\\|")
            out.append(
                f"| `{f.name}`{desc} | `{f.xml}` | {', '.join(f'`{a}`' for a in f.aliases)} "
                f"| {f.kind} ({f.dtype}) | {f.unit} | {'yes' if f.required else ''} "
                f"| {rules} |"
            )
        out.append("")
    return "\n".join(out)
