"""The case store's tables (SQLAlchemy 2 models): users, API keys, scored claims (one row per
version of a claim and model version), cases, decisions, browser sessions, facility months and the
immutable audit trail. The schema is created and evolved by Alembic (serving/migrations); the
operations are in serving/store.py (and serving/records.py, recording scores)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
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
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class StoreBusy(RuntimeError):
    """The case store cannot take a write now, though it is reachable (the worker is shutting
    down, or concurrent writers kept winning): the request is answered 503 with Retry-After,
    like an outage, never 500."""


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def audit_row(
    actor: str, action: str, entity: str, entity_id: Any,
    before: dict | None = None, after: dict | None = None,
) -> dict:  # fmt: skip
    """An audit_events row: `before` and `after` through JSON and back (dates as text), as the
    trail keeps them. Store.audit adds one; serving.records inserts many at once."""

    def plain(d: dict | None) -> dict | None:
        return None if d is None else json.loads(json.dumps(d, default=str))

    return {"actor": actor, "action": action, "entity": entity, "entity_id": str(entity_id),
            "before": plain(before), "after": plain(after)}  # fmt: skip


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
    """One score of one version of a claim by one model version. 0005: a claim is identified by
    its facility and MA_LK (`claim_key`, "MA_CSKCB/MA_LK"); each distinct content (`content_hash`
    over its fields and lines) is a new `claim_version`; the same content scored again by the same
    model is the same row (the unique constraints make concurrent copies idempotent)."""

    __tablename__ = "scored_claims"
    __table_args__ = (
        UniqueConstraint("claim_key", "content_hash", "model_version", name="uq_scored_content"),
        UniqueConstraint("claim_key", "claim_version", "model_version", name="uq_scored_version"),
    )
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
    # 0005: the claim's identity and version (see above); the identity fields sealed
    # (serving/sealing.py), kept only for cases
    claim_key: Mapped[str | None] = mapped_column(String(120), nullable=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claim_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    identity: Mapped[str | None] = mapped_column(Text, nullable=True)
    # 0006: the weighted facility-shift money the priority holds (serving/month_close.py)
    shift_added: Mapped[float | None] = mapped_column(Float, nullable=True)
    # 0006: its money at stake without the shift, kept when a month close first re-ranks it
    priority_base: Mapped[float | None] = mapped_column(Float, nullable=True)


class Case(Base):
    """0005: one case per claim (`claim_key`, facility and MA_LK), on the claim's latest version
    (`claim_version`): a resubmitted claim moves its case to the new version and re-opens it."""

    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("claim_key", name="uq_case_claim"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claim_id: Mapped[str] = mapped_column(String(100), index=True)
    scored_claim_id: Mapped[int] = mapped_column(ForeignKey("scored_claims.id"))
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    priority: Mapped[float] = mapped_column(Float, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    claim_key: Mapped[str | None] = mapped_column(String(120), nullable=True)
    claim_version: Mapped[int | None] = mapped_column(Integer, nullable=True)


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
    # 0005: the version of the claim the decision was made on
    claim_version: Mapped[int | None] = mapped_column(Integer, nullable=True)


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


def queue_order() -> tuple:
    """The review queue's order in SQL (scoring.ranking.queue_order): the high band first (the
    model's surest money and the most money at stake), then money at stake, then the oldest case;
    for a select that joins ScoredClaim on Case.scored_claim_id."""
    from sqlalchemy import case

    return (case((ScoredClaim.band == "high", 0), else_=1), Case.priority.desc(), Case.id)
