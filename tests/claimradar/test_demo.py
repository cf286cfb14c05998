"""`claimradar demo` runs the main job end to end on embedded defaults."""

import pandas as pd
from typer.testing import CliRunner

from claimradar.cli import app
from claimradar.settings import get_settings


def test_demo_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAIMRADAR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLAIMRADAR_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CLAIMRADAR_MLFLOW_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(app, ["demo", "--claims", "8000"])
    finally:
        get_settings.cache_clear()
    assert r.exit_code == 0, r.output
    work = tmp_path / "home" / "demo"
    assert "GIOI_TINH" in r.output and "truncated" in r.output  # the sample's rejections
    assert "promote v1: promoted" in r.output
    scores = pd.read_parquet(work / "scores.parquet")
    assert len(scores) == len(pd.read_parquet(work / "dataset" / "claims.parquet"))
    assert set(scores["band"]) >= {"high", "review", "low"}
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("demo: scored") and "scores.parquet" in last
