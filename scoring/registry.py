"""The model registry as serving sees it: MLflow's `claimradar-abuse` with aliases `challenger`
and `champion`, and the scoring bundle each registered version carries."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

MODEL_NAME = "claimradar-abuse"
EXPERIMENT = "claimradar"


def connect(tracking_uri: str, artifact_root: Path) -> MlflowClient:
    """Point MLflow at the store (sqlite by default) and make sure the experiment exists with a
    file artifact root (MLflow 3 would otherwise put artifacts under the working directory)."""
    os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
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


def version_by_alias(client: MlflowClient, alias: str) -> int | None:
    try:
        return int(client.get_model_version_by_alias(MODEL_NAME, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def default_version(client: MlflowClient) -> int | None:
    """The champion, else the newest challenger, else the newest version."""
    for alias in ("champion", "challenger"):
        v = version_by_alias(client, alias)
        if v is not None:
            return v
    try:
        found = client.search_model_versions(f"name='{MODEL_NAME}'")
    except mlflow.exceptions.MlflowException:
        return None
    return max((int(m.version) for m in found), default=None)


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
