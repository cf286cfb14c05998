"""`claimradar retrain` is safe from cron: a second run while one holds the lock exits 75 at once
without touching the store or the registry; bad input is a clear error."""

import fcntl

from typer.testing import CliRunner

from claimradar.cli import app
from claimradar.cli.monitor import RETRAIN_LOCKED


def _invoke(tmp_path, monkeypatch, *args):
    from claimradar.settings import get_settings

    monkeypatch.setenv("CLAIMRADAR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLAIMRADAR_DATABASE_URL", f"sqlite:///{tmp_path / 'cases.db'}")
    monkeypatch.setenv("CLAIMRADAR_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["retrain", *map(str, args)])
    finally:
        get_settings.cache_clear()


def test_a_second_retrain_waits_for_none(tmp_path, monkeypatch):
    (tmp_path / "home").mkdir()
    with open(tmp_path / "home" / "retrain.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = _invoke(tmp_path, monkeypatch, tmp_path / "no-data")
    assert r.exit_code == RETRAIN_LOCKED, r.output
    assert "another retrain is running" in r.output
    assert not (tmp_path / "cases.db").exists() and not (tmp_path / "mlflow.db").exists()


def test_retrain_without_a_dataset_is_a_clear_error(tmp_path, monkeypatch):
    r = _invoke(tmp_path, monkeypatch, tmp_path / "no-data")
    assert r.exit_code == 2 and "claims.parquet" in r.output and "Traceback" not in r.output
    # the lock was released: the next run is not refused as locked
    assert _invoke(tmp_path, monkeypatch, tmp_path / "no-data").exit_code == 2
