"""The case writer (serving.writer): durable before a write returns, several requests in one
transaction, idempotent replays, two workers on one store, the store's errors reaching the
request, and a clean drain when it closes (also at interpreter exit). Real SQLite stores, the
real serving.casefile.fill_store."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from factories import claim, drug, service
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from claimradar.settings import DEV_LINKAGE_KEY
from contract.limits import Limits
from contract.validate import INTERNAL
from contract.validate_rows import validate_rows
from serving.casefile import fill_store
from serving.online import raw_records
from serving.store import Case, ScoredClaim, Store, store_unavailable
from serving.writer import CaseWriter, WriterClosed

ROOT = Path(__file__).resolve().parents[2]


def request(ids: list[str], band: str = "review", version: str = "1"):
    """What ScoringState hands the writer for one request: scored rows and canonical tables."""
    claims = []
    for i in ids:
        c = claim(i)
        c["xml2"], c["xml3"] = [drug(i, 1)], [service(i, 1)]
        claims.append(c)
    res = validate_rows(raw_records(claims), Limits(workers=1), DEV_LINKAGE_KEY)
    assert len(res.good["claims"]) == len(ids)
    tables = {k: v.drop(columns=list(INTERNAL)) for k, v in res.good.items()}
    scored = pd.DataFrame(
        {
            "claim_id": ids,
            "risk_score": 0.5,
            "expected_overbilled": 1000.0,
            "priority": 2000.0,
            "band": band,
            "reasons": [[] for _ in ids],
            "rule_hits": [[] for _ in ids],
            "model_version": version,
            "scored_at": "2025-03-08T00:00:00",
        }
    )
    return scored, tables, None


def count(store: Store, table=ScoredClaim) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(table))


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'cases.db'}")


class Gate:
    """fill_store, held at its first call until released: lets a test queue writes behind it."""

    def __init__(self) -> None:
        self.entered, self.release, self.calls = threading.Event(), threading.Event(), []

    def __call__(self, store, scored, *a, **kw):
        self.calls.append(list(scored["claim_id"]))
        self.entered.set()
        assert self.release.wait(30)
        return fill_store(store, scored, *a, **kw)


def in_threads(fn, args: list) -> tuple[list[threading.Thread], list]:
    results: list = []

    def run(a):
        try:
            results.append(fn(*a))
        except Exception as e:
            results.append(e)

    threads = [threading.Thread(target=run, args=(a,)) for a in args]
    for t in threads:
        t.start()
    return threads, results


def wait_pending(w: CaseWriter, n: int) -> None:
    deadline = time.monotonic() + 30
    while w.pending < n:
        assert time.monotonic() < deadline, f"{w.pending} writes queued, not {n}"
        time.sleep(0.01)


def test_a_write_is_recorded_before_it_returns(store):
    w = CaseWriter(store)
    try:
        assert w.write(*request(["W1", "W2"]), actor="api:test") == 2
        assert count(store) == 2 and count(store, Case) == 2  # already committed
    finally:
        w.close()


def test_requests_waiting_together_share_one_transaction(store):
    gate = Gate()
    w = CaseWriter(store, fill=gate)
    first, _ = in_threads(w.write, [(*request(["G0"]), "api:test")])
    assert gate.entered.wait(30)
    threads, results = in_threads(w.write, [(*request([f"G{i}"]), "api:test") for i in range(1, 9)])
    wait_pending(w, 8)
    gate.release.set()
    for t in [*first, *threads]:
        t.join(30)
    w.close()
    assert sorted(results) == [0] * 7 + [8]  # the first of the group reports its new rows
    assert gate.calls == [["G0"], [f"G{i}" for i in range(1, 9)]]  # two transactions
    assert count(store) == 9 and w.transactions == 2


def test_one_claim_in_two_waiting_requests_is_recorded_once_in_order(store):
    gate = Gate()
    w = CaseWriter(store, fill=gate)
    first, _ = in_threads(w.write, [(*request(["X0"]), "api:test")])
    assert gate.entered.wait(30)
    threads, _ = in_threads(
        w.write,
        [(*request(["D1", "D2"]), "api:test"), (*request(["D2", "D3"]), "api:test"),
         (*request(["D4"]), "api:other")],
    )  # fmt: skip
    wait_pending(w, 3)
    gate.release.set()
    for t in [*first, *threads]:
        t.join(30)
    w.close()
    # D2 twice: a transaction of its own after the first copy; another actor: its own too
    assert gate.calls == [["X0"], ["D1", "D2"], ["D2", "D3"], ["D4"]]
    assert count(store) == 5


def test_replays_are_idempotent_and_two_workers_record_a_claim_once(store, tmp_path):
    w = CaseWriter(store)
    assert w.write(*request(["R1", "R2"]), actor="api:test") == 2
    assert w.write(*request(["R1", "R2"]), actor="api:test") == 0  # the client sent it again
    w.close()
    # two workers: their own store objects (engines) on one database, the same claims at once
    a = CaseWriter(Store(store.url, migrate=False))
    b = CaseWriter(Store(store.url, migrate=False))
    jobs = [(*request([f"S{i}" for i in range(k, k + 20)]), "api:test") for k in (0, 10, 5, 15)]
    threads, results = in_threads(
        lambda *job: (a if job[0]["claim_id"].iloc[0] in ("S0", "S5") else b).write(*job), jobs
    )
    for t in threads:
        t.join(60)
    a.close(), b.close()
    assert all(isinstance(r, int) for r in results), results
    assert count(store) == 2 + 35 and count(store, Case) == 2 + 35


def test_an_unreachable_store_fails_the_write_not_the_writer(store, tmp_path):
    w = CaseWriter(store)
    folder = Path(store.url.removeprefix("sqlite:///")).parent
    store.engine.dispose()
    folder.rename(tmp_path.with_name(tmp_path.name + "-away"))
    try:
        with pytest.raises(OperationalError) as e:
            w.write(*request(["U1"]), actor="api:test")
        assert store_unavailable(e.value)  # the API answers it 503 (serving.api)
    finally:
        tmp_path.with_name(tmp_path.name + "-away").rename(folder)
    assert w.write(*request(["U2"]), actor="api:test") == 1  # the writer lives on
    w.close()


def test_close_drains_every_accepted_write_then_refuses(store):
    gate = Gate()
    w = CaseWriter(store, fill=gate)
    first, results = in_threads(w.write, [(*request(["C0"]), "api:test")])
    assert gate.entered.wait(30)
    threads, more = in_threads(w.write, [(*request([f"C{i}"]), "api:test") for i in range(1, 6)])
    wait_pending(w, 5)
    closing = threading.Thread(target=w.close)
    closing.start()
    time.sleep(0.1)
    with pytest.raises(WriterClosed):
        w.write(*request(["late"]), actor="api:test")
    gate.release.set()
    closing.join(30)
    for t in [*first, *threads]:
        t.join(30)
    assert not closing.is_alive() and sum(results + more) == 6 and count(store) == 6


DRAIN_AT_EXIT = """
import sys, threading, time
sys.path[:0] = [{root!r}, {tests!r}, {tests!r} + "/serving"]
from test_writer import Gate, request
from serving.store import Store
from serving.writer import CaseWriter

gate = Gate()
w = CaseWriter(Store({url!r}, migrate=False), fill=gate)
def send(i):
    threading.Thread(target=w.write, args=(*request([f"E{{i}}"]), "api:test"), daemon=True).start()
send(0)
gate.entered.wait(30)
for i in range(1, 5):
    send(i)
while w.pending < 4:
    time.sleep(0.01)
threading.Timer(0.5, gate.release.set).start()
print("exiting with", w.pending, "writes queued", flush=True)
"""  # the main thread ends here: the interpreter's exit closes the writer


def test_the_writer_drains_at_interpreter_exit(store):
    code = DRAIN_AT_EXIT.format(root=str(ROOT), tests=str(ROOT / "tests"), url=store.url)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        cwd=ROOT / "tests",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "exiting with 4 writes queued" in done.stdout
    assert count(store) == 5
