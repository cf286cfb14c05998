"""Batches of whole claims: dossiers gathered into raw columnar tables (`EnvelopeBatch`), and
`validate_batch`, which validates a batch, cross-checks claims and lines and decides what is
rejected (a claim with all its lines, never a part of it). Pure: nothing is written here, so ingest
runs it in worker processes and the scoring API on each request."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from contract.limits import Limits
from contract.schema import (
    CLAIMS,
    DRUG_LINES,
    REJECTIONS_COLUMNS,
    SERVICE_LINES,
    XML_TABLES,
    Table,
)
from contract.validate import (
    GROUP,
    UNIT,
    Checked,
    check_table,
    linkage_keys,
    rejection_rows,
    standard_names,
)
from contract.xml_reader import Dossier, columnar

LINE_TABLES = (DRUG_LINES, SERVICE_LINES)


@dataclass
class BatchResult:
    """A validated batch: good canonical rows (still carrying INTERNAL columns) and rejections."""

    good: dict[str, pd.DataFrame]
    checked: dict[str, Checked]
    rejections: list[pd.DataFrame]
    read: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    file_errors: list[tuple[str, str]] = field(default_factory=list)
    # units decided together (decide_batch(units=...)): rejection and good rows carry UNIT
    grouped: bool = False


def validate_batch(
    raw: dict[str, pd.DataFrame],
    limits: Limits,
    linkage_key: str,
    prior_errors: pd.DataFrame | None = None,
    from_xml: bool = False,
    max_time: pd.Timestamp | None = None,
) -> BatchResult:
    """Validate one batch of whole claims (claims + their lines); decide what is rejected.

    ``raw`` maps table name -> frame with XML 130 column names and the INTERNAL columns.
    ``prior_errors`` are dossier-level rejections (GROUP plus the rejection columns).
    ``max_time``: admission/discharge times later than this are field errors (the scoring API
    passes its clock plus the allowed skew); None: no bound.
    Pure: writes nothing, so workers can run it in parallel.
    """
    checked = check_batch(raw, limits, from_xml, max_time)
    return decide_batch(checked, linkage_key, prior_errors)


def check_batch(
    raw: dict[str, pd.DataFrame],
    limits: Limits,
    from_xml: bool = False,
    max_time: pd.Timestamp | None = None,
) -> dict[str, Checked]:
    """validate_batch's field checks: each table validated and typed, row by row (no rule looks
    at another row, so a table checked inside a larger one gives the same rows and errors)."""
    return {
        t.name: check_table(
            raw.get(t.name, pd.DataFrame()), t, limits.max_field_chars, from_xml, max_time
        )
        for t in (CLAIMS, *LINE_TABLES)
    }


def decide_batch(
    checked: dict[str, Checked],
    linkage_key: str,
    prior_errors: pd.DataFrame | None = None,
    units: dict[str, np.ndarray] | None = None,
) -> BatchResult:
    """validate_batch after the field checks: duplicate claim keys, lines without their claim,
    what is rejected (a claim with all its lines), the rejection rows and the good rows.

    ``units``: the batch is several units (batches of files, gather_units) decided together,
    each as if alone: table name -> the unit of each row (nondecreasing), and prior_errors carry
    a UNIT column. Their GROUP values are distinct across units (gather_units makes them so);
    duplicate keys are looked for inside each unit; the rejection rows and good rows carry UNIT
    (commit_order puts the report in the order of deciding the units one by one)."""
    claims = checked["claims"]
    cf = claims.frame
    # A claim key must be unique: the first occurrence stands, later ones are rejected.
    ids = cf["claim_id"]
    if units is None:
        dup = ids.duplicated(keep="first") & ids.notna()
    else:  # in its own unit (a key again in a later unit is commit's to reject)
        keyed = pd.DataFrame({"u": units["claims"], "k": ids.to_numpy()})
        dup = pd.Series(keyed.duplicated(keep="first").to_numpy(), index=ids.index) & ids.notna()
    add_error(claims, dup, "MA_LK", ids, DUPLICATE)
    # Lines must belong to the claim summary of their group (dossier, or MA_LK in tables).
    group_claim = cf.loc[~dup.to_numpy()].drop_duplicates(GROUP).set_index(GROUP)["claim_id"]
    for t in LINE_TABLES:
        c = checked[t.name]
        owner = c.frame[GROUP].map(group_claim)
        no_owner = owner.isna()
        mismatch = ~no_owner & c.frame["claim_id"].notna() & (c.frame["claim_id"] != owner)
        add_error(
            c, no_owner, "MA_LK", c.frame["claim_id"], "no claim summary (XML1) with this MA_LK"
        )
        add_error(
            c,
            mismatch,
            "MA_LK",
            c.frame["claim_id"],
            "MA_LK differs from the claim summary of the same dossier",
        )
    # A claim is accepted or rejected whole.
    bad_groups = set()
    for c in checked.values():
        bad_groups.update(c.frame.loc[c.bad.to_numpy(), GROUP].tolist())
    result = BatchResult({}, checked, [], grouped=units is not None)
    if prior_errors is not None and len(prior_errors):
        bad_groups.update(prior_errors[GROUP].tolist())
        keep = [*REJECTIONS_COLUMNS, UNIT] if units is not None else list(REJECTIONS_COLUMNS)
        result.rejections.append(prior_errors[keep])
        # a dossier refused before its claim summary could be read (XML1 missing or unreadable)
        # is still a claim read and rejected: counted here, or the totals would miss it
        unread = set(prior_errors[GROUP]) - set(cf[GROUP])
        result.read["claims"] += len(unread)
        result.rejected["claims"] += len(unread)
    for name, c in checked.items():
        reject = c.frame[GROUP].isin(bad_groups)
        result.read[name] += len(c.frame)
        result.rejected[name] += int(reject.sum())
        unit = units[name] if units is not None else None
        result.rejections.append(rejection_rows(c, reject, WITH_CLAIM, unit))
        keep = ~reject.to_numpy()
        good = c.frame.loc[keep]
        if unit is not None:
            good = good.assign(**{UNIT: unit[keep]})
        if name == "claims":
            good = pd.concat([good, linkage_keys(good, linkage_key)], axis=1)
        result.good[name] = good
    return result


DUPLICATE = "duplicate claim key (MA_LK): the first claim with this key was kept"
WITH_CLAIM = "rejected with its claim: another record of it has errors"


def add_error(c: Checked, mask: pd.Series, xml_field: str, values: pd.Series, msg: str) -> None:
    mask = mask.fillna(False).astype(bool).to_numpy()
    if not mask.any():
        return
    idx = np.flatnonzero(mask)
    new = pd.DataFrame(
        {
            "row": idx,
            "field": xml_field,
            "value": values.iloc[idx].astype("str").to_numpy(),
            "error": msg,
        }
    )
    c.errors = pd.concat([c.errors, new], ignore_index=True)
    c.bad = c.bad | pd.Series(mask)


class EnvelopeBatch:
    """Dossiers gathered into raw columnar tables (and dossier-level errors) for validate_batch."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.rows: dict[str, list] = {"claims": [], "drug_lines": [], "service_lines": []}
        self.errors: list[dict] = []
        self.claims = 0

    def add(self, source: str, d: Dossier) -> None:
        group = f"{source}#{d.number}"
        self.claims += 1
        for loai, recs in d.records.items():
            rows = self.rows[XML_TABLES[loai].name]
            for i, (tags, texts) in enumerate(recs, 1):
                rows.append((tags, texts, group, source, f"HOSO {d.number}/{loai} {i}"))
        if not d.errors:
            return
        tags, texts = (d.records.get("XML1") or [((), ())])[0]
        ma_lk = (texts[tags.index("MA_LK")] if "MA_LK" in tags else None) or ""
        for table, fld, value, error in d.errors:
            self.errors.append(
                {
                    "source_file": source,
                    "claim_id": ma_lk,
                    "table": XML_TABLES[table].name,
                    "record": f"HOSO {d.number}/{table}",
                    "field": fld,
                    "value": value,
                    "error": error,
                    "record_json": json.dumps({"LOAIHOSO": table}),
                    GROUP: group,
                }
            )

    def take_rows(self) -> Pending:
        """The records and dossier-level errors gathered so far, as they are; starts anew."""
        pending = Pending(self.rows, self.errors, self.claims)
        self.reset()
        return pending

    def take(self) -> tuple[dict[str, pd.DataFrame], pd.DataFrame | None]:
        """The raw tables and the dossier-level errors gathered so far; the batch starts anew."""
        return raw_tables(self.take_rows())

    def validate(self, limits: Limits, linkage_key: str) -> BatchResult:
        raw, prior = self.take()
        return validate_batch(raw, limits, linkage_key, prior, from_xml=True)


@dataclass
class Pending:
    """A batch of dossiers (of one file, in ingest) as EnvelopeBatch gathered them: raw records
    per table, not yet made columns, and the dossier-level errors."""

    rows: dict[str, list]
    errors: list[dict]
    claims: int


def raw_tables(p: Pending) -> tuple[dict[str, pd.DataFrame], pd.DataFrame | None]:
    """The raw tables of one batch and its dossier-level errors (validate_batch's input)."""
    raw = {name: columnar(rows) for name, rows in p.rows.items()}
    prior = pd.DataFrame(p.errors) if p.errors else None
    return raw, prior


def gather_units(
    units: list[Pending],
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame | None, dict[str, np.ndarray]]:
    """Several batches (units) as one: the raw tables, the dossier-level errors (with UNIT) and
    the unit of each row of each table, for check_batch and decide_batch(units=...).

    Each unit's records get the names rename_to_standard gives its own table (a unit may use
    4210 names, another 4750; an unknown name, or a field's second name, is dropped), and GROUP
    values distinct across units (two files of one name in different folders)."""
    raw: dict[str, pd.DataFrame] = {}
    unit_rows: dict[str, np.ndarray] = {}
    for t in (CLAIMS, *LINE_TABLES):
        rows: list[tuple] = []
        counts = []
        for p in units:
            mine = p.rows.get(t.name, [])
            counts.append(len(mine))
            names = _unit_names(mine, t)
            if names is None:
                rows.extend(mine)
            else:
                rows.extend((names[r[0]], *r[1:]) for r in mine)
        unit_rows[t.name] = np.repeat(np.arange(len(units)), counts)
        # GROUP gets "@unit", column-wise in columnar
        suffixes = np.array([f"@{k}" for k in range(len(units))], dtype=object)
        raw[t.name] = columnar(rows, suffixes[unit_rows[t.name]].tolist())
    errors = [
        {**e, GROUP: f"{e[GROUP]}@{k}", UNIT: k} for k, p in enumerate(units) for e in p.errors
    ]
    prior = pd.DataFrame(errors) if errors else None
    return raw, prior, unit_rows


def _unit_names(rows: list, table: Table) -> dict[tuple, tuple] | None:
    """The field names of one unit's records as rename_to_standard renames the columns of its
    own table (columns in the order their records first appear, as columnar lays them out); a
    dropped column gets a name no field has. None: every name is a 4750 name or unknown, which
    the check of the gathered table treats alike."""
    shapes = dict.fromkeys({id(r[0]): r[0] for r in rows}.values())  # (no tuple hashed per row)
    plain = _plain_names(table)
    if all(plain.shape(shape) for shape in shapes):
        return None
    order = dict.fromkeys(tag for shape in shapes for tag in shape)
    mapping = standard_names(order, table)
    return {
        shape: tuple(mapping.get(tag, f"_drop{j}") for j, tag in enumerate(shape))
        for shape in shapes
    }


_PLAIN: dict[str, _PlainNames] = {}


def _plain_names(table: Table) -> _PlainNames:
    if table.name not in _PLAIN:
        _PLAIN[table.name] = _PlainNames(table)
    return _PLAIN[table.name]


class _PlainNames:
    """Names that rename_to_standard keeps as they are (a 4750 name) or drops (unknown)."""

    def __init__(self, table: Table):
        self.by_xml = table.by_xml()
        self.known: dict[str, bool] = {}
        self.shapes: dict[tuple, bool] = {}  # (a few shapes, met again in every file)

    def shape(self, tags: tuple) -> bool:
        """Every name of this record shape is kept as it is or dropped."""
        found = self.shapes.get(tags)
        if found is None:
            if len(self.shapes) >= 4_096:  # (input with ever new shapes: kept bounded)
                self.shapes.clear()
            found = self.shapes[tags] = all(tag in self for tag in tags)
        return found

    def __contains__(self, tag: object) -> bool:
        found = self.known.get(tag)  # type: ignore[arg-type]
        if found is None:
            f = self.by_xml.get(str(tag).strip().upper())
            found = self.known[tag] = f is None or f.xml == tag  # type: ignore[index]
        return found
