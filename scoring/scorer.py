"""The scorer: a saved model bundle -> risk scores, expected overbilled amounts, bands and reasons.

One module does the scoring for `claimradar score`, the training evaluation and the API, so what is
evaluated is what is served. The hot path stays lean for the API's small requests: the feature
matrix is built once per call from numpy columns (no per-column pandas conversions) and shared by
the model, the amount model and the reasons; LightGBM predicts small inputs on one thread (its
thread pool costs more than one row); the anomaly model's trees are walked with numpy for small
inputs (sklearn's per-tree loop costs ~100 us a tree), with exactly sklearn's arithmetic.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle, calibrate
from scoring.columns import FloatColumns
from scoring.forest import anomaly_percentile
from scoring.ranking import BANDS as BANDS  # re-exported: the bands, best first
from scoring.ranking import band_of, priority_of, proven_of, queue_order
from scoring.reasons import reasons, reasons_of_rows, rule_hits

OPEN_BANDS = ("high", "review")  # bands that open a case


SMALL = 2_000  # rows up to which LightGBM predicts on one thread


def threads(n: int) -> int:
    """LightGBM's num_threads for n rows: 1 for small inputs, else its default (0)."""
    return 1 if n <= SMALL else 0


def feature_matrix(
    bundle: ModelBundle, frame: pd.DataFrame, cols: FloatColumns | None = None
) -> np.ndarray:
    """`bundle.matrix(frame)` (the same floats), from the frame's numeric blocks; categories and
    text columns go the bundle's way."""
    x = None
    if not bundle.categories:
        x = (cols or FloatColumns(frame)).matrix(bundle.feature_names)
    if x is None:
        x = np.ascontiguousarray(bundle.matrix(frame), dtype="float64")
    return x


def _predict(
    bundle: ModelBundle,
    claim_id: np.ndarray,
    x: np.ndarray,
    cols: FloatColumns,
    frame: pd.DataFrame,
) -> dict[str, np.ndarray]:
    """frame: the rows' columns for what reads them by name (the claimed amount when cols lacks
    it, the ranking terms); x, cols: their floats."""
    nt = threads(len(x))
    raw = bundle.risk.predict(x, raw_score=False, num_threads=nt)
    risk = np.clip(calibrate(bundle, raw), 0.0, 1.0)
    claimed = cols.get("fund_claimed")
    if claimed is None:
        claimed = pd.to_numeric(frame["fund_claimed"], errors="coerce").to_numpy("float64")
    claimed = np.nan_to_num(claimed, nan=0.0, posinf=np.inf, neginf=-np.inf)
    if bundle.amount is not None:
        share = np.clip(bundle.amount.predict(x, num_threads=nt), 0.0, 1.0)
    else:
        share = np.full(len(x), bundle.amount_ratio)
    amount = share * claimed
    expected = risk * amount
    anomaly = anomaly_percentile(bundle, frame, cols)
    priority = priority_of(bundle, frame, expected, anomaly, claimed, cols)
    return {
        "claim_id": claim_id,
        "risk_score": risk,
        "expected_overbilled": np.round(expected, 2),
        "estimated_overbilled_if_abusive": np.round(amount, 2),
        "anomaly": anomaly,
        "priority": priority,
        # as the head was cut: on the rounded amount, with the claims its rules prove
        "band": band_of(
            bundle, priority, np.round(expected, 2), risk, proven_of(bundle, frame, cols)
        ),
    }


def predict(bundle: ModelBundle, frame: pd.DataFrame) -> pd.DataFrame:
    """Scores for a feature frame (one row per claim; needs `claim_id` and `fund_claimed`)."""
    cols = FloatColumns(frame)
    x = feature_matrix(bundle, frame, cols)
    return pd.DataFrame(_predict(bundle, frame["claim_id"].to_numpy(), x, cols, frame))


def score(
    bundle: ModelBundle,
    frame: pd.DataFrame,
    *,
    model_version: str,
    explain_top_pct: float | None = None,
    explain_bands: tuple[str, ...] = ("high", "review"),
    top_reasons: int = 5,
    timings: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Scores, ranks, bands, rule hits and reasons for a feature frame: the one scoring path of
    `claimradar score` and the API. Reasons (TreeSHAP, ~200x a prediction) are computed only for
    the claims in `explain_bands`, or for the top `explain_top_pct`% when given.
    timings: seconds of the "model" and "reasons" stages are added to it."""
    t0 = time.perf_counter()
    cols = FloatColumns(frame)
    x = feature_matrix(bundle, frame, cols)
    out = _predict(bundle, frame["claim_id"].to_numpy(), x, cols, frame)
    explain = _explained(out, explain_top_pct, explain_bands)
    t1 = time.perf_counter()
    idx = np.flatnonzero(explain)

    def explain_them() -> list:
        return reasons(bundle, frame.iloc[idx], top_reasons, x[idx])

    _finish(out, x, idx, explain_them, frame, cols, model_version)
    scored = pd.DataFrame(out, index=pd.RangeIndex(len(x)))
    _timed(timings, t0, t1)
    return scored


def score_rows(
    bundle: ModelBundle,
    rows,
    *,
    model_version: str,
    explain_bands: tuple[str, ...] = ("high", "review"),
    top_reasons: int = 5,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """`score` for feature rows (features.online_state.rows.FeatureRows: ids + a float matrix)
    without building their DataFrame: the same columns as `score`'s frame, as a dict of arrays
    (lists for reasons and rule hits). The model reads the rows' matrix; the ranking terms and
    the rules read a float view of it; the reasons of the claims in `explain_bands` read their
    values from the rows (no DataFrame). A model with category columns takes the frame's way."""
    if bundle.categories:
        frame = rows.frame()
        out = score(bundle, frame, model_version=model_version, explain_bands=explain_bands,
                    top_reasons=top_reasons, timings=timings)  # fmt: skip
        return {c: out[c].to_numpy() for c in out.columns}
    t0 = time.perf_counter()
    extra = {c: np.array(rows.column(c), dtype="float64") for c in _ID_FLOATS}
    cols = FloatColumns.from_matrix(rows.names, rows.matrix(), extra)
    x = cols.matrix(bundle.feature_names)
    if x is None:  # a model feature the rows lack: the frame's way
        cols = FloatColumns(rows.frame())
        x = feature_matrix(bundle, rows.frame(), cols)
    view = cols.frame()  # one float block: ranking terms and rules read columns by name
    out = _predict(bundle, np.array(rows.column("claim_id"), dtype=object), x, cols, view)
    explain = _explained(out, None, explain_bands)
    t1 = time.perf_counter()
    idx = np.flatnonzero(explain)

    def explain_them() -> list:  # their values read from the rows, as their frame holds them
        return reasons_of_rows(bundle, rows, idx, top_reasons, x[idx])

    _finish(out, x, idx, explain_them, view, cols, model_version)
    _timed(timings, t0, t1)
    return out


_ID_FLOATS = ("fund_claimed", "total_cost")


def take_scored(out: dict[str, Any], idx) -> dict[str, Any]:
    """score_rows' answer for the rows at positions `idx` (in that order), as score_rows gives
    it for those rows alone: every claim's scores and reasons are its own; the rank is among
    them."""
    idx = np.asarray(idx, dtype=np.intp)
    got: dict[str, Any] = {}
    for k, v in out.items():
        if isinstance(v, np.ndarray):
            got[k] = v[idx]
        elif isinstance(v, list):
            got[k] = [v[i] for i in idx]
        else:
            got[k] = v
    if "rank" in got:
        got["rank"] = _rank_descending(queue_order(got["band"], got["priority"]))
    return got


def _explained(out: dict, explain_top_pct: float | None, explain_bands) -> np.ndarray:
    out["rank"] = _rank_descending(queue_order(out["band"], out["priority"]))  # the queue's
    if explain_top_pct is not None:
        return out["rank"] <= max(1, int(np.ceil(len(out["rank"]) * explain_top_pct / 100)))
    return np.isin(out["band"], explain_bands)


def _finish(out, x, idx, explain_them, frame, cols, model_version) -> None:
    """Reasons for the rows at idx (explain_them(): theirs, in idx's order), rule hits, stamps."""
    texts: list = [[] for _ in range(len(x))]
    if len(idx):
        for i, r in zip(idx, explain_them(), strict=True):
            texts[i] = r
    out["reasons"] = texts
    out["rule_hits"] = rule_hits(frame, cols)
    out["model_version"] = str(model_version)
    out["scored_at"] = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _timed(timings: dict[str, float] | None, t0: float, t1: float) -> None:
    if timings is not None:
        t2 = time.perf_counter()
        timings["model"] = timings.get("model", 0.0) + (t1 - t0)
        timings["reasons"] = timings.get("reasons", 0.0) + (t2 - t1)


def _rank_descending(priority: np.ndarray) -> np.ndarray:
    """pandas' rank(ascending=False, method="first") as int64: ties in order of appearance."""
    if np.isnan(priority).any():
        return pd.Series(priority).rank(ascending=False, method="first").astype("int64").to_numpy()
    rank = np.empty(len(priority), dtype="int64")
    rank[np.argsort(-priority, kind="stable")] = np.arange(1, len(priority) + 1)
    return rank
