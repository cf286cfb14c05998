"""notebooks/02_model_report.ipynb runs top to bottom against a registered model."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_model_report.ipynb"


def test_model_report_runs(trained_model, sim_dataset, mlflow_store, monkeypatch, tmp_path):
    monkeypatch.setenv("CLAIMRADAR_NB_DATASET", str(sim_dataset))
    monkeypatch.setenv("CLAIMRADAR_NB_VERSION", str(trained_model.version))
    monkeypatch.setenv("CLAIMRADAR_MLFLOW_TRACKING_URI", mlflow_store["tracking_uri"])
    monkeypatch.setenv("CLAIMRADAR_MLFLOW_ARTIFACT_ROOT", str(mlflow_store["artifact_root"]))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o["data"]]
    assert len(images) >= 3, "SHAP beeswarm, bar and the risk histogram"
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "amount_top5pct" in text and "recall" in text
