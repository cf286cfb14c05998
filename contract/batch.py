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
from contract.schema import CLAIMS, DRUG_LINES, REJECTIONS_COLUMNS, SERVICE_LINES, XML_TABLES
from contract.validate import (
    GROUP,
    NO_ERRORS,
    Checked,
    check_table,
    linkage_keys,
    rejection_rows,
    rename_to_standard,
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


def validate_batches(
    items: list[tuple[dict[str, pd.DataFrame], pd.DataFrame | None]],
    limits: Limits,
    linkage_key: str,
    from_xml: bool = False,
) -> list[BatchResult]:
    """validate_batch of each (raw, prior_errors) item, with the field checks of all of them run
    as one batch (their fixed cost per column paid once: an envelope of one dossier paid ~0.1 s
    of it alone) and everything across rows (duplicate keys, lines and their claim, what is
    rejected with what) decided per item as validate_batch decides it."""
    if len(items) <= 1:
        return [validate_batch(raw, limits, linkage_key, prior, from_xml) for raw, prior in items]
    merged: dict[str, pd.DataFrame] = {}
    bounds: dict[str, np.ndarray] = {}
    for t in (CLAIMS, *LINE_TABLES):
        # each item's own names made standard first (one may use 4210 names, another 4750)
        frames = [rename_to_standard(raw.get(t.name, pd.DataFrame()), t) for raw, _ in items]
        bounds[t.name] = np.cumsum([0, *(len(f) for f in frames)])
        merged[t.name] = pd.concat([f.reset_index(drop=True) for f in frames], ignore_index=True)
    checked = check_batch(merged, limits, from_xml)
    return [
        decide_batch(
            {name: _part(c, *bounds[name][k : k + 2]) for name, c in checked.items()},
            linkage_key,
            prior,
        )
        for k, (_raw, prior) in enumerate(items)
    ]


def _part(c: Checked, a: int, b: int) -> Checked:
    """Rows [a, b) of a checked table as a table of their own (rows renumbered from 0)."""
    rows = c.errors["row"].to_numpy(dtype=np.int64)
    inside = (rows >= a) & (rows < b)
    errors = (
        c.errors.loc[inside].assign(row=rows[inside] - a).reset_index(drop=True)
        if inside.any()
        else NO_ERRORS.copy()
    )
    frame = c.frame.iloc[a:b].reset_index(drop=True)
    return Checked(c.table, frame, c.bad.iloc[a:b].reset_index(drop=True), errors)


def decide_batch(
    checked: dict[str, Checked], linkage_key: str, prior_errors: pd.DataFrame | None = None
) -> BatchResult:
    """validate_batch after the field checks: duplicate claim keys, lines without their claim,
    what is rejected (a claim with all its lines), the rejection rows and the good rows."""
    claims = checked["claims"]
    cf = claims.frame
    # A claim key must be unique: the first occurrence stands, later ones are rejected.
    ids = cf["claim_id"]
    dup = ids.duplicated(keep="first") & ids.notna()
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
    result = BatchResult({}, checked, [])
    if prior_errors is not None and len(prior_errors):
        bad_groups.update(prior_errors[GROUP].tolist())
        result.rejections.append(prior_errors[list(REJECTIONS_COLUMNS)])
        # a dossier refused before its claim summary could be read (XML1 missing or unreadable)
        # is still a claim read and rejected: counted here, or the totals would miss it
        unread = set(prior_errors[GROUP]) - set(cf[GROUP])
        result.read["claims"] += len(unread)
        result.rejected["claims"] += len(unread)
    for name, c in checked.items():
        reject = c.frame[GROUP].isin(bad_groups)
        result.read[name] += len(c.frame)
        result.rejected[name] += int(reject.sum())
        result.rejections.append(rejection_rows(c, reject, WITH_CLAIM))
        good = c.frame.loc[~reject.to_numpy()]
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

    def take(self) -> tuple[dict[str, pd.DataFrame], pd.DataFrame | None]:
        """The raw tables and the dossier-level errors gathered so far; the batch starts anew."""
        raw = {name: columnar(rows) for name, rows in self.rows.items()}
        prior = pd.DataFrame(self.errors) if self.errors else None
        self.reset()
        return raw, prior

    def validate(self, limits: Limits, linkage_key: str) -> BatchResult:
        raw, prior = self.take()
        return validate_batch(raw, limits, linkage_key, prior, from_xml=True)
