"""The case store's texts and look-ups of large frames, column by column in Arrow (issue 14).

A claim's content hash (serving.casefile.content_hashes) is the SHA-256 of its fields and lines
as text. For a frame of a few rows each value is made text by `value_text`; for a larger one each
column is made text at once (`column_texts`: the texts the frame path always gave: numbers
rounded by numpy to 4 decimals, shown as numpy shows a float; times to the minute; missing values
empty) and the rows joined by Arrow, so no Python string is built per value: a 1,000-claim
request's ~300,000 values took ~170 ms as Python strings, ~60 ms here.
tests/serving/test_casefile_columns.py holds these texts to the value-by-value ones.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

FEW = 64  # fewer rows: value by value (pandas' and Arrow's cost per call would dominate)
SEP = "\x1f"  # between a row's fields
_TEXT = pa.large_string()
# times numpy writes as strftime does (four-digit years)
_FIRST, _LAST = np.datetime64("1000-01-01", "us"), np.datetime64("9999-12-31T23:59", "us")
_WHOLE = 1e15  # whole floats below this: their digits and ".0", as numpy shows them
_POINT, _NONE = pa.scalar(".0", _TEXT), pa.scalar("", _TEXT)


def plain(v: Any) -> Any:
    """One value, JSON-safe: numpy scalars to Python, NaN/NaT/NA to None, times to ISO text."""
    t = type(v)
    if t is str or t is int or t is bool:  # most values: what the checks below leave as is
        return v
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else round(v, 3)
    if isinstance(v, pd.Timestamp | datetime):
        return v.isoformat(timespec="minutes")
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [plain(x) for x in v]
    return v


def value_text(v: Any) -> str:
    """One value as text the same way whatever its dtype: times to the minute, numbers as floats
    rounded to 4 decimals (1 and 1.0 alike), missing values empty."""
    t = type(v)
    if t is str:  # most values: the checks below cost more than the value
        return v
    if t is float:  # then these two, as the number branch below makes them
        return "" if v != v else repr(round(v, 4))
    if t is int:
        return repr(round(float(v), 4))
    if v is None or v is pd.NA or v is pd.NaT:
        return ""
    if isinstance(v, bool | np.bool_):
        return repr(float(v))
    if isinstance(v, int | float | np.integer | np.floating):
        f = float(v)
        return "" if f != f else repr(round(f, 4))
    if isinstance(v, pd.Timestamp | datetime):
        return v.strftime("%Y-%m-%dT%H:%M")
    return str(v)


def listed_texts(col: pd.Series) -> list[str]:
    """A column's texts as Python strings, vectorised by numpy and pandas for the usual dtypes
    (the way the frame path made them before `column_texts`: its reference)."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return col.dt.strftime("%Y-%m-%dT%H:%M").fillna("").tolist()
    if pd.api.types.is_numeric_dtype(col):  # bools, ints and floats alike as rounded floats
        arr = col.to_numpy(dtype="float64", na_value=np.nan).round(4)
        out = arr.astype(str)
        out[np.isnan(arr)] = ""
        return out.tolist()
    if isinstance(col.dtype, pd.StringDtype):
        return col.to_numpy(dtype=object, na_value="").tolist()
    return [value_text(v) for v in col.tolist()]


def column_texts(col: pd.Series) -> pa.Array:
    """listed_texts(col) as an Arrow array, made without a Python string per value for text,
    numbers and times (other dtypes: listed_texts)."""
    dtype = col.dtype
    if isinstance(dtype, pd.StringDtype):
        got = getattr(col.array, "_pa_array", None)  # Arrow-backed: no copy
        if got is None:
            return pa.array(col.to_numpy(dtype=object, na_value=""), type=_TEXT)
        return pc.fill_null(got.combine_chunks().cast(_TEXT), "")
    if pd.api.types.is_datetime64_dtype(dtype):  # naive times (an aware one: its own zone)
        text = minute_texts(col.to_numpy(), "")
        if text is not None:
            return pa.array(text, type=_TEXT)
    elif pd.api.types.is_numeric_dtype(dtype):
        x = col.to_numpy(dtype="float64", na_value=np.nan).round(4)
        whole = (np.abs(x) < _WHOLE) & (x == np.trunc(x)) & ~((x == 0) & np.signbit(x))
        digits = pa.array(np.where(whole, x, 0).astype("int64")).cast(_TEXT)
        out = pc.binary_join_element_wise(digits, _POINT, _NONE)
        rest = ~whole
        if rest.any():  # NaN, fractions, -0.0 and large numbers: as numpy shows them
            text = np.full(len(x), "", dtype=object)
            shown = rest & ~np.isnan(x)
            text[shown] = x[shown].astype(str)
            out = pc.if_else(pa.array(whole), out, pa.array(text, type=_TEXT))
        return out
    return pa.array(listed_texts(col), type=_TEXT)


def minute_texts(x: np.ndarray, missing: Any = None) -> list | None:
    """Naive datetime64 values as text to the minute ("2026-02-01T21:25", what strftime
    "%Y-%m-%dT%H:%M" and isoformat(timespec="minutes") write), `missing` for NaT; None when a
    year has other than four digits (numpy would write it otherwise)."""
    nat = np.isnat(x)
    known = x[~nat]
    if len(known) and (known.min() < _FIRST or known.max() > _LAST):
        return None
    text = np.datetime_as_string(x, unit="m").astype(object)
    text[nat] = missing
    return text.tolist()


def row_texts(df: pd.DataFrame, names: list[str]) -> list[str]:
    """Each row's fields (`names` in their order; absent ones empty) as one text, the fields
    joined by SEP."""
    if len(df) < FEW:
        have = [n for n in names if n in df.columns]
        at = {n: i for i, n in enumerate(have)}
        rows = df[have].to_numpy(dtype=object)
        return [SEP.join(value_text(row[at[n]]) if n in at else "" for n in names) for row in rows]
    empty = pa.scalar("", _TEXT)
    cols = [column_texts(df[n]) if n in df.columns else empty for n in names]
    return pc.binary_join_element_wise(*cols, pa.scalar(SEP, _TEXT)).to_pylist()


def among(col: pd.Series, ids, text: bool = True) -> np.ndarray:
    """`col.astype(str).isin(ids)` (`col.isin(ids)` with text=False) as a numpy mask, `ids`
    texts; by Arrow for a column of Arrow-backed text (pandas' isin goes value by value there:
    the two agree on it, missing values never among them)."""
    got = getattr(col.array, "_pa_array", None)
    if got is None or not (pa.types.is_large_string(got.type) or pa.types.is_string(got.type)):
        return (col.astype(str) if text else col).isin(ids).to_numpy()
    wanted = pa.array(list(ids), type=got.type)
    return pc.is_in(got, value_set=wanted).to_numpy(zero_copy_only=False)


def line_order(lines: pd.DataFrame, keep: np.ndarray) -> list[int]:
    """The positions of the kept lines in `sort_values(["claim_id", "line_no"], kind="stable")`
    order within each claim (line numbers ascending, missing last, ties as they came); claims
    in any order (each claim's lines are read apart)."""
    pos = np.flatnonzero(keep)
    no = lines["line_no"]
    if not pd.api.types.is_numeric_dtype(no.dtype) or pd.api.types.is_bool_dtype(no.dtype):
        return [int(p) for p in pos[_sorted(lines.iloc[pos])]]
    n = no.to_numpy(dtype="float64", na_value=np.nan)[pos]
    claims = pd.factorize(lines["claim_id"].iloc[pos], use_na_sentinel=False)[0]
    # lexsort is stable: by claim, then missing numbers last, then the number
    order = np.lexsort((np.nan_to_num(n, nan=0.0), np.isnan(n), claims))
    return pos[order].tolist()


def _sorted(lines: pd.DataFrame) -> np.ndarray:
    """Positions of sort_values(["claim_id", "line_no"], kind="stable") (any dtype)."""
    order = lines.reset_index(drop=True).sort_values(["claim_id", "line_no"], kind="stable")
    return order.index.to_numpy()
