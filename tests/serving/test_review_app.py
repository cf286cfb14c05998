"""The review web app in process (FastAPI TestClient), mounted at /review as the service mounts
it: sign-in and lockout, roles on every route, no blocking async handler, CSRF, the queue and its
exports, the case page (masking), decisions, the two-officer conflict, approval, labels, the
language toggle."""

import csv
import inspect
import io
import re

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from review_data import PASSWORDS, add_users, fill
from sqlalchemy import select
from starlette.routing import Mount

from serving.review import create_review_app, i18n
from serving.sealing import new_key
from serving.store import Case, ScoredClaim, Store, User

THRESHOLD = 3_000_000.0


@pytest.fixture(scope="module")
def site(tmp_path_factory, scored_world):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('review') / 'cases.db'}", data_key=new_key())
    fill(store, scored_world, cases=40, facility_months=True)
    add_users(store)
    outer = FastAPI()
    outer.mount(
        "/review",
        create_review_app(
            store,
            secret_key="test-secret-key-0123456789",
            secure_cookies=False,
            approval_threshold=THRESHOLD,
            max_failures=3,
        ),
    )
    yield store, outer
    store.engine.dispose()


def client(site) -> TestClient:
    return TestClient(site[1], base_url="http://testserver", follow_redirects=False)


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(site, name: str, password: str | None = None) -> TestClient:
    c = client(site)
    page = c.get("/review/login")
    r = c.post(
        "/review/login",
        data={"username": name, "password": password or PASSWORDS[name], "csrf": csrf(page.text)},
    )
    assert r.status_code == 303 and r.headers["location"] == "/review/queue", r.headers
    return c


def form_token(c: TestClient, path: str = "/review/queue") -> str:
    return csrf(c.get(path).text)


def take(c: TestClient, case_id: int, version: int) -> int:
    """Take the case (officers decide only the cases assigned to them); its new version."""
    r = c.post(f"/review/cases/{case_id}/take", data={"csrf": form_token(c), "version": version})
    assert r.status_code == 303
    return version + 1


def open_case(store, *, small: bool | None = None) -> tuple[int, int]:
    with store.session() as s:
        q = (
            select(Case.id, Case.version)
            .join(ScoredClaim, Case.scored_claim_id == ScoredClaim.id)
            .where(Case.status == "open")
            .order_by(Case.priority.desc())
        )
        if small is True:
            q = q.where(ScoredClaim.fund_claimed < THRESHOLD)
        if small is False:
            q = q.where(ScoredClaim.fund_claimed > THRESHOLD)
        return tuple(s.execute(q).first())


# -- sign-in, sessions, roles, CSRF ------------------------------------------------------------
def test_pages_need_a_session_and_links_follow_the_mount_point(site):
    c = client(site)
    for path in ("/review/queue", "/review/cases/1", "/review/facilities/49001", "/review/audit"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/review/login"
    page = c.get("/review/login")
    assert page.status_code == 200 and 'action="/review/login"' in page.text
    assert 'href="/review/static/app.css"' in page.text
    assert c.get("/review/static/app.css").status_code == 200
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/review/" in cookie
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_secure_cookies_by_default(scored_world, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    app = create_review_app(store, secret_key="another-secret-key-0123")
    r = TestClient(app).get("/login")
    assert "Secure" in r.headers["set-cookie"]
    with pytest.raises(ValueError):
        create_review_app(store, secret_key="short")
    store.engine.dispose()


def test_login_logout_and_a_stale_cookie_is_refused(site):
    c = login(site, "officer1")
    q = c.get("/review/queue")
    assert q.status_code == 200 and "officer1" in q.text
    stale = dict(c.cookies)
    r = c.post("/review/logout", data={"csrf": csrf(q.text)})
    assert r.status_code == 303 and r.headers["location"] == "/review/login"
    other = client(site)
    for k, v in stale.items():
        other.cookies.set(k, v)
    assert other.get("/review/queue").status_code == 303  # the session is gone server-side


def test_wrong_passwords_lock_the_account(site):
    store = site[0]
    from serving.review.users import create_user

    create_user(store, "officer9", "officer", "officer9-password")
    c = client(site)
    for i in range(3):
        token = csrf(c.get("/review/login").text)
        r = c.post("/review/login", data={"username": "officer9", "password": "no", "csrf": token})
        want = "login_locked" if i == 2 else "login_bad"
        assert r.headers["location"] == f"/review/login?error={want}"
    token = csrf(c.get("/review/login").text)
    r = c.post(
        "/review/login",
        data={"username": "officer9", "password": "officer9-password", "csrf": token},
    )
    assert r.headers["location"] == "/review/login?error=login_locked"
    page = c.get(r.headers["location"])
    assert "tạm khóa" in page.text  # Vietnamese by default


def test_login_needs_its_csrf_token(site):
    c = client(site)
    c.get("/review/login")
    r = c.post("/review/login", data={"username": "officer1", "password": PASSWORDS["officer1"]})
    assert r.headers["location"] == "/review/login?error=csrf_failed"


def test_every_form_checks_its_csrf_token(site):
    store = site[0]
    c = login(site, "officer1")
    case_id, version = open_case(store)
    for path, data in [
        ("/review/take-next", {}),
        (f"/review/cases/{case_id}/take", {"version": version}),
        (f"/review/cases/{case_id}/decide", {"version": version, "outcome": "accept"}),
        ("/review/logout", {}),
    ]:
        r = c.post(path, data={**data, "csrf": "forged"})
        assert r.status_code == 403, path
        r = c.post(path, data=data)
        assert r.status_code == 403, path
    assert open_case(store) == (case_id, version)  # nothing changed


# Every route of the review app and the least role it needs (None: open without a session). A
# route missing here fails the test: give it a role dependency (serving.review.deps) and a line.
ROUTE_ROLES = {
    "GET /login": None,
    "POST /login": None,
    "GET /lang/{code}": None,
    "GET /": None,
    "POST /logout": "officer",
    "GET /queue": "officer",
    "POST /take-next": "officer",
    "GET /export/queue.csv": "supervisor",
    "GET /export/queue.xlsx": "supervisor",
    "GET /export/labels.csv": "supervisor",
    "GET /cases/{case_id}": "officer",
    "POST /cases/{case_id}/take": "officer",
    "POST /cases/{case_id}/decide": "officer",
    "POST /cases/{case_id}/approve": "supervisor",
    "POST /cases/{case_id}/return": "supervisor",
    "GET /approvals": "supervisor",
    "GET /facilities/{facility_id}": "officer",
    "GET /audit": "supervisor",
    "GET /dashboard": "supervisor",
    "GET /users": "admin",
    "POST /users": "admin",
    "POST /users/{user_id}/{action}": "admin",
}
RANK = {None: 0, "officer": 1, "supervisor": 2, "admin": 3}
# Handlers that await something themselves (none: blocking work runs in FastAPI's threadpool) and
# the dependencies that must await (reading a posted form).
ASYNC_HANDLERS: frozenset[str] = frozenset()
ASYNC_DEPENDENCIES = frozenset({"form_fields", "csrf_form", "login_form"})


def review_routes(site) -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) for every route of the review app (its static files aside)."""
    app = next(r.app for r in site[1].routes if getattr(r, "path", None) == "/review")
    try:  # newer FastAPI keeps included routers lazily in app.routes; this flattens them
        from fastapi.routing import iter_route_contexts

        routes = [(c.path, c.original_route) for c in iter_route_contexts(app.routes)]
    except ImportError:
        routes = [(r.path, r) for r in app.routes]
    out = []
    for path, r in routes:
        if isinstance(r, Mount):
            assert path == "/static"
            continue
        assert isinstance(r, APIRoute), r
        out += [(m, path, r) for m in sorted(r.methods - {"HEAD"})]
    assert out
    return out


def dependencies(route: APIRoute) -> list:
    """The callables a route depends on, its sub-dependencies included."""
    out, todo = [], list(route.dependant.dependencies)
    while todo:
        d = todo.pop()
        out.append(d.call)
        todo += d.dependencies
    return out


def test_roles_are_checked_on_every_route(site):
    store = site[0]
    routes = review_routes(site)
    assert {f"{m} {p}" for m, p, _ in routes} == set(ROUTE_ROLES)
    with store.session() as s:
        fac = s.scalar(select(ScoredClaim.facility_id).join(Case).limit(1))
        user_id = s.scalar(select(User.id).where(User.username == "officer1"))
    case_id, _ = open_case(store)
    params = {"case_id": case_id, "facility_id": fac, "code": "en", "user_id": user_id,
              "action": "unlock"}  # fmt: skip
    clients = {None: client(site), "officer": login(site, "officer1"),
               "supervisor": login(site, "super1"), "admin": login(site, "admin1")}  # fmt: skip
    forbidden, csrf_failed = i18n.text("forbidden", "vi"), i18n.text("csrf_failed", "vi")
    wrong = []
    for method, path, route in routes:
        need = ROUTE_ROLES[f"{method} {path}"]
        roles = {getattr(call, "role", None) for call in dependencies(route)} - {None}
        if roles != ({need} if need else set()):
            wrong.append((method, path, "role dependency", roles))
        url = "/review" + path.format(**params)
        for who, c in clients.items():
            if need is None and who is not None:
                continue
            r = c.request(method, url, data={} if method == "POST" else None)
            to_login = r.status_code == 303 and r.headers["location"] == "/review/login"
            if need is None:  # open: no redirect to the sign-in page
                ok = not to_login and r.status_code < 400
            elif who is None:
                ok = to_login
            elif RANK[who] < RANK[need]:
                ok = r.status_code == 403 and forbidden in r.text
            elif method == "POST":  # the role passes, then the form's missing CSRF token stops it
                ok = r.status_code == 403 and csrf_failed in r.text
            else:
                ok = r.status_code == 200
            if not ok:
                wrong.append((method, path, who, r.status_code))
    assert wrong == []


def test_blocking_handlers_are_plain_functions(site):
    """Handlers that query the store, hash passwords or export are plain `def`s (FastAPI runs them
    in its threadpool); only reading a posted form is awaited, in a dependency."""
    for method, path, route in review_routes(site):
        if inspect.iscoroutinefunction(route.endpoint):
            assert route.endpoint.__name__ in ASYNC_HANDLERS, (method, path)
        for call in dependencies(route):
            if inspect.iscoroutinefunction(call):
                assert call.__name__ in ASYNC_DEPENDENCIES, (method, path, call)


def test_officers_cannot_approve(site):
    c = login(site, "officer1")
    case_id, version = open_case(site[0])
    token = form_token(c)
    r = c.post(f"/review/cases/{case_id}/approve", data={"csrf": token, "version": version})
    assert r.status_code == 403


def test_admin_creates_and_unlocks_users(site):
    c = login(site, "admin1")
    token = form_token(c, "/review/users")
    r = c.post(
        "/review/users",
        data={"csrf": token, "username": "officer7", "role": "officer", "password": "x"},
    )
    assert "error=" in r.headers["location"]  # too short
    r = c.post(
        "/review/users",
        data={
            "csrf": token,
            "username": "officer7",
            "role": "officer",
            "password": "officer7-password",
        },
    )
    assert r.headers["location"] == "/review/users?msg=user_created"
    login(site, "officer7", "officer7-password")


# -- the queue and exports -----------------------------------------------------------------------
def test_queue_is_ranked_filtered_and_paged(site):
    c = login(site, "officer1")
    page = c.get("/review/queue").text
    rows = re.findall(r'data-band="(\w+)" data-priority="([0-9.e+-]+)"', page)
    pri = [(b == "high", float(x)) for b, x in rows]  # the high band first, then money at stake
    assert len(pri) >= 30 and pri == sorted(pri, reverse=True)
    count = int(re.search(r'id="case-count">([\d.,]+)<', page).group(1).replace(".", ""))
    assert count >= len(pri)
    fac = re.search(r'data-facility="(\w+)"', page).group(1)
    only = c.get("/review/queue", params={"facility": fac}).text
    facs = set(re.findall(r'data-facility="(\w+)"', only))
    assert facs == {fac}
    second = c.get("/review/queue", params={"page": 2}).text
    if count > 50:
        assert 'data-priority="' in second
    # no personal data reaches a URL: links carry case numbers and facility codes only
    hrefs = re.findall(r'href="([^"]+)"', page)
    assert hrefs and all(not re.search(r"[A-Z]{2}\d{13}|\d{12}", h) for h in hrefs)


def test_queue_exports_as_csv_and_excel(site):
    from openpyxl import load_workbook

    c = login(site, "super1")  # exports are for supervisors
    page = c.get("/review/queue").text
    fac = re.search(r'data-facility="(\w+)"', page).group(1)
    r = c.get("/review/export/queue.csv", params={"facility": fac})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows and {x["MA_CSKCB"] for x in rows} == {fac}
    pri = [(x["band"] == "high", float(x["priority"])) for x in rows]
    assert pri == sorted(pri, reverse=True)
    assert "card" not in r.text.lower() and not re.search(r"[A-Z]{2}\d{13}", r.text)
    x = c.get("/review/export/queue.xlsx", params={"facility": fac})
    ws = load_workbook(io.BytesIO(x.content)).active
    head = [cell.value for cell in ws[1]]
    assert head[:3] == ["case_id", "MA_LK", "MA_CSKCB"] and ws.max_row == len(rows) + 1


# -- the case page -------------------------------------------------------------------------------
def _card_of(store, case_id: int) -> str:
    """The card number of the case's claim, opened with the store's data key (it is sealed)."""
    with store.session() as s:
        sc = s.execute(
            select(ScoredClaim)
            .join(Case, Case.scored_claim_id == ScoredClaim.id)
            .where(Case.id == case_id)
        ).scalar_one()
    assert "identity" not in sc.claim and sc.identity
    return store.identity(sc.identity, sc.claim_key)["card_number"]


def test_case_page_masks_identifiers_except_for_supervisors(site):
    store = site[0]
    case_id, _ = open_case(store)
    card = _card_of(store, case_id)
    officer = login(site, "officer1").get(f"/review/cases/{case_id}").text
    assert card not in officer and card[:2] + "•" in officer
    assert 'id="lines"' in officer and 'class="marked"' in officer
    assert "<svg" in officer and 'id="peers"' in officer and 'id="facility-link"' in officer
    sup = login(site, "super1").get(f"/review/cases/{case_id}").text
    assert card in sup


def test_facility_page_shows_trend_and_warning(site):
    store = site[0]
    with store.session() as s:
        fac = s.scalar(select(ScoredClaim.facility_id).join(Case).limit(1))
    r = login(site, "officer1").get(f"/review/facilities/{fac}")
    assert r.status_code == 200 and 'id="trend"' in r.text and "<polyline" in r.text
    assert 'id="early-warning"' in r.text and 'id="facility-cases"' in r.text
    assert login(site, "officer1").get("/review/facilities/ZZZZZ").status_code == 404


def test_english_toggle(site):
    c = login(site, "officer1")
    r = c.get("/review/lang/en", params={"next": "/review/queue"})
    assert r.status_code == 303 and r.headers["location"] == "/review/queue"
    assert "Take next case" in c.get("/review/queue").text
    r = c.get("/review/lang/en", params={"next": "https://evil.example/"})
    assert r.headers["location"] == "/review/queue"  # no open redirect
    c.get("/review/lang/vi")
    assert "Nhận hồ sơ tiếp theo" in c.get("/review/queue").text


def test_all_texts_exist_in_both_languages():
    from serving.review.i18n import ACTIONS, GROUPS, TEXTS

    for table in (TEXTS, ACTIONS, GROUPS):
        for key, (vi, en) in table.items():
            assert vi.strip() and en.strip(), key
    from pathlib import Path

    keys = set()
    for p in (Path(__file__).parents[2] / "serving/review/templates").glob("*.html"):
        keys |= set(re.findall(r"(?<![\w.])t\('([a-z_]+)'\)", p.read_text()))
    assert keys - set(TEXTS) == set()


# -- decisions -----------------------------------------------------------------------------------
def test_take_next_then_a_partial_rejection_by_lines(site):
    store = site[0]
    c = login(site, "officer2")
    r = c.post("/review/take-next", data={"csrf": form_token(c)})
    assert r.status_code == 303
    path = r.headers["location"]
    page = c.get(path).text
    assert 'id="case-assignee">officer2<' in page
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    line = re.search(r'data-line="(\w+)" data-qty="([\d.]+)"', page)
    r = c.post(
        path + "/decide",
        data={
            "csrf": csrf(page),
            "version": version,
            "outcome": "reject_part",
            "part_mode": "lines",
            f"qty_{line.group(1)}": "0",
            "reason_code": "X06",
            "note": "không cần thiết",
        },
    )
    assert r.status_code == 303 and "msg=decided" in r.headers["location"]
    done = c.get(r.headers["location"]).text
    assert 'id="decisions"' in done and "X06" in done and "không cần thiết" in done
    assert store is not None


def test_invalid_form_keeps_the_input(site):
    c = login(site, "officer1")
    case_id, version = open_case(site[0])
    version = take(c, case_id, version)
    page = c.get(f"/review/cases/{case_id}").text
    r = c.post(
        f"/review/cases/{case_id}/decide",
        data={
            "csrf": csrf(page),
            "version": version,
            "outcome": "reject_part",
            "part_mode": "amount",
            "amount": "-5",
            "reason_code": "X04",
            "note": "ghi chú cần giữ",
        },
    )
    assert r.status_code == 422
    assert "ghi chú cần giữ" in r.text and 'value="-5"' in r.text and "không vượt" in r.text


def test_two_officers_deciding_at_once_one_sees_a_conflict_and_keeps_the_input(site):
    store = site[0]
    case_id, version = open_case(store, small=True)
    a, b = login(site, "officer1"), login(site, "officer2")
    version = take(a, case_id, version)  # officer1's case; officer2 still posts a decision
    page_a = a.get(f"/review/cases/{case_id}").text
    page_b = b.get(f"/review/cases/{case_id}").text
    ra = a.post(
        f"/review/cases/{case_id}/decide",
        data={"csrf": csrf(page_a), "version": version, "outcome": "accept", "reason_code": "A01"},
    )
    rb = b.post(
        f"/review/cases/{case_id}/decide",
        data={
            "csrf": csrf(page_b),
            "version": version,
            "outcome": "reject_part",
            "part_mode": "amount",
            "amount": "12345",
            "reason_code": "X04",
            "note": "ghi chú của officer2",
        },
    )
    assert ra.status_code == 303
    assert rb.status_code == 409
    assert 'id="conflict"' in rb.text and "officer1" in rb.text
    # the case is decided now, so the form is closed; officer2's input is shown, not lost
    assert 'id="kept-input"' in rb.text
    assert "ghi chú của officer2" in rb.text and "12345" in rb.text and "X04" in rb.text
    with store.session() as s:  # a high-band accept waits for a supervisor (four eyes)
        assert s.get(Case, case_id).status in ("decided", "pending_approval")


def test_large_rejection_waits_for_a_supervisor_who_approves_it(site):
    store = site[0]
    case_id, version = open_case(store, small=False)
    o = login(site, "officer1")
    version = take(o, case_id, version)
    page = o.get(f"/review/cases/{case_id}").text
    r = o.post(
        f"/review/cases/{case_id}/decide",
        data={
            "csrf": csrf(page),
            "version": version,
            "outcome": "reject_full",
            "reason_code": "X03",
            "note": "không có thực",
        },
    )
    assert "msg=decided_pending" in r.headers["location"]
    s = login(site, "super1")
    assert f"/review/cases/{case_id}" in s.get("/review/approvals").text
    page = s.get(f"/review/cases/{case_id}").text
    assert 'id="approval"' in page
    v = re.search(
        r'id="review-form">\s*<input type="hidden" name="csrf" value="[^"]+">\s*'
        r'<input type="hidden" name="version" value="(\d+)"',
        page,
    ).group(1)
    r = s.post(
        f"/review/cases/{case_id}/approve",
        data={"csrf": csrf(page), "version": v, "supervisor_note": "đồng ý"},
    )
    assert r.status_code == 303 and "msg=approved_ok" in r.headers["location"]
    labels = s.get("/review/export/labels.csv").text
    with store.session() as ss:
        claim = ss.get(Case, case_id).claim_id
    row = next(x for x in csv.DictReader(io.StringIO(labels)) if x["MA_LK"] == claim)
    assert row["LABEL"] == "1" and float(row["T_XUATTOAN"]) > THRESHOLD
    audit = s.get("/review/audit").text
    assert "phê duyệt" in audit and f"/review/cases/{case_id}" in audit
