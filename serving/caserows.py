"""The case-store write of a small batch without pandas: content hashes, claim documents and the
claim meta computed from records (dicts of canonical values, as contract.validate_rows keeps
them, or a small frame's rows), exactly what serving.casefile's frame path computes from frames:
the same hashes, the same documents, the same scored rows (tests/serving/test_casefile_rows.py
holds the two to it over the simulated world's claims, nulls, dates and decimals included).

A frame operation costs pandas a fixed ~0.05-1 ms whatever its rows, and the frame path makes a
few hundred of them per batch: ~70-130 ms for one claim, most of an API request. Value by value,
one claim takes well under a millisecond. `fill_batch` picks the way by batch size, as
serving.online picks the validator: records, or at most ROW_WISE_MAX claims, go row-wise; larger
frames go through serving.casefile.fill_store (whose vectorised work pays off there).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from statistics import median
from typing import Any

import pandas as pd

from contract.schema import CLAIMS, DRUG_LINES, SERVICE_LINES, VISIT_TYPES
from contract.validate_rows import ROW_WISE_MAX
from serving.casefile import (
    DRUG,
    IDENTITY,
    OTHER_FEATURES,
    PEER_FEATURES,
    SERVICE,
    SUMMARY,
    _plain,
    _score_row,
    _text,
    feature_notes,
    fill_store,
    line_entry,
)

Records = list[dict]
_CLAIM_FIELDS = [f.name for f in CLAIMS.fields]
_LINE_FIELDS = {
    "drug_lines": [f.name for f in DRUG_LINES.fields],
    "service_lines": [f.name for f in SERVICE_LINES.fields],
}


def fill_batch(store, scored, tables: dict, frame, actor: str, **kw) -> int:
    """serving.casefile.fill_store's answer, row-wise for records (`scored` a list of dicts,
    `tables` lists of canonical records, `frame` a list of feature records or None) and for
    frames of at most ROW_WISE_MAX claims; larger frames go to fill_store itself. The facility
    months (frames of whole months) are left to fill_store."""
    rows = isinstance(scored, list)
    if not rows:
        claims = tables.get("claims")
        small = len(scored) <= ROW_WISE_MAX and claims is not None and len(claims) <= ROW_WISE_MAX
        if not small or kw.get("facility_months", True):
            return fill_store(store, scored, tables, frame, actor, **kw)
        scored, tables, frame = as_records(scored), _table_records(tables), as_records(frame)
    elif kw.get("facility_months", True):
        raise ValueError("facility months are written from frames (serving.casefile.fill_store)")
    return fill_rows(store, scored, tables, frame, actor, **kw)


def as_records(df: pd.DataFrame | None) -> Records | None:
    """A frame's rows as dicts (its own values: NaN, NA, NaT and Timestamps as pandas gives)."""
    return None if df is None else df.to_dict("records")


def _table_records(tables: dict) -> dict[str, Records | None]:
    return {k: v if v is None or isinstance(v, list) else as_records(v) for k, v in tables.items()}


def _missing(v: Any) -> bool:
    """What pandas counts as missing: None, NaN, NA, NaT."""
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


# -- the content hash -------------------------------------------------------------------------
def _joined(rec: dict, names: list[str]) -> str:
    return "\x1f".join(_text(rec[n]) if n in rec else "" for n in names)


def _line_order(line: dict) -> tuple:
    """sort_values' order of line numbers: ascending, missing last (ties keep their order)."""
    n = line.get("line_no")
    return (1, 0) if _missing(n) else (0, n)


def content_hashes(tables: dict[str, Records], ids: set[str] | None = None) -> dict[str, str]:
    """serving.casefile.content_hashes for records."""
    claims = tables["claims"]
    if ids is not None:
        claims = [c for c in claims if str(c.get("claim_id")) in ids]
    texts = {str(c.get("claim_id")): [_joined(c, _CLAIM_FIELDS)] for c in claims}
    for marker, name in (("D", "drug_lines"), ("S", "service_lines")):
        lines = tables.get(name)
        if not lines:
            continue
        mine = sorted((x for x in lines if str(x.get("claim_id")) in texts), key=_line_order)
        for line in mine:
            texts[str(line.get("claim_id"))].append(marker + _joined(line, _LINE_FIELDS[name]))
    return {
        c: hashlib.sha256("\x1e".join(parts).encode()).hexdigest() for c, parts in texts.items()
    }


# -- the claim documents --------------------------------------------------------------------
def _first(rows: Records | None, key: str, value: str) -> dict:
    """key -> rows[value] of the first row of each key (drop_duplicates(key), then a lookup);
    {} without rows or without the value column."""
    out: dict = {}
    if not rows or value not in rows[0]:
        return out
    for r in rows:
        out.setdefault(r.get(key), r.get(value))
    return out


def claim_levels(tables: dict[str, Records], frame: Records | None) -> dict:
    """claim_id -> facility level: the facilities table's, else the feature rows'."""
    fac = _first(tables.get("facilities"), "facility_id", "level")
    own = _first(frame, "claim_id", "facility_level") if frame is not None else {}
    out: dict = {}
    for c in tables["claims"]:
        v = fac.get(c.get("facility_id"))
        out[c.get("claim_id")] = own.get(c.get("claim_id")) if _missing(v) else v
    return out


def typical_prices(tables: dict[str, Records], frame: Records | None = None) -> dict[tuple, float]:
    """serving.casefile.typical_prices for records."""
    return _typical(tables, claim_levels(tables, frame))


def _typical(tables: dict[str, Records], levels: dict) -> dict[tuple, float]:
    out: dict[tuple, float] = {}
    for kind, name in (("D", "drug_lines"), ("S", "service_lines")):
        prices: dict[tuple, list[float]] = {}
        for line in tables.get(name) or ():
            if kind == "D":
                code = line.get("drug_code")
            else:
                code = line.get("service_code")
                code = line.get("supply_code") if _missing(code) else code
            price = line.get("unit_price")
            if _missing(code) or _missing(price):
                continue
            level = levels.get(line.get("claim_id"))
            level = "" if _missing(level) else level
            prices.setdefault((code, level), []).append(float(price))
        out.update({(kind, c, lv): float(median(ps)) for (c, lv), ps in prices.items()})
    return out


def claim_documents(
    tables: dict[str, Records],
    frame: Records | None = None,
    *,
    typical_prices: dict[tuple, float] | None = None,
) -> dict[str, dict]:
    """serving.casefile.claim_documents for records."""
    claims = tables["claims"]
    if not claims:
        return {}
    names = _first(tables.get("facilities"), "facility_id", "facility_name")
    levels = claim_levels(tables, frame)
    typical = typical_prices if typical_prices is not None else _typical(tables, levels)
    docs: dict[str, dict] = {}
    for c in claims:
        summary = {k: _plain(c[k]) for k in SUMMARY if k in c}
        cid = str(summary["claim_id"])
        summary["facility_name"] = _plain(names.get(summary.get("facility_id")))
        summary["facility_level"] = _plain(levels.get(cid))
        summary["visit_type_name"] = VISIT_TYPES.get(str(summary.get("visit_type")), None)
        ident = {k: _plain(c[k]) for k in IDENTITY if k in c}
        docs[cid] = {"summary": summary, "identity": ident, "lines": [], "peers": [], "values": {}}
    for c in claims:
        if "birth_date" in c:
            y = c["birth_date"]
            docs[str(c["claim_id"])]["summary"]["birth_year"] = None if _missing(y) else str(y)[:4]

    for kind, table, cols in (("D", "drug_lines", DRUG), ("S", "service_lines", SERVICE)):
        lines = [x for x in tables.get(table) or () if x.get("claim_id") in docs]
        lines.sort(key=lambda x: (str(x.get("claim_id")), *_line_order(x)))
        for line in lines:
            cid = str(line.get("claim_id"))
            rec = {k: _plain(line[k]) for k in cols if k in line}
            level = _plain(levels.get(cid)) or ""
            docs[cid]["lines"].append(line_entry(kind, rec, level, typical))

    if frame:
        have_peer = [p for p in PEER_FEATURES if p[0] in frame[0] and p[1] in frame[0]]
        others = [c for c in OTHER_FEATURES if c in frame[0]]
        for r in frame:
            if r.get("claim_id") not in docs:
                continue
            feature_notes(docs[str(r["claim_id"])], r, have_peer, others)
    return docs


# -- the scored rows --------------------------------------------------------------------------
def claim_meta(ids: list, tables: dict[str, Records], frame: Records | None) -> dict[Any, dict]:
    """serving.casefile's claim meta for records: claim_id -> facility, level, month, fund
    claimed and person key."""
    claims: dict = {}
    for c in tables["claims"]:
        claims[c.get("claim_id")] = c
    person = any("person_key" in c for c in tables["claims"])
    if frame is not None and (not frame or "facility_level" in frame[0]):
        levels = _first(frame, "claim_id", "facility_level")
    elif tables.get("facilities") is not None:
        fac = _first(tables["facilities"], "facility_id", "level")
        levels = {k: fac.get(c.get("facility_id")) for k, c in claims.items()}
    else:
        levels = {}
    out = {}
    for cid in ids:
        c = claims.get(cid, {})
        at = c.get("admitted_at")
        out[cid] = {
            "facility_id": c.get("facility_id"),
            "month": None if _missing(at) else at.strftime("%Y-%m"),
            "fund_claimed": c.get("fund_claimed"),
            "person_key": c.get("person_key") if person else None,
            "facility_level": levels.get(cid),
        }
    return out


def fill_rows(
    store,
    scored: Records,
    tables: dict[str, Records],
    frame: Records | None,
    actor: str,
    *,
    open_bands: tuple[str, ...] | None = None,
    documents: str = "cases",
    chunk: int | None = None,
    facility_months: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """serving.casefile.fill_store for records, in one chunk (a request's few claims): the same
    scored rows, documents and hashes recorded. `chunk` and `facility_months` are fill_store's
    options, taken for the same calls (no facility months here: see fill_batch)."""
    if open_bands is None:
        from scoring.scorer import OPEN_BANDS as open_bands
    seen: set = set()
    scored = [r for r in scored if not (r["claim_id"] in seen or seen.add(r["claim_id"]))]
    ids = [r["claim_id"] for r in scored]
    meta = claim_meta(ids, tables, frame)
    hashes = content_hashes(tables, {str(c) for c in ids})
    full_ids = {str(r["claim_id"]) for r in scored if documents == "all" or r["band"] in open_bands}
    rows = [_score_row(r, meta[r["claim_id"]], {}, hashes.get(str(r["claim_id"]))) for r in scored]

    def with_documents(rows: list[dict], case_keys: set[str]) -> list[dict]:
        # full documents for the open bands and for the claims that already are cases
        here = full_ids | {str(r["claim_id"]) for r in rows if _key(r) in case_keys}
        typical = typical_prices(tables, frame) if here & {str(c) for c in ids} else {}
        docs = _documents({str(c) for c in ids}, tables, frame, here, typical)
        return [{**r, "claim": docs.get(str(r["claim_id"]), {})} for r in rows]

    new = store.record_scores(rows, actor, open_bands, with_documents) if rows else 0
    if progress:
        progress(len(scored), len(scored))
    return new


def _key(row: dict) -> str:
    from serving.records import claim_key

    return claim_key(row.get("facility_id"), row["claim_id"])


def _documents(
    ids: set[str], tables: dict[str, Records], frame: Records | None, full: set[str], typical
) -> dict[str, dict]:
    """serving.casefile._chunk_documents for records: full documents for `full`, the summary
    alone for the others."""
    here = ids & full
    sub: dict[str, Any] = {"claims": [c for c in tables["claims"] if c.get("claim_id") in ids]}
    for k in ("drug_lines", "service_lines"):
        if tables.get(k) is not None:
            sub[k] = [x for x in tables[k] if x.get("claim_id") in here]
    sub["facilities"] = tables.get("facilities")
    f = [r for r in frame if r.get("claim_id") in here] if frame is not None else None
    docs = claim_documents(sub, f, typical_prices=typical)
    for cid in ids - full:
        if cid in docs:
            docs[cid] = {"summary": docs[cid]["summary"]}
    return docs
