"""`claimradar train --tune N`: Optuna trials over time-based folds, logged as nested runs."""

import tomllib

from mlflow.tracking import MlflowClient

from training.tune import tune


def test_tuning_logs_nested_trials_and_writes_a_config(sim_dataset, mlflow_store, trained_model):
    path = tune(sim_dataset, cutoff=None, trials=2, config=None, **mlflow_store)
    cfg = tomllib.loads(path.read_text())
    assert {"num_leaves", "max_depth", "learning_rate"} <= set(cfg["risk"])
    assert cfg["risk"]["max_depth"] <= 6 and cfg["val_months"] >= 1
    client = MlflowClient(mlflow_store["tracking_uri"])
    exp = client.get_experiment_by_name("claimradar")
    runs = client.search_runs([exp.experiment_id], "tags.mlflow.runName = 'tune'")
    parent = runs[0]
    children = client.search_runs(
        [exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 2
    assert all("cv_amount_top5pct" in c.data.metrics for c in children)
    assert "best_cv_amount_top5pct" in parent.data.metrics
