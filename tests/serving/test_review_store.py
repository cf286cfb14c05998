"""The review workflow's store operations, on SQLite and on a real PostgreSQL (`store_url`):
claim documents and filling the store, the queue, decisions with optimistic locking (two
officers at once), supervisor approval, the audit trail, accounts and lockout, labels."""

import json
import threading

import pandas as pd
import pytest
from review_data import ROLES, add_users, fill
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from serving.casefile import claim_documents, driving_lines
from serving.labels import export_labels
from serving.review import users, workflow
from serving.review.users import Account
from serving.review.workflow import Conflict, DecisionForm, Invalid, QueueFilter
from serving.store import AuditEvent, Case, FacilityMonth, ScoredClaim, Store

THRESHOLD = 2_000_000.0


@pytest.fixture
def filled(store_url, scored_world):
    store = Store(store_url)
    part = fill(store, scored_world, cases=30)
    ids = add_users(store)
    acc = {n: Account(i, n, ROLES[n]) for n, i in ids.items()}
    yield store, part, acc
    store.engine.dispose()


def _case(store, **where) -> dict:
    with store.session() as s:
        q = select(Case).order_by(Case.priority.desc())
        for k, v in where.items():
            q = q.where(getattr(Case, k) == v)
        c = s.scalars(q).first()
        return {"id": c.id, "version": c.version, "claim_id": c.claim_id}


def _take(store, c: dict, account) -> dict:
    """Assign the case to `account` (officers decide only the cases assigned to them)."""
    state = workflow.assign(store, c["id"], account, c["version"])
    return {**c, "version": state["version"]}


# -- documents -----------------------------------------------------------------------------------
def test_claim_documents_are_json_safe_with_all_lines_and_peers(scored_world):
    tables, frame = scored_world["tables"], scored_world["frame"]
    some = tables["claims"]["claim_id"].head(40).tolist()
    sub = {k: v[v["claim_id"].isin(some)] for k, v in tables.items() if "claim_id" in v.columns}
    sub["facilities"] = tables["facilities"]
    docs = claim_documents(sub, frame)
    assert set(docs) == set(some)
    json.dumps(docs, allow_nan=False)  # no NaN, no numpy, no timestamps left
    for cid in some:
        d = docs[cid]
        n_lines = sum(
            int((sub[t]["claim_id"] == cid).sum()) for t in ("drug_lines", "service_lines")
        )
        assert len(d["lines"]) == n_lines
        ids = [ln["line_id"] for ln in d["lines"]]
        assert len(ids) == len(set(ids)) and all(i[0] in "DS" for i in ids)
        assert d["summary"]["claim_id"] == cid and d["summary"]["person_key"]
        assert {p["feature"] for p in d["peers"]} >= {"claim_cost", "stay_days"}
        assert d["identity"]["card_number"]  # kept in the store for officers; masked in the UI
    # the line ids are stable: the same claim gives the same ids again
    again = claim_documents(sub, frame)
    assert [ln["line_id"] for ln in again[some[0]]["lines"]] == [
        ln["line_id"] for ln in docs[some[0]]["lines"]
    ]


def test_driving_lines_mark_prices_above_typical_and_rule_groups():
    doc = {
        "summary": {"admitted_at": "2025-03-01T08:00", "discharged_at": "2025-03-03T08:00"},
        "lines": [
            {"line_id": "S1", "group": "bed", "unit_price": 100, "typical_price": 100},
            {"line_id": "S2", "group": "lab", "unit_price": 200, "typical_price": 100},
            {
                "line_id": "D1",
                "group": "drug",
                "unit_price": 10,
                "typical_price": 10,
                "ordered_at": "2025-03-05T09:00",
            },
            {"line_id": "S3", "group": "exam", "unit_price": 50, "typical_price": 50},
        ],
    }
    marks = driving_lines(doc, [{"feature": "lab_per_day"}], [{"code": "R06"}, {"code": "R07"}])
    assert marks["S1"] == ["R06"]
    assert marks["S2"] == ["price", "lab_per_day"]
    assert marks["D1"] == ["R07"]
    assert "S3" not in marks


def test_fill_store_records_documents_cases_and_is_idempotent(store_url, scored_world):
    store = Store(store_url)
    part = fill(store, scored_world, cases=30)
    again = fill(store, scored_world, cases=30)
    with store.session() as s:
        rows = s.scalars(select(ScoredClaim)).all()
        cases = s.scalars(select(Case)).all()
    assert len(rows) == len(part) == len(again)
    assert {c.claim_id for c in cases} == set(
        part.loc[part["band"].isin(["high", "review"]), "claim_id"]
    )
    by = {r.claim_id: r for r in rows}
    for c in cases:
        sc = by[c.claim_id]
        assert sc.claim["lines"] and sc.claim["peers"] and sc.person_key
        assert sc.facility_id and sc.month and sc.fund_claimed > 0
        codes = [h["code"] for h in sc.rule_hits]
        assert (sc.rule_codes or "") == ("," + ",".join(sorted(set(codes))) + "," if codes else "")
    low = [r for r in rows if r.band not in ("high", "review")]
    assert low and all("lines" not in r.claim and r.claim["summary"] for r in low)
    store.engine.dispose()


def test_facility_months_follow_the_early_warning(store_url, scored_world):
    from features.early_warning import facility_warnings
    from serving.casefile import write_facility_months

    store = Store(store_url)
    tables = scored_world["tables"]
    n = write_facility_months(store, tables, months=2)
    last = sorted(pd.to_datetime(tables["claims"]["admitted_at"]).dt.strftime("%Y-%m"))[-1]
    want = facility_warnings(tables, last).set_index("facility_id")
    with store.session() as s:
        got = s.scalars(select(FacilityMonth).where(FacilityMonth.month == last)).all()
    assert n == len(got) * 2 or n >= len(got)
    assert {g.facility_id for g in got} == set(want.index)
    for g in got:
        assert g.warning == bool(want.at[g.facility_id, "warning"])
        assert g.cost_per_visit == pytest.approx(want.at[g.facility_id, "cost_per_visit"])
        # the decomposition is stored beside the warning (migration 0004)
        for col in ("change", "mix_effect", "price_effect", "volume_effect"):
            want_v = want.at[g.facility_id, col]
            assert getattr(g, col) == pytest.approx(want_v, abs=1e-3, nan_ok=True)  # 3 decimals
        assert g.shift_z == pytest.approx(want.at[g.facility_id, "z"], abs=1e-3, nan_ok=True)
    assert write_facility_months(store, tables, months=2) == n  # upsert, no duplicates
    store.engine.dispose()


# -- the queue -----------------------------------------------------------------------------------
def test_queue_ranks_by_priority_with_count_sum_and_filters(filled):
    store, part, acc = filled
    me = acc["officer1"]
    q = workflow.queue(store, QueueFilter(), me, page=1, per_page=10)
    cases = part[part["band"].isin(["high", "review"])]
    assert q["count"] == len(cases) and q["pages"] == -(-len(cases) // 10)
    assert q["sum_expected"] == pytest.approx(cases["expected_overbilled"].sum(), rel=1e-6)
    # the high band first (the model's surest money and the most money at stake), then by money
    pri = [(r["band"] == "high", r["priority"]) for r in q["rows"]]
    assert pri == sorted(pri, reverse=True)
    top = cases.loc[cases["band"] == "high", "priority"].max()
    assert pri[0][1] == pytest.approx(top)
    fac = q["rows"][0]["facility_id"]
    only = workflow.queue(store, QueueFilter(facility=fac), me, per_page=500)
    assert only["rows"] and {r["facility_id"] for r in only["rows"]} == {fac}
    rule = (
        next(c for r in q["rows"] for c in r["rules"])
        if any(r["rules"] for r in q["rows"])
        else None
    )
    if rule:
        hits = workflow.queue(store, QueueFilter(rule=rule), me, per_page=500)["rows"]
        assert hits and all(rule in r["rules"] for r in hits)
    reason = workflow.filter_options(store)["reasons"][0]
    with_reason = workflow.queue(store, QueueFilter(reason=reason), me, per_page=500)
    assert with_reason["count"] > 0
    mine = workflow.queue(store, QueueFilter(assignee="me"), me)
    assert mine["count"] == 0
    # unknown values never reach SQL: they are dropped by the filter
    bad = QueueFilter.from_params({"facility": "x' OR 1=1 --", "status": "nope", "rule": "R1"})
    assert bad.facility == "" and bad.status == "todo" and bad.rule == ""


def test_take_next_gives_the_top_case_and_two_officers_never_the_same(filled):
    store, _, acc = filled
    top = workflow.queue(store, QueueFilter(), acc["officer1"], per_page=2)["rows"]
    a = store.take_next(acc["officer1"].id, "officer1")
    b = store.take_next(acc["officer2"].id, "officer2")
    assert a.id == top[0]["case_id"] and b.id == top[1]["case_id"]
    mine = workflow.queue(store, QueueFilter(assignee="me"), acc["officer1"])["rows"]
    assert [r["case_id"] for r in mine] == [a.id]


# -- decisions -----------------------------------------------------------------------------------
def test_accept_and_reject_in_full_are_final_below_the_threshold(filled):
    store, _, acc = filled
    small = _take(store, _small_case(store), acc["officer1"])
    out = workflow.decide(
        store,
        small["id"],
        acc["officer1"],
        small["version"],
        DecisionForm("accept", "A01", "ok"),
        approval_threshold=THRESHOLD,
    )
    assert out["status"] == "decided" and out["amount_rejected"] == 0
    view = workflow.case_view(store, small["id"])
    assert view["case"]["status"] == "decided" and view["case"]["assignee"] == "officer1"
    assert view["decisions"][0]["status"] == "final"
    with pytest.raises(workflow.WorkflowError):  # decided cases are closed (a fresh version)
        workflow.decide(
            store,
            small["id"],
            acc["officer2"],
            view["case"]["version"],
            DecisionForm("accept", "A01"),
            approval_threshold=THRESHOLD,
        )


def _small_case(store) -> dict:
    """An open review-band case asking less than the threshold. Which claims the trained model
    puts in the review band changes with its features; when every one asks more, one of them is
    arranged to ask less (the rule under test is the threshold, not the banding)."""
    with store.session.begin() as s:
        c = s.execute(
            select(Case.id, Case.version, Case.claim_id, ScoredClaim.id, ScoredClaim.fund_claimed)
            .join(ScoredClaim, Case.scored_claim_id == ScoredClaim.id)
            .where(Case.status == "open")
            .where(ScoredClaim.band != "high")  # a high-band accept waits for a supervisor
            .order_by(ScoredClaim.fund_claimed < THRESHOLD, Case.id.desc())
        ).all()[-1]
        if c[4] >= THRESHOLD:
            s.execute(
                ScoredClaim.__table__.update()
                .where(ScoredClaim.id == c[3])
                .values(fund_claimed=THRESHOLD / 2)
            )
    return {"id": c[0], "version": c[1], "claim_id": c[2]}


def test_partial_rejection_by_lines_computes_the_fund_share(filled):
    store, _, acc = filled
    c = _take(store, _case(store), acc["officer1"])
    doc = workflow.case_view(store, c["id"])["doc"]
    line = max(doc["lines"], key=lambda ln: ln["amount"] or 0)
    lid, q0, p0 = line["line_id"], line["quantity"], line["unit_price"]
    form = DecisionForm(
        "reject_part",
        "X06",
        "too many",
        part_mode="lines",
        lines={lid: (str(q0 / 2), ""), "S999": ("1", "1")},
    )
    out = workflow.decide(
        store, c["id"], acc["officer1"], c["version"], form, approval_threshold=1e12
    )
    share = line["fund_claimed"] / line["amount"]
    assert out["amount_rejected"] == pytest.approx((line["amount"] - q0 / 2 * p0) * share, abs=0.02)
    d = workflow.case_view(store, c["id"])["decisions"][0]
    assert d["line_adjustments"] == [
        {
            "line_id": lid,
            "code": line["code"],
            "quantity": q0,
            "unit_price": p0,
            "approved_quantity": q0 / 2,
            "approved_price": p0,
            "rejected_amount": out["amount_rejected"],
        }
    ]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        (DecisionForm("maybe", "A01"), "outcome"),
        (DecisionForm("accept", "X04"), "reason_code"),  # a rejection code on an acceptance
        (DecisionForm("reject_full", "X99", ""), "note"),  # "other" needs a note
        (DecisionForm("reject_part", "X04", amount="0"), "amount"),
        (DecisionForm("reject_part", "X04", amount="1e15"), "amount"),  # above the claim
        (DecisionForm("reject_part", "X04", amount="abc"), "amount"),
        (DecisionForm("reject_part", "X04", part_mode="lines"), "lines"),  # nothing changed
    ],
)
def test_invalid_decisions_name_the_field_and_change_nothing(filled, form, field):
    store, _, acc = filled
    c = _take(store, _case(store), acc["officer1"])
    with pytest.raises(Invalid) as e:
        workflow.decide(
            store, c["id"], acc["officer1"], c["version"], form, approval_threshold=THRESHOLD
        )
    assert field in e.value.errors
    assert workflow.case_view(store, c["id"])["case"]["version"] == c["version"]


def test_line_quantities_above_the_claim_are_refused(filled):
    store, _, acc = filled
    c = _take(store, _case(store), acc["officer1"])
    line = workflow.case_view(store, c["id"])["doc"]["lines"][0]
    form = DecisionForm(
        "reject_part",
        "X06",
        part_mode="lines",
        lines={line["line_id"]: (str(line["quantity"] + 1), "")},
    )
    with pytest.raises(Invalid) as e:
        workflow.decide(
            store, c["id"], acc["officer1"], c["version"], form, approval_threshold=THRESHOLD
        )
    assert e.value.errors == {f"qty_{line['line_id']}": "err_line_qty"}


def test_amounts_typed_the_vietnamese_way_are_read():
    assert workflow._number("1.250.000") == 1_250_000
    assert workflow._number("1,250,000") == 1_250_000
    assert workflow._number("1250000,5") == 1_250_000.5
    assert workflow._number("12.5") == 12.5
    assert workflow._number("") is None and workflow._number("x") is None


def test_two_officers_on_the_same_version_one_wins_one_gets_a_conflict(filled):
    store, _, acc = filled
    c = _take(store, _case(store), acc["officer1"])  # officer2 still posts the version it saw
    first = workflow.decide(
        store,
        c["id"],
        acc["officer1"],
        c["version"],
        DecisionForm("reject_part", "X04", amount="1000"),
        approval_threshold=THRESHOLD,
    )
    with pytest.raises(Conflict) as e:
        workflow.decide(
            store,
            c["id"],
            acc["officer2"],
            c["version"],
            DecisionForm("reject_full", "X01"),
            approval_threshold=THRESHOLD,
        )
    assert first["status"] == "decided"
    assert e.value.case["version"] == c["version"] + 1 and e.value.case["last_by"] == "officer1"
    assert len(workflow.case_view(store, c["id"])["decisions"]) == 1


def test_simultaneous_decisions_in_threads_leave_exactly_one(filled):
    store, _, acc = filled
    c = _take(store, _case(store), acc["officer1"])
    barrier = threading.Barrier(3)
    results: list = []

    def go(name: str, outcome: str, code: str) -> None:
        barrier.wait()
        try:
            workflow.decide(
                store,
                c["id"],
                acc[name],
                c["version"],
                DecisionForm(outcome, code),
                approval_threshold=1e12,
            )
            results.append("won")
        except Conflict:
            results.append("conflict")
        except Exception as e:  # pragma: no cover - reported by the assertion below
            results.append(repr(e))

    threads = [
        threading.Thread(target=go, args=a)
        for a in [
            ("officer1", "accept", "A01"),
            ("super1", "reject_full", "X02"),
            ("super2", "accept", "A02"),
        ]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["conflict", "conflict", "won"]
    assert len(workflow.case_view(store, c["id"])["decisions"]) == 1


def test_an_officer_cannot_decide_a_case_assigned_to_another(filled):
    store, _, acc = filled
    case = store.take_next(acc["officer1"].id, "officer1")
    with pytest.raises(workflow.WorkflowError) as e:
        workflow.decide(
            store,
            case.id,
            acc["officer2"],
            case.version,
            DecisionForm("accept", "A01"),
            approval_threshold=THRESHOLD,
        )
    assert e.value.key == "err_not_yours"
    out = workflow.decide(
        store,
        case.id,
        acc["super1"],
        case.version,
        DecisionForm("reject_part", "X04", amount="1000"),
        approval_threshold=THRESHOLD,
    )
    assert out["status"] == "decided"  # supervisors may decide any open case


# -- approval ------------------------------------------------------------------------------------
def test_large_rejections_wait_for_another_supervisor(filled):
    store, _, acc = filled
    c = _case(store)
    out = workflow.decide(
        store,
        c["id"],
        acc["super1"],
        c["version"],
        DecisionForm("reject_full", "X03", "ghost"),
        approval_threshold=0.0,
    )
    assert out["status"] == "pending_approval"
    v = c["version"] + 1
    with pytest.raises(workflow.WorkflowError) as e:
        workflow.review(store, c["id"], acc["super1"], v, approve=True)
    assert e.value.key == "err_self_approval"
    with pytest.raises(workflow.WorkflowError):
        workflow.review(store, c["id"], acc["officer2"], v, approve=True)
    assert [p["case_id"] for p in workflow.pending_approvals(store)] == [c["id"]]
    assert workflow.review(store, c["id"], acc["super2"], v, approve=True)["status"] == "decided"
    d = workflow.case_view(store, c["id"])["decisions"][0]
    assert d["status"] == "final" and d["supervisor"] == "super2" and d["approved_at"]
    assert workflow.pending_approvals(store) == []


def test_a_returned_decision_goes_back_to_the_officer_and_is_not_a_label(filled, tmp_path):
    store, _, acc = filled
    case = store.take_next(acc["officer1"].id, "officer1")
    workflow.decide(
        store,
        case.id,
        acc["officer1"],
        case.version,
        DecisionForm("reject_part", "X04", amount="1000"),
        approval_threshold=0.0,
    )
    with pytest.raises(Invalid):  # returning needs a note
        workflow.review(store, case.id, acc["super1"], case.version + 1, approve=False)
    workflow.review(
        store,
        case.id,
        acc["super1"],
        case.version + 1,
        approve=False,
        note="check the bed-days first",
    )
    view = workflow.case_view(store, case.id)
    assert view["case"]["status"] == "assigned" and view["case"]["assignee"] == "officer1"
    assert view["decisions"][0]["status"] == "returned"
    assert export_labels(store, tmp_path / "labels.csv") == 0
    # the officer decides again on the new version
    out = workflow.decide(
        store,
        case.id,
        acc["officer1"],
        view["case"]["version"],
        DecisionForm("reject_part", "X04", amount="500"),
        approval_threshold=THRESHOLD,
    )
    assert out["status"] == "decided"


# -- audit ---------------------------------------------------------------------------------------
def test_every_change_is_an_immutable_audit_event(filled):
    store, _, acc = filled
    case = store.take_next(acc["officer1"].id, "officer1")
    workflow.decide(
        store,
        case.id,
        acc["officer1"],
        case.version,
        DecisionForm("reject_part", "X04", "price", amount="12.345"),
        approval_threshold=0.0,
    )
    workflow.review(store, case.id, acc["super1"], case.version + 1, approve=True, note="ok")
    ev = workflow.audit_events(store, case_id=case.id, claim_id=case.claim_id)["rows"]
    assert [e["action"] for e in ev] == ["approve", "decide", "assign", "open"]
    decide = ev[1]
    assert decide["actor"] == "officer1" and decide["before"]["status"] == "assigned"
    assert decide["after"]["amount_rejected"] == 12345 and decide["after"]["reason_code"] == "X04"
    assert ev[0]["after"]["decision_status"] == "final"
    with store.engine.connect() as conn, pytest.raises(DBAPIError):
        conn.execute(text("UPDATE audit_events SET actor = 'x'"))
        conn.commit()
    with store.engine.connect() as conn, pytest.raises(DBAPIError):
        conn.execute(text("DELETE FROM audit_events"))
        conn.commit()
    with store.session() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.actor == "x")) is None


# -- accounts ------------------------------------------------------------------------------------
def test_passwords_are_argon2_and_lockout_counts_failures(store_url):
    store = Store(store_url)
    users.create_user(store, "Officer.A", "officer", "correct-horse-1")
    with store.session() as s:
        row = s.execute(text("SELECT username, password_hash FROM users")).one()
    assert row[0] == "officer.a" and row[1].startswith("$argon2id$")
    with pytest.raises(ValueError):
        users.create_user(store, "officer.a", "officer", "another-pass-1")
    with pytest.raises(ValueError):
        users.create_user(store, "short", "officer", "short")
    with pytest.raises(ValueError):
        users.create_user(store, "boss", "king", "long-enough-pass")
    assert users.authenticate(store, "nobody", "x")[1] == "bad"
    for _ in range(2):
        assert users.authenticate(store, "officer.a", "wrong", max_failures=3) == (None, "bad")
    assert users.authenticate(store, "officer.a", "wrong", max_failures=3) == (None, "locked")
    # locked: even the right password is refused until the lock ends or an admin unlocks
    assert users.authenticate(store, "officer.a", "correct-horse-1")[1] == "locked"
    assert users.unlock_user(store, "officer.a", actor="admin1")
    acc, why = users.authenticate(store, "OFFICER.A", "correct-horse-1")
    assert why == "ok" and acc.role == "officer"
    actions = [e["action"] for e in workflow.audit_events(store)["rows"]]
    assert actions[:6] == [
        "login",
        "unlock",
        "login_refused",
        "lock",
        "login_failed",
        "login_failed",
    ]
    store.engine.dispose()


def test_sessions_end_on_logout_and_on_deactivation(store_url):
    store = Store(store_url)
    users.create_user(store, "officer.b", "officer", "correct-horse-2")
    acc, _ = users.authenticate(store, "officer.b", "correct-horse-2")
    token = users.open_session(store, acc)
    assert users.session_account(store, token) == acc
    users.close_session(store, token, actor="officer.b")
    assert users.session_account(store, token) is None
    token = users.open_session(store, acc)
    users.set_active(store, "officer.b", False)
    assert users.session_account(store, token) is None
    assert users.authenticate(store, "officer.b", "correct-horse-2")[1] == "bad"
    with store.session() as s:  # the store keeps only the token's hash
        hashes = s.execute(text("SELECT token_hash FROM web_sessions")).scalars().all()
    assert token not in hashes
    store.engine.dispose()


# -- labels ----------------------------------------------------------------------------------------
def test_labels_round_trip_into_training(filled, tmp_path, scored_world):
    from contract.ingest import read_tabular_file
    from contract.schema import LABELS
    from contract.validate import check_table
    from training.data import attach_targets

    store, _, acc = filled
    a = store.take_next(acc["officer1"].id, "officer1")
    b = store.take_next(acc["officer2"].id, "officer2")
    c = store.take_next(acc["officer1"].id, "officer1")
    workflow.decide(
        store,
        a.id,
        acc["officer1"],
        a.version,
        DecisionForm("reject_part", "X04", amount="150000"),
        approval_threshold=THRESHOLD,
    )
    out = workflow.decide(
        store,
        b.id,
        acc["officer2"],
        b.version,
        DecisionForm("accept", "A02"),
        approval_threshold=THRESHOLD,
    )
    if out["status"] == "pending_approval":  # a high-band accept: four eyes
        workflow.review(store, b.id, acc["super1"], b.version + 1, approve=True)
    workflow.decide(
        store,
        c.id,
        acc["officer1"],
        c.version,
        DecisionForm("reject_full", "X01"),
        approval_threshold=0.0,
    )  # pending: not a label yet
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"labels.{suffix}"
        assert export_labels(store, out) == 2
        raw = read_tabular_file(out, LABELS)
        checked = check_table(raw, LABELS)
        assert checked.errors.empty and not checked.bad.any()
        lab = checked.frame.set_index("claim_id")
        assert set(lab.index) == {a.claim_id, b.claim_id}
        assert lab.at[a.claim_id, "label"] == 1 and lab.at[a.claim_id, "rejected_amount"] == 150000
        assert lab.at[b.claim_id, "label"] == 0 and lab.at[b.claim_id, "rejected_amount"] == 0
        assert pd.notna(lab.at[a.claim_id, "decided_at"])
        frame = attach_targets(scored_world["frame"], checked.frame, None)
        got = frame.set_index("claim_id")
        assert got.at[a.claim_id, "label"] == 1 and got.at[b.claim_id, "label"] == 0
        assert got["label"].notna().sum() == 2
