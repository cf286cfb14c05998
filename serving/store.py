"""The case store: scored claims, cases, decisions, users, API keys and an immutable audit trail.

SQLAlchemy 2 over SQLite (WAL) by default or PostgreSQL by URL; the tables are in
serving/models.py, created and evolved by Alembic migrations (serving/migrations). Concurrency is
handled in the database: conditional updates give "take next" to exactly one officer, a version
column turns two simultaneous decisions into one winner and one clear conflict, and unique keys
make concurrent copies of one claim idempotent (serving/records.py).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, or_, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from serving.models import (  # noqa: F401  (the store's tables, importable from here)
    ApiKey,
    AuditEvent,
    Base,
    Case,
    Decision,
    FacilityMonth,
    ScoredClaim,
    StoreBusy,
    User,
    WebSession,
    audit_row,
    now,
    queue_order,
)

ROLES = ("officer", "supervisor", "admin")
CASE_STATUSES = ("open", "assigned", "pending_approval", "decided")
OUTCOMES = ("accept", "reject_full", "reject_part")
# A key's last use is written at most this often: checking a key is a read, not a write per call.
KEY_USE_RESOLUTION = timedelta(minutes=1)
# What a request is answered when the database cannot be reached (issue 13): 503, retry later.
UNAVAILABLE_STATUS = 503
UNAVAILABLE_DETAIL = "the case store is unavailable; retry later"
RETRY_AFTER_SECONDS = 5


# ---------------------------------------------------------------------------------------------


SQLITE_POOL = 48  # connections a worker keeps to a SQLite case store (more may open, then close)


def make_engine(url: str) -> Engine:
    """The one engine factory (the store and the migrations). hide_parameters: a failing
    statement's error (logs, tracebacks) never shows the bound values: names, card numbers."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # a connection per request thread kept open: the API's handlers run on up to 40 threads
        # a worker (anyio) and a pool of 5 closed and reopened the rest on every request (a
        # connect and its PRAGMAs, ~20% of a busy worker's CPU under 20 clients); no pre-ping:
        # a file does not drop connections (an outage disposes the pool, test_db_faults)
        engine = create_engine(
            url,
            connect_args={"timeout": 30},
            pool_size=SQLITE_POOL,
            max_overflow=SQLITE_POOL,
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # WAL lets readers and one writer work at once
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # pool_pre_ping: a connection the server dropped (restart, failover) is replaced on checkout,
    # so the service recovers without a restart; connect_timeout: a dead host fails fast
    extra = {"connect_args": {"connect_timeout": 10}} if url.startswith("postgresql") else {}
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, **extra)


def store_unavailable(exc: BaseException) -> bool:
    """Whether an exception means the database cannot be reached (down, unreadable, connection
    lost), as opposed to a bug or a constraint: those requests are answered 503, never 500."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def upgrade(url: str, data_key: str | None = None) -> None:
    """Bring the database to the newest migration. data_key: seals identities kept in clear by
    an older store (0005)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.attributes["data_key"] = data_key
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


class Store:
    """The case store's operations; each method is one transaction."""

    def __init__(self, url: str, migrate: bool = True, data_key: str | None = None):
        """data_key: seals the identity fields of cases (serving/sealing.py); without it no
        identity is kept."""
        from serving.sealing import Sealer

        self.url = url
        self.sealer = Sealer(data_key) if data_key else None
        if migrate:
            upgrade(url, data_key)
        self.engine = make_engine(url)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    # -- audit -----------------------------------------------------------------------------
    @staticmethod
    def audit(
        s: Session,
        actor: str,
        action: str,
        entity: str,
        entity_id: Any,
        before: dict | None = None,
        after: dict | None = None,
    ) -> None:
        s.add(AuditEvent(**audit_row(actor, action, entity, entity_id, before, after)))

    # -- API keys ----------------------------------------------------------------------------
    def create_key(self, name: str) -> str:
        key = "crk_" + secrets.token_urlsafe(32)
        with self.session.begin() as s:
            if s.scalar(select(ApiKey).where(ApiKey.name == name)):
                raise ValueError(f"an API key named {name!r} exists; revoke it or pick a new name")
            s.add(ApiKey(name=name, prefix=key[:10], key_hash=_sha256(key)))
            self.audit(s, "cli", "create", "api_key", name)
        return key

    def revoke_key(self, name: str) -> bool:
        with self.session.begin() as s:
            k = s.scalar(select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)))
            if k is None:
                return False
            k.revoked_at = now()
            self.audit(s, "cli", "revoke", "api_key", name)
        return True

    def list_keys(self) -> list[dict]:
        with self.session() as s:
            return [
                {
                    "name": k.name,
                    "prefix": k.prefix,
                    "created_at": k.created_at,
                    "revoked_at": k.revoked_at,
                    "last_used_at": k.last_used_at,
                }
                for k in s.scalars(select(ApiKey).order_by(ApiKey.name))
            ]

    def check_key(self, key: str) -> tuple[str | None, str]:
        """(key name, "") when valid, else (None, why). A read: `last_used_at` is written only
        when it is older than KEY_USE_RESOLUTION (at most once a minute per key), by a
        conditional update, so concurrent workers do not all write it. Core, not the ORM: it runs
        on every request."""
        with self.engine.begin() as s:
            k = s.execute(
                select(ApiKey.id, ApiKey.name, ApiKey.revoked_at, ApiKey.last_used_at).where(
                    ApiKey.key_hash == _sha256(key)
                )
            ).first()
            if k is None:
                return None, "unknown API key"
            if k.revoked_at is not None:
                return None, f"API key {k.name!r} was revoked"
            t = now()
            cutoff = t - KEY_USE_RESOLUTION
            if k.last_used_at is None or k.last_used_at <= cutoff:
                s.execute(
                    update(ApiKey)
                    .where(
                        ApiKey.id == k.id,
                        or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= cutoff),
                    )
                    .values(last_used_at=t)
                )
            return k.name, ""

    def ping(self) -> None:
        """A cheap round trip (`SELECT 1`); raises when the database cannot be reached."""
        with self.engine.connect() as c:
            c.execute(text("SELECT 1"))

    # -- scored claims and cases ------------------------------------------------------------
    def record_scores(
        self, rows: list[dict], actor: str, open_bands: tuple[str, ...], documents=None
    ) -> int:
        """Record scored rows: a claim is its facility and MA_LK, a new content a new version
        that moves (and re-opens) its case, the same content again a no-op; cases open for the
        review bands (serving/records.py). Returns the number of new scored rows. documents:
        adds the claim documents once the cases are read (serving.records.record_scores)."""
        from serving.records import record_scores

        return record_scores(self, rows, actor, open_bands, documents)

    def identity(self, sealed: str | None, claim_key: str | None) -> dict:
        """A case's identity fields, opened with the data key ({} without a key or a value)."""
        if not sealed or self.sealer is None or claim_key is None:
            return {}
        return self.sealer.open(sealed, claim_key)

    def take_next(self, user_id: int, username: str) -> Case | None:
        """Assign the top unassigned open case to this user; never the same case to two users."""
        for _ in range(20):
            with self.session.begin() as s:
                top = s.scalar(
                    select(Case.id)
                    .join(ScoredClaim, Case.scored_claim_id == ScoredClaim.id)
                    .where(Case.status == "open", Case.assignee_id.is_(None))
                    .order_by(*queue_order())  # the queue page's order
                    .limit(1)
                )
                if top is None:
                    return None
                res = s.execute(
                    update(Case)
                    .where(Case.id == top, Case.assignee_id.is_(None), Case.status == "open")
                    .values(
                        assignee_id=user_id,
                        status="assigned",
                        version=Case.version + 1,
                        updated_at=now(),
                    )
                )
                if res.rowcount == 1:
                    self.audit(s, username, "assign", "case", top, after={"assignee": username})
                    return s.get(Case, top)
        return None


class StoreHealth:
    """Whether the store answers, for readiness probes: `Store.ping` with a time limit, the
    answer kept for `ttl` seconds so frequent probes stay cheap. A ping still running past the
    limit counts as down; no second one is started until it returns."""

    def __init__(self, store: Store, ttl: float = 2.0, timeout: float = 2.0) -> None:
        self.store, self.ttl, self.timeout = store, ttl, timeout
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="store-ping")
        self._pending = None
        self._checked, self._ok = float("-inf"), False

    def ok(self) -> bool:
        with self._lock:
            if time.monotonic() - self._checked < self.ttl:
                return self._ok
            if self._pending is None or self._pending.done():
                self._pending = self._pool.submit(self.store.ping)
            try:
                self._pending.result(timeout=self.timeout)
                self._ok = True
            except Exception:  # down, unreadable, or slower than the limit
                self._ok = False
            self._checked = time.monotonic()
            return self._ok


def _sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
