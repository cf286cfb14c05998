"""Null identity fields (card number, national ID, other optional strings) never crash validation:
they give a clean result, and a field error only when the field is required (issue 13)."""

from __future__ import annotations

import hmac
import re

import pandas as pd
import pytest
from factories import claim

from claimradar.settings import DEV_LINKAGE_KEY
from contract.ingest import Limits, validate_batch
from contract.schema import CLAIMS
from contract.validate import GROUP, RECORD, SOURCE, linkage_keys

OPTIONAL_TEXT = [f.xml for f in CLAIMS.fields if not f.required and f.kind in ("text", "code")]


def _raw(rows: list[dict]) -> dict[str, pd.DataFrame]:
    heads = [{**r, GROUP: str(i), SOURCE: "t", RECORD: str(i)} for i, r in enumerate(rows)]
    return {"claims": pd.DataFrame(heads)}


def _validate(rows: list[dict], **kw):
    return validate_batch(_raw(rows), Limits(workers=1), DEV_LINKAGE_KEY, **kw)


def test_a_null_card_number_is_not_a_crash():
    r = _validate([claim("A1", MA_THE_BHYT=None)])
    good = r.good["claims"]
    assert list(good["claim_id"]) == ["A1"]
    assert good["card_key"].isna().all()
    assert good["person_key"].str.fullmatch(r"[0-9a-f]{16}").all()  # from the national ID


def test_null_card_and_national_id_fall_back_to_facility_and_patient():
    r = _validate([claim("A1", MA_THE_BHYT=None, SO_CCCD=None)])
    good = r.good["claims"]
    assert len(good) == 1 and good["person_key"].notna().all() and good["card_key"].isna().all()


@pytest.mark.parametrize("field", OPTIONAL_TEXT)
def test_every_optional_text_field_may_be_null(field):
    r = _validate([claim("A1", **{field: None})])
    assert list(r.good["claims"]["claim_id"]) == ["A1"], r.checked["claims"].errors


def test_all_optional_text_fields_null_at_once_and_mixed_with_present_ones():
    nulls = dict.fromkeys(OPTIONAL_TEXT)
    r = _validate([claim("A1", **nulls), claim("A2")])
    good = r.good["claims"].set_index("claim_id")
    assert set(good.index) == {"A1", "A2"}
    assert pd.isna(good.loc["A1", "card_key"]) and pd.notna(good.loc["A2", "card_key"])


def test_a_null_required_field_is_a_field_error():
    r = _validate([claim("A1", MA_CSKCB=None), claim("A2")])
    assert list(r.good["claims"]["claim_id"]) == ["A2"]
    errs = r.checked["claims"].errors
    assert list(errs["field"]) == ["MA_CSKCB"] and "missing required" in errs["error"].iloc[0]


def test_linkage_keys_on_all_null_columns():
    frame = pd.DataFrame(
        {
            "card_number": pd.Series([None, None], dtype="str"),
            "national_id": pd.Series([None, None], dtype="str"),
            "facility_id": pd.Series(["49001", "49001"], dtype="str"),
            "patient_id": pd.Series(["B1", "B2"], dtype="str"),
        }
    )
    keys = linkage_keys(frame, DEV_LINKAGE_KEY)
    assert keys["card_key"].isna().all() and keys["person_key"].nunique() == 2


def _pandas_linkage_keys(claims: pd.DataFrame, key: str) -> pd.DataFrame:
    """linkage_keys as pandas string methods and a dict of hashes computed it before its Arrow
    kernels (the reference the vectorised version must equal byte for byte)."""

    def as_str(s: pd.Series) -> pd.Series:
        return s.astype("object").where(s.notna(), None).astype("str")

    def keyed(values: pd.Series, prefix: str) -> pd.Series:
        k = key.encode()
        table = {
            v: hmac.digest(k, f"{prefix}:{v}".encode(), "sha256")[:8].hex()
            for v in values.dropna().unique()
        }
        return values.map(table).astype("str")

    text = {
        c: as_str(claims[c]) for c in ("card_number", "national_id", "facility_id", "patient_id")
    }
    first = text["card_number"].str.replace(r";.*\Z", "", regex=True)
    first = as_str(first.where(first != ""))
    si = as_str(first.str.extract(re.compile(r"^[A-Z]{2}[0-9]{3}([0-9]{10})"), expand=False))
    basis = ("SI:" + si).fillna("ID:" + text["national_id"])
    basis = basis.fillna("BN:" + text["facility_id"] + ":" + text["patient_id"])
    return pd.DataFrame(
        {"person_key": keyed(basis, "person"), "card_key": keyed(first, "card")},
        index=claims.index,
    )


def test_linkage_keys_equal_the_pandas_rules_on_hostile_values():
    cards = [
        "HC4790123456789",
        "HC4790123456789;DN4791111111111",
        "hc4790123456789",  # lower case: no social-insurance number
        "HC479012345678",  # one digit short
        "HC4790123456789x",  # longer: the match is a prefix, still a number
        ";HC4790123456789",  # empty first card
        "HC4790123456789;a\nb",  # a newline after ';': Python's "." stops there
        "AB;C\nD;E",
        "É1234567890123;x",
        "HC47٠١٢٣٤٥٦٧٨٩٠",  # Arabic-Indic digits are not [0-9]
        "",
        " ",
        None,
        "HC4790123456789",  # repeated: one hash per distinct value
    ]
    n = len(cards)
    frame = pd.DataFrame(
        {
            "card_number": pd.Series(cards, dtype="str"),
            "national_id": pd.Series(["0123", None, "", "x:y"] * 3 + [None, "é"], dtype="str"),
            "facility_id": pd.Series(["49001", None] * (n // 2), dtype="str"),
            "patient_id": pd.Series(["B1", "B2", None] * 4 + ["B:1", ""], dtype="str"),
        }
    ).set_axis(pd.RangeIndex(10, 10 + n))  # not 0..n-1: the keys keep the frame's index
    got = linkage_keys(frame, DEV_LINKAGE_KEY)
    pd.testing.assert_frame_equal(got, _pandas_linkage_keys(frame, DEV_LINKAGE_KEY))
    assert got["person_key"].notna().sum() >= 10 and got["card_key"].isna().sum() >= 3
    # a column null everywhere comes typed as floats
    floats = frame.assign(card_number=float("nan"), national_id=float("nan"))
    pd.testing.assert_frame_equal(
        linkage_keys(floats, DEV_LINKAGE_KEY), _pandas_linkage_keys(floats, DEV_LINKAGE_KEY)
    )
