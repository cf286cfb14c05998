"""The audit trail: every change, newest first, by case, actor or action."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from serving.store import AuditEvent, Store


def audit_events(
    store: Store,
    *,
    case_id: int | None = None,
    claim_id: str | None = None,
    actor: str = "",
    action: str = "",
    page: int = 1,
    per_page: int = 100,
) -> dict[str, Any]:
    where = []
    if case_id is not None:
        ids = [str(case_id)] + ([claim_id] if claim_id else [])
        where += [AuditEvent.entity == "case", AuditEvent.entity_id.in_(ids)]
    if actor:
        where.append(AuditEvent.actor == actor)
    if action:
        where.append(AuditEvent.action == action)
    with store.session() as s:
        count = s.scalar(select(func.count(AuditEvent.id)).where(*where)) or 0
        pages = max(1, -(-count // per_page))
        page = min(max(1, page), pages)
        rows = s.scalars(
            select(AuditEvent)
            .where(*where)
            .order_by(AuditEvent.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
        return {
            "rows": [
                {
                    "id": e.id,
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action,
                    "entity": e.entity,
                    "entity_id": e.entity_id,
                    "before": e.before,
                    "after": e.after,
                }
                for e in rows
            ],
            "count": int(count),
            "page": page,
            "pages": pages,
        }
