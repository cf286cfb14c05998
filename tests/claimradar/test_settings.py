import subprocess
import sys

import pytest
from pydantic import ValidationError

from claimradar.settings import Settings


def test_defaults_live_in_the_checkout(monkeypatch, tmp_path):
    for name in ("CLAIMRADAR_HOME", "MLFLOW_TRACKING_URI", "BENTOML_HOME"):
        monkeypatch.delenv(name, raising=False)
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
    code = "import claimradar.settings, claimradar.cli, contract.ingest"
    env = {"CLAIMRADAR_HOME": str(home), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path)
    assert not home.exists()


def test_standard_mlflow_and_bentoml_variables_are_honoured(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("CLAIMRADAR_MLFLOW_TRACKING_URI", "CLAIMRADAR_BENTOML_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/std.db")
    monkeypatch.setenv("BENTOML_HOME", "/srv/bentoml")
    s = Settings()
    assert s.tracking_uri == "sqlite:////tmp/std.db"
    assert str(s.bento_home) == "/srv/bentoml"
    # ours, when set, win over the ecosystem's
    monkeypatch.setenv("CLAIMRADAR_MLFLOW_TRACKING_URI", "sqlite:////tmp/ours.db")
    monkeypatch.setenv("CLAIMRADAR_BENTOML_HOME", "/srv/ours")
    s = Settings()
    assert s.tracking_uri == "sqlite:////tmp/ours.db" and str(s.bento_home) == "/srv/ours"


def test_models_command_uses_mlflow_tracking_uri(tmp_path):
    """`MLFLOW_TRACKING_URI=sqlite:///x.db claimradar models` opens that store (and makes it)."""
    import os

    db = tmp_path / "x.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMRADAR_MLFLOW")}
    env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{db}", "CLAIMRADAR_HOME": str(tmp_path / "h")}
    env["CLAIMRADAR_MLFLOW_ARTIFACT_ROOT"] = str(tmp_path / "art")
    done = subprocess.run(
        [sys.executable, "-m", "claimradar", "models"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert db.exists() and db.stat().st_size > 0


KEY_RACE = """
import sys, time
from pathlib import Path
from claimradar.settings import Settings
start = float(sys.argv[2])
while time.time() < start:
    pass
s = Settings(home=Path(sys.argv[1]))
print(s.data_secret(), s.review_secret())
"""


def test_workers_starting_together_read_one_data_key_and_one_session_key(tmp_path):
    """Workers create the keys on first use: every one of them must read the same, whole key
    (a check-then-write let a worker read an empty file, or two workers write two keys, and
    identities sealed with the losing key never opened again)."""
    import time

    start = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", KEY_RACE, str(tmp_path), str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    seen = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(seen) == 1
    data, session = seen.pop().split()
    assert len(data) > 20 and len(session) > 20
    assert (tmp_path / "data.key").read_text().strip() == data
    assert (tmp_path / "data.key").stat().st_mode & 0o077 == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
