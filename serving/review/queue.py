"""The review queue: its filters, the cases by money at stake (a page, or all of them for the
exports), and the values the filters offer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from serving.models import queue_order
from serving.review.users import Account
from serving.store import Case, FacilityMonth, ScoredClaim, Store, User

QUEUE_STATUSES = ("todo", "open", "assigned", "pending_approval", "decided", "all")


@dataclass
class QueueFilter:
    facility: str = ""
    level: str = ""
    month: str = ""
    band: str = ""
    rule: str = ""
    reason: str = ""
    status: str = "todo"
    assignee: str = ""  # "", "me", "none" or a user id

    @classmethod
    def from_params(cls, p: dict[str, str]) -> QueueFilter:
        def clean(name: str, pattern: str) -> str:
            v = str(p.get(name) or "").strip()
            return v if re.fullmatch(pattern, v) else ""

        status = str(p.get("status") or "todo")
        return cls(
            facility=clean("facility", r"[0-9A-Z]{5}"),
            level=clean("level", r"TW|T|H|X"),
            month=clean("month", r"\d{4}-\d{2}"),
            band=clean("band", r"high|review|watch|low"),
            rule=clean("rule", r"R\d{2}"),
            reason=clean("reason", r"[a-z0-9_]{1,64}"),
            status=status if status in QUEUE_STATUSES else "todo",
            assignee=clean("assignee", r"me|none|\d{1,9}"),
        )

    def params(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v and not (k == "status" and v == "todo")}


def _where(f: QueueFilter, user: Account) -> list:
    w = []
    if f.facility:
        w.append(ScoredClaim.facility_id == f.facility)
    if f.level:
        w.append(ScoredClaim.facility_level == f.level)
    if f.month:
        w.append(ScoredClaim.month == f.month)
    if f.band:
        w.append(ScoredClaim.band == f.band)
    if f.rule:
        w.append(ScoredClaim.rule_codes.like(f"%,{f.rule},%"))
    if f.reason:
        w.append(ScoredClaim.reason_features.like(f"%,{f.reason},%"))
    if f.status == "todo":
        w.append(Case.status.in_(("open", "assigned", "pending_approval")))
    elif f.status != "all":
        w.append(Case.status == f.status)
    if f.assignee == "me":
        w.append(Case.assignee_id == user.id)
    elif f.assignee == "none":
        w.append(Case.assignee_id.is_(None))
    elif f.assignee:
        w.append(Case.assignee_id == int(f.assignee))
    return w


QUEUE_ORDER = queue_order()


def queue(
    store: Store, f: QueueFilter, user: Account, page: int = 1, per_page: int = 50
) -> dict[str, Any]:
    """Cases in queue order (scoring.ranking): the high band first (the model's own surest money and
    the most money at stake), then the review band, each by money at stake, largest first; the
    page asked for; the count and the sums of priority and of expected overbilled of
    every case the filter keeps."""
    where = _where(f, user)
    base = select(Case, ScoredClaim, User.username).join(
        ScoredClaim, Case.scored_claim_id == ScoredClaim.id
    )
    base = base.outerjoin(User, Case.assignee_id == User.id).where(*where)
    with store.session() as s:
        count, total, expected = s.execute(
            select(
                func.count(Case.id),
                func.coalesce(func.sum(Case.priority), 0),
                func.coalesce(func.sum(ScoredClaim.expected_overbilled), 0),
            )
            .select_from(Case)
            .join(ScoredClaim, Case.scored_claim_id == ScoredClaim.id)
            .where(*where)
        ).one()
        pages = max(1, -(-count // per_page))
        page = min(max(1, page), pages)
        rows = s.execute(
            base.order_by(*QUEUE_ORDER).offset((page - 1) * per_page).limit(per_page)
        ).all()
        return {
            "rows": [_queue_row(c, sc, name) for c, sc, name in rows],
            "count": int(count),
            "sum": float(total or 0),
            "sum_expected": float(expected or 0),
            "page": page,
            "pages": pages,
            "per_page": per_page,
        }


def queue_all(store: Store, f: QueueFilter, user: Account, limit: int = 100_000) -> list[dict]:
    """Every case the filter keeps, in queue order (for exports)."""
    q = (
        select(Case, ScoredClaim, User.username)
        .join(ScoredClaim, Case.scored_claim_id == ScoredClaim.id)
        .outerjoin(User, Case.assignee_id == User.id)
        .where(*_where(f, user))
        .order_by(*QUEUE_ORDER)
        .limit(limit)
    )
    with store.session() as s:
        return [_queue_row(c, sc, name) for c, sc, name in s.execute(q).all()]


def _queue_row(c: Case, sc: ScoredClaim, assignee: str | None) -> dict[str, Any]:
    summary = (sc.claim or {}).get("summary", {})
    top = (sc.reasons or [{}])[0] if sc.reasons else {}
    return {
        "case_id": c.id,
        "claim_id": c.claim_id,
        "status": c.status,
        "assignee": assignee,
        "version": c.version,
        "facility_id": sc.facility_id,
        "facility_name": summary.get("facility_name"),
        "facility_level": sc.facility_level,
        "month": sc.month,
        "band": sc.band,
        "risk_score": sc.risk_score,
        "priority": c.priority,
        "expected_overbilled": sc.expected_overbilled,
        "fund_claimed": sc.fund_claimed,
        "visit_type": summary.get("visit_type"),
        "primary_icd": summary.get("primary_icd"),
        "rules": [h.get("code") for h in sc.rule_hits or []],
        "rule_amount": sum(float(h.get("amount") or 0) for h in sc.rule_hits or []),
        "top_reason_vi": top.get("text_vi"),
        "top_reason_en": top.get("text_en"),
        "model_version": sc.model_version,
    }


def filter_options(store: Store) -> dict[str, list]:
    """Values the queue's filters offer, read from the cases."""
    with store.session() as s:
        j = select(ScoredClaim).join(Case, Case.scored_claim_id == ScoredClaim.id)
        sub = j.subquery()
        facilities = s.execute(
            select(sub.c.facility_id).distinct().order_by(sub.c.facility_id)
        ).scalars()
        months = s.execute(select(sub.c.month).distinct().order_by(sub.c.month.desc())).scalars()
        levels = s.execute(select(sub.c.facility_level).distinct()).scalars()
        reasons: set[str] = set()
        for text in s.execute(select(sub.c.reason_features).distinct()).scalars():
            reasons.update(x for x in (text or "").split(",") if x)
        names = dict(
            s.execute(select(FacilityMonth.facility_id, FacilityMonth.facility_name)).all()
        )
        users = s.execute(select(User.id, User.username).order_by(User.username)).all()
    order = {"TW": 0, "T": 1, "H": 2, "X": 3}
    return {
        "facilities": [(f, names.get(f)) for f in facilities if f],
        "months": [m for m in months if m],
        "levels": sorted((lv for lv in levels if lv), key=lambda x: order.get(x, 9)),
        "reasons": sorted(reasons),
        "users": [(i, n) for i, n in users],
    }
