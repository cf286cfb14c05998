"""The review web app (FastAPI, server-rendered Jinja2): sign-in, the queue, cases, decisions,
approvals, facilities, the audit trail and exports. Mounted by the service at /review; every link
is built from the request's root path, so it works under any mount point.

Security: argon2id passwords with lockout; server-side sessions (the cookie is a signed random
token, HttpOnly, SameSite=Lax, Secure unless turned off for plain-HTTP tests); a CSRF token on
every form (HMAC of the session token); the role checked on every route; a strict Content
Security Policy (no inline script or style); personal data never in URLs or logs, and card and ID
numbers masked except for supervisors.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from itsdangerous import BadSignature, Signer
from jinja2 import Environment, FileSystemLoader, select_autoescape

from features.registry import FEATURES, fmt
from features.rules import RULES
from serving.casefile import driving_lines
from serving.review import charts, i18n, users, workflow
from serving.review.users import Account
from serving.store import ROLES, Store

log = logging.getLogger("claimradar.review")
HERE = Path(__file__).parent
SESSION_COOKIE, LOGIN_COOKIE, LANG_COOKIE = "cr_session", "cr_login", "cr_lang"
RULE_BY_CODE = {r.code: r for r in RULES}
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


class _Redirect(Exception):
    def __init__(self, url: str):
        self.url = url


class _Denied(Exception):
    def __init__(self, status: int, key: str):
        self.status, self.key = status, key


def mask(value: Any, keep_start: int = 0, keep_end: int = 3) -> str:
    """'GD4797912345678' -> 'GD••••••••••678'; short values are masked whole."""
    if value is None or value == "":
        return "—"
    v = str(value)
    if len(v) <= keep_start + keep_end + 2:
        return "•" * len(v)
    return v[:keep_start] + "•" * (len(v) - keep_start - keep_end) + v[len(v) - keep_end :]


def initials(name: Any) -> str:
    if not name:
        return "—"
    return " ".join(p[0] + "." for p in str(name).split() if p)


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
) -> FastAPI:
    """The review UI over `store`. `secret_key` signs the session cookie and derives the CSRF
    tokens (keep it secret and stable across restarts and replicas). Rejections of more than
    `approval_threshold` VND wait for a supervisor. `max_failures` wrong passwords in a row lock
    an account for `lock_minutes`."""
    if len(secret_key) < 16:
        raise ValueError("secret_key must have at least 16 characters")
    app = FastAPI(title="claimradar review", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    signer = Signer(secret_key, salt="claimradar.review.session")
    key = hashlib.sha256(("claimradar.review.csrf:" + secret_key).encode()).digest()
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )

    # -- helpers -----------------------------------------------------------------------------
    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def lang_of(request: Request) -> str:
        v = request.cookies.get(LANG_COOKIE)
        return v if v in i18n.LANGS else "vi"

    def csrf_for(token: str, purpose: str = "form") -> str:
        return hmac.new(key, f"{purpose}:{token}".encode(), hashlib.sha256).hexdigest()

    def session_token(request: Request) -> str | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            return signer.unsign(raw).decode()
        except BadSignature:
            return None

    def account(request: Request, role: str = "officer") -> Account:
        token = session_token(request)
        user = users.session_account(store, token, idle_minutes) if token else None
        if user is None:
            raise _Redirect(base(request) + "/login")
        if not user.at_least(role):
            raise _Denied(403, "forbidden")
        request.state.user, request.state.token = user, token
        return user

    async def form_checked(request: Request, user: Account) -> dict[str, str]:
        form = {k: str(v) for k, v in (await request.form()).items()}
        want = csrf_for(request.state.token)
        if not hmac.compare_digest(form.get("csrf", ""), want):
            raise _Denied(403, "csrf_failed")
        return form

    def set_cookie(resp: Response, request: Request, name: str, value: str, **kw) -> None:
        resp.set_cookie(
            name,
            value,
            path=(base(request) or "") + "/",
            httponly=True,
            secure=secure_cookies,
            samesite="lax",
            **kw,
        )

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
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
        html = env.get_template(name).render(
            request=request,
            lang=lang,
            t=t,
            url=url,
            base=b,
            user=user,
            csrf=csrf_for(token) if token else "",
            flash=t(msg) if msg in i18n.TEXTS else "",
            here=here,
            money=lambda x: i18n.money(x, lang),
            num=lambda x, d=0: i18n.num(x, lang, d),
            pct=lambda x, d=0: i18n.pct(x, lang, d),
            when=lambda x, utc=True: i18n.when(x, lang, utc),
            feature_label=lambda n: _feature_label(n, lang),
            feature_value=lambda v, n, unit=None: _feature_value(v, n, unit, lang),
            group_label=lambda g: i18n.GROUPS.get(g, (g, g))[0 if lang == "vi" else 1],
            action_label=lambda a: i18n.ACTIONS.get(a, (a, a))[0 if lang == "vi" else 1],
            visit_label=lambda v: _visit_label(v, lang),
            rule_label=lambda c: _rule_label(c, lang),
            reason_codes=workflow.REASON_CODES,
            roles=ROLES,
            **ctx,
        )
        resp = HTMLResponse(html, status_code=status)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.middleware("http")
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

    @app.exception_handler(_Redirect)
    async def _redirect(request: Request, exc: _Redirect):
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(_Denied)
    async def _denied(request: Request, exc: _Denied):
        return render(request, "error.html", exc.status, message_key=exc.key)

    @app.exception_handler(workflow.NotFound)
    async def _not_found(request: Request, exc: workflow.NotFound):
        return render(request, "error.html", 404, message_key="not_found")

    # -- sign-in ------------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, error: str = ""):
        nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        resp = render(
            request,
            "login.html",
            login_csrf=csrf_for(nonce, "login"),
            error=error if error in ("login_bad", "login_locked", "csrf_failed") else "",
        )
        set_cookie(resp, request, LOGIN_COOKIE, nonce, max_age=3600)
        return resp

    @app.post("/login")
    async def login(request: Request):
        form = await request.form()
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if not nonce or not hmac.compare_digest(
            str(form.get("csrf", "")), csrf_for(nonce, "login")
        ):
            return RedirectResponse(base(request) + "/login?error=csrf_failed", status_code=303)
        user, why = users.authenticate(
            store,
            str(form.get("username", "")),
            str(form.get("password", "")),
            max_failures=max_failures,
            lock_minutes=lock_minutes,
        )
        if user is None:
            key = "login_locked" if why == "locked" else "login_bad"
            return RedirectResponse(base(request) + f"/login?error={key}", status_code=303)
        token = users.open_session(store, user, session_hours)
        resp = RedirectResponse(base(request) + "/queue", status_code=303)
        set_cookie(
            resp,
            request,
            SESSION_COOKIE,
            signer.sign(token.encode()).decode(),
            max_age=int(session_hours * 3600),
        )
        resp.delete_cookie(LOGIN_COOKIE, path=(base(request) or "") + "/")
        return resp

    @app.post("/logout")
    async def logout(request: Request):
        user = account(request)
        await form_checked(request, user)
        users.close_session(store, request.state.token, actor=user.username)
        resp = RedirectResponse(base(request) + "/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path=(base(request) or "") + "/")
        return resp

    @app.get("/lang/{code}")
    async def set_lang(request: Request, code: str, next: str = ""):
        b = base(request)
        target = next if next.startswith(b + "/") and not next.startswith("//") else b + "/queue"
        resp = RedirectResponse(target, status_code=303)
        set_cookie(resp, request, LANG_COOKIE, code if code in i18n.LANGS else "vi",
                   max_age=365 * 86400)  # fmt: skip
        return resp

    @app.get("/")
    async def home(request: Request):
        return RedirectResponse(base(request) + "/queue", status_code=303)

    # -- the queue ----------------------------------------------------------------------------
    @app.get("/queue", response_class=HTMLResponse)
    async def queue_page(request: Request, page: int = 1):
        user = account(request)
        f = workflow.QueueFilter.from_params(dict(request.query_params))
        q = workflow.queue(store, f, user, page, per_page)
        return render(
            request,
            "queue.html",
            q=q,
            f=f,
            params=f.params(),
            options=workflow.filter_options(store),
            rules=RULES,
            statuses=workflow.QUEUE_STATUSES,
        )

    @app.post("/take-next")
    async def take_next(request: Request):
        user = account(request)
        await form_checked(request, user)
        case = store.take_next(user.id, user.username)
        if case is None:
            return RedirectResponse(base(request) + "/queue?msg=no_next", status_code=303)
        return RedirectResponse(base(request) + f"/cases/{case.id}", status_code=303)

    def _export_rows(request: Request, user: Account) -> tuple[list[str], list[list]]:
        f = workflow.QueueFilter.from_params(dict(request.query_params))
        rows = workflow.queue_all(store, f, user)
        with store.session.begin() as s:
            store.audit(s, user.username, "export", "queue", "queue", after=f.params())
        head = ["case_id", "MA_LK", "MA_CSKCB", "facility_name", "level", "month", "band",
                "risk_score", "priority", "expected_overbilled", "fund_claimed", "rule_codes",
                "rule_amount", "top_reason", "status", "assignee", "model_version"]  # fmt: skip
        lang = lang_of(request)
        body = [_export_row(r, lang) for r in rows]
        return head, body

    @app.get("/export/queue.csv")
    async def export_csv(request: Request):
        user = account(request)
        head, body = _export_rows(request, user)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(head)
        w.writerows(body)
        return Response(
            "\ufeff" + buf.getvalue(),  # a BOM so Excel reads the Vietnamese text as UTF-8
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="queue.csv"'},
        )

    @app.get("/export/queue.xlsx")
    async def export_xlsx(request: Request):
        user = account(request)
        head, body = _export_rows(request, user)
        return Response(
            _xlsx(head, body),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": 'attachment; filename="queue.xlsx"'},
        )

    @app.get("/export/labels.csv")
    async def export_labels_csv(request: Request):
        user = account(request, "supervisor")
        from serving.labels import label_rows

        df = label_rows(store)
        with store.session.begin() as s:
            store.audit(s, user.username, "export", "labels", "labels", after={"rows": len(df)})
        return Response(
            df.to_csv(index=False),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="labels.csv"'},
        )

    # -- a case -------------------------------------------------------------------------------
    def case_page(
        request: Request,
        user: Account,
        case_id: int,
        *,
        status: int = 200,
        form: dict | None = None,
        errors: dict | None = None,
        conflict: dict | None = None,
        error_key: str = "",
    ) -> HTMLResponse:
        view = workflow.case_view(store, case_id)
        doc, sc, case = view["doc"], view["scored"], view["case"]
        marks = driving_lines(doc, sc["reasons"], sc["rule_hits"])
        lang = lang_of(request)
        can_decide = case["status"] in workflow.DECIDABLE and (
            user.at_least("supervisor") or case["assignee_id"] in (None, user.id)
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
            identity=_identity(doc.get("identity", {}), user),
            unmasked=user.at_least("supervisor"),
            marks=marks,
            n_marked=len(marks),
            waterfall=charts.waterfall(sc["reasons"], lang, i18n.text("contrib_sum", lang)),
            history=workflow.patient_history(store, sc["person_key"], case["claim_id"]),
            audit=workflow.audit_events(store, case_id=case_id, claim_id=case["claim_id"]),
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
            threshold=approval_threshold,
        )

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    async def case_get(request: Request, case_id: int):
        user = account(request)
        return case_page(request, user, case_id)

    @app.post("/cases/{case_id}/take")
    async def case_take(request: Request, case_id: int):
        user = account(request)
        form = await form_checked(request, user)
        try:
            workflow.assign(store, case_id, user, int(form.get("version", 0)))
        except workflow.Conflict as c:
            return case_page(request, user, case_id, status=409, conflict=c.case)
        return RedirectResponse(base(request) + f"/cases/{case_id}", status_code=303)

    @app.post("/cases/{case_id}/decide")
    async def case_decide(request: Request, case_id: int):
        user = account(request)
        form = await form_checked(request, user)
        kept = {k: v for k, v in form.items() if k != "csrf"}
        try:
            version = int(form.get("version", "0"))
        except ValueError:
            version = 0
        try:
            out = workflow.decide(
                store,
                case_id,
                user,
                version,
                workflow.DecisionForm.from_form(form),
                approval_threshold=approval_threshold,
            )
        except workflow.Invalid as e:
            return case_page(request, user, case_id, status=422, form=kept, errors=e.errors)
        except workflow.Conflict as c:
            return case_page(request, user, case_id, status=409, form=kept, conflict=c.case)
        except workflow.NotFound:
            raise
        except workflow.WorkflowError as e:
            return case_page(request, user, case_id, status=409, form=kept, error_key=e.key)
        msg = "decided_pending" if out["status"] == "pending_approval" else "decided_ok"
        return RedirectResponse(base(request) + f"/cases/{case_id}?msg={msg}", status_code=303)

    async def _review(request: Request, case_id: int, approve: bool):
        user = account(request, "supervisor")
        form = await form_checked(request, user)
        try:
            workflow.review(
                store,
                case_id,
                user,
                int(form.get("version", 0)),
                approve,
                str(form.get("supervisor_note", "")),
            )
        except workflow.Invalid as e:
            return case_page(request, user, case_id, status=422, form=form, errors=e.errors)
        except workflow.Conflict as c:
            return case_page(request, user, case_id, status=409, form=form, conflict=c.case)
        except workflow.NotFound:
            raise
        except workflow.WorkflowError as e:
            return case_page(request, user, case_id, status=403, form=form, error_key=e.key)
        msg = "approved_ok" if approve else "returned_ok"
        return RedirectResponse(base(request) + f"/cases/{case_id}?msg={msg}", status_code=303)

    @app.post("/cases/{case_id}/approve")
    async def case_approve(request: Request, case_id: int):
        return await _review(request, case_id, True)

    @app.post("/cases/{case_id}/return")
    async def case_return(request: Request, case_id: int):
        return await _review(request, case_id, False)

    @app.get("/approvals", response_class=HTMLResponse)
    async def approvals(request: Request):
        account(request, "supervisor")
        return render(request, "approvals.html", rows=workflow.pending_approvals(store))

    # -- facilities and audit ------------------------------------------------------------------
    @app.get("/facilities/{facility_id}", response_class=HTMLResponse)
    async def facility(request: Request, facility_id: str):
        account(request)
        if not facility_id.isalnum() or len(facility_id) > 5:
            raise workflow.NotFound("facility_not_found")
        v = workflow.facility_view(store, facility_id)
        lang = lang_of(request)
        chart = charts.trend(
            v["months"],
            lang,
            (i18n.text("this_facility", lang), i18n.text("peers_level", lang),
             i18n.text("warning", lang)),
        )  # fmt: skip
        return render(request, "facility.html", v=v, chart=chart, last=(v["months"] or [None])[-1])

    @app.get("/audit", response_class=HTMLResponse)
    async def audit(request: Request, page: int = 1, actor: str = "", action: str = ""):
        account(request, "supervisor")
        a = workflow.audit_events(store, actor=actor[:80], action=action[:40], page=page)
        return render(request, "audit.html", a=a, actor=actor[:80], action=action[:40])

    # -- users (admin) ---------------------------------------------------------------------------
    @app.get("/users", response_class=HTMLResponse)
    async def users_page(request: Request, error: str = ""):
        account(request, "admin")
        return render(request, "users.html", rows=users.list_users(store), error=error[:200])

    @app.post("/users")
    async def users_create(request: Request):
        user = account(request, "admin")
        form = await form_checked(request, user)
        try:
            users.create_user(
                store, form.get("username", ""), form.get("role", ""), form.get("password", "")
            )
        except ValueError as e:
            q = urlencode({"error": str(e)})
            return RedirectResponse(base(request) + f"/users?{q}", status_code=303)
        return RedirectResponse(base(request) + "/users?msg=user_created", status_code=303)

    @app.post("/users/{user_id}/{action}")
    async def users_action(request: Request, user_id: int, action: str):
        user = account(request, "admin")
        await form_checked(request, user)
        name = next((u["username"] for u in users.list_users(store) if u["id"] == user_id), None)
        if name is None or action not in ("unlock", "activate", "deactivate"):
            raise workflow.NotFound("not_found")
        if action == "unlock":
            users.unlock_user(store, name, actor=user.username)
        else:
            users.set_active(store, name, action == "activate", actor=user.username)
        return RedirectResponse(base(request) + "/users", status_code=303)

    return app


# -- formatting helpers ----------------------------------------------------------------------
def _export_row(r: dict, lang: str) -> list:
    keys = ("case_id", "claim_id", "facility_id", "facility_name", "facility_level", "month",
            "band", "risk_score", "priority", "expected_overbilled", "fund_claimed")  # fmt: skip
    out = [round(r[k], 4) if isinstance(r[k], float) else r[k] for k in keys]
    return [
        *out,
        " ".join(r["rules"]),
        round(r["rule_amount"], 2),
        r[f"top_reason_{lang}"] or "",
        r["status"],
        r["assignee"] or "",
        r["model_version"],
    ]


def _identity(ident: dict, user: Account) -> dict:
    if user.at_least("supervisor"):
        return {k: (v if v not in (None, "") else "—") for k, v in ident.items()}
    return {
        "patient_name": initials(ident.get("patient_name")),
        "card_number": mask(ident.get("card_number"), keep_start=2, keep_end=3),
        "national_id": mask(ident.get("national_id")),
        "patient_id": mask(ident.get("patient_id")),
        "record_number": mask(ident.get("record_number")),
    }


def _feature_label(name: str, lang: str) -> str:
    f = FEATURES.get(name)
    return (f.vi if lang == "vi" else f.en) if f else name


def _feature_value(value: Any, name: str, unit: str | None, lang: str) -> str:
    f = FEATURES.get(name)
    return fmt(value, unit or (f.unit if f else "count"), lang)


def _visit_label(code: Any, lang: str) -> str:
    from contract.schema import VISIT_TYPES

    c = str(code or "")
    name = i18n.VISIT_TYPES_VI.get(c) if lang == "vi" else VISIT_TYPES.get(c)
    return f"{c} · {name}" if name else (c or "—")


def _rule_label(code: str, lang: str) -> str:
    r = RULE_BY_CODE.get(code)
    return (r.what_vi if lang == "vi" else r.what_en) if r else code


def _xlsx(head: list[str], body: list[list]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = "queue"
    ws.append(head)
    for row in body:
        ws.append(row)
    fill = PatternFill("solid", fgColor="1E3A5F")
    for cell in ws[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = fill
    money = ("priority", "expected_overbilled", "fund_claimed", "rule_amount")
    money_cols = {head.index(c) + 1 for c in money}
    for col in range(1, len(head) + 1):
        width = max(len(str(head[col - 1])), *(len(str(r[col - 1])) for r in body[:200]), 8)
        ws.column_dimensions[get_column_letter(col)].width = min(width + 2, 60)
        if col in money_cols:
            for cell in ws.iter_cols(min_col=col, max_col=col, min_row=2):
                for c in cell:
                    c.number_format = "#,##0"
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
