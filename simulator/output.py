"""Writes the world in the contract's tabular input format (XML 130 names, values as in the XML).

Strings are built with pyarrow compute from lookup tables (every minute of the period formatted
once, catalogue texts taken by index), and line tables are written in row groups to bound memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contract.schema import CLAIMS, DRUG_LINES, FACILITIES, LABELS, SERVICE_LINES, Table
from simulator import catalogue as cat
from simulator.actors import GROUP_DIGIT, GROUP_LETTERS, PROVINCE, PROVINCE_NAME, World
from simulator.frame import MINUTES_PER_DAY, Cols, stamp, ymd

CHUNK = 500_000
_KIND_TYPE = {"int": pa.int64(), "quantity": pa.float64(), "money": pa.float64()}

SURNAMES = (
    ("Nguyễn", 38),
    ("Trần", 11),
    ("Lê", 9.5),
    ("Phạm", 7),
    ("Huỳnh", 5),
    ("Phan", 4.5),
    ("Võ", 3.9),
    ("Đặng", 2.1),
    ("Bùi", 2),
    ("Đỗ", 1.4),
    ("Hồ", 1.3),
    ("Ngô", 1.3),
    ("Dương", 1),
    ("Lý", 0.5),
    ("Trương", 1.2),
    ("Đoàn", 0.8),
)
MIDDLE = {
    1: ("Văn", "Hữu", "Đức", "Minh", "Quang", "Thanh", "Công", "Xuân"),
    2: ("Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Kim", "Mỹ"),
}
GIVEN = {
    1: (
        "Anh",
        "Bình",
        "Cường",
        "Dũng",
        "Hải",
        "Hùng",
        "Huy",
        "Khoa",
        "Long",
        "Minh",
        "Nam",
        "Phúc",
        "Quân",
        "Sơn",
        "Tài",
        "Thắng",
        "Thành",
        "Toàn",
        "Trung",
        "Tuấn",
        "Việt",
        "Vinh",
        "Hiếu",
        "Lộc",
    ),
    2: (
        "Anh",
        "Chi",
        "Dung",
        "Giang",
        "Hà",
        "Hằng",
        "Hạnh",
        "Hiền",
        "Hoa",
        "Hương",
        "Lan",
        "Linh",
        "Mai",
        "Nga",
        "Ngân",
        "Nhung",
        "Oanh",
        "Phương",
        "Thảo",
        "Trang",
        "Tuyết",
        "Vân",
        "Yến",
        "Loan",
    ),
}


def padded(values: np.ndarray, width: int) -> pa.Array:
    """Non-negative integers as zero-padded strings."""
    v = pa.array(np.asarray(values, dtype=np.int64) + 10**width)
    return pc.utf8_slice_codeunits(pc.cast(v, pa.string()), 1)


def join(*parts, sep: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


def take(table: list[str] | np.ndarray, idx: np.ndarray) -> pa.Array:
    lut = pa.array(list(table), pa.string())
    return pc.take(lut, pa.array(np.asarray(idx, dtype=np.int64)))


def with_nulls(arr: pa.Array, present: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(present), arr, pa.scalar(None, pa.string()))


class Clock:
    """Formats minutes as yyyyMMddHHmm through one lookup table of the whole period."""

    def __init__(self, lo: int, hi: int):
        self.lo = int(lo)
        self.lut = pc.cast(pa.array(stamp(np.arange(self.lo, int(hi) + 1))), pa.string())

    def __call__(self, minutes: np.ndarray) -> pa.Array:
        m = np.asarray(minutes, dtype=np.int64)
        present = m >= 0
        out = pc.take(self.lut, pa.array(np.where(present, m - self.lo, 0)))
        return out if present.all() else with_nulls(out, present)


def _table(cols: dict[str, pa.Array], spec: Table, n: int) -> pa.Table:
    arrays, names = [], []
    for f in spec.fields:
        names.append(f.xml)
        typ = _KIND_TYPE.get(f.kind, pa.string())
        if f.xml in cols:
            a = cols[f.xml]
            if not isinstance(a, pa.Array | pa.ChunkedArray):
                a = pa.array(a, typ)
            elif a.type != typ:
                a = a.cast(typ)
            arrays.append(a)
        else:
            arrays.append(pa.nulls(n, typ))
    return pa.Table.from_arrays(arrays, names=names)


def person_strings(world: World, rng: np.random.Generator) -> dict[str, pa.Array]:
    """Synthetic but plausible personal fields, one value per insured person."""
    ppl = world.people
    P = world.n_people
    sex = ppl["sex"]
    sw = np.array([w for _, w in SURNAMES])
    sur = rng.choice(len(SURNAMES), P, p=sw / sw.sum())
    mid = rng.integers(0, 8, P)
    giv = rng.integers(0, 24, P)
    male = sex == 1
    mid_name = np.where(male, np.array(MIDDLE[1])[mid], np.array(MIDDLE[2])[mid])
    giv_name = np.where(male, np.array(GIVEN[1])[giv], np.array(GIVEN[2])[giv])
    name = join(
        take([s for s, _ in SURNAMES], sur), pa.array(mid_name), pa.array(giv_name), sep=" "
    )
    bday = ppl["birth_day"]
    year = ymd(bday) // 10000
    century = np.where(year >= 2000, 2, 0) + (sex == 2)
    cccd = join(
        pa.array(np.full(P, "0" + PROVINCE)),
        padded(century, 1),
        padded(year % 100, 2),
        padded(rng.integers(0, 10**6, P), 6),
    )
    village = padded(rng.integers(1, 12, P), 2)
    dist_names = np.array(world.district_names)
    address = join(
        pa.array(np.full(P, "Thôn ")),
        village,
        pa.array(np.full(P, ", xã ")),
        take(world.commune_names, ppl["commune"]),
        pa.array(np.full(P, ", huyện ")),
        take(dist_names, ppl["district"]),
        pa.array(np.full(P, f", tỉnh {PROVINCE_NAME}")),
    )
    prefix = np.array(["09", "03", "08", "07", "05"])[
        rng.choice(5, P, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    ]
    phone = with_nulls(
        join(pa.array(prefix), padded(rng.integers(0, 10**8, P), 8)),
        (ppl["age_years"] >= 16) & (rng.random(P) < 0.85),
    )
    letters = GROUP_LETTERS[ppl["group"]]
    digit = GROUP_DIGIT[ppl["group"]]
    card = join(
        pa.array(letters), padded(digit, 1), pa.array(np.full(P, PROVINCE)), padded(ppl["si"], 10)
    )
    birth = pc.binary_join_element_wise(pc.cast(pa.array(ymd(bday)), pa.string()), "0000", "")
    age = ppl["age_years"]
    kg = np.where(age < 16, 3.3 + age * 3.2, np.where(sex == 1, 62.0, 52.0) + rng.normal(0, 7, P))
    kg = np.clip(kg, 2.5, 110)
    weight = pc.cast(pa.array(np.round(kg, 2)), pa.string())
    commune_code = padded(20000 + ppl["commune"], 5)
    district_code = padded(502 + ppl["district"], 3)
    area = with_nulls(take(["", "K1", "K2", "K3"], ppl["area"]), ppl["area"] > 0)
    return {
        "HO_TEN": name,
        "SO_CCCD": cccd,
        "DIA_CHI": address,
        "DIEN_THOAI": phone,
        "MA_THE_BHYT": card,
        "NGAY_SINH": birth,
        "CAN_NANG": weight,
        "MAXA_CU_TRU": commune_code,
        "MAHUYEN_CU_TRU": district_code,
        "MA_KHUVUC": area,
        "MA_DANTOC": padded(ppl["ethnic"], 2),
    }


def card_validity(world: World, c: Cols, day0: int) -> tuple[np.ndarray, np.ndarray]:
    """Yearly cards renewed on each person's anniversary; children under 6 hold one card to 72
    months. The card in force covers the whole episode."""
    ppl = world.people
    p = c["card_person"]
    vday = c["vao"] // MINUTES_PER_DAY
    rday = c["ra"] // MINUTES_PER_DAY
    base = day0 - 3650 + ppl["card_anchor"][p]
    k = (vday - base) // 365
    frm = base + 365 * k
    to = frm + 364
    to = np.where(rday > to, to + 365, to)
    child = GROUP_LETTERS[ppl["group"][p]] == "TE"
    b = ppl["birth_day"][p]
    six = b + 2191
    ok = child & (rday <= six)
    return np.where(ok, b, frm), np.where(ok, six, to)


def claim_table(
    world: World,
    c: Cols,
    money: Cols,
    ids: pa.Array,
    pstr: dict,
    clock: Clock,
    day0: int,
    icd9: np.ndarray,
) -> pa.Table:
    n = c.n
    cp = c["card_person"]
    fac_codes = world.facility_code
    codes = pa.array(fac_codes)
    d = c["disease"]
    icd = np.array([x.icd for x in cat.DISEASES])
    icd_used = c.get("icd_override")
    principal = take(icd, d)
    if icd_used is not None and (icd_used >= 0).any():
        extra_codes = list(icd) + [x.upcode_icd or x.icd for x in cat.DISEASES]
        principal = take(extra_codes, np.where(icd_used >= 0, icd_used, d))
    names = np.array([x.name for x in cat.DISEASES])
    reasons = np.array([x.reason for x in cat.DISEASES])
    # secondary codes: the patient's chronic conditions other than the principal one
    ppl = world.people
    p = c["person"]
    s1 = np.where(ppl["chronic"][p] != d, ppl["chronic"][p], -1)
    s2 = np.where(ppl["comorbid"][p] != d, ppl["comorbid"][p], -1)
    icd_m = np.array([*list(icd), ""])
    a, b = icd_m[s1], icd_m[s2]
    sec = np.char.add(np.char.add(a, np.where((a != "") & (b != ""), ";", "")), b)
    sec_arr = with_nulls(pa.array(sec), sec != "")
    inpatient = np.isin(c["vtype"], cat.INPATIENT_TYPES)
    gt_from, gt_to = card_validity(world, c, day0)
    ref_from = c["ref_from"]
    ref_to = c["ref_to"]
    code_m = np.r_[fac_codes, [""]]
    rf = with_nulls(pa.array(code_m[ref_from]), ref_from >= 0)
    rt = with_nulls(pa.array(code_m[ref_to]), ref_to >= 0)
    letter = with_nulls(
        join(
            pa.array(code_m[ref_from]),
            padded((ymd(c["vao"] // MINUTES_PER_DAY) // 10000) % 100, 2),
            padded(np.arange(n) % 10**6, 6),
            sep=".",
        ),
        (ref_from >= 0) & (c["route"] == cat.R_REFERRAL),
    )
    pay = c["ra"] + 10 + (np.arange(n) * 7919) % 50
    end_ymd = ymd(c["ra"] // MINUTES_PER_DAY)
    injury = cat.DISEASE_ARRAYS["injury"][d]
    method = np.array([x.method for x in cat.DISEASES])
    m = lambda v: pa.array(np.asarray(v, dtype=np.int64) / 100.0)  # noqa: E731
    reg = ppl["registered"][cp]
    head = padded(c["facility"] * 7 + 12345, 8)  # the facility head's social-insurance number
    cols = {
        "MA_LK": ids,
        "STT": pa.array(np.ones(n, dtype=np.int64)),
        "MA_BN": padded((ppl["si"][cp] * 31 + c["facility"] * 1_000_003) % 10**9, 9),
        "HO_TEN": pc.take(pstr["HO_TEN"], pa.array(cp)),
        "SO_CCCD": pc.take(pstr["SO_CCCD"], pa.array(cp)),
        "NGAY_SINH": pc.take(pstr["NGAY_SINH"], pa.array(cp)),
        "GIOI_TINH": pa.array(ppl["sex"][cp].astype(np.int64)),
        "MA_QUOCTICH": pa.array(np.full(n, "000")),
        "MA_DANTOC": pc.take(pstr["MA_DANTOC"], pa.array(cp)),
        "MA_NGHE_NGHIEP": pa.array(np.full(n, "00000")),
        "DIA_CHI": pc.take(pstr["DIA_CHI"], pa.array(cp)),
        "MATINH_CU_TRU": pa.array(np.full(n, PROVINCE)),
        "MAHUYEN_CU_TRU": pc.take(pstr["MAHUYEN_CU_TRU"], pa.array(cp)),
        "MAXA_CU_TRU": pc.take(pstr["MAXA_CU_TRU"], pa.array(cp)),
        "DIEN_THOAI": pc.take(pstr["DIEN_THOAI"], pa.array(cp)),
        "MA_THE_BHYT": pc.take(pstr["MA_THE_BHYT"], pa.array(cp)),
        "MA_DKBD": pa.array(fac_codes[reg]),
        "GT_THE_TU": pc.cast(pa.array(ymd(gt_from)), pa.string()),
        "GT_THE_DEN": pc.cast(pa.array(ymd(gt_to)), pa.string()),
        "LY_DO_VV": take(reasons, d),
        "LY_DO_VNT": with_nulls(take(names, d), inpatient),
        "CHAN_DOAN_VAO": take(names, d),
        "CHAN_DOAN_RV": take(names, d),
        "MA_BENH_CHINH": principal,
        "MA_BENH_KT": sec_arr,
        "MA_PTTT_QT": with_nulls(pa.array(np.where(icd9 == "", "x", icd9)), icd9 != ""),
        "MA_DOITUONG_KCB": take(cat.ROUTES, c["route"]),
        "MA_NOI_DI": rf,
        "MA_NOI_DEN": rt,
        "MA_TAI_NAN": pa.array(np.where(injury > 0, injury, 0), mask=injury == 0),
        "NGAY_VAO": clock(c["vao"]),
        "NGAY_VAO_NOI_TRU": clock(c["vao_nt"]),
        "NGAY_RA": clock(c["ra"]),
        "GIAY_CHUYEN_TUYEN": letter,
        "SO_NGAY_DTRI": pa.array(c["days"].astype(np.int64)),
        "PP_DIEU_TRI": take(method, d),
        "KET_QUA_DTRI": pa.array(c["outcome"].astype(np.int64)),
        "MA_LOAI_RV": pa.array(c["rv_type"].astype(np.int64)),
        "NGAY_TTOAN": clock(pay),
        "T_THUOC": m(money["t_thuoc"]),
        "T_VTYT": m(money["t_vtyt"]),
        "T_TONGCHI_BV": m(money["t_tongchi_bv"]),
        "T_TONGCHI_BH": m(money["t_tongchi_bh"]),
        "T_BNTT": m(money["t_bntt"]),
        "T_BNCCT": m(money["t_bncct"]),
        "T_BHTT": m(money["t_bhtt"]),
        "T_NGUONKHAC": pa.array(np.zeros(n)),
        "T_BHTT_GDV": m(money["t_bhtt"]),
        "NAM_QT": pa.array(end_ymd // 10000),
        "THANG_QT": pa.array(end_ymd // 100 % 100),
        "MA_LOAI_KCB": padded(c["vtype"], 2),
        "MA_KHOA": take(cat.DEPT_CODES, c["dept"]),
        "MA_CSKCB": pc.take(codes, pa.array(c["facility"])),
        "MA_KHUVUC": pc.take(pstr["MA_KHUVUC"], pa.array(cp)),
        "CAN_NANG": pc.take(pstr["CAN_NANG"], pa.array(cp)),
        "MA_HSBA": join(pa.array(np.full(n, "HS")), ids),
        "MA_TTDV": join(pa.array(np.full(n, PROVINCE)), head),
    }
    return _table(cols, CLAIMS, n)


def write_lines(
    path_drugs: Path,
    path_services: Path,
    lines: Cols,
    settle_line: Cols,
    ids: pa.Array,
    clock: Clock,
    clin_ids: pa.Array,
    facility_codes: np.ndarray,
    claim_facility: np.ndarray,
) -> tuple[int, int]:
    """XML2 and XML3 in row groups; lines must be sorted by claim."""
    ia = cat.ITEM_ARRAYS
    drug = ia["is_drug"][lines["item"]]
    wd = pq.ParquetWriter(path_drugs, _table({}, DRUG_LINES, 0).schema)
    ws = pq.ParquetWriter(path_services, _table({}, SERVICE_LINES, 0).schema)
    codes = [it.code for it in cat.ITEMS]
    names = [it.name for it in cat.ITEMS]
    units = [it.unit for it in cat.ITEMS]
    counts = [0, 0]
    try:
        for is_drug, writer in ((True, wd), (False, ws)):
            rows_all = np.flatnonzero(drug == is_drug)
            # STT: position of the line within its claim in this table
            cl = lines["claim"][rows_all]
            start = np.r_[True, cl[1:] != cl[:-1]]
            idx = np.arange(len(cl))
            stt_all = idx - np.maximum.accumulate(np.where(start, idx, 0)) + 1
            for s in range(0, len(rows_all), CHUNK):
                rows = rows_all[s : s + CHUNK]
                stt = stt_all[s : s + CHUNK]
                tb = _line_table(
                    is_drug,
                    lines,
                    settle_line,
                    rows,
                    stt,
                    ids,
                    clock,
                    clin_ids,
                    codes,
                    names,
                    units,
                    facility_codes,
                    claim_facility,
                )
                writer.write_table(tb)
                counts[0 if is_drug else 1] += len(rows)
    finally:
        wd.close()
        ws.close()
    return counts[0], counts[1]


def _line_table(
    is_drug,
    lines,
    sl,
    rows,
    stt,
    ids,
    clock,
    clin_ids,
    codes,
    names,
    units,
    facility_codes,
    claim_facility,
) -> pa.Table:
    n = len(rows)
    item = lines["item"][rows]
    ia = cat.ITEM_ARRAYS
    claim = lines["claim"][rows]
    m = lambda v: pa.array(v[rows] / 100.0)  # noqa: E731
    qty = pa.array(lines["qty2"][rows] / 2.0)
    zeros = pa.array(np.zeros(n))
    common = {
        "MA_LK": pc.take(ids, pa.array(claim)),
        "STT": pa.array(stt.astype(np.int64)),
        "MA_NHOM": pa.array(ia["group"][item].astype(np.int64)),
        "DON_VI_TINH": take(units, item),
        "PHAM_VI": pa.array(ia["scope"][item].astype(np.int64)),
        "TYLE_TT_BH": pa.array(lines["ratio"][rows]),
        "SO_LUONG": qty,
        "THANH_TIEN_BV": m(sl["bv"]),
        "THANH_TIEN_BH": m(sl["bh"]),
        "T_NGUONKHAC_NSNN": zeros,
        "T_NGUONKHAC_VTNN": zeros,
        "T_NGUONKHAC_VTTN": zeros,
        "T_NGUONKHAC_CL": zeros,
        "T_NGUONKHAC": zeros,
        "MUC_HUONG": pa.array(sl["muc"][rows]),
        "T_BNTT": m(sl["bntt"]),
        "T_BNCCT": m(sl["bncct"]),
        "T_BHTT": m(sl["bhtt"]),
        "MA_KHOA": take(cat.DEPT_CODES, lines["dept"][rows]),
        "MA_BAC_SI": pc.take(clin_ids, pa.array(lines["clin"][rows])),
        "NGAY_YL": clock(lines["yl"][rows]),
        "NGAY_TH_YL": clock(lines["th"][rows]),
        "MA_PTTT": pa.array(np.ones(n, dtype=np.int64)),
    }
    if is_drug:
        items = cat.ITEMS
        common.update(
            {
                "MA_THUOC": take(codes, item),
                "TEN_THUOC": take(names, item),
                "HAM_LUONG": take([it.strength for it in items], item),
                "DUONG_DUNG": take([it.route for it in items], item),
                "DANG_BAO_CHE": take([it.form for it in items], item),
                "LIEU_DUNG": take([it.dose for it in items], item),
                "CACH_DUNG": take(
                    ["Uống sau ăn" if it.route == "1.01" else "Theo chỉ định" for it in items], item
                ),
                "SO_DANG_KY": take(
                    [f"VD-{abs(hash_code(it.code)) % 90000 + 10000}-23" for it in items], item
                ),
                "TT_THAU": take(
                    [f"{120 + i}/QĐ-SYT;G1;N{1 + i % 4};2024" for i in range(len(items))], item
                ),
                "DON_GIA": pa.array(lines["price_bv"][rows].astype(np.float64)),
                "NGUON_CTRA": pa.array(np.ones(n, dtype=np.int64)),
                "VET_THUONG_TP": pa.array(np.zeros(n, dtype=np.int64)),
            }
        )
        return _table(common, DRUG_LINES, n)
    grp = ia["group"][item]
    supply = np.isin(grp, [10, 11])
    machine = np.array([it.machine for it in cat.ITEMS])[item]
    fac = claim_facility[claim]
    has_machine = machine != ""
    bed = lines["bed"][rows]
    perf = lines["performer"][rows]
    common.update(
        {
            "MA_DICH_VU": with_nulls(take(codes, item), ~supply),
            "MA_VAT_TU": with_nulls(take(codes, item), supply),
            "TEN_DICH_VU": with_nulls(take(names, item), ~supply),
            "TEN_VAT_TU": with_nulls(take(names, item), supply),
            "MA_PTTT_QT": with_nulls(
                take([it.icd9 or "x" for it in cat.ITEMS], item),
                np.array([bool(it.icd9) for it in cat.ITEMS])[item],
            ),
            "DON_GIA_BV": pa.array(lines["price_bv"][rows].astype(np.float64)),
            "DON_GIA_BH": pa.array(lines["price_bh"][rows].astype(np.float64)),
            "TT_THAU": with_nulls(
                take([f"{150 + i}/QĐ-SYT;G1;N0;2024" for i in range(len(codes))], item), supply
            ),
            "TYLE_TT_DV": pa.array(np.full(n, 100, dtype=np.int64)),
            "MA_GIUONG": with_nulls(
                join(pa.array(np.full(n, "H")), padded(np.maximum(bed, 0), 3)), bed >= 0
            ),
            "NGUOI_THUC_HIEN": with_nulls(
                pc.take(clin_ids, pa.array(np.maximum(perf, 0))), perf >= 0
            ),
            "NGAY_KQ": clock(lines["kq"][rows]),
            "PP_VO_CAM": pa.array(np.where(grp == 8, 1, 0), mask=grp != 8),
            "MA_MAY": with_nulls(
                join(
                    pa.array(np.where(has_machine, machine, "XX")),
                    pa.array(np.full(n, "1")),
                    pa.array(facility_codes[fac]),
                    padded(1 + (fac % 3), 5),
                    sep=".",
                ),
                has_machine,
            ),
        }
    )
    return _table(common, SERVICE_LINES, n)


def hash_code(code: str) -> int:
    """A stable small number from a code (Python's hash() is salted per process)."""
    h = 0
    for ch in code:
        h = (h * 131 + ord(ch)) % 1_000_003
    return h


def facility_table(world: World) -> pa.Table:
    lvl = world.facilities["level"]
    tuyen = np.array(["TW", "T", "H", "X", "H", "T"])[lvl]
    cols = {
        "MA_CSKCB": pa.array(world.facility_code),
        "TEN_CSKCB": pa.array(world.facility_name),
        "TUYEN": pa.array(tuyen),
        "LOAI_HINH": pa.array(np.where(world.facilities["private"], "TU_NHAN", "CONG_LAP")),
        "SO_GIUONG": pa.array(world.facilities["beds"].astype(np.int64)),
        "MATINH": pa.array(np.full(len(lvl), PROVINCE)),
    }
    return _table(cols, FACILITIES, len(lvl))


def labels_table(ids: pa.Array, claim_idx, label, amount_cents, reason, decided_day) -> pa.Table:
    n = len(claim_idx)
    cols = {
        "MA_LK": pc.take(ids, pa.array(claim_idx)),
        "LABEL": pa.array(label.astype(np.int64)),
        "T_XUATTOAN": pa.array(amount_cents / 100.0),
        "LY_DO": with_nulls(pa.array(reason), reason != ""),
        "NGAY_KET_LUAN": pc.cast(pa.array(ymd(decided_day)), pa.string()),
    }
    return _table(cols, LABELS, n)


def write(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="snappy")
