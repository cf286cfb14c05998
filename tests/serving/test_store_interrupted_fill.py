"""Durability of `claimradar score --to-store` (issue 13): killed with SIGKILL while it fills the
case store, then run again, it leaves every scored claim recorded exactly once, every case of the
review bands opened exactly once (one audit event each), nothing lost and nothing duplicated.
On SQLite and on a real PostgreSQL (`store_url`)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from serving.sealing import new_key
from serving.store import AuditEvent, Case, ScoredClaim

ROOT = Path(__file__).resolve().parents[2]
SINCE = "2025-05-01"  # about 6,000 claims of the test world: three chunks of 2,000 to record


def _score(env: dict, data: Path, out: Path, version: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "claimradar", "score", str(data), "--out", str(out),
           "--model", str(version), "--since", SINCE, "--to-store"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _recorded(url: str) -> int:
    eng = create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            return c.scalar(select(func.count()).select_from(ScoredClaim)) or 0
    except DBAPIError:  # not migrated yet
        return 0
    finally:
        eng.dispose()


def test_score_to_store_killed_mid_run_then_run_again(
    store_url, sim_dataset, trained_model, mlflow_store, tmp_path
):
    env = {
        **os.environ,
        "CLAIMRADAR_HOME": str(tmp_path / "home"),
        "CLAIMRADAR_DATABASE_URL": store_url,
        "CLAIMRADAR_MLFLOW_TRACKING_URI": mlflow_store["tracking_uri"],
        "CLAIMRADAR_MLFLOW_ARTIFACT_ROOT": str(mlflow_store["artifact_root"]),
        "CLAIMRADAR_DATA_KEY": new_key(),
    }
    out = tmp_path / "scores.parquet"
    first = _score(env, sim_dataset, out, trained_model.version)
    try:
        deadline = time.monotonic() + 600
        while _recorded(store_url) == 0 and time.monotonic() < deadline:
            assert first.poll() is None, first.stdout.read()
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)  # the first chunk is in: kill while it records more
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    scored = pd.read_parquet(out)  # written before recording starts
    total = len(scored)
    halfway = _recorded(store_url)
    assert 0 < halfway < total, (halfway, total)

    second = _score(env, sim_dataset, out, trained_model.version)
    log, _ = second.communicate(timeout=900)
    assert second.returncode == 0, log
    assert f"case store: {total - halfway:,} new scored claims" in log

    eng = create_engine(store_url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            keys = list(c.scalars(select(ScoredClaim.claim_key)))
            ids = set(c.scalars(select(ScoredClaim.claim_id)))
            cases = list(c.scalars(select(Case.claim_id)))
            opened = c.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "open")
            )
    finally:
        eng.dispose()
    assert len(keys) == len(set(keys)) == total  # nothing twice
    assert ids == set(scored["MA_LK"])  # nothing lost
    want = set(scored.loc[scored["band"].isin(["high", "review"]), "MA_LK"])
    assert len(cases) == len(set(cases)) and set(cases) == want
    assert opened == len(want)

    # closing the last month over what the store holds (the month's evidence replaces what the
    # batch put in, never added twice): exit 0, every priority within its fund amount
    month = pd.to_datetime(scored["admitted_at"]).max().strftime("%Y-%m")
    cmd = [sys.executable, "-m", "claimradar", "close-month", "--month", month]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(rf"^{month}: [\d,]+ claims read, \d+ facilities warned", done.stdout, re.M)
    bad = subprocess.run([*cmd[:-1], "2025-13"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "YYYY-MM" in bad.stdout + bad.stderr
    eng = create_engine(store_url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            rows = c.execute(select(ScoredClaim.priority, ScoredClaim.fund_claimed)).all()
    finally:
        eng.dispose()
    assert all(p <= max(f or 0.0, 0.0) + 1e-6 for p, f in rows)
