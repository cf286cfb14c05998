"""Field-level validation and typing: raw XML 130 values (strings as in XML) -> canonical columns.

Shared by every way in (envelopes, tabular folders, the scoring API). Structural problems become
rejection rows naming the field; semantic inconsistencies (totals vs lines, expired cards) are kept.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from contract.fast_check import CONTROL as _CONTROL
from contract.fast_check import NOT_IN_FUTURE, arrow_text, screen_fields
from contract.schema import DECIMALS, REJECTIONS_COLUMNS, Field, Table

# Internal columns carried beside the data while a batch is validated.
GROUP = "_group"  # the unit that is accepted or rejected together (one dossier / one MA_LK)
SOURCE = "_source"  # the file a record came from
RECORD = "_record"  # the record's position in its file (row number or dossier number)
INTERNAL = (GROUP, SOURCE, RECORD)
# Where batches of several files are decided together (contract.batch): the batch (a "unit")
# each rejection row and good row comes from, so that the report keeps their order.
UNIT = "_unit"


class ContractError(ValueError):
    """The input breaks the data contract as a whole (e.g. a required column is missing)."""


@dataclass
class Checked:
    """A validated table: canonical good rows and the rejection rows of its bad ones."""

    table: Table
    frame: pd.DataFrame  # canonical columns plus INTERNAL columns, every row (good and bad)
    bad: pd.Series  # bool per row: the row itself has a structural error
    errors: pd.DataFrame  # one row per field error: index into frame, field, value, error


def as_text(s: pd.Series) -> pd.Series:
    """Any column -> stripped strings, empty -> NA. Integral floats lose their '.0'."""
    if s.dtype.kind in "iu":
        out = s.astype("Int64").astype("str")
    elif s.dtype.kind == "f":
        integral = s.notna() & (s % 1 == 0)
        out = s.astype("str").where(~integral, s[integral].astype("int64").astype("str"))
        out = out.where(s.notna())
    elif s.dtype.kind == "b":
        out = s.astype("Int64").astype("str")
    elif s.dtype == "str":
        out = s
    else:
        out = s.astype("str").where(s.notna())
    out = out.str.strip()
    return out.where(out != "")


def standard_names(columns: Iterable, table: Table) -> dict:
    """rename_to_standard's mapping: column -> its 4750 name, for the columns kept (the first of
    a field's names in column order; unknown columns and later names of a field are left out)."""
    by_xml = table.by_xml()
    mapping: dict = {}
    taken: set[str] = set()
    for col in columns:
        f = by_xml.get(str(col).strip().upper())
        if f is not None and f.xml not in taken:
            mapping[col] = f.xml
            taken.add(f.xml)
    return mapping


def rename_to_standard(df: pd.DataFrame, table: Table) -> pd.DataFrame:
    """4210 names -> 4750 names; unknown columns are dropped (extra columns are ignored)."""
    mapping = standard_names(df.columns, table)
    keep = [c for c in df.columns if c in mapping or c in INTERNAL]
    return df[keep].rename(columns=mapping)


def check_table(
    raw: pd.DataFrame,
    table: Table,
    max_chars: int = 65_536,
    from_xml: bool = False,
    max_time: pd.Timestamp | None = None,
) -> Checked:
    """Validate and type one table whose columns are XML 130 names (plus INTERNAL columns).

    ``from_xml``: the values came out of an XML parser, which already refused control characters.
    ``max_time``: admission and discharge times later than this (local time; the caller's "now"
    plus its clock skew) are field errors. None: no bound (e.g. ingest of past months).
    """
    raw = rename_to_standard(raw, table).reset_index(drop=True)
    fast = screen_fields(raw, table, max_chars, from_xml, max_time) if len(raw) else None
    if fast is None:
        return _check_rows(raw, table, max_chars, from_xml, max_time)
    out, suspects = fast
    n = len(raw)
    errs: list[pd.DataFrame] = []
    for f in table.fields:
        # The rows of a field the vectorised path cannot vouch for: the pandas rules of that
        # field type them and name their errors (a rule looks at its own field only).
        if f.name not in suspects:
            continue
        idx = np.flatnonzero(suspects[f.name])
        column = raw[f.xml].iloc[idx].reset_index(drop=True) if f.xml in raw.columns else None
        value, found = _check_field(column, f, len(idx), max_chars, from_xml, max_time)
        out[f.name] = _overlay(out[f.name], idx, value)
        errs += [e.assign(row=idx[e["row"].to_numpy(dtype=int)]) for e in found]
    errors = pd.concat(errs, ignore_index=True) if errs else NO_ERRORS
    # the columns' arrays, not Series: no index alignment (a reindex per column) to pay
    frame = pd.DataFrame({k: v.array for k, v in out.items()}, index=pd.RangeIndex(n), copy=False)
    for col in INTERNAL:
        frame[col] = raw[col].to_numpy() if col in raw.columns else np.arange(n)
    bad = np.zeros(n, dtype=bool)
    bad[errors["row"].astype(int).unique()] = True
    return Checked(table, frame, pd.Series(bad), errors.reset_index(drop=True))


NO_ERRORS = pd.DataFrame({"row": [], "field": [], "value": [], "error": []})


def _overlay(col: pd.Series, idx: np.ndarray, values: pd.Series) -> pd.Series:
    """col with the rows idx replaced by values (same dtype)."""
    if col.dtype == "str":
        mask = np.zeros(len(col), dtype=bool)
        mask[idx] = True
        arr, new = arrow_text(col), arrow_text(values)
        return pc.replace_with_mask(arr, pa.array(mask), new).to_pandas()
    out = col.copy()
    out.iloc[idx] = values.to_numpy() if col.dtype != "Int64" else values.array
    return out


def _check_rows(
    raw: pd.DataFrame,
    table: Table,
    max_chars: int,
    from_xml: bool,
    max_time: pd.Timestamp | None,
) -> Checked:
    """check_table's rules in pandas, on every row given (raw already renamed)."""
    raw = raw.reset_index(drop=True)
    n = len(raw)
    out: dict[str, pd.Series] = {}
    errs: list[pd.DataFrame] = []
    for f in table.fields:
        column = raw[f.xml] if f.xml in raw.columns else None
        out[f.name], found = _check_field(column, f, n, max_chars, from_xml, max_time)
        errs += found
    frame = pd.DataFrame(out)
    for col in INTERNAL:
        frame[col] = raw[col].to_numpy() if col in raw.columns else np.arange(n)
    errors = (
        pd.concat(errs, ignore_index=True)
        if errs
        else pd.DataFrame({"row": [], "field": [], "value": [], "error": []})
    )
    bad = np.zeros(n, dtype=bool)
    bad[errors["row"].astype(int).unique()] = True
    return Checked(table, frame, pd.Series(bad), errors)


def _check_field(
    column: pd.Series | None,
    f: Field,
    n: int,
    max_chars: int,
    from_xml: bool,
    max_time: pd.Timestamp | None,
) -> tuple[pd.Series, list[pd.DataFrame]]:
    """One field's pandas rules over a raw column (None: absent): its typed values and errors."""
    text = as_text(column) if column is not None else None
    if text is None or not text.notna().any():
        # Absent or empty everywhere (common for optional fields): only "required" can fail.
        value = pd.Series(pd.array([None] * n, dtype=f.dtype))
        if f.required and n:
            return value, [_errors(np.arange(n), f, pd.Series([""] * n), "missing required field")]
        return value, []
    value, problems = _convert(text, f)
    if not from_xml and f.kind in ("text", "code", "birth"):
        ctl = text.str.contains(_CONTROL, regex=True, na=False)
        problems.append((ctl, "contains control characters"))
    if f.max_len is None and f.kind in ("text", "code"):
        problems.append((text.str.len() > max_chars, f"longer than {max_chars:,} characters"))
    if max_time is not None and f.name in NOT_IN_FUTURE:
        later = f"{max_time:%Y%m%d%H%M}"
        problems.append((value > max_time, f"in the future (later than {later})"))
    errs = []
    for mask, message in problems:
        m = mask.fillna(False).to_numpy(dtype=bool)
        if m.any():
            errs.append(_errors(np.flatnonzero(m), f, text, message))
    return value, errs


def _errors(idx: np.ndarray, f: Field, text: pd.Series, message: str) -> pd.DataFrame:
    values = text.iloc[idx].fillna("").str.slice(0, 200).to_numpy()
    return pd.DataFrame({"row": idx, "field": f.xml, "value": values, "error": message})


def _convert(text: pd.Series, f: Field) -> tuple[pd.Series, list[tuple[pd.Series, str]]]:
    present = text.notna()
    problems: list[tuple[pd.Series, str]] = []
    if f.required:
        problems.append((~present, "missing required field"))
    if f.kind in ("text", "code", "birth"):
        value = text
        if f.name == "visit_type":
            # Older spreadsheets typed visit types as numbers: "3" is the 4210 form of "03".
            value = value.where(~value.str.fullmatch(r"[0-9]", na=False), "0" + value)
        if f.max_len is not None:
            problems.append((present & (value.str.len() > f.max_len), f"longer than {f.max_len}"))
        if f.pattern is not None:
            ok = value.str.fullmatch(f.pattern, na=True).astype(bool)
            problems.append((present & ~ok, f"bad format, expected {_describe(f)}"))
        return value, problems
    if f.kind in ("int", "quantity", "money"):
        num = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
        problems.append((present & num.isna(), "not a number"))
        finite = num.notna() & np.isfinite(num.fillna(0))
        problems.append((num.notna() & ~finite, "not a finite number"))
        num = num.where(finite)
        if f.kind == "int":
            integral = num.isna() | (num % 1 == 0)
            problems.append((~integral, "not a whole number"))
            num = num.where(integral & (num.abs() < 2**53))
            value = num.round().astype("Int64")
            if f.allowed is not None:
                ok = value.isin(f.allowed).fillna(True).astype(bool)
                allowed = ", ".join(map(str, f.allowed))
                problems.append((value.notna() & ~ok, f"unknown code, expected one of {allowed}"))
            return value, problems
        value = num.astype("float64").round(DECIMALS[f.kind])
        if f.kind == "quantity" and f.xml == "SO_LUONG":
            problems.append((value < 0, "negative quantity"))
        return value, problems
    if f.kind in ("timestamp", "date"):
        ok12 = text.str.fullmatch(r"[0-9]{12}", na=False)
        ok8 = text.str.fullmatch(r"[0-9]{8}", na=False)
        allow8 = f.kind == "date" or f.name == "decided_at"
        shape_ok = ok12 | (ok8 & allow8) if f.kind == "timestamp" else ok8
        padded = text.where(~ok8, text + "0000")
        stamp = pd.to_datetime(padded.where(shape_ok), format="%Y%m%d%H%M", errors="coerce")
        expected = "yyyyMMdd" if f.kind == "date" else "yyyyMMddHHmm"
        problems.append((present & stamp.isna(), f"unparseable date, expected {expected}"))
        return stamp.astype("datetime64[us]"), problems
    raise AssertionError(f.kind)


def _describe(f: Field) -> str:
    examples = {
        "claim_id": "a key without spaces",
        "card_number": "2 letters + 13 digits per card, ';' between cards",
        "primary_icd": "an ICD-10 code such as J18.9",
        "secondary_icd": "up to 12 ICD-10 codes separated by ';'",
        "facility_id": "5 letters or digits",
        "registered_facility": "5-character facility codes separated by ';'",
        "visit_type": "2 digits such as 03",
        "route_code": "a code such as 1.1, 2 or 3.1",
        "bed_code": "H/T/C/K + 3 digits, ';' between beds",
        "birth_date": "yyyyMMdd or yyyyMMddHHmm",
        "card_valid_from": "yyyyMMdd, ';' between cards",
        "card_valid_to": "yyyyMMdd, ';' between cards",
    }
    return examples.get(f.name, f.pattern or "")


def rejection_rows(
    checked: Checked,
    reject: pd.Series,
    reason_for_others: str,
    units: np.ndarray | None = None,
) -> pd.DataFrame:
    """Rows of the rejection report for the rejected records of one table.

    Every rejected record appears: with each of its field errors, or (when it was sound but its
    claim was rejected) once with `reason_for_others`. The whole original record is kept as JSON.
    ``units``: the unit (a batch of one file, contract.batch) of each row of the table; given,
    the rows get a UNIT column with the unit of the record each one reports.
    """
    frame, t = checked.frame, checked.table
    rows = np.flatnonzero(reject.to_numpy())
    if len(rows) == 0:
        empty = {c: pd.Series([], dtype="str") for c in REJECTIONS_COLUMNS}
        if units is not None:
            empty[UNIT] = pd.Series([], dtype="int64")
        return pd.DataFrame(empty)
    errs = checked.errors[checked.errors["row"].isin(rows)]
    own = set(errs["row"].astype(int))
    others = [r for r in rows if r not in own]
    parts = [errs]
    if others:
        parts.append(
            pd.DataFrame({"row": others, "field": "", "value": "", "error": reason_for_others})
        )
    allerr = pd.concat(parts, ignore_index=True).sort_values(["row", "field"], kind="stable")
    r = allerr["row"].astype(int).to_numpy()
    sub = frame.iloc[r]
    records = [_record_json(rec, t) for rec in sub[t.columns].to_dict("records")]
    out = pd.DataFrame(
        {
            "source_file": sub[SOURCE].astype("str").to_numpy(),
            "claim_id": sub["claim_id"].astype("str").to_numpy()
            if "claim_id" in sub
            else sub["facility_id"].astype("str").to_numpy(),
            "table": t.name,
            "record": [f"{s}" for s in sub[RECORD].to_numpy()],
            "field": allerr["field"].to_numpy(),
            "value": allerr["value"].astype("str").to_numpy(),
            "error": allerr["error"].to_numpy(),
            "record_json": records,
        }
    )
    if units is not None:
        out[UNIT] = np.asarray(units)[r]
    return out


def _record_json(rec: dict, t: Table) -> str:
    by = {f.name: f for f in t.fields}
    out = {}
    for k, v in rec.items():
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
            continue
        if isinstance(v, pd.Timestamp):
            v = v.strftime("%Y%m%d%H%M")
        elif isinstance(v, np.integer):
            v = int(v)
        elif isinstance(v, np.floating):
            v = float(v)
        if isinstance(v, float):
            v += 0.0  # no negative zero: "-0.0" and 0.0 are one value to show (both validators)
        out[by[k].xml] = v
    return json.dumps(out, ensure_ascii=False, default=str)


def keyed_hash(values: pd.Series, key: str, prefix: str) -> pd.Series:
    """HMAC-SHA256 of each value (16 hex chars); NA stays NA. Links records without storing them."""
    return pd.Series(
        _keyed_hash(arrow_text(_as_str(values)), key, prefix).to_pandas(), index=values.index
    )


def _keyed_hash(values: pa.Array, key: str, prefix: str) -> pa.Array:
    """keyed_hash over an Arrow text array: one HMAC per distinct value (dictionary-encoded),
    spread back to the rows with a take; nulls stay null."""
    enc = pc.dictionary_encode(values)
    k, p = key.encode(), f"{prefix}:"
    hexes = [
        hmac.digest(k, (p + v).encode(), "sha256")[:8].hex() for v in enc.dictionary.to_pylist()
    ]
    return pa.array(hexes, pa.large_string()).take(enc.indices)


# The first card of a list: Python's re.sub(r";.*\Z", "") in RE2 ("." stops at a newline there
# too, RE2 has no \Z); the social-insurance number inside it.
_FIRST_CARD_REST = r";[^\n]*\z"
_SI = r"^[A-Z]{2}[0-9]{3}(?P<si>[0-9]{10})"


def linkage_keys(claims: pd.DataFrame, key: str) -> pd.DataFrame:
    """person_key (social-insurance number, else national ID, else facility + patient ID) and
    card_key (the first card number), both keyed hashes. Arrow kernels over whole columns
    (tests/contract/test_validate_nulls.py checks them against the pandas rules they replaced)."""
    # Every column as strings: a column that is null everywhere (no card in the whole batch) may
    # come typed as floats.
    text = {
        c: arrow_text(_as_str(claims[c]))
        for c in ("card_number", "national_id", "facility_id", "patient_id")
    }
    first = pc.replace_substring_regex(text["card_number"], _FIRST_CARD_REST, "")
    first = pc.if_else(pc.equal(first, ""), pa.scalar(None, first.type), first)
    si = pc.struct_field(pc.extract_regex(first, _SI), [0])

    def s(v: str) -> pa.Scalar:
        return pa.scalar(v, pa.large_string())

    join = pc.binary_join_element_wise  # null if any part is null, as pandas' "+"
    basis = pc.coalesce(
        join(s("SI:"), si, s("")),
        join(s("ID:"), text["national_id"], s("")),
        join(s("BN:"), text["facility_id"], s(":"), text["patient_id"], s("")),
    )
    return pd.DataFrame(
        {
            "person_key": _keyed_hash(basis, key, "person").to_pandas(),
            "card_key": _keyed_hash(first, key, "card").to_pandas(),
        }
    ).set_axis(claims.index)


def _as_str(s: pd.Series) -> pd.Series:
    """A column as the string dtype, missing values kept missing (even when all are missing)."""
    if s.dtype == "str":
        return s
    return s.astype("object").where(s.notna(), None).astype("str")
