"""Optional tuning (`claimradar train --tune N`): Optuna over time-based folds, each trial logged
as a nested MLflow run; the best parameters are written to a config file that training then uses."""

from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import optuna
import pandas as pd

from training import tracking
from training.config import load_config
from training.data import attach_targets, load_truth, time_split
from training.evaluate import ranking_metrics


def _folds(frame: pd.DataFrame, cutoff: pd.Timestamp, n: int = 3) -> list[tuple]:
    """Expanding-window folds inside the training period: train on months before m, test on m."""
    lab = frame[frame["label"].notna() & (frame["decided_at"] < cutoff)]
    months = sorted(lab["discharged_at"].dt.to_period("M").unique())
    out = []
    for m in months[-n:]:
        start = m.to_timestamp()
        tr = lab[(lab["discharged_at"] < start) & (lab["decided_at"] < start)]
        te = lab[lab["discharged_at"].dt.to_period("M") == m]
        if tr["label"].nunique() == 2 and te["label"].nunique() == 2:
            out.append((tr, te))
    return out


def tune(
    dataset: Path,
    *,
    cutoff: str | None,
    trials: int,
    config: Path | None,
    tracking_uri: str,
    artifact_root: Path,
) -> Path:
    from contract.ingest import load_dataset
    from features.registry import feature_names
    from scoring.bundle import ModelBundle
    from training.models import categories_of
    from training.train import feature_frame

    cfg = load_config(config)
    tables = load_dataset(Path(dataset))
    frame = feature_frame(Path(dataset), tables=tables)
    frame = attach_targets(frame, tables.get("labels"), load_truth(dataset))
    split = time_split(frame, cutoff, cfg.val_months, cfg.holdout_months)
    names = [n for n in feature_names() if n in frame.columns]
    folds = _folds(frame, split.val_start)
    if not folds:
        raise ValueError("not enough labelled months before the cutoff for time-based folds")
    shell = ModelBundle(None, names, categories_of(frame, names), ([], []))  # type: ignore[arg-type]
    tracking.connect(tracking_uri, artifact_root)

    def objective(trial: optuna.Trial) -> float:
        params = cfg.risk.lgb_params("binary", cfg.seed)
        params.update(
            num_leaves=trial.suggest_int("num_leaves", 7, 31),
            max_depth=trial.suggest_int("max_depth", 3, 6),
            learning_rate=trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            min_child_samples=trial.suggest_int("min_child_samples", 10, 100),
            colsample_bytree=trial.suggest_float("colsample_bytree", 0.5, 1.0),
        )
        scores = []
        for tr, te in folds:
            b = lgb.train(params, lgb.Dataset(shell.matrix(tr), tr["label"].astype(int)), 200)
            p = b.predict(shell.matrix(te)) * te["fund_claimed"].to_numpy()
            m = ranking_metrics(p, te["label"].astype(int), te["rejected_amount"].fillna(0))
            scores.append(m["amount_top5pct"])
        value = float(np.nanmean(scores))
        with mlflow.start_run(run_name=f"trial {trial.number}", nested=True):
            mlflow.log_params(trial.params)
            mlflow.log_metric("cv_amount_top5pct", value)
        return value

    with mlflow.start_run(run_name="tune"):
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=cfg.seed)
        )
        study.optimize(objective, n_trials=trials)
        mlflow.log_params({f"best.{k}": v for k, v in study.best_params.items()})
        mlflow.log_metric("best_cv_amount_top5pct", study.best_value)
    base = tomllib.loads((config or _default()).read_text()) if (config or _default()) else {}
    base.setdefault("risk", {}).update(study.best_params)
    out = Path(tempfile.mkdtemp()) / "tuned.toml"
    out.write_text(_toml(base))
    return out


def _default() -> Path:
    from training.config import DEFAULT_CONFIG

    return DEFAULT_CONFIG


def _toml(doc: dict) -> str:
    lines, tables = [], []
    for k, v in doc.items():
        (tables if isinstance(v, dict) else lines).append((k, v))
    out = [f"{k} = {_val(v)}" for k, v in lines]
    for name, t in tables:
        out += ["", f"[{name}]"] + [f"{k} = {_val(v)}" for k, v in t.items()]
    return "\n".join(out) + "\n"


def _val(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return repr(v)
