"""The BentoML service: `claimradar serve` (or `bentoml serve claimradar.service:ClaimRadar`).

A new-style BentoML service whose HTTP surface is a FastAPI app (serving/api.py) mounted with
`@bentoml.asgi_app`, so the routes take API keys and answer with field-level errors, while BentoML
adds /livez, /readyz (ready once a model is loaded and while the case store answers), Prometheus
/metrics and /docs.json (which documents the mounted routes too). The review UI is mounted at
/review.

At start each worker loads the champion from the MLflow registry through BentoML's model store,
with the profile snapshot saved beside it, then polls the registry: a promotion is served
without a restart, and requests in flight finish on the model they started with.
"""

from __future__ import annotations

import logging
import os

import bentoml
from fastapi import FastAPI

from claimradar.settings import (
    body_limits,
    get_settings,
    ingest_limits,
    request_limits,
    review_options,
)

log = logging.getLogger("claimradar.service")

# The routes are added to this app when a worker starts (they need its store and model state);
# BentoML mounts it at import time.
app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


def _build(settings):
    from serving import api
    from serving.metrics import Metrics
    from serving.online import ScoringState
    from serving.shadow import ShadowState
    from serving.store import Store

    store = Store(settings.case_store_url, data_key=settings.data_secret())
    args = (settings.tracking_uri, settings.artifact_root, settings.linkage_key.get_secret_value())
    common = {
        "store": store,
        "limits": ingest_limits(settings),
        "reload_seconds": settings.model_poll_seconds,
        "model_store": True,
        "request_limits": request_limits(settings),
    }
    state = ScoringState(*args, **common, online_store=settings.online_store)
    metrics = Metrics(every=1.0)
    state.combiner.observe = metrics.batch
    shadow = ShadowState(*args, **common)  # the challenger, scored beside the champion
    inner = api.create_app(state, store, settings, metrics, shadow=shadow)
    for route in inner.router.routes:
        app.router.routes.append(route)
    app.exception_handlers.update(inner.exception_handlers)
    try:
        from serving.review import create_review_app
        from serving.review.dashboard import registry_versions

        app.mount(
            "/review",
            create_review_app(
                store,
                secret_key=settings.review_secret(),
                **review_options(settings),
                monitoring_dir=settings.monitor_dir,
                model_versions=registry_versions(settings.tracking_uri, settings.artifact_root),
            ),
        )
    except ImportError:  # the review UI is optional in a slim image
        log.warning("review UI not available")
    return store, state, shadow


class Gate:
    """ASGI middleware on BentoML's whole app (app-level middleware of the mounted FastAPI app
    would be lost: only its routes are copied). serving.limits.ApiGate with the settings: the
    scoring routes need a valid key before their body is read, and their body is bounded per route
    (413 before parsing); BentoML's /metrics (counts of claims, bands and errors) needs a key too.
    Only /livez, /readyz and the spec stay open. Prometheus sends the key as
    `authorization: {credentials: <key>}` in its scrape config."""

    def __init__(self, app) -> None:
        from serving.limits import ApiGate

        self._store = None
        self.gate = ApiGate(
            app,
            authorize=self._authorize,
            body_limits=body_limits(get_settings()),
            key_paths=("/metrics",),
        )

    def _authorize(self, header: str):
        from serving.api import authorize

        if self._store is None:
            from serving.store import Store

            self._store = Store(get_settings().case_store_url, migrate=False)
        return authorize(self._store, header)

    async def __call__(self, scope, receive, send) -> None:
        await self.gate(scope, receive, send)


# BentoML's defaults (bentoml/_internal/configuration/v2/default_configuration.yaml)
ACCESS_LOG_SKIP = ["/metrics", "/healthz", "/livez", "/readyz"]


def telemetry_config(settings) -> dict:
    """The service config that keeps the scoring routes (those with a body limit) out of the
    access log and the traces unless `scoring_telemetry` is on (claimradar.settings)."""
    if settings.scoring_telemetry:
        return {}
    routes = list(body_limits(settings))
    return {
        "logging": {"access": {"skip_paths": [*ACCESS_LOG_SKIP, *routes]}},  # path prefixes
        "tracing": {"excluded_urls": [f"{r}$" for r in routes]},  # searched in the URL
    }


@bentoml.service(
    name="claimradar",
    workers=int(os.environ.get("CLAIMRADAR_WORKERS", "1")),  # `claimradar serve --workers N`
    traffic={"timeout": 120, "max_concurrency": 64},
    http={"port": 3000},
    **telemetry_config(get_settings()),
)
@bentoml.asgi_app(app, path="/")
class ClaimRadar:
    def __init__(self) -> None:
        os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
        settings = get_settings()
        from claimradar.cli.serve import DEMO_ENV, DEV_KEY_REFUSED, uses_dev_key

        if uses_dev_key(settings) and os.environ.get(DEMO_ENV) != "1":
            raise RuntimeError(DEV_KEY_REFUSED)  # `bentoml serve` of a bento, without --demo
        self.store, self.state, self.shadow = _build(settings)
        from serving.store import StoreHealth

        self.store_health = StoreHealth(self.store, ttl=2.0, timeout=2.0)  # SELECT 1, cached
        try:
            self.state.load()
        except Exception:  # a registry not reachable yet: /readyz says so, the poll retries
            log.exception("could not load a model at start")
        self.state.watch()
        try:
            self.shadow.load()  # the challenger, if one is registered beside a champion
        except Exception:
            log.exception("could not load the shadow challenger at start")
        self.shadow.watch()

    def __is_ready__(self) -> bool:
        # not ready while the case store is unreachable (every keyed request would be 503)
        return self.state.served is not None and self.store_health.ok()

    @bentoml.on_shutdown
    def drain(self) -> None:
        """A worker stopping (SIGTERM): stop polling; the case writer records every write it
        accepted before the worker exits (serving.writer)."""
        self.shadow.stop()
        self.state.stop()


ClaimRadar.add_asgi_middleware(Gate)
