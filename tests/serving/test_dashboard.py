"""The supervisors' dashboard and the outcomes behind it, on a hand-made case store: the page's
figures equal the store's (counted here in plain SQL), pending and returned decisions do not
count, a month without decisions shows the expected hit rate only, the drift alerts come from
the latest monitoring report, the model versions from the registry callable; officers get 403."""

import json
import re
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from serving.outcomes import case_rows, summarize, throughput
from serving.review import create_review_app
from serving.review.users import create_user
from serving.store import Case, Decision, Store

PASSWORDS = {"officer1": "officer1-password", "officer2": "officer2-password",
             "super1": "super1-password!"}  # fmt: skip
MONTHS = ("2025-05", "2025-06", "2025-07")
FACILITIES = ("01001", "01002", "79003")
T0 = datetime(2025, 8, 1, 2, 0)


def _rows() -> list[dict]:
    rows = []
    for i in range(36):
        month, fac = MONTHS[i % 3], FACILITIES[(i // 3) % 3]
        rows.append({
            "claim_id": f"C{i:03d}", "model_version": "7", "month": month, "facility_id": fac,
            "band": "high" if i % 4 == 0 else "review", "risk_score": 0.05 + 0.025 * i,
            "expected_overbilled": 100_000.0 + 10_000 * i, "priority": 1e6 - i,
            "fund_claimed": 2_000_000.0 + 1000 * i,
            "rule_hits": [{"code": "R06"}] + ([{"code": "R14"}] if i % 2 else []),
            "reasons": [{"feature": "n_lab" if i % 3 else "cost_drug"}],
            "claim": {"summary": {"claim_id": f"C{i:03d}"}},
        })  # fmt: skip
    rows[35].update(rule_hits=[], reasons=[])  # a case without rule hits or reasons
    rows.append({**rows[0], "claim_id": "W001", "band": "watch"})  # no case: not in the outcomes
    return rows


def _decide(store, ids, case_id, officer, outcome, amount, status="final", days=2.0):
    with store.session.begin() as s:
        opened = s.scalar(select(Case.opened_at).where(Case.id == case_id))
        s.add(Decision(case_id=case_id, officer_id=ids[officer], outcome=outcome,
                       amount_rejected=amount, status=status, reason_code="X06",
                       decided_at=opened + timedelta(days=days)))  # fmt: skip
        if status == "final":
            s.execute(update(Case).where(Case.id == case_id).values(status="decided"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard")
    store = Store(f"sqlite:///{root / 'cases.db'}")
    store.record_scores(_rows(), "cli:test", ("high", "review"))
    ids = {n: create_user(store, n, "supervisor" if n.startswith("super") else "officer", p)
           for n, p in PASSWORDS.items()}  # fmt: skip
    with store.session() as s:
        cases = dict(s.execute(select(Case.claim_id, Case.id)).all())
    # 2025-05 and 2025-06 decided in part; 2025-07 not at all (the expected hit rate only)
    plan = [("C000", "officer1", "reject_full", 2_000_000.0), ("C003", "officer1", "accept", 0.0),
            ("C006", "officer2", "reject_part", 350_000.0), ("C009", "officer2", "accept", 0.0),
            ("C012", "officer1", "reject_part", 120_000.0), ("C001", "officer2", "accept", 0.0),
            ("C004", "officer1", "reject_part", 80_000.0), ("C010", "officer1", "reject_full",
            2_010_000.0)]  # fmt: skip
    for k, (claim, who, outcome, amount) in enumerate(plan):
        _decide(store, ids, cases[claim], who, outcome, amount, days=1.0 + k)
    # a pending decision and a returned one do not count; the final one after a return does
    _decide(store, ids, cases["C015"], "officer1", "reject_full", 9e6, status="pending_approval")
    _decide(store, ids, cases["C018"], "officer2", "reject_full", 9e6, status="returned")
    _decide(store, ids, cases["C018"], "officer2", "reject_part", 500_000.0, days=5)
    mon = root / "monitoring"
    mon.mkdir()
    (mon / "monitor-2025-06.json").write_text(json.dumps(
        {"month": "2025-06", "model": {"version": "7"}, "alerts": []}))  # fmt: skip
    (mon / "monitor-2025-07.json").write_text(json.dumps({
        "month": "2025-07", "model": {"version": "7"},
        "alerts": [{"kind": "feature_drift", "message": "3 claim-level inputs drifted: n_lab"}],
    }))  # fmt: skip
    (mon / "monitor-notes.json").write_text("{not json")  # not a report: ignored
    outer = FastAPI()
    outer.mount("/review", create_review_app(
        store, secret_key="dashboard-secret-0123456789", secure_cookies=False,
        monitoring_dir=mon, model_versions=lambda: {"champion": "7", "challenger": "8"},
    ))  # fmt: skip
    yield store, outer
    store.engine.dispose()


def _login(outer, name: str) -> TestClient:
    c = TestClient(outer, base_url="http://testserver", follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/review/login").text).group(1)
    r = c.post("/review/login",
               data={"username": name, "password": PASSWORDS[name], "csrf": token})  # fmt: skip
    assert r.status_code == 303
    return c


def _store_by(store, group: str) -> dict:
    """The store's figures in plain SQL: per group, cases, decided, hits, money rejected."""
    sql = f"""
        WITH fin AS (SELECT case_id, MAX(id) AS id FROM decisions WHERE status = 'final'
                     GROUP BY case_id)
        SELECT {group}, COUNT(c.id), COUNT(d.id),
               SUM(CASE WHEN d.outcome <> 'accept' AND d.amount_rejected > 0 THEN 1 ELSE 0 END),
               COALESCE(SUM(d.amount_rejected), 0), AVG(sc.risk_score)
        FROM cases c JOIN scored_claims sc ON sc.id = c.scored_claim_id
        LEFT JOIN fin ON fin.case_id = c.id LEFT JOIN decisions d ON d.id = fin.id
        GROUP BY {group}"""
    with store.engine.connect() as conn:
        rows = conn.execute(text(sql)).all()
    return {tuple(r[:-5]) if len(r) > 6 else r[0]: tuple(r[-5:]) for r in rows}


def _attrs(html: str, table: str) -> list[dict]:
    body = re.search(rf'<table[^>]*id="{table}".*?</table>', html, re.S).group(0)
    return [dict(re.findall(r'data-([a-z]+)="([^"]*)"', tr))
            for tr in re.findall(r"<tr (data-[^>]*)>", body)]  # fmt: skip


def test_outcomes_equal_the_store(site):
    store, _ = site
    rows = case_rows(store)
    assert len(rows) == 36  # the watch-band claim has no case
    by_month = summarize(rows, "month").set_index("month")
    for month, (cases, decided, hits, money, risk) in _store_by(store, "sc.month").items():
        r = by_month.loc[month]
        assert (r["cases"], r["decided"], r["hits"]) == (cases, decided, hits)
        assert r["money_rejected"] == pytest.approx(money)
        assert r["expected_hit_rate"] == pytest.approx(risk)
    assert by_month.loc["2025-07", "decided"] == 0 and by_month["hit_rate"].isna()["2025-07"]
    assert by_month.loc["2025-05", "hit_rate"] == pytest.approx(4 / 6)  # C015 pending: not counted
    by_fac = summarize(rows, "facility_id").set_index("facility_id")
    for fac, (cases, decided, hits, money, _r) in _store_by(store, "sc.facility_id").items():
        assert by_fac.loc[fac, "cases"] == cases
        assert (by_fac.loc[fac, "decided"], by_fac.loc[fac, "hits"]) == (decided, hits)
        assert by_fac.loc[fac, "money_rejected"] == pytest.approx(money)
    # a case counts once per rule it hit; the top reason is the first reason feature
    by_rule = summarize(rows, "rule").set_index("rule")
    assert by_rule.loc["R06", "cases"] == 35 and by_rule.loc["R14", "cases"] == 17
    assert by_rule.loc["none", "cases"] == 1
    assert set(summarize(rows, "reason")["reason"]) == {"n_lab", "cost_drug", "none"}
    officers = throughput(rows).groupby("officer")["decisions"].sum().to_dict()
    assert officers == {"officer1": 5, "officer2": 4}
    with pytest.raises(ValueError, match="unknown dimension"):
        summarize(rows, "colour")


def test_the_dashboard_figures_equal_the_store(site):
    store, outer = site
    c = _login(outer, "super1")
    r = c.get("/review/dashboard")
    assert r.status_code == 200
    html = r.text
    months = {a["month"]: a for a in _attrs(html, "by-month")}
    expected = _store_by(store, "sc.month")
    assert set(months) == set(expected)
    for month, (cases, decided, hits, money, risk) in expected.items():
        a = months[month]
        assert (int(a["cases"]), int(a["decided"]), int(a["hits"])) == (cases, decided, hits)
        assert float(a["rejected"]) == pytest.approx(money)
        assert float(a["expected"]) == pytest.approx(risk)
    bands = {(a["month"], a["band"]): a for a in _attrs(html, "by-month-band")}
    for key, (cases, decided, hits, money, _r) in _store_by(store, "sc.month, sc.band").items():
        a = bands[key]
        assert (int(a["cases"]), int(a["decided"]), int(a["hits"])) == (cases, decided, hits)
        assert float(a["rejected"]) == pytest.approx(money)
    facs = _attrs(html, "top-facilities")
    by_money = sorted(
        ((m, f) for f, (_c, _d, _h, m, _r) in _store_by(store, "sc.facility_id").items() if m > 0),
        reverse=True,
    )
    assert [a["facility"] for a in facs] == [f for _m, f in by_money]
    assert [float(a["rejected"]) for a in facs] == pytest.approx([m for m, _f in by_money])
    total = re.search(r'id="totals"([^>]*)>', html).group(1)
    assert 'data-decided="9"' in total and 'data-cases="36"' in total
    assert f'href="/review/facilities/{facs[0]["facility"]}"' in html
    # the latest report's alert, and the versions in service
    assert 'data-kind="feature_drift"' in html and "n_lab" in html and "2025-07" in html
    assert re.search(r'id="model-champion">v7<', html)
    assert re.search(r'id="model-challenger">v8<', html)
    assert html.count("<svg") >= 2 and "Tổng quan" in html


def test_officers_may_not_see_the_dashboard_and_english_works(site):
    _, outer = site
    assert _login(outer, "officer1").get("/review/dashboard").status_code == 403
    c = _login(outer, "super1")
    c.cookies.set("cr_lang", "en")
    page = c.get("/review/dashboard").text
    assert "<h1>Dashboard</h1>" in page and "Input drift" in page and "Hit rate" in page


def test_dashboard_without_cases_or_reports(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    create_user(store, "super1", "supervisor", PASSWORDS["super1"])
    outer = FastAPI()
    outer.mount("/review", create_review_app(store, secret_key="dashboard-secret-0123456789",
                                             secure_cookies=False))  # fmt: skip
    page = _login(outer, "super1").get("/review/dashboard")
    assert page.status_code == 200
    assert "Chưa có báo cáo giám sát" in page.text and "Chưa có hồ sơ" in page.text
    store.engine.dispose()


def test_compare_two_versions_on_the_claims_both_scored(site, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from claimradar.cli import app
    from claimradar.settings import get_settings
    from serving.outcomes import compare_versions

    store, _ = site
    # a challenger that ranks the claims the other way round and calls them all "review"
    rows = [dict(r, model_version="8", priority=float(i), band="review")
            for i, r in enumerate(_rows()[:36])]  # fmt: skip
    store.record_scores(rows, "cli:test", ())
    r = compare_versions(store, "7", "8", top_pct=25.0)
    assert r["claims_both"] == 36 and r["band_agreement"] == pytest.approx(27 / 36)
    assert r["bands"] == {"high": {"review": 9}, "review": {"review": 27}}
    assert r["decided"] == 9 and r["money_rejected"] == pytest.approx(5_060_000.0)
    # the champion's top 9 in its queue order is its high band (C000, C004, ..., C032: the high
    # band comes first whatever the money), holding three decided cases, all with money rejected
    # (C000 2,000,000, C004 80,000, C012 120,000)
    assert r["champion"]["decided_in_top"] == 3
    assert r["champion"]["money_in_top"] == pytest.approx(2_200_000.0)
    assert r["champion"]["hit_rate_in_top"] == pytest.approx(1.0)
    assert r["challenger"]["decided_in_top"] == 0 and r["challenger"]["money_in_top"] == 0
    later = compare_versions(store, "7", "8", 25.0, since=datetime(2100, 1, 1))
    assert later["decided"] == 0
    monkeypatch.setenv("CLAIMRADAR_DATABASE_URL", store.url)
    get_settings.cache_clear()
    try:
        out = tmp_path / "compare.json"
        res = CliRunner().invoke(app, ["compare", "--champion", "7", "--challenger", "8",
                                       "--top", "25", "--out", str(out)])  # fmt: skip
        bad = CliRunner().invoke(app, ["compare", "--champion", "7", "--challenger", "99"])
    finally:
        get_settings.cache_clear()
    assert res.exit_code == 0, res.output
    assert "band agreement 75.0%" in res.output and "2,200,000" in res.output
    assert json.loads(out.read_text())["champion"]["decided_in_top"] == 3
    assert bad.exit_code == 2 and "no claim scored by both" in bad.output


def test_outcomes_command(site, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from claimradar.cli import app
    from claimradar.settings import get_settings

    store, _ = site
    monkeypatch.setenv("CLAIMRADAR_DATABASE_URL", store.url)
    get_settings.cache_clear()
    try:
        out = tmp_path / "by_rule.csv"
        r = CliRunner().invoke(app, ["outcomes", "--by", "rule", "--out", str(out)])
        bad = CliRunner().invoke(app, ["outcomes", "--by", "colour"])
    finally:
        get_settings.cache_clear()
    assert r.exit_code == 0, r.output
    assert "3 group(s); 36 cases, 9 decided" in r.output  # a case counts once per rule
    table = {row.split(",")[0]: row.split(",")[1] for row in out.read_text().splitlines()[1:]}
    assert table == {"R06": "35", "R14": "17", "none": "1"}
    assert bad.exit_code == 2 and "unknown dimension" in bad.output
