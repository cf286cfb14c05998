"""Promotion on the same holdout, `claimradar models`, `claimradar score` against the registry."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from claimradar.cli import app
from claimradar.settings import get_settings
from scoring.bundle import ModelBundle
from training import tracking
from training.promote import promote

runner = CliRunner()


@pytest.fixture()
def cli_env(mlflow_store, monkeypatch):
    monkeypatch.setenv("CLAIMRADAR_MLFLOW_TRACKING_URI", mlflow_store["tracking_uri"])
    monkeypatch.setenv("CLAIMRADAR_MLFLOW_ARTIFACT_ROOT", str(mlflow_store["artifact_root"]))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_promotion_needs_the_champion_beaten_on_the_same_holdout(
    trained_model, mlflow_store, sim_dataset, tmp_path
):
    client = tracking.connect(mlflow_store["tracking_uri"], mlflow_store["artifact_root"])
    first = promote(client)  # no champion yet
    assert first.promoted and first.reason == "no champion yet"
    assert tracking.version_by_alias(client, "champion") == trained_model.version
    # a worse challenger: the same bundle with no amount model, no anomaly money and no novelty
    # lane, so only rule money orders the claims, registered as a new version
    import mlflow

    bdir = tracking.bundle_dir(client, trained_model.version, tmp_path / "b")
    bad = ModelBundle.load(bdir)
    bad.amount, bad.amount_ratio, bad.rank_weights = None, 0.0, {}
    with mlflow.start_run(run_name="worse") as run:
        mlflow.log_param("data.path", str(sim_dataset))
        bad.save(tmp_path / "bad")
        mlflow.log_artifacts(str(tmp_path / "bad"), artifact_path="bundle")
        mlflow.lightgbm.log_model(bad.risk, name="model")
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", tracking.MODEL_NAME)
    client.set_registered_model_alias(tracking.MODEL_NAME, "challenger", mv.version)
    d = promote(client)
    assert not d.promoted and d.challenger_score < d.champion_score
    assert "holdout amount in top 5%" in d.reason
    assert tracking.version_by_alias(client, "champion") == trained_model.version
    forced = promote(client, force=True)
    assert forced.promoted and tracking.version_by_alias(client, "champion") == int(mv.version)
    # put the trained model back as champion and challenger for the tests that follow
    for alias in ("champion", "challenger"):
        client.set_registered_model_alias(tracking.MODEL_NAME, alias, str(trained_model.version))


def test_models_lists_versions_and_aliases(trained_model, cli_env):
    r = runner.invoke(app, ["models"])
    assert r.exit_code == 0, r.output
    assert "challenger" in r.output and "version(s) of claimradar-abuse" in r.output


def test_score_writes_one_row_per_claim_with_reasons(trained_model, sim_dataset, cli_env, tmp_path):
    out = tmp_path / "scores.parquet"
    r = runner.invoke(
        app,
        [
            "score",
            str(sim_dataset),
            "--out",
            str(out),
            "--model",
            str(trained_model.version),
            "--explain-top",
            "5",
        ],
    )
    assert r.exit_code == 0, r.output
    s = pd.read_parquet(out)
    claims = pd.read_parquet(sim_dataset / "claims.parquet")
    assert len(s) == len(claims) and set(s["MA_LK"]) == set(claims["claim_id"])
    for col in (
        "risk_score",
        "expected_overbilled",
        "rank",
        "band",
        "reasons",
        "rule_hits",
        "model_version",
    ):
        assert col in s.columns
    assert s["risk_score"].between(0, 1).all() and (s["expected_overbilled"] >= 0).all()
    assert sorted(s["rank"]) == list(range(1, len(s) + 1))
    assert s.sort_values("rank")["rank"].is_monotonic_increasing
    top = s[s["rank"] <= len(s) * 0.05]
    reasons = [json.loads(x) for x in top["reasons"]]
    assert sum(bool(x) for x in reasons) > 0.9 * len(top)
    first = next(x for x in reasons if x)[0]
    assert {"feature", "value", "peer_value", "contribution", "text_vi", "text_en"} <= set(first)
    rest = s[s["rank"] > len(s) * 0.05]
    assert all(json.loads(x) == [] for x in rest["reasons"])
    hits = [h for x in s["rule_hits"] for h in json.loads(x)]
    assert hits and {"code", "amount", "text_vi", "text_en"} <= set(hits[0])
    assert (s["model_version"] == str(trained_model.version)).all()
