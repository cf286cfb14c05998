"""Fitting the scoring bundle: a calibrated LightGBM risk model, an overbilled-share model, and an
Isolation Forest over the peer deviations, blended into one money-ordered priority."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.isotonic import IsotonicRegression

from scoring.bundle import ModelBundle
from scoring.ranking import LANE_FEATURES, lane_priority, lane_score, quantile_ref
from scoring.scorer import predict
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
    params: dict,
    rounds: int,
    stop: int,
    x: np.ndarray,
    y: np.ndarray,
    xv,
    yv,
    cat_idx,
    w: np.ndarray | None = None,
    wv: np.ndarray | None = None,
) -> lgb.Booster:
    train = lgb.Dataset(x, y, weight=w, categorical_feature=cat_idx or "auto", free_raw_data=False)
    valid = []
    callbacks = []
    if (
        xv is not None
        and len(yv)
        and len(np.unique(yv)) > (1 if params["objective"] == "binary" else 0)
    ):
        valid = [lgb.Dataset(xv, yv, weight=wv, reference=train)]
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
        rule_weight=cfg.priority.rule_weight,
        novelty=cfg.priority.novelty,
        novelty_from=cfg.priority.novelty_from,
        novelty_z=cfg.priority.novelty_z,
    )
    from features.registry import categorical_names

    coded = set(categorical_names())
    cat_idx = [i for i, n in enumerate(feature_names) if n in cats or n in coded]
    wp = cfg.weights
    val_start = (
        val_all["discharged_at"].min() if len(val_all) else population["discharged_at"].max()
    )
    tr, w = _with_unlabelled(train, population, population["discharged_at"] < val_start, cfg)
    va, wv = _with_unlabelled(val, val_all, val_all["discharged_at"] >= val_start, cfg)
    x, xv = bundle.matrix(tr), bundle.matrix(va)
    y, yv = (
        tr["label"].fillna(0).astype(int).to_numpy(),
        va["label"].fillna(0).astype(int).to_numpy(),
    )
    params = cfg.risk.lgb_params("binary", cfg.seed)
    if wp.pos_weight != 1.0:
        params["scale_pos_weight"] = wp.pos_weight
    if wp.monotone_increasing:
        up = set(wp.monotone_increasing)
        params["monotone_constraints"] = [1 if n in up else 0 for n in feature_names]
        params["monotone_constraints_method"] = "advanced"
    bundle.risk = _fit_booster(
        params,
        cfg.risk.n_estimators,
        cfg.risk.early_stopping_rounds,
        x,
        y,
        xv,
        yv,
        cat_idx,
        w,
        wv,
    )
    # Isotonic calibration on the validation months (the training months would be optimistic),
    # weighted as in training: with unreviewed claims as weak negatives the probability is closer
    # to one of abuse among all claims, not among reviewed ones.
    raw_v = bundle.risk.predict(xv) if len(xv) else np.array([])
    if len(np.unique(yv)) == 2:
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(raw_v, yv, sample_weight=wv)
        bundle.calibration = (iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist())
    # Overbilled share of the claimed amount, learned on abusive claims.
    pos = pd.concat([train, val])
    pos = pos[(pos["label"] == 1) & (pos["fund_claimed"] > 0)]
    share = (pos["rejected_amount"].fillna(0) / pos["fund_claimed"]).clip(0, 1)
    bundle.amount_ratio = float(share.median()) if len(share) else 0.3
    if len(pos) >= 50:
        pos_train = pos["claim_id"].isin(train["claim_id"]).to_numpy()
        xs, ys = bundle.matrix(pos), share.to_numpy()
        a_params = cfg.amount.lgb_params("regression", cfg.seed)
        if "monotone_constraints" in params:  # the amount at stake rises with the same deviations
            a_params["monotone_constraints"] = params["monotone_constraints"]
            a_params["monotone_constraints_method"] = "advanced"
        bundle.amount = _fit_booster(
            a_params,
            cfg.amount.n_estimators,
            cfg.amount.early_stopping_rounds,
            xs[pos_train],
            ys[pos_train],
            xs[~pos_train],
            ys[~pos_train],
            cat_idx,
        )
    # Peer/anomaly component: unsupervised, on every claim before the cutoff.
    anomaly_features = [n for n in anomaly_features if n not in set(cfg.anomaly.drop_features)] + [
        n
        for n in cfg.anomaly.extra_features
        if n in population.columns and n not in anomaly_features
    ]
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
    # Novelty lane: references of the peer deviations, the lane score and the money priority
    # among all claims of the validation months (the lane's share then applies to any batch).
    ref_frame = val_all if len(val_all) else pd.concat([train, val])
    pr = predict(bundle, ref_frame)["priority"].to_numpy()  # the lane is still off
    fit_lane(bundle, ref_frame, cfg.priority.lane_features or list(LANE_FEATURES), pr)
    bundle.lane_share = cfg.priority.lane_share
    if bundle.lane_share > 0:
        pr = np.maximum(pr, lane_priority(bundle, ref_frame))
    # Bands: cut-offs of the priority among all claims of the validation months.
    bundle.band_thresholds = {
        "high": float(np.percentile(pr, 100 - cfg.band_high_pct)),
        "review": float(np.percentile(pr, 100 - cfg.band_review_pct)),
        "watch": float(np.percentile(pr, 100 - cfg.band_watch_pct)),
    }
    return bundle


def fit_lane(
    bundle: ModelBundle, frame: pd.DataFrame, features: list[str], money: np.ndarray
) -> None:
    """The novelty lane's references on `frame`: quantiles of each robust peer z, of the lane
    score, and of `money`, the priority of the same claims without the lane."""
    bundle.lane_features = [n for n in features if n in frame.columns]
    bundle.lane_refs = {
        n: quantile_ref(pd.to_numeric(frame[n], errors="coerce").to_numpy(dtype="float64"))
        for n in bundle.lane_features
    }
    bundle.lane_ref = quantile_ref(lane_score(bundle, frame))
    bundle.lane_money = quantile_ref(money)


def _with_unlabelled(
    labelled: pd.DataFrame, pool: pd.DataFrame, months: pd.Series, cfg: TrainConfig
) -> tuple[pd.DataFrame, np.ndarray]:
    """Labelled claims (weight 1) plus, when `weights.unlabelled_weight` > 0, the claims of the
    same months nobody had reviewed by the cutoff as negatives of that weight (PU learning),
    sampled down to `unlabelled_max_rows` with the weight scaled to keep their total."""
    wp = cfg.weights
    w = np.ones(len(labelled))
    if wp.unlabelled_weight <= 0 or pool.empty:
        return labelled, w
    un = pool[months.to_numpy() & ~pool["claim_id"].isin(labelled["claim_id"]).to_numpy()]
    scale = 1.0
    if len(un) > wp.unlabelled_max_rows:
        scale = len(un) / wp.unlabelled_max_rows
        un = un.sample(wp.unlabelled_max_rows, random_state=cfg.seed)
    un = un.assign(label=0.0)
    out = pd.concat([labelled, un], ignore_index=True)
    return out, np.r_[w, np.full(len(un), wp.unlabelled_weight * scale)]
