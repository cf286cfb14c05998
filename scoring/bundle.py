"""The model bundle: what training saves and scoring loads (boosters, calibration, the anomaly
model, ranking weights, band cut-offs), and the model's raw outputs (probability, TreeSHAP).

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
    # the queue's order (scoring.ranking): weights of the money-denominated evidence terms
    rank_weights: dict[str, float] = field(default_factory=dict)
    novelty_from: float = 0.9  # anomaly percentile from which the novelty term counts
    # the model's own surest money: expected overbilled from which a claim is held in the review
    # band whatever the evidence terms lift above it (scoring.ranking.in_head); None: no head
    head_expected: float | None = None
    # the claims the model is surest are abusive, whatever their amount: risk from which a claim
    # is in the head too (a whole scheme of cheap, certain claims is not pushed out); None: none
    head_risk: float | None = None
    # the claims these rules prove (features.rules names), whatever their amount or risk: in the
    # head too (scoring.ranking.proven_of); empty: none
    head_rules: tuple[str, ...] = ()
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
            "rank_weights": self.rank_weights,
            "novelty_from": self.novelty_from,
            "head_expected": self.head_expected,
            "head_risk": self.head_risk,
            "head_rules": list(self.head_rules),
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
            rank_weights=doc.get("rank_weights", {}),
            novelty_from=doc.get("novelty_from", 0.9),
            head_expected=doc.get("head_expected"),
            head_risk=doc.get("head_risk"),
            head_rules=tuple(doc.get("head_rules", ())),
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


def contributions(bundle: ModelBundle, frame: pd.DataFrame) -> np.ndarray:
    """TreeSHAP contributions (log-odds) per feature, LightGBM's own pred_contrib; last column is
    the expected value."""
    return bundle.risk.predict(bundle.matrix(frame), pred_contrib=True)
