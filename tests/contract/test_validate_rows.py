"""The row-wise validator (contract.validate_rows) answers exactly as the column-wise one
(contract.batch.validate_batch): the same good rows with the same types, the same rejection rows
(field, value, error, record) in the same order, the same counts. Over the ingest corpus (the
sample envelopes, the hand-made good and bad claims of the ingest tests) and hypothesis-fuzzed
claims (fixed seed, bounded examples)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from factories import claim, dossier, drug, raw_envelope, service
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claimradar.settings import DEV_LINKAGE_KEY
from contract.batch import EnvelopeBatch, validate_batch
from contract.limits import Limits
from contract.schema import CLAIMS, DRUG_LINES, SERVICE_LINES
from contract.validate_rows import envelope_records, validate_rows
from contract.xml_reader import read_envelope
from serving.online import _raw_tables, raw_records

ROOT = Path(__file__).resolve().parents[2]
LIMITS = Limits(workers=1, max_field_chars=2_000)
SAMPLES = sorted((ROOT / "claimradar" / "samples" / "envelopes").glob("*.xml"))
NOW = pd.Timestamp("2025-03-05 12:00")  # some sample claims are later: "in the future"


def assert_same(rows, cols) -> None:
    """Two BatchResults are the same answer."""
    assert dict(rows.read) == dict(cols.read)
    assert dict(rows.rejected) == dict(cols.rejected)
    a = pd.concat(rows.rejections, ignore_index=True)
    b = pd.concat(cols.rejections, ignore_index=True)
    shown = ["record", "field", "value", "error"]
    assert a[shown].astype(object).values.tolist() == b[shown].astype(object).values.tolist()
    pd.testing.assert_frame_equal(a, b)
    for name in ("claims", "drug_lines", "service_lines"):
        pd.testing.assert_frame_equal(rows.good[name], cols.good[name], obj=name)


def both_json(claims: list[dict], **kw):
    """The API's two ways in: records (row-wise) and frames (column-wise) of the same claims."""
    rows = validate_rows(raw_records(claims), LIMITS, DEV_LINKAGE_KEY, **kw)
    cols = validate_batch(_raw_tables(claims), LIMITS, DEV_LINKAGE_KEY, **kw)
    return rows, cols


def both_envelope(data: bytes, **kw):
    batch, records = EnvelopeBatch(), EnvelopeBatch()
    try:
        for d in read_envelope(data, LIMITS):
            batch.add("e.xml", d)
            records.add("e.xml", d)
    except Exception:  # a truncated upload: what was read before the break is validated
        pass
    raw, prior = batch.take()
    cols = validate_batch(raw, LIMITS, DEV_LINKAGE_KEY, prior, from_xml=True, **kw)
    raw_rows, prior_rows = envelope_records(records)
    rows = validate_rows(raw_rows, LIMITS, DEV_LINKAGE_KEY, prior_rows, from_xml=True, **kw)
    return rows, cols


def api_claim(ma_lk: str, n_drugs: int = 2, n_services: int = 2, **over) -> dict:
    c = claim(ma_lk, **over)
    c["xml2"] = [drug(ma_lk, i + 1) for i in range(n_drugs)]
    c["xml3"] = [service(ma_lk, i + 1) for i in range(n_services)]
    return c


# -- the corpus ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
@pytest.mark.parametrize("max_time", [None, NOW])
def test_sample_envelopes(path, max_time):
    rows, cols = both_envelope(path.read_bytes(), max_time=max_time)
    assert_same(rows, cols)


def test_envelopes_with_bad_dossiers():
    bad = dossier("B1", MA_BENH_CHINH="not-icd", GIOI_TINH=7)
    bad["XML3"][1]["NGAY_YL"] = "20251399"
    data = raw_envelope([dossier("G0"), bad, dossier("G0"), dossier("G2", NGAY_VAO="2025-03-03")])
    rows, cols = both_envelope(data)
    assert len(pd.concat(cols.rejections)) > 5  # the case is not vacuous
    assert_same(rows, cols)


def _ingest_cases() -> dict[str, list[dict]]:
    """The hand-made claims of tests/contract/test_ingest.py and test_validate_nulls.py."""
    ok = api_claim("OK1")
    ok["xml2"].append(drug("OK1", 3, SO_LUONG="abc"))
    orphan = api_claim("BAD2", MA_CSKCB=None)
    orphan["xml2"][0]["MA_LK"] = "ORPHAN"
    return {
        "good": [api_claim("A1"), api_claim("A2", MA_LOAI_KCB="01", SO_NGAY_DTRI=0)],
        "bad": [ok, api_claim("BAD1", NGAY_VAO="2025-03-03", GIOI_TINH=7), orphan],
        "duplicates": [api_claim("D1"), api_claim("D1", T_BHTT=1.0), api_claim("D2")],
        "nulls": [
            api_claim("N1", MA_THE_BHYT=None),
            api_claim("N2", MA_THE_BHYT=None, SO_CCCD=None),
            api_claim("N3", MA_THE_BHYT=None, SO_CCCD=None, MA_BN=None),
            api_claim("N4", **{f.xml: None for f in CLAIMS.fields if not f.required}),
        ],
        "one_digit_visit_type": [api_claim("V1", MA_LOAI_KCB=3), api_claim("V2", MA_LOAI_KCB="3")],
        "no_lines": [api_claim("L0", 0, 0), api_claim("L1", 0, 1)],
        "aliases": [
            {**api_claim("AL1", 1, 0), "TEN_BENH": "Viêm phổi", "ma_lk": "AL1x"},
            {**api_claim("AL2", 0, 1), "MIEN_CUNG_CT": "20250101"},
        ],
        "missing_key": [api_claim("K1"), {**api_claim("K2"), "MA_LK": None}],
        "numbers": [
            api_claim("M1", T_BHTT="1,5", T_THUOC="1e5", T_VTYT="-0", SO_NGAY_DTRI="5.0"),
            api_claim("M2", T_BHTT="inf", T_THUOC="nan", SO_NGAY_DTRI="5.5", NAM_QT="9" * 30),
            api_claim("M3", T_BHTT="12345678901234567890", T_THUOC=" 7 ", THANG_QT="0x1F"),
        ],
        "dates": [
            api_claim("T1", NGAY_VAO="20250303", NGAY_RA="202502300000", NGAY_TTOAN="000101010000"),
            api_claim("T2", NGAY_VAO="202503031260", NGAY_SINH="19850101", GT_THE_TU="2025"),
            api_claim("T3", NGAY_VAO="202612310000", NGAY_RA="202701010000"),
        ],
    }


@pytest.mark.parametrize("case", list(_ingest_cases()))
@pytest.mark.parametrize("max_time", [None, NOW])
def test_ingest_cases(case, max_time):
    rows, cols = both_json(_ingest_cases()[case], max_time=max_time)
    assert_same(rows, cols)


def test_the_bad_cases_are_bad():
    """The corpus holds errors of every kind the validator gives (not a vacuous parity)."""
    messages = set()
    for claims in _ingest_cases().values():
        _, cols = both_json(claims, max_time=NOW)
        messages |= set(pd.concat(cols.rejections)["error"].str.split(",").str[0])
    for m in ("missing required field", "not a number", "not a finite number",
              "not a whole number", "unparseable date", "bad format", "unknown code",
              "in the future (later than 202503051200)", "duplicate claim key (MA_LK): the first "
              "claim with this key was kept", "no claim summary (XML1) with this MA_LK",
              "rejected with its claim: another record of it has errors"):  # fmt: skip
        assert m in messages, m


# -- fuzzed claims --------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NUMBERS = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.from_regex(r"[+-]?[0-9]{0,20}[.,]?[0-9]{0,20}([eE][+-]?[0-9]{1,4})?", fullmatch=True),
    st.sampled_from(["-0", "+5", "1.", ".5", "1.e5", "0001", "1_000", "١٢", "１２", "0x10",
                     "Infinity", "-inf", "NaN", "null", "None", "N/A", "", " ", "1 000"]),
)  # fmt: skip
DATES = st.one_of(
    st.from_regex(r"[0-9]{8}([0-9]{4})?", fullmatch=True),
    st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31)).map(
        lambda d: d.strftime("%Y%m%d%H%M").zfill(12)
    ),
    st.sampled_from(["2025-03-03", "20250230", "202503032400", "0000", "２０２５０３０３"]),
)
TEXTS = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x85\xa0\u3000\u2028;.,", max_size=6),
    st.from_regex(r"[A-Z]{2}[0-9]{13}(;[A-Z]{2}[0-9]{13})?", fullmatch=True),
    st.from_regex(r"[A-Z][0-9]{2}(\.[0-9]{1,2})?(;[A-Z][0-9]{2})?", fullmatch=True),
    st.sampled_from(["\x00", "x" * 2500, "49001", "4900", "03", "3", "J18.9", "H001;T002"]),
)
VALUES = st.one_of(st.none(), NUMBERS, DATES, TEXTS, st.integers(-5, 10**6), st.floats())


def _fields(table):
    return [f.xml for f in table.fields if f.xml] + [a for f in table.fields for a in f.aliases]


@st.composite
def fuzzed_claims(draw):
    """One to four claims of the API with some fields replaced by fuzzed values (XML names,
    4210 aliases, lower-case keys), lines that may name another claim."""
    claims = []
    ids = draw(st.lists(st.sampled_from(["F1", "F2", "F3", "F1 ", " "]), min_size=1, max_size=4))
    for k, ma_lk in enumerate(ids):
        c = api_claim(ma_lk, draw(st.integers(0, 3)), draw(st.integers(0, 3)))
        for rec, table in (
            [(c, CLAIMS)]
            + [(x, DRUG_LINES) for x in c["xml2"]]
            + [(x, SERVICE_LINES) for x in c["xml3"]]
        ):
            for _ in range(draw(st.integers(0, 3 if table is CLAIMS else 2))):
                name = draw(st.sampled_from(_fields(table)))
                if draw(st.booleans()) and draw(st.booleans()):
                    name = name.lower()
                rec[name] = draw(VALUES)
            if draw(st.integers(0, 9)) == 0:
                rec.pop(draw(st.sampled_from(sorted(k for k in rec if k not in ("xml2", "xml3")))))
        if k and draw(st.integers(0, 4)) == 0 and c["xml2"]:
            c["xml2"][0]["MA_LK"] = ids[0]
        claims.append(c)
    return claims


@FUZZ
@given(fuzzed_claims(), st.sampled_from([None, NOW, pd.Timestamp("2025-03-03 08:15")]))
def test_fuzzed_claims(claims, max_time):
    rows, cols = both_json(claims, max_time=max_time)
    assert_same(rows, cols)


def test_negative_zero_is_zero_in_both():
    """A float -0.0 in a line rejected with its claim: 0.0 in both validators' record (CI's fuzz
    found "-0.0" row-wise, 0.0 column-wise, where other lines leave the column NaN)."""
    c = api_claim("NZ1", 2, 0)
    c["xml2"][0].pop("DON_GIA")
    c["xml2"][1]["T_NGUONKHAC_NSNN"] = -0.0
    rows, cols = both_json([c])
    assert_same(rows, cols)


_TRICKY = [0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 0.125, 0.375, 2.675, 1.005, -0.004, -0.0049,
           0.0049999, 1e-300, -1e-300, 123456789.125, 2.0**52 + 0.5, 2.0**53, 1e300, -1e300,
           9007199254740993, 10**20 + 1, 12345678901234567890123, 7, -3]  # fmt: skip


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(-1e7, 1e7, allow_nan=False).map(lambda x: round(x * 8) / 8),  # ties
        st.integers(-(10**20), 10**20),
        st.sampled_from(_TRICKY),
    ),
    st.sampled_from([0, 2, 3]),
)
def test_round_as_numpy_is_numpys_round_bit_for_bit(x, decimals):
    """The row-wise validator rounds money and quantities as the column-wise one (np.round):
    the same float, the sign of a zero included."""
    import struct

    import numpy as np

    from contract.validate_rows import round_as_numpy

    want = float(np.round(np.float64(x), decimals))
    got = round_as_numpy(x, decimals)
    assert type(got) is float
    assert struct.pack("<d", got) == struct.pack("<d", want), (x, decimals, got, want)
