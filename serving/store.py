"""The case store: scored claims, cases, decisions, users, API keys and an immutable audit trail.

SQLAlchemy 2 over SQLite (WAL) by default or PostgreSQL by URL; the schema is created and evolved by
Alembic migrations (serving/migrations). Concurrency is handled in the database: conditional
updates give "take next" to exactly one officer, and a version column turns two simultaneous
decisions into one winner and one clear conflict.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

ROLES = ("officer", "supervisor", "admin")
CASE_STATUSES = ("open", "assigned", "pending_approval", "decided")
OUTCOMES = ("accept", "reject_full", "reject_part")
# A key's last use is written at most this often: checking a key is a read, not a write per call.
KEY_USE_RESOLUTION = timedelta(minutes=1)
# What a request is answered when the database cannot be reached (issue 13): 503, retry later.
UNAVAILABLE_STATUS = 503
UNAVAILABLE_DETAIL = "the case store is unavailable; retry later"
RETRY_AFTER_SECONDS = 5


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ScoredClaim(Base):
    __tablename__ = "scored_claims"
    __table_args__ = (UniqueConstraint("claim_id", "model_version", name="uq_scored_claim"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claim_id: Mapped[str] = mapped_column(String(100), index=True)
    model_version: Mapped[str] = mapped_column(String(32))
    risk_score: Mapped[float] = mapped_column(Float)
    expected_overbilled: Mapped[float] = mapped_column(Float)
    priority: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(16), index=True)
    facility_id: Mapped[str | None] = mapped_column(String(5), index=True, nullable=True)
    facility_level: Mapped[str | None] = mapped_column(String(4), nullable=True)
    month: Mapped[str | None] = mapped_column(String(7), index=True, nullable=True)
    fund_claimed: Mapped[float | None] = mapped_column(Float, nullable=True)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rule_hits: Mapped[list[Any]] = mapped_column(JSON, default=list)
    claim: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scored_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    # 0002: the patient's linkage key (a keyed hash, never the identity) for the history, and the
    # rule codes and reason features as ",R06,R14," text so the queue filters with LIKE on any DB
    person_key: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    rule_codes: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reason_features: Mapped[str | None] = mapped_column(Text, nullable=True)


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claim_id: Mapped[str] = mapped_column(String(100), unique=True)
    scored_claim_id: Mapped[int] = mapped_column(ForeignKey("scored_claims.id"))
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    priority: Mapped[float] = mapped_column(Float, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now)


class Decision(Base):
    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    amount_rejected: Mapped[float] = mapped_column(Float, default=0.0)
    reason_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    line_adjustments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="final")
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # 0002: what the claim asked of the fund when decided, and the supervisor's note on approval
    amount_claimed: Mapped[float | None] = mapped_column(Float, nullable=True)
    supervisor_note: Mapped[str | None] = mapped_column(Text, nullable=True)


class WebSession(Base):
    """0002: a signed-in browser session of the review UI; the cookie holds the token, the table
    only its hash, so logging out or deactivating a user ends the session at once."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class FacilityMonth(Base):
    """0002: a facility's month as the early warning sees it (features/early_warning.py), written
    when a scored batch fills the store: cost per visit, the same-level peers' median, the growth
    against its own trend, and the warning."""

    __tablename__ = "facility_months"
    __table_args__ = (UniqueConstraint("facility_id", "month", name="uq_facility_month"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[str] = mapped_column(String(5), index=True)
    month: Mapped[str] = mapped_column(String(7))
    facility_level: Mapped[str | None] = mapped_column(String(4), nullable=True)
    facility_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    claims: Mapped[int] = mapped_column(Integer, default=0)
    cost_per_visit: Mapped[float | None] = mapped_column(Float, nullable=True)
    peer_cost_per_visit: Mapped[float | None] = mapped_column(Float, nullable=True)
    growth_vs_trend: Mapped[float | None] = mapped_column(Float, nullable=True)
    peer_growth_median: Mapped[float | None] = mapped_column(Float, nullable=True)
    growth_excess: Mapped[float | None] = mapped_column(Float, nullable=True)
    robust_z: Mapped[float | None] = mapped_column(Float, nullable=True)
    warning: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    # 0004: the change against the facility's own baseline, split into case mix, price and volume
    # (VND per visit), the volume-aware z of the within-cell change, and the cells that moved
    change: Mapped[float | None] = mapped_column(Float, nullable=True)
    mix_effect: Mapped[float | None] = mapped_column(Float, nullable=True)
    price_effect: Mapped[float | None] = mapped_column(Float, nullable=True)
    volume_effect: Mapped[float | None] = mapped_column(Float, nullable=True)
    shift_z: Mapped[float | None] = mapped_column(Float, nullable=True)
    evidence: Mapped[str | None] = mapped_column(String(1000), nullable=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=now, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(100), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


# ---------------------------------------------------------------------------------------------


def make_engine(url: str) -> Engine:
    """The one engine factory (the store and the migrations). hide_parameters: a failing
    statement's error (logs, tracebacks) never shows the bound values: names, card numbers."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30}, pool_pre_ping=True, hide_parameters=True
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


def upgrade(url: str) -> None:
    """Bring the database to the newest migration."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


class Store:
    """The case store's operations; each method is one transaction."""

    def __init__(self, url: str, migrate: bool = True):
        self.url = url
        if migrate:
            upgrade(url)
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
        s.add(
            AuditEvent(
                actor=actor,
                action=action,
                entity=entity,
                entity_id=str(entity_id),
                before=_plain(before),
                after=_plain(after),
            )
        )

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
        conditional update, so concurrent workers do not all write it."""
        with self.session.begin() as s:
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
    def record_scores(self, rows: list[dict], actor: str, open_bands: tuple[str, ...]) -> int:
        """Insert scored claims idempotently by (claim_id, model_version); open cases for the
        review bands. Returns the number of new scored claims."""
        ids = list({str(r["claim_id"]) for r in rows})
        with self.session.begin() as s:
            # what is already recorded, read in a few queries (not one per row)
            done: set[tuple[str, str]] = set()
            with_case: set[str] = set()
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                done.update(
                    (c, v)
                    for c, v in s.execute(
                        select(ScoredClaim.claim_id, ScoredClaim.model_version).where(
                            ScoredClaim.claim_id.in_(part)
                        )
                    )
                )
                with_case.update(s.scalars(select(Case.claim_id).where(Case.claim_id.in_(part))))
            added = []
            for r in rows:
                key = (str(r["claim_id"]), str(r["model_version"]))
                if key in done:
                    continue
                done.add(key)
                sc = ScoredClaim(**{k: r.get(k) for k in _SCORED_FIELDS if k in r})
                sc.model_version = key[1]
                _derive(sc)
                s.add(sc)
                added.append(sc)
            s.flush()  # ids for the cases
            for sc in added:
                if sc.band not in open_bands or sc.claim_id in with_case:
                    continue
                with_case.add(sc.claim_id)
                s.add(Case(claim_id=sc.claim_id, scored_claim_id=sc.id, priority=sc.priority))
                self.audit(
                    s,
                    actor,
                    "open",
                    "case",
                    sc.claim_id,
                    after={
                        "priority": sc.priority,
                        "expected_overbilled": sc.expected_overbilled,
                        "band": sc.band,
                    },
                )
        return len(added)

    def take_next(self, user_id: int, username: str) -> Case | None:
        """Assign the top unassigned open case to this user; never the same case to two users."""
        for _ in range(20):
            with self.session.begin() as s:
                top = s.scalar(
                    select(Case.id)
                    .where(Case.status == "open", Case.assignee_id.is_(None))
                    .order_by(Case.priority.desc(), Case.id)
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


_SCORED_FIELDS = (
    "claim_id",
    "risk_score",
    "expected_overbilled",
    "priority",
    "band",
    "facility_id",
    "facility_level",
    "month",
    "fund_claimed",
    "reasons",
    "rule_hits",
    "claim",
    "person_key",
)


def _derive(sc: ScoredClaim) -> None:
    """The filterable text of rule codes and reason features, and the person key from the claim
    document when the row does not carry it."""
    codes = sorted({str(h.get("code")) for h in sc.rule_hits or [] if h.get("code")})
    sc.rule_codes = "," + ",".join(codes) + "," if codes else None
    feats = [str(r.get("feature")) for r in sc.reasons or [] if r.get("feature")]
    sc.reason_features = "," + ",".join(feats) + "," if feats else None
    if sc.person_key is None and isinstance(sc.claim, dict):
        sc.person_key = (sc.claim.get("summary") or {}).get("person_key")


def _sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _plain(d: dict | None) -> dict | None:
    return None if d is None else json.loads(json.dumps(d, default=str))
