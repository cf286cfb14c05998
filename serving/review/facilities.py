"""A facility's page: its claims and cases, the money rejected, the monthly early-warning series
against its peers, and its open cases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from serving.review.errors import NotFound
from serving.review.queue import QueueFilter, queue
from serving.review.users import Account
from serving.store import Case, Decision, FacilityMonth, ScoredClaim, Store


def facility_view(store: Store, facility_id: str, open_limit: int = 50) -> dict[str, Any]:
    with store.session() as s:
        months = s.scalars(
            select(FacilityMonth)
            .where(FacilityMonth.facility_id == facility_id)
            .order_by(FacilityMonth.month)
        ).all()
        stats = s.execute(
            select(
                func.count(ScoredClaim.id),
                func.coalesce(func.sum(ScoredClaim.fund_claimed), 0),
                func.max(ScoredClaim.facility_level),
            ).where(ScoredClaim.facility_id == facility_id)
        ).one()
        if not months and not stats[0]:
            raise NotFound("facility_not_found")
        cases = s.execute(
            select(Case.status, func.count(Case.id), func.sum(ScoredClaim.expected_overbilled))
            .join(ScoredClaim, Case.scored_claim_id == ScoredClaim.id)
            .where(ScoredClaim.facility_id == facility_id)
            .group_by(Case.status)
        ).all()
        rejected = s.execute(
            select(func.count(Decision.id), func.coalesce(func.sum(Decision.amount_rejected), 0))
            .join(Case, Decision.case_id == Case.id)
            .join(ScoredClaim, Case.scored_claim_id == ScoredClaim.id)
            .where(ScoredClaim.facility_id == facility_id, Decision.status == "final")
        ).one()
        name = next((m.facility_name for m in reversed(months) if m.facility_name), None)
        if name is None:
            doc = s.scalar(
                select(ScoredClaim.claim).where(ScoredClaim.facility_id == facility_id).limit(1)
            )
            name = ((doc or {}).get("summary") or {}).get("facility_name")
    by_status = {st: (int(n), float(v or 0)) for st, n, v in cases}
    open_cases = queue(
        store,
        QueueFilter(facility=facility_id),
        Account(0, "", "officer"),
        per_page=open_limit,
    )
    return {
        "facility_id": facility_id,
        "facility_name": name,
        "facility_level": (months[-1].facility_level if months else None) or stats[2],
        "claims_scored": int(stats[0]),
        "fund_claimed": float(stats[1]),
        "cases_by_status": by_status,
        "decided": int(rejected[0]),
        "rejected_amount": float(rejected[1]),
        "months": [
            {
                "month": m.month,
                "claims": m.claims,
                "cost_per_visit": m.cost_per_visit,
                "peer_cost_per_visit": m.peer_cost_per_visit,
                "growth_vs_trend": m.growth_vs_trend,
                "peer_growth_median": m.peer_growth_median,
                "growth_excess": m.growth_excess,
                "robust_z": m.robust_z,
                "warning": m.warning,
                "change": m.change,
                "mix_effect": m.mix_effect,
                "price_effect": m.price_effect,
                "volume_effect": m.volume_effect,
                "shift_z": m.shift_z,
                "evidence": m.evidence,
            }
            for m in months
        ],
        "open_cases": open_cases,
    }
