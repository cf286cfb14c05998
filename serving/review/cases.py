"""One case: its view (the case, the scored claim, the claim document, the decisions), the
patient's other claims, its current state, and taking it (assignment with optimistic locking)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import aliased

from serving.review.errors import Conflict, NotFound
from serving.review.users import Account
from serving.store import Case, Decision, FacilityMonth, ScoredClaim, Store, User, now

DECIDABLE = ("open", "assigned")


def case_view(store: Store, case_id: int) -> dict[str, Any]:
    officer, supervisor, assignee = aliased(User), aliased(User), aliased(User)
    with store.session() as s:
        row = s.execute(
            select(Case, ScoredClaim, assignee.username)
            .join(ScoredClaim, Case.scored_claim_id == ScoredClaim.id)
            .outerjoin(assignee, Case.assignee_id == assignee.id)
            .where(Case.id == case_id)
        ).first()
        if row is None:
            raise NotFound("case_not_found")
        c, sc, assignee_name = row
        decisions = s.execute(
            select(Decision, officer.username, supervisor.username)
            .join(officer, Decision.officer_id == officer.id)
            .outerjoin(supervisor, Decision.supervisor_id == supervisor.id)
            .where(Decision.case_id == c.id)
            .order_by(Decision.id.desc())
        ).all()
        warned = s.scalars(
            select(FacilityMonth).where(
                FacilityMonth.facility_id == sc.facility_id,
                FacilityMonth.month == sc.month,
                FacilityMonth.warning.is_(True),
            )
        ).first()
        return {
            "facility_warning": _warning(warned),
            "identity": _identity(store, sc),
            "case": {
                "id": c.id,
                "claim_id": c.claim_id,
                "claim_key": c.claim_key,
                "claim_version": c.claim_version or 1,
                "status": c.status,
                "assignee_id": c.assignee_id,
                "assignee": assignee_name,
                "version": c.version,
                "opened_at": c.opened_at,
                "updated_at": c.updated_at,
                "priority": c.priority,
            },
            "scored": {
                "risk_score": sc.risk_score,
                "expected_overbilled": sc.expected_overbilled,
                "band": sc.band,
                "model_version": sc.model_version,
                "facility_id": sc.facility_id,
                "facility_level": sc.facility_level,
                "month": sc.month,
                "fund_claimed": sc.fund_claimed,
                "reasons": sc.reasons or [],
                "rule_hits": sc.rule_hits or [],
                "person_key": sc.person_key,
                "scored_at": sc.scored_at,
            },
            "doc": sc.claim or {},
            "decisions": [
                {
                    "id": d.id,
                    "outcome": d.outcome,
                    "amount_rejected": d.amount_rejected,
                    "amount_claimed": d.amount_claimed,
                    "reason_code": d.reason_code,
                    "note": d.note,
                    "line_adjustments": d.line_adjustments or [],
                    "status": d.status,
                    "officer": o,
                    "officer_id": d.officer_id,
                    "supervisor": sup,
                    "supervisor_note": d.supervisor_note,
                    "decided_at": d.decided_at,
                    "approved_at": d.approved_at,
                }
                for d, o, sup in decisions
            ],
        }


def _identity(store: Store, sc: ScoredClaim) -> dict:
    """The claim's identity fields, opened with the data key; {} when the store has no key or
    the sealed value does not open with it (a key changed: the page shows no identity)."""
    from serving.sealing import SealError

    try:
        return store.identity(sc.identity, sc.claim_key)
    except SealError:
        return {}


def _warning(m: FacilityMonth | None) -> dict | None:
    """The early warning of the claim's facility in the claim's month, with its decomposition."""
    if m is None:
        return None
    return {
        "month": m.month,
        "change": m.change,
        "mix_effect": m.mix_effect,
        "price_effect": m.price_effect,
        "volume_effect": m.volume_effect,
        "evidence": m.evidence,
    }


def patient_history(
    store: Store, person_key: str | None, claim_key: str | None, limit: int = 12
) -> list[dict]:
    """The same person's other scored claims (newest first, the latest version of each),
    without identifiers. `claim_key`: the claim of the case (facility/MA_LK), left out."""
    if not person_key:
        return []
    with store.session() as s:
        rows = s.execute(
            select(ScoredClaim, Case.id, Case.status)
            .outerjoin(Case, Case.claim_key == ScoredClaim.claim_key)
            .where(ScoredClaim.person_key == person_key, ScoredClaim.claim_key != claim_key)
            .order_by(ScoredClaim.month.desc(), ScoredClaim.id.desc())
            .limit(limit * 3)
        ).all()
    seen: set[str] = set()
    out = []
    for sc, case_id, status in rows:
        if sc.claim_key in seen:
            continue
        seen.add(sc.claim_key)
        summary = (sc.claim or {}).get("summary", {})
        out.append(
            {
                "admitted_at": summary.get("admitted_at"),
                "discharged_at": summary.get("discharged_at"),
                "facility_id": sc.facility_id,
                "facility_name": summary.get("facility_name"),
                "visit_type": summary.get("visit_type"),
                "primary_icd": summary.get("primary_icd"),
                "diagnosis": summary.get("discharge_diagnosis"),
                "fund_claimed": sc.fund_claimed,
                "band": sc.band,
                "risk_score": sc.risk_score,
                "case_id": case_id,
                "case_status": status,
            }
        )
    out.sort(key=lambda r: r["admitted_at"] or "", reverse=True)
    return out[:limit]


def case_state(s, case_id: int) -> dict:
    c = s.get(Case, case_id)
    if c is None:
        raise NotFound("case_not_found")
    name = (
        s.scalar(select(User.username).where(User.id == c.assignee_id)) if c.assignee_id else None
    )
    last = s.execute(
        select(Decision, User.username)
        .join(User, Decision.officer_id == User.id)
        .where(Decision.case_id == case_id)
        .order_by(Decision.id.desc())
        .limit(1)
    ).first()
    return {
        "id": c.id,
        "status": c.status,
        "version": c.version,
        "assignee": name,
        "updated_at": c.updated_at,
        "last_by": last[1] if last else None,
        "last_outcome": last[0].outcome if last else None,
    }


def assign(store: Store, case_id: int, user: Account, version: int) -> dict:
    """Take an open, unassigned case (the version the user saw)."""
    with store.session.begin() as s:
        res = s.execute(
            update(Case)
            .where(
                Case.id == case_id,
                Case.version == version,
                Case.status == "open",
                Case.assignee_id.is_(None),
            )
            .values(assignee_id=user.id, status="assigned", version=version + 1, updated_at=now())
        )
        if res.rowcount != 1:
            state = case_state(s, case_id)
            raise Conflict(state)
        store.audit(
            s,
            user.username,
            "assign",
            "case",
            case_id,
            before={"status": "open", "assignee": None, "version": version},
            after={"status": "assigned", "assignee": user.username, "version": version + 1},
        )
        return case_state(s, case_id)
