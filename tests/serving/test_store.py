"""The case store on SQLite and on a real PostgreSQL server (`store_url`, see conftest.py):
migrations, API keys, idempotent scores and case opening, the immutable audit trail, and "take next"
under concurrency (threads and separate processes)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

import serving.store as store_mod
from serving.store import ApiKey, AuditEvent, Base, Case, ScoredClaim, Store, User, upgrade

ROOT = Path(__file__).resolve().parents[2]
TABLES = {"users", "api_keys", "scored_claims", "cases", "decisions", "audit_events"}


@pytest.fixture
def stores():
    """Stores made by a test, disposed afterwards (so its PostgreSQL database can be dropped)."""
    made: list[Store] = []

    def make(url: str, **kw) -> Store:
        made.append(Store(url, **kw))
        return made[-1]

    yield make
    for s in made:
        s.engine.dispose()


def _engine(url: str):
    return create_engine(url, poolclass=NullPool)


def _head() -> str:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_mod.__file__).parent / "migrations"))
    return ScriptDirectory.from_config(cfg).get_current_head()


def _schema(url: str) -> dict:
    eng = _engine(url)
    try:
        with eng.connect() as c:
            insp = inspect(c)
            out = {
                t: (
                    sorted(col["name"] for col in insp.get_columns(t)),
                    sorted(str(i["name"]) for i in insp.get_indexes(t)),
                    sorted(str(u["name"]) for u in insp.get_unique_constraints(t)),
                )
                for t in insp.get_table_names()
            }
            out["@version"] = MigrationContext.configure(c).get_current_revision()
            out["@triggers"] = _triggers(c)
            return out
    finally:
        eng.dispose()


def _triggers(conn) -> list[str]:
    if conn.dialect.name == "sqlite":
        q = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'"
    else:
        q = (
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
            "AND tgrelid = to_regclass('audit_events')"
        )
    return sorted(conn.execute(text(q)).scalars())


def _add_users(store: Store, *names: str) -> dict[str, int]:
    with store.session.begin() as s:
        users = [User(username=n, password_hash="x", role="officer") for n in names]
        s.add_all(users)
        s.flush()
        return {u.username: u.id for u in users}


def _row(claim_id: str, band: str, priority: float, version: str = "3", **kw) -> dict:
    return {
        "claim_id": claim_id,
        "model_version": version,
        "risk_score": 0.5,
        "expected_overbilled": kw.pop("expected", round(priority / 2, 2)),
        "priority": priority,
        "band": band,
        "facility_id": "01001",
        "month": "2025-03",
        "fund_claimed": 1000.0,
        "reasons": [{"code": "r1", "text_en": "more drugs than peers"}],
        "rule_hits": [],
        **kw,
    }


def _open_cases(store: Store, n: int) -> list[int]:
    rows = [_row(f"C{i:03d}", "high" if i % 2 else "review", 1000.0 - i) for i in range(n)]
    assert store.record_scores(rows, actor="test", open_bands=("high", "review")) == n
    with store.session() as s:
        return list(s.scalars(select(Case.id)))


# -- migrations ---------------------------------------------------------------------------------


def test_migrations_create_the_schema_from_empty_and_rerun_is_a_no_op(store_url):
    before = _schema(store_url)
    assert not TABLES & set(before), "the database should start empty"
    assert before["@version"] is None

    upgrade(store_url)
    first = _schema(store_url)
    assert TABLES | {"alembic_version"} <= set(first)
    assert first["@version"] == _head()
    assert len(first["@triggers"]) >= 1  # the audit trail's guards exist
    # every model column exists in the migrated database
    for table in Base.metadata.sorted_tables:
        assert {c.name for c in table.columns} <= set(first[table.name][0]), table.name

    store = Store(store_url, migrate=False)
    try:
        store.create_key("kept")
        upgrade(store_url)  # second upgrade: nothing changes, nothing is lost
        assert _schema(store_url) == first
        assert [k["name"] for k in store.list_keys()] == ["kept"]
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(AuditEvent)) == 1
    finally:
        store.engine.dispose()


def test_migrated_schema_matches_the_models(store_url, stores):
    """No drift between the migrations and the SQLAlchemy models (alembic autogenerate finds
    nothing to add or drop)."""
    from alembic.autogenerate import compare_metadata

    stores(store_url)
    eng = _engine(store_url)
    try:
        with eng.connect() as c:
            diffs = compare_metadata(MigrationContext.configure(c), Base.metadata)
    finally:
        eng.dispose()
    structural = [d for d in diffs if d[0] in ("add_table", "remove_table", "add_column")]
    structural += [d for d in diffs if d[0] == "remove_column" and d[2] in Base.metadata.tables]
    assert structural == []


# -- API keys -------------------------------------------------------------------------------------


def test_api_keys_create_check_revoke(store_url, stores):
    store = stores(store_url)
    key = store.create_key("claims-system")
    assert key.startswith("crk_") and len(key) > 30
    other = store.create_key("batch")
    assert other != key

    assert store.check_key(key) == ("claims-system", "")
    assert store.check_key(other) == ("batch", "")
    name, why = store.check_key(key + "x")
    assert name is None and why == "unknown API key"
    assert store.check_key("")[0] is None

    listed = {k["name"]: k for k in store.list_keys()}
    assert set(listed) == {"claims-system", "batch"}
    assert listed["claims-system"]["prefix"] == key[:10]
    assert listed["claims-system"]["last_used_at"] is not None
    assert listed["claims-system"]["revoked_at"] is None

    with pytest.raises(ValueError, match="claims-system"):
        store.create_key("claims-system")

    assert store.revoke_key("claims-system") is True
    assert store.revoke_key("claims-system") is False  # already revoked
    assert store.revoke_key("nobody") is False
    name, why = store.check_key(key)
    assert name is None and "revoked" in why
    assert store.check_key(other) == ("batch", "")  # the other key still works
    assert {k["name"]: k for k in store.list_keys()}["claims-system"]["revoked_at"] is not None

    with store.session() as s:
        actions = [(e.action, e.entity_id) for e in s.scalars(select(AuditEvent))]
    assert actions == [
        ("create", "claims-system"),
        ("create", "batch"),
        ("revoke", "claims-system"),
    ]


def _all_text(url: str) -> str:
    """Every row of every table, as text."""
    eng = _engine(url)
    try:
        with eng.connect() as c:
            out = []
            for t in inspect(c).get_table_names():
                for row in c.execute(text(f'SELECT * FROM "{t}"')):
                    out.append(" ".join(map(str, row)))
            return "\n".join(out)
    finally:
        eng.dispose()


def test_api_keys_are_stored_only_as_a_hash(store_url, stores):
    store = stores(store_url)
    key = store.create_key("claims-system")
    store.check_key(key)
    dump = _all_text(store_url)
    assert store_mod._sha256(key) in dump  # what is stored: the hash (and a short prefix)
    assert key not in dump
    assert key[10:] not in dump  # not even the secret part beyond the displayed prefix
    with store.session() as s:
        (k,) = s.scalars(select(ApiKey))
        assert k.key_hash == store_mod._sha256(key) and k.prefix == key[:10]
    if store_url.startswith("sqlite:///"):  # nor in the database files' bytes (db, WAL)
        path = Path(store_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert store_mod._sha256(key).encode() in raw
        assert key[10:].encode() not in raw


# -- scored claims and cases ---------------------------------------------------------------------


def test_record_scores_is_idempotent_and_opens_cases_only_for_review_bands(store_url, stores):
    store = stores(store_url)
    rows = [
        _row("A", "high", 900.0, expected=100.0),
        _row("B", "review", 500.0, expected=400.0),
        _row("C", "watch", 200.0),
        _row("D", "low", 1.0),
    ]
    bands = ("high", "review")
    assert store.record_scores(rows, actor="api:test", open_bands=bands) == 4
    assert store.record_scores(rows, actor="api:test", open_bands=bands) == 0
    # a batch mixing seen and new claims adds only the new ones
    more = [rows[0], _row("E", "review", 300.0)]
    assert store.record_scores(more, actor="api:test", open_bands=bands) == 1

    with store.session() as s:
        scored = s.scalars(select(ScoredClaim).order_by(ScoredClaim.claim_id)).all()
        cases = {c.claim_id: c for c in s.scalars(select(Case))}
        opened = s.scalars(select(AuditEvent).where(AuditEvent.action == "open")).all()
    assert [c.claim_id for c in scored] == ["A", "B", "C", "D", "E"]
    assert scored[0].reasons == rows[0]["reasons"] and scored[0].month == "2025-03"
    assert set(cases) == {"A", "B", "E"}
    assert all(c.status == "open" and c.assignee_id is None for c in cases.values())
    # the queue ranks like the scorer: by the scored priority (the bands are cut on it)
    assert cases["A"].priority == 900.0 and cases["B"].priority == 500.0
    # the events name the case (like every other case event) and the claim (facility/MA_LK)
    assert sorted(e.after["claim"] for e in opened) == ["01001/A", "01001/B", "01001/E"]
    assert {e.entity_id for e in opened} == {str(c.id) for c in cases.values()}
    assert {e.actor for e in opened} == {"api:test"}

    # a new model version scores the same claim again, but the claim keeps its one case
    again = [_row("A", "high", 950.0, version="4"), _row("C", "high", 800.0, version="4")]
    assert store.record_scores(again, actor="api:test", open_bands=bands) == 2
    with store.session() as s:
        versions = s.scalars(select(ScoredClaim.model_version).where(ScoredClaim.claim_id == "A"))
        assert sorted(versions) == ["3", "4"]
        assert sorted(s.scalars(select(Case.claim_id))) == ["A", "B", "C", "E"]
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 4


def test_take_next_hands_out_cases_in_the_queue_order(store_url, stores):
    """The high band first (the model's surest money: a head claim may carry less money at stake
    than a review-band one), then money at stake: the queue page's order."""
    store = stores(store_url)
    rows = [
        _row("low", "review", 10.0), _row("top", "high", 99.0), _row("mid", "high", 50.0),
        _row("rich", "review", 70.0),
    ]  # fmt: skip
    store.record_scores(rows, actor="t", open_bands=("high", "review"))
    uid = _add_users(store, "ana")["ana"]
    got = [store.take_next(uid, "ana") for _ in range(5)]
    assert [c.claim_id if c else None for c in got] == ["top", "mid", "rich", "low", None]
    assert all(c.status == "assigned" and c.assignee_id == uid and c.version == 2 for c in got[:4])


# -- the audit trail is immutable -----------------------------------------------------------------


def _expect_immutable(store: Store, sql: str) -> None:
    with pytest.raises(DBAPIError, match="audit events are immutable"), store.engine.begin() as c:
        c.execute(text(sql))


def test_audit_events_cannot_be_updated_or_deleted(store_url, stores):
    store = stores(store_url)
    store.create_key("k1")
    store.revoke_key("k1")  # other tables stay writable
    with store.session() as s:
        before = [(e.id, e.actor, e.action, e.entity_id) for e in s.scalars(select(AuditEvent))]
    assert len(before) == 2

    _expect_immutable(store, "UPDATE audit_events SET actor = 'someone else'")
    _expect_immutable(store, "UPDATE audit_events SET after = NULL WHERE id = 1")
    _expect_immutable(store, "DELETE FROM audit_events WHERE id = 1")
    _expect_immutable(store, "DELETE FROM audit_events")
    if store_url.startswith("postgresql"):  # TRUNCATE skips row triggers: a statement trigger
        _expect_immutable(store, "TRUNCATE audit_events")
    # through the ORM too
    with pytest.raises(DBAPIError, match="audit events are immutable"):  # noqa: SIM117
        with store.session.begin() as s:
            s.scalars(select(AuditEvent)).first().actor = "forged"
    with pytest.raises(DBAPIError, match="audit events are immutable"):  # noqa: SIM117
        with store.session.begin() as s:
            s.delete(s.scalars(select(AuditEvent)).first())

    with store.session() as s:
        after = [(e.id, e.actor, e.action, e.entity_id) for e in s.scalars(select(AuditEvent))]
    assert after == before
    store.create_key("k2")  # inserting still works
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 3


# -- concurrency: "take next" never gives one case to two officers ------------------------------


def test_take_next_from_many_threads_at_once(store_url, stores):
    store = stores(store_url)
    n_threads, n_cases = 8, 40
    ids = _open_cases(store, n_cases)
    users = _add_users(store, *(f"u{i}" for i in range(n_threads)))
    barrier = threading.Barrier(n_threads)
    got: dict[str, list] = {u: [] for u in users}
    errors: list[BaseException] = []

    def officer(name: str) -> None:
        try:
            barrier.wait()  # round 1: everyone asks once, at the same moment; 8 <= 40 cases
            got[name].append(store.take_next(users[name], name))
            barrier.wait()  # round 2: everyone takes until the queue is empty
            while (case := store.take_next(users[name], name)) is not None:
                got[name].append(case)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=officer, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert all(got[u][0] is not None for u in users), "a take_next came back empty"
    handed = [(u, c.id) for u in users for c in got[u]]
    assert len(handed) == n_cases
    assert sorted(cid for _, cid in handed) == sorted(ids)  # each case once, none twice
    _check_assignments(store, {cid: users[u] for u, cid in handed})


def _check_assignments(store: Store, owner: dict[int, int]) -> None:
    with store.session() as s:
        cases = s.scalars(select(Case)).all()
        assigned = s.scalars(select(AuditEvent).where(AuditEvent.action == "assign")).all()
    assert all(c.status == "assigned" and c.version == 2 for c in cases)
    assert {c.id: c.assignee_id for c in cases} == owner
    assert sorted(int(e.entity_id) for e in assigned) == sorted(owner)


CHILD = textwrap.dedent(
    """
    import json, sys, threading, time
    from pathlib import Path
    from serving.store import Store

    url, go, users = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    store = Store(url, migrate=False)
    out = {u: [] for u in users}
    def officer(name):
        while (case := store.take_next(users[name], name)) is not None:
            out[name].append(case.id)
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    threads = [threading.Thread(target=officer, args=(u,)) for u in users]
    for t in threads: t.start()
    for t in threads: t.join()
    store.engine.dispose()
    print(json.dumps(out), flush=True)
    """
)


def test_take_next_from_two_processes_at_once(store_url, stores, tmp_path):
    store = stores(store_url)
    ids = _open_cases(store, 150)  # enough that both processes are still taking when both run
    users = _add_users(store, *(f"u{i}" for i in range(6)))
    go = tmp_path / "go"
    procs = []
    for part in (("u0", "u1", "u2"), ("u3", "u4", "u5")):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", CHILD, store_url, str(go), json.dumps(
                    {u: users[u] for u in part})],
                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        )  # fmt: skip
    try:
        for p in procs:  # both processes connected and waiting, then both start at once
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    taken = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    per_process = [sorted(c for cs in t.values() for c in cs) for t in taken]
    # No fairness is promised (on SQLite one process may hold the write lock throughout): what
    # holds is that no case goes to both processes and every case goes to someone, once.
    assert not set(per_process[0]) & set(per_process[1])
    handed = [(u, c) for t in taken for u, cs in t.items() for c in cs]
    assert sorted(c for _, c in handed) == sorted(ids)
    _check_assignments(store, {c: users[u] for u, c in handed})


# -- SQLite specifics -----------------------------------------------------------------------------


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path, stores):
    path = tmp_path / "sub" / "cases.db"
    store = stores(f"sqlite:///{path}")
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    raw = sqlite3.connect(path)  # WAL is a property of the file: any other client sees it
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()
    # readers do not block a writer: a write commits while a read transaction is open (in the
    # rollback-journal mode it would wait for the reader and fail with "database is locked")
    reader, writer = sqlite3.connect(path, timeout=0.5), sqlite3.connect(path, timeout=0.5)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM users").fetchone() == (0,)
        writer.execute(
            "INSERT INTO users (username, password_hash, role, active, failed_logins, created_at)"
            " VALUES ('w', 'x', 'officer', 1, 0, '2025-01-01')"
        )
        writer.commit()
        assert reader.execute("SELECT count(*) FROM users").fetchone() == (0,)  # its snapshot
        reader.rollback()
        assert reader.execute("SELECT count(*) FROM users").fetchone() == (1,)
    finally:
        reader.close()
        writer.close()
