"""Facility early warning (the quarterly warning letters on rising cost per visit, TT 12/2026
art. 13): facilities whose cost per visit in a month grows abnormally against their own recent
trend, the same month a year before and their peers of the same level, with the evidence.

Growth is measured at constant visit-type mix: the month's cost is compared with what its visits
would have cost at the facility's own cost per visit of each visit type in the three months
before (and a year before), so a facility that merely sees more inpatients is not flagged.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from features import claim_features as cf
from features.engine import Engine

TREND_MONTHS = 3
MIN_CLAIMS = 30  # facilities with fewer claims in the month are listed but never flagged
EXCESS = 0.15  # growth more than 15 points above the level's median growth...
Z = 2.0  # ...and a robust z-score above 2 among all facilities


def _monthly(dataset, engine: str) -> pd.DataFrame:
    from features.pipeline import _inputs

    with Engine.connect(engine) as eng:
        t = _inputs(eng, dataset)
        base = cf.claim_base(t["claims"], t["facilities"])
        g = base.group_by("facility_id", "facility_level", "visit_type", "month").agg(
            n=base.count(), cost=base.total_cost.sum()
        )
        monthly = eng.execute(g)
    monthly["facility_name"] = monthly["facility_id"].map(_names(dataset))
    return monthly


def _names(dataset) -> pd.Series:
    from pathlib import Path

    if isinstance(dataset, dict):
        fac = dataset.get("facilities")
    else:
        p = Path(dataset) / "facilities.parquet"
        fac = pd.read_parquet(p) if p.exists() else None
    if fac is None or "facility_name" not in fac.columns:
        return pd.Series(dtype="str")
    return fac.set_index("facility_id")["facility_name"]


def facility_warnings(dataset, month: str, *, engine: str = "duckdb") -> pd.DataFrame:
    """One row per facility with claims in `month` (YYYY-MM): cost per visit, its growth against
    the trend and a year before (at constant visit-type mix), the peers' growth, the excess and a
    robust z-score; `warning` marks the abnormal ones. Sorted with warnings first."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(month)):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    period = pd.Period(month, freq="M")
    m = period.year * 12 + period.month - 1
    g = _monthly(dataset, engine)
    cur = g[g["month"] == m]
    if cur.empty:
        raise ValueError(f"no claims admitted in {month}")
    trend = g[(g["month"] >= m - TREND_MONTHS) & (g["month"] < m)]
    trend = trend.groupby(["facility_id", "visit_type"])[["n", "cost"]].sum()
    last_year = g[g["month"] == m - 12].groupby(["facility_id", "visit_type"])[["n", "cost"]].sum()

    def expected(ref: pd.DataFrame) -> pd.Series:
        x = cur.join(ref, on=["facility_id", "visit_type"], rsuffix="_ref")
        cpv_ref = x["cost_ref"] / x["n_ref"]
        covered = cpv_ref.notna()
        exp = (x["n"] * cpv_ref).where(covered, 0.0)
        act = x["cost"].where(covered, 0.0)
        by = pd.DataFrame({"facility_id": x["facility_id"], "exp": exp, "act": act})
        s = by.groupby("facility_id")[["exp", "act"]].sum()
        return (s["act"] / s["exp"].replace(0, np.nan)) - 1

    out = cur.groupby("facility_id").agg(
        facility_level=("facility_level", "first"),
        facility_name=("facility_name", "first"),
        claims=("n", "sum"),
        cost=("cost", "sum"),
    )
    out["cost_per_visit"] = out["cost"] / out["claims"]
    tr = trend.groupby(level=0)[["n", "cost"]].sum()
    out["cost_per_visit_trend"] = (tr["cost"] / tr["n"]).reindex(out.index)
    ly = last_year.groupby(level=0)[["n", "cost"]].sum()
    out["cost_per_visit_last_year"] = (ly["cost"] / ly["n"]).reindex(out.index)
    out["growth_vs_trend"] = expected(trend).reindex(out.index)
    out["growth_yoy"] = expected(last_year).reindex(out.index)
    growth = out["growth_vs_trend"]
    out["peer_growth_median"] = growth.groupby(out["facility_level"]).transform("median")
    out["growth_excess"] = growth - out["peer_growth_median"]
    med = growth.median()
    mad = (growth - med).abs().median() * 1.4826
    out["robust_z"] = (growth - med) / max(mad, 0.02) if growth.notna().any() else np.nan
    out["warning"] = (
        (out["claims"] >= MIN_CLAIMS) & (out["growth_excess"] > EXCESS) & (out["robust_z"] > Z)
    ).fillna(False)
    out["month"] = str(period)
    out = out.reset_index().sort_values(
        ["warning", "growth_excess", "facility_id"], ascending=[False, False, True]
    )
    cols = [
        "month", "facility_id", "facility_name", "facility_level", "claims", "cost_per_visit",
        "cost_per_visit_trend", "growth_vs_trend", "cost_per_visit_last_year", "growth_yoy",
        "peer_growth_median", "growth_excess", "robust_z", "warning",
    ]  # fmt: skip
    return out[cols].reset_index(drop=True)
