"""A case: its page (the claim, why it was flagged, the patient's history, the audit), taking it,
deciding it, and a supervisor approving or returning a large rejection; the approvals list."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from serving.casefile import driving_lines
from serving.review import charts, i18n
from serving.review.approvals import pending_approvals, review
from serving.review.audit import audit_events
from serving.review.cases import DECIDABLE, assign, case_view, patient_history
from serving.review.decisions import DecisionForm, decide
from serving.review.deps import (
    CheckedForm,
    Config,
    Id,
    Officer,
    ReviewConfig,
    Supervisor,
    base,
    form_int,
    lang_of,
    render,
)
from serving.review.errors import Conflict, Invalid, NotFound, WorkflowError
from serving.review.formatting import identity
from serving.review.users import Account

router = APIRouter()


def case_page(
    request: Request,
    cfg: ReviewConfig,
    user: Account,
    case_id: int,
    *,
    status: int = 200,
    form: dict | None = None,
    errors: dict | None = None,
    conflict: dict | None = None,
    error_key: str = "",
) -> HTMLResponse:
    """The case page; after a failed post, with the input kept and the errors or the conflict."""
    view = case_view(cfg.store, case_id)
    doc, sc, case = view["doc"], view["scored"], view["case"]
    marks = driving_lines(doc, sc["reasons"], sc["rule_hits"])
    lang = lang_of(request)
    can_decide = case["status"] in DECIDABLE and (
        user.at_least("supervisor") or case["assignee_id"] == user.id
    )
    pending = next((d for d in view["decisions"] if d["status"] == "pending_approval"), None)
    return render(
        request,
        "case.html",
        status,
        view=view,
        case=case,
        sc=sc,
        doc=doc,
        summary=doc.get("summary", {}),
        identity=identity(view["identity"], user),
        unmasked=user.at_least("supervisor"),
        marks=marks,
        n_marked=len(marks),
        waterfall=charts.waterfall(sc["reasons"], lang, i18n.text("contrib_sum", lang)),
        history=patient_history(cfg.store, sc["person_key"], case["claim_key"]),
        audit=audit_events(cfg.store, case_id=case_id, claim_id=case["claim_id"]),
        can_decide=can_decide,
        can_take=case["status"] == "open" and case["assignee_id"] is None,
        pending=pending,
        can_review=pending is not None
        and user.at_least("supervisor")
        and pending["officer_id"] != user.id,
        form=form or {},
        errors=errors or {},
        conflict=conflict,
        error_key=error_key,
        threshold=cfg.approval_threshold,
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_get(request: Request, case_id: Id, user: Officer, cfg: Config):
    return case_page(request, cfg, user, case_id)


@router.post("/cases/{case_id}/take")
def case_take(request: Request, case_id: Id, user: Officer, form: CheckedForm, cfg: Config):
    try:
        assign(cfg.store, case_id, user, form_int(form, "version"))
    except Conflict as c:
        return case_page(request, cfg, user, case_id, status=409, conflict=c.case)
    return RedirectResponse(base(request) + f"/cases/{case_id}", status_code=303)


@router.post("/cases/{case_id}/decide")
def case_decide(request: Request, case_id: Id, user: Officer, form: CheckedForm, cfg: Config):
    kept = {k: v for k, v in form.items() if k != "csrf"}
    version = form_int(form, "version")
    try:
        out = decide(
            cfg.store,
            case_id,
            user,
            version,
            DecisionForm.from_form(form),
            approval_threshold=cfg.approval_threshold,
        )
    except Invalid as e:
        return case_page(request, cfg, user, case_id, status=422, form=kept, errors=e.errors)
    except Conflict as c:
        return case_page(request, cfg, user, case_id, status=409, form=kept, conflict=c.case)
    except NotFound:
        raise
    except WorkflowError as e:
        status = 403 if e.key == "err_not_yours" else 409
        return case_page(request, cfg, user, case_id, status=status, form=kept, error_key=e.key)
    msg = "decided_pending" if out["status"] == "pending_approval" else "decided_ok"
    return RedirectResponse(base(request) + f"/cases/{case_id}?msg={msg}", status_code=303)


@router.post("/cases/{case_id}/approve")
def case_approve(request: Request, case_id: Id, user: Supervisor, form: CheckedForm, cfg: Config):
    return _review(request, cfg, user, form, case_id, approve=True)


@router.post("/cases/{case_id}/return")
def case_return(request: Request, case_id: Id, user: Supervisor, form: CheckedForm, cfg: Config):
    return _review(request, cfg, user, form, case_id, approve=False)


def _review(
    request: Request,
    cfg: ReviewConfig,
    user: Account,
    form: dict[str, str],
    case_id: int,
    *,
    approve: bool,
):
    try:
        review(
            cfg.store,
            case_id,
            user,
            form_int(form, "version"),
            approve,
            str(form.get("supervisor_note", "")),
        )
    except Invalid as e:
        return case_page(request, cfg, user, case_id, status=422, form=form, errors=e.errors)
    except Conflict as c:
        return case_page(request, cfg, user, case_id, status=409, form=form, conflict=c.case)
    except NotFound:
        raise
    except WorkflowError as e:
        return case_page(request, cfg, user, case_id, status=403, form=form, error_key=e.key)
    msg = "approved_ok" if approve else "returned_ok"
    return RedirectResponse(base(request) + f"/cases/{case_id}?msg={msg}", status_code=303)


@router.get("/approvals", response_class=HTMLResponse)
def approvals(request: Request, user: Supervisor, cfg: Config):
    return render(request, "approvals.html", rows=pending_approvals(cfg.store))
