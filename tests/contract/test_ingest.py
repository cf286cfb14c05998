import base64
import os
import time

import pandas as pd
import pytest
from factories import claim, dossier, drug, raw_envelope, service, write_tabular

from claimradar.settings import DEV_LINKAGE_KEY
from contract.ingest import Limits, ingest, load_dataset


def rejections(out):
    return pd.read_parquet(out / "rejections.parquet")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tabular_folder_ingests_all_tables(tmp_path, fmt):
    src = write_tabular(
        tmp_path / "src",
        [claim("A1"), claim("A2", MA_LOAI_KCB="01", SO_NGAY_DTRI=0)],
        [drug("A1", 1), drug("A1", 2), drug("A2", 1)],
        [service("A1", 1)],
        fmt=fmt,
        facilities=[
            {
                "MA_CSKCB": "49001",
                "TEN_CSKCB": "BV Đa khoa",
                "TUYEN": "T",
                "LOAI_HINH": "CONG_LAP",
                "SO_GIUONG": 500,
                "MATINH": "49",
            }
        ],
        labels=[
            {
                "MA_LK": "A1",
                "LABEL": 1,
                "T_XUATTOAN": 120000.5,
                "LY_DO": "bed-days",
                "NGAY_KET_LUAN": "20250420",
            }
        ],
    )
    r = ingest(src, tmp_path / "out", linkage_key=DEV_LINKAGE_KEY)
    assert r.rejected_total == 0
    t = load_dataset(tmp_path / "out")
    assert len(t["claims"]) == 2 and len(t["drug_lines"]) == 3 and len(t["service_lines"]) == 1
    assert t["facilities"].loc[0, "beds"] == 500 and t["facilities"].loc[0, "level"] == "T"
    lab = t["labels"].iloc[0]
    assert lab["label"] == 1 and lab["rejected_amount"] == 120000.5
    assert lab["decided_at"] == pd.Timestamp("2025-04-20")
    c = t["claims"].set_index("claim_id")
    assert c.loc["A2", "visit_type"] == "01"
    # linkage keys are keyed hashes, never the card or ID in clear
    assert c["person_key"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert not c["person_key"].str.contains("4490123456789").any()


def test_rejections_name_the_field_and_keep_the_record(tmp_path):
    src = write_tabular(
        tmp_path / "src",
        [
            claim("OK1"),
            claim("BAD1", NGAY_VAO="2025-03-03", GIOI_TINH=7),
            claim("BAD2", MA_CSKCB=None),
        ],
        [drug("OK1"), drug("BAD1"), drug("ORPHAN"), drug("OK1", 2, SO_LUONG="abc")],
        [service("BAD2")],
        fmt="csv",
    )
    r = ingest(src, tmp_path / "out", linkage_key=DEV_LINKAGE_KEY)
    t = load_dataset(tmp_path / "out")
    assert list(t["claims"]["claim_id"]) == []  # OK1 had a bad line -> rejected whole
    rej = rejections(tmp_path / "out")
    by = {(row.claim_id, row.field): row for row in rej.itertuples()}
    assert by[("BAD1", "NGAY_VAO")].error == "unparseable date, expected yyyyMMddHHmm"
    assert by[("BAD1", "NGAY_VAO")].value == "2025-03-03"
    assert "unknown code" in by[("BAD1", "GIOI_TINH")].error
    assert by[("BAD2", "MA_CSKCB")].error == "missing required field"
    assert by[("ORPHAN", "MA_LK")].error == "no claim summary (XML1) with this MA_LK"
    assert by[("OK1", "SO_LUONG")].error == "not a number"
    # every input record is accounted for: written or rejected
    assert r.read["claims"] == 3 and r.rejected["claims"] == 3
    assert r.read["drug_lines"] == 4 and r.rejected["drug_lines"] == 4
    assert r.rejected["service_lines"] == 1
    # the whole original record is kept
    assert '"MA_LK": "BAD1"' in by[("BAD1", "NGAY_VAO")].record_json


def test_duplicate_claim_keys_keep_first(tmp_path):
    env = raw_envelope([dossier("D1"), dossier("D1", T_BHTT=1.0), dossier("D2")])
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.xml").write_bytes(env)
    r = ingest(tmp_path / "in", tmp_path / "out", linkage_key=DEV_LINKAGE_KEY)
    t = load_dataset(tmp_path / "out")
    assert sorted(t["claims"]["claim_id"]) == ["D1", "D2"]
    assert t["claims"].set_index("claim_id").loc["D1", "fund_claimed"] == 400000.0
    assert r.rejected["claims"] == 1 and r.rejected["drug_lines"] == 2
    assert len(t["drug_lines"]) == 4


def test_mixed_batch_of_envelopes(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    good = [dossier(f"G{i}") for i in range(5)]
    bad = dossier("B1", MA_BENH_CHINH="not-icd")
    bad_line = dossier("B2")
    bad_line["XML3"][1]["NGAY_YL"] = "20251399"
    skipped = dossier("G9")
    skipped["XML4"] = "PENJVElfVElFVV9DSElUSUVUX0RJQ0hWVUNBTkxBTVNBTkcvPg=="
    (src / "f1.xml").write_bytes(raw_envelope([*good[:3], bad, skipped]))
    (src / "f2.xml").write_bytes(raw_envelope([*good[3:], bad_line]))
    r = ingest(src, tmp_path / "out", linkage_key=DEV_LINKAGE_KEY)
    t = load_dataset(tmp_path / "out")
    assert sorted(t["claims"]["claim_id"]) == ["G0", "G1", "G2", "G3", "G4", "G9"]
    assert len(t["drug_lines"]) == 12 and len(t["service_lines"]) == 12
    rej = rejections(tmp_path / "out")
    fields = set(zip(rej["claim_id"], rej["field"], strict=True))
    assert ("B1", "MA_BENH_CHINH") in fields and ("B2", "NGAY_YL") in fields
    assert set(rej["source_file"]) == {"f1.xml", "f2.xml"}
    assert r.skipped_tables["XML4"] == 1


def test_plain_xml_and_cdata_inside_noidungfile(tmp_path):
    def inner(ma_lk, name_xml):
        fields = "".join(f"<{k}>{v}</{k}>" for k, v in claim(ma_lk).items() if k != "HO_TEN")
        return f"<TONG_HOP>{fields}<HO_TEN>{name_xml}</HO_TEN></TONG_HOP>"

    env = raw_envelope(
        [
            {"XML1": f"<![CDATA[{inner('P1', 'Trần Thị &lt;Bình&gt;')}]]>"},  # XML text in CDATA
            {"XML1": inner("P2", "<![CDATA[Trần Thị <Bình>]]>")},  # plain XML, CDATA name
        ]
    )
    (tmp_path / "e.xml").write_bytes(env)
    r = ingest(tmp_path / "e.xml", tmp_path / "out", linkage_key=DEV_LINKAGE_KEY)
    assert r.rejected_total == 0, pd.read_parquet(tmp_path / "out" / "rejections.parquet")
    t = load_dataset(tmp_path / "out")
    assert sorted(t["claims"]["claim_id"]) == ["P1", "P2"]
    assert set(t["claims"]["patient_name"]) == {"Trần Thị <Bình>"}


# --- hostile files: each refused fast, with a clear message, and the rest of the run goes on ---

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<GIAMDINHHS><THONGTINHOSO><DANHSACHHOSO><HOSO><FILEHOSO><LOAIHOSO>XML1</LOAIHOSO>
<NOIDUNGFILE>&lol9;</NOIDUNGFILE></FILEHOSO></HOSO></DANHSACHHOSO></THONGTINHOSO></GIAMDINHHS>
"""


def xxe(target: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{target}">]>'
        "<GIAMDINHHS><THONGTINHOSO><DANHSACHHOSO><HOSO><FILEHOSO><LOAIHOSO>XML1</LOAIHOSO>"
        "<NOIDUNGFILE>&x;</NOIDUNGFILE></FILEHOSO></HOSO></DANHSACHHOSO></THONGTINHOSO>"
        "</GIAMDINHHS>"
    ).encode()


def hostile_files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    good = raw_envelope([dossier("OK1"), dossier("OK2")])
    deep = b"<GIAMDINHHS>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</GIAMDINHHS>"
    inner_dtd = raw_envelope([{"XML1": base64.b64encode(BILLION_LAUGHS).decode()}])
    long_prolog = b"<?xml version='1.0'?><!--" + b"x" * 100_000 + b"-->" + xxe(str(secret))[21:]
    return {
        "billion_laughs.xml": BILLION_LAUGHS,
        "xxe.xml": xxe(str(secret)),
        "xxe_behind_comment.xml": long_prolog,
        "truncated.xml": good[: len(good) // 2],
        "garbage.xml": os.urandom(200_000),
        "deep.xml": deep,
        "wrong_root.xml": b"<TONG_HOP><MA_LK>1</MA_LK></TONG_HOP>",
        "empty.xml": b"",
        "inner_dtd.xml": inner_dtd,
    }, secret


def test_hostile_files_are_refused_and_good_files_still_ingest(tmp_path):
    files, _secret = hostile_files(tmp_path)
    src = tmp_path / "in"
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
    (src / "zz_good.xml").write_bytes(raw_envelope([dossier("GOOD1"), dossier("GOOD2")]))
    t0 = time.perf_counter()
    r = ingest(src, tmp_path / "out", linkage_key=DEV_LINKAGE_KEY)
    assert time.perf_counter() - t0 < 10
    t = load_dataset(tmp_path / "out")
    # the truncated file's first complete dossier and the good file's two went through
    assert {"GOOD1", "GOOD2"} <= set(t["claims"]["claim_id"])
    errors = dict(r.file_errors)
    assert "DTD" in errors["billion_laughs.xml"]
    assert "DTD" in errors["xxe.xml"]
    assert "64 KiB" in errors["xxe_behind_comment.xml"]
    assert "truncated" in errors["truncated.xml"]
    assert "not XML" in errors["garbage.xml"] or "malformed" in errors["garbage.xml"]
    assert "deeper than" in errors["deep.xml"]
    assert "GIAMDINHHS" in errors["wrong_root.xml"]
    assert "empty" in errors["empty.xml"]
    rej = rejections(tmp_path / "out")
    inner = rej[rej["source_file"] == "inner_dtd.xml"]
    assert (
        len(inner) == 1
        and "DTD" in inner["error"].iloc[0]
        and inner["field"].iloc[0] == "NOIDUNGFILE"
    )
    # nothing from the secret file leaked anywhere
    for p in (tmp_path / "out").glob("*.parquet"):
        assert b"TOP-SECRET-CONTENT" not in p.read_bytes()
    assert "TOP-SECRET" not in rej.to_csv()


def test_size_and_field_limits(tmp_path):
    (tmp_path / "big.xml").write_bytes(raw_envelope([dossier("S1")]))
    r = ingest(
        tmp_path / "big.xml",
        tmp_path / "o1",
        limits=Limits(max_file_bytes=1000),
        linkage_key=DEV_LINKAGE_KEY,
    )
    assert "over the limit" in r.file_errors[0][1]
    env = raw_envelope([dossier("L1", LY_DO_VV="x" * 5000), dossier("L2")])
    (tmp_path / "long.xml").write_bytes(env)
    ingest(
        tmp_path / "long.xml",
        tmp_path / "o2",
        limits=Limits(max_field_chars=1000),
        linkage_key=DEV_LINKAGE_KEY,
    )
    t = load_dataset(tmp_path / "o2")
    assert list(t["claims"]["claim_id"]) == ["L2"]
    rej = rejections(tmp_path / "o2")
    hit = rej[(rej["field"] == "LY_DO_VV") & (rej["claim_id"] == "L1")]
    assert hit["error"].str.contains("longer than 1,000").all() and len(hit) == 1


def test_semantic_inconsistencies_are_kept(tmp_path):
    env = raw_envelope(
        [
            dossier("S1", T_TONGCHI_BV=999999999.0),  # totals differ from lines
            dossier("S2", GT_THE_DEN="20240101"),  # card expired before the visit
        ]
    )
    (tmp_path / "s.xml").write_bytes(env)
    r = ingest(tmp_path / "s.xml", tmp_path / "out", linkage_key=DEV_LINKAGE_KEY)
    assert r.rejected_total == 0 and r.written["claims"] == 2


def test_chunked_tabular_keeps_claims_whole(tmp_path):
    claims = [claim(f"C{i:03d}") for i in range(50)]
    drugs = [drug(f"C{i:03d}", j) for i in range(50) for j in (1, 2)]
    drugs.append(drug("C007", 3, MA_NHOM=13))  # invalid group for a drug line
    src = write_tabular(tmp_path / "src", claims, drugs, [])
    r = ingest(src, tmp_path / "out", limits=Limits(chunk_claims=7), linkage_key=DEV_LINKAGE_KEY)
    t = load_dataset(tmp_path / "out")
    assert len(t["claims"]) == 49 and "C007" not in set(t["claims"]["claim_id"])
    assert len(t["drug_lines"]) == 98 and r.rejected["drug_lines"] == 3
