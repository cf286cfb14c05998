"""The field rules of contract.validate.check_table as Arrow compute kernels over whole columns.

`screen` types every field of a table at once and marks the rows it cannot vouch for: any row
that breaks a rule, and any value whose canonical form it does not compute exactly as the
pandas rules do (numbers with more than 15 digits, exponents or a negative zero; dates outside
1900-2200; text from float columns that is not a whole number; column types other than text,
integers and float64). check_table runs its pandas rules on those rows only, so the errors, the
values and the rejection report are the pandas rules' own; the rows that pass here (nearly all)
never reach pandas row by row. The kernels are the ones pandas' string methods call
(utf8_trim_whitespace, utf8_length, match_substring_regex), so the text rules agree by
construction; tests/contract/test_validate_parity.py checks the rest on hostile values.
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from contract.schema import DECIMALS, Field, Table

# Characters that XML 1.0 cannot carry; a value holding them did not come from a valid file.
CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"
# Dates that place a claim in time (its month): later than the caller's bound is refused.
NOT_IN_FUTURE = ("admitted_at", "inpatient_admitted_at", "discharged_at")

# Python's \s on str patterns is str.isspace(); RE2's \s is ASCII only, so \S is spelled out.
_SPACE = "".join(f"\\x{{{c:x}}}" for c in range(sys.maxunicode + 1) if chr(c).isspace())
_PLAIN_NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"
_MAX_DIGITS = 15  # up to here a decimal string parses exactly as pandas parses it
_YEARS = (1900, 2200)  # dates the fast path types itself; others go to the pandas rules
_ROUND_SPAN = 1e12  # |value| * 10**decimals below this: rounding is decided far from a tie
_ROUND_MARGIN = 1e-3


def re2(pattern: str) -> str | None:
    """The pattern as RE2 runs it with Python's meaning, or None if it uses other classes."""
    if re.search(r"\\[sdwbDWBAZ]", pattern):
        return None
    return pattern.replace(r"\S", f"[^{_SPACE}]")


_TEXT = pa.large_string()  # pandas' "str" columns hold large_string
_NULL = pa.scalar(None, _TEXT)
_INTS = tuple(np.dtype(t) for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"))


def arrow_text(s: pd.Series) -> pa.Array:
    """A "str" column as one large_string array (no copy when it is one chunk already)."""
    arr = pa.array(s.array)
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return arr.cast(_TEXT)


def _offsets(arr: pa.Array) -> np.ndarray:
    """The int64 offsets of a large_string array's values."""
    return np.frombuffer(arr.buffers()[1], np.int64)[arr.offset : arr.offset + len(arr) + 1]


def _untrimmable(arr: pa.Array) -> bool:
    """True when utf8_trim_whitespace would return every value unchanged: each non-empty value
    (null slots included, which only makes the answer False more often) begins and ends with a
    byte in 0x21-0x7E, printable ASCII that no whitespace character starts or ends with."""
    data = arr.buffers()[2]
    if data is None:
        return False
    offsets = _offsets(arr)
    b = np.frombuffer(data, np.uint8)
    if len(b) == 0:
        return False
    # an empty value reads a neighbour's byte (or wraps to the last): it needs no trim either way
    first = b[np.minimum(offsets[:-1], len(b) - 1)]
    last = b[offsets[1:] - 1]
    return bool(((first - 0x21 < 0x5E) & (last - 0x21 < 0x5E)).all())  # uint8: 0x21-0x7E


def _np_bool(a: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Boolean array -> numpy, null -> False."""
    return pc.fill_null(a, False).to_numpy(zero_copy_only=False).astype(bool)


class _Column:
    """One raw column as text (trimmed, empty -> null) plus, for numeric input, its numbers.

    The text of a numeric column is made only when a rule reads it (text, code and date fields):
    number fields type the numbers themselves, and most numeric columns are number fields."""

    def __init__(self, s: pd.Series):
        self.n = len(s)
        self.suspect = np.zeros(self.n, dtype=bool)
        self.ints: np.ndarray | None = None  # int64 values (no nulls) of an integer column
        self.floats: np.ndarray | None = None  # float64 values of a float column
        self._text: pa.Array | None = None
        dtype = s.dtype
        if dtype == "str":
            self._set_text(arrow_text(s))
        elif isinstance(dtype, np.dtype) and (dtype.kind == "b" or dtype in _INTS):
            self.ints = s.to_numpy().astype(np.int64)
            self.present = np.ones(self.n, dtype=bool)  # the text of a number is never empty
        elif dtype == np.float64:
            x = s.to_numpy()
            self.floats = x
            self.present = ~np.isnan(x)
            with np.errstate(invalid="ignore"):
                self.whole = np.isfinite(x) & (x == np.floor(x)) & (np.abs(x) < 2.0**62)
            # Non-integral or huge floats: their text is Python's repr; the pandas rules make it.
            self.suspect = ~self.whole & self.present
        else:
            raise TypeError(dtype)

    def _set_text(self, raw: pa.Array) -> None:
        """Trimmed, empty -> null. Each step is skipped when the bytes show it changes nothing:
        no trim when every value starts and ends with printable ASCII other than a space, no
        nulling when no valid value is empty."""
        text = raw if _untrimmable(raw) else pc.utf8_trim_whitespace(raw)
        valid = _np_bool(pc.is_valid(text))
        if (valid & (np.diff(_offsets(text)) == 0)).any():
            text = pc.if_else(pc.equal(text, ""), _NULL, text)
            valid = _np_bool(pc.is_valid(text))
        self._text, self.present = text, valid

    @property
    def text(self) -> pa.Array:
        if self._text is None:
            if self.ints is not None:
                self._text = pc.cast(pa.array(self.ints), _TEXT)
            else:
                ints = np.where(self.whole, self.floats, 0).astype(np.int64)
                self._text = pc.cast(pa.array(ints, mask=~self.whole), _TEXT)
        return self._text


def screen(
    raw: pd.DataFrame,
    table: Table,
    max_chars: int,
    from_xml: bool,
    max_time: pd.Timestamp | None,
) -> tuple[dict[str, pd.Series], np.ndarray] | None:
    """Typed columns of every field and the rows to hand to the pandas rules; None when a column
    type is not one this path types (then check_table runs the pandas rules on every row)."""
    fast = screen_fields(raw, table, max_chars, from_xml, max_time)
    if fast is None:
        return None
    out, suspects = fast
    suspect = np.zeros(len(raw), dtype=bool)
    for m in suspects.values():
        suspect |= m
    return out, suspect


def screen_fields(
    raw: pd.DataFrame,
    table: Table,
    max_chars: int,
    from_xml: bool,
    max_time: pd.Timestamp | None,
) -> tuple[dict[str, pd.Series], dict[str, np.ndarray]] | None:
    """As screen, with the rows to hand to the pandas rules per field (a rule looks at its own
    field only, so a row broken in one field needs the pandas rules of that field alone)."""
    n = len(raw)
    suspects: dict[str, np.ndarray] = {}
    out: dict[str, pd.Series] = {}
    for f in table.fields:
        if f.xml not in raw.columns:
            out[f.name] = pd.Series(pd.array([None] * n, dtype=f.dtype))
            if f.required:
                suspects[f.name] = np.ones(n, dtype=bool)
            continue
        s = raw[f.xml]
        if isinstance(s, pd.DataFrame):  # the same name twice: the pandas rules decide
            return None
        try:
            col = _Column(s)
        except TypeError:
            return None
        suspect = ~col.present if f.required else np.zeros(n, dtype=bool)
        if f.kind in ("text", "code", "birth"):
            value, bad = _text(col, f, max_chars, from_xml)
            if bad is None:
                return None
            suspect |= bad | col.suspect
        elif f.kind in ("int", "quantity", "money"):
            value, bad = _number(col, f)  # float columns are typed directly, not via text
            suspect |= bad
        else:
            value, bad = _stamp(col, f)
            suspect |= bad | col.suspect
            if max_time is not None and f.name in NOT_IN_FUTURE:
                suspect |= np.asarray(value > np.datetime64(max_time.to_datetime64(), "us"))
        out[f.name] = value
        if suspect.any():
            suspects[f.name] = suspect
    return out, suspects


def _text(
    col: _Column, f: Field, max_chars: int, from_xml: bool
) -> tuple[pd.Series, np.ndarray | None]:
    text = col.text
    if f.name == "visit_type":  # "3" is the 4210 form of "03"
        one = pc.match_substring_regex(text, "^([0-9])$")
        text = pc.if_else(
            one,
            pc.binary_join_element_wise(pa.scalar("0", _TEXT), text, pa.scalar("", _TEXT)),
            text,
        )
    bad = np.zeros(col.n, dtype=bool)
    limit = f.max_len if f.max_len is not None else (max_chars if f.kind != "birth" else None)
    if limit is not None:
        # Characters <= bytes: only values longer in bytes than the limit are counted.
        long = _np_bool(pc.greater(pc.binary_length(text), limit))
        if long.any():
            bad |= _np_bool(pc.greater(pc.utf8_length(text), limit))
    if f.pattern is not None:
        pattern = re2(f.pattern)
        if pattern is None:
            return pd.Series([], dtype="str"), None
        bad |= col.present & ~_np_bool(pc.match_substring_regex(text, pattern))
    if not from_xml:
        data = text.buffers()[2]
        if data is not None and _has_control(np.frombuffer(data, dtype=np.uint8)):
            bad |= _np_bool(pc.match_substring_regex(text, CONTROL))
    return text.to_pandas(), bad


def _has_control(data: np.ndarray) -> bool:
    low = data[data < 0x20]
    return bool(len(low) and np.isin(low, [9, 10, 13], invert=True).any())


def _number(col: _Column, f: Field) -> tuple[pd.Series, np.ndarray]:
    if col.ints is not None:
        x = col.ints.astype(np.float64)
        bad = np.abs(col.ints) >= 2**53
    elif col.floats is not None:
        x = np.where(col.floats == 0, 0.0, col.floats)  # "-0.0" is written "0" by the rules
        bad = np.isinf(x)
    else:
        s = pc.replace_substring(col.text, ",", ".")
        plain = _np_bool(pc.match_substring_regex(s, _PLAIN_NUMBER))
        size = pc.binary_length(s).to_numpy(zero_copy_only=False)
        signs = _np_bool(pc.starts_with(s, "-")) + _np_bool(pc.match_substring(s, "."))
        plain &= (np.nan_to_num(size, nan=0) - signs) <= _MAX_DIGITS
        x = pc.cast(pc.if_else(pa.array(plain), s, _NULL), pa.float64())
        x = x.to_numpy(zero_copy_only=False)
        bad = col.present & ~plain
        bad |= plain & (x == 0) & _np_bool(pc.starts_with(s, "-"))  # a negative zero
    with np.errstate(invalid="ignore"):
        return _typed(x, col, f, bad)


def _typed(x: np.ndarray, col: _Column, f: Field, bad: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    known = ~np.isnan(x)
    if f.kind == "int":
        whole = np.isfinite(x) & (x == np.floor(x))  # x % 1 == 0, without fmod
        bad |= known & ~whole
        if col.floats is not None:
            bad |= known & (np.abs(x) >= 2**53)
        value = np.where(whole, x, 0).astype(np.int64)
        if f.allowed is not None:
            bad |= whole & ~np.isin(value, f.allowed)
        return pd.Series(pd.arrays.IntegerArray(value, ~whole)), bad
    d = DECIMALS[f.kind]
    if col.floats is not None:
        # The pandas rules round Python's repr of the float: the same result unless the value
        # sits next to a rounding tie, or is too large for the check to see one.
        y = np.abs(x) * 10**d
        tie = np.abs(y - np.floor(y) - 0.5) < _ROUND_MARGIN
        bad |= known & ((y >= _ROUND_SPAN) | (tie & (x != np.floor(x))))  # tie: x finite
    value = np.round(x, d)
    if f.kind == "quantity" and f.xml == "SO_LUONG":
        bad |= value < 0
    return pd.Series(value), bad


def _stamp(col: _Column, f: Field) -> tuple[pd.Series, np.ndarray]:
    allow8 = f.kind == "date" or f.name == "decided_at"
    text = col.text
    # "^[0-9]{12}$" and "^[0-9]{8}$": ASCII digits only (any other byte is not one), so the byte
    # length is the character count
    digits = _np_bool(pc.ascii_is_decimal(text))
    size = pc.fill_null(pc.binary_length(text), 0).to_numpy(zero_copy_only=False)
    ok12, ok8 = digits & (size == 12), digits & (size == 8)
    shape = ok8 if f.kind == "date" else ok12 | (ok8 & allow8)
    digits = pc.cast(pc.if_else(pa.array(shape), text, _NULL), pa.int64())
    v = pc.fill_null(digits, 0).to_numpy(zero_copy_only=False)
    v = np.where(ok8, v * 10_000, v)
    year, rest = np.divmod(v, 10**8)
    month, rest = np.divmod(rest, 10**6)
    day, rest = np.divmod(rest, 10**4)
    hour, minute = np.divmod(rest, 100)
    ok = shape & (year >= _YEARS[0]) & (year <= _YEARS[1]) & (month >= 1) & (month <= 12)
    m = np.where(ok, (year - _YEARS[0]) * 12 + month - 1, 0)  # months since January 1900
    ok &= (day >= 1) & (day <= _MONTH_DAYS[m]) & (hour <= 23) & (minute <= 59)
    seconds = (_MONTH_START[m] + day - 1) * 86_400 + hour * 3_600 + minute * 60
    micros = np.where(ok, seconds * 1_000_000, np.iinfo(np.int64).min)  # int64 min is NaT
    return pd.Series(micros.view("datetime64[us]")), col.present & ~ok


def _month_table() -> tuple[np.ndarray, np.ndarray]:
    """Per month of _YEARS (January 1900 first): its first day (days since 1970-01-01) and its
    length in days, numpy's calendar looked up instead of computed row by row."""
    months = np.arange((_YEARS[0] - 1970) * 12, (_YEARS[1] + 1 - 1970) * 12 + 1)
    days = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return days[:-1], np.diff(days)


_MONTH_START, _MONTH_DAYS = _month_table()
