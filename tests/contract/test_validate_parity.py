"""The vectorised field checks (contract.fast_check, used by check_table) against the pandas rules
they stand in for (validate._check_rows, run on every row): the same canonical values, the same
field errors in the same order, the same rejection report, on the simulator's output and on
hostile values in every field and column type (issue 15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import claim, drug, service

import simulator
from contract.fast_check import screen
from contract.schema import CLAIMS, DRUG_LINES, SERVICE_LINES
from contract.tabular import read_tabular_file
from contract.validate import (
    GROUP,
    RECORD,
    SOURCE,
    _check_rows,
    check_table,
    rejection_rows,
    rename_to_standard,
)

TABLES = {"xml1": CLAIMS, "xml2": DRUG_LINES, "xml3": SERVICE_LINES}
MAKERS = {"xml1": claim, "xml2": drug, "xml3": service}

HOSTILE_TEXT = [
    "",
    " ",
    "\xa0",
    " J18.9 ",
    "J18.9\n",
    "j18.9",
    "\xa0J18.9",
    "J18 .9",
    "A\u2003B",
    "AB\x0bC",
    "x\x00y",
    "\x1f",
    "12,5",
    " 12,50 ",
    "1e5",
    "1E-2",
    "-0",
    "-0.0",
    "+5",
    ".5",
    "5.",
    "0x10",
    "1_000",
    "１２",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "12345678901234",
    "123456789012345678",
    "99999999999999999999",
    "1.005",
    "2.675",
    "0.125",
    "-3",
    "3.0",
    "3.5",
    "4",
    "17",
    "202502291230",
    "202402291230",
    "999912312359",
    "160001010000",
    "000001010000",
    "202513011230",
    "202501322359",
    "202501012400",
    "202501011260",
    "20250101",
    "2025010112",
    "190001010000",
    "189912312359",
    "220101010000",
    "000101010000",
    "2025-01-01",
    "202501\u0660",  # 8 bytes, 7 characters, one an Arabic-Indic zero: not 8 digits
    "2025010112\u0660",  # 12 bytes
    "２０２５０１０１",  # fullwidth digits
    "49001",
    "4900",
    "DN4490123456789",
    "DN4490123456789;HN4490123456780",
    "DN449012345678",
    "H001;T002",
    "h001",
    "03",
    "3",
    "10",
    "1.1",
    "1.",
    "Viêm phổi",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "ữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữữ",
]
HOSTILE_FLOAT = [
    0.0, -0.0, 0.1, 0.125, 1.005, 2.675, 123456.785, 1e-7, 1e15, 1e20, 2.0**53, -5.0, 3.0, 3.5,
    np.nan, np.inf, -np.inf, 99999999999.995, 12.345, 202503031000.0,
]  # fmt: skip
HOSTILE_INT = [0, -1, 3, 4, 17, 2**53, -(2**53) - 1, 2**62, 202503031000, 20250101, 49001]


def _base(stem: str, n: int) -> pd.DataFrame:
    make = MAKERS[stem]
    return pd.DataFrame([make(f"K{i}") for i in range(n)])


def _compare(raw: pd.DataFrame, table) -> None:
    fast = check_table(raw, table)
    ref = _check_rows(rename_to_standard(raw, table), table, 65_536, False, None)
    pd.testing.assert_frame_equal(fast.frame, ref.frame, check_exact=True)
    for name in fast.frame.columns[fast.frame.dtypes == "float64"]:  # -0.0 is not 0.0 on disk
        assert (np.signbit(fast.frame[name]) == np.signbit(ref.frame[name])).all(), name
    pd.testing.assert_frame_equal(
        fast.errors.reset_index(drop=True), ref.errors.reset_index(drop=True), check_dtype=False
    )
    assert (fast.bad.to_numpy() == ref.bad.to_numpy()).all()
    reject = pd.Series(np.arange(len(raw)) % 3 == 0) | ref.bad
    pd.testing.assert_frame_equal(
        rejection_rows(fast, reject, "with its claim"),
        rejection_rows(ref, reject, "with its claim"),
    )


def _mutated(stem: str, kind: str) -> pd.DataFrame:
    """Clean rows, each with one hostile value in one column, so no other error in the row hides
    a difference in how that value is typed or judged. Text: every column as strings; numbers:
    every column whose clean value is a number (codes, dates, amounts) as int64 or float64."""
    pool = {"text": HOSTILE_TEXT, "float": HOSTILE_FLOAT, "int": HOSTILE_INT}[kind]
    base = _base(stem, 1)
    cols = [
        c
        for c in base.columns
        if kind == "text" or (c != "MA_LK" and pd.notna(pd.to_numeric(base[c], "coerce")[0]))
    ]
    df = pd.concat([base] * (len(cols) * len(pool)), ignore_index=True)
    for j, col in enumerate(cols):
        if kind == "text":
            df[col] = df[col].astype("str")
        elif kind == "float":
            df[col] = pd.to_numeric(df[col]).astype("float64")
        else:
            df[col] = pd.to_numeric(df[col]).round().astype("int64")
        df.loc[j * len(pool) : (j + 1) * len(pool) - 1, col] = pool
    df["MA_LK"] = [f"K{i}" for i in range(len(df))]
    df[GROUP], df[SOURCE], df[RECORD] = "g", "t", np.arange(len(df))
    return df


@pytest.mark.parametrize("stem", list(TABLES))
@pytest.mark.parametrize("kind", ["text", "float", "int"])
def test_hostile_values_give_the_pandas_rules_result(stem, kind):
    df = _mutated(stem, kind)
    _compare(df, TABLES[stem])
    bad = check_table(df, TABLES[stem]).bad
    assert 0 < bad.sum() < len(df)  # the clean values stay clean; many hostile ones are errors


@pytest.mark.parametrize("stem", list(TABLES))
def test_factory_rows_pass_the_vectorised_path_untouched(stem):
    raw = rename_to_standard(_base(stem, 5), TABLES[stem])
    _values, suspect = screen(raw, TABLES[stem], 65_536, False, None)
    assert not suspect.any()  # nothing needs the pandas rules: the fast path types these rows


def test_simulated_world_parity_and_no_row_left_to_pandas(tmp_path):
    simulator.simulate(tmp_path, 1_500, months=2, start="2025-01", seed=5)
    for stem, table in TABLES.items():
        raw = read_tabular_file(tmp_path / f"{stem}.parquet", table)
        raw[GROUP], raw[SOURCE], raw[RECORD] = "g", "t", np.arange(len(raw))
        _compare(raw, table)
        _values, suspect = screen(rename_to_standard(raw, table), table, 65_536, False, None)
        assert suspect.mean() < 0.001, (stem, suspect.mean())


def test_the_future_bound():
    df = _mutated("xml1", "text").iloc[::3]
    bound = pd.Timestamp("2025-04-01")
    fast = check_table(df, CLAIMS, max_time=bound)
    ref = _check_rows(
        rename_to_standard(df, CLAIMS).reset_index(drop=True), CLAIMS, 65_536, False, bound
    )
    pd.testing.assert_frame_equal(fast.frame, ref.frame, check_exact=True)
    pd.testing.assert_frame_equal(fast.errors, ref.errors.reset_index(drop=True), check_dtype=False)
    assert (fast.errors["error"].str.startswith("in the future")).any()


def test_text_columns_that_need_no_trim_still_lose_their_empty_values():
    # The text of a column is left untrimmed when every value starts and ends with printable
    # ASCII (an empty value reads its neighbour's byte, or wraps to the last byte): empty values
    # must still become missing, first, in the middle and last, beside nulls.
    df = _base("xml3", 6)
    df["MA_BAC_SI"] = pd.Series(["", "BS1", None, "", "BS2;BS3", ""], dtype="str")
    df["TEN_DICH_VU"] = pd.Series(["x", "", "y", "z", None, "w"], dtype="str")
    df[GROUP], df[SOURCE], df[RECORD] = "g", "t", np.arange(len(df))
    _compare(df, SERVICE_LINES)
    frame = check_table(df, SERVICE_LINES).frame
    assert frame["clinician_id"].isna().tolist() == [True, False, True, True, False, True]
    assert frame["service_name"].isna().tolist() == [False, True, False, False, True, False]
