"""Fitting the scoring bundle: a calibrated LightGBM risk model, an overbilled-share model, and an
Isolation Forest over the peer deviations, blended into one money-ordered priority."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.isotonic import IsotonicRegression

from serving.scorer import ModelBundle, predict
from training.config import TrainConfig


def categories_of(frame: pd.DataFrame, names: list[str]) -> dict[str, list]:
    """Levels of the categorical features, fixed at training time (sorted, so order-free)."""
    cats = {}
    for n in names:
        col = frame[n]
        if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object or col.dtype == "str":
            cats[n] = sorted(map(str, col.dropna().astype(str).unique()))
    return cats


def _fit_booster(
    params: dict, rounds: int, stop: int, x: np.ndarray, y: np.ndarray, xv, yv, cat_idx
) -> lgb.Booster:
    train = lgb.Dataset(x, y, categorical_feature=cat_idx or "auto", free_raw_data=False)
    valid = []
    callbacks = []
    if (
        xv is not None
        and len(yv)
        and len(np.unique(yv)) > (1 if params["objective"] == "binary" else 0)
    ):
        valid = [lgb.Dataset(xv, yv, reference=train)]
        callbacks = [lgb.early_stopping(stop, verbose=False)]
    return lgb.train(params, train, num_boost_round=rounds, valid_sets=valid, callbacks=callbacks)


def fit_bundle(
    train: pd.DataFrame,
    val: pd.DataFrame,
    val_all: pd.DataFrame,
    population: pd.DataFrame,
    feature_names: list[str],
    anomaly_features: list[str],
    cfg: TrainConfig,
) -> ModelBundle:
    """train/val: labelled claims; val_all: every claim of the validation months (band cut-offs);
    population: unlabelled claims too, before the cutoff (the anomaly model's reference)."""
    cats = categories_of(pd.concat([train, val]), feature_names)
    bundle = ModelBundle(
        risk=None,  # type: ignore[arg-type]
        feature_names=feature_names,
        categories=cats,
        calibration=([], []),
        blend=cfg.blend,
    )
    from features.registry import categorical_names

    coded = set(categorical_names())
    cat_idx = [i for i, n in enumerate(feature_names) if n in cats or n in coded]
    x, xv = bundle.matrix(train), bundle.matrix(val)
    y, yv = train["label"].astype(int).to_numpy(), val["label"].astype(int).to_numpy()
    bundle.risk = _fit_booster(
        cfg.risk.lgb_params("binary", cfg.seed),
        cfg.risk.n_estimators,
        cfg.risk.early_stopping_rounds,
        x,
        y,
        xv,
        yv,
        cat_idx,
    )
    # Isotonic calibration on the validation months (the training months would be optimistic).
    raw_v = bundle.risk.predict(xv) if len(xv) else np.array([])
    if len(np.unique(yv)) == 2:
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw_v, yv)
        bundle.calibration = (iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist())
    # Overbilled share of the claimed amount, learned on abusive claims.
    pos = pd.concat([train, val])
    pos = pos[(pos["label"] == 1) & (pos["fund_claimed"] > 0)]
    share = (pos["rejected_amount"].fillna(0) / pos["fund_claimed"]).clip(0, 1)
    bundle.amount_ratio = float(share.median()) if len(share) else 0.3
    if len(pos) >= 50:
        pos_train = pos["claim_id"].isin(train["claim_id"]).to_numpy()
        xs, ys = bundle.matrix(pos), share.to_numpy()
        bundle.amount = _fit_booster(
            cfg.amount.lgb_params("regression", cfg.seed),
            cfg.amount.n_estimators,
            cfg.amount.early_stopping_rounds,
            xs[pos_train],
            ys[pos_train],
            xs[~pos_train],
            ys[~pos_train],
            cat_idx,
        )
    # Peer/anomaly component: unsupervised, on every claim before the cutoff.
    if anomaly_features:
        a = population[anomaly_features].apply(pd.to_numeric, errors="coerce")
        fill = a.median().fillna(0.0)
        a = a.fillna(fill).to_numpy(dtype="float64")
        forest = IsolationForest(
            n_estimators=cfg.anomaly.n_estimators,
            max_samples=min(cfg.anomaly.max_samples, len(a)),
            random_state=cfg.seed,
            n_jobs=1,
        ).fit(a)
        bundle.anomaly = forest
        bundle.anomaly_features = anomaly_features
        bundle.anomaly_fill = {k: float(v) for k, v in fill.items()}
        ref = np.sort(-forest.score_samples(a))
        bundle.anomaly_reference = ref[:: max(1, len(ref) // 5000)].tolist()
    # Bands: cut-offs of the priority among all claims of the validation months.
    pr = predict(bundle, val_all if len(val_all) else pd.concat([train, val]))["priority"]
    bundle.band_thresholds = {
        "high": float(np.percentile(pr, 100 - cfg.band_high_pct)),
        "review": float(np.percentile(pr, 100 - cfg.band_review_pct)),
        "watch": float(np.percentile(pr, 100 - cfg.band_watch_pct)),
    }
    return bundle
