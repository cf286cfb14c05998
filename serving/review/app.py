"""The review web app (FastAPI, server-rendered Jinja2): sign-in, the queue, cases, decisions,
approvals, facilities, the audit trail and exports. Mounted by the service at /review; every link
is built from the request's root path, so it works under any mount point.

Security: argon2id passwords with lockout; server-side sessions (the cookie is a signed random
token, HttpOnly, SameSite=Lax, Secure unless turned off for plain-HTTP tests); a CSRF token on
every form (HMAC of the session token); the role checked on every route; a strict Content
Security Policy (no inline script or style); personal data never in URLs or logs, and card and ID
numbers masked except for supervisors.

The routes are in `serving.review.routes` (one APIRouter per area), what they share (the account
and its role, the CSRF-checked form, the render) in `serving.review.deps`.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from itsdangerous import Signer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import DBAPIError

from serving.review.dashboard import DashboardConfig
from serving.review.deps import Denied, Redirect, ReviewConfig, render
from serving.review.errors import NotFound
from serving.review.routes import ROUTERS
from serving.review.routes import dashboard as dashboard_routes
from serving.review.throttle import LoginGuard
from serving.store import RETRY_AFTER_SECONDS, Store, store_unavailable

log = logging.getLogger("claimradar.review")
HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def create_review_app(
    store: Store,
    *,
    secret_key: str,
    secure_cookies: bool = True,
    approval_threshold: float = 5_000_000.0,
    max_failures: int = 5,
    lock_minutes: int = 15,
    session_hours: float = 8.0,
    idle_minutes: float = 60.0,
    per_page: int = 50,
    lock_clients: int = 2,
    backoff_after: int = 10,
    backoff_base: float = 1.0,
    max_form_fields: int = 20_000,
    max_form_bytes: int = 2_000_000,
    max_login_bytes: int = 16_384,
    export_rows: int = 100_000,
    monitoring_dir: Path | None = None,
    model_versions=None,
) -> FastAPI:
    """The review UI over `store`. `secret_key` signs the session cookie and derives the CSRF
    tokens (keep it secret and stable across restarts and replicas). Rejections of more than
    `approval_threshold` VND, and accepts of high-band claims, wait for a supervisor.

    Sign-in (docs/review.md, Security): a client address failing more than `backoff_after` times
    waits `backoff_base` seconds, doubled at each further failure (at most `lock_minutes`);
    `max_failures` failures of one user name from one client lock that name for that client for
    `lock_minutes`; the account locks for everybody after `max_failures × lock_clients` failures
    from at least `lock_clients` clients. Posted forms: at most `max_form_bytes` (413) and
    `max_form_fields` fields (a case's lines post two each), no files; the sign-in form at most
    `max_login_bytes`, url-encoded only. The queue shows `per_page` cases a page and an export
    holds at most `export_rows` rows; `claimradar.settings.review_options` gives all of these from
    the typed settings. The supervisors' dashboard shows the drift alerts of the
    latest report in `monitoring_dir` and the versions `model_versions()` names (serving.review.
    dashboard)."""
    if len(secret_key) < 16:
        raise ValueError("secret_key must have at least 16 characters")
    app = FastAPI(title="claimradar review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.review = ReviewConfig(
        store=store,
        signer=Signer(secret_key, salt="claimradar.review.session"),
        csrf_key=hashlib.sha256(("claimradar.review.csrf:" + secret_key).encode()).digest(),
        env=Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        ),
        secure_cookies=secure_cookies,
        approval_threshold=approval_threshold,
        max_failures=max_failures,
        lock_minutes=lock_minutes,
        session_hours=session_hours,
        idle_minutes=idle_minutes,
        per_page=per_page,
        guard=LoginGuard(
            max_failures=max_failures,
            lock_seconds=lock_minutes * 60.0,
            backoff_after=backoff_after,
            backoff_base=backoff_base,
        ),
        lock_clients=lock_clients,
        max_form_fields=max_form_fields,
        max_form_bytes=max_form_bytes,
        max_login_bytes=max_login_bytes,
        export_rows=export_rows,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.middleware("http")(security_headers)
    app.add_exception_handler(Redirect, _redirect)
    app.add_exception_handler(Denied, _denied)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(DBAPIError, _store_down)
    app.state.dashboard = DashboardConfig(monitoring_dir, model_versions)
    for router in (*ROUTERS, dashboard_routes.router):
        app.include_router(router)
    return app


async def security_headers(request: Request, call_next):
    try:
        resp = await call_next(request)
    except Exception:
        log.exception("review UI error on %s %s", request.method, request.url.path)
        raise
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    return resp


async def _redirect(request: Request, exc: Redirect):
    return RedirectResponse(exc.url, status_code=303)


async def _denied(request: Request, exc: Denied):
    return render(request, "error.html", exc.status, message_key=exc.key)


async def _not_found(request: Request, exc: NotFound):
    return render(request, "error.html", 404, message_key="not_found")


async def _store_down(request: Request, exc: DBAPIError):
    """The case store cannot be reached (down, unreadable, connection lost): a readable page
    with 503 and Retry-After, never a stack trace; other database errors stay 500."""
    if not store_unavailable(exc):
        raise exc
    log.warning("review UI: case store unavailable (%s)", type(exc.orig or exc).__name__)
    resp = render(request, "error.html", 503, message_key="store_down")
    resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return resp


async def _invalid_request(request: Request, exc: RequestValidationError):
    """A malformed path id (not a number, out of range) is a page that does not exist; any
    other malformed parameter is a bad request. Never a database error."""
    if any(e.get("loc", ("",))[0] == "path" for e in exc.errors()):
        return render(request, "error.html", 404, message_key="not_found")
    return render(request, "error.html", 422, message_key="bad_request")
