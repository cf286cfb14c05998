"""What every review route shares: the app's configuration (`app.state.review`), the signed-in
account with its role (`require(role)`), the CSRF-checked form, cookies, and the template render.

Routes take these as FastAPI dependencies:

    @router.post("/cases/{case_id}/take")
    def case_take(request: Request, case_id: int, user: Officer, form: CheckedForm, cfg: Config):

The account is resolved before the form (dependencies run in the order they are declared), so a
request without a session is sent to the sign-in page before its CSRF token is looked at.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, Signer
from jinja2 import Environment
from starlette.exceptions import HTTPException

from serving.review import formatting, i18n, users
from serving.review.decisions import REASON_CODES
from serving.review.throttle import LoginGuard
from serving.review.users import Account
from serving.store import ROLES, Store

SESSION_COOKIE, LOGIN_COOKIE, LANG_COOKIE = "cr_session", "cr_login", "cr_lang"
MAX_ID = 2**31 - 1  # ids and versions are 32-bit integers in the store
URLENCODED = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class ReviewConfig:
    """The review app's settings and collaborators, kept on `app.state.review`."""

    store: Store
    signer: Signer  # signs the session cookie
    csrf_key: bytes  # derives the CSRF tokens
    env: Environment  # the Jinja2 templates
    secure_cookies: bool
    approval_threshold: float
    max_failures: int
    lock_minutes: int
    session_hours: float
    idle_minutes: float
    per_page: int
    guard: LoginGuard  # sign-in backoff and locks per client address
    lock_clients: int  # distinct failing clients before an account locks for everybody
    max_form_fields: int  # fields of a posted form (a case's lines post two each)
    max_form_bytes: int  # bytes of a posted form
    max_login_bytes: int  # bytes of the sign-in form (read before anyone is authenticated)
    export_rows: int = 100_000  # rows of a queue export at most


class Redirect(Exception):
    """Answered with a 303 to `url` (e.g. the sign-in page)."""

    def __init__(self, url: str):
        self.url = url


class Denied(Exception):
    """Answered with the error page: `status` and the message `key`."""

    def __init__(self, status: int, key: str):
        self.status, self.key = status, key


def config(request: Request) -> ReviewConfig:
    return request.app.state.review


Config = Annotated[ReviewConfig, Depends(config)]


# -- small helpers ------------------------------------------------------------------------------
def base(request: Request) -> str:
    """The mount point (links are built from it)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def lang_of(request: Request) -> str:
    v = request.cookies.get(LANG_COOKIE)
    return v if v in i18n.LANGS else "vi"


def csrf_for(request: Request, token: str, purpose: str = "form") -> str:
    key = config(request).csrf_key
    return hmac.new(key, f"{purpose}:{token}".encode(), hashlib.sha256).hexdigest()


def session_token(request: Request) -> str | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        return config(request).signer.unsign(raw).decode()
    except BadSignature:
        return None


def set_cookie(resp: Response, request: Request, name: str, value: str, **kw: Any) -> None:
    resp.set_cookie(
        name,
        value,
        path=(base(request) or "") + "/",
        httponly=True,
        secure=config(request).secure_cookies,
        samesite="lax",
        **kw,
    )


# -- the account and the form -------------------------------------------------------------------
@functools.cache
def require(role: str) -> Callable[[Request], Account]:
    """A dependency: the signed-in account if it has at least `role`; without a session a
    redirect to the sign-in page, with too small a role the 403 page. One function per role, so
    FastAPI resolves it once per request however many dependencies ask for it."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")

    def current_account(request: Request) -> Account:  # plain def: a store query
        cfg = config(request)
        token = session_token(request)
        user = users.session_account(cfg.store, token, cfg.idle_minutes) if token else None
        if user is None:
            raise Redirect(base(request) + "/login")
        if not user.at_least(role):
            raise Denied(403, "forbidden")
        request.state.user, request.state.token = user, token
        return user

    current_account.role = role  # type: ignore[attr-defined]
    return current_account


Officer = Annotated[Account, Depends(require("officer"))]
Supervisor = Annotated[Account, Depends(require("supervisor"))]
Admin = Annotated[Account, Depends(require("admin"))]


async def _body(request: Request, limit: int) -> bytes:
    """The request body, at most `limit` bytes (else 413): a declared length is checked before
    anything is read, and the stream is cut as soon as it goes over."""
    declared = request.headers.get("content-length", "")
    if declared and (not declared.isdigit() or int(declared) > limit):
        raise Denied(413 if declared.isdigit() else 400, "too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Denied(413, "too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse(request: Request, body: bytes, max_fields: int) -> dict[str, str]:
    request._body = body  # Starlette's form parser reads the body we already hold
    try:
        form = await request.form(max_files=0, max_fields=max_fields)
    except (HTTPException, UnicodeDecodeError) as e:  # too many fields, a file, bad multipart
        raise Denied(400, "bad_request") from e
    return {k: str(v) for k, v in form.items()}


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form as strings (async: reading the body is awaited). Bodies over
    `max_form_bytes` are refused (413) before parsing; up to `max_form_fields` fields, no files."""
    cfg = config(request)
    return await _parse(request, await _body(request, cfg.max_form_bytes), cfg.max_form_fields)


async def login_form(request: Request) -> dict[str, str]:
    """The sign-in form, read before anyone is authenticated: url-encoded only (else 415) and
    at most `max_login_bytes` (else 413)."""
    cfg = config(request)
    body = await _body(request, cfg.max_login_bytes)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and kind != URLENCODED:
        raise Denied(415, "bad_request")
    return await _parse(request, body, 16) if body else {}


def same(given: str, expected: str) -> bool:
    """A constant-time comparison of a posted token (any text) with the expected one."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


async def csrf_form(request: Request) -> dict[str, str]:
    """The posted form once its CSRF token (an HMAC of the session token) checks out; else 403.
    Declare it after the account dependency, which sets the session token."""
    form = await form_fields(request)
    token = getattr(request.state, "token", None) or session_token(request)
    if not token or not same(form.get("csrf", ""), csrf_for(request, token)):
        raise Denied(403, "csrf_failed")
    return form


def form_int(form: dict[str, str], name: str) -> int:
    """A whole number posted in `name` (a case's version): 0 to MAX_ID, else the 400 page."""
    v = form.get(name, "").strip()
    if not (v.isascii() and v.isdigit()) or int(v) > MAX_ID:
        raise Denied(400, "bad_request")
    return int(v)


CheckedForm = Annotated[dict[str, str], Depends(csrf_form)]
RawForm = Annotated[dict[str, str], Depends(form_fields)]
LoginForm = Annotated[dict[str, str], Depends(login_form)]
# a path id: out of range (or not a number) is the 404 page (app.py), never a database error
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


# -- the page -----------------------------------------------------------------------------------
def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    """The template `name` with the page context (language, links, the user, the CSRF token,
    the formatters) and `ctx`; never cached."""
    lang = lang_of(request)
    user = getattr(request.state, "user", None)
    token = getattr(request.state, "token", None)
    b = base(request)
    msg = request.query_params.get("msg", "")

    def t(k: str, **kw: Any) -> str:
        return i18n.text(k, lang, **kw)

    def url(path: str, **params: Any) -> str:
        q = {k: v for k, v in params.items() if v not in (None, "")}
        return b + path + ("?" + urlencode(q) if q else "")

    here = request.url.path + (("?" + request.url.query) if request.url.query else "")
    html = (
        config(request)
        .env.get_template(name)
        .render(
            request=request,
            lang=lang,
            t=t,
            url=url,
            base=b,
            user=user,
            csrf=csrf_for(request, token) if token else "",
            flash=t(msg) if msg in i18n.TEXTS else "",
            here=here,
            **_formatters(lang),
            reason_codes=REASON_CODES,
            roles=ROLES,
            **ctx,
        )
    )
    resp = HTMLResponse(html, status_code=status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _formatters(lang: str) -> dict[str, Callable[..., str]]:
    side = 0 if lang == "vi" else 1
    return {
        "money": lambda x: i18n.money(x, lang),
        "num": lambda x, d=0: i18n.num(x, lang, d),
        "pct": lambda x, d=0: i18n.pct(x, lang, d),
        "when": lambda x, utc=True: i18n.when(x, lang, utc),
        "feature_label": lambda n: formatting.feature_label(n, lang),
        "feature_value": lambda v, n, unit=None: formatting.feature_value(v, n, unit, lang),
        "group_label": lambda g: i18n.GROUPS.get(g, (g, g))[side],
        "action_label": lambda a: i18n.ACTIONS.get(a, (a, a))[side],
        "visit_label": lambda v: formatting.visit_label(v, lang),
        "rule_label": lambda c: formatting.rule_label(c, lang),
    }
