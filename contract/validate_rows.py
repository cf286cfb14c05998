"""Row-wise validation of small batches: `validate_rows` gives exactly what
`contract.batch.validate_batch` gives (the same good rows, typed the same way, and the same
rejection rows with the same field errors in the same order) from records instead of frames.

The column-wise validator pays a fixed cost per column (a few hundred pandas operations per
table), which is most of its time for the one to few dozen claims of an API request; this one
loops over the values in plain Python and builds the output frames once. Numbers are parsed as
pandas parses them (`pd.to_numeric`): the usual decimal forms here, anything else by pandas
itself, so odd values never diverge. The parity test (tests/contract/test_validate_rows.py) holds
the two to the same answers over the ingest corpus and fuzzed records; serving.online picks this
one for requests of at most ROW_WISE_MAX claims.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from contract.batch import DUPLICATE, LINE_TABLES, WITH_CLAIM, BatchResult, EnvelopeBatch
from contract.limits import Limits
from contract.schema import CLAIMS, DECIMALS, REJECTIONS_COLUMNS, Field, Table
from contract.validate import (
    _CONTROL,
    GROUP,
    INTERNAL,
    NOT_IN_FUTURE,
    RECORD,
    SOURCE,
    _describe,
    _record_json,
)

ROW_WISE_MAX = 64  # claims per batch up to which the row-wise validator is the faster one

_control = re.compile(_CONTROL)
_one_digit = re.compile(r"[0-9]")
_int_literal = re.compile(r"[+-]?[0-9]{1,18}")
_decimal = re.compile(r"[+-]?(?:[0-9]{1,18}\.?[0-9]{0,18}|\.[0-9]{1,18})(?:[eE][+-]?[0-9]{1,3})?")
_date12 = re.compile(r"[0-9]{12}")
_date8 = re.compile(r"[0-9]{8}")
_first_card_si = re.compile(r"^[A-Z]{2}[0-9]{3}([0-9]{10})")
_INT64_MAX = 2**63 - 1

Row = dict  # one raw record: XML 130 names (or 4210 aliases) -> text or None, plus INTERNAL keys
Error = tuple[int, str, object, str]  # (row, XML field, value shown, message)


@dataclass
class RowsResult(BatchResult):
    """validate_rows' answer; `records`: the good rows as dicts too (the canonical values the
    frames hold, as Python values: None for missing, datetime, int, float, str; the INTERNAL
    keys; the claims' linkage keys), for consumers that take records (serving.caserows)."""

    records: dict[str, list[dict]] = field(default_factory=dict)


def validate_rows(
    raw: dict[str, list[Row]],
    limits: Limits,
    linkage_key: str,
    prior_errors: pd.DataFrame | None = None,
    from_xml: bool = False,
    max_time: pd.Timestamp | None = None,
    *,
    internal: bool = True,
    frames: bool = True,
) -> RowsResult:
    """`validate_batch` for records: ``raw`` maps table name (claims, drug_lines, service_lines)
    -> records whose values are text (or None), as the XML reader and the API give them, with the
    INTERNAL keys (GROUP, SOURCE, RECORD). The result's `checked` is empty (no Checked frames are
    built); everything else is as validate_batch returns it, and the good rows are also given as
    records (RowsResult.records). internal=False: the good frames without the INTERNAL columns
    (what a scorer reads; the records keep them). frames=False: no good frames at all (`good`
    is empty; a consumer of records skips their cost, most of this function's time for a
    request's claim; canonical_frames makes them from the records when one is needed)."""
    tables = {
        t.name: _Rows.check(raw.get(t.name), t, limits.max_field_chars, from_xml, max_time)
        for t in (CLAIMS, *LINE_TABLES)
    }
    claims = tables["claims"]
    ids = claims.values["claim_id"]
    seen: set = set()
    for i, cid in enumerate(ids):  # a claim key must be unique: the first one stands
        if cid is None:
            continue
        if cid in seen:
            claims.add_error(i, "MA_LK", cid, DUPLICATE)
        seen.add(cid)
    dup = claims.bad_rows_of(DUPLICATE)
    owner: dict = {}
    for i, g in enumerate(claims.internal[GROUP]):
        if i not in dup and g not in owner:
            owner[g] = ids[i]
    for t in LINE_TABLES:
        lines = tables[t.name]
        cids = lines.values["claim_id"]
        groups = lines.internal[GROUP]
        missing, other = [], []
        for i, (g, cid) in enumerate(zip(groups, cids, strict=True)):
            own = owner.get(g)
            if own is None:
                missing.append(i)
            elif cid is not None and cid != own:
                other.append(i)
        for i in missing:
            lines.add_error(i, "MA_LK", cids[i], "no claim summary (XML1) with this MA_LK")
        for i in other:
            lines.add_error(
                i, "MA_LK", cids[i], "MA_LK differs from the claim summary of the same dossier"
            )
    bad_groups: set = set()
    for rows in tables.values():
        bad_groups.update(rows.internal[GROUP][i] for i in rows.bad)
    result = RowsResult({}, {}, [])
    if prior_errors is not None and len(prior_errors):
        bad_groups.update(prior_errors[GROUP].tolist())
        result.rejections.append(prior_errors[list(REJECTIONS_COLUMNS)])
    for name, rows in tables.items():
        reject = [i for i, g in enumerate(rows.internal[GROUP]) if g in bad_groups]
        result.read[name] += rows.n
        result.rejected[name] += len(reject)
        result.rejections.append(rows.rejection_rows(reject))
        keep = set(reject)
        good = [i for i in range(rows.n) if i not in keep]
        extra = _linkage_keys(rows, good, linkage_key) if name == "claims" else {}
        if frames:
            result.good[name] = rows.frame(good, extra, internal=internal)
        result.records[name] = rows.records(good, extra)
    return result


def canonical_frames(records: dict[str, list[dict]]) -> dict[str, pd.DataFrame]:
    """RowsResult.records as the good frames of validate_rows(..., internal=False), indexed
    0..n-1: for a consumer of the records that needs frames after all."""
    out = {}
    for t in (CLAIMS, *LINE_TABLES):
        recs = records.get(t.name) or []
        names = [f.name for f in t.fields]
        arrays = [pa.array([r.get(f.name) for r in recs], type=_ARROW[f.dtype]) for f in t.fields]
        for col in _LINKAGE if t is CLAIMS else ():
            arrays.append(pa.array([r.get(col) for r in recs], type=pa.string()))
            names.append(col)
        out[t.name] = pa.Table.from_arrays(arrays, names=names).to_pandas(types_mapper=_INT64.get)
    return out


_LINKAGE = ("person_key", "card_key")  # the claims' extra columns (_linkage_keys)


class _Rows:
    """One table's records, checked: canonical values per column, field errors, bad rows."""

    def __init__(self, table: Table, n: int) -> None:
        self.table, self.n = table, n
        self.values: dict[str, list] = {}
        self.internal: dict[str, list] = {}
        self.errors: list[Error] = []
        self.bad: set[int] = set()
        self._internal_kind: dict[str, str] = {}

    @classmethod
    def check(
        cls,
        records: list[Row] | None,
        table: Table,
        max_chars: int,
        from_xml: bool,
        max_time: pd.Timestamp | None,
    ) -> _Rows:
        given = records is not None  # a table given empty has its INTERNAL columns, empty
        records = records or []
        self = cls(table, len(records))
        source = _standard_names(records, table)
        for col in INTERNAL:
            if (given and not records) or any(col in r for r in records):
                self.internal[col] = [r.get(col) for r in records]
                self._internal_kind[col] = "raw"
            else:
                self.internal[col] = list(range(self.n))
                self._internal_kind[col] = "position"
        for f in table.fields:
            key = source.get(f.xml)
            texts = [_text(r.get(key)) for r in records] if key is not None else [None] * self.n
            values, problems = _checker(f, from_xml, max_chars)(texts, max_time)
            self.values[f.name] = values
            for rows, message in problems:
                for i in rows:
                    t = texts[i]
                    self.errors.append((i, f.xml, "" if t is None else t[:200], message))
                    self.bad.add(i)
        return self

    def add_error(self, i: int, xml_field: str, value, message: str) -> None:
        self.errors.append((i, xml_field, value, message))
        self.bad.add(i)

    def bad_rows_of(self, message: str) -> set[int]:
        return {e[0] for e in self.errors if e[3] == message}

    def records(self, rows: list[int], extra: dict[str, list]) -> list[dict]:
        """The given rows as dicts: the canonical values, the INTERNAL keys, the `extra`
        columns (the values `frame` holds, as Python values)."""
        names = [f.name for f in self.table.fields]
        cols = [self.values[n] for n in names] + [self.internal[c] for c in INTERNAL]
        keys = names + list(INTERNAL)
        out = [dict(zip(keys, [c[i] for c in cols], strict=True)) for i in rows]
        for col, v in extra.items():
            for rec, x in zip(out, v, strict=True):
                rec[col] = x
        return out

    def frame(
        self, rows: list[int], extra: dict[str, list] | None = None, internal: bool = True
    ) -> pd.DataFrame:
        """The canonical frame of the given rows (and the INTERNAL columns, then the `extra`
        text columns), typed as check_table types it, indexed by row position as validate_batch
        leaves it. Built as one Arrow table (a pandas array per column costs more than the
        validation)."""
        arrays, names = [], []
        for f in self.table.fields:
            v = self.values[f.name]
            arrays.append(pa.array([v[i] for i in rows], type=_ARROW[f.dtype]))
            names.append(f.name)
        later: dict[str, object] = {}
        for col in INTERNAL if internal else ():
            picked = [self.internal[col][i] for i in rows]
            if self._internal_kind[col] == "position":
                later[col] = np.asarray(picked, dtype="int64")
            elif self.n == 0:  # as check_table types the column of an empty table
                later[col] = np.array([], dtype=object)
            else:
                arrays.append(pa.array(picked, type=pa.string()))
                names.append(col)
        for col, v in (extra or {}).items():
            arrays.append(pa.array(v, type=pa.string()))
            names.append(col)
        df = pa.Table.from_arrays(arrays, names=names).to_pandas(types_mapper=_INT64.get)
        for col, v in later.items():
            df.insert(len(self.table.fields) + INTERNAL.index(col), col, v)
        df.index = pd.Index(rows, dtype="int64")
        return df

    def rejection_rows(self, reject: list[int]) -> pd.DataFrame:
        """contract.validate.rejection_rows for these records."""
        if not reject:  # the one empty frame, shared (a copy per table cost ~0.1 ms a request)
            return _NO_REJECTIONS
        wanted = set(reject)
        errs = [e for e in self.errors if e[0] in wanted]
        own = {e[0] for e in errs}
        errs += [(i, "", "", WITH_CLAIM) for i in reject if i not in own]
        errs.sort(key=lambda e: (e[0], e[1]))  # stable, as sort_values(["row", "field"])
        key = "claim_id" if "claim_id" in self.values else "facility_id"
        records = {i: self._record(i) for i in {e[0] for e in errs}}
        source, record = self.internal[SOURCE], self.internal[RECORD]
        return pd.DataFrame(
            {
                "source_file": np.array([_as_text(source[e[0]]) for e in errs], dtype=object),
                "claim_id": np.array([_as_text(self.values[key][e[0]]) for e in errs], object),
                "table": self.table.name,
                "record": [f"{record[e[0]]}" for e in errs],
                "field": np.array([e[1] for e in errs], dtype=object),
                "value": np.array([_as_text(e[2]) for e in errs], dtype=object),
                "error": np.array([e[3] for e in errs], dtype=object),
                "record_json": [records[e[0]] for e in errs],
            }
        )

    def _record(self, i: int) -> str:
        rec = {}
        for f in self.table.fields:
            v = self.values[f.name][i]
            rec[f.name] = pd.Timestamp(v) if isinstance(v, datetime) else v
        return _record_json(rec, self.table)


def _as_text(v) -> object:
    """A value as `.astype("str")` leaves it: text, or NaN when missing."""
    if v is None:
        return np.nan
    return v if isinstance(v, str) else str(v)


def _standard_names(records: list[Row], table: Table) -> dict[str, str]:
    """XML name -> the record key holding it, as rename_to_standard decides for a frame of these
    records (columns in order of first appearance; the first column naming a field wins)."""
    by_xml = table.by_xml()
    out: dict[str, str] = {}
    seen: set = set()
    for r in records:
        for col in r:
            if col in seen or col in INTERNAL:
                continue
            seen.add(col)
            f = by_xml.get(str(col).strip().upper())
            if f is not None and f.xml not in out:
                out[f.xml] = col
    return out


def _text(v) -> str | None:
    """as_text for one value: stripped text, empty -> None."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    s = (v if isinstance(v, str) else str(v)).strip()
    return s or None


_ARROW = {
    "str": pa.string(),
    "Int64": pa.int64(),
    "float64": pa.float64(),
    "datetime64[us]": pa.timestamp("us"),
}
_INT64 = {pa.int64(): pd.Int64Dtype()}
_NO_REJECTIONS = pd.DataFrame({c: pd.Series([], dtype="str") for c in REJECTIONS_COLUMNS})


# -- one field ----------------------------------------------------------------------------------

Checker = Callable[[list, pd.Timestamp | None], tuple[list, list[tuple[list[int], str]]]]
_CHECKERS: dict[tuple, Checker] = {}


def _checker(f: Field, from_xml: bool, max_chars: int) -> Checker:
    """A function (texts, max_time) -> (canonical values, [(rows, message)] in check_table's
    order), made once per field and settings."""
    key = (id(f), f.xml, from_xml, max_chars)
    if key not in _CHECKERS:
        if f.kind in ("text", "code", "birth"):
            fn = _text_checker(f, from_xml, max_chars)
        elif f.kind in ("int", "quantity", "money"):
            fn = _number_checker(f)
        else:
            fn = _time_checker(f)
        _CHECKERS[key] = fn
    return _CHECKERS[key]


def _text_checker(f: Field, from_xml: bool, max_chars: int) -> Checker:
    pattern = re.compile(f.pattern) if f.pattern is not None else None
    bad_format = f"bad format, expected {_describe(f)}"
    too_long = f"longer than {f.max_len}"
    control = not from_xml
    chars = f.max_len is None and f.kind in ("text", "code")
    too_many = f"longer than {max_chars:,} characters"

    def check(texts: list, _max_time=None) -> tuple[list, list]:
        missing, longer, badf, ctl, over = [], [], [], [], []
        values = []
        for i, t in enumerate(texts):
            if t is None:
                missing.append(i)
                values.append(None)
                continue
            v = "0" + t if f.name == "visit_type" and _one_digit.fullmatch(t) else t
            values.append(v)
            if f.max_len is not None and len(v) > f.max_len:
                longer.append(i)
            if pattern is not None and not pattern.fullmatch(v):
                badf.append(i)
            if control and _control.search(t):
                ctl.append(i)
            if chars and len(t) > max_chars:
                over.append(i)
        problems = []
        if f.required:
            problems.append((missing, "missing required field"))
        problems += [(longer, too_long), (badf, bad_format)]
        problems += [(ctl, "contains control characters"), (over, too_many)]
        return values, problems

    return check


def _numbers(texts: list) -> list:
    """pd.to_numeric(texts, errors="coerce") as Python numbers (None where it gives NaN): an int
    column when every value is an integer literal, else floats, as pandas types the column."""
    present = [t for t in texts if t is not None]
    if not present:
        return [None] * len(texts)
    if len(present) == len(texts) and all(_int_literal.fullmatch(t) for t in texts):
        return [int(t) for t in texts]  # an int64 column ("-0" is 0)
    if all(_decimal.fullmatch(t) for t in present):
        return [None if t is None else float(t) for t in texts]
    parsed = pd.to_numeric(pd.Series(texts, dtype="str"), errors="coerce")
    if parsed.dtype.kind in "iu":
        return [int(v) for v in parsed.tolist()]
    return [None if v != v else float(v) for v in parsed.tolist()]


def round_as_numpy(x: float, decimals: int) -> float:
    """float(np.round(np.float64(x), decimals)) for 0 <= decimals <= 22 without numpy's cost
    per scalar (~9 µs, 80 calls a claim): numpy multiplies by 10**decimals, rounds half to even
    (rint) and divides; Python's round() of a float is that rint, exactly, and a zero keeps the
    sign rint gives it (-0.4 -> -0.0)."""
    f = _POW10[decimals]
    y = float(x) * f
    if y - y != 0.0:  # x * 10**decimals overflowed: numpy's rint and division keep the infinity
        return y / f
    r = round(y)
    return r / f if r else math.copysign(0.0, y)


_POW10 = [10.0**k for k in range(23)]  # exact: numpy's power_of_ten for these


def _number_checker(f: Field) -> Checker:
    whole = f.kind == "int"
    allowed = set(f.allowed) if f.allowed is not None else None
    allowed_text = ", ".join(map(str, f.allowed)) if f.allowed is not None else ""
    decimals = DECIMALS.get(f.kind, 0)
    negative = f.kind == "quantity" and f.xml == "SO_LUONG"

    def check(texts: list, _max_time=None) -> tuple[list, list]:
        nums = _numbers([None if t is None else t.replace(",", ".") for t in texts])
        missing, nan, infinite, fraction, unknown, neg = [], [], [], [], [], []
        values = []
        for i, (t, x) in enumerate(zip(texts, nums, strict=True)):
            if t is None:
                missing.append(i)
            elif x is None:
                nan.append(i)
            if x is not None and isinstance(x, float) and not np.isfinite(x):
                infinite.append(i)
                x = None
            if whole:
                if x is not None and x % 1 != 0:
                    fraction.append(i)
                    x = None
                elif x is not None and not abs(x) < 2**53:
                    x = None
                value = None if x is None else round(x)
                if value is not None and allowed is not None and value not in allowed:
                    unknown.append(i)
            else:
                value = None if x is None else round_as_numpy(x, decimals)
                if negative and value is not None and value < 0:
                    neg.append(i)
            values.append(value)
        problems = [(missing, "missing required field")] if f.required else []
        problems += [(nan, "not a number"), (infinite, "not a finite number")]
        if whole:
            problems += [(fraction, "not a whole number")]
            if allowed is not None:
                problems.append((unknown, f"unknown code, expected one of {allowed_text}"))
        elif negative:
            problems.append((neg, "negative quantity"))
        return values, problems

    return check


def _time_checker(f: Field) -> Checker:
    allow8 = f.kind == "date" or f.name == "decided_at"
    expected = "yyyyMMdd" if f.kind == "date" else "yyyyMMddHHmm"

    def check(texts: list, max_time=None) -> tuple[list, list]:
        future = max_time is not None and f.name in NOT_IN_FUTURE
        missing, bad, ahead = [], [], []
        values = []
        for i, t in enumerate(texts):
            if t is None:
                missing.append(i)
                values.append(None)
                continue
            if f.kind == "timestamp":
                ok = _date12.fullmatch(t) or (allow8 and _date8.fullmatch(t))
            else:
                ok = _date8.fullmatch(t)
            stamp = _stamp(t if len(t) == 12 else t + "0000") if ok else None
            if stamp is None:
                bad.append(i)
            elif future and stamp > max_time:
                ahead.append(i)
            values.append(stamp)
        problems = [(missing, "missing required field")] if f.required else []
        problems.append((bad, f"unparseable date, expected {expected}"))
        if future:
            problems.append((ahead, f"in the future (later than {max_time:%Y%m%d%H%M})"))
        return values, problems

    return check


def _stamp(t: str) -> datetime | None:
    """yyyyMMddHHmm (ASCII digits) -> datetime, None when it is not a date (pandas: NaT)."""
    try:
        return datetime(int(t[:4]), int(t[4:6]), int(t[6:8]), int(t[8:10]), int(t[10:12]))
    except ValueError:
        return None


# -- linkage keys -------------------------------------------------------------------------------


def _linkage_keys(rows: _Rows, good: list[int], key: str) -> dict[str, list]:
    """contract.validate.linkage_keys for the good claims, one row at a time."""
    k = key.encode()
    person, card = [], []
    v = rows.values
    for i in good:
        cards = v["card_number"][i]
        first = cards.split(";", 1)[0] if cards is not None else None
        first = first or None
        m = _first_card_si.match(first) if first is not None else None
        if m is not None:
            basis = "SI:" + m.group(1)
        elif v["national_id"][i] is not None:
            basis = "ID:" + v["national_id"][i]
        elif v["facility_id"][i] is not None and v["patient_id"][i] is not None:
            basis = "BN:" + v["facility_id"][i] + ":" + v["patient_id"][i]
        else:
            basis = None
        person.append(_hash(k, "person", basis))
        card.append(_hash(k, "card", first))
    return {"person_key": person, "card_key": card}


def _hash(key: bytes, prefix: str, value: str | None) -> str | None:
    if value is None:
        return None
    return hmac.new(key, f"{prefix}:{value}".encode(), hashlib.sha256).hexdigest()[:16]


def envelope_records(batch: EnvelopeBatch) -> tuple[dict[str, list[Row]], pd.DataFrame | None]:
    """`EnvelopeBatch.take()` as records for validate_rows: the raw records gathered so far and
    the dossier-level errors; the batch starts anew."""
    raw = {
        name: [
            {**dict(zip(tags, texts, strict=True)), GROUP: group, SOURCE: source, RECORD: record}
            for tags, texts, group, source, record in rows
        ]
        for name, rows in batch.rows.items()
    }
    prior = pd.DataFrame(batch.errors) if batch.errors else None
    batch.reset()
    return raw, prior
