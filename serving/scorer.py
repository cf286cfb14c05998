"""The scorer: a saved model bundle -> risk scores, expected overbilled amounts, bands and reasons.

One module does the scoring for `claimradar score`, the training evaluation and the API, so what is
evaluated is what is served. It depends on `features` (the registry for reason texts), never on
`training`.

A bundle is a folder: ``bundle.json`` (feature list, categories, calibration, bands, metadata),
``risk.txt`` and ``amount.txt`` (LightGBM boosters as text), ``anomaly.joblib`` (the peer/anomaly
model), and optionally ``snapshot/`` (the profile snapshot online scoring joins).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import lightgbm as lgb
import numpy as np
import pandas as pd

BANDS = ("high", "review", "watch", "low")


@dataclass
class ModelBundle:
    risk: lgb.Booster
    feature_names: list[str]
    categories: dict[str, list[Any]]
    calibration: tuple[list[float], list[float]]  # isotonic thresholds: raw score -> probability
    amount: lgb.Booster | None = None
    amount_ratio: float = 0.3  # fallback overbilled share of the claimed amount
    anomaly: Any = None  # sklearn IsolationForest over anomaly_features
    anomaly_features: list[str] = field(default_factory=list)
    anomaly_fill: dict[str, float] = field(default_factory=dict)
    anomaly_reference: list[float] = field(default_factory=list)  # sorted scores, for percentiles
    blend: float = 0.3  # weight of the anomaly (novelty) money in the priority
    rule_weight: float = 0.0  # weight of the rules' amount at stake (0: rules only as features)
    # novelty money: "share" (claimed x amount_ratio), "peer_excess" (claimed share above the peer
    # median cost), both gated by the anomaly percentile; or "peer_money": the largest fund money
    # above the peer median among total, diagnostic and drug cost, gated by its robust peer z
    novelty: str = "share"
    novelty_from: float = 0.9  # anomaly percentile from which novelty money starts
    novelty_z: float = 3.0  # peer_money: robust z from which the money counts (full at 2 x)
    # novelty lane: a share of every top k% reserved for the claims farthest from their peers
    # (the largest percentile over the robust peer z of `lane_features`), whatever their money
    lane_share: float = 0.0
    lane_features: list[str] = field(default_factory=list)
    lane_refs: dict[str, list[float]] = field(default_factory=dict)  # z quantiles per feature
    lane_ref: list[float] = field(default_factory=list)  # lane score quantiles
    lane_money: list[float] = field(default_factory=list)  # money priority quantiles
    band_thresholds: dict[str, float] = field(default_factory=dict)  # priority cut-offs
    meta: dict[str, Any] = field(default_factory=dict)

    # -- persistence -------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.risk.save_model(str(folder / "risk.txt"))
        if self.amount is not None:
            self.amount.save_model(str(folder / "amount.txt"))
        if self.anomaly is not None:
            joblib.dump(self.anomaly, folder / "anomaly.joblib")
        doc = {
            "feature_names": self.feature_names,
            "categories": {k: [_json(v) for v in vals] for k, vals in self.categories.items()},
            "calibration": [list(map(float, c)) for c in self.calibration],
            "amount_ratio": self.amount_ratio,
            "anomaly_features": self.anomaly_features,
            "anomaly_fill": self.anomaly_fill,
            "anomaly_reference": self.anomaly_reference,
            "blend": self.blend,
            "rule_weight": self.rule_weight,
            "novelty": self.novelty,
            "novelty_from": self.novelty_from,
            "novelty_z": self.novelty_z,
            "lane_share": self.lane_share,
            "lane_features": self.lane_features,
            "lane_refs": self.lane_refs,
            "lane_ref": self.lane_ref,
            "lane_money": self.lane_money,
            "band_thresholds": self.band_thresholds,
            "meta": self.meta,
        }
        (folder / "bundle.json").write_text(json.dumps(doc, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: Path) -> ModelBundle:
        folder = Path(folder)
        doc = json.loads((folder / "bundle.json").read_text())
        amount = folder / "amount.txt"
        anomaly = folder / "anomaly.joblib"
        return cls(
            risk=lgb.Booster(model_file=str(folder / "risk.txt")),
            feature_names=doc["feature_names"],
            categories=doc["categories"],
            calibration=tuple(doc["calibration"]),
            amount=lgb.Booster(model_file=str(amount)) if amount.exists() else None,
            amount_ratio=doc["amount_ratio"],
            anomaly=joblib.load(anomaly) if anomaly.exists() else None,
            anomaly_features=doc["anomaly_features"],
            anomaly_fill=doc["anomaly_fill"],
            anomaly_reference=doc["anomaly_reference"],
            blend=doc["blend"],
            rule_weight=doc.get("rule_weight", 0.0),
            novelty=doc.get("novelty", "share"),
            novelty_from=doc.get("novelty_from", 0.9),
            novelty_z=doc.get("novelty_z", 3.0),
            lane_share=doc.get("lane_share", 0.0),
            lane_features=doc.get("lane_features", []),
            lane_refs=doc.get("lane_refs", {}),
            lane_ref=doc.get("lane_ref", []),
            lane_money=doc.get("lane_money", []),
            band_thresholds=doc["band_thresholds"],
            meta=doc["meta"],
        )

    # -- inputs --------------------------------------------------------------------------------
    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's float matrix in its feature order; categories coded as in training."""
        cols = []
        for name in self.feature_names:
            col = frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)
            if name in self.categories:
                levels = self.categories[name]
                codes = pd.Categorical(col.astype("object"), categories=levels).codes
                cols.append(np.where(codes < 0, np.nan, codes).astype("float64"))
            else:
                cols.append(pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64"))
        return np.column_stack(cols) if cols else np.empty((len(frame), 0))


def _json(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def calibrate(bundle: ModelBundle, raw: np.ndarray) -> np.ndarray:
    x, y = bundle.calibration
    return np.interp(raw, x, y) if len(x) else raw


def anomaly_percentile(bundle: ModelBundle, frame: pd.DataFrame) -> np.ndarray:
    """0..1: how unusual the claim is against the training population (1 = most unusual)."""
    if bundle.anomaly is None or not bundle.anomaly_features:
        return np.zeros(len(frame))
    x = frame.reindex(columns=bundle.anomaly_features).apply(pd.to_numeric, errors="coerce")
    x = x.fillna(bundle.anomaly_fill).fillna(0.0).to_numpy(dtype="float64")
    score = -bundle.anomaly.score_samples(x)  # higher = more anomalous
    ref = np.asarray(bundle.anomaly_reference)
    return np.searchsorted(ref, score, side="right") / max(len(ref), 1)


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


def _col(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in frame.columns:
        return None
    return pd.to_numeric(frame[name], errors="coerce").fillna(0.0).to_numpy(dtype="float64")


def priority_of(
    bundle: ModelBundle,
    frame: pd.DataFrame,
    expected: np.ndarray,
    anomaly: np.ndarray,
    claimed: np.ndarray,
) -> np.ndarray:
    """The ranking in money: the larger of the model's expected overbilled amount and the rules'
    amount at stake (weighted), plus novelty money for the most unusual claims; then the novelty
    lane (`lane_priority`), so that a scheme no label has seen still surfaces by how far it sits
    from its peers."""
    base = money_priority(bundle, frame, expected, anomaly, claimed)
    if bundle.lane_share <= 0 or not bundle.lane_ref:
        return base
    return np.maximum(base, lane_priority(bundle, frame))


def money_priority(
    bundle: ModelBundle,
    frame: pd.DataFrame,
    expected: np.ndarray,
    anomaly: np.ndarray,
    claimed: np.ndarray,
) -> np.ndarray:
    """max(expected, rule_weight x rule amount at stake) + blend x novelty money."""
    money = expected
    rule = _col(frame, "rule_amount")
    if bundle.rule_weight > 0 and rule is not None:
        money = np.maximum(money, bundle.rule_weight * np.minimum(rule, claimed))
    cost, peer = _col(frame, "claim_cost"), _col(frame, "peer_median_total_cost")
    if bundle.novelty == "peer_money":
        return money + bundle.blend * peer_money(bundle, frame, claimed)
    if bundle.novelty == "peer_excess" and cost is not None and peer is not None:
        excess = np.clip((cost - peer) / np.maximum(cost, 1.0), 0.0, 1.0)
        at_stake = excess * claimed
    else:
        at_stake = claimed * bundle.amount_ratio
    lo = min(bundle.novelty_from, 0.999)
    gate = np.clip((anomaly - lo) / (1.0 - lo), 0.0, 1.0)
    return money + bundle.blend * gate * at_stake


# Quantile levels of the lane references: coarse below 0.9, fine in the tail the lane uses.
LANE_LEVELS = np.r_[np.linspace(0.0, 0.9, 91)[:-1], np.linspace(0.9, 1.0, 2001)]
LANE_FEATURES = (  # the robust peer z of each line-group cost and volume
    "peer_z_total_cost",
    "peer_z_diag_cost",
    "peer_z_cost_drug",
    "peer_z_n_service_lines",
    "peer_z_stay_days",
    "peer_z_bed_days",
)


def quantile_ref(values: np.ndarray) -> list[float]:
    """Quantiles of `values` at LANE_LEVELS, made strictly increasing (for interpolation)."""
    v = np.asarray(values, dtype="float64")
    v = v[np.isfinite(v)]
    if not len(v):
        return []
    q = np.maximum.accumulate(np.quantile(v, LANE_LEVELS))
    return (q + np.arange(len(q)) * 1e-9 * (1.0 + np.abs(q).max())).tolist()


def _level(ref: list[float], x: np.ndarray) -> np.ndarray:
    """Quantile level (0..1) of x against a reference from `quantile_ref`."""
    return np.interp(x, ref, LANE_LEVELS) if len(ref) else np.zeros(len(x))


def lane_score(bundle: ModelBundle, frame: pd.DataFrame) -> np.ndarray:
    """How far the claim sits from its peers on its most unusual component: the largest quantile
    level, over `lane_features`, of its robust peer z (missing: not unusual)."""
    best = np.zeros(len(frame))
    for name in bundle.lane_features:
        ref, z = bundle.lane_refs.get(name), _col(frame, name)
        if ref and z is not None:
            z = np.where(frame[name].isna().to_numpy(), -np.inf, z)
            best = np.maximum(best, _level(ref, z))
    return best


def lane_priority(bundle: ModelBundle, frame: pd.DataFrame) -> np.ndarray:
    """The lane in money units: the claim ranked f-th from the top of the lane (f the share of the
    reference claims above it) gets the money priority ranked f x (1 - s) / s from the top, so
    every top k% holds about s x k% lane claims and (1 - s) x k% money claims (s = lane_share)."""
    s = min(max(bundle.lane_share, 1e-6), 1.0)
    above = 1.0 - _level(bundle.lane_ref, lane_score(bundle, frame))
    level = np.clip(1.0 - above * (1.0 - s) / s, 0.0, 1.0)
    return np.interp(level, LANE_LEVELS, bundle.lane_money)


PEER_MONEY = (  # value, peer median, robust z
    ("claim_cost", "peer_median_total_cost", "peer_z_total_cost"),
    ("diag_cost", "peer_median_diag_cost", "peer_z_diag_cost"),
    ("cost_drug", "peer_median_cost_drug", "peer_z_cost_drug"),
)


def peer_money(bundle: ModelBundle, frame: pd.DataFrame, claimed: np.ndarray) -> np.ndarray:
    """Fund money above the peers (same diagnosis, visit type, tier), counted only where the claim
    is far out (robust z from `novelty_z`, fully at twice it): the largest over total, diagnostic
    and drug cost. What a scheme no label has seen adds shows here first."""
    cost = _col(frame, "claim_cost")
    if cost is None:
        return np.zeros(len(frame))
    fund_share = np.clip(claimed / np.maximum(cost, 1.0), 0.0, 1.0)
    z0 = max(bundle.novelty_z, 1e-6)
    best = np.zeros(len(frame))
    for value, median, z in PEER_MONEY:
        v, m, zz = _col(frame, value), _col(frame, median), _col(frame, z)
        if v is None or m is None or zz is None:
            continue
        gate = np.clip((zz - z0) / z0, 0.0, 1.0)
        best = np.maximum(best, gate * np.maximum(v - m, 0.0) * fund_share)
    return best


def band_of(bundle: ModelBundle, priority: np.ndarray) -> np.ndarray:
    t = bundle.band_thresholds
    if not t:
        return np.full(len(priority), "low", dtype=object)
    return np.select(
        [priority >= t["high"], priority >= t["review"], priority >= t["watch"]],
        ["high", "review", "watch"],
        default="low",
    ).astype(object)


def contributions(bundle: ModelBundle, frame: pd.DataFrame) -> np.ndarray:
    """TreeSHAP contributions (log-odds) per feature, LightGBM's own pred_contrib; last column is
    the expected value."""
    return bundle.risk.predict(bundle.matrix(frame), pred_contrib=True)


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
    from datetime import UTC, datetime

    from serving.reasons import reasons, rule_hits

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
