"""Durability (issue 13): officers record decisions through the review UI from several threads
while the server is killed with SIGKILL; after a restart every acknowledged decision and its audit
event are there, none is half-written, and the queue is consistent. On SQLite and on a real
PostgreSQL (`store_url`). The server is a real process (uvicorn serving the review app over the
store); what is killed is that process, never the database."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from serving.records import document_hash
from serving.review.users import create_user
from serving.store import AuditEvent, Case, Decision, Store

ROOT = Path(__file__).resolve().parents[2]
OFFICERS = 4
CASES_EACH = 12
SERVER = textwrap.dedent(
    """
    import sys
    import uvicorn
    from fastapi import FastAPI
    from serving.review import create_review_app
    from serving.store import Store

    url, port = sys.argv[1], int(sys.argv[2])
    app = FastAPI()
    app.mount("/review", create_review_app(
        Store(url, migrate=False), secret_key="durability-test-secret-0123456789",
        secure_cookies=False, approval_threshold=1e15))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    """
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(url: str, port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, url, str(port)],
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/review/login", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the review server exited: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the review server did not start")


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _login(base: str, name: str) -> httpx.Client:
    c = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    page = c.get("/review/login")
    r = c.post(
        "/review/login",
        data={"username": name, "password": f"{name}-password!", "csrf": _csrf(page.text)},
    )
    assert r.status_code == 303, r.text
    return c


def _fill(store: Store) -> dict[str, list[int]]:
    """OFFICERS x CASES_EACH open cases, each officer's assigned to them; {officer: case ids}."""
    rows = [
        {"claim_id": f"C{i:03d}", "facility_id": "01001", "model_version": "1",
         "content_hash": document_hash(i), "risk_score": 0.5, "expected_overbilled": 100.0,
         "priority": 1000.0 - i, "band": "review", "fund_claimed": 1000.0, "reasons": [],
         "rule_hits": [], "claim": {"summary": {"fund_claimed": 1000.0}, "lines": []}}
        for i in range(OFFICERS * CASES_EACH)
    ]  # fmt: skip
    store.record_scores(rows, "test", ("review",))
    mine: dict[str, list[int]] = {}
    for k in range(OFFICERS):
        name = f"officer{k}"
        uid = create_user(store, name, "officer", f"{name}-password!")
        mine[name] = [store.take_next(uid, name).id for _ in range(CASES_EACH)]
    return mine


@pytest.mark.slow
def test_acknowledged_decisions_survive_a_sigkill_of_the_server(store_url, tmp_path):
    store = Store(store_url)
    mine = _fill(store)
    port, log = _port(), tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    server = _start(store_url, port, log)
    acked: dict[int, str] = {}  # case id -> officer, for each decision answered 303
    lock = threading.Lock()
    ready = threading.Barrier(OFFICERS + 1)

    def officer(name: str) -> None:
        c = _login(base, name)
        ready.wait()
        try:
            for case_id in mine[name]:
                page = c.get(f"/review/cases/{case_id}").text
                version = re.search(r'name="version" value="(\d+)"', page).group(1)
                r = c.post(
                    f"/review/cases/{case_id}/decide",
                    data={"csrf": _csrf(page), "version": version, "outcome": "reject_full",
                          "reason_code": "X03", "note": f"by {name}"},
                )  # fmt: skip
                if r.status_code == 303:
                    with lock:
                        acked[case_id] = name
        except httpx.HTTPError:  # the server is gone: what was acknowledged must stay
            pass
        finally:
            c.close()

    threads = [threading.Thread(target=officer, args=(n,)) for n in mine]
    try:
        for t in threads:
            t.start()
        ready.wait()
        deadline = time.monotonic() + 120
        while len(acked) < OFFICERS * 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(server.pid, signal.SIGKILL)  # mid-way: officers are still deciding
        server.wait(30)
        for t in threads:
            t.join(60)
    finally:
        if server.poll() is None:
            server.kill()
    total = OFFICERS * CASES_EACH
    assert OFFICERS * 2 <= len(acked) < total, "the kill should come while officers decide"

    # restarted: the same store, a new server process
    server = _start(store_url, port, log)
    try:
        with store.session() as s:
            decisions = s.scalars(select(Decision)).all()
            cases = {c.id: c for c in s.scalars(select(Case))}
            decided = s.scalars(select(AuditEvent).where(AuditEvent.action == "decide")).all()
        by_case = {}
        for d in decisions:
            assert d.case_id not in by_case, "two decisions of one case"
            by_case[d.case_id] = d
        # every acknowledged decision is there, as the officer made it
        for case_id, name in acked.items():
            d = by_case[case_id]
            assert (d.outcome, d.reason_code, d.note) == ("reject_full", "X03", f"by {name}")
        # none is half-written: a decision, its case moved and its audit event, or none of them
        events = {int(e.after["decision_id"]): e for e in decided}
        assert set(events) == {d.id for d in decisions}
        for case_id, c in cases.items():
            d = by_case.get(case_id)
            if d is None:
                assert (c.status, c.version) == ("assigned", 2)
            else:
                assert (c.status, c.version, d.status) == ("decided", 3, "final")
                assert events[d.id].entity_id == str(case_id)
        # the queue after the restart: what is left to do is exactly the undecided cases
        c = _login(base, "officer0")
        page = c.get("/review/queue?status=assigned&assignee=").text
        left = total - len(by_case)
        with store.session() as s:
            assert s.scalar(select(func.count()).where(Case.status == "assigned")) == left
        assert page.count('href="/review/cases/') >= min(left, 1)
        some = next(iter(acked))
        assert "by officer" in c.get(f"/review/cases/{some}").text
        c.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        store.engine.dispose()
