"""Evaluation plots logged to MLflow: PR curve, amount-capture curve, reliability curve, and the
SHAP beeswarm drawn by the `shap` package from LightGBM's own TreeSHAP values."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve

from scoring.bundle import ModelBundle
from scoring.ranking import queue_order


def pr_curve(y: np.ndarray, score: np.ndarray) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    if 0 < y.sum() < len(y):
        p, r, _ = precision_recall_curve(y, score)
        ax.plot(r, p)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (holdout)")
    return fig


def amount_capture(amount: np.ndarray, priority: np.ndarray) -> plt.Figure:
    order = np.argsort(-priority, kind="stable")
    share = np.cumsum(amount[order]) / max(amount.sum(), 1e-9)
    x = np.arange(1, len(order) + 1) / max(len(order), 1) * 100
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(x, share * 100, label="model")
    ax.plot([0, 100], [0, 100], "--", color="grey", label="random")
    ax.set(
        xlabel="% of claims reviewed",
        ylabel="% of overbilled money found",
        xlim=(0, 30),
        title="Amount capture (holdout)",
    )
    ax.legend()
    return fig


def reliability(y: np.ndarray, risk: np.ndarray) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    if 0 < y.sum() < len(y):
        frac, mean = calibration_curve(y, risk, n_bins=10, strategy="quantile")
        ax.plot(mean, frac, "o-")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set(xlabel="predicted risk", ylabel="observed abuse rate", title="Reliability (holdout)")
    return fig


def shap_beeswarm(bundle: ModelBundle, frame: pd.DataFrame, n: int = 2000) -> plt.Figure:
    import shap

    sample = frame.sample(min(n, len(frame)), random_state=0) if len(frame) else frame
    x = bundle.matrix(sample)
    contrib = bundle.risk.predict(x, pred_contrib=True)
    expl = shap.Explanation(
        values=contrib[:, :-1],
        base_values=contrib[:, -1],
        data=x,
        feature_names=bundle.feature_names,
    )
    plt.figure(figsize=(7, 6))
    shap.plots.beeswarm(expl, max_display=15, show=False)
    return plt.gcf()


def all_plots(bundle: ModelBundle, holdout: pd.DataFrame, scored: pd.DataFrame) -> dict:
    y = holdout["y"].to_numpy()
    order = queue_order(scored["band"], scored["priority"])
    out = {
        "pr_curve.png": pr_curve(y, order),
        "amount_capture.png": amount_capture(
            holdout["target_amount"].to_numpy(dtype="float64"), order
        ),
        "reliability.png": reliability(y, scored["risk_score"].to_numpy()),
        "shap_beeswarm.png": shap_beeswarm(bundle, holdout),
    }
    return out
