"""The claim document an officer reads on a case page, and filling the case store from a scored
batch.

`claim_documents` turns canonical tables (and, when given, the feature frame) into one JSON-safe
document per claim: the summary, the identity (personal data: masked in the UI except for
supervisors, never in URLs or logs), every drug and service line with a stable line id and the
typical unit price of its item, and the claim's key values beside its peers' medians.
`fill_store` records scored rows with their documents, opens cases for the review bands and
stores each facility's months as the early warning sees them.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from contract.schema import CLAIMS, COST_GROUPS, DRUG_LINES, SERVICE_LINES, VISIT_TYPES
from serving.casecolumns import among, line_order, minute_texts, row_texts
from serving.casecolumns import plain as _plain
from serving.casecolumns import value_text as _text  # noqa: F401  (serving.caserows' import)
from serving.caselines import driving_lines  # noqa: F401  (the case page's import)

log = logging.getLogger("claimradar.casefile")

SUMMARY = (
    "claim_id", "facility_id", "visit_type", "admitted_at", "discharged_at", "treatment_days",
    "primary_icd", "secondary_icd", "discharge_diagnosis", "route_code", "referred_from",
    "outcome", "discharge_type", "total_cost", "total_drugs", "total_supplies", "fund_claimed",
    "patient_copay", "patient_self_pay", "sex", "person_key",
)  # fmt: skip
# The identity of a claim: its personal fields (contract/schema.py) and the medical record number.
# Kept for cases only, sealed with the data key (serving/records.py, serving/sealing.py).
IDENTITY = (*(f.name for f in CLAIMS.fields if f.personal), "record_number")
DRUG = ("line_no", "drug_code", "drug_name", "cost_group", "unit", "quantity", "unit_price",
        "amount", "fund_claimed", "ordered_at")  # fmt: skip
SERVICE = ("line_no", "service_code", "supply_code", "service_name", "supply_name", "cost_group",
           "unit", "quantity", "unit_price", "amount", "fund_claimed", "ordered_at")  # fmt: skip
# The claim against its peers: features with a peer median (features/registry.py), in this order.
PEER_FEATURES = (
    ("claim_cost", "peer_median_total_cost", "VND"),
    ("cost_drug", "peer_median_cost_drug", "VND"),
    ("diag_cost", "peer_median_diag_cost", "VND"),
    ("n_service_lines", "peer_median_n_service_lines", "count"),
    ("stay_days", "peer_median_stay_days", "days"),
    ("bed_days", "peer_median_bed_days", "days"),
    ("fac_cost_per_visit_prev", "fac_peer_cost_per_visit_prev", "VND"),
)
OTHER_FEATURES = ("n_lab", "n_imaging", "n_exams", "lab_per_day", "drug_share", "peer_n")
GROUP_OF = {g: name for name, groups in COST_GROUPS.items() for g in groups}


def feature_notes(doc: dict, r: dict, have_peer: list, others: list) -> None:
    """A claim document's features beside their peer medians (`peers`) and its other feature
    values (`values`), from the claim's feature row r."""
    doc["peers"] = [
        {"feature": name, "value": _plain(r[name]), "peer": _plain(r[peer]), "unit": unit}
        for name, peer, unit in have_peer
    ]
    doc["values"] = {c: _plain(r[c]) for c in others}


def _records(df: pd.DataFrame, cols: Iterable[str]) -> list[dict]:
    """The rows of these columns as dicts of _plain values: `[{k: _plain(v) for k, v in r.items()}
    for r in df[cols].to_dict("records")]`, converted column by column (_plain_column)."""
    cols = [c for c in cols if c in df.columns]
    values = [_plain_column(df[c]) for c in cols]
    return (
        [dict(zip(cols, row, strict=True)) for row in zip(*values, strict=True)]
        if cols
        else ([{} for _ in range(len(df))])
    )


def _plain_column(col: pd.Series) -> list:
    """A column's values as _plain gives them, in one pass per dtype: floats rounded to 3
    decimals (NaN and infinities None), nullable integers as ints, text as text, times as ISO
    text to the minute, missing values None; any other dtype value by value."""
    dtype = col.dtype
    if dtype == "float64":
        x = col.to_numpy()
        # a whole number is its own rounding (most amounts): round() only for the others
        whole = (np.abs(x) < 2.0**53) & (x == np.trunc(x))
        return [v if w else (round(v, 3) if math.isfinite(v) else None)
                for v, w in zip(x.tolist(), whole.tolist(), strict=True)]  # fmt: skip
    if isinstance(dtype, pd.StringDtype):
        return col.to_numpy(dtype=object, na_value=None).tolist()
    if isinstance(dtype, pd.Int64Dtype | pd.Int32Dtype) or dtype == "int64":
        return col.to_numpy(dtype=object, na_value=None).tolist()
    if pd.api.types.is_datetime64_dtype(dtype):
        got = minute_texts(col.to_numpy())  # numpy's text, isoformat's for four-digit years
        if got is not None:
            return got
        return [None if v is pd.NaT else v.isoformat(timespec="minutes") for v in col.tolist()]
    return [_plain(v) for v in col.tolist()]


def line_entry(kind: str, rec: dict, level: str, typical: dict) -> dict:
    """One line of a claim document: its id (D/S + line number), code, name, cost group, fields
    and the typical unit price of its item at the claim's level (`rec` is consumed)."""
    code = rec.pop("drug_code", None) or rec.pop("service_code", None)
    code = code or rec.get("supply_code")
    rec.pop("supply_code", None)
    name = rec.pop("drug_name", None) or rec.pop("service_name", None)
    name = name or rec.pop("supply_name", None)
    rec.pop("supply_name", None)
    return {
        "line_id": f"{kind}{rec.get('line_no')}",
        "kind": "drug" if kind == "D" else "service",
        "code": code,
        "name": name,
        "group": GROUP_OF.get(rec.get("cost_group"), "other"),
        **rec,
        "typical_price": _plain(typical.get((kind, code, level))),
    }


def typical_prices(
    tables: dict[str, pd.DataFrame], frame: pd.DataFrame | None = None
) -> dict[tuple, float]:
    """Median unit price per (line kind D/S, item code, facility level) over the tables' lines."""
    return _typical(tables, _claim_levels(tables, frame))


def _typical(tables: dict[str, pd.DataFrame], levels: pd.Series) -> dict[tuple, float]:
    """Median unit price per (line kind, item code, facility level) over the tables' lines."""
    out: dict[tuple, float] = {}
    for kind, table, code in (("D", "drug_lines", "drug_code"), ("S", "service_lines", None)):
        lines = tables.get(table)
        if lines is None or lines.empty:
            continue
        key = lines[code] if code else lines["service_code"].fillna(lines.get("supply_code"))
        df = pd.DataFrame(
            {
                "code": key.astype("object"),
                "level": lines["claim_id"].map(levels).astype("object"),
                "price": pd.to_numeric(lines["unit_price"], errors="coerce"),
            }
        ).dropna(subset=["code", "price"])
        df["level"] = df["level"].fillna("")
        med = df.groupby(["code", "level"])["price"].median()
        out.update({(kind, c, lv): float(p) for (c, lv), p in med.items()})
    return out


def _claim_levels(tables: dict[str, pd.DataFrame], frame: pd.DataFrame | None) -> pd.Series:
    claims = tables["claims"]
    levels = pd.Series(dtype="object")
    facilities = tables.get("facilities")
    if facilities is not None and len(facilities) and "level" in facilities.columns:
        levels = facilities.drop_duplicates("facility_id").set_index("facility_id")["level"]
    out = claims.set_index("claim_id")["facility_id"].map(levels).astype("object")
    if frame is not None and "facility_level" in frame.columns:
        fl = frame.drop_duplicates("claim_id").set_index("claim_id")["facility_level"]
        out = out.fillna(out.index.to_series().map(fl))
    return out


def claim_documents(
    tables: dict[str, pd.DataFrame],
    frame: pd.DataFrame | None = None,
    *,
    typical_prices: dict[tuple, float] | None = None,
) -> dict[str, dict]:
    """One JSON-safe document per claim of `tables["claims"]` (see the module docstring).
    `typical_prices` (from `typical_prices(all_tables)`) lets a caller that builds documents for a
    part of a batch compare lines with the whole batch; by default the given tables are used."""
    claims = tables["claims"]
    if claims.empty:
        return {}
    names = _facility_names(tables)
    levels = _claim_levels(tables, frame)
    typical = typical_prices if typical_prices is not None else _typical(tables, levels)
    claim_level = _lookup(levels)

    summaries = _summaries(claims, names, claim_level)
    docs: dict[str, dict] = {}
    for (cid, summary), ident in zip(summaries, _records(claims, IDENTITY), strict=True):
        docs[cid] = {"summary": summary, "identity": ident, "lines": [], "peers": [], "values": {}}
    _birth_years(claims, docs)

    for kind, table, cols in (("D", "drug_lines", DRUG), ("S", "service_lines", SERVICE)):
        lines = tables.get(table)
        if lines is None or lines.empty:
            continue
        # each claim's lines in line order (the order of sort_values(["claim_id", "line_no"]))
        lines = lines.iloc[line_order(lines, among(lines["claim_id"], docs.keys(), text=False))]
        ids = lines["claim_id"].astype(str).tolist()
        for cid, rec in zip(ids, _records(lines, cols), strict=True):
            level = _plain(claim_level.get(cid)) or ""
            docs[cid]["lines"].append(line_entry(kind, rec, level, typical))

    if frame is not None and len(frame):
        f = frame[among(frame["claim_id"], docs.keys(), text=False)]
        have_peer = [p for p in PEER_FEATURES if p[0] in f.columns and p[1] in f.columns]
        others = [c for c in OTHER_FEATURES if c in f.columns]
        for r in f[["claim_id"] + [c for p in have_peer for c in p[:2]] + others].to_dict(
            "records"
        ):
            feature_notes(docs[str(r["claim_id"])], r, have_peer, others)
    return docs


def _facility_names(tables: dict[str, pd.DataFrame]) -> pd.Series:
    facilities = tables.get("facilities")
    if facilities is not None and len(facilities) and "facility_name" in facilities.columns:
        names = facilities.drop_duplicates("facility_id").set_index("facility_id")["facility_name"]
        return _lookup(names)
    return {}


def _lookup(s: pd.Series) -> dict | pd.Series:
    """A Series as a dict for `.get` (a dict look-up, not pandas' per call); itself when its
    index repeats a key (its `.get` gives a Series then)."""
    return dict(zip(s.index.tolist(), s.tolist(), strict=True)) if s.index.is_unique else s


def _summaries(claims: pd.DataFrame, names, claim_level) -> list:
    """(claim_id, summary) per row of `claims`: the SUMMARY fields, the facility's name and
    level and the visit type's name (the birth year is added by _birth_years)."""
    out = []
    for summary in _records(claims, SUMMARY):
        cid = str(summary["claim_id"])
        summary["facility_name"] = _plain(names.get(summary.get("facility_id")))
        summary["facility_level"] = _plain(claim_level.get(cid))
        summary["visit_type_name"] = VISIT_TYPES.get(str(summary.get("visit_type")), None)
        out.append((cid, summary))
    return out


def _birth_years(claims: pd.DataFrame, docs: dict[str, dict]) -> None:
    if "birth_date" in claims.columns:
        years = claims["birth_date"].astype("string").str[:4]
        for cid, y in zip(claims["claim_id"], years, strict=True):
            docs[str(cid)]["summary"]["birth_year"] = None if pd.isna(y) else str(y)


def summary_documents(tables: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """{"summary": ...} per claim of `tables["claims"]`: the summaries claim_documents(tables)
    gives (without a feature frame), without the identity, lines and peers it builds."""
    claims = tables["claims"]
    if claims.empty:
        return {}
    summaries = _summaries(claims, _facility_names(tables), _lookup(_claim_levels(tables, None)))
    docs = {cid: {"summary": summary} for cid, summary in summaries}
    _birth_years(claims, docs)
    return docs


# -- what a claim says: its content hash ----------------------------------------------------------
def content_hashes(tables: dict[str, pd.DataFrame], ids: set[str] | None = None) -> dict[str, str]:
    """claim_id -> SHA-256 of what the claim says: its contract fields (not the linkage keys
    derived from them) and its drug and service lines in line order. Resubmitted with any change,
    a claim gets a new hash (a new version in the case store); sent again as it was, the same."""
    claims = tables["claims"]
    if ids is not None:
        keep = among(claims["claim_id"], ids)
        claims = claims if keep.all() else claims[keep]
    texts = {
        str(c): [t]
        for c, t in zip(
            claims["claim_id"], row_texts(claims, [f.name for f in CLAIMS.fields]), strict=True
        )
    }
    for marker, name, table in (
        ("D", "drug_lines", DRUG_LINES),
        ("S", "service_lines", SERVICE_LINES),
    ):
        lines = tables.get(name)
        if lines is None or lines.empty:
            continue
        # each claim's lines in line order (line_order: sort_values' order within a claim)
        order = line_order(lines, among(lines["claim_id"], texts.keys()))
        if len(order) < len(lines):
            lines = lines.iloc[sorted(order)]
            at = {p: i for i, p in enumerate(sorted(order))}
            order = [at[p] for p in order]
        body = row_texts(lines, [f.name for f in table.fields])
        cids = lines["claim_id"].astype(str).tolist()
        for i in order:
            texts[cids[i]].append(marker + body[i])
    return {
        c: hashlib.sha256("\x1e".join(parts).encode()).hexdigest() for c, parts in texts.items()
    }


# -- filling the store ------------------------------------------------------------------------
def _month(ts) -> str | None:
    return None if pd.isna(ts) else pd.Timestamp(ts).strftime("%Y-%m")


def fill_store(
    store,
    scored: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    frame: pd.DataFrame | None,
    actor: str,
    *,
    open_bands: tuple[str, ...] | None = None,
    documents: str = "cases",
    chunk: int = 2_000,
    facility_months: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Record scored rows (scoring.scorer.score or batch.score_dataset output) with their claim
    documents; cases open for `open_bands`. `documents="cases"` keeps full documents (lines,
    peers) for the claims in those bands and the summary alone for the rest (the patient history
    reads it); `"all"` keeps full documents for every claim. Returns the new scored claims."""
    from serving.records import claim_key

    if open_bands is None:  # the scorer's (imported here: the review UI needs no model code)
        from scoring.scorer import OPEN_BANDS as open_bands
    scored = scored.drop_duplicates("claim_id")
    metas = claim_metas(scored, tables, frame)  # claim_id -> its meta (a lookup per row)
    hashes = content_hashes(tables, set(scored["claim_id"].astype(str)))
    full = (
        scored["claim_id"]
        if documents == "all"
        else scored.loc[scored["band"].isin(open_bands), "claim_id"]
    )
    full_ids = set(full.astype(str))
    typical: dict | None = None
    new = 0
    total = len(scored)
    for start in range(0, total, chunk):
        part = scored.iloc[start : start + chunk]
        rows = [
            _score_row(r, metas[r["claim_id"]], {}, hashes.get(str(r["claim_id"])))
            for r in part.to_dict("records")
        ]

        def with_documents(rows: list[dict], case_keys: set[str], part=part) -> list[dict]:
            # a claim that already is a case gets its full document too (a new version of it
            # moves the case), whatever its band now; the cases are read in the recording
            # transaction (serving.records.record_scores)
            nonlocal typical
            ids = {str(r["claim_id"]) for r in rows}
            cases = [r for r in rows if claim_key(r.get("facility_id"), r["claim_id"]) in case_keys]
            here = full_ids | {str(r["claim_id"]) for r in cases}
            if typical is None and here & ids:
                typical = typical_prices(tables, frame)
            docs = _chunk_documents(part, tables, frame, here, typical or {})
            return [{**r, "claim": docs.get(str(r["claim_id"]), {})} for r in rows]

        new += store.record_scores(rows, actor, open_bands, with_documents)
        if progress:
            progress(min(start + chunk, total), total)
    if facility_months:
        write_facility_months(store, tables)
    return new


def _claim_meta(
    scored: pd.DataFrame, tables: dict[str, pd.DataFrame], frame: pd.DataFrame | None
) -> pd.DataFrame:
    """Per scored claim: facility, its level, month, fund claimed and person key."""
    claims = tables["claims"].set_index("claim_id")
    meta = pd.DataFrame(index=scored["claim_id"])
    meta["facility_id"] = meta.index.map(claims["facility_id"])
    meta["month"] = [_month(x) for x in meta.index.map(claims["admitted_at"])]
    meta["fund_claimed"] = meta.index.map(claims["fund_claimed"])
    meta["person_key"] = (
        meta.index.map(claims["person_key"]) if "person_key" in claims.columns else None
    )
    levels = None
    if frame is not None and "facility_level" in frame.columns:
        levels = frame.drop_duplicates("claim_id").set_index("claim_id")["facility_level"]
    elif tables.get("facilities") is not None:
        fac = tables["facilities"].drop_duplicates("facility_id").set_index("facility_id")
        levels = claims["facility_id"].map(fac["level"])
    meta["facility_level"] = meta.index.map(levels) if levels is not None else None
    return meta


def claim_metas(scored: pd.DataFrame, tables: dict, frame: pd.DataFrame | None) -> dict:
    """`_claim_meta(...).to_dict("index")` from the columns' lists (no pandas map per column):
    the same values, made plain alike (tables with a claim twice: _claim_meta's way)."""
    claims = tables["claims"]
    if not claims["claim_id"].is_unique:
        return _claim_meta(scored, tables, frame).to_dict("index")
    ids = claims["claim_id"].tolist()
    at = {c: i for i, c in enumerate(ids)}
    cols = {c: claims[c].tolist() for c in ("facility_id", "admitted_at", "fund_claimed")}
    person = claims["person_key"].tolist() if "person_key" in claims.columns else None
    levels: dict | None = None
    if frame is not None and "facility_level" in frame.columns:
        levels = {}
        for c, lv in zip(frame["claim_id"].tolist(), frame["facility_level"].tolist(), strict=True):
            levels.setdefault(c, lv)
    elif tables.get("facilities") is not None:
        fac = tables["facilities"].drop_duplicates("facility_id").set_index("facility_id")
        fac_level = _lookup(fac["level"])
        levels = {c: fac_level.get(f) for c, f in zip(ids, cols["facility_id"], strict=True)}
    out = {}
    for cid in scored["claim_id"].tolist():
        i = at.get(cid)
        out[cid] = {
            "facility_id": None if i is None else cols["facility_id"][i],
            "month": None if i is None else _month(cols["admitted_at"][i]),
            "fund_claimed": None if i is None else cols["fund_claimed"][i],
            "person_key": None if i is None or person is None else person[i],
            "facility_level": None if levels is None else levels.get(cid),
        }
    return out


def _chunk_documents(
    part: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    frame: pd.DataFrame | None,
    full_ids: set[str],
    typical: dict[tuple, float],
) -> dict[str, dict]:
    """The documents of one chunk of scored claims: full for `full_ids`, the summary alone for
    the others (the patient history reads it). What `chunk_parts` gives, made column by column
    over the whole tables (no sub-frame taken: pandas takes every column of every row it
    keeps), a claim's values as claim_documents / summary_documents read them."""
    ids = set(part["claim_id"].astype(str))
    full = ids & full_ids
    claims = tables["claims"]
    if claims.empty or not claims["claim_id"].is_unique:
        return chunk_parts(part, tables, frame, full_ids, typical)
    names = _facility_names(tables)
    own, by_frame = _lookup(_claim_levels(tables, None)), _lookup(_claim_levels(tables, frame))
    summaries = _records(claims, SUMMARY)
    identities = _records(claims, IDENTITY)
    years = None
    if "birth_date" in claims.columns:
        years = claims["birth_date"].astype("string").str[:4].tolist()
    docs: dict[str, dict] = {}
    for i, cid in enumerate(claims["claim_id"].astype(str).tolist()):
        if cid not in ids:
            continue
        summary = summaries[i]
        summary["facility_name"] = _plain(names.get(summary.get("facility_id")))
        levels = by_frame if cid in full else own
        summary["facility_level"] = _plain(levels.get(cid))
        summary["visit_type_name"] = VISIT_TYPES.get(str(summary.get("visit_type")), None)
        if years is not None:
            summary["birth_year"] = None if pd.isna(years[i]) else str(years[i])
        docs[cid] = {"summary": summary}
        if cid in full:
            docs[cid].update(identity=identities[i], lines=[], peers=[], values={})
    for kind, table, cols in (("D", "drug_lines", DRUG), ("S", "service_lines", SERVICE)):
        lines = tables.get(table)
        if lines is None or lines.empty:
            continue
        at = line_order(lines, among(lines["claim_id"], full, text=False))
        recs = _records_at(lines, cols, at)
        for cid, rec in zip(lines["claim_id"].iloc[at].astype(str).tolist(), recs, strict=True):
            level = _plain(by_frame.get(cid)) or ""
            docs[cid]["lines"].append(line_entry(kind, rec, level, typical))
    if frame is not None and len(frame):
        keep = among(frame["claim_id"], full, text=False)
        have_peer = [p for p in PEER_FEATURES if p[0] in frame.columns and p[1] in frame.columns]
        others = [c for c in OTHER_FEATURES if c in frame.columns]
        cols = ["claim_id"] + [c for p in have_peer for c in p[:2]] + others
        for r in frame.loc[keep, cols].to_dict("records") if keep.any() else ():
            feature_notes(docs[str(r["claim_id"])], r, have_peer, others)
    return docs


def _records_at(df: pd.DataFrame, cols: Iterable[str], at: list[int]) -> list[dict]:
    """_records(df.iloc[at], cols), taking only these columns' values."""
    cols = [c for c in cols if c in df.columns]
    values = [_plain_column(df[c].iloc[at]) for c in cols]
    return [dict(zip(cols, row, strict=True)) for row in zip(*values, strict=True)]


def chunk_parts(
    part: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    frame: pd.DataFrame | None,
    full_ids: set[str],
    typical: dict[tuple, float],
) -> dict[str, dict]:
    """_chunk_documents by its parts: claim_documents of the full ones' rows, summary_documents
    of the others' (tables with a claim twice; the reference of the column-wise way)."""
    ids = set(part["claim_id"].astype(str))
    full_here = ids & full_ids
    claims = tables["claims"]
    sub = {"claims": claims[among(claims["claim_id"], full_here, text=False)]}
    for k in ("drug_lines", "service_lines"):
        if tables.get(k) is not None:
            sub[k] = tables[k][among(tables[k]["claim_id"], full_here, text=False)]
    sub["facilities"] = tables.get("facilities")
    f = frame[among(frame["claim_id"], full_here, text=False)] if frame is not None else None
    docs = claim_documents(sub, f, typical_prices=typical)
    # the others' summaries alone (their facility level from the facilities table: the frame
    # gives it to the full documents only)
    rest = claims[among(claims["claim_id"], ids - full_here, text=False)]
    docs.update(summary_documents({"claims": rest, "facilities": tables.get("facilities")}))
    return docs


def _score_row(r: dict, m: dict, doc: dict, content_hash: str | None) -> dict:
    """One scored row as the case store records it (JSON-safe). The claim document is JSON-safe
    as claim_documents makes it (each value already _plain): it is taken as it is."""
    row = _plain(
        {
            "claim_id": str(r["claim_id"]),
            "content_hash": content_hash,
            "model_version": str(r["model_version"]),
            "risk_score": float(r["risk_score"]),
            "expected_overbilled": float(r["expected_overbilled"]),
            "priority": float(r["priority"]),
            "shift_added": r.get("shift_added"),  # the early warning's money in it (batch)
            "band": r["band"],
            "facility_id": m["facility_id"],
            "facility_level": m["facility_level"],
            "month": m["month"],
            "fund_claimed": m["fund_claimed"],
            "person_key": m["person_key"],
            "reasons": list(r.get("reasons") or []),
            "rule_hits": list(r.get("rule_hits") or []),
        }
    )
    row["claim"] = doc
    return row


def write_facility_months(store, tables: dict[str, pd.DataFrame], months: int = 12) -> int:
    """Each facility's last `months` months by features.early_warning (cost per visit, growth
    against its trend and its same-level peers, the warning), upserted into facility_months."""
    from sqlalchemy import delete

    from features.early_warning import warnings_by_month
    from serving.store import FacilityMonth

    claims = tables["claims"]
    if claims.empty:
        return 0
    all_months = sorted(pd.to_datetime(claims["admitted_at"]).dt.strftime("%Y-%m").unique())
    out = pd.concat(warnings_by_month(tables, all_months[-months:]).values(), ignore_index=True)
    rows = facility_month_rows(out)
    with store.session.begin() as s:
        for m in out["month"].unique():
            ids = out.loc[out["month"] == m, "facility_id"].astype(str).tolist()
            s.execute(
                delete(FacilityMonth).where(
                    FacilityMonth.month == str(m), FacilityMonth.facility_id.in_(ids)
                )
            )
        s.add_all(rows)
    return len(rows)


def facility_month_rows(warnings: pd.DataFrame) -> list:
    """facility_months rows of early-warning tables (features.early_warning, one or more months):
    each month's same-level median cost per visit beside each facility's."""
    from serving.store import FacilityMonth, now

    out = warnings.copy()
    out["peer_cost_per_visit"] = out.groupby(["month", "facility_level"])[
        "cost_per_visit"
    ].transform("median")
    return [
        FacilityMonth(
            facility_id=str(r["facility_id"]),
            month=str(r["month"]),
            facility_level=_plain(r["facility_level"]),
            facility_name=_plain(r["facility_name"]),
            claims=int(r["claims"]),
            cost_per_visit=_plain(r["cost_per_visit"]),
            peer_cost_per_visit=_plain(r["peer_cost_per_visit"]),
            growth_vs_trend=_plain(r["growth_vs_trend"]),
            peer_growth_median=_plain(r["peer_growth_median"]),
            growth_excess=_plain(r["growth_excess"]),
            robust_z=_plain(r["robust_z"]),
            warning=bool(r["warning"]),
            updated_at=now(),
            change=_plain(r["change"]),
            mix_effect=_plain(r["mix_effect"]),
            price_effect=_plain(r["price_effect"]),
            volume_effect=_plain(r["volume_effect"]),
            shift_z=_plain(r["z"]),
            evidence=(str(r["evidence"])[:1000] or None),
        )
        for r in out.to_dict("records")
    ]
