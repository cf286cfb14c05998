import subprocess
import sys

import pytest
from pydantic import ValidationError

from claimradar.settings import Settings


def test_defaults_live_in_the_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv("CLAIMRADAR_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.home.name == ".claimradar"
    assert s.tracking_uri.startswith("sqlite:///") and s.tracking_uri.endswith("mlflow/mlflow.db")
    assert s.case_store_url == f"sqlite:///{s.home / 'claimradar.db'}"
    assert s.bento_home == s.home / "bentoml"


def test_environment_beats_file_beats_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "claimradar.toml").write_text('home = "/from/file"\nmax_depth = 12\n')
    monkeypatch.delenv("CLAIMRADAR_HOME", raising=False)
    s = Settings()
    assert str(s.home) == "/from/file" and s.max_depth == 12
    monkeypatch.setenv("CLAIMRADAR_HOME", "/from/env")
    monkeypatch.setenv("CLAIMRADAR_DATABASE_URL", "postgresql+psycopg://u@localhost/db")
    s = Settings()
    assert str(s.home) == "/from/env" and s.max_depth == 12
    assert s.case_store_url == "postgresql+psycopg://u@localhost/db"


def test_unknown_setting_is_an_error(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "claimradar.toml").write_text("hoem = 1\n")
    with pytest.raises(ValidationError, match="hoem"):
        Settings()


def test_secret_key_is_not_printed(monkeypatch):
    monkeypatch.setenv("CLAIMRADAR_LINKAGE_KEY", "very-secret-value")
    s = Settings()
    assert "very-secret-value" not in repr(s) and "very-secret-value" not in str(s.model_dump())
    assert s.linkage_key.get_secret_value() == "very-secret-value"


def test_import_does_no_work(tmp_path):
    home = tmp_path / "home"
    code = "import claimradar.settings, claimradar.cli, features.ingest"
    env = {"CLAIMRADAR_HOME": str(home), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path)
    assert not home.exists()
