"""MLflow as the record for training: listing registered versions with their headline metrics.
The registry mechanics (names, aliases, bundles) live in scoring.registry, shared with serving."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from scoring.registry import (  # noqa: F401 - re-exported for training code
    EXPERIMENT,
    MODEL_NAME,
    bundle_dir,
    connect,
    default_version,
    version_by_alias,
)

HEADLINE = "holdout_model_amount_top5pct"


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
