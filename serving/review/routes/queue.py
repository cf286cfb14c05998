"""The queue (cases by money at stake, filtered and paged) and taking the next case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from features.rules import RULES
from serving.review.deps import CheckedForm, Config, Officer, base, render
from serving.review.queue import QUEUE_STATUSES, QueueFilter, filter_options, queue

router = APIRouter()


@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request, user: Officer, cfg: Config, page: Annotated[int, Query(ge=1, le=10**6)] = 1
):
    f = QueueFilter.from_params(dict(request.query_params))
    q = queue(cfg.store, f, user, page, cfg.per_page)
    return render(
        request,
        "queue.html",
        q=q,
        f=f,
        params=f.params(),
        options=filter_options(cfg.store),
        rules=RULES,
        statuses=QUEUE_STATUSES,
    )


@router.post("/take-next")
def take_next(request: Request, user: Officer, form: CheckedForm, cfg: Config):
    case = cfg.store.take_next(user.id, user.username)
    if case is None:
        return RedirectResponse(base(request) + "/queue?msg=no_next", status_code=303)
    return RedirectResponse(base(request) + f"/cases/{case.id}", status_code=303)
