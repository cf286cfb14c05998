"""A facility's page: its monthly cost against same-level peers, the early warning, its cases."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from serving.review import charts, i18n
from serving.review.deps import Config, Officer, lang_of, render
from serving.review.errors import NotFound
from serving.review.facilities import facility_view

router = APIRouter()


@router.get("/facilities/{facility_id}", response_class=HTMLResponse)
def facility(request: Request, facility_id: str, user: Officer, cfg: Config):
    if not facility_id.isalnum() or len(facility_id) > 5:
        raise NotFound("facility_not_found")
    v = facility_view(cfg.store, facility_id)
    lang = lang_of(request)
    chart = charts.trend(
        v["months"],
        lang,
        (i18n.text("this_facility", lang), i18n.text("peers_level", lang),
         i18n.text("warning", lang)),
    )  # fmt: skip
    return render(request, "facility.html", v=v, chart=chart, last=(v["months"] or [None])[-1])
