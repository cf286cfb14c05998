"""Hardening of the review UI (issue 13): four-eyes (high-band accepts and large rejections wait
for a supervisor; officers decide only the cases assigned to them), exports for supervisors only,
no formula injection in exports, bad input answered 4xx (never 500), bounded form bodies and a
form-field cap that lets a case of hundreds of lines be decided, a sign-in that reads only small
url-encoded bodies, and a lockout per client address with backoff that does not reveal which user
names exist."""

from __future__ import annotations

import csv
import io
import re
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from review_data import PASSWORDS, add_users, fill
from sqlalchemy import select

from serving.review import create_review_app
from serving.store import Case, Decision, ScoredClaim, Store, User, now

THRESHOLD = 3_000_000.0
EVIL = '=HYPERLINK("http://x","y")'
MANY_LINES = 600  # 2 fields a line: far above Starlette's default cap of 1,000 fields


@pytest.fixture(scope="module")
def site(tmp_path_factory, scored_world):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('hardening') / 'cases.db'}")
    fill(store, scored_world, cases=40)
    ids = add_users(store)
    with store.session.begin() as s:
        cases = s.scalars(select(Case).where(Case.status == "open").order_by(Case.id)).all()
        # a claim whose MA_LK is a spreadsheet formula, with a final decision (labels.csv)
        evil = cases[-1]
        s.get(ScoredClaim, evil.scored_claim_id).claim_id = EVIL
        evil.claim_id, evil.status = EVIL, "decided"
        s.add(
            Decision(
                case_id=evil.id,
                officer_id=ids["super1"],
                outcome="reject_full",
                amount_rejected=1000.0,
                amount_claimed=1000.0,
                reason_code="X03",
                status="final",
                decided_at=now(),
            )
        )
        # a claim of many lines
        big = s.get(ScoredClaim, cases[-2].scored_claim_id)
        doc = dict(big.claim)
        line = dict(doc["lines"][0])
        doc["lines"] = [{**line, "line_id": f"L{i}"} for i in range(MANY_LINES)]
        big.claim = doc
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
    yield store, outer, {"evil": evil.id, "big": cases[-2].id}
    store.engine.dispose()


def client(site, host: str = "testclient") -> TestClient:
    return TestClient(
        site[1],
        base_url="http://testserver",
        follow_redirects=False,
        raise_server_exceptions=False,
        client=(host, 50000),
    )


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def try_login(c: TestClient, name: str, password: str) -> str:
    """The sign-in's answer: "" when signed in, else the error key."""
    token = csrf(c.get("/review/login").text)
    r = c.post("/review/login", data={"username": name, "password": password, "csrf": token})
    assert r.status_code == 303, r.status_code
    loc = r.headers["location"]
    return "" if loc == "/review/queue" else loc.split("error=")[1]


def login(site, name: str, host: str = "testclient") -> TestClient:
    c = client(site, host)
    assert try_login(c, name, PASSWORDS[name]) == ""
    return c


def version_of(store, case_id: int) -> int:
    with store.session() as s:
        return s.get(Case, case_id).version


def open_case(store, *, band: str | None = None, above: float | None = None) -> int:
    with store.session() as s:
        q = (
            select(Case.id)
            .join(ScoredClaim, Case.scored_claim_id == ScoredClaim.id)
            .where(Case.status == "open", Case.assignee_id.is_(None))
            .order_by(Case.priority.desc())
        )
        if band:
            q = q.where(ScoredClaim.band == band)
        if above is not None:
            q = q.where(ScoredClaim.fund_claimed > above)
        return s.scalar(q.limit(1))


def take(c: TestClient, store, case_id: int) -> None:
    page = c.get(f"/review/cases/{case_id}").text
    data = {"csrf": csrf(page), "version": version_of(store, case_id)}
    assert c.post(f"/review/cases/{case_id}/take", data=data).status_code == 303


def decide(c: TestClient, store, case_id: int, **fields) -> object:
    page = c.get(f"/review/cases/{case_id}").text
    data = {"csrf": csrf(page), "version": version_of(store, case_id), **fields}
    return c.post(f"/review/cases/{case_id}/decide", data=data)


# -- 1. four-eyes --------------------------------------------------------------------------------
def test_officers_decide_only_cases_assigned_to_them(site):
    store = site[0]
    case_id = open_case(store, band="review")
    o = login(site, "officer1")
    r = decide(o, store, case_id, outcome="accept", reason_code="A01")
    assert r.status_code == 403
    with store.session() as s:
        assert s.get(Case, case_id).status == "open"
    assert 'name="outcome"' not in o.get(f"/review/cases/{case_id}").text  # no form offered
    take(o, store, case_id)
    r = decide(o, store, case_id, outcome="accept", reason_code="A01")
    assert r.status_code == 303 and r.headers["location"].endswith("msg=decided_ok")
    # a supervisor still decides any case
    other = open_case(store, band="review")
    r = decide(login(site, "super1"), store, other, outcome="accept", reason_code="A01")
    assert r.status_code == 303


def test_high_band_accept_waits_for_a_supervisor(site):
    store = site[0]
    case_id = open_case(store, band="high")
    o = login(site, "officer2")
    take(o, store, case_id)
    r = decide(o, store, case_id, outcome="accept", reason_code="A01")
    assert r.status_code == 303 and r.headers["location"].endswith("msg=decided_pending")
    with store.session() as s:
        assert s.get(Case, case_id).status == "pending_approval"
        d = s.scalars(select(Decision).where(Decision.case_id == case_id)).one()
        assert d.status == "pending_approval" and d.outcome == "accept"
    sup = login(site, "super1")
    assert f"/review/cases/{case_id}" in sup.get("/review/approvals").text
    page = sup.get(f"/review/cases/{case_id}").text
    r = sup.post(
        f"/review/cases/{case_id}/approve",
        data={"csrf": csrf(page), "version": version_of(store, case_id)},
    )
    assert r.status_code == 303
    with store.session() as s:
        assert s.get(Case, case_id).status == "decided"


def test_large_rejection_by_an_assigned_officer_waits_for_a_supervisor(site):
    store = site[0]
    case_id = open_case(store, above=THRESHOLD)
    o = login(site, "officer1")
    take(o, store, case_id)
    r = decide(o, store, case_id, outcome="reject_full", reason_code="X03", note="ma")
    assert r.status_code == 303 and r.headers["location"].endswith("msg=decided_pending")


# -- 2. exports for supervisors; 3. no formula injection ----------------------------------------
EXPORTS = ("/review/export/queue.csv", "/review/export/queue.xlsx", "/review/export/labels.csv")


def test_exports_are_for_supervisors(site):
    o = login(site, "officer1")
    for path in EXPORTS:
        assert o.get(path).status_code == 403, path
    assert "/export/queue.csv" not in o.get("/review/queue").text
    s = login(site, "super1")
    for path in EXPORTS:
        assert s.get(path).status_code == 200, path


def test_exports_are_safe_from_formula_injection(site):
    from openpyxl import load_workbook

    from serving.review.routes.exports import safe_cell

    assert safe_cell("=1+1") == "'=1+1" and safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("+1") == "'+1" and safe_cell("-1") == "'-1"
    assert safe_cell("\tx") == "'\tx" and safe_cell("\rx") == "'\rx"
    assert safe_cell("HN001") == "HN001" and safe_cell(-5.0) == -5.0 and safe_cell(None) is None
    s = login(site, "super1")
    text = s.get(EXPORTS[0], params={"status": "all"}).text.lstrip("\ufeff")
    ids = [row["MA_LK"] for row in csv.DictReader(io.StringIO(text))]
    assert "'" + EVIL in ids and EVIL not in ids
    ws = load_workbook(io.BytesIO(s.get(EXPORTS[1], params={"status": "all"}).content)).active
    col = [c.value for c in ws[1]].index("MA_LK") + 1
    cells = [ws.cell(row=i, column=col) for i in range(2, ws.max_row + 1)]
    evil = next(c for c in cells if EVIL in str(c.value))
    assert evil.value == "'" + EVIL and evil.data_type == "s"
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    labels = list(csv.DictReader(io.StringIO(s.get(EXPORTS[2]).text)))
    assert "'" + EVIL in [row["MA_LK"] for row in labels]


# -- 4. bad input never answers 500 --------------------------------------------------------------
def test_bad_input_answers_4xx_with_the_error_page(site):
    store = site[0]
    huge = str(10**30)
    case_id = open_case(store)
    o = login(site, "officer1")
    token = csrf(o.get("/review/queue").text)
    r = o.post(f"/review/cases/{case_id}/take", data={"csrf": "tôi-không-phải-ascii"})
    assert r.status_code == 403 and "<html" in r.text
    for bad in ("abc", huge, "-1", ""):
        r = o.post(f"/review/cases/{case_id}/take", data={"csrf": token, "version": bad})
        assert 400 <= r.status_code < 500 and "<html" in r.text, (bad, r.status_code)
        r = o.post(f"/review/cases/{case_id}/decide", data={"csrf": token, "version": bad})
        assert 400 <= r.status_code < 500 and "<html" in r.text, (bad, r.status_code)
    for path in (f"/review/cases/{huge}", "/review/cases/abc", "/review/cases/-3"):
        r = o.get(path)
        assert r.status_code == 404 and "<html" in r.text, (path, r.status_code)
    r = o.post(f"/review/cases/{huge}/take", data={"csrf": token, "version": "1"})
    assert r.status_code == 404
    for page in ("abc", huge, "0"):
        r = o.get("/review/queue", params={"page": page})
        assert 400 <= r.status_code < 500 or r.status_code == 200, (page, r.status_code)
        assert "<html" in r.text
    sup = login(site, "super1")
    token = csrf(sup.get("/review/approvals").text)
    for action in ("approve", "return"):
        for bad in ("abc", huge):
            r = sup.post(f"/review/cases/{case_id}/{action}", data={"csrf": token, "version": bad})
            assert 400 <= r.status_code < 500, (action, bad, r.status_code)
    adm = login(site, "admin1")
    token = csrf(adm.get("/review/users").text)
    r = adm.post(f"/review/users/{huge}/unlock", data={"csrf": token})
    assert r.status_code == 404
    # the sign-in form: a non-ASCII token is a failed CSRF check, not a crash
    c = client(site)
    c.get("/review/login")
    r = c.post("/review/login", data={"username": "officer1", "password": "x", "csrf": "đ"})
    assert r.status_code == 303 and r.headers["location"].endswith("error=csrf_failed")


# -- 5. form size: many lines decide, big bodies refused, the sign-in reads little --------------
def test_a_case_with_hundreds_of_lines_can_be_decided(site):
    store = site[0]
    case_id = site[2]["big"]
    o = login(site, "officer2")
    take(o, store, case_id)
    page = o.get(f"/review/cases/{case_id}").text
    fields = {"csrf": csrf(page), "version": version_of(store, case_id), "note": "n",
              "outcome": "reject_part", "part_mode": "lines", "reason_code": "X06"}  # fmt: skip
    for i in range(MANY_LINES):
        fields[f"qty_L{i}"] = "0" if i == 0 else ""
        fields[f"price_L{i}"] = ""
    r = o.post(f"/review/cases/{case_id}/decide", data=fields)
    assert r.status_code == 303, r.status_code
    with store.session() as s:
        assert s.get(Case, case_id).status in ("decided", "pending_approval")


def test_form_bodies_are_bounded(site):
    store = site[0]
    case_id = open_case(store)
    o = login(site, "officer1")
    token = csrf(o.get("/review/queue").text)
    big = {"csrf": token, "version": "1", "note": "x" * 3_000_000}
    r = o.post(f"/review/cases/{case_id}/decide", data=big)
    assert r.status_code == 413 and "<html" in r.text
    files = {"note": ("a.bin", b"x" * 100, "application/octet-stream")}
    r = o.post(f"/review/cases/{case_id}/decide", data={"csrf": token}, files=files)
    assert r.status_code in (400, 413, 415), r.status_code  # no file uploads


def test_sign_in_reads_only_small_url_encoded_bodies(site):
    c = client(site, "10.9.9.9")
    token = csrf(c.get("/review/login").text)
    data = {"username": "officer1", "password": PASSWORDS["officer1"], "csrf": token}
    files = {"x": ("a.txt", b"x" * 10, "text/plain")}
    r = c.post("/review/login", data=data, files=files)  # multipart
    assert r.status_code == 415, r.status_code
    r = c.post("/review/login", data={**data, "pad": "x" * 20_000})
    assert r.status_code == 413, r.status_code
    r = c.post(
        "/review/login",
        content=b"x" * 100,
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 415
    assert c.post("/review/login", data=data).headers["location"] == "/review/queue"


# -- 6. lockout per client with backoff, no user enumeration ------------------------------------
def test_one_client_cannot_lock_an_officer_out(site):
    store = site[0]
    from serving.review.users import create_user

    create_user(store, "officer5", "officer", "officer5-password")
    attacker = client(site, "203.0.113.7")
    answers = [try_login(attacker, "officer5", "wrong-password") for _ in range(3)]
    assert answers == ["login_bad", "login_bad", "login_locked"]
    assert try_login(attacker, "officer5", "officer5-password") == "login_locked"
    # the officer, from their own address, signs in
    assert try_login(client(site, "198.51.100.20"), "officer5", "officer5-password") == ""
    with store.session() as s:
        assert s.scalar(select(User.locked_until).where(User.username == "officer5")) is None


def test_unknown_names_answer_like_wrong_passwords(site):
    from serving.review.users import create_user

    create_user(site[0], "officer6", "officer", "officer6-password")
    known, unknown = client(site, "203.0.113.8"), client(site, "203.0.113.9")
    t0 = time.perf_counter()
    a = [try_login(known, "officer6", "wrong-password") for _ in range(4)]
    t1 = time.perf_counter()
    b = [try_login(unknown, "nobody-here", "wrong-password") for _ in range(4)]
    t2 = time.perf_counter()
    assert a == b == ["login_bad", "login_bad", "login_locked", "login_locked"]
    assert 0.33 < (t1 - t0) / (t2 - t1) < 3.0  # both verify a password every time


def test_a_client_that_keeps_failing_backs_off(site):
    spray = client(site, "203.0.113.50")
    answers = [try_login(spray, f"guess{i}", "wrong-password") for i in range(12)]
    assert "login_wait" in answers
    # while it waits, even a right password from that address is not checked
    assert try_login(spray, "officer2", PASSWORDS["officer2"]) == "login_wait"
    assert try_login(client(site, "198.51.100.21"), "officer2", PASSWORDS["officer2"]) == ""


def test_login_guard_backs_off_exponentially():
    from serving.review.throttle import LoginGuard

    t = [1000.0]
    g = LoginGuard(max_failures=3, lock_seconds=900, backoff_after=2, backoff_base=1.0,
                   clock=lambda: t[0])  # fmt: skip
    waits = []
    for i in range(6):
        assert g.client_wait("c") == 0.0
        g.failed(f"user{i}", "c")
        waits.append(g.client_wait("c"))
        t[0] += waits[-1]
    assert waits == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0]
    for _ in range(20):
        g.failed("user", "c")
    assert g.client_wait("c") == 900.0  # capped
    assert g.client_wait("other") == 0.0
    # the pair (name, client) locks after max_failures; another client is not affected
    assert g.pair_locked("user", "c") and not g.pair_locked("user", "d")
    t[0] += 901
    assert not g.pair_locked("user", "c") and g.client_wait("c") == 0.0
