"""The monitoring run in MLflow, and which bundle is the champion."""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from monitoring.monitor import Monitoring
from scoring import registry
from scoring.bundle import ModelBundle


def champion(client: MlflowClient, folder: Path) -> tuple[ModelBundle, str, str]:
    """The champion's bundle (else the newest challenger's): bundle, version, alias."""
    alias = "champion"
    version = registry.version_by_alias(client, alias)
    if version is None:
        alias = "challenger"
        version = registry.default_version(client)
    if version is None:
        raise ValueError("no registered model to monitor; run claimradar train (and promote)")
    return ModelBundle.load(registry.bundle_dir(client, version, Path(folder))), str(version), alias


def metrics_of(summary: dict) -> dict[str, float]:
    out = {
        "alerts": len(summary["alerts"]),
        "drifted_features": len(summary["feature_drift"]["drifted"]),
        "rejection_rate": summary["data_quality"]["rejection_rate"],
        "band_psi": summary["bands"]["psi"],
        "case_band_share": summary["bands"]["cur_case_share"],
        "claims": summary["current"]["claims"],
    }
    for name, d in summary["score_drift"].items():
        out[f"{name}_psi"] = d["psi"]
    for r in summary["feature_drift"]["top_movers"]:
        out[f"psi.{r['feature']}"] = r["psi"]
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}


def log_run(client: MlflowClient, m: Monitoring, files: list[Path], figs: dict) -> str:
    """A run named `monitor YYYY-MM` tagged kind=monitoring and with the model's name and
    version; the summary, the page and the plots as artifacts. The registered version gets
    tags pointing at its latest monitoring run. Returns the run id."""
    s = m.summary
    model = s["model"]
    tags = {
        "kind": "monitoring",
        "month": s["month"],
        "model_name": registry.MODEL_NAME,
        "model_version": model["version"],
        "model_alias": model["alias"],
        "alerts": ",".join(a["kind"] for a in s["alerts"]) or "none",
    }
    with mlflow.start_run(run_name=f"monitor {s['month']}", tags=tags) as run:
        mlflow.log_metrics(metrics_of(s))
        mlflow.log_params({"month": s["month"], "dataset": s["dataset"]})
        for f in files:
            mlflow.log_artifact(str(f))
        with tempfile.TemporaryDirectory() as tmp:
            for name, fig in figs.items():
                fig.savefig(Path(tmp) / name, dpi=80, bbox_inches="tight")
                plt.close(fig)
                mlflow.log_artifact(str(Path(tmp) / name), artifact_path="plots")
    if model["version"].isdigit():
        for k, v in (
            ("monitoring.last_month", s["month"]),
            ("monitoring.last_run", run.info.run_id),
            ("monitoring.last_alerts", str(len(s["alerts"]))),
        ):
            client.set_model_version_tag(registry.MODEL_NAME, model["version"], k, v)
    return run.info.run_id
