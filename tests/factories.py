"""Hand-made claims in the tabular input format (XML 130 names), honest arithmetic, for tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def claim(ma_lk: str = "LK0001", **over) -> dict:
    row = {
        "MA_LK": ma_lk,
        "STT": 1,
        "MA_BN": "BN" + ma_lk,
        "HO_TEN": "Nguyễn Văn An",
        "SO_CCCD": "049085001234",
        "NGAY_SINH": "198501010000",
        "GIOI_TINH": 1,
        "MA_QUOCTICH": "000",
        "MA_DANTOC": "01",
        "MA_NGHE_NGHIEP": "00000",
        "DIA_CHI": "12 Trần Phú, Hội An",
        "MATINH_CU_TRU": "49",
        "MAHUYEN_CU_TRU": "503",
        "MAXA_CU_TRU": "20401",
        "MA_THE_BHYT": "DN4490123456789",
        "MA_DKBD": "49001",
        "GT_THE_TU": "20250101",
        "GT_THE_DEN": "20251231",
        "LY_DO_VV": "sốt, ho",
        "CHAN_DOAN_VAO": "Viêm phổi",
        "CHAN_DOAN_RV": "Viêm phổi",
        "MA_BENH_CHINH": "J18.9",
        "MA_BENH_KT": "I10;E11.9",
        "MA_DOITUONG_KCB": "1.1",
        "NGAY_VAO": "202503030815",
        "NGAY_VAO_NOI_TRU": "202503030900",
        "NGAY_RA": "202503071000",
        "SO_NGAY_DTRI": 5,
        "KET_QUA_DTRI": 1,
        "MA_LOAI_RV": 1,
        "NGAY_TTOAN": "202503071030",
        "T_THUOC": 200000.0,
        "T_VTYT": 0.0,
        "T_TONGCHI_BV": 500000.0,
        "T_TONGCHI_BH": 500000.0,
        "T_BNTT": 0.0,
        "T_BNCCT": 100000.0,
        "T_BHTT": 400000.0,
        "T_NGUONKHAC": 0.0,
        "T_BHTT_GDV": 400000.0,
        "NAM_QT": 2025,
        "THANG_QT": 3,
        "MA_LOAI_KCB": "03",
        "MA_KHOA": "K01",
        "MA_CSKCB": "49001",
        "MA_HSBA": "HS" + ma_lk,
        "MA_TTDV": "4901234567",
    }
    row.update(over)
    return row


def drug(ma_lk: str = "LK0001", stt: int = 1, **over) -> dict:
    row = {
        "MA_LK": ma_lk,
        "STT": stt,
        "MA_THUOC": "40.17",
        "MA_NHOM": 4,
        "TEN_THUOC": "Amoxicilin",
        "DON_VI_TINH": "viên",
        "HAM_LUONG": "500mg",
        "DUONG_DUNG": "1.01",
        "LIEU_DUNG": "1 viên x 2",
        "SO_DANG_KY": "VD-12345-20",
        "TT_THAU": "123/QD;G1;N1;2024",
        "PHAM_VI": 1,
        "TYLE_TT_BH": 100,
        "SO_LUONG": 20.0,
        "DON_GIA": 10000.0,
        "THANH_TIEN_BV": 200000.0,
        "THANH_TIEN_BH": 200000.0,
        "T_NGUONKHAC": 0.0,
        "MUC_HUONG": 80,
        "T_BNTT": 0.0,
        "T_BNCCT": 40000.0,
        "T_BHTT": 160000.0,
        "MA_KHOA": "K01",
        "MA_BAC_SI": "000123/QNA-CCHN",
        "NGAY_YL": "202503031000",
        "MA_PTTT": 1,
        "NGUON_CTRA": 1,
        "VET_THUONG_TP": 0,
    }
    row.update(over)
    return row


def service(ma_lk: str = "LK0001", stt: int = 1, **over) -> dict:
    row = {
        "MA_LK": ma_lk,
        "STT": stt,
        "MA_DICH_VU": "18.0001.0001",
        "MA_NHOM": 2,
        "TEN_DICH_VU": "Chụp X-quang ngực",
        "DON_VI_TINH": "lần",
        "PHAM_VI": 1,
        "SO_LUONG": 1.0,
        "DON_GIA_BV": 300000.0,
        "DON_GIA_BH": 300000.0,
        "TYLE_TT_DV": 100,
        "TYLE_TT_BH": 100,
        "THANH_TIEN_BV": 300000.0,
        "THANH_TIEN_BH": 300000.0,
        "MUC_HUONG": 80,
        "T_NGUONKHAC": 0.0,
        "T_BNTT": 0.0,
        "T_BNCCT": 60000.0,
        "T_BHTT": 240000.0,
        "MA_KHOA": "K01",
        "MA_BAC_SI": "000123/QNA-CCHN",
        "NGUOI_THUC_HIEN": "000456/QNA-CCHN",
        "NGAY_YL": "202503031000",
        "NGAY_TH_YL": "202503031015",
        "NGAY_KQ": "202503031100",
        "MA_PTTT": 1,
        "MA_MAY": "XQ.1.49001.SN01",
    }
    row.update(over)
    return row


def write_tabular(folder: Path, claims, drugs=(), services=(), fmt: str = "parquet", **extra):
    """Write xml1/xml2/xml3 (and optional facilities/labels lists of dicts) as parquet or csv."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"xml1": list(claims), "xml2": list(drugs), "xml3": list(services), **extra}
    for stem, rows in tables.items():
        if not rows and stem != "xml1":
            continue
        df = pd.DataFrame(rows)
        if fmt == "csv":
            df.to_csv(folder / f"{stem}.csv", index=False)
        else:
            df.to_parquet(folder / f"{stem}.parquet", index=False)
    return folder


def raw_envelope(dossiers: list[dict[str, list[dict]]], facility: str = "49001") -> bytes:
    """A GIAMDINHHS envelope from XML-named rows, values written verbatim (bad values included)."""
    import base64
    from xml.sax.saxutils import escape

    from contract.schema import XML_LAYOUT

    def doc(loai: str, rows: list[dict]) -> bytes:
        root, lst, rec = XML_LAYOUT[loai]

        def fields(r):
            return "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in r.items() if v is not None)

        if rec is None:
            body = f"<{root}>{fields(rows[0])}</{root}>"
        else:
            recs = "".join(f"<{rec}>{fields(r)}</{rec}>" for r in rows)
            body = f"<{root}><{lst}>{recs}</{lst}></{root}>"
        return ('<?xml version="1.0" encoding="utf-8"?>' + body).encode()

    parts = []
    for d in dossiers:
        files = "".join(
            f"<FILEHOSO><LOAIHOSO>{loai}</LOAIHOSO><NOIDUNGFILE>"
            + (base64.b64encode(doc(loai, rows)).decode() if isinstance(rows, list) else rows)
            + "</NOIDUNGFILE></FILEHOSO>"
            for loai, rows in d.items()
        )
        parts.append(f"<HOSO>{files}</HOSO>")
    return (
        '<?xml version="1.0" encoding="utf-8"?><GIAMDINHHS><THONGTINDONVI><MACSKCB>'
        f"{facility}</MACSKCB></THONGTINDONVI><THONGTINHOSO><NGAYLAP>20250401</NGAYLAP>"
        f"<SOLUONGHOSO>{len(dossiers)}</SOLUONGHOSO><DANHSACHHOSO>{''.join(parts)}"
        "</DANHSACHHOSO></THONGTINHOSO><CHUKYDONVI></CHUKYDONVI></GIAMDINHHS>"
    ).encode()


def dossier(ma_lk: str, n_drugs: int = 2, n_services: int = 2, **claim_over) -> dict:
    return {
        "XML1": [claim(ma_lk, **claim_over)],
        "XML2": [drug(ma_lk, i) for i in range(1, n_drugs + 1)],
        "XML3": [service(ma_lk, i) for i in range(1, n_services + 1)],
    }
