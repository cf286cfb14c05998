"""scoring: the model bundle, predict, the review queue's order (money at stake), bands, TreeSHAP
reasons in Vietnamese and English, and the registry names. What training produces and serving
consumes; depends on features/ and contract/ only."""

from scoring.bundle import ModelBundle, anomaly_percentile, calibrate, contributions
from scoring.registry import EXPERIMENT, MODEL_NAME
from scoring.scorer import BANDS, band_of, predict, score

__all__ = [
    "BANDS",
    "EXPERIMENT",
    "MODEL_NAME",
    "ModelBundle",
    "anomaly_percentile",
    "band_of",
    "calibrate",
    "contributions",
    "predict",
    "score",
]
