import pandas as pd
import pytest

from features import schema
from features.ingest import read_tabular_file
from features.validate import ContractError, check_table


def test_every_table_maps_unique_xml_and_canonical_names():
    for t in schema.TABLES.values():
        assert len(set(t.columns)) == len(t.columns), t.name
        xml = [f.xml for f in t.fields]
        assert len(set(xml)) == len(xml), t.name
        for f in t.fields:
            assert f.name == f.name.lower() and " " not in f.name
            assert f.dtype in {"str", "Int64", "float64", "datetime64[us]"}


def test_4210_names_are_accepted_as_aliases():
    by = schema.CLAIMS.by_xml()
    assert by["MA_THE"].name == "card_number"
    assert by["MA_BENH"].name == "primary_icd"
    assert by["T_TONGCHI"].name == "total_cost"
    assert by["MA_LYDO_VVIEN"].name == "route_code"
    assert schema.SERVICE_LINES.by_xml()["DON_GIA"].name == "unit_price"


def test_values_are_typed_per_contract():
    raw = pd.DataFrame(
        {
            "MA_LK": ["X1"],
            "MA_BN": ["007"],
            "NGAY_SINH": ["199001010000"],
            "GIOI_TINH": ["2"],
            "MA_BENH_CHINH": ["O80"],
            "MA_LOAI_KCB": ["3"],
            "MA_CSKCB": ["01001"],
            "NGAY_VAO": ["202401312359"],
            "NGAY_RA": ["202402010001"],
            "SO_NGAY_DTRI": ["2"],
            "T_THUOC": ["10.005"],
            "T_VTYT": ["0"],
            "T_TONGCHI": ["1234567.891"],
            "T_BNTT": ["0"],
            "T_BNCCT": ["0"],
            "T_BHTT": ["1,5"],
        }
    )
    c = check_table(raw, schema.CLAIMS)
    assert not c.bad.any(), c.errors
    row = c.frame.iloc[0]
    assert row["patient_id"] == "007"  # leading zeros kept
    assert row["facility_id"] == "01001"
    assert row["visit_type"] == "03"  # 4210 numeric visit type padded
    assert row["admitted_at"] == pd.Timestamp("2024-01-31 23:59")
    assert row["total_cost"] == 1234567.89  # 4210 alias, money to 2 decimals
    assert row["fund_claimed"] == 1.5
    assert row["sex"] == 2 and c.frame["sex"].dtype == "Int64"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_missing_required_column_names_column_and_file(tmp_path, fmt):
    df = pd.DataFrame({"MA_LK": ["A"], "STT": [1]})
    p = tmp_path / f"xml2.{fmt}"
    df.to_csv(p, index=False) if fmt == "csv" else df.to_parquet(p)
    with pytest.raises(ContractError) as e:
        read_tabular_file(p, schema.DRUG_LINES)
    msg = str(e.value)
    assert p.name in msg and "MA_THUOC" in msg and "NGAY_YL" in msg and "STT" not in msg


def test_extra_columns_are_ignored():
    raw = pd.DataFrame({"MA_CSKCB": ["49001"], "SOMETHING_ELSE": ["x"], "TUYEN": ["H"]})
    c = check_table(raw, schema.FACILITIES)
    assert "SOMETHING_ELSE" not in c.frame.columns and not c.bad.any()
    assert c.frame.loc[0, "level"] == "H"
