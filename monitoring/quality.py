"""Data quality of a month: the records ingest refused (the dataset's rejections.parquet), per
facility and per field, against the claims it kept.

Only the facility (MA_CSKCB) and the admission date (NGAY_VAO) are read from a refused record;
its values (names, card numbers) never reach the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

UNKNOWN = "?"


def _claim_keys(rejections: pd.DataFrame) -> pd.DataFrame:
    """claim_id -> facility_id, month of the refused claims (from their XML1 records)."""
    own = rejections[rejections["table"] == "claims"]
    rows = {}
    for claim_id, doc in zip(own["claim_id"], own["record_json"], strict=True):
        try:
            rec = json.loads(doc) if isinstance(doc, str) else {}
        except ValueError:
            rec = {}
        day = str(rec.get("NGAY_VAO") or "")
        month = f"{day[:4]}-{day[4:6]}" if len(day) >= 6 and day[:6].isdigit() else UNKNOWN
        rows[str(claim_id)] = (str(rec.get("MA_CSKCB") or UNKNOWN), month)
    return pd.DataFrame(
        [(k, f, m) for k, (f, m) in rows.items()], columns=["claim_id", "facility_id", "month"]
    )


def load_rejections(dataset: Path) -> pd.DataFrame:
    p = Path(dataset) / "rejections.parquet"
    cols = ["claim_id", "table", "field", "error", "record_json"]
    if not p.exists():
        return pd.DataFrame(columns=cols)
    return pd.read_parquet(p, columns=cols)


def data_quality(
    rejections: pd.DataFrame,
    kept: pd.DataFrame,
    month: str,
    facility_rate: float,
    facility_min_claims: int,
) -> dict:
    """Rejections of the claims admitted in `month` (kept: the kept claims of the month, with
    facility_id). Refused records whose admission date could not be read are counted apart
    (`undated_rejected_claims`): they belong to no month."""
    keys = _claim_keys(rejections)
    undated = int((keys["month"] == UNKNOWN).sum())
    keys = keys[keys["month"] == month]
    kept_by = kept.groupby("facility_id").size()
    rej_by = keys.groupby("facility_id").size()
    fac = pd.DataFrame({"kept": kept_by, "rejected": rej_by}).fillna(0).astype("int64")
    fac["claims"] = fac["kept"] + fac["rejected"]
    fac["rate"] = fac["rejected"] / fac["claims"].where(fac["claims"] > 0)
    fac = fac[fac["rejected"] > 0].sort_values(["rate", "rejected"], ascending=False)
    fac["over"] = (fac["rate"] > facility_rate) & (fac["claims"] >= facility_min_claims)
    ids = set(keys["claim_id"])
    mine = rejections[rejections["claim_id"].astype(str).isin(ids)]
    fields = (
        mine[mine["field"].astype(str) != ""]
        .groupby(["table", "field"])["claim_id"]
        .nunique()
        .rename("claims")
        .reset_index()
        .sort_values("claims", ascending=False)
    )
    n_rej, n_kept = len(ids), len(kept)
    total = n_rej + n_kept
    return {
        "claims": total,
        "kept_claims": n_kept,
        "rejected_claims": n_rej,
        "rejection_rate": n_rej / total if total else 0.0,
        "undated_rejected_claims": undated,
        "by_facility": [
            {"facility_id": str(k), **{c: _py(v) for c, v in r.items()}} for k, r in fac.iterrows()
        ],
        "by_field": [{k: _py(v) for k, v in r.items()} for r in fields.to_dict("records")],
    }


def _py(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v
