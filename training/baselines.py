"""Baselines trained and evaluated in the same run as the model, on the same splits:
rules only, cost outlier, logistic regression, and LightGBM on raw XML1 columns + line counts."""

from __future__ import annotations

from collections.abc import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# Raw XML1 amounts and counts, as a claims system would have them without any feature work.
RAW_COLUMNS = (
    "total_cost",
    "total_drugs",
    "total_supplies",
    "fund_claimed",
    "patient_copay",
    "patient_self_pay",
    "treatment_days",
    "n_drug_lines",
    "n_service_lines",
    "visit_type_code",
)

Scorer = Callable[[pd.DataFrame], np.ndarray]


def rules_only(train: pd.DataFrame) -> Scorer:
    """Today's practice: rank by the money at stake in deterministic rule hits (the largest
    amount over the rules a claim breaks, capped at the fund amount), then by rules broken."""

    def score(f: pd.DataFrame) -> np.ndarray:
        amount = f["rule_amount"].fillna(0).to_numpy(dtype="float64")
        return amount + f["rule_count"].fillna(0).to_numpy(dtype="float64") * 1e-3

    return score


def cost_outlier(train: pd.DataFrame) -> Scorer:
    """Amount over the median of the same diagnosis x visit type (openIMIS-style selection)."""
    key = ["primary_icd", "visit_type"]
    med = train.groupby(key, observed=True)["total_cost"].median().rename("peer_median")
    overall = float(train["total_cost"].median())

    def score(f: pd.DataFrame) -> np.ndarray:
        m = f[key].join(med, on=key)["peer_median"].fillna(overall).to_numpy()
        return np.maximum(f["total_cost"].to_numpy(dtype="float64") - m, 0.0)

    return score


def _numeric(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    return frame.reindex(columns=cols).apply(pd.to_numeric, errors="coerce").to_numpy("float64")


def logistic(train: pd.DataFrame, features: list[str], seed: int) -> Scorer:
    cols = [c for c in features if pd.api.types.is_numeric_dtype(train[c])]
    x = _numeric(train, cols)
    fill = np.nan_to_num(np.nanmedian(x, axis=0))
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(max_iter=500, class_weight="balanced", random_state=seed),
    ).fit(np.where(np.isnan(x), fill, x), train["label"].astype(int))

    def score(f: pd.DataFrame) -> np.ndarray:
        z = _numeric(f, cols)
        p = model.predict_proba(np.where(np.isnan(z), fill, z))[:, 1]
        return p * f["fund_claimed"].to_numpy(dtype="float64")

    return score


def raw_lightgbm(train: pd.DataFrame, seed: int) -> Scorer:
    cols = [c for c in RAW_COLUMNS if c in train.columns]
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "max_depth": 4,
        "learning_rate": 0.05,
        "seed": seed,
        "deterministic": True,
        "num_threads": 2,
        "verbosity": -1,
    }
    booster = lgb.train(params, lgb.Dataset(_numeric(train, cols), train["label"].astype(int)), 300)

    def score(f: pd.DataFrame) -> np.ndarray:
        return booster.predict(_numeric(f, cols)) * f["fund_claimed"].to_numpy(dtype="float64")

    return score
