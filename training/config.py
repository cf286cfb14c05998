"""Training parameters: a typed config read from a reviewed TOML file (configs/train.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    # Features added to / removed from the default anomaly inputs (training.train.anomaly_features).
    extra_features: list[str] = []
    drop_features: list[str] = []


class WeightParams(BaseModel):
    """How the risk model sees the claims nobody reviewed (PU learning) and the classes."""

    model_config = ConfigDict(extra="forbid")
    # Unreviewed claims of the training months join as negatives with this weight (0: labelled
    # claims only). Most unreviewed claims are honest, so they are weak, cheap negatives that
    # correct the review bias towards expensive claims.
    unlabelled_weight: float = 0.0
    # At most this many unreviewed claims (a random sample, weights scaled up to keep the total).
    unlabelled_max_rows: int = 200_000
    # Weight of labelled positives (LightGBM's scale_pos_weight on top of the sample weights).
    pos_weight: float = 1.0
    # Features the risk can only rise with (LightGBM monotone constraints): money at stake in
    # rules and deviations above peers, so that raising a claim far above its peers never lowers
    # its risk.
    monotone_increasing: list[str] = []


class PriorityParams(BaseModel):
    """The queue's order (scoring.ranking, training.queue_fit): money at stake = min(fund claimed,
    expected overbilled + sum of weight x term money), the head held in the review band. The rules
    and novelty weights are fit on the validation months' labels from their grids; the
    facility-shift and item-evidence weights and the head's share are chosen on randomized worlds
    by the worst world (bench/quality_worlds.py); 0 turns a term or the head off."""

    model_config = ConfigDict(extra="forbid")
    rules_grid: tuple[float, ...] = (0.0,)  # the rules' amount at stake beyond the expected amount
    novelty_grid: tuple[float, ...] = (0.0,)  # money above the peer median, most unusual claims
    facility_shift: float = 0.0  # money above the cell baseline at a facility warned this month
    dose_excess: float = 0.0  # drug cost beyond the usual units per day (fund share)
    rare_items: float = 0.0  # cost in items peers rarely bill for the diagnosis (fund share)
    head_pct: float = 0.0  # the model's own top share (%) in the high band
    head_risk_pct: float = 0.0  # ... and its top share (%) by risk (surest, whatever the amount)
    # ... and the claims these rules prove (features.rules names: the money is not payable
    # whatever the model says, e.g. an exact duplicate, a component billed with its parent)
    head_rules: tuple[str, ...] = ()
    min_gain: float = 0.0  # a fitted term must raise the labelled money in the top 5% this much
    keep: float = Field(0.9, ge=0.0, le=1.0)  # ... and keep this share of the labelled abuse
    # the model order holds there
    novelty_from: float = 0.9  # anomaly percentile from which the novelty term counts

    @field_validator("head_rules")
    @classmethod
    def _known_rules(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from features.rules import PROVING_RULES

        unknown = [n for n in names if n not in PROVING_RULES]
        if unknown:
            raise ValueError(f"unknown rule(s) {unknown}: head rules are among {PROVING_RULES}")
        return names

    def fixed_weights(self) -> dict[str, float]:
        """The weights chosen on randomized worlds, not fit on labels (scoring.ranking.TERMS)."""
        return {
            "facility_shift": self.facility_shift,
            "dose_excess": self.dose_excess,
            "rare_items": self.rare_items,
        }


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    val_months: int = 2
    holdout_months: int = 3
    seed: int = 0
    band_high_pct: float = 1.0
    band_review_pct: float = 5.0
    band_watch_pct: float = 15.0
    risk: TreeParams = TreeParams()
    amount: TreeParams = TreeParams(n_estimators=300, min_child_samples=20)
    anomaly: AnomalyParams = AnomalyParams()
    weights: WeightParams = WeightParams()
    priority: PriorityParams = PriorityParams()


def load_config(path: Path | None = None) -> TrainConfig:
    path = Path(path) if path else DEFAULT_CONFIG
    with path.open("rb") as fh:
        return TrainConfig.model_validate(tomllib.load(fh))
