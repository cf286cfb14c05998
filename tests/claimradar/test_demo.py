"""`claimradar demo` runs the main job end to end on embedded defaults, then serves the API and
the review queue: a real run in a subprocess, as a user starts it; SIGTERM to the demo alone
stops the server it started."""

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pandas as pd
import psutil
import pytest

from serving.process import free_port


def test_demo_end_to_end_then_serves(tmp_path):
    env = {
        **os.environ,
        "CLAIMRADAR_HOME": str(tmp_path / "home"),
        "CLAIMRADAR_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "CLAIMRADAR_MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "COLUMNS": "160",
    }
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "claimradar.cli", "demo", "--claims", "8000", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    out: list[str] = []
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            out.append(line)
            if line.startswith("demo: serving until Ctrl+C"):
                break
        text = "".join(out)
        assert "demo: serving until Ctrl+C" in text, text[-5000:]
        work = tmp_path / "home" / "demo"
        assert "GIOI_TINH" in text and "truncated" in text  # the sample's rejections
        assert "promote v1: promoted" in text
        scores = pd.read_parquet(work / "scores.parquet")
        assert len(scores) == len(pd.read_parquet(work / "dataset" / "claims.parquet"))
        assert set(scores["band"]) >= {"high", "review", "low"}
        m = re.search(r"review queue at (\S+)/review +\(log in as officer / (\S+);", text)
        url, password = m.group(1), m.group(2)
        key = re.search(r"Authorization: Bearer (\S+)'", text).group(1)
        assert url == f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, follow_redirects=True, timeout=60) as c:
            login = c.get("/review/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
            page = c.post(
                "/review/login", data={"username": "officer", "password": password, "csrf": csrf}
            )
            assert page.status_code == 200 and str(page.url).endswith("/review/queue")
            assert "/review/cases/" in page.text  # the queue lists cases
            model = c.get("/model", headers={"Authorization": f"Bearer {key}"})
            assert model.status_code == 200 and model.json()["alias"] == "champion"

        # `timeout`, systemd and container stops send SIGTERM to the demo alone: the BentoML
        # server it started (in a process group of its own) must stop with it
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children  # the BentoML server and its worker
        proc.send_signal(signal.SIGTERM)
        _gone, alive = psutil.wait_procs([psutil.Process(proc.pid), *children], timeout=25)
        assert not alive, [p.cmdline() for p in alive]
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/readyz", timeout=2)
    finally:
        for p in children:
            if p.is_running():
                p.kill()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # SIGINT is ignored under a background CI shell
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode is not None
