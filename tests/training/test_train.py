"""Training against a real MLflow store: what a run records, the registry, the model card."""

import json
from pathlib import Path

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from scoring.bundle import ModelBundle
from scoring.scorer import predict
from training import tracking
from training.train import feature_frame, train


def test_run_records_window_metrics_plots_model_and_card(trained_model, mlflow_store):
    client = MlflowClient(mlflow_store["tracking_uri"])
    run = client.get_run(trained_model.run_id)
    p = run.data.params
    assert p["window.cutoff"] and p["schema_version"] == "1.0" and int(p["rows.train"]) > 100
    m = run.data.metrics
    for key in (
        "holdout_model_amount_top5pct",
        "holdout_model_average_precision",
        "holdout_rules_only_amount_top5pct",
        "holdout_cost_outlier_average_precision",
        "holdout_logistic_precision_top1pct",
        "holdout_raw_lightgbm_roc_auc",
        "val_model_brier",
    ):
        assert key in m, key
    assert 0 <= m["holdout_model_amount_top5pct"] <= 1
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"bundle", "plots", "features.json", "model_card.md", "metrics_table.csv"} <= arts
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {
        "plots/pr_curve.png",
        "plots/amount_capture.png",
        "plots/reliability.png",
        "plots/shap_beeswarm.png",
    } <= plots
    bundle_files = {a.path for a in client.list_artifacts(run.info.run_id, "bundle")}
    assert "bundle/risk.txt" in bundle_files and "bundle/snapshot" in bundle_files
    path = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id,
        artifact_path="features.json",
        tracking_uri=mlflow_store["tracking_uri"],
    )
    features = json.loads(Path(path).read_text())
    assert features and not any(n in features for n in ("claim_id", "card_number", "patient_name"))


def test_registered_as_challenger_with_a_model_card(trained_model, mlflow_store):
    client = MlflowClient(mlflow_store["tracking_uri"], registry_uri=mlflow_store["tracking_uri"])
    mv = client.get_model_version_by_alias(tracking.MODEL_NAME, "challenger")
    assert int(mv.version) == trained_model.version
    card = trained_model.card_path.read_text()
    assert f"version {trained_model.version}" in card
    for part in ("Intended use", "Data window", "Recall in the top 5% per scheme", "Known limits"):
        assert part in card
    # the logged model is the LightGBM booster: it predicts probabilities. The store named here,
    # not the process's last one (another test in this worker may have trained into its own).
    mlflow.set_tracking_uri(mlflow_store["tracking_uri"])
    mlflow.set_registry_uri(mlflow_store["tracking_uri"])
    model = mlflow.pyfunc.load_model(f"models:/{tracking.MODEL_NAME}@challenger")
    cols = model.metadata.get_input_schema().input_names()
    assert len(cols) > 50


def test_personal_data_never_reaches_mlflow(trained_model, mlflow_store):
    client = MlflowClient(mlflow_store["tracking_uri"])
    run = client.get_run(trained_model.run_id)
    text = json.dumps({"p": run.data.params, "t": run.data.tags})
    for needle in ("HO_TEN", "patient_name", "card_number", "national_id", "Nguyễn"):
        assert needle not in text


def test_same_data_and_seed_give_the_same_model(sim_dataset, mlflow_store, trained_model, tmp_path):
    client = tracking.connect(mlflow_store["tracking_uri"], mlflow_store["artifact_root"])
    again = train(sim_dataset, register=False, **mlflow_store)
    b1 = ModelBundle.load(tracking.bundle_dir(client, trained_model.version, tmp_path / "a"))
    run = client.get_run(again.run_id)
    b2_dir = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id,
        artifact_path="bundle",
        dst_path=str(tmp_path / "b"),
        tracking_uri=mlflow_store["tracking_uri"],
    )
    b2 = ModelBundle.load(b2_dir)
    frame = feature_frame(sim_dataset).head(3000)
    np.testing.assert_array_equal(predict(b1, frame)["priority"], predict(b2, frame)["priority"])
    assert again.metrics == trained_model.metrics
