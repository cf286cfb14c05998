"""The review workflow's store operations: the queue and its filters, a case with its claim,
history and audit, assignment, decisions with optimistic locking, supervisor approval, facility
pages, and the audit trail. Each write is one transaction that also writes its audit event.

Concurrency: a decision is one conditional UPDATE on the case's version as the transaction's first
statement, so of two officers deciding the same version exactly one wins on SQLite and on
PostgreSQL alike; the other gets `Conflict` with the case as it now is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import aliased

from serving.review.users import Account
from serving.store import (
    OUTCOMES,
    AuditEvent,
    Case,
    Decision,
    FacilityMonth,
    ScoredClaim,
    Store,
    User,
    now,
)

# Reason codes (docs/review.md): code -> (Vietnamese, English, outcomes it may go with).
REASON_CODES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "A01": ("Hồ sơ hợp lệ, chi phí đúng", "Claim valid, costs correct", ("accept",)),
    "A02": (
        "Bất thường có giải trình hợp lý trong bệnh án",
        "Anomaly explained by the medical record",
        ("accept",),
    ),
    "X01": ("Thẻ BHYT không hợp lệ / mượn thẻ", "Card invalid or borrowed", ("reject_full",)),
    "X02": ("Hồ sơ trùng lặp", "Duplicate claim", ("reject_full", "reject_part")),
    "X03": (
        "Không có thực (dịch vụ không thực hiện)",
        "Service not provided (ghost)",
        ("reject_full", "reject_part"),
    ),
    "X04": ("Đơn giá vượt giá phê duyệt", "Price above the approved price", ("reject_part",)),
    "X05": (
        "Ngoài danh mục được thanh toán",
        "Item outside the approved list",
        ("reject_full", "reject_part"),
    ),
    "X06": (
        "Chỉ định không cần thiết / vượt số lượng",
        "Not medically necessary or excessive quantity",
        ("reject_full", "reject_part"),
    ),
    "X07": (
        "Ngày giường vượt thời gian điều trị",
        "Bed-days beyond the stay",
        ("reject_part",),
    ),
    "X08": (
        "Tách dịch vụ (đã bao gồm trong giá khác)",
        "Unbundled: already included in another price",
        ("reject_part",),
    ),
    "X09": (
        "Sai mã bệnh, loại KCB hoặc mức hưởng",
        "Wrong diagnosis code, visit type or benefit level",
        ("reject_full", "reject_part"),
    ),
    "X10": (
        "Thời gian điều trị chồng lấn / cấp thuốc trùng",
        "Overlapping stay or drug supply",
        ("reject_full", "reject_part"),
    ),
    "X11": (
        "Thiếu hoặc không khớp hồ sơ, chứng từ",
        "Missing or inconsistent documentation",
        ("reject_full", "reject_part"),
    ),
    "X99": (
        "Lý do khác (ghi rõ trong ghi chú)",
        "Other (explain in the note)",
        ("reject_full", "reject_part"),
    ),
}  # fmt: skip
QUEUE_STATUSES = ("todo", "open", "assigned", "pending_approval", "decided", "all")
DECIDABLE = ("open", "assigned")


class WorkflowError(Exception):
    """An action the case's state or the user's role does not allow; `key` names the message."""

    def __init__(self, key: str, **detail: Any):
        super().__init__(key)
        self.key, self.detail = key, detail


class NotFound(WorkflowError):
    pass


class Invalid(WorkflowError):
    """Field errors of a decision form: field -> message key."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("invalid")
        self.errors = errors


class Conflict(WorkflowError):
    """Someone changed the case since the form was loaded; `case` is its state now."""

    def __init__(self, case: dict):
        super().__init__("conflict")
        self.case = case


# -- the queue ----------------------------------------------------------------------------------
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


def queue(
    store: Store, f: QueueFilter, user: Account, page: int = 1, per_page: int = 50
) -> dict[str, Any]:
    """Cases by priority (the scorer's money at stake: the expected overbilled amount, raised to the
    rules' amount and to novelty money for unusual claims; the bands are cut on it), largest
    first; the page asked for; the count and the sums of priority and of expected overbilled of
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
            base.order_by(Case.priority.desc(), Case.id)
            .offset((page - 1) * per_page)
            .limit(per_page)
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
        .order_by(Case.priority.desc(), Case.id)
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


# -- one case -----------------------------------------------------------------------------------
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
        return {
            "case": {
                "id": c.id,
                "claim_id": c.claim_id,
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


def patient_history(
    store: Store, person_key: str | None, claim_id: str, limit: int = 12
) -> list[dict]:
    """The same person's other scored claims (newest first), without identifiers."""
    if not person_key:
        return []
    with store.session() as s:
        rows = s.execute(
            select(ScoredClaim, Case.id, Case.status)
            .outerjoin(Case, Case.claim_id == ScoredClaim.claim_id)
            .where(ScoredClaim.person_key == person_key, ScoredClaim.claim_id != claim_id)
            .order_by(ScoredClaim.month.desc(), ScoredClaim.id.desc())
            .limit(limit * 3)
        ).all()
    seen: set[str] = set()
    out = []
    for sc, case_id, status in rows:
        if sc.claim_id in seen:
            continue
        seen.add(sc.claim_id)
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


def _case_state(s, case_id: int) -> dict:
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
            state = _case_state(s, case_id)
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
        return _case_state(s, case_id)


# -- decisions ----------------------------------------------------------------------------------
@dataclass
class DecisionForm:
    outcome: str = ""
    reason_code: str = ""
    note: str = ""
    part_mode: str = "amount"  # "amount" or "lines"
    amount: str = ""
    lines: dict[str, tuple[str, str]] = field(default_factory=dict)  # line_id -> (qty, price)

    @classmethod
    def from_form(cls, form: dict[str, str]) -> DecisionForm:
        lines = {}
        for k, v in form.items():
            if k.startswith("qty_"):
                lid = k[4:]
                lines[lid] = (str(v).strip(), str(form.get(f"price_{lid}", "")).strip())
        return cls(
            outcome=str(form.get("outcome", "")),
            reason_code=str(form.get("reason_code", "")),
            note=str(form.get("note", ""))[:4000],
            part_mode="lines" if form.get("part_mode") == "lines" else "amount",
            amount=str(form.get("amount", "")).strip(),
            lines=lines,
        )


def _number(text: str) -> float | None:
    """A number typed by an officer: '1.250.000' or '1,250,000' or '1250000.5' or '1250000,5'."""
    t = text.replace(" ", "").replace("\u00a0", "")
    if not t:
        return None
    if re.fullmatch(r"\d{1,3}(\.\d{3})+(,\d+)?", t):
        t = t.replace(".", "").replace(",", ".")
    elif re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", t):
        t = t.replace(",", "")
    else:
        t = t.replace(",", ".")
    try:
        v = float(t)
    except ValueError:
        return None
    return v if v == v and abs(v) != float("inf") else None


def evaluate(form: DecisionForm, doc: dict, claimed: float) -> tuple[float, list[dict]]:
    """The fund amount rejected by a decision form, and the line adjustments; raises Invalid."""
    errors: dict[str, str] = {}
    if form.outcome not in OUTCOMES:
        raise Invalid({"outcome": "err_outcome"})
    code = REASON_CODES.get(form.reason_code)
    if code is None or form.outcome not in code[2]:
        errors["reason_code"] = "err_reason_code"
    if form.reason_code == "X99" and not form.note.strip():
        errors["note"] = "err_note_required"
    adjustments: list[dict] = []
    amount = 0.0
    if form.outcome == "reject_full":
        amount = claimed
    elif form.outcome == "reject_part" and form.part_mode == "amount":
        v = _number(form.amount)
        if v is None or v <= 0 or v > claimed + 0.005:
            errors["amount"] = "err_amount"
        else:
            amount = round(v, 2)
    elif form.outcome == "reject_part":
        by_id = {ln["line_id"]: ln for ln in doc.get("lines", [])}
        for lid, (qt, pt) in form.lines.items():
            line = by_id.get(lid)
            if line is None:
                continue
            q0, p0 = float(line.get("quantity") or 0), float(line.get("unit_price") or 0)
            q = q0 if qt == "" else _number(qt)
            p = p0 if pt == "" else _number(pt)
            if q is None or q < 0 or q > q0 + 1e-9:
                errors[f"qty_{lid}"] = "err_line_qty"
                continue
            if p is None or p < 0 or p > p0 + 1e-9:
                errors[f"price_{lid}"] = "err_line_price"
                continue
            if abs(q - q0) < 1e-9 and abs(p - p0) < 1e-9:
                continue
            billed = float(line.get("amount") or q0 * p0)
            fund = line.get("fund_claimed")
            share = float(fund) / billed if fund is not None and billed > 0 else 1.0
            rejected = round(max(0.0, billed - q * p) * share, 2)
            adjustments.append(
                {
                    "line_id": lid,
                    "code": line.get("code"),
                    "quantity": q0,
                    "unit_price": p0,
                    "approved_quantity": q,
                    "approved_price": p,
                    "rejected_amount": rejected,
                }
            )
        amount = round(min(sum(a["rejected_amount"] for a in adjustments), claimed), 2)
        if amount <= 0 and not any(k.startswith(("qty_", "price_")) for k in errors):
            errors["lines"] = "err_no_line_change"
    if errors:
        raise Invalid(errors)
    return amount, adjustments


def decide(
    store: Store,
    case_id: int,
    user: Account,
    version: int,
    form: DecisionForm,
    *,
    approval_threshold: float,
) -> dict:
    """Record a decision on the version of the case the user saw. Above `approval_threshold`
    (VND rejected) it waits for a supervisor. Raises Invalid, Conflict, WorkflowError."""
    view = case_view(store, case_id)
    claimed = float(
        view["scored"]["fund_claimed"] or view["doc"].get("summary", {}).get("fund_claimed") or 0.0
    )
    amount, adjustments = evaluate(form, view["doc"], claimed)
    pending = amount > approval_threshold
    status = "pending_approval" if pending else "decided"
    owner = [Case.assignee_id.is_(None), Case.assignee_id == user.id]
    with store.session.begin() as s:
        # The conditional update is the first statement: SQLite takes its write lock on a fresh
        # snapshot, PostgreSQL re-checks the row after a concurrent commit; one writer wins.
        cond = [Case.id == case_id, Case.version == version, Case.status.in_(DECIDABLE)]
        if not user.at_least("supervisor"):
            cond.append(or_(*owner))
        res = s.execute(
            update(Case)
            .where(and_(*cond))
            .values(
                status=status,
                assignee_id=func.coalesce(Case.assignee_id, user.id),
                version=version + 1,
                updated_at=now(),
            )
        )
        if res.rowcount != 1:
            state = _case_state(s, case_id)
            if state["version"] != version:
                raise Conflict(state)
            if state["status"] not in DECIDABLE:
                raise WorkflowError("err_not_decidable")
            raise WorkflowError("err_not_yours")
        d = Decision(
            case_id=case_id,
            officer_id=user.id,
            outcome=form.outcome,
            amount_rejected=amount,
            amount_claimed=claimed,
            reason_code=form.reason_code,
            note=form.note.strip() or None,
            line_adjustments=adjustments,
            status="pending_approval" if pending else "final",
            decided_at=now(),
        )
        s.add(d)
        s.flush()
        store.audit(
            s,
            user.username,
            "decide",
            "case",
            case_id,
            before={
                "status": view["case"]["status"],
                "assignee": view["case"]["assignee"],
                "version": version,
            },
            after={
                "status": status,
                "version": version + 1,
                "decision_id": d.id,
                "outcome": form.outcome,
                "amount_rejected": amount,
                "amount_claimed": claimed,
                "reason_code": form.reason_code,
                "note": d.note,
                "line_adjustments": adjustments,
                "decision_status": d.status,
            },
        )
        return {"decision_id": d.id, "status": status, "amount_rejected": amount}


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
            raise Conflict(_case_state(s, case_id))
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
            raise Conflict(_case_state(s, case_id))
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


# -- facilities ------------------------------------------------------------------------------------
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
            }
            for m in months
        ],
        "open_cases": open_cases,
    }


# -- audit ---------------------------------------------------------------------------------------
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
