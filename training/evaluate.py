"""Ranking metrics for a review queue: money found in the top k%, precision in the top k%, AP,
ROC AUC, Brier, and recall in the top k% per scheme or per facility level."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def top_k_mask(priority: np.ndarray, pct: float) -> np.ndarray:
    """The top pct% of claims by priority (ties broken by position, so the result is stable)."""
    n = len(priority)
    k = max(1, math.ceil(n * pct / 100)) if n else 0
    order = np.argsort(-np.asarray(priority, dtype="float64"), kind="stable")
    mask = np.zeros(n, dtype=bool)
    mask[order[:k]] = True
    return mask


def ranking_metrics(
    priority: np.ndarray,
    y: np.ndarray,
    amount: np.ndarray,
    risk: np.ndarray | None = None,
    ks: tuple[float, ...] = (1.0, 5.0),
) -> dict[str, float]:
    """Metrics of one ranking. `y` is 0/1 abuse, `amount` the overbilled money per claim."""
    priority = np.asarray(priority, dtype="float64")
    y = np.asarray(y, dtype="int64")
    amount = np.asarray(amount, dtype="float64")
    out: dict[str, float] = {"claims": float(len(y)), "positives": float(y.sum())}
    total = amount.sum()
    for k in ks:
        top = top_k_mask(priority, k)
        tag = f"{k:g}pct"
        out[f"amount_top{tag}"] = float(amount[top].sum() / total) if total > 0 else float("nan")
        out[f"precision_top{tag}"] = float(y[top].mean()) if top.any() else float("nan")
        out[f"recall_top{tag}"] = float(y[top].sum() / y.sum()) if y.sum() else float("nan")
    both = 0 < y.sum() < len(y)
    out["average_precision"] = float(average_precision_score(y, priority)) if both else float("nan")
    out["roc_auc"] = float(roc_auc_score(y, priority)) if both else float("nan")
    if risk is not None and len(y):
        out["brier"] = float(brier_score_loss(y, np.clip(risk, 0, 1)))
    return out


def recall_by_group(
    priority: np.ndarray, y: np.ndarray, group: pd.Series, pct: float = 5.0
) -> pd.DataFrame:
    """Recall in the top pct% of the whole ranking, for the positives of each group."""
    top = top_k_mask(priority, pct)
    df = pd.DataFrame({"group": group.to_numpy(), "y": np.asarray(y), "top": top})
    pos = df[df["y"] == 1]
    if pos.empty:
        return pd.DataFrame(columns=["group", "positives", "found", "recall"])
    g = pos.groupby("group", observed=True).agg(positives=("y", "size"), found=("top", "sum"))
    g["recall"] = g["found"] / g["positives"]
    return g.reset_index()
