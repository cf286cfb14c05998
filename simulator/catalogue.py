"""Static knowledge of the synthetic world: the price catalogue, the diseases and the care they involve.

Prices are official-style (modelled on the MoH service price lists and provincial drug tenders, in
whole VND) and invented where no public figure was at hand; codes follow the shapes of the real
catalogues (``XX.YYYY.ZZZZ`` services, ``40.NNN`` active ingredients) but are not the real codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Facility levels. Private clinics and hospitals bill the fund at district / provincial prices.
LEVELS = ("TW", "T", "H", "X", "PK", "PH")
TW, T, H, X, PK, PH = range(6)
LEVEL_NAMES = {
    TW: "central hospital",
    T: "provincial hospital",
    H: "district hospital",
    X: "commune health station",
    PK: "private clinic",
    PH: "private hospital",
}
# Level whose public price list the fund applies (exam fee, bed-day), and the private markup on
# the facility's own price (the patient pays the difference as T_BNTT).
PRICE_LEVEL = np.array([TW, T, H, X, H, T])
PRIVATE_MARKUP = np.array([1.0, 1.0, 1.0, 1.0, 1.5, 1.4])

ALL = (TW, T, H, X, PK, PH)
HOSP = (TW, T, H, PH)
LAB = (TW, T, H, PK, PH)
BIG = (TW, T, PH)

# Departments (MA_KHOA, in the style of QĐ 5937 annex 5).
DEPARTMENTS = {
    "K01": "Khoa Khám bệnh",
    "K02": "Khoa Hồi sức cấp cứu",
    "K03": "Khoa Nội tổng hợp",
    "K04": "Khoa Nội tim mạch",
    "K07": "Khoa Nội thận - Tiết niệu",
    "K16": "Khoa Nhi",
    "K19": "Khoa Ngoại tổng hợp",
    "K22": "Khoa Chấn thương chỉnh hình",
    "K26": "Khoa Phụ sản",
    "K28": "Khoa Tai mũi họng",
    "K29": "Khoa Mắt",
    "K42": "Khoa Xét nghiệm",
    "K43": "Khoa Chẩn đoán hình ảnh",
}
DEPT_CODES = tuple(DEPARTMENTS)
DEPT = {c: i for i, c in enumerate(DEPT_CODES)}

# Visit types (MA_LOAI_KCB) used by the world, as integers (formatted "%02d").
EXAM, OUT_TREAT, INPATIENT, DAYCARE, CHRONIC_DRUGS, COMMUNE_STAY, CHRONIC_SERVICES, SHORT_STAY = (
    1,
    2,
    3,
    4,
    5,
    6,
    8,
    9,
)
INPATIENT_TYPES = (INPATIENT, DAYCARE, COMMUNE_STAY)

# Route / beneficiary codes (MA_DOITUONG_KCB) used, and the share of the card's benefit each keeps.
ROUTES = ("1.1", "1.2", "1.3", "2", "3.1", "3.2")
ROUTE_FACTOR = np.array([1.0, 1.0, 1.0, 1.0, 0.4, 1.0])
R_OWN, R_DISTRICT, R_REFERRAL, R_EMERGENCY, R_WRONG_CENTRAL, R_PROVINCE_FREE = range(6)

BASE_SALARY = 2_340_000  # VND, from 07/2024
SMALL_CLAIM = int(BASE_SALARY * 0.15)  # episodes below 15 % of the base salary: fund pays 100 %


@dataclass(frozen=True)
class Item:
    key: str
    kind: str  # drug | service | supply | bed
    group: int  # MA_NHOM
    code: str
    name: str
    unit: str
    price: int  # VND; for exams and beds the central-level price
    levels: tuple[int, ...] = ALL
    level_price: tuple[int, int, int, int] | None = None  # TW, T, H, X for exams and beds
    daily: float = 0.0  # drugs: usual quantity per day
    route: str = "1.01"
    strength: str = ""
    form: str = ""
    dose: str = ""
    scope: int = 1  # PHAM_VI
    ratio: int = 100  # TYLE_TT_BH
    machine: str = ""  # MA_MAY group for groups 1-3
    icd9: str = ""  # ICD-9-CM code for surgery and procedures
    supportive: bool = False  # costly supportive drug (drug padding)
    upcode_to: str = ""  # pricier sibling used by upcoding


def _drug(key, code, name, strength, form, unit, price, daily, route="1.01", **kw) -> Item:
    per = daily if daily >= 1 else 1
    dose = kw.pop("dose", f"{_fmt(per)} {unit}/lần x 1 lần/ngày [{_fmt(daily)}]")
    return Item(key, "drug", kw.pop("group", 4), code, name, unit, price, daily=daily, route=route,
                strength=strength, form=form, dose=dose, **kw)  # fmt: skip


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _svc(key, group, code, name, price, levels=LAB, unit="lần", **kw) -> Item:
    kind = kw.pop("kind", "service")
    return Item(key, kind, group, code, name, unit, price, levels=levels, **kw)


ITEMS: tuple[Item, ...] = (
    # --- exams (13) and bed-days (14, 15, 16): priced by the facility's grade
    _svc("EXAM", 13, "02.1896.0001", "Khám bệnh", 50_600, ALL,
         level_price=(50_600, 45_300, 38_700, 33_000)),
    _svc("BED_INT", 15, "K03.1917.0002", "Ngày giường bệnh Nội khoa loại 1", 326_000, HOSP + (X,),
         unit="ngày", kind="bed", level_price=(326_000, 249_100, 210_000, 90_000)),
    _svc("BED_SURG", 15, "K19.1911.0003", "Ngày giường bệnh sau phẫu thuật loại 2", 402_000, HOSP,
         unit="ngày", kind="bed", level_price=(402_000, 336_000, 285_000, 90_000)),
    _svc("BED_ICU", 15, "K02.1901.0004", "Ngày giường Hồi sức tích cực", 820_000, BIG + (H,),
         unit="ngày", kind="bed", level_price=(820_000, 650_000, 500_000, 90_000)),
    _svc("BED_DAY", 14, "K03.1930.0005", "Ngày giường bệnh ban ngày", 228_000, HOSP, unit="ngày",
         kind="bed", level_price=(228_000, 174_000, 147_000, 63_000)),
    _svc("BED_HOLD", 16, "K02.1940.0006", "Ngày giường lưu cấp cứu", 163_000, HOSP, unit="ngày",
         kind="bed", level_price=(163_000, 124_000, 105_000, 45_000)),
    # --- laboratory (1)
    _svc("CBC", 1, "23.0007.1494", "Tổng phân tích tế bào máu ngoại vi (máy đếm laser)", 46_200,
         machine="HH"),
    _svc("GLU", 1, "23.0075.1494", "Định lượng Glucose [Máu]", 21_500, ALL, machine="SH"),
    _svc("HBA1C", 1, "23.0083.1523", "Định lượng HbA1c [Máu]", 101_000, machine="SH"),
    _svc("CREA", 1, "23.0051.1494", "Định lượng Creatinin [Máu]", 21_500, machine="SH"),
    _svc("UREA", 1, "23.0166.1494", "Định lượng Urê [Máu]", 21_500, machine="SH"),
    _svc("AST", 1, "23.0019.1493", "Đo hoạt độ AST (GOT) [Máu]", 21_500, machine="SH"),
    _svc("ALT", 1, "23.0020.1493", "Đo hoạt độ ALT (GPT) [Máu]", 21_500, machine="SH"),
    _svc("CHOL", 1, "23.0041.1506", "Định lượng Cholesterol toàn phần [Máu]", 26_900, machine="SH"),
    _svc("TRIG", 1, "23.0158.1506", "Định lượng Triglycerid [Máu]", 26_900, machine="SH"),
    _svc("HDL", 1, "23.0084.1506", "Định lượng HDL-C [Máu]", 26_900, machine="SH"),
    _svc("LDL", 1, "23.0112.1506", "Định lượng LDL-C [Máu]", 26_900, machine="SH"),
    _svc("ELEC", 1, "23.0058.1487", "Điện giải đồ (Na, K, Cl) [Máu]", 29_000, machine="SH"),
    _svc("CRP", 1, "23.0049.1539", "Định lượng CRP hs [Máu]", 53_800, machine="SH"),
    _svc("URINE", 1, "23.0206.1596", "Tổng phân tích nước tiểu (máy tự động)", 27_400, ALL,
         machine="SH"),
    _svc("CULT", 1, "24.0001.1714", "Cấy máu và định danh vi khuẩn (máy tự động)", 285_000,
         BIG + (H,), machine="VS"),
    _svc("PCT", 1, "23.0130.1563", "Định lượng Procalcitonin [Máu]", 409_000, BIG, machine="SH"),
    _svc("TROP", 1, "23.0150.1570", "Định lượng Troponin T hs [Máu]", 78_800, BIG + (H,),
         machine="SH"),
    _svc("NS1", 1, "24.0119.1627", "Dengue virus NS1Ag test nhanh", 134_000, machine="VS"),
    _svc("COAG", 1, "22.0001.1354", "Thời gian prothrombin (PT) bằng máy tự động", 62_800,
         machine="HH"),
    _svc("ABO", 1, "22.0280.1269", "Định nhóm máu hệ ABO, Rh(D) (phương pháp ống nghiệm)", 40_400,
         machine="HH"),
    # --- imaging (2)
    _svc("XR_CHEST", 2, "18.0119.0028", "Chụp X-quang ngực thẳng", 65_400, machine="XQ",
         upcode_to="CT_CHEST"),
    _svc("XR_LIMB", 2, "18.0090.0028", "Chụp X-quang xương cẳng tay thẳng nghiêng", 97_200,
         machine="XQ"),
    _svc("XR_KNEE", 2, "18.0086.0028", "Chụp X-quang khớp gối thẳng nghiêng", 97_200,
         machine="XQ", upcode_to="MRI_KNEE"),
    _svc("US_ABD", 2, "18.0015.0001", "Siêu âm ổ bụng (gan mật, tụy, lách, thận, bàng quang)",
         43_900, machine="SA", upcode_to="CT_ABD"),
    _svc("US_OB", 2, "18.0036.0001", "Siêu âm thai (thai, nhau thai, nước ối)", 43_900,
         machine="SA"),
    _svc("ECHO", 2, "18.0059.0004", "Siêu âm Doppler tim, van tim", 233_000, BIG + (H,),
         machine="SA"),
    _svc("CT_HEAD", 2, "18.0161.0041", "Chụp CLVT sọ não không tiêm thuốc cản quang", 536_000,
         HOSP, machine="CT", upcode_to="CT_HEAD_C"),
    _svc("CT_HEAD_C", 2, "18.0162.0042", "Chụp CLVT sọ não có tiêm thuốc cản quang", 970_000,
         HOSP, machine="CT"),
    _svc("CT_CHEST", 2, "18.0174.0041", "Chụp CLVT lồng ngực không tiêm thuốc cản quang", 536_000,
         HOSP, machine="CT", upcode_to="CT_CHEST_C"),
    _svc("CT_CHEST_C", 2, "18.0175.0042", "Chụp CLVT lồng ngực có tiêm thuốc cản quang", 970_000,
         HOSP, machine="CT"),
    _svc("CT_ABD", 2, "18.0190.0042", "Chụp CLVT ổ bụng có tiêm thuốc cản quang", 970_000, HOSP,
         machine="CT"),
    _svc("MRI_BRAIN", 2, "18.0224.0066", "Chụp cộng hưởng từ sọ não", 1_309_000, BIG,
         machine="MRI"),
    _svc("MRI_KNEE", 2, "18.0254.0066", "Chụp cộng hưởng từ khớp gối", 1_309_000, BIG,
         machine="MRI"),
    # --- functional diagnostics (3)
    _svc("ECG", 3, "21.0014.1778", "Điện tim thường", 32_800, machine="DT"),
    _svc("SPIRO", 3, "21.0085.1789", "Đo chức năng hô hấp", 150_000, BIG + (H,), machine="TT"),
    _svc("SCOPE", 3, "20.0080.0135", "Nội soi thực quản - dạ dày - tá tràng", 244_000,
         BIG + (H, PK), machine="NS"),
    # --- procedures (18)
    _svc("NEB", 18, "01.0045.0209", "Khí dung thuốc cấp cứu", 20_600, ALL),
    _svc("DRESS", 18, "03.3911.0200", "Thay băng vết thương chiều dài dưới 15cm", 57_600, ALL,
         upcode_to="DRESS_BIG"),
    _svc("DRESS_BIG", 18, "03.3914.0202", "Thay băng vết thương chiều dài trên 30cm nhiễm trùng",
         240_000, ALL),
    _svc("SUTURE", 18, "03.3826.0217", "Khâu vết thương phần mềm dài dưới 10cm", 186_000, ALL),
    _svc("CAST", 18, "10.9001.0271", "Bó bột cẳng tay", 262_000, HOSP + (PK,)),
    _svc("PHYSIO", 18, "17.0001.0242", "Điện xung trị liệu", 45_700, ALL),
    _svc("DIALYSIS", 18, "02.0215.0149", "Thận nhân tạo chu kỳ", 568_000, BIG + (H,),
         unit="lần"),
    _svc("DELIVERY", 18, "13.0003.0665", "Đỡ đẻ thường ngôi chỏm", 706_000, HOSP + (X,),
         icd9="73.59"),
    _svc("CATHETER", 18, "01.0156.0102", "Đặt sonde bàng quang", 90_100, HOSP),
    # --- surgery (8)
    _svc("APPX", 8, "10.0406.0509", "Phẫu thuật nội soi cắt ruột thừa", 2_836_000, HOSP,
         icd9="47.01"),
    _svc("CHOLE", 8, "10.0473.0512", "Phẫu thuật nội soi cắt túi mật", 3_510_000, BIG + (H,),
         icd9="51.23"),
    _svc("HERNIA", 8, "10.0565.0543", "Phẫu thuật điều trị thoát vị bẹn bằng tấm lưới", 2_420_000,
         HOSP, icd9="53.05"),
    _svc("CSECT", 8, "13.0013.0554", "Phẫu thuật lấy thai lần đầu", 2_250_000, HOSP,
         icd9="74.1"),
    _svc("ORIF", 8, "10.0931.0566", "Phẫu thuật kết hợp xương đầu dưới xương quay", 3_270_000,
         BIG + (H,), icd9="79.32"),
    _svc("PHACO", 8, "14.0196.0829", "Phẫu thuật đục thủy tinh thể bằng phương pháp Phaco",
         2_650_000, BIG + (H,), icd9="13.41"),
    # components already included in a surgery's price (billed separately only when unbundled)
    _svc("ANAESTH", 8, "01.0253.0384", "Gây mê nội khí quản", 650_000, HOSP),
    _svc("INFUSION", 18, "01.0201.0212", "Truyền tĩnh mạch", 21_400, ALL),
    # --- supplies (10 in the list, 11 paid at a ratio or a replacement part)
    _svc("CANNULA", 10, "N03.05.010", "Kim luồn tĩnh mạch 22G", 8_000, ALL, unit="cái",
         kind="supply"),
    _svc("IVSET", 10, "N03.02.020", "Dây truyền dịch", 5_200, ALL, unit="bộ", kind="supply"),
    _svc("SYRINGE", 10, "N03.01.030", "Bơm tiêm nhựa 5ml", 1_500, ALL, unit="cái", kind="supply"),
    _svc("SUTMAT", 10, "N05.01.040", "Chỉ khâu tiêu tổng hợp số 2/0", 48_000, ALL, unit="sợi",
         kind="supply"),
    _svc("GAUZE", 10, "N02.01.050", "Gạc phẫu thuật ổ bụng 30x40cm", 12_500, ALL, unit="miếng",
         kind="supply"),
    _svc("MESH", 11, "N06.04.060", "Tấm lưới điều trị thoát vị bẹn", 1_450_000, HOSP, unit="tấm",
         kind="supply"),
    _svc("IOL", 11, "N07.06.070", "Thủy tinh thể nhân tạo mềm đơn tiêu", 2_500_000, BIG + (H,),
         unit="cái", kind="supply"),
    _svc("PLATE", 11, "N07.01.080", "Nẹp vít khóa đầu dưới xương quay", 4_200_000, BIG + (H,),
         unit="bộ", kind="supply"),
    # --- transport (12)
    _svc("TRANSPORT", 12, "VC.00000", "Vận chuyển người bệnh chuyển tuyến", 420_000, ALL,
         unit="lượt"),
    # --- drugs (4 in the list, 6 paid at a ratio, 7 blood)
    _drug("PARA", "40.048", "Paracetamol", "500mg", "Viên nén", "viên", 250, 3,
          dose="1 viên/lần x 3 lần/ngày [3]"),
    _drug("AMOX", "40.154", "Amoxicilin", "500mg", "Viên nang", "viên", 1_800, 3,
          dose="1 viên/lần x 3 lần/ngày [3]"),
    _drug("AUGM", "40.155", "Amoxicilin + Acid clavulanic", "500mg + 125mg", "Viên nén", "viên",
          12_000, 2, dose="1 viên/lần x 2 lần/ngày [2]"),
    _drug("CEFU", "40.171", "Cefuroxim", "500mg", "Viên nén", "viên", 9_500, 2,
          dose="1 viên/lần x 2 lần/ngày [2]"),
    _drug("AZI", "40.210", "Azithromycin", "500mg", "Viên nén", "viên", 12_000, 1),
    _drug("CIPRO", "40.223", "Ciprofloxacin", "500mg", "Viên nén", "viên", 2_500, 2,
          dose="1 viên/lần x 2 lần/ngày [2]"),
    _drug("CEFTRI", "40.181", "Ceftriaxon", "1g", "Bột pha tiêm", "lọ", 32_000, 2, route="2.15",
          dose="1 lọ/lần x 2 lần/ngày [2]"),
    _drug("CEFOTA", "40.177", "Cefotaxim", "1g", "Bột pha tiêm", "lọ", 22_000, 3, route="2.15",
          dose="1 lọ/lần x 3 lần/ngày [3]"),
    _drug("METRO", "40.233", "Metronidazol", "500mg/100ml", "Dung dịch tiêm truyền", "chai",
          15_000, 2, route="2.15", dose="1 chai/lần x 2 lần/ngày [2]"),
    _drug("GENTA", "40.200", "Gentamicin", "80mg/2ml", "Dung dịch tiêm", "ống", 2_500, 2,
          route="2.13", dose="1 ống/lần x 2 lần/ngày [2]"),
    _drug("NACL", "40.1005", "Natri clorid 0,9%", "0,9% 500ml", "Dung dịch tiêm truyền", "chai",
          11_000, 2, route="2.15", dose="1 chai/lần x 2 lần/ngày [2]"),
    _drug("GLUC5", "40.996", "Glucose 5%", "5% 500ml", "Dung dịch tiêm truyền", "chai", 12_000, 1,
          route="2.15"),
    _drug("RINGER", "40.1009", "Ringer lactat", "500ml", "Dung dịch tiêm truyền", "chai", 12_500,
          2, route="2.15", dose="1 chai/lần x 2 lần/ngày [2]"),
    _drug("OMEP", "40.678", "Omeprazol", "20mg", "Viên nang", "viên", 3_500, 1),
    _drug("ESOM_IV", "40.680", "Esomeprazol", "40mg", "Bột pha tiêm", "lọ", 62_000, 1,
          route="2.15"),
    _drug("ORS", "40.1016", "Oresol", "4,1g", "Thuốc bột", "gói", 1_500, 3,
          dose="1 gói/lần x 3 lần/ngày [3]"),
    _drug("LORA", "40.082", "Loratadin", "10mg", "Viên nén", "viên", 2_000, 1),
    _drug("SALB", "40.976", "Salbutamol", "2,5mg/2,5ml", "Dung dịch khí dung", "ống", 4_500, 3,
          route="3.06", dose="1 ống/lần x 3 lần/ngày [3]"),
    _drug("BUDE", "40.965", "Budesonid", "0,5mg/2ml", "Hỗn dịch khí dung", "ống", 14_000, 2,
          route="3.06", dose="1 ống/lần x 2 lần/ngày [2]"),
    _drug("PRED", "40.867", "Prednisolon", "5mg", "Viên nén", "viên", 150, 4,
          dose="2 viên/lần x 2 lần/ngày [4]"),
    _drug("MPRED", "40.860", "Methylprednisolon", "40mg", "Bột pha tiêm", "lọ", 30_000, 1,
          route="2.15"),
    _drug("DEXA", "40.852", "Dexamethason", "4mg/1ml", "Dung dịch tiêm", "ống", 3_500, 2,
          route="2.13", dose="1 ống/lần x 2 lần/ngày [2]"),
    _drug("AMLO", "40.418", "Amlodipin", "5mg", "Viên nén", "viên", 1_500, 1),
    _drug("LOSA", "40.445", "Losartan", "50mg", "Viên nén", "viên", 4_500, 1),
    _drug("BISO", "40.423", "Bisoprolol", "2,5mg", "Viên nén", "viên", 3_800, 1),
    _drug("ATOR", "40.506", "Atorvastatin", "20mg", "Viên nén", "viên", 4_000, 1),
    _drug("METF", "40.730", "Metformin", "850mg", "Viên nén", "viên", 1_500, 2,
          dose="1 viên/lần x 2 lần/ngày [2]"),
    _drug("GLIC", "40.724", "Gliclazid", "30mg", "Viên nén giải phóng có kiểm soát", "viên",
          3_500, 1),
    _drug("INSU", "40.727", "Insulin người trộn 30/70", "100IU/ml x 10ml", "Hỗn dịch tiêm", "lọ",
          105_000, 0.5, route="2.14", dose="20 IU/lần x 2 lần/ngày [0,5 lọ/7 ngày]"),
    _drug("ASA", "40.470", "Acid acetylsalicylic", "81mg", "Viên nén bao tan trong ruột", "viên",
          300, 1),
    _drug("CLOPI", "40.478", "Clopidogrel", "75mg", "Viên nén", "viên", 9_000, 1),
    _drug("FURO", "40.566", "Furosemid", "40mg", "Viên nén", "viên", 600, 1),
    _drug("ENOX", "40.488", "Enoxaparin", "40mg/0,4ml", "Dung dịch tiêm", "bơm tiêm", 90_000, 1,
          route="2.12"),
    _drug("OXY", "40.790", "Oxytocin", "5IU/1ml", "Dung dịch tiêm", "ống", 5_500, 2, route="2.13",
          dose="1 ống/lần x 2 lần/ngày [2]"),
    _drug("LIDO", "40.031", "Lidocain", "2% 2ml", "Dung dịch tiêm", "ống", 1_200, 2,
          route="2.12", dose="1 ống/lần x 2 lần [2]"),
    _drug("TRAMA", "40.061", "Tramadol", "100mg/2ml", "Dung dịch tiêm", "ống", 7_000, 2,
          route="2.13", dose="1 ống/lần x 2 lần/ngày [2]"),
    _drug("DICLO", "40.057", "Diclofenac", "50mg", "Viên nén bao tan trong ruột", "viên", 1_500, 2,
          dose="1 viên/lần x 2 lần/ngày [2]"),
    _drug("MELOX", "40.065", "Meloxicam", "7,5mg", "Viên nén", "viên", 3_000, 1),
    _drug("CALCI", "40.1050", "Calci carbonat + Vitamin D3", "1250mg + 125IU", "Viên nén", "viên",
          1_200, 1),
    _drug("FERRO", "40.603", "Sắt fumarat + Acid folic", "162mg + 0,75mg", "Viên nang", "viên",
          600, 1),
    _drug("EPO", "40.612", "Erythropoietin", "2000IU", "Dung dịch tiêm", "bơm tiêm", 180_000, 0.5,
          route="2.12", group=6, ratio=50, dose="2000 IU/lần x 3 lần/tuần [0,5]"),
    _drug("VITB", "40.1072", "Vitamin B1 + B6 + B12", "125mg + 125mg + 125mcg", "Viên nén", "viên",
          2_000, 2, dose="1 viên/lần x 2 lần/ngày [2]"),
    _drug("ALVER", "40.690", "Alverin citrat", "40mg", "Viên nén", "viên", 1_000, 2,
          dose="1 viên/lần x 2 lần/ngày [2]"),
    _drug("TOBRA", "40.931", "Tobramycin", "0,3% 5ml", "Dung dịch nhỏ mắt", "lọ", 45_000, 0.5,
          route="4.01", dose="1 giọt/lần x 4 lần/ngày [1 lọ/đợt]"),
    _drug("VALPRO", "40.264", "Natri valproat", "500mg", "Viên nén bao tan trong ruột", "viên",
          4_200, 2, dose="1 viên/lần x 2 lần/ngày [2]"),
    _drug("RBC", "40.2001", "Khối hồng cầu từ 250ml máu toàn phần", "250ml", "Chế phẩm máu",
          "túi", 715_000, 1, route="2.15", group=7, dose="1 túi/lần [1]"),
    # costly supportive drugs (paid at a ratio, rarely indicated): the drug-padding scheme's stock
    _drug("ALBU", "40.1033", "Albumin người", "20% 50ml", "Dung dịch tiêm truyền", "chai",
          650_000, 1, route="2.15", group=6, ratio=70, supportive=True),
    _drug("GLUTA", "40.1098", "Glutathion", "600mg", "Bột pha tiêm", "lọ", 120_000, 1,
          route="2.15", group=6, ratio=50, supportive=True),
    _drug("LOLA", "40.701", "L-Ornithin L-Aspartat", "500mg/5ml", "Dung dịch tiêm", "ống", 38_000,
          2, route="2.15", supportive=True, dose="1 ống/lần x 2 lần/ngày [2]"),
    _drug("CITI", "40.292", "Citicolin", "1000mg/4ml", "Dung dịch tiêm", "ống", 55_000, 1,
          route="2.15", group=6, ratio=50, supportive=True),
    _drug("CEREB", "40.295", "Cerebrolysin", "10ml", "Dung dịch tiêm", "ống", 130_000, 1,
          route="2.15", group=6, ratio=50, supportive=True),
    _drug("GINKGO", "40.1110", "Cao Ginkgo biloba", "40mg", "Viên nén", "viên", 2_500, 2,
          supportive=True, dose="1 viên/lần x 2 lần/ngày [2]"),
    # outside the insured list: the patient pays it in full (PHAM_VI 2, TYLE_TT_BH 0)
    _drug("THYMO", "00.0000", "Thymomodulin", "80mg", "Viên nang", "viên", 3_000, 2, scope=2,
          ratio=0, dose="1 viên/lần x 2 lần/ngày [2]"),
)

ITEM = {it.key: i for i, it in enumerate(ITEMS)}
N_ITEMS = len(ITEMS)


def _item_arrays() -> dict[str, np.ndarray]:
    lp = np.array([it.level_price or (it.price,) * 4 for it in ITEMS], dtype=np.int64)
    # Approved (fund) price for each of the six levels.
    approved = lp[:, PRICE_LEVEL]
    allowed = np.zeros((N_ITEMS, len(LEVELS)), dtype=bool)
    for i, it in enumerate(ITEMS):
        allowed[i, list(it.levels)] = True
    kind = np.array([it.kind for it in ITEMS])
    return {
        "approved": approved,
        "allowed": allowed,
        "is_drug": kind == "drug",
        "kind": kind,
        "group": np.array([it.group for it in ITEMS], dtype=np.int8),
        "daily": np.array([it.daily for it in ITEMS]),
        "ratio": np.array([it.ratio for it in ITEMS], dtype=np.int16),
        "scope": np.array([it.scope for it in ITEMS], dtype=np.int8),
        "supportive": np.array([it.supportive for it in ITEMS]),
        "upcode_to": np.array([ITEM.get(it.upcode_to, -1) for it in ITEMS], dtype=np.int32),
    }


ITEM_ARRAYS = _item_arrays()


# --------------------------------------------------------------------------------------------
# Diseases and care patterns

Pkg = tuple[tuple[str, float], ...]  # (item key, probability)


@dataclass(frozen=True)
class Disease:
    icd: str
    name: str  # Vietnamese, as written in CHAN_DOAN_RV
    reason: str  # LY_DO_VV
    weight: float  # relative share of acute episodes (0 for chronic-only entries)
    ages: tuple[float, float, float, float, float]  # relative rate for 0-5, 6-15, 16-39, 40-59, 60+
    sex: int = 0  # 0 both, 1 male only, 2 female only
    male_bias: float = 1.0  # rate for men relative to women
    season: tuple[float, ...] = (1.0,) * 12  # relative rate per calendar month
    visit_mix: dict[int, float] = field(default_factory=lambda: {EXAM: 1.0})
    los: float = 0.0  # mean inpatient days (RA - VAO)
    severity: int = 0  # 0 mild, 1 moderate, 2 severe: pushes care up the levels
    dept: str = "K03"
    out: Pkg = ()  # outpatient exam (01, 02, 09)
    inp: Pkg = ()  # inpatient (03, 04, 06)
    chronic: Pkg = ()  # monthly chronic visit (05, 08)
    course: int = 7  # days of drugs prescribed on an outpatient exam
    injury: int = 0  # MA_TAI_NAN
    upcode_icd: str = ""  # a more severe code used by diagnosis upcoding
    method: str = "Nội khoa"


WINTER = (1.3, 1.2, 1.1, 1.0, 0.9, 0.8, 0.8, 0.8, 0.9, 1.0, 1.1, 1.3)
RAINY = (0.7, 0.6, 0.6, 0.7, 0.9, 1.1, 1.3, 1.5, 1.6, 1.5, 1.2, 0.9)
SUMMER = (0.8, 0.8, 0.9, 1.0, 1.2, 1.3, 1.3, 1.2, 1.1, 1.0, 0.8, 0.8)

BASIC_IN: Pkg = (("CBC", 0.95), ("GLU", 0.6), ("CREA", 0.6), ("UREA", 0.5), ("AST", 0.5),
                  ("ALT", 0.5), ("ELEC", 0.5), ("URINE", 0.5), ("ECG", 0.4), ("CANNULA", 0.8),
                  ("IVSET", 0.7), ("SYRINGE", 0.8))  # fmt: skip
BASIC_OUT: Pkg = (("CBC", 0.25), ("GLU", 0.2), ("URINE", 0.12), ("AST", 0.08), ("ALT", 0.08),
                   ("VITB", 0.25), ("ECG", 0.06))  # fmt: skip
_SURG: Pkg = (("COAG", 0.9), ("ABO", 0.9), ("NACL", 0.9), ("RINGER", 0.6), ("CEFOTA", 0.6),
              ("TRAMA", 0.7), ("PARA", 0.8), ("LIDO", 0.5), ("SUTMAT", 0.9), ("GAUZE", 0.9),
              ("DRESS", 0.6))  # fmt: skip

DISEASES: tuple[Disease, ...] = (
    Disease("J06.9", "Nhiễm trùng đường hô hấp trên cấp", "Sốt, ho, sổ mũi", 14.0,
            (6, 3, 1, 1, 1.2), season=WINTER, visit_mix={EXAM: 0.985, INPATIENT: 0.015}, los=3,
            dept="K01", out=(("PARA", 0.9), ("AMOX", 0.45), ("LORA", 0.4), ("CEFU", 0.15),
                             ("CBC", 0.2), ("CRP", 0.08)),
            inp=(("CBC", 1), ("CRP", 0.5), ("PARA", 1), ("CEFTRI", 0.5), ("NACL", 0.4)),
            upcode_icd="J18.9"),
    Disease("J02.9", "Viêm họng cấp", "Đau họng, sốt", 6.0, (3, 3, 1.2, 1, 1), season=WINTER,
            dept="K28", out=(("PARA", 0.8), ("AMOX", 0.6), ("AZI", 0.15), ("LORA", 0.3),
                             ("CBC", 0.1))),
    Disease("J20.9", "Viêm phế quản cấp", "Ho, khạc đờm", 6.0, (4, 2, 1, 1.2, 2), season=WINTER,
            visit_mix={EXAM: 0.94, INPATIENT: 0.06}, los=4, out=(("PARA", 0.6), ("AUGM", 0.5),
            ("SALB", 0.2), ("CBC", 0.35), ("XR_CHEST", 0.35), ("NEB", 0.1)),
            inp=(("XR_CHEST", 0.9), ("CRP", 0.5), ("CEFOTA", 0.6), ("SALB", 0.6), ("NEB", 0.6),
                 ("PARA", 0.8)), upcode_icd="J18.9"),  # fmt: skip
    Disease("J18.9", "Viêm phổi", "Sốt, ho, khó thở", 3.0, (6, 1.5, 0.5, 1, 4), season=WINTER,
            visit_mix={EXAM: 0.35, INPATIENT: 0.65}, los=7, severity=1, dept="K16",
            out=(("XR_CHEST", 0.9), ("CBC", 0.9), ("CRP", 0.5), ("AUGM", 0.8), ("PARA", 0.7)),
            inp=(("XR_CHEST", 1), ("CRP", 0.8), ("PCT", 0.12), ("CULT", 0.1), ("CEFTRI", 0.8),
                 ("GENTA", 0.2), ("NACL", 0.7), ("PARA", 0.9), ("SALB", 0.5), ("BUDE", 0.3),
                 ("NEB", 0.6), ("CT_CHEST", 0.05))),  # fmt: skip
    Disease("J45.9", "Hen phế quản", "Khó thở, khò khè", 1.5, (2, 2, 1, 1, 1.2),
            season=WINTER, visit_mix={EXAM: 0.75, INPATIENT: 0.25}, los=5, dept="K03",
            out=(("SALB", 0.8), ("BUDE", 0.4), ("PRED", 0.5), ("NEB", 0.4), ("SPIRO", 0.1)),
            inp=(("SALB", 1), ("BUDE", 0.8), ("MPRED", 0.7), ("NEB", 0.9), ("XR_CHEST", 0.6))),
    Disease("J44.1", "Bệnh phổi tắc nghẽn mạn tính đợt cấp", "Khó thở tăng, ho khạc đờm", 1.2,
            (0, 0, 0.05, 1, 5), male_bias=2.5, season=WINTER,
            visit_mix={EXAM: 0.3, INPATIENT: 0.7}, los=8, severity=1,
            out=(("SALB", 0.9), ("BUDE", 0.6), ("PRED", 0.5), ("XR_CHEST", 0.6), ("AUGM", 0.5)),
            inp=(("XR_CHEST", 1), ("CRP", 0.6), ("SALB", 1), ("BUDE", 0.9), ("MPRED", 0.8),
                 ("CEFTRI", 0.6), ("NEB", 0.9), ("SPIRO", 0.3), ("CT_CHEST", 0.1),
                 ("ECHO", 0.15))),  # fmt: skip
    Disease("A09.9", "Viêm dạ dày ruột", "Tiêu chảy, nôn", 4.0, (5, 2, 1, 0.8, 1.2),
            season=SUMMER, visit_mix={EXAM: 0.85, INPATIENT: 0.15}, los=3, dept="K16",
            out=(("ORS", 0.9), ("CBC", 0.3), ("ELEC", 0.1), ("CIPRO", 0.2)),
            inp=(("CBC", 1), ("ELEC", 0.9), ("NACL", 0.6), ("RINGER", 0.7), ("ORS", 0.6),
                 ("CIPRO", 0.3))),  # fmt: skip
    Disease("A97.0", "Sốt xuất huyết Dengue", "Sốt cao liên tục", 1.5, (1, 2, 1.5, 1, 0.8),
            season=RAINY, visit_mix={EXAM: 0.6, INPATIENT: 0.4}, los=5, dept="K03",
            out=(("CBC", 1), ("NS1", 0.7), ("PARA", 0.9), ("ORS", 0.6)),
            inp=(("CBC", 1), ("NS1", 0.5), ("AST", 0.8), ("ALT", 0.8), ("US_ABD", 0.5),
                 ("RINGER", 0.8), ("PARA", 1))),  # fmt: skip
    Disease("K29.7", "Viêm dạ dày", "Đau thượng vị", 5.0, (0.1, 0.5, 1, 1.3, 1.2),
            dept="K01", visit_mix={EXAM: 0.97, INPATIENT: 0.03}, los=4, course=14,
            out=(("OMEP", 0.9), ("ALVER", 0.4), ("US_ABD", 0.3), ("SCOPE", 0.08)),
            inp=(("SCOPE", 0.6), ("US_ABD", 0.8), ("ESOM_IV", 0.8), ("NACL", 0.5)),
            upcode_icd="K25.9"),
    Disease("K35.8", "Viêm ruột thừa cấp", "Đau hố chậu phải", 0.5, (0.2, 1.5, 1.5, 0.8, 0.5),
            visit_mix={INPATIENT: 1.0}, los=4, severity=1, dept="K19", method="Phẫu thuật",
            inp=(("APPX", 1), ("CBC", 1), ("US_ABD", 0.9), ("METRO", 0.8), ("CEFTRI", 0.6))
            + _SURG),
    Disease("K80.2", "Sỏi túi mật", "Đau hạ sườn phải", 0.8, (0, 0.05, 0.5, 1.5, 1.5),
            male_bias=0.6, visit_mix={EXAM: 0.6, INPATIENT: 0.4}, los=5, severity=1, dept="K19",
            out=(("US_ABD", 1), ("AST", 0.5), ("ALT", 0.5), ("ALVER", 0.6)),
            inp=(("CHOLE", 0.85), ("CBC", 1), ("US_ABD", 1), ("CT_ABD", 0.15)) + _SURG,
            method="Phẫu thuật"),
    Disease("K40.9", "Thoát vị bẹn", "Khối phồng vùng bẹn", 0.4, (0.6, 0.3, 0.5, 1, 1.5), sex=1,
            visit_mix={EXAM: 0.4, INPATIENT: 0.6}, los=3, dept="K19", method="Phẫu thuật",
            out=(("US_ABD", 0.8),), inp=(("HERNIA", 1), ("MESH", 0.8), ("CBC", 1)) + _SURG),
    Disease("N39.0", "Nhiễm trùng đường tiết niệu", "Tiểu buốt, tiểu rắt", 3.0,
            (1, 0.5, 1.2, 1, 1.5), male_bias=0.3, visit_mix={EXAM: 0.92, INPATIENT: 0.08}, los=4,
            dept="K07", out=(("URINE", 0.95), ("CIPRO", 0.6), ("CBC", 0.3), ("US_ABD", 0.2)),
            inp=(("URINE", 1), ("CBC", 1), ("CEFTRI", 0.8), ("US_ABD", 0.6), ("CULT", 0.1))),
    Disease("O80.0", "Đẻ thường", "Chuyển dạ", 0.9, (0, 0, 5, 0.1, 0), sex=2,
            visit_mix={INPATIENT: 1.0}, los=2, dept="K26", method="Đỡ đẻ",
            inp=(("DELIVERY", 1), ("OXY", 0.9), ("CBC", 0.9), ("US_OB", 0.7), ("AMOX", 0.5),
                 ("FERRO", 0.5), ("LIDO", 0.4), ("SUTMAT", 0.5))),  # fmt: skip
    Disease("O82.0", "Mổ lấy thai", "Chuyển dạ, chỉ định mổ lấy thai", 0.7, (0, 0, 5, 0.15, 0),
            sex=2, visit_mix={INPATIENT: 1.0}, los=4, severity=1, dept="K26",
            method="Phẫu thuật", inp=(("CSECT", 1), ("OXY", 0.9), ("CBC", 1), ("US_OB", 0.8))
            + _SURG),  # fmt: skip
    Disease("Z34.9", "Khám thai định kỳ", "Khám thai", 2.0, (0, 0, 5, 0.1, 0), sex=2,
            dept="K26", out=(("US_OB", 0.85), ("FERRO", 0.7), ("CALCI", 0.5), ("URINE", 0.4),
                             ("CBC", 0.2)), course=30),
    Disease("S52.5", "Gãy đầu dưới xương quay", "Ngã chống tay", 0.6, (0.5, 2, 1, 1, 1.8),
            visit_mix={EXAM: 0.55, INPATIENT: 0.45}, los=4, severity=1, dept="K22", injury=2,
            out=(("XR_LIMB", 1), ("CAST", 0.9), ("PARA", 0.8), ("DICLO", 0.5)),
            inp=(("XR_LIMB", 1), ("ORIF", 0.7), ("PLATE", 0.6), ("CBC", 1)) + _SURG,
            method="Phẫu thuật"),
    Disease("S06.0", "Chấn động não", "Tai nạn giao thông, đau đầu", 0.7, (0.5, 1, 2, 1.2, 1),
            male_bias=2.0, visit_mix={EXAM: 0.4, INPATIENT: 0.6}, los=4, severity=1, dept="K19",
            injury=1, out=(("CT_HEAD", 0.7), ("PARA", 0.9), ("DRESS", 0.3)),
            inp=(("CT_HEAD", 0.95), ("PARA", 1), ("NACL", 0.6), ("DRESS", 0.5),
                 ("MRI_BRAIN", 0.05))),  # fmt: skip
    Disease("T14.1", "Vết thương phần mềm", "Vết thương chảy máu", 2.0, (1, 1.5, 1.5, 1, 0.8),
            male_bias=1.6, dept="K19", injury=3, course=5,
            out=(("SUTURE", 0.5), ("DRESS", 0.8), ("LIDO", 0.5), ("AMOX", 0.6), ("PARA", 0.7),
                 ("SYRINGE", 0.5))),  # fmt: skip
    Disease("M54.5", "Đau thắt lưng", "Đau lưng", 4.0, (0, 0.1, 1, 1.6, 1.6), dept="K01",
            visit_mix={EXAM: 0.9, OUT_TREAT: 0.1}, course=7,
            out=(("DICLO", 0.6), ("MELOX", 0.4), ("VITB", 0.5), ("XR_KNEE", 0.0),
                 ("PHYSIO", 0.15))),  # fmt: skip
    Disease("M17.9", "Thoái hóa khớp gối", "Đau khớp gối", 3.0, (0, 0, 0.2, 1.5, 3),
            male_bias=0.7, dept="K01", course=14,
            out=(("MELOX", 0.7), ("CALCI", 0.5), ("XR_KNEE", 0.3), ("PHYSIO", 0.1))),
    Disease("H10.9", "Viêm kết mạc", "Đỏ mắt", 2.0, (2, 1.5, 1, 1, 1), season=SUMMER,
            dept="K29", out=(("TOBRA", 0.9), ("LORA", 0.2))),
    Disease("H25.9", "Đục thủy tinh thể tuổi già", "Nhìn mờ", 0.9, (0, 0, 0, 0.4, 6),
            visit_mix={EXAM: 0.5, INPATIENT: 0.5}, los=1, dept="K29", method="Phẫu thuật",
            out=(("TOBRA", 0.3),), inp=(("PHACO", 1), ("IOL", 1), ("TOBRA", 0.9), ("DEXA", 0.5),
                                        ("GLU", 0.8), ("ECG", 0.6))),
    Disease("I63.9", "Nhồi máu não", "Yếu nửa người", 0.5, (0, 0, 0.05, 1, 6), male_bias=1.3,
            visit_mix={INPATIENT: 1.0}, los=10, severity=2, dept="K03",
            inp=(("CT_HEAD", 1), ("MRI_BRAIN", 0.25), ("ASA", 0.9), ("CLOPI", 0.6),
                 ("ATOR", 0.9), ("NACL", 0.9), ("CHOL", 0.9), ("TRIG", 0.8), ("ECHO", 0.3),
                 ("PHYSIO", 0.5))),  # fmt: skip
    Disease("I21.9", "Nhồi máu cơ tim cấp", "Đau ngực", 0.15, (0, 0, 0.05, 1, 4), male_bias=2.0,
            visit_mix={INPATIENT: 1.0}, los=7, severity=2, dept="K04",
            inp=(("ECG", 1), ("TROP", 1), ("ECHO", 0.9), ("ASA", 1), ("CLOPI", 0.9),
                 ("ENOX", 0.8), ("ATOR", 1))),  # fmt: skip
    Disease("I50.9", "Suy tim", "Khó thở, phù", 0.6, (0, 0, 0.05, 1, 6),
            visit_mix={EXAM: 0.4, INPATIENT: 0.6}, los=7, severity=1, dept="K04",
            out=(("FURO", 0.8), ("BISO", 0.5), ("ECHO", 0.3), ("ECG", 0.7)),
            inp=(("ECHO", 0.8), ("ECG", 1), ("XR_CHEST", 0.8), ("FURO", 1), ("BISO", 0.6),
                 ("ELEC", 0.9))),  # fmt: skip
    Disease("B01.9", "Thủy đậu", "Sốt, phát ban", 0.8, (3, 3, 1, 0.2, 0.1),
            season=(1, 1.4, 1.6, 1.5, 1.1, 0.8, 0.6, 0.6, 0.7, 0.8, 0.9, 1), dept="K16",
            out=(("PARA", 0.8), ("LORA", 0.4))),
    Disease("L03.9", "Viêm mô tế bào", "Sưng nóng đỏ đau", 0.8, (1, 1, 1, 1.2, 1.5),
            visit_mix={EXAM: 0.75, INPATIENT: 0.25}, los=6, dept="K19",
            out=(("AUGM", 0.8), ("PARA", 0.6), ("DRESS", 0.5), ("CBC", 0.3)),
            inp=(("CBC", 1), ("CRP", 0.7), ("CEFTRI", 0.8), ("DRESS", 0.8), ("GLU", 0.6))),
    Disease("R51", "Đau đầu", "Đau đầu", 2.5, (0.2, 1, 1.2, 1.3, 1.2), male_bias=0.7,
            dept="K01", out=(("PARA", 0.9), ("VITB", 0.3)), upcode_icd="G43.9"),
    Disease("D50.9", "Thiếu máu thiếu sắt", "Mệt mỏi, da xanh", 1.0, (1.5, 0.8, 1.5, 0.8, 1),
            male_bias=0.3, dept="K03", course=30, out=(("CBC", 0.9), ("FERRO", 0.9))),
    Disease("K92.2", "Xuất huyết tiêu hóa", "Nôn ra máu, đi ngoài phân đen", 0.2,
            (0, 0.05, 0.4, 1, 3), male_bias=1.8, visit_mix={INPATIENT: 1.0}, los=6, severity=2,
            dept="K03", inp=(("SCOPE", 0.9), ("ESOM_IV", 1), ("RBC", 0.4), ("CBC", 1),
                             ("COAG", 0.7), ("ABO", 0.6), ("NACL", 0.9))),
    Disease("C34.9", "Ung thư phổi", "Ho kéo dài, gầy sút", 0.08, (0, 0, 0.05, 1, 4),
            male_bias=2.5, visit_mix={EXAM: 0.3, INPATIENT: 0.7}, los=10, severity=2,
            dept="K03", out=(("CT_CHEST_C", 0.6), ("CBC", 0.9), ("XR_CHEST", 0.5)),
            inp=(("CT_CHEST_C", 0.8), ("CBC", 1), ("PCT", 0.2), ("NACL", 0.9), ("TRAMA", 0.6),
                 ("CEFTRI", 0.4), ("ALBU", 0.25), ("RBC", 0.2))),  # fmt: skip
    # chronic conditions: monthly visits (05 / 08) and occasional acute episodes
    Disease("I10", "Tăng huyết áp vô căn", "Khám định kỳ tăng huyết áp", 1.5, (0, 0, 0.1, 1, 3),
            visit_mix={EXAM: 0.97, INPATIENT: 0.03}, los=4, dept="K04",
            out=(("AMLO", 0.7), ("LOSA", 0.4), ("ECG", 0.3), ("GLU", 0.3), ("CHOL", 0.2)),
            inp=(("ECG", 1), ("AMLO", 0.8), ("LOSA", 0.6), ("CHOL", 0.7), ("ECHO", 0.3)),
            chronic=(("AMLO", 0.7), ("LOSA", 0.45), ("BISO", 0.2), ("ATOR", 0.3), ("ASA", 0.2),
                     ("GLU", 0.15), ("CHOL", 0.08), ("CREA", 0.08), ("ECG", 0.06)),
            upcode_icd="I11.9"),
    Disease("E11.9", "Đái tháo đường type 2", "Khám định kỳ đái tháo đường", 0.8,
            (0, 0, 0.1, 1, 2.5), visit_mix={EXAM: 0.9, INPATIENT: 0.1}, los=6, dept="K03",
            out=(("GLU", 1), ("HBA1C", 0.4), ("METF", 0.9), ("GLIC", 0.4)),
            inp=(("GLU", 1), ("HBA1C", 0.8), ("INSU", 0.6), ("CREA", 0.9), ("URINE", 0.8),
                 ("NACL", 0.6)),
            chronic=(("METF", 0.85), ("GLIC", 0.45), ("INSU", 0.12), ("ATOR", 0.35),
                     ("GLU", 0.7), ("HBA1C", 0.15), ("CREA", 0.08), ("URINE", 0.08)),
            upcode_icd="E11.6"),
    Disease("J44.9", "Bệnh phổi tắc nghẽn mạn tính", "Khám định kỳ COPD", 0.0, (0, 0, 0, 1, 5),
            male_bias=2.5, chronic=(("BUDE", 0.7), ("SALB", 0.6), ("SPIRO", 0.05))),
    Disease("I25.9", "Bệnh tim thiếu máu cục bộ mạn", "Khám định kỳ tim mạch", 0.0,
            (0, 0, 0, 1, 4), male_bias=1.5,
            chronic=(("ASA", 0.8), ("CLOPI", 0.3), ("ATOR", 0.8), ("BISO", 0.5), ("ECG", 0.1))),
    Disease("G40.9", "Động kinh", "Khám định kỳ động kinh", 0.0, (1, 1, 1, 0.7, 0.5),
            dept="K03", chronic=(("VALPRO", 1.0),)),
    Disease("N18.5", "Bệnh thận mạn giai đoạn 5", "Chạy thận nhân tạo định kỳ", 0.0,
            (0, 0, 0.5, 1.5, 1.5), dept="K07",
            chronic=(("DIALYSIS", 1.0), ("EPO", 0.8), ("FERRO", 0.6), ("CBC", 0.5),
                     ("UREA", 0.5), ("CREA", 0.5), ("ELEC", 0.5))),
)
DISEASE = {d.icd: i for i, d in enumerate(DISEASES)}
N_DISEASES = len(DISEASES)

# Chronic programmes: condition -> (share of people aged 40+ enrolled, visit type, supply days).
# Dialysis runs at hospitals as visit type 08, the others are monthly exams with drugs (05).
CHRONIC = {
    "I10": (0.090, CHRONIC_DRUGS, 30),
    "E11.9": (0.040, CHRONIC_DRUGS, 30),
    "J44.9": (0.008, CHRONIC_DRUGS, 30),
    "I25.9": (0.008, CHRONIC_DRUGS, 30),
    "G40.9": (0.002, CHRONIC_DRUGS, 30),
    "N18.5": (0.0012, CHRONIC_SERVICES, 30),
}

AGE_BANDS = np.array([0, 6, 16, 40, 60, 200])


def disease_arrays() -> dict[str, np.ndarray]:
    return {
        "weight": np.array([d.weight for d in DISEASES]),
        "ages": np.array([d.ages for d in DISEASES], dtype=float),
        "sex": np.array([d.sex for d in DISEASES], dtype=np.int8),
        "male_bias": np.array([d.male_bias for d in DISEASES]),
        "season": np.array([d.season if len(d.season) == 12 else (1.0,) * 12 for d in DISEASES]),
        "los": np.array([d.los for d in DISEASES]),
        "severity": np.array([d.severity for d in DISEASES], dtype=np.int8),
        "dept": np.array([DEPT[d.dept] for d in DISEASES], dtype=np.int8),
        "course": np.array([d.course for d in DISEASES], dtype=np.int16),
        "injury": np.array([d.injury for d in DISEASES], dtype=np.int8),
    }


DISEASE_ARRAYS = disease_arrays()

# ICD-9-CM code of a claim = the first surgery/procedure item carrying one (set in care.py).

# Reason texts of the agency (LY_DO of labels) per scheme.
REVIEW_REASONS = {
    "ghost": "Hồ sơ khống: người bệnh không đến khám chữa bệnh",
    "upcoding": "Chỉ định dịch vụ / chẩn đoán không phù hợp, thanh toán theo mức thấp hơn",
    "unbundling": "Thanh toán tách riêng chi phí đã có trong giá dịch vụ kỹ thuật",
    "needless_tests": "Chỉ định xét nghiệm, chẩn đoán hình ảnh không cần thiết",
    "duplicate": "Thanh toán trùng hồ sơ",
    "padded_stay": "Kéo dài ngày điều trị, thanh toán ngày giường không đúng",
    "split_admission": "Tách đợt điều trị để thanh toán nhiều lần",
    "card_sharing": "Sử dụng thẻ BHYT của người khác",
    "overprice": "Thanh toán cao hơn giá được phê duyệt",
    "drug_padding": "Chỉ định thuốc vượt liều, thuốc hỗ trợ không phù hợp chẩn đoán",
    "chronic_overlap": "Cấp thuốc ngoại trú trùng thời gian sử dụng",
    "cost_climb": "Chi phí bình quân tăng bất thường",
    "referral_kickback": "Chuyển tuyến không đúng quy định",
    "technical": "Sai sót thông tin, thanh toán không đúng quy định",
}
