"""SQL's null semantics for per-row arithmetic in plain Python (the online state's): None
propagates through arithmetic and comparisons, `and3`/`or3` are three-valued logic, a condition
that is None counts as false where SQL's CASE would take ELSE, GREATEST/LEAST skip None (DuckDB's
behaviour), ROUND takes halves away from zero."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd

_NA, _NAT = pd.NA, pd.NaT
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def null(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def clean(v):
    """A frame value as Python: NaN/NaT/NA -> None, numpy scalars -> Python's."""
    if v is None or v is _NA or v is _NAT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


def day_number(ts) -> int | None:
    return None if ts is None else ts.toordinal() - EPOCH_ORDINAL


def and3(*xs):
    out = True
    for x in xs:
        if x is False:
            return False
        if x is None:
            out = None
    return out


def or3(*xs):
    out = False
    for x in xs:
        if x is True:
            return True
        if x is None:
            out = None
    return out


def to_float(v):
    return None if v is None else float(v)


def cmp(a, b, f):
    return None if a is None or b is None else f(a, b)


def sub(a, b):
    return None if a is None or b is None else a - b


def mul(*xs):
    if any(x is None for x in xs):
        return None
    out = 1.0
    for x in xs:
        out *= x
    return out


def div(a, b):
    """_safe_div: a / b when b != 0, else None."""
    return None if a is None or b is None or b == 0 else a / b


def greatest(*xs):
    xs = [x for x in xs if x is not None]
    return max(xs) if xs else None


def least(*xs):
    xs = [x for x in xs if x is not None]
    return min(xs) if xs else None


def abs_(v):
    return None if v is None else abs(v)


def round_half_away(x: float) -> float:
    """SQL ROUND(x, 0) on a double: halves away from zero (Python's round is to even)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def records(df, columns=None) -> list[dict]:
    """A frame's rows as dicts of Python values (None for every kind of missing); `columns`:
    only those (the ones present)."""
    if df is None or not len(df):
        return []
    if isinstance(df, list):  # records already (a row-wise validator's)
        return [{k: clean(v) for k, v in r.items()} for r in df]
    cols = [c for c in (columns or df.columns) if c in df.columns]
    if len(df) <= _BY_ROW:  # a request's claim: one row costs less than a Series per column
        at = [df.columns.get_loc(c) for c in cols]
        out = []
        for i in range(len(df)):
            row = df.iloc[i].tolist()
            out.append({c: clean(row[j]) for c, j in zip(cols, at, strict=True)})
        return out
    values = [column(df[c]) for c in cols]
    return [dict(zip(cols, row, strict=True)) for row in zip(*values, strict=True)]


def column(col: pd.Series) -> list:
    """`[clean(v) for v in col.tolist()]`, per dtype where pandas gives it at once: text as text,
    floats as floats, nullable integers as ints, times as Timestamps, missing values None."""
    dtype = col.dtype
    if isinstance(dtype, pd.StringDtype | pd.Int64Dtype | pd.Int32Dtype):
        return col.to_numpy(dtype=object, na_value=None).tolist()
    if dtype == "float64":
        x = col.to_numpy()
        out = x.astype(object)
        out[np.isnan(x)] = None
        return out.tolist()
    if pd.api.types.is_datetime64_dtype(dtype):
        return [None if v is _NAT else v for v in col.tolist()]
    return [clean(v) for v in col.tolist()]


_BY_ROW = 3
