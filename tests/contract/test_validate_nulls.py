"""Null identity fields (card number, national ID, other optional strings) never crash validation:
they give a clean result, and a field error only when the field is required (issue 13)."""

from __future__ import annotations

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
