"""Signing in and out (argon2id with lockout; the sign-in form has its own CSRF token, bound to a
cookie nonce), the language toggle and the home redirect. The only routes open without a session.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from serving.review import i18n, users
from serving.review.deps import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    CheckedForm,
    Config,
    LoginForm,
    Officer,
    base,
    csrf_for,
    render,
    same,
    set_cookie,
)

router = APIRouter()
LOGIN_ERRORS = ("login_bad", "login_locked", "login_wait", "csrf_failed")
ANSWERS = {"locked": "login_locked", "wait": "login_wait"}


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, error: str = ""):
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    resp = render(
        request,
        "login.html",
        login_csrf=csrf_for(request, nonce, "login"),
        error=error if error in LOGIN_ERRORS else "",
    )
    set_cookie(resp, request, LOGIN_COOKIE, nonce, max_age=3600)
    return resp


@router.post("/login")
def login(request: Request, form: LoginForm, cfg: Config):  # plain def: argon2 verification
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not same(form.get("csrf", ""), csrf_for(request, nonce, "login")):
        return RedirectResponse(base(request) + "/login?error=csrf_failed", status_code=303)
    user, why = users.authenticate(
        cfg.store,
        form.get("username", ""),
        form.get("password", ""),
        max_failures=cfg.max_failures,
        lock_minutes=cfg.lock_minutes,
        client=request.client.host if request.client else "",
        guard=cfg.guard,
        lock_clients=cfg.lock_clients,
    )
    if user is None:
        key = ANSWERS.get(why, "login_bad")
        return RedirectResponse(base(request) + f"/login?error={key}", status_code=303)
    token = users.open_session(cfg.store, user, cfg.session_hours)
    resp = RedirectResponse(base(request) + "/queue", status_code=303)
    set_cookie(
        resp,
        request,
        SESSION_COOKIE,
        cfg.signer.sign(token.encode()).decode(),
        max_age=int(cfg.session_hours * 3600),
    )
    resp.delete_cookie(LOGIN_COOKIE, path=(base(request) or "") + "/")
    return resp


@router.post("/logout")
def logout(request: Request, user: Officer, form: CheckedForm, cfg: Config):
    users.close_session(cfg.store, request.state.token, actor=user.username)
    resp = RedirectResponse(base(request) + "/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path=(base(request) or "") + "/")
    return resp


@router.get("/lang/{code}")
def set_lang(request: Request, code: str, next: str = ""):
    b = base(request)
    target = next if next.startswith(b + "/") and not next.startswith("//") else b + "/queue"
    resp = RedirectResponse(target, status_code=303)
    set_cookie(resp, request, LANG_COOKIE, code if code in i18n.LANGS else "vi",
               max_age=365 * 86400)  # fmt: skip
    return resp


@router.get("/")
def home(request: Request):
    return RedirectResponse(base(request) + "/queue", status_code=303)
