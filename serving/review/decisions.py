"""Decisions: the reason codes, the decision form, the amount it rejects (whole claim, an amount,
or line by line), and recording it.

Concurrency: a decision is one conditional UPDATE on the case's version as the transaction's first
statement, so of two officers deciding the same version exactly one wins on SQLite and on
PostgreSQL alike; the other gets `Conflict` with the case as it now is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import and_, func, update

from serving.review.cases import DECIDABLE, case_state, case_view
from serving.review.errors import Conflict, Invalid, WorkflowError
from serving.review.users import Account
from serving.store import OUTCOMES, Case, Decision, Store, now

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
        adjustments = _line_adjustments(form.lines, doc, errors)
        amount = round(min(sum(a["rejected_amount"] for a in adjustments), claimed), 2)
        if amount <= 0 and not any(k.startswith(("qty_", "price_")) for k in errors):
            errors["lines"] = "err_no_line_change"
    if errors:
        raise Invalid(errors)
    return amount, adjustments


def _line_adjustments(
    lines: dict[str, tuple[str, str]], doc: dict, errors: dict[str, str]
) -> list[dict]:
    """The lines whose quantity or price an officer lowered, with the fund amount each rejects;
    field errors go to `errors`."""
    adjustments: list[dict] = []
    by_id = {ln["line_id"]: ln for ln in doc.get("lines", [])}
    for lid, (qt, pt) in lines.items():
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
    return adjustments


def decide(
    store: Store,
    case_id: int,
    user: Account,
    version: int,
    form: DecisionForm,
    *,
    approval_threshold: float,
) -> dict:
    """Record a decision on the version of the case the user saw. Officers decide only the
    cases assigned to them (supervisors any case). Four eyes: a rejection above
    `approval_threshold` (VND rejected) and an accept of a high-band claim wait for a
    supervisor. Raises Invalid, Conflict, WorkflowError ("err_not_yours")."""
    view = case_view(store, case_id)
    case = view["case"]
    # what the officer saw is not theirs (a stale version is a conflict, answered below)
    mine = user.at_least("supervisor") or case["assignee_id"] == user.id
    if not mine and case["version"] == version:
        raise WorkflowError("err_not_yours")
    claimed = float(
        view["scored"]["fund_claimed"] or view["doc"].get("summary", {}).get("fund_claimed") or 0.0
    )
    amount, adjustments = evaluate(form, view["doc"], claimed)
    pending = needs_approval(form.outcome, amount, view["scored"]["band"], approval_threshold)
    status = "pending_approval" if pending else "decided"
    with store.session.begin() as s:
        _close_case(s, case_id, user, version, status)
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
            claim_version=case["claim_version"],
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


def needs_approval(outcome: str, amount: float, band: str | None, threshold: float) -> bool:
    """Four eyes: rejections above `threshold` and accepts of high-band claims."""
    return amount > threshold or (outcome == "accept" and band == "high")


def _close_case(s, case_id: int, user: Account, version: int, status: str) -> None:
    """Move the case the user saw (`version`) to `status`, or raise Conflict or WorkflowError.
    The conditional update is the transaction's first statement: SQLite takes its write lock on a
    fresh snapshot, PostgreSQL re-checks the row after a concurrent commit; one writer wins."""
    cond = [Case.id == case_id, Case.version == version, Case.status.in_(DECIDABLE)]
    if not user.at_least("supervisor"):  # officers: only the cases assigned to them
        cond.append(Case.assignee_id == user.id)
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
        state = case_state(s, case_id)
        if state["version"] != version:
            raise Conflict(state)
        if state["status"] not in DECIDABLE:
            raise WorkflowError("err_not_decidable")
        raise WorkflowError("err_not_yours")
