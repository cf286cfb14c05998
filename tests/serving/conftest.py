"""Case-store fixtures: every store test runs on SQLite and on a real PostgreSQL server.

`store_url` is parametrized ["sqlite", "postgresql"]. The PostgreSQL database comes from the server
at CLAIMRADAR_TEST_POSTGRES_URL when that is set (a URL whose user may CREATE DATABASE); otherwise
the session starts its own throwaway PostgreSQL 15 (initdb + pg_ctl on a free loopback port, trust
auth, run as the `postgres` user when we are root) and stops it at the end. Each test gets a fresh,
empty database. Missing PostgreSQL binaries make the postgresql tests fail, never skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, make_url

PG_BIN = Path(os.environ.get("CLAIMRADAR_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
PG_URL_ENV = "CLAIMRADAR_TEST_POSTGRES_URL"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """A throwaway PostgreSQL cluster in a temp dir, listening on 127.0.0.1 only."""

    def __init__(self) -> None:
        missing = [b for b in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / b).is_file()]
        if missing:
            pytest.fail(
                f"PostgreSQL 15 binaries not found in {PG_BIN} (missing: {', '.join(missing)}). "
                "Install them (Debian: apt-get install postgresql; .ci/run does this), or set "
                f"{PG_URL_ENV}=postgresql+psycopg://USER@HOST:PORT/postgres to use a running "
                "server, or CLAIMRADAR_TEST_POSTGRES_BIN to another bin folder.",
                pytrace=False,
            )
        self.as_root = os.geteuid() == 0
        # as root, under /tmp: the postgres user must reach it (TMPDIR may be private to root)
        where = "/tmp" if self.as_root else None
        self.root = Path(tempfile.mkdtemp(prefix="claimradar-pg-", dir=where))
        if self.as_root:  # initdb refuses root: the cluster belongs to the postgres user
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.user = "postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            log = self.log.read_text()[-3000:] if self.log.exists() else ""
            out = f"{r.stdout}{r.stderr}{log}"
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{out}")

    def start(self) -> str:
        self._run(
            "initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        # loopback TCP only, socket in our own dir; durability off: the data are thrown away
        self.opts = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self.resume()
        # if this test session is killed before it can stop the server, a watchdog does
        stop = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        if self.as_root:
            stop = ["runuser", "-u", "postgres", "--", *stop]
        self.watchdog = subprocess.Popen(
            ["sh", "-c", 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; shift; "$@"; '
             'rm -rf "$ROOT"', "watchdog", str(os.getpid()), *stop],
            env={**os.environ, "ROOT": str(self.root)},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def resume(self) -> None:
        """Start the (initialized) cluster again, on the same port."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self.opts, "-w", "start"
        )  # fmt: skip

    def halt(self) -> None:
        """Stop the server as an operator would (`pg_ctl stop -m fast`); `resume` brings it back."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
        if getattr(self, "watchdog", None) is not None:
            self.watchdog.kill()
            self.watchdog.wait()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A SQLAlchemy URL (psycopg 3) to a maintenance database of a server where we may create
    and drop databases."""
    given = os.environ.get(PG_URL_ENV)
    if given:
        yield _render(make_url(given).set(drivername="postgresql+psycopg"))
        return
    server = _Server()
    try:
        url = server.start()
    except Exception:
        server.stop()
        raise
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def own_postgres() -> Iterator[_Server]:
    """A throwaway PostgreSQL server of this test alone, which it may stop (`halt`) and start
    again (`resume`); `.url` is its maintenance database. Always started here (never the server
    at CLAIMRADAR_TEST_POSTGRES_URL: stopping that one is not ours to do)."""
    server = _Server()
    try:
        server.url = server.start()
        yield server
    finally:
        server.stop()


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _libpq(url: str) -> str:
    """The same URL as libpq (psycopg.connect) reads it."""
    return _render(make_url(url).set(drivername="postgresql"))


@pytest.fixture
def postgres_url(postgres_admin_url) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    import psycopg

    name = f"claimradar_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(postgres_admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _render(make_url(postgres_admin_url).set(database=name))
    with psycopg.connect(_libpq(postgres_admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """An empty case-store database URL: a SQLite temp file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cases.db'}"
    return request.getfixturevalue("postgres_url")
