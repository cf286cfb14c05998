"""Supervisor approval: approving or returning a pending decision, and the decisions waiting."""

from __future__ import annotations

from sqlalchemy import select, update

from serving.review.cases import case_state
from serving.review.errors import Conflict, Invalid, WorkflowError
from serving.review.users import Account
from serving.store import Case, Decision, ScoredClaim, Store, User, now


def review(
    store: Store, case_id: int, supervisor: Account, version: int, approve: bool, note: str = ""
) -> dict:
    """A supervisor approves a pending decision (final) or returns it to the officer."""
    if not supervisor.at_least("supervisor"):
        raise WorkflowError("err_forbidden")
    with store.session() as s:
        pending = s.scalar(
            select(Decision)
            .where(Decision.case_id == case_id, Decision.status == "pending_approval")
            .order_by(Decision.id.desc())
            .limit(1)
        )
    if pending is None:
        with store.session() as s:
            raise Conflict(case_state(s, case_id))
    if pending.officer_id == supervisor.id:
        raise WorkflowError("err_self_approval")
    if not approve and not note.strip():
        raise Invalid({"supervisor_note": "err_note_required"})
    new_status = "decided" if approve else "assigned"
    with store.session.begin() as s:
        res = s.execute(
            update(Case)
            .where(Case.id == case_id, Case.version == version, Case.status == "pending_approval")
            .values(status=new_status, version=version + 1, updated_at=now())
        )
        if res.rowcount != 1:
            raise Conflict(case_state(s, case_id))
        d = s.get(Decision, pending.id)
        d.status = "final" if approve else "returned"
        d.supervisor_id = supervisor.id
        d.supervisor_note = note.strip()[:4000] or None
        d.approved_at = now() if approve else None
        store.audit(
            s,
            supervisor.username,
            "approve" if approve else "return",
            "case",
            case_id,
            before={"status": "pending_approval", "version": version, "decision_id": d.id},
            after={
                "status": new_status,
                "version": version + 1,
                "decision_status": d.status,
                "supervisor_note": d.supervisor_note,
            },
        )
        return {"status": new_status, "decision_id": d.id}


def pending_approvals(store: Store) -> list[dict]:
    with store.session() as s:
        rows = s.execute(
            select(Decision, Case, ScoredClaim, User.username)
            .join(Case, Decision.case_id == Case.id)
            .join(ScoredClaim, Case.scored_claim_id == ScoredClaim.id)
            .join(User, Decision.officer_id == User.id)
            .where(Decision.status == "pending_approval")
            .order_by(Decision.amount_rejected.desc(), Decision.id)
        ).all()
        return [
            {
                "case_id": c.id,
                "claim_id": c.claim_id,
                "version": c.version,
                "facility_id": sc.facility_id,
                "outcome": d.outcome,
                "amount_rejected": d.amount_rejected,
                "amount_claimed": d.amount_claimed,
                "reason_code": d.reason_code,
                "officer": name,
                "decided_at": d.decided_at,
            }
            for d, c, sc, name in rows
        ]
