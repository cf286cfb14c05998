"""Hand-made episodes for the feature tests: XML-named claims whose totals always add up from
their lines (so only the check a test aims at fires), ingested into a canonical dataset."""

from __future__ import annotations

from pathlib import Path

from factories import claim, drug, service, write_tabular

from claimradar.settings import DEV_LINKAGE_KEY
from contract.ingest import ingest, load_dataset

FACILITIES = [
    {"MA_CSKCB": "49001", "TEN_CSKCB": "BV tỉnh", "TUYEN": "T", "LOAI_HINH": "CONG_LAP",
     "SO_GIUONG": 500, "MATINH": "49"},
    {"MA_CSKCB": "49002", "TEN_CSKCB": "TTYT huyện", "TUYEN": "H", "LOAI_HINH": "CONG_LAP",
     "SO_GIUONG": 80, "MATINH": "49"},
    {"MA_CSKCB": "49003", "TEN_CSKCB": "TYT xã", "TUYEN": "X", "LOAI_HINH": "CONG_LAP",
     "SO_GIUONG": 5, "MATINH": "49"},
]  # fmt: skip


def card(i: int, digit: int = 4) -> str:
    """A 15-character card number: group DN, benefit digit, province 49, 10-digit number."""
    return f"DN{digit}49{i:010d}"


def money(qty: float, price: float, pct: int = 80, insured_price: float | None = None) -> dict:
    bv = round(qty * price, 2)
    bh = round(qty * (price if insured_price is None else insured_price), 2)
    fund = round(bh * pct / 100, 2)
    return {
        "SO_LUONG": qty,
        "THANH_TIEN_BV": bv,
        "THANH_TIEN_BH": bh,
        "MUC_HUONG": pct,
        "T_BHTT": fund,
        "T_BNCCT": round(bh - fund, 2),
        "T_BNTT": round(bv - bh, 2),
    }


def dline(qty: float = 20, price: float = 10_000, pct: int = 80, **over) -> dict:
    return {"DON_GIA": price, **money(qty, price, pct), **over}


def sline(
    qty: float = 1, price: float = 300_000, pct: int = 80, group: int = 2, insured=None, **over
) -> dict:
    row = {"MA_NHOM": group, "DON_GIA_BV": price, "DON_GIA_BH": insured or price}
    return {**row, **money(qty, price, pct, insured), **over}


EXAM = {"MA_NHOM": 13, "MA_DICH_VU": "02.1896.0001", "TEN_DICH_VU": "Khám bệnh", "MA_MAY": None}


def episode(
    ma_lk: str,
    *,
    card_no: str,
    start: str,
    end: str,
    vt: str = "03",
    drugs=(),
    services=(),
    facility: str = "49001",
    clinician: str = "000001/QNA-CCHN",
    **over,
) -> tuple[dict, list[dict], list[dict]]:
    """One claim (start/end as yyyyMMddHHmm) with its lines; line times default to the start."""
    times = {"NGAY_YL": start, "NGAY_TH_YL": start, "NGAY_KQ": start}
    d = [
        drug(ma_lk, i + 1, **{"MA_BAC_SI": clinician, "NGAY_YL": start, **x})
        for i, x in enumerate(drugs)
    ]
    s = [
        service(ma_lk, i + 1, **{"MA_BAC_SI": clinician, **times, **x})
        for i, x in enumerate(services)
    ]
    lines = d + s

    def total(key, rows=lines):
        return round(sum(r[key] for r in rows), 2)

    bhtt = total("T_BHTT")
    c = claim(
        ma_lk,
        MA_THE_BHYT=card_no,
        MA_BN="BN" + card_no[-6:],
        SO_CCCD=None,
        NGAY_VAO=start,
        NGAY_VAO_NOI_TRU=start if vt in ("03", "04", "06") else None,
        NGAY_RA=end,
        NGAY_TTOAN=end,
        MA_LOAI_KCB=vt,
        MA_CSKCB=facility,
        SO_NGAY_DTRI=0,
        T_THUOC=total("THANH_TIEN_BV", d),
        T_VTYT=total("THANH_TIEN_BV", [r for r in s if r["MA_NHOM"] in (10, 11)]),
        T_TONGCHI_BV=total("THANH_TIEN_BV"),
        T_TONGCHI_BH=total("THANH_TIEN_BH"),
        T_BNTT=total("T_BNTT"),
        T_BNCCT=total("T_BNCCT"),
        T_BHTT=bhtt,
        T_BHTT_GDV=bhtt,
        NAM_QT=int(end[:4]),
        THANG_QT=int(end[4:6]),
        **over,
    )
    return c, d, s


def dataset(tmp: Path, episodes, **extra) -> dict:
    """Ingest hand-made episodes (plus the three facilities) and load the canonical tables."""
    claims, drugs, services = [], [], []
    for c, d, s in episodes:
        claims.append(c)
        drugs += d
        services += s
    src = write_tabular(tmp / "src", claims, drugs, services, facilities=FACILITIES, **extra)
    report = ingest(src, tmp / "ds", linkage_key=DEV_LINKAGE_KEY)
    assert report.rejected_total == 0, report.summary()
    return load_dataset(tmp / "ds")
