"""The audit trail (supervisors): every change, filtered by actor or action."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from serving.review.audit import audit_events
from serving.review.deps import Config, Supervisor, render

router = APIRouter()


@router.get("/audit", response_class=HTMLResponse)
def audit(
    request: Request,
    user: Supervisor,
    cfg: Config,
    page: int = 1,
    actor: str = "",
    action: str = "",
):
    a = audit_events(cfg.store, actor=actor[:80], action=action[:40], page=page)
    return render(request, "audit.html", a=a, actor=actor[:80], action=action[:40])
