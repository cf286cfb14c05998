"""`claimradar serve` refuses the public development linkage key unless `--demo` (issue 13)."""

import os
import subprocess
import sys

from serving.process import free_port


def test_serve_refuses_the_development_linkage_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CLAIMRADAR_LINKAGE_KEY"}
    env["CLAIMRADAR_HOME"] = str(tmp_path / "home")
    out = subprocess.run(
        [sys.executable, "-m", "claimradar.cli", "serve", "--port", str(free_port())],
        env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    said = " ".join((out.stdout + out.stderr).split())
    assert "CLAIMRADAR_LINKAGE_KEY is not set" in said and "--demo" in said
    assert "Traceback" not in said
    assert not (tmp_path / "home").exists()  # refused before anything was created


def test_the_service_workers_refuse_it_too(monkeypatch):
    """`bentoml serve` of a bento bypasses the CLI: each worker checks the key again."""
    import pytest

    import claimradar.service as service
    from claimradar.settings import get_settings

    monkeypatch.delenv("CLAIMRADAR_LINKAGE_KEY", raising=False)
    monkeypatch.delenv("CLAIMRADAR_DEMO", raising=False)
    get_settings.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="CLAIMRADAR_LINKAGE_KEY is not set"):
            service.ClaimRadar.inner()
    finally:
        get_settings.cache_clear()
