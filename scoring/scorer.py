"""The scorer: a saved model bundle -> risk scores, expected overbilled amounts, bands and reasons.

One module does the scoring for `claimradar score`, the training evaluation and the API, so what is
evaluated is what is served.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle, anomaly_percentile, calibrate
from scoring.ranking import priority_of
from scoring.reasons import reasons, rule_hits

BANDS = ("high", "review", "watch", "low")
OPEN_BANDS = ("high", "review")  # bands that open a case


def predict(bundle: ModelBundle, frame: pd.DataFrame) -> pd.DataFrame:
    """Scores for a feature frame (one row per claim; needs `claim_id` and `fund_claimed`)."""
    x = bundle.matrix(frame)
    raw = bundle.risk.predict(x, raw_score=False)
    risk = np.clip(calibrate(bundle, raw), 0.0, 1.0)
    claimed = pd.to_numeric(frame["fund_claimed"], errors="coerce").fillna(0.0).to_numpy()
    if bundle.amount is not None:
        share = np.clip(bundle.amount.predict(x), 0.0, 1.0)
    else:
        share = np.full(len(frame), bundle.amount_ratio)
    amount = share * claimed
    expected = risk * amount
    anomaly = anomaly_percentile(bundle, frame)
    priority = priority_of(bundle, frame, expected, anomaly, claimed)
    out = pd.DataFrame(
        {
            "claim_id": frame["claim_id"].to_numpy(),
            "risk_score": risk,
            "expected_overbilled": np.round(expected, 2),
            "estimated_overbilled_if_abusive": np.round(amount, 2),
            "anomaly": anomaly,
            "priority": priority,
        }
    )
    out["band"] = band_of(bundle, priority)
    return out


def band_of(bundle: ModelBundle, priority: np.ndarray) -> np.ndarray:
    t = bundle.band_thresholds
    if not t:
        return np.full(len(priority), "low", dtype=object)
    return np.select(
        [priority >= t["high"], priority >= t["review"], priority >= t["watch"]],
        ["high", "review", "watch"],
        default="low",
    ).astype(object)


def score(
    bundle: ModelBundle,
    frame: pd.DataFrame,
    *,
    model_version: str,
    explain_top_pct: float | None = None,
    explain_bands: tuple[str, ...] = ("high", "review"),
    top_reasons: int = 5,
) -> pd.DataFrame:
    """Scores, ranks, bands, rule hits and reasons for a feature frame: the one scoring path of
    `claimradar score` and the API. Reasons (TreeSHAP, ~200x a prediction) are computed only for
    the claims in `explain_bands`, or for the top `explain_top_pct`% when given."""
    out = predict(bundle, frame)
    out["rank"] = (
        out["priority"].rank(ascending=False, method="first").astype("int64")
        if len(out)
        else pd.Series(dtype="int64")
    )
    if explain_top_pct is not None:
        explain = out["rank"] <= max(1, int(np.ceil(len(out) * explain_top_pct / 100)))
    else:
        explain = out["band"].isin(explain_bands)
    idx = np.flatnonzero(explain.to_numpy())
    texts: list = [[] for _ in range(len(out))]
    for i, r in zip(idx, reasons(bundle, frame.iloc[idx], top_reasons), strict=True):
        texts[i] = r
    out["reasons"] = texts
    out["rule_hits"] = rule_hits(frame)
    out["model_version"] = str(model_version)
    out["scored_at"] = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    return out
