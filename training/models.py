"""Fitting the scoring bundle from small fitters: a calibrated LightGBM risk model, an
overbilled-share model, an Isolation Forest over the peer deviations, the ranking weights and the
band cut-offs."""

from __future__ import annotations

from dataclasses import replace

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.isotonic import IsotonicRegression

from scoring.bundle import ModelBundle
from scoring.ranking import proven_amount, proven_of, term_money
from scoring.scorer import predict
from training.config import TrainConfig
from training.queue_fit import QueueFit, fit_queue


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
    population: unlabelled claims too, before the cutoff (the anomaly model's reference).
    The bundle is assembled from small fitters: risk (with its calibration), amount, anomaly,
    then the ranking weights and the bands on the validation months."""
    cats = categories_of(pd.concat([train, val]), feature_names)
    coder = ModelBundle(
        risk=None, feature_names=feature_names, categories=cats, calibration=([], [])
    )
    cat_idx = categorical_index(feature_names, cats)
    risk, calibration, monotone = fit_risk(coder, train, val, val_all, population, cat_idx, cfg)
    amount, ratio = fit_amount(coder, train, val, cat_idx, monotone, cfg)
    anomaly = fit_anomaly(population, anomaly_features, cfg)
    bundle = ModelBundle(
        risk=risk,
        feature_names=feature_names,
        categories=cats,
        calibration=calibration,
        amount=amount,
        amount_ratio=ratio,
        rank_weights={},
        novelty_from=cfg.priority.novelty_from,
        **anomaly,
    )
    reference = val_all if len(val_all) else pd.concat([train, val])
    fit_queue_order(bundle, val if len(val_all) else reference, reference, cfg)
    return bundle


def categorical_index(feature_names: list[str], cats: dict[str, list]) -> list[int]:
    from features.registry import categorical_names

    coded = set(categorical_names())
    return [i for i, n in enumerate(feature_names) if n in cats or n in coded]


def fit_risk(
    coder: ModelBundle,
    train: pd.DataFrame,
    val: pd.DataFrame,
    val_all: pd.DataFrame,
    population: pd.DataFrame,
    cat_idx: list[int],
    cfg: TrainConfig,
) -> tuple[lgb.Booster, tuple[list[float], list[float]], list[int] | None]:
    """The calibrated risk model: LightGBM on the labelled claims (plus unreviewed ones as weak
    negatives when configured), isotonic calibration on the validation months."""
    wp = cfg.weights
    val_start = (
        val_all["discharged_at"].min() if len(val_all) else population["discharged_at"].max()
    )
    tr, w = _with_unlabelled(train, population, population["discharged_at"] < val_start, cfg)
    va, wv = _with_unlabelled(val, val_all, val_all["discharged_at"] >= val_start, cfg)
    x, xv = coder.matrix(tr), coder.matrix(va)
    y = tr["label"].fillna(0).astype(int).to_numpy()
    yv = va["label"].fillna(0).astype(int).to_numpy()
    params = cfg.risk.lgb_params("binary", cfg.seed)
    if wp.pos_weight != 1.0:
        params["scale_pos_weight"] = wp.pos_weight
    monotone = None
    if wp.monotone_increasing:
        up = set(wp.monotone_increasing)
        monotone = [1 if n in up else 0 for n in coder.feature_names]
        params["monotone_constraints"] = monotone
        params["monotone_constraints_method"] = "advanced"
    r = cfg.risk
    risk = _fit_booster(
        params, r.n_estimators, r.early_stopping_rounds, x, y, xv, yv, cat_idx, w, wv
    )
    # Isotonic calibration on the validation months (the training months would be optimistic),
    # weighted as in training: with unreviewed claims as weak negatives the probability is closer
    # to one of abuse among all claims, not among reviewed ones.
    calibration: tuple[list[float], list[float]] = ([], [])
    if len(np.unique(yv)) == 2:
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(risk.predict(xv), yv, sample_weight=wv)
        calibration = (iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist())
    return risk, calibration, monotone


def fit_amount(
    coder: ModelBundle,
    train: pd.DataFrame,
    val: pd.DataFrame,
    cat_idx: list[int],
    monotone: list[int] | None,
    cfg: TrainConfig,
) -> tuple[lgb.Booster | None, float]:
    """The overbilled share of the claimed amount, learned on abusive claims (the median share
    as the fallback)."""
    pos = pd.concat([train, val])
    pos = pos[(pos["label"] == 1) & (pos["fund_claimed"] > 0)]
    share = (pos["rejected_amount"].fillna(0) / pos["fund_claimed"]).clip(0, 1)
    ratio = float(share.median()) if len(share) else 0.3
    if len(pos) < 50:
        return None, ratio
    pos_train = pos["claim_id"].isin(train["claim_id"]).to_numpy()
    xs, ys = coder.matrix(pos), share.to_numpy()
    params = cfg.amount.lgb_params("regression", cfg.seed)
    if monotone is not None:  # the amount at stake rises with the same deviations
        params["monotone_constraints"] = monotone
        params["monotone_constraints_method"] = "advanced"
    a = cfg.amount
    booster = _fit_booster(
        params, a.n_estimators, a.early_stopping_rounds,
        xs[pos_train], ys[pos_train], xs[~pos_train], ys[~pos_train], cat_idx,
    )  # fmt: skip
    return booster, ratio


def fit_anomaly(population: pd.DataFrame, features: list[str], cfg: TrainConfig) -> dict:
    """The peer/anomaly component: an Isolation Forest on every claim before the cutoff, with its
    reference scores (for percentiles). Returns the bundle fields it fills."""
    drop = set(cfg.anomaly.drop_features)
    names = [n for n in features if n not in drop]
    names += [n for n in cfg.anomaly.extra_features if n in population.columns and n not in names]
    if not names:
        return {}
    a = population[names].apply(pd.to_numeric, errors="coerce")
    fill = a.median().fillna(0.0)
    a = a.fillna(fill).to_numpy(dtype="float64")
    forest = IsolationForest(
        n_estimators=cfg.anomaly.n_estimators,
        max_samples=min(cfg.anomaly.max_samples, len(a)),
        random_state=cfg.seed,
        n_jobs=1,
    ).fit(a)
    ref = np.sort(-forest.score_samples(a))
    return {
        "anomaly": forest,
        "anomaly_features": names,
        "anomaly_fill": {k: float(v) for k, v in fill.items()},
        "anomaly_reference": ref[:: max(1, len(ref) // 5000)].tolist(),
    }


def fit_queue_order(
    bundle: ModelBundle, labelled: pd.DataFrame, reference: pd.DataFrame, cfg: TrainConfig
) -> QueueFit:
    """The queue's order on the validation months (training.queue_fit): the rules and novelty
    weights their labels choose, the head cut and the band cut-offs, set on the bundle.
    labelled: the claims of those months whose label was known by the cutoff; reference: every
    claim of those months."""
    s = predict(replace(bundle, rank_weights={}), reference)
    claimed = pd.to_numeric(reference["fund_claimed"], errors="coerce").fillna(0.0).to_numpy()
    terms = term_money(bundle, reference, s["anomaly"].to_numpy(), claimed)
    lab = labelled.drop_duplicates("claim_id").set_index("claim_id")
    label = reference["claim_id"].map(lab["label"]).astype("float64").fillna(0.0).to_numpy()
    rejected = reference["claim_id"].map(lab["rejected_amount"]).astype("float64").fillna(0.0)
    positive = label > 0
    p = cfg.priority
    bundle.head_rules = tuple(p.head_rules)
    fit = fit_queue(
        s["expected_overbilled"].to_numpy(), terms, claimed,
        np.where(positive, rejected.to_numpy(), 0.0), positive,
        fixed=p.fixed_weights(), head_pct=p.head_pct, high_pct=cfg.band_high_pct,
        review_pct=cfg.band_review_pct, watch_pct=cfg.band_watch_pct,
        grid={"rules": p.rules_grid, "novelty": p.novelty_grid}, min_gain=p.min_gain,
        keep=p.keep, risk=s["risk_score"].to_numpy(), head_risk_pct=p.head_risk_pct,
        proven=proven_of(bundle, reference),
        proven_amount=proven_amount(bundle, reference, claimed),
    )  # fmt: skip
    bundle.rank_weights = fit.weights
    bundle.head_expected = fit.head_expected
    bundle.head_risk = fit.head_risk
    bundle.band_thresholds = fit.thresholds
    bundle.meta["queue_fit"] = fit.table
    return fit


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
