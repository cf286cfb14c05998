"""`claimradar monitor` on a simulated world where a scheme starts after the champion's training
window: a drift alert in the month it starts, none in a quiet month; refused records reported
per facility and field; the JSON, the HTML page and the MLflow monitoring run.

The champion is the session's trained model (`trained_model`: seed 3, 2025-01 to 2025-08,
cutoff 2025-06-01). The monitored world is drawn the same way but with needless tests (imaging
and lab panels added to routine visits) starting in 2025-07 at 6% of claims, and 40 claims of
one facility in 2025-07 broken (an invalid sex code) before ingest. Two schemes are switched off
in it: cost_climb and overprice, whose actors the simulator starts in months 5-6 of most worlds
(a real change, which the monitor reports: overprice makes rule R14 fire from its first month);
without them 2025-06 is a quiet month after the cutoff."""

import json
import shutil

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from monitoring import Thresholds, monitor
from monitoring.monitor import feature_frame
from scoring import registry
from scoring.bundle import ModelBundle

QUIET, START = "2025-06", "2025-07"
SCHEME_INPUTS = {"n_lab", "n_imaging", "cost_lab", "cost_imaging", "lab_per_day",
                 "imaging_per_day", "n_service_lines", "n_lines", "diag_cost", "diag_share",
                 "services_per_day", "cost_per_day"}  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    import simulator
    from claimradar.settings import DEV_LINKAGE_KEY
    from contract.ingest import ingest

    root = tmp_path_factory.mktemp("scheme-world")
    simulator.simulate(
        root / "tabular", 12_000, months=8, start="2025-01", seed=3,
        schemes={"needless_tests": 0.06, "cost_climb": 0.0, "overprice": 0.0},
        scheme_start={"needless_tests": START},
    )  # fmt: skip
    xml1 = pd.read_parquet(root / "tabular" / "xml1.parquet")
    in_start = xml1["NGAY_VAO"].astype(str).str[:6] == START.replace("-", "")
    facility = xml1.loc[in_start, "MA_CSKCB"].value_counts().index[0]
    broken = xml1.index[in_start & (xml1["MA_CSKCB"] == facility)][:40]
    xml1.loc[broken, "GIOI_TINH"] = 9
    xml1.to_parquet(root / "tabular" / "xml1.parquet", index=False)
    ingest(root / "tabular", root / "dataset", linkage_key=DEV_LINKAGE_KEY)
    return {"dataset": root / "dataset", "facility": str(facility), "broken": len(broken)}


@pytest.fixture(scope="module")
def champion(trained_model, mlflow_store, tmp_path_factory):
    client = registry.connect(mlflow_store["tracking_uri"], mlflow_store["artifact_root"])
    folder = registry.bundle_dir(client, trained_model.version, tmp_path_factory.mktemp("b"))
    return ModelBundle.load(folder), str(trained_model.version)


@pytest.fixture(scope="module")
def frame(world, champion):
    return feature_frame(world["dataset"], champion[0])


def _run(world, champion, frame, month):
    bundle, version = champion
    return monitor(world["dataset"], month, bundle, version, Thresholds(), frame=frame)


@pytest.fixture(scope="module")
def started(world, champion, frame) -> dict:
    """The summary of the month the scheme starts."""
    return _run(world, champion, frame, START).summary


def test_drift_alert_in_the_month_the_scheme_starts(champion, started):
    assert champion[0].meta["data_window"]["cutoff"] == "2025-06-01"  # the scheme starts after
    s = started
    kinds = [a["kind"] for a in s["alerts"]]
    assert "feature_drift" in kinds, s["alerts"]
    drifted = set(s["feature_drift"]["drifted"])
    assert len(drifted) >= 2 and drifted & SCHEME_INPUTS, drifted
    assert s["current"]["claims"] > 1000 and not s["current"]["inside_training_window"]
    # the claim-level movers name what the scheme changes (facility profiles also move: the
    # broken claims of the largest facility were refused)
    movers = [r["feature"] for r in s["feature_drift"]["all"] if r["alerting"]]
    assert set(movers[:3]) & SCHEME_INPUTS, movers[:10]


def test_no_alert_in_a_quiet_month(world, champion, frame):
    s = _run(world, champion, frame, QUIET).summary
    assert s["alerts"] == [] and s["feature_drift"]["drifted"] == []
    assert s["data_quality"]["rejected_claims"] == 0
    # the comparison ran: every input has a PSI, and profile inputs moved without alerting
    assert s["feature_drift"]["features"] == len(champion[0].feature_names)
    assert not any(r["drifted"] for r in s["rules"]) and not s["bands"]["drifted"]


def test_refused_claims_per_facility_and_field(world, started):
    s = started
    q = s["data_quality"]
    assert q["rejected_claims"] == world["broken"]
    top = q["by_facility"][0]
    assert top["facility_id"] == world["facility"] and top["rejected"] == world["broken"]
    assert {"table": "claims", "field": "GIOI_TINH", "claims": world["broken"]} in q["by_field"]
    alert = next(a for a in s["alerts"] if a["kind"] == "facility_rejections")
    assert alert["facilities"] == [world["facility"]]


def test_monitor_command_writes_the_report_and_logs_a_monitoring_run(
    world, trained_model, mlflow_store, tmp_path, monkeypatch
):
    from claimradar.cli import app
    from claimradar.settings import get_settings

    db = tmp_path / "mlflow.db"  # a copy: the session's store stays as the other tests see it
    shutil.copy(mlflow_store["tracking_uri"].removeprefix("sqlite:///"), db)
    monkeypatch.setenv("CLAIMRADAR_MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setenv("CLAIMRADAR_MLFLOW_ARTIFACT_ROOT", str(mlflow_store["artifact_root"]))
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(
            app, ["monitor", str(world["dataset"]), "--month", START, "--out", str(tmp_path)]
        )
    finally:
        get_settings.cache_clear()
    assert r.exit_code == 0, r.output
    assert "ALERT feature_drift" in r.output and f"model v{trained_model.version}" in r.output
    summary = json.loads((tmp_path / f"monitor-{START}.json").read_text())
    assert summary["model"]["version"] == str(trained_model.version)
    page = (tmp_path / f"monitor-{START}.html").read_text()
    assert page.count("data:image/png;base64,") >= 4 and "feature_drift" in page
    client = MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name(registry.EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], "tags.kind = 'monitoring'")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["model_version"] == str(trained_model.version)
    assert run.data.tags["month"] == START and "feature_drift" in run.data.tags["alerts"]
    assert run.data.metrics["drifted_features"] == len(summary["feature_drift"]["drifted"])
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {f"monitor-{START}.json", f"monitor-{START}.html", "plots"} <= arts
    mv = client.get_model_version(registry.MODEL_NAME, str(trained_model.version))
    assert mv.tags["monitoring.last_month"] == START
    assert mv.tags["monitoring.last_run"] == run.info.run_id
