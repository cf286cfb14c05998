"""Training parameters: a typed config read from a reviewed TOML file (configs/train.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train.toml"


class TreeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    num_leaves: int = 15
    max_depth: int = 4
    learning_rate: float = 0.05
    n_estimators: int = 600
    min_child_samples: int = 40
    subsample: float = 0.8
    subsample_freq: int = 1
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 50

    def lgb_params(self, objective: str, seed: int) -> dict:
        p = self.model_dump(exclude={"early_stopping_rounds", "n_estimators"})
        return {
            **p,
            "objective": objective,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 2,
            "verbosity": -1,
        }


class AnomalyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_estimators: int = 200
    max_samples: int = 4096


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    val_months: int = 2
    holdout_months: int = 3
    seed: int = 0
    blend: float = 0.3
    band_high_pct: float = 1.0
    band_review_pct: float = 5.0
    band_watch_pct: float = 15.0
    risk: TreeParams = TreeParams()
    amount: TreeParams = TreeParams(n_estimators=300, min_child_samples=20)
    anomaly: AnomalyParams = AnomalyParams()


def load_config(path: Path | None = None) -> TrainConfig:
    path = Path(path) if path else DEFAULT_CONFIG
    with path.open("rb") as fh:
        return TrainConfig.model_validate(tomllib.load(fh))
