"""tables -> XML -> tables is the identity (property-tested); envelopes follow the standard."""

import base64
import string

import pandas as pd
from factories import claim, drug, service, write_tabular
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from claimradar.settings import DEV_LINKAGE_KEY
from contract.export import export_xml
from contract.ingest import ingest, load_dataset

TEXT = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Co", "Zl", "Zp")),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)
CODE = st.text(alphabet=string.ascii_uppercase + string.digits + "._-/", min_size=1, max_size=12)
MONEY = st.integers(min_value=0, max_value=10**13).map(lambda c: c / 100)
QTY = st.integers(min_value=0, max_value=10**9).map(lambda m: m / 1000)
STAMP = st.datetimes(
    min_value=pd.Timestamp("2018-01-01").to_pydatetime(),
    max_value=pd.Timestamp("2030-12-31").to_pydatetime(),
).map(lambda d: d.strftime("%Y%m%d%H%M"))
ICD = st.from_regex(r"\A[A-Z][0-9]{2}(\.[0-9])?\Z")


@st.composite
def claims_world(draw):
    n = draw(st.integers(1, 4))
    xml1, xml2, xml3 = [], [], []
    for i in range(n):
        ma_lk = f"{draw(CODE)}{i}"
        xml1.append(
            claim(
                ma_lk,
                HO_TEN=draw(TEN := TEXT),
                DIA_CHI=draw(st.none() | TEN),
                MA_BN=draw(CODE),
                NGAY_VAO=draw(STAMP),
                NGAY_RA=draw(STAMP),
                NGAY_TTOAN=draw(st.none() | STAMP),
                T_TONGCHI_BV=draw(MONEY),
                T_BHTT=draw(MONEY),
                T_BNCCT=draw(MONEY),
                MA_BENH_CHINH=draw(ICD),
                MA_LOAI_KCB=draw(st.sampled_from(["01", "02", "03", "09"])),
                MA_CSKCB=draw(st.sampled_from(["49001", "01A23", "79999"])),
                SO_NGAY_DTRI=draw(st.integers(0, 400)),
                GHI_CHU=draw(st.none() | TEXT),
            )
        )
        for j in range(draw(st.integers(0, 3))):
            xml2.append(
                drug(
                    ma_lk,
                    j + 1,
                    SO_LUONG=draw(QTY),
                    DON_GIA=draw(QTY),
                    THANH_TIEN_BV=draw(MONEY),
                    TEN_THUOC=draw(TEXT),
                    NGAY_YL=draw(STAMP),
                    MUC_HUONG=draw(st.sampled_from([80, 95, 100])),
                )
            )
        for j in range(draw(st.integers(0, 3))):
            xml3.append(
                service(
                    ma_lk,
                    j + 1,
                    SO_LUONG=draw(QTY),
                    DON_GIA_BV=draw(QTY),
                    MA_NHOM=draw(st.sampled_from([1, 2, 8, 10, 13, 15])),
                    NGAY_KQ=draw(st.none() | STAMP),
                    TEN_DICH_VU=draw(TEXT),
                    T_TRANTT=draw(st.none() | MONEY),
                )
            )
    return xml1, xml2, xml3


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(world=claims_world())
def test_tables_to_xml_to_tables_is_identity(tmp_path_factory, world):
    d = tmp_path_factory.mktemp("rt")
    xml1, xml2, xml3 = world
    write_tabular(d / "src", xml1, xml2, xml3, fmt="csv")
    r1 = ingest(d / "src", d / "t1", linkage_key=DEV_LINKAGE_KEY)
    assert r1.rejected_total == 0, pd.read_parquet(d / "t1" / "rejections.parquet").to_dict(
        "records"
    )
    export_xml(d / "t1", d / "xml", per_file=2)
    r2 = ingest(d / "xml", d / "t2", linkage_key=DEV_LINKAGE_KEY)
    assert r2.rejected_total == 0
    t1, t2 = load_dataset(d / "t1"), load_dataset(d / "t2")
    for name in ("claims", "drug_lines", "service_lines"):
        a = t1[name].sort_values(["claim_id"] + (["line_no"] if name != "claims" else []))
        b = t2[name].sort_values(["claim_id"] + (["line_no"] if name != "claims" else []))
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_envelope_follows_the_standard_layout(tmp_path):
    write_tabular(tmp_path / "src", [claim("E1"), claim("E2")], [drug("E1")], [service("E2")])
    ingest(tmp_path / "src", tmp_path / "ds", linkage_key=DEV_LINKAGE_KEY)
    (path,) = export_xml(tmp_path / "ds", tmp_path / "xml")
    root = etree.parse(str(path)).getroot()
    assert root.tag == "GIAMDINHHS"
    assert root.findtext("THONGTINDONVI/MACSKCB") == "49001"
    assert root.findtext("THONGTINHOSO/SOLUONGHOSO") == "2"
    hoso = root.findall("THONGTINHOSO/DANHSACHHOSO/HOSO")
    assert [h.findtext("FILEHOSO/LOAIHOSO") for h in hoso] == ["XML1", "XML1"]
    first = {f.findtext("LOAIHOSO"): f.findtext("NOIDUNGFILE") for f in hoso[0].findall("FILEHOSO")}
    assert set(first) == {"XML1", "XML2"}
    xml1 = etree.fromstring(base64.b64decode(first["XML1"]))
    assert xml1.tag == "TONG_HOP" and xml1.findtext("NGAY_VAO") == "202503030815"
    assert xml1.findtext("T_TONGCHI_BV") == "500000.00" and xml1.findtext("MA_LOAI_KCB") == "03"
    xml2 = etree.fromstring(base64.b64decode(first["XML2"]))
    assert xml2.find("DSACH_CHI_TIET_THUOC/CHI_TIET_THUOC/MA_THUOC").text == "40.17"
