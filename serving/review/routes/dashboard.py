"""The supervisors' dashboard: what the review recovered, how the bands hit, drift alerts and the
model versions in service."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from serving.review import i18n
from serving.review.dashboard import (
    DashboardConfig,
    dashboard_view,
    hit_rate_chart,
    money_chart,
)
from serving.review.deps import Config, Supervisor, lang_of, render

router = APIRouter()


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, user: Supervisor, cfg: Config):
    settings = getattr(request.app.state, "dashboard", None) or DashboardConfig()
    v = dashboard_view(cfg.store, settings)
    lang = lang_of(request)

    def t(k: str) -> str:
        return i18n.text(k, lang)

    charts = {
        "money": money_chart(v["by_month"], (t("money_rejected"), t("expected_decided"))),
        "hit_rate": hit_rate_chart(v["by_month"], (t("hit_rate"), t("expected_hit_rate"))),
    }
    return render(request, "dashboard.html", v=v, charts=charts)
