"""Promotion: a challenger becomes champion only by beating it on the same recent holdout."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from scoring.bundle import ModelBundle
from scoring.ranking import queue_order
from scoring.scorer import predict
from training import tracking
from training.data import attach_targets, load_truth, time_split
from training.evaluate import ranking_metrics


@dataclass
class PromotionDecision:
    challenger: int
    champion: int | None
    challenger_score: float | None
    champion_score: float | None
    promoted: bool
    reason: str


def _load(client: MlflowClient, version: int, tmp: Path) -> ModelBundle:
    return ModelBundle.load(tracking.bundle_dir(client, version, tmp / f"v{version}"))


def promote(
    client: MlflowClient,
    version: int | None = None,
    force: bool = False,
    dataset: Path | None = None,
) -> PromotionDecision:
    challenger = version or tracking.version_by_alias(client, "challenger")
    if challenger is None:
        raise ValueError("no challenger: train a model first (claimradar train)")
    champion = tracking.version_by_alias(client, "champion")
    if champion == challenger:
        return PromotionDecision(challenger, champion, None, None, False, "already champion")
    if champion is None or force:
        client.set_registered_model_alias(tracking.MODEL_NAME, "champion", str(challenger))
        why = "forced" if force and champion is not None else "no champion yet"
        return PromotionDecision(challenger, champion, None, None, True, why)
    run = client.get_run(client.get_model_version(tracking.MODEL_NAME, str(challenger)).run_id)
    data = Path(dataset or run.data.params["data.path"])
    with tempfile.TemporaryDirectory() as tmp:
        ch = _load(client, challenger, Path(tmp))
        cp = _load(client, champion, Path(tmp))
        holdout = _holdout(data, ch)
        scores = {}
        for name, b in (("challenger", ch), ("champion", cp)):
            s = predict(b, holdout)
            m = ranking_metrics(
                queue_order(s["band"], s["priority"]),
                holdout["y"].to_numpy(),
                holdout["target_amount"].to_numpy(),
                s["risk_score"].to_numpy(),
            )
            scores[name] = m["amount_top5pct"]
    ok = scores["challenger"] >= scores["champion"]
    if ok:
        client.set_registered_model_alias(tracking.MODEL_NAME, "champion", str(challenger))
    reason = (
        f"holdout amount in top 5%: challenger {scores['challenger']:.4f} vs champion "
        f"{scores['champion']:.4f} on {len(holdout):,} claims"
    )
    return PromotionDecision(
        challenger, champion, scores["challenger"], scores["champion"], ok, reason
    )


def _holdout(dataset: Path, bundle: ModelBundle) -> pd.DataFrame:
    """The challenger's holdout window, rebuilt from the data (both models see the same claims)."""
    from contract.ingest import load_dataset
    from training.train import feature_frame

    tables = load_dataset(dataset)
    frame = feature_frame(dataset, tables=tables)
    frame = attach_targets(frame, tables.get("labels"), load_truth(dataset))
    w = bundle.meta["data_window"]
    cfg = bundle.meta["config"]
    split = time_split(frame, pd.Timestamp(w["cutoff"]), cfg["val_months"], cfg["holdout_months"])
    return split.holdout
