"""MLflow as the record: the tracking store, the registry (`claimradar-abuse`, aliases
`challenger` and `champion`), promotion, and model cards."""

from __future__ import annotations

import os
from pathlib import Path

from mlflow.tracking import MlflowClient

import mlflow

MODEL_NAME = "claimradar-abuse"
EXPERIMENT = "claimradar"
HEADLINE = "holdout_model_amount_top5pct"


def connect(tracking_uri: str, artifact_root: Path) -> MlflowClient:
    """Point MLflow at the store (sqlite by default) and make sure the experiment exists with a
    file artifact root (MLflow 3 would otherwise put artifacts under the working directory)."""
    os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false")
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if client.get_experiment_by_name(EXPERIMENT) is None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        client.create_experiment(EXPERIMENT, artifact_location=artifact_root.resolve().as_uri())
    mlflow.set_experiment(EXPERIMENT)
    return client


def versions(client: MlflowClient) -> list[dict]:
    """Every registered version with its aliases and headline metrics, newest first."""
    try:
        found = client.search_model_versions(f"name='{MODEL_NAME}'")
    except mlflow.exceptions.MlflowException:
        return []
    aliases: dict[str, list[str]] = {}
    try:
        for alias, v in client.get_registered_model(MODEL_NAME).aliases.items():
            aliases.setdefault(str(v), []).append(alias)
    except mlflow.exceptions.MlflowException:
        pass
    out = []
    for mv in sorted(found, key=lambda m: int(m.version), reverse=True):
        run = client.get_run(mv.run_id)
        out.append(
            {
                "version": int(mv.version),
                "aliases": ",".join(sorted(aliases.get(str(mv.version), []))),
                "run_id": mv.run_id,
                "created": mv.creation_timestamp,
                "cutoff": run.data.params.get("window.cutoff", ""),
                "holdout_amount_top5pct": run.data.metrics.get(HEADLINE),
                "holdout_ap": run.data.metrics.get("holdout_model_average_precision"),
            }
        )
    return out


def version_by_alias(client: MlflowClient, alias: str) -> int | None:
    try:
        return int(client.get_model_version_by_alias(MODEL_NAME, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def bundle_dir(client: MlflowClient, version: int, dst: Path) -> Path:
    """Download a registered version's scoring bundle (and snapshot) into dst."""
    mv = client.get_model_version(MODEL_NAME, str(version))
    path = mlflow.artifacts.download_artifacts(
        run_id=mv.run_id,
        artifact_path="bundle",
        dst_path=str(dst),
        tracking_uri=client.tracking_uri,
    )
    return Path(path)
