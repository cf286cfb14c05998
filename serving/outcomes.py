"""What the review found, from the case store: per month, band, facility, rule and reason, the
cases opened and decided, the hit rate (the share of decided cases with money rejected), the
money rejected against the expected overbilled amount, the time to a decision, and each
officer's throughput.

Beside the realised hit rate stands the expected one: the mean calibrated probability of the
cases (performance estimation without labels, as NannyML's CBPE does). For a month whose cases
are not decided yet it is the only estimate; once decisions arrive the two can be compared
(`expected_hit_rate_decided` is the expectation over the decided cases alone).

A case's month is its claim's admission month (`scored_claims.month`, else the month it was
opened); its decision is its latest final decision (pending and returned ones do not count);
the decision's time is the approval when one was needed.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from scoring.ranking import queue_order
from serving.store import Case, Decision, ScoredClaim, Store, User

LOCAL = timedelta(hours=7)  # the store keeps UTC; months of decisions are local (UTC+7)
DIMENSIONS = ("month", "band", "facility_id", "rule", "reason")
NONE = "none"


def case_rows(store: Store) -> pd.DataFrame:
    """One row per case with its scores and its final decision (if any)."""
    with store.session() as s:
        cases = s.execute(
            select(
                Case.id.label("case_id"),
                Case.status,
                Case.opened_at,
                ScoredClaim.month,
                ScoredClaim.band,
                ScoredClaim.facility_id,
                ScoredClaim.risk_score,
                ScoredClaim.expected_overbilled,
                ScoredClaim.fund_claimed,
                ScoredClaim.rule_codes,
                ScoredClaim.reason_features,
                ScoredClaim.model_version,
            ).join(ScoredClaim, Case.scored_claim_id == ScoredClaim.id)
        ).all()
        decisions = s.execute(
            select(
                Decision.id,
                Decision.case_id,
                Decision.outcome,
                Decision.amount_rejected,
                Decision.reason_code,
                Decision.decided_at,
                Decision.approved_at,
                User.username.label("officer"),
            )
            .join(User, Decision.officer_id == User.id)
            .join(Case, Decision.case_id == Case.id)
            .where(Decision.status == "final")
            # a decision on an earlier version of a resubmitted claim no longer decides its case
            .where(func.coalesce(Decision.claim_version, 1) == func.coalesce(Case.claim_version, 1))
            .order_by(Decision.id)
        ).all()
    df = pd.DataFrame(cases, columns=list(_CASE_COLUMNS))
    dec = pd.DataFrame(decisions, columns=list(_DECISION_COLUMNS))
    dec = dec.drop_duplicates("case_id", keep="last").drop(columns="id")
    df = df.merge(dec, on="case_id", how="left")
    opened = _times(df["opened_at"])
    df["month"] = df["month"].fillna((opened + LOCAL).dt.strftime("%Y-%m"))
    df["decided"] = df["outcome"].notna()
    when = _times(df["approved_at"]).fillna(_times(df["decided_at"]))
    df["decided_at"] = when
    df["decided_month"] = (when + LOCAL).dt.strftime("%Y-%m").where(df["decided"])
    df["amount_rejected"] = df["amount_rejected"].astype("float64").where(df["decided"])
    df["hit"] = df["decided"] & (df["outcome"] != "accept") & (df["amount_rejected"] > 0)
    df["days_to_decision"] = (when - opened).dt.total_seconds() / 86400.0
    df["rules"] = [_codes(v) or [NONE] for v in df["rule_codes"]]
    df["reason"] = [(_codes(v) or [NONE])[0] for v in df["reason_features"]]
    df["facility_id"] = df["facility_id"].fillna(NONE)
    for col in ("risk_score", "expected_overbilled", "fund_claimed"):
        df[col] = df[col].astype("float64")
    return df.drop(columns=["rule_codes", "reason_features", "approved_at"])


_CASE_COLUMNS = ("case_id", "status", "opened_at", "month", "band", "facility_id", "risk_score",
                 "expected_overbilled", "fund_claimed", "rule_codes", "reason_features",
                 "model_version")  # fmt: skip
_DECISION_COLUMNS = ("id", "case_id", "outcome", "amount_rejected", "reason_code", "decided_at",
                     "approved_at", "officer")  # fmt: skip


def _times(col: pd.Series) -> pd.Series:
    return pd.to_datetime(col).astype("datetime64[us]")


def _codes(text) -> list[str]:
    """ ",R06,R14," -> ["R06", "R14"] (the store's filterable text, in its order); a missing
    value (None, or NaN once pandas holds the column as text) -> []."""
    return [c for c in text.split(",") if c] if isinstance(text, str) else []


def summarize(rows: pd.DataFrame, by: list[str] | str) -> pd.DataFrame:
    """Outcomes per group of `by` (any of DIMENSIONS; a case with several rules counts once for
    each of them): cases, decided, open, hits, hit_rate (realised), expected_hit_rate (mean
    probability of all the group's cases), expected_hit_rate_decided, money_rejected,
    expected_overbilled (all cases), expected_overbilled_decided, median_days_to_decision."""
    by = [by] if isinstance(by, str) else list(by)
    bad = [b for b in by if b not in DIMENSIONS]
    if bad:
        raise ValueError(f"unknown dimension {bad}; use {', '.join(DIMENSIONS)}")
    df = rows.rename(columns={"rules": "rule"}).explode("rule") if "rule" in by else rows
    cols = [*by, "cases", "decided", "open", "hits", "hit_rate", "expected_hit_rate",
            "expected_hit_rate_decided", "money_rejected", "expected_overbilled",
            "expected_overbilled_decided", "median_days_to_decision"]  # fmt: skip
    if df.empty:
        return pd.DataFrame(columns=cols)
    df = df.assign(
        risk_decided=df["risk_score"].where(df["decided"]),
        expected_decided=df["expected_overbilled"].where(df["decided"], 0.0),
        rejected=df["amount_rejected"].fillna(0.0),
    )
    g = df.groupby(by, dropna=False, sort=True)
    out = g.agg(
        cases=("case_id", "size"),
        decided=("decided", "sum"),
        hits=("hit", "sum"),
        expected_hit_rate=("risk_score", "mean"),
        expected_hit_rate_decided=("risk_decided", "mean"),
        money_rejected=("rejected", "sum"),
        expected_overbilled=("expected_overbilled", "sum"),
        expected_overbilled_decided=("expected_decided", "sum"),
        median_days_to_decision=("days_to_decision", "median"),
    ).reset_index()
    out["decided"] = out["decided"].astype("int64")
    out["hits"] = out["hits"].astype("int64")
    out["open"] = out["cases"] - out["decided"]
    out["hit_rate"] = out["hits"] / out["decided"].where(out["decided"] > 0)
    return out[cols]


def throughput(rows: pd.DataFrame) -> pd.DataFrame:
    """Per officer and month of decision (local time): decisions, hits, hit_rate,
    money_rejected and the median days from opening to decision."""
    d = rows[rows["decided"]]
    cols = ["officer", "decided_month", "decisions", "hits", "hit_rate", "money_rejected",
            "median_days_to_decision"]  # fmt: skip
    if d.empty:
        return pd.DataFrame(columns=cols)
    out = (
        d.groupby(["officer", "decided_month"])
        .agg(
            decisions=("case_id", "size"),
            hits=("hit", "sum"),
            money_rejected=("amount_rejected", "sum"),
            median_days_to_decision=("days_to_decision", "median"),
        )
        .reset_index()
    )
    out["hits"] = out["hits"].astype("int64")
    out["hit_rate"] = out["hits"] / out["decisions"]
    return out[cols]


def outcomes(store: Store, by: list[str] | str) -> pd.DataFrame:
    return summarize(case_rows(store), by)


def records(df: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts (NaN as None), for templates and JSON."""
    out = []
    for r in df.to_dict("records"):
        out.append({k: (None if isinstance(v, float) and not np.isfinite(v) else
                        v.item() if isinstance(v, np.generic) else v)
                    for k, v in r.items()})  # fmt: skip
    return out


def version_scores(store: Store, version: str) -> pd.DataFrame:
    """Every claim a model version scored (batch `--to-store` or the API), its latest version
    only (a claim is its facility and MA_LK): claim_key, claim_id, risk_score,
    expected_overbilled, priority, band."""
    cols = ["claim_key", "claim_id", "risk_score", "expected_overbilled", "priority", "band"]
    with store.session() as s:
        rows = s.execute(
            select(
                ScoredClaim.claim_key,
                ScoredClaim.claim_id,
                ScoredClaim.risk_score,
                ScoredClaim.expected_overbilled,
                ScoredClaim.priority,
                ScoredClaim.band,
                ScoredClaim.claim_version,
            )
            .where(ScoredClaim.model_version == str(version))
            .order_by(ScoredClaim.claim_version)
        ).all()
    df = pd.DataFrame(rows, columns=[*cols, "claim_version"])
    df["claim_key"] = df["claim_key"].fillna(df["claim_id"])
    return df.drop_duplicates("claim_key", keep="last")[cols]


def compare_versions(
    store: Store, champion: str, challenger: str, top_pct: float = 5.0, since=None
) -> dict:
    """Two model versions on the claims both scored (the latest version of each claim, keyed by
    facility and MA_LK): band agreement, and on the cases decided (since `since`, a datetime in
    UTC, when given) the money rejected and the hits each one puts in its top `top_pct`% of its
    queue order (scoring.ranking.queue_order). Decided cases come from the review queue the
    serving model filled, so they favour what it ranked high: read the money in the top k% as
    "of the money the officers found", not of all the money."""
    a, b = version_scores(store, champion), version_scores(store, challenger)
    both = a.merge(b.drop(columns="claim_id"), on="claim_key", suffixes=("_a", "_b"))
    rows = case_rows(store)
    dec = rows[rows["decided"]][["case_id", "decided_at", "amount_rejected", "hit"]]
    with store.session() as s:
        claim_of = dict(s.execute(select(Case.id, Case.claim_key)).all())
    dec = dec.assign(claim_key=dec["case_id"].map(claim_of))
    if since is not None:
        dec = dec[dec["decided_at"] >= pd.Timestamp(since)]
    both = both.merge(dec[["claim_key", "amount_rejected", "hit"]], on="claim_key", how="left")
    n = len(both)
    out = {
        "champion": str(champion),
        "challenger": str(challenger),
        "claims_both": n,
        "top_pct": top_pct,
        "band_agreement": float((both["band_a"] == both["band_b"]).mean()) if n else None,
        "bands": _crosstab(both["band_a"], both["band_b"]) if n else {},
        "decided": int(both["hit"].notna().sum()),
        "money_rejected": float(both["amount_rejected"].fillna(0).sum()),
    }
    k = max(1, int(np.ceil(n * top_pct / 100))) if n else 0
    for side, name in (("a", "champion"), ("b", "challenger")):
        # each version's top in its queue order: the high band first, then money at stake
        order = queue_order(both[f"band_{side}"].to_numpy(), both[f"priority_{side}"].to_numpy())
        top = both.iloc[np.argsort(-order, kind="stable")[:k]] if n else both
        decided = top["hit"].notna()
        money = float(top["amount_rejected"].fillna(0).sum())
        out[name] = {
            "money_in_top": money,
            "money_share_in_top": money / out["money_rejected"] if out["money_rejected"] else None,
            "decided_in_top": int(decided.sum()),
            "hit_rate_in_top": float(top.loc[decided, "hit"].astype(bool).mean())
            if decided.any()
            else None,
            "case_band_share": float(both[f"band_{side}"].isin(("high", "review")).mean())
            if n
            else None,
        }
    return out


def _crosstab(a: pd.Series, b: pd.Series) -> dict[str, dict[str, int]]:
    """{champion's band: {challenger's band: claims}}."""
    t = pd.crosstab(a, b)
    return {str(r): {str(c): int(v) for c, v in row.items()} for r, row in t.iterrows()}
