"""Database faults (issue 13), in process: with the case store unreachable every keyed request is
answered 503 with Retry-After (never 500), whether the fault hits the gate's key check, the app's
own key check or the recording of scores; the service recovers once the database is back, without
a restart; checking a key writes `last_used_at` at most once a minute; readiness follows the store.
On SQLite (the database's folder made unreachable) and on a real PostgreSQL server stopped with
`pg_ctl stop -m fast` and started again under the running app."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from claimradar.settings import DEV_LINKAGE_KEY, Settings
from contract.ingest import Limits
from serving.api import authorize, create_app
from serving.limits import ApiGate
from serving.online import ScoringState, Served
from serving.store import (
    ApiKey,
    Base,
    Store,
    StoreHealth,
    now,
    store_unavailable,
)

EXAMPLE = json.loads((Path(__file__).parents[2] / "serving" / "example_claim.json").read_text())
DOWN = {"detail": "the case store is unavailable; retry later"}


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def db_dir(tmp_path) -> Path:
    d = tmp_path / "db"
    d.mkdir()
    return d


@pytest.fixture
def store(db_dir):
    s = Store(f"sqlite:///{db_dir / 'cases.db'}", migrate=False)
    Base.metadata.create_all(s.engine)
    return s


class Outage:
    """The SQLite database made unreachable: its folder moved away (a file in its place, so it
    cannot be created again) and the pool's connections dropped; `end` puts it back."""

    def __init__(self, store: Store, folder: Path) -> None:
        self.store, self.folder, self.away = store, folder, folder.with_name("moved")

    def begin(self) -> None:
        self.store.engine.dispose()
        self.folder.rename(self.away)
        self.folder.write_text("not a folder")

    def end(self) -> None:
        self.folder.unlink()
        self.away.rename(self.folder)


@pytest.fixture
def outage(store, db_dir):
    o = Outage(store, db_dir)
    yield o
    if o.away.exists():
        o.end()


def _state(tmp_path) -> ScoringState:
    s = ScoringState("sqlite:///unused.db", tmp_path, DEV_LINKAGE_KEY, limits=Limits(workers=1))
    s.served = Served(bundle=None, snapshot=None, version="0", alias="test")
    s.score_records = lambda claims, actor, served=None: {
        "scored": [],
        "errors": [],
        "model_version": "0",
    }
    return s


def _client(app, key) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {key}"})


def _gated(app, store):
    return ApiGate(
        app, authorize=lambda h: authorize(store, h), body_limits={"/score": 1 << 20},
        key_paths=("/metrics",),
    )  # fmt: skip


def _assert_down(r) -> None:
    assert r.status_code == 503, r.text
    assert r.json() == DOWN
    assert r.headers["retry-after"] == "5"


def _score(c):
    return c.post("/score", json={"claims": [EXAMPLE]})


# -- SQLite: the gate, the app, the recording --------------------------------------------------


def test_the_gate_answers_503_with_retry_after_while_the_store_is_down_then_recovers(
    store, outage, tmp_path
):
    key = store.create_key("tests")
    with _client(_gated(create_app(_state(tmp_path), store, Settings()), store), key) as c:
        assert _score(c).status_code == 200
        outage.begin()
        _assert_down(_score(c))
        _assert_down(c.get("/metrics"))  # a key path without a body
        outage.end()
        assert _score(c).status_code == 200


def test_the_app_alone_answers_503_when_its_key_check_fails_then_recovers(store, outage, tmp_path):
    key = store.create_key("tests")
    with _client(create_app(_state(tmp_path), store, Settings()), key) as c:
        outage.begin()
        for r in (_score(c), c.post("/score_xml", content=b"<x/>"), c.get("/model")):
            _assert_down(r)
        outage.end()
        assert _score(c).status_code == 200


def test_recording_scores_on_an_unreachable_postgresql_is_503_not_500(store, tmp_path):
    key = store.create_key("tests")
    gone = Store(f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/x", migrate=False)
    state = _state(tmp_path)
    state.score_records = lambda claims, actor, served=None: gone.record_scores(
        [{"claim_id": "A", "model_version": "0"}], actor=actor, open_bands=("high",)
    )
    app = _gated(create_app(state, store, Settings()), store)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as c:
        _assert_down(_score(c))


def test_which_database_errors_mean_unavailable():
    orig = Exception("boom")
    assert store_unavailable(OperationalError("SELECT 1", {}, orig))
    assert store_unavailable(DBAPIError("SELECT 1", {}, orig, connection_invalidated=True))
    assert not store_unavailable(DBAPIError("SELECT 1", {}, orig))
    assert not store_unavailable(IntegrityError("INSERT", {}, orig))
    assert not store_unavailable(ValueError("not a database error"))


def test_other_database_errors_stay_500(store, tmp_path):
    key = store.create_key("tests")
    state = _state(tmp_path)

    def broken(claims, actor, served=None):
        raise IntegrityError("INSERT", {}, Exception("a bug, not an outage"))

    state.score_records = broken
    app = create_app(state, store, Settings())
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/score", json={"claims": [EXAMPLE]}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 500


# -- last_used_at: at most once a minute -------------------------------------------------------


def _updates(store) -> list[str]:
    seen: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _spy(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("UPDATE"):
            seen.append(statement)

    return seen


def test_checking_a_key_writes_its_last_use_at_most_once_a_minute(store):
    key = store.create_key("tests")
    writes = _updates(store)
    for _ in range(5):
        assert store.check_key(key) == ("tests", "")
    assert len(writes) == 1  # the first use only
    (first,) = [k["last_used_at"] for k in store.list_keys()]
    assert first is not None
    with store.session.begin() as s:  # a minute and a bit later
        s.execute(update(ApiKey).values(last_used_at=now() - timedelta(seconds=61)))
    writes.clear()
    assert store.check_key(key) == ("tests", "")
    assert len(writes) == 1
    assert store.list_keys()[0]["last_used_at"] >= first


def test_a_fresh_key_is_checked_without_any_write(store):
    key = store.create_key("tests")
    store.check_key(key)
    writes = _updates(store)
    assert store.check_key(key)[0] == "tests"
    assert writes == []


# -- readiness -----------------------------------------------------------------------------------


def test_store_health_follows_the_store_and_caches_its_answer(store, outage):
    health = StoreHealth(store, ttl=0.3, timeout=2.0)
    assert health.ok()
    outage.begin()
    assert health.ok()  # cached for ttl: probes stay cheap
    time.sleep(0.35)
    assert not health.ok()
    outage.end()
    time.sleep(0.35)
    assert health.ok()  # recovered without a restart


def test_a_ping_slower_than_the_limit_counts_as_down():
    class Slow:
        def ping(self):
            time.sleep(1.0)

    health = StoreHealth(Slow(), ttl=0.0, timeout=0.1)
    t0 = time.monotonic()
    assert not health.ok()
    assert time.monotonic() - t0 < 0.5


def test_the_service_is_ready_only_with_a_model_and_a_reachable_store():
    from claimradar.service import ClaimRadar

    is_ready = ClaimRadar.inner.__is_ready__
    up = SimpleNamespace(ok=lambda: True)
    down = SimpleNamespace(ok=lambda: False)
    model = SimpleNamespace(served=object())
    assert is_ready(SimpleNamespace(state=model, store_health=up))
    assert not is_ready(SimpleNamespace(state=model, store_health=down))
    assert not is_ready(SimpleNamespace(state=SimpleNamespace(served=None), store_health=up))


# -- a real PostgreSQL server, stopped and started under the app -------------------------------


def test_postgresql_stopped_then_started_again_is_503_then_200_without_a_restart(
    own_postgres, tmp_path
):
    from serving.store import upgrade

    url = own_postgres.url
    upgrade(url)
    store = Store(url, migrate=False)
    key = store.create_key("tests")
    health = StoreHealth(store, ttl=0.0, timeout=5.0)
    app = _gated(create_app(_state(tmp_path), store, Settings()), store)
    with _client(app, key) as c:
        assert _score(c).status_code == 200
        assert health.ok()
        own_postgres.halt()  # pg_ctl stop -m fast: the pool's connections are now dead
        try:
            _assert_down(_score(c))
            _assert_down(_score(c))
            assert not health.ok()
        finally:
            own_postgres.resume()
        assert _score(c).status_code == 200  # pool_pre_ping replaced the dead connections
        assert health.ok()
    store.engine.dispose()


# -- documented in the spec, readable in the review UI -------------------------------------------


def test_the_spec_documents_503_with_retry_after_on_every_operation(store, tmp_path):
    spec = create_app(_state(tmp_path), store, Settings()).openapi()
    for path, method in (("/score", "post"), ("/score_xml", "post"), ("/model", "get")):
        down = spec["paths"][path][method]["responses"]["503"]
        assert "Retry-After" in down["headers"] and down["content"], path


def test_the_review_ui_shows_a_readable_page_while_the_store_is_down(store, outage):
    import re

    from fastapi import FastAPI

    from serving.review import create_review_app
    from serving.review.users import create_user

    create_user(store, "ana", "officer", "ana-password-123")
    outer = FastAPI()
    outer.mount("/review", create_review_app(store, secret_key="x" * 32, secure_cookies=False))
    c = TestClient(outer, follow_redirects=False, raise_server_exceptions=False)
    page = c.get("/review/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = c.post(
        "/review/login", data={"username": "ana", "password": "ana-password-123", "csrf": token}
    )
    assert r.status_code == 303
    assert c.get("/review/queue").status_code == 200
    outage.begin()
    for r in (c.get("/review/queue"), c.get("/review/cases/1")):
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert "text/html" in r.headers["content-type"]
        assert "Traceback" not in r.text and "OperationalError" not in r.text
        assert "Kho hồ sơ tạm thời không truy cập được" in r.text
    outage.end()
    assert c.get("/review/queue").status_code == 200  # recovered without a restart


def test_a_worker_shutting_down_answers_503_not_500(store, tmp_path):
    """A request that reaches a worker whose case writer has closed (SIGTERM: the writer drains
    and stops taking writes) cannot be recorded: 503 with Retry-After, as for an outage."""
    from serving.writer import CaseWriter

    key = store.create_key("tests")
    writer = CaseWriter(store)
    writer.close()
    state = _state(tmp_path)
    state.score_records = lambda claims, actor, served=None: writer.write([], {}, None, actor)
    state.score_envelope = lambda data, actor, served=None: writer.write([], {}, None, actor)
    with _client(create_app(state, store, Settings()), key) as c:
        _assert_down(_score(c))
        _assert_down(c.post("/score_xml", content=b"<GIAMDINHHS/>"))  # the envelope route too


def test_recording_that_concurrent_writers_keep_winning_answers_503_not_500(
    store, tmp_path, monkeypatch
):
    """Every attempt of a write lost to a concurrent writer (serving.records.ATTEMPTS): 503
    with Retry-After, never 500."""
    import serving.records as records

    def lost(*args, **kwargs):
        raise IntegrityError("INSERT", {}, Exception("another worker recorded it first"))

    monkeypatch.setattr(records, "_record", lost)
    monkeypatch.setattr(records.time, "sleep", lambda s: None)
    key = store.create_key("tests")
    state = _state(tmp_path)
    state.score_records = lambda claims, actor, served=None: store.record_scores(
        [{"claim_id": "A", "model_version": "0"}], actor=actor, open_bands=("high",)
    )
    with _client(create_app(state, store, Settings()), key) as c:
        _assert_down(_score(c))
