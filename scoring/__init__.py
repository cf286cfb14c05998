"""scoring: the model bundle, predict, the review queue's order (money at stake), bands, TreeSHAP
reasons in Vietnamese and English, and the registry names. What training produces and serving
consumes; depends on features/ and contract/ only.

The names below load on first use (PEP 562): `import scoring.ranking` (the review app, the
outcomes pages) does not pay for LightGBM, MLflow and scikit-learn, ~3 s of a process start."""

from __future__ import annotations

import importlib

_WHERE = {
    "ModelBundle": "scoring.bundle",
    "anomaly_percentile": "scoring.bundle",
    "calibrate": "scoring.bundle",
    "contributions": "scoring.bundle",
    "EXPERIMENT": "scoring.registry",
    "MODEL_NAME": "scoring.registry",
    "BANDS": "scoring.scorer",
    "band_of": "scoring.scorer",
    "predict": "scoring.scorer",
    "score": "scoring.scorer",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'scoring' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
