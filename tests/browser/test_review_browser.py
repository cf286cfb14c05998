"""The review workflow in a real browser (Playwright driving Debian's chromium) against a real
server on a loopback port: sign in, the queue ranked by money, filter by facility, take next,
a partial rejection line by line, the audit trail, a supervisor's approval, the labels export.
Screenshots of the queue and of a case go to the test's tmp dir and to docs/img/."""

import csv
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from review_data import PASSWORDS, add_users, fill

from serving.store import Store

CHROMIUM = "/usr/bin/chromium"
DOCS_IMG = Path(__file__).parents[2] / "docs" / "img"
THRESHOLD = 100_000  # VND: the partial rejection below waits for a supervisor
SERVICE: dict = {}  # the running service, for the tests that read its case store and home


@pytest.fixture(scope="module")
def server(tmp_path_factory, scored_world, mlflow_store):
    """The real service (`claimradar serve`: BentoML, the API and the UI at /review) on a
    loopback port, its case store filled as `claimradar score --to-store` does."""
    from service_proc import start_service

    root = tmp_path_factory.mktemp("review-browser")
    db = Path(mlflow_store["tracking_uri"].removeprefix("sqlite:///"))
    from serving.sealing import new_key

    key = new_key()  # the service and the fill seal and open case identities with one key
    env = {"CLAIMRADAR_APPROVAL_AMOUNT": str(THRESHOLD), "CLAIMRADAR_DATA_KEY": key}
    svc = start_service(root, db, mlflow_store["artifact_root"], env=env)
    SERVICE["svc"] = svc
    cases = Store(svc.case_store_url, data_key=key)
    fill(cases, scored_world, cases=80, facility_months=True)
    add_users(cases)
    cases.engine.dispose()
    yield svc.url
    svc.stop()


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        yield b
        b.close()


def _login(page: Page, base: str, name: str) -> None:
    page.goto(base + "/review/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORDS[name])
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/review/queue")


def _shot(page: Page, tmp_path: Path, name: str, full: bool = False) -> Path:
    out = tmp_path / name
    page.screenshot(path=str(out), full_page=full)
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    shutil.copy(out, DOCS_IMG / name)
    return out


def test_officer_and_supervisor_work_a_case_end_to_end(server, chromium, tmp_path):
    ctx = chromium.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = ctx.new_page()
    _login(page, server, "officer1")

    # the queue's order: the high band first, then money at stake, largest first
    rows = page.locator("#queue tbody tr")
    expect(rows.first).to_be_visible()
    pri = [
        (band == "high", float(x))
        for band, x in rows.evaluate_all("rs => rs.map(r => [r.dataset.band, r.dataset.priority])")
    ]
    assert len(pri) >= 20 and pri == sorted(pri, reverse=True)
    shot = _shot(page, tmp_path, "review-queue.png")
    assert shot.stat().st_size > 10_000

    # filter by facility
    fac = rows.first.get_attribute("data-facility")
    page.select_option("#f-facility", fac)
    page.click("#apply-filter")
    expect(page).to_have_url(f"{server}/review/queue?facility={fac}")  # empty fields left out
    facs = set(rows.evaluate_all("rs => rs.map(r => r.dataset.facility)"))
    assert facs == {fac}

    # take next: the top unassigned case is mine
    page.click("#take-next")
    page.wait_for_url("**/review/cases/*")
    case_url = page.url
    expect(page.locator("#case-assignee")).to_have_text("officer1")
    expect(page.locator("#lines tbody tr.marked").first).to_be_visible()
    expect(page.locator(".waterfall svg")).to_be_visible()
    claim_id = page.locator(".claimid").inner_text().strip()
    _shot(page, tmp_path, "review-case.png")

    # a partial rejection, line by line: the largest line is not approved at all
    page.check("#outcome-reject_part")
    expect(page.locator("#part")).to_be_visible()
    page.check("#mode-lines")
    amounts = page.locator("#lines tbody tr").evaluate_all(
        "rs => rs.map(r => [r.dataset.line, parseFloat(r.dataset.amount)])"
    )
    line, amount = max(amounts, key=lambda x: x[1])
    assert amount > THRESHOLD
    page.fill(f"input[name=qty_{line}]", "0")
    expect(page.locator("#lines-total")).not_to_have_text("—")
    page.select_option("#reason-code", "X06")
    page.fill("#note", "Chỉ định không cần thiết theo bệnh án")
    page.click("#save-decision")
    expect(page.locator(".flash")).to_contain_text("chờ lãnh đạo phòng phê duyệt")
    expect(page.locator("#decisions")).to_contain_text("X06")

    # the audit trail of the case shows the decision, who made it and what changed
    audit = page.locator("#case-audit")
    expect(audit).to_contain_text("officer1")
    expect(audit).to_contain_text("kết luận")
    expect(audit).to_contain_text("reject_part")

    # the officer signs out; a supervisor approves
    page.click("button:has-text('Đăng xuất')")
    expect(page).to_have_url(server + "/review/login")
    _login(page, server, "super1")
    page.click("nav >> text=Chờ phê duyệt")
    link = page.locator("#approvals a", has_text=claim_id)
    expect(link).to_be_visible()
    link.click()
    expect(page).to_have_url(case_url)
    page.fill("#supervisor-note", "Đồng ý xuất toán")
    page.click("#approve")
    expect(page.locator(".flash")).to_contain_text("Đã phê duyệt")
    expect(page.locator("#decisions")).to_contain_text("Chính thức")
    expect(page.locator("#case-audit")).to_contain_text("super1")

    # the labels export holds the decision
    page.goto(server + "/review/queue")
    with page.expect_download() as dl:
        page.click("#export-labels")
    path = tmp_path / "labels.csv"
    dl.value.save_as(path)
    labels = {r["MA_LK"]: r for r in csv.DictReader(path.open(encoding="utf-8"))}
    assert labels[claim_id]["LABEL"] == "1"
    assert float(labels[claim_id]["T_XUATTOAN"]) > THRESHOLD
    assert labels[claim_id]["LY_DO"].startswith("X06")

    # and the global audit trail lists the approval
    page.goto(server + "/review/audit")
    expect(page.locator("#audit")).to_contain_text("phê duyệt")
    ctx.close()


def test_english_toggle_and_masking_in_the_browser(server, chromium):
    ctx = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    _login(page, server, "officer2")
    page.click("a.lang")
    expect(page.locator("#take-next")).to_have_text("Take next case")
    page.locator("#queue a.caselink").first.click()
    expect(page.locator("#identity")).to_contain_text("•")
    expect(page.locator("h1")).to_contain_text("Case")
    ctx.close()


def test_supervisor_walks_the_dashboard(server, chromium, tmp_path):
    """After the decisions above: the dashboard's figures are the store's, the latest monitoring
    report's alert is shown, a top facility opens its page; English labels on the toggle."""
    import json

    from serving.outcomes import case_rows, summarize

    svc = SERVICE["svc"]
    (svc.home / "monitoring").mkdir(parents=True, exist_ok=True)
    alert = {"kind": "feature_drift", "message": "2 claim-level inputs drifted: n_lab, n_imaging"}
    (svc.home / "monitoring" / "monitor-2025-08.json").write_text(
        json.dumps({"month": "2025-08", "model": {"version": "1"}, "alerts": [alert]})
    )
    store = Store(svc.case_store_url, migrate=False)
    rows = case_rows(store)
    by_month = summarize(rows, "month").set_index("month")
    store.engine.dispose()
    assert rows["decided"].sum() >= 1  # the approved partial rejection of the first test

    ctx = chromium.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    _login(page, server, "super1")
    page.click("#nav-dashboard")
    expect(page).to_have_url(server + "/review/dashboard")
    expect(page.locator("h1")).to_have_text("Tổng quan")
    expect(page.locator("#money-chart svg")).to_be_visible()
    expect(page.locator("#hit-chart svg")).to_be_visible()
    shown = page.locator("#by-month tbody tr").evaluate_all(
        "rs => rs.map(r => [r.dataset.month, +r.dataset.cases, +r.dataset.decided, "
        "+r.dataset.hits, +r.dataset.rejected])"
    )
    assert {m for m, *_ in shown} == set(by_month.index)
    for month, cases, decided, hits, rejected in shown:
        r = by_month.loc[month]
        assert (cases, decided, hits) == (r["cases"], r["decided"], r["hits"])
        assert rejected == pytest.approx(r["money_rejected"])
    expect(page.locator("#drift-alerts")).to_contain_text("n_imaging")
    expect(page.locator("#models")).to_contain_text("v1")
    _shot(page, tmp_path, "review-dashboard.png", full=True)

    top = page.locator("#top-facilities tbody tr").first
    fac = top.get_attribute("data-facility")
    top.locator("a").click()
    expect(page).to_have_url(f"{server}/review/facilities/{fac}")
    page.goto(server + "/review/dashboard")
    page.click("a.lang")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#drift-alerts")).to_contain_text("Input drift")
    ctx.close()
