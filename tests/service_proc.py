"""A real claimradar service (`claimradar serve`, i.e. `bentoml serve`) on a loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    url: str
    key: str
    home: Path
    tracking_uri: str
    artifact_root: Path
    case_store_url: str
    proc: subprocess.Popen
    log: Path

    def client(self, key: str | None = "default", **kw) -> httpx.Client:
        headers = (
            {"Authorization": f"Bearer {self.key if key == 'default' else key}"} if key else {}
        )
        headers.update(kw.pop("headers", {}))
        return httpx.Client(
            base_url=self.url, headers=headers, timeout=kw.pop("timeout", 120), **kw
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def start_service(
    root: Path, tracking_db: Path, artifact_root: Path, env: dict | None = None
) -> Service:
    """Serve a COPY of the MLflow store (tests may promote in it) with a fresh case store."""
    root.mkdir(parents=True, exist_ok=True)
    db = root / "mlflow.db"
    shutil.copy(tracking_db, db)
    home = root / "home"
    settings_env = {
        "CLAIMRADAR_HOME": str(home),
        "CLAIMRADAR_MLFLOW_TRACKING_URI": f"sqlite:///{db}",
        "CLAIMRADAR_MLFLOW_ARTIFACT_ROOT": str(artifact_root),
        "CLAIMRADAR_DATABASE_URL": f"sqlite:///{home / 'cases.db'}",
        "CLAIMRADAR_MODEL_POLL_SECONDS": "1",
        "CLAIMRADAR_SECURE_COOKIES": "false",
        **(env or {}),
    }
    full = {**os.environ, **settings_env}
    cli = [sys.executable, "-m", "claimradar.cli"]
    key = (
        subprocess.run(
            [*cli, "keys", "create", "tests"], env=full, capture_output=True, text=True, check=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    log = root / "service.log"
    proc = subprocess.Popen(
        [*cli, "serve", "--port", str(port)],
        env=full,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    svc = Service(
        f"http://127.0.0.1:{port}", key, home, settings_env["CLAIMRADAR_MLFLOW_TRACKING_URI"],
        artifact_root, settings_env["CLAIMRADAR_DATABASE_URL"], proc, log,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{svc.url}/readyz", timeout=2).status_code == 200:
                return svc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    svc.stop()
    raise RuntimeError(f"the service was not ready in 180 s:\n{log.read_text()[-4000:]}")
