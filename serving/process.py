"""Start the scoring service (`claimradar serve`) as a child process on loopback and wait until
it is ready: used by the demo, the benchmarks and the HTTP tests."""

from __future__ import annotations

import os
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
    proc: subprocess.Popen
    log: Path
    env: dict

    def client(self, key: str | None = "default", **kw) -> httpx.Client:
        """An httpx client with this service's API key (key=None: none; or another key)."""
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
                self.proc.wait(5)


def start(
    env: dict[str, str],
    log: Path,
    *,
    port: int | None = None,
    key_name: str = "local",
    workers: int = 1,
    bento: str | None = None,
    demo: bool = False,
    timeout: float = 180,
) -> Service:
    """`claimradar keys create KEY_NAME`, then `claimradar serve` with CLAIMRADAR_* settings from
    env (on top of this process's environment); returns once /readyz answers 200. demo: pass
    `--demo` (the public development linkage key is allowed: demo and test data). Without a
    PORT a free one is chosen, and chosen again if the server finds it taken at start (another
    process, or the server's own control socket, took it between the check and the bind)."""
    for attempt in range(3):
        try:
            return _start(env, log, port, key_name, workers, bento, demo, timeout)
        except PortTaken:
            if port is not None or attempt == 2:
                raise
    raise AssertionError("unreachable")


class PortTaken(RuntimeError):
    """The server exited at start: its port (or its control socket's) was in use."""


def _start(env, log, port, key_name, workers, bento, demo, timeout) -> Service:
    full = {**os.environ, **env}
    cli = [sys.executable, "-m", "claimradar.cli"]
    made = subprocess.run(
        [*cli, "keys", "create", key_name], env=full, capture_output=True, text=True
    )
    if made.returncode != 0:
        raise RuntimeError(f"could not create an API key: {made.stderr.strip()}")
    key = made.stdout.strip().splitlines()[-1]
    port = port or free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            *cli,
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            *(["--bento", bento] if bento else []),
            *(["--demo"] if demo else []),
        ],
        env=full,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    svc = Service(f"http://127.0.0.1:{port}", key, proc, log, env)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                text = log.read_text()[-4000:]
                error = PortTaken if "Address already in use" in text else RuntimeError
                raise error(f"the service exited:\n{text}")
            try:
                if httpx.get(f"{svc.url}/readyz", timeout=2).status_code == 200:
                    return svc
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    except BaseException:  # interrupted while waiting (Ctrl+C, SIGTERM): leave no server behind
        svc.stop()
        raise
    svc.stop()
    raise RuntimeError(f"the service was not ready in {timeout:.0f} s:\n{log.read_text()[-4000:]}")
