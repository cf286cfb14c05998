"""Resubmitted claims (issue 13), on SQLite and on a real PostgreSQL (`store_url`): a claim is its
facility and MA_LK; a new content is a new version that moves its case to it (a decided case
re-opens and keeps its decisions); the same content again changes nothing; concurrent copies of one
claim, from threads, processes or HTTP clients hitting the API at once, never fail."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import func, select

from claimradar.settings import DEV_LINKAGE_KEY, Settings
from contract.ingest import Limits
from serving.api import create_app
from serving.casefile import content_hashes
from serving.online import ScoringState, Served
from serving.records import document_hash
from serving.review import workflow
from serving.review.users import Account, create_user
from serving.store import AuditEvent, Case, Decision, ScoredClaim, Store

BANDS = ("high", "review")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(store_url):
    s = Store(store_url)
    yield s
    s.engine.dispose()


def _row(claim_id: str, content: str, band: str = "high", priority: float = 100.0, **kw) -> dict:
    return {
        "claim_id": claim_id,
        "facility_id": kw.pop("facility", "01001"),
        "model_version": kw.pop("model", "3"),
        "content_hash": document_hash({"content": content}),
        "risk_score": 0.5,
        "expected_overbilled": priority / 2,
        "priority": priority,
        "band": band,
        "month": "2025-03",
        "fund_claimed": 1000.0,
        "reasons": [],
        "rule_hits": [],
        "claim": {"summary": {"claim_id": claim_id, "content": content}, "lines": []},
        **kw,
    }


def _scored(store) -> list[tuple]:
    with store.session() as s:
        q = select(
            ScoredClaim.claim_key, ScoredClaim.claim_version, ScoredClaim.model_version
        ).order_by(ScoredClaim.id)
        return [tuple(r) for r in s.execute(q)]


def _case(store, key: str = "01001/A") -> Case:
    with store.session() as s:
        return s.scalars(select(Case).where(Case.claim_key == key)).one()


def _events(store, action: str) -> list[AuditEvent]:
    with store.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# -- versions ------------------------------------------------------------------------------------


def test_the_same_content_again_is_a_no_op_and_a_change_is_a_new_version(store):
    assert store.record_scores([_row("A", "v1")], "api:t", BANDS) == 1
    first = _case(store)
    assert store.record_scores([_row("A", "v1")], "api:t", BANDS) == 0  # sent again: nothing
    assert _case(store).version == first.version

    assert store.record_scores([_row("A", "v2", priority=300.0)], "api:t", BANDS) == 1
    assert _scored(store) == [("01001/A", 1, "3"), ("01001/A", 2, "3")]
    case = _case(store)
    assert case.claim_version == 2 and case.priority == 300.0 and case.version == first.version + 1
    with store.session() as s:
        newest = s.get(ScoredClaim, case.scored_claim_id)
    assert newest.claim_version == 2 and newest.claim["summary"]["content"] == "v2"
    (ev,) = _events(store, "resubmit")
    assert ev.entity_id == str(case.id) and ev.after["claim_version"] == 2
    # the old content once more is a version already known: nothing moves
    assert store.record_scores([_row("A", "v1")], "api:t", BANDS) == 0
    assert _case(store).claim_version == 2
    # a new model scoring the current content: a new score of version 2, the case stays
    assert store.record_scores([_row("A", "v2", model="4")], "api:t", BANDS) == 1
    assert _scored(store)[-1] == ("01001/A", 2, "4")
    assert _case(store).version == case.version


def test_ma_lk_is_scoped_by_facility(store):
    rows = [_row("A", "x", facility="01001"), _row("A", "y", facility="79002")]
    assert store.record_scores(rows, "api:t", BANDS) == 2
    with store.session() as s:
        assert sorted(s.scalars(select(Case.claim_key))) == ["01001/A", "79002/A"]
    assert {v for _k, v, _m in _scored(store)} == {1}


def test_a_decided_case_reopens_on_a_new_version_and_keeps_its_history(store):
    store.record_scores([_row("A", "v1", band="review")], "api:t", BANDS)
    uid = create_user(store, "ana", "officer", "ana-password-123")
    ana = Account(uid, "ana", "officer")
    case = _case(store)
    state = workflow.assign(store, case.id, ana, case.version)
    form = workflow.DecisionForm(outcome="reject_full", reason_code="X03")
    workflow.decide(store, case.id, ana, state["version"], form, approval_threshold=1e12)
    decided = _case(store)
    assert decided.status == "decided"

    # the facility resubmits the claim corrected, now in the low band: the case re-opens anyway
    store.record_scores([_row("A", "v2", band="low", priority=5.0)], "api:t", BANDS)
    case = _case(store)
    assert (case.status, case.assignee_id, case.claim_version) == ("open", None, 2)
    assert case.version == decided.version + 1 and case.priority == 5.0
    with store.session() as s:
        (d,) = s.scalars(select(Decision).where(Decision.case_id == case.id))
        assert (d.status, d.outcome, d.claim_version) == ("final", "reject_full", 1)
        newest = s.get(ScoredClaim, case.scored_claim_id)
    assert newest.claim_version == 2 and "lines" in newest.claim  # a case keeps its document
    (ev,) = _events(store, "reopen")
    assert ev.before["status"] == "decided" and ev.after["status"] == "open"
    # the officer's stale form (the version they saw) is now a conflict, not a decision
    with pytest.raises(workflow.Conflict):
        workflow.decide(store, case.id, ana, decided.version, form, approval_threshold=1e12)
    assert workflow.case_view(store, case.id)["case"]["claim_version"] == 2
    # the decision on version 1 is no label for the claim as it now is
    from serving.labels import label_rows
    from serving.outcomes import case_rows

    assert label_rows(store).empty
    assert not case_rows(store)["decided"].any()  # nor a decided case in the outcomes


def test_a_pending_decision_is_superseded_by_a_resubmission(store):
    store.record_scores([_row("A", "v1")], "api:t", BANDS)
    uid = create_user(store, "ana", "officer", "ana-password-123")
    ana = Account(uid, "ana", "officer")
    case = _case(store)
    state = workflow.assign(store, case.id, ana, case.version)
    accept = workflow.DecisionForm(outcome="accept", reason_code="A01")  # high band: four eyes
    workflow.decide(store, case.id, ana, state["version"], accept, approval_threshold=1e12)
    assert _case(store).status == "pending_approval"

    store.record_scores([_row("A", "v2")], "api:t", BANDS)
    assert _case(store).status == "open"
    with store.session() as s:
        assert list(s.scalars(select(Decision.status))) == ["superseded"]
    assert workflow.pending_approvals(store) == []
    (ev,) = _events(store, "reopen")
    assert ev.after["superseded_decisions"] and ev.before["status"] == "pending_approval"


def test_a_claim_that_becomes_a_case_only_in_a_later_version(store):
    store.record_scores([_row("B", "v1", band="low")], "api:t", BANDS)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0
        (low,) = s.scalars(select(ScoredClaim))
        assert set(low.claim) == {"summary"}  # no case: the summary alone is kept
    store.record_scores([_row("B", "v2", band="high")], "api:t", BANDS)
    case = _case(store, "01001/B")
    assert (case.status, case.claim_version) == ("open", 2)
    assert len(_events(store, "open")) == 1 and _events(store, "reopen") == []


# -- content hashes from the canonical tables ---------------------------------------------------


def _tables() -> dict[str, pd.DataFrame]:
    claims = pd.DataFrame(
        {
            "claim_id": ["A", "B"],
            "facility_id": ["01001", "01001"],
            "patient_name": ["NGUYEN VAN A", "TRAN THI B"],
            "admitted_at": pd.to_datetime(["2025-03-01 08:00", "2025-03-02 09:30"]),
            "fund_claimed": [1000.0, 2000.0],
            "person_key": ["k1", "k2"],
        }
    )
    drugs = pd.DataFrame(
        {"claim_id": ["A", "A", "B"], "line_no": [1, 2, 1], "quantity": [1.0, 2.0, 3.0]}
    )
    return {"claims": claims, "drug_lines": drugs, "service_lines": drugs.iloc[:0]}


def test_content_hashes_follow_what_the_claim_says():
    t = _tables()
    base = content_hashes(t)
    assert set(base) == {"A", "B"} and base["A"] != base["B"]
    assert content_hashes(_tables()) == base  # the same tables: the same hashes
    # the same values in other dtypes and row orders: the same hashes
    t2 = _tables()
    t2["drug_lines"] = t2["drug_lines"].iloc[::-1].astype({"quantity": "int64"})
    t2["claims"] = t2["claims"].iloc[::-1]
    assert content_hashes(t2) == base
    # a derived linkage key is not content
    t3 = _tables()
    t3["claims"]["person_key"] = ["other", "keys"]
    assert content_hashes(t3) == base
    # one line's quantity changed: that claim alone has a new hash
    t4 = _tables()
    t4["drug_lines"].loc[1, "quantity"] = 1.0
    changed = content_hashes(t4)
    assert changed["A"] != base["A"] and changed["B"] == base["B"]
    t5 = _tables()
    t5["claims"].loc[0, "admitted_at"] = pd.Timestamp("2025-03-01 08:01")
    assert content_hashes(t5)["A"] != base["A"]


# -- concurrent copies of one claim --------------------------------------------------------------


def test_copies_of_one_claim_from_many_threads_at_once(store):
    n = 8
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    added: list[int] = []

    def send(i: int) -> None:
        try:
            rows = [_row("A", "v1"), _row(f"X{i}", "own"), _row("B", f"v{i % 2}", band="low")]
            barrier.wait()
            added.append(store.record_scores(rows, "api:t", BANDS))
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    rows = _scored(store)
    assert sorted(k for k, _v, _m in rows if k == "01001/A") == ["01001/A"]  # recorded once
    assert sorted(v for k, v, _m in rows if k == "01001/B") == [1, 2]  # two contents, 2 versions
    assert len(rows) == 1 + n + 2 and sum(added) == len(rows)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 1 + n
    assert len(_events(store, "open")) == 1 + n


CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from serving.store import Store
    from serving.records import document_hash

    url, go, me = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    store = Store(url, migrate=False)
    def row(cid, content):
        return {"claim_id": cid, "facility_id": "01001", "model_version": "3",
                "content_hash": document_hash({"content": content}), "risk_score": 0.5,
                "expected_overbilled": 1.0, "priority": 2.0, "band": "high",
                "claim": {"summary": {}}}
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    added = 0
    for i in range(30):
        added += store.record_scores([row(f"C{i}", "same"), row(f"D{i}", me)], "t", ("high",))
    store.engine.dispose()
    print(json.dumps(added), flush=True)
    """
)


def test_copies_of_one_claim_from_two_processes_at_once(store, store_url, tmp_path):
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, store_url, str(go), me],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for me in ("p1", "p2")
    ]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        go.touch()
        outs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), [e for _o, e in outs]
    added = sum(json.loads(o.strip().splitlines()[-1]) for o, _e in outs)
    rows = _scored(store)
    assert added == len(rows) == 30 + 60  # C<i> once; D<i> in two versions (p1's and p2's)
    assert sorted(v for k, v, _m in rows if k == "01001/D7") == [1, 2]
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 60


# -- through the API: concurrent HTTP clients never get a 5xx -----------------------------------


class _RecordingState(ScoringState):
    """The real API and store; the scorer replaced by a fixed score of each claim (what is
    under test here is recording, not the model)."""

    def __init__(self, store) -> None:
        super().__init__("sqlite:///unused.db", Path("."), DEV_LINKAGE_KEY, store=store,
                         limits=Limits(workers=1))  # fmt: skip
        self.served = Served(bundle=None, snapshot=None, version="7", alias="test")

    def score_records(self, claims, actor, served=None):
        rows = []
        for c in claims:
            rows.append(_row(c["MA_LK"], json.dumps(c, sort_keys=True), facility=c["MA_CSKCB"],
                             model="7"))  # fmt: skip
        self.store.record_scores(rows, actor, BANDS)
        return {"scored": [], "errors": [], "model_version": "7"}


def _serve(app):
    import socket

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            return server, thread, f"http://127.0.0.1:{port}"
        thread.join(0.05)
    raise RuntimeError("the test server did not start")


def test_concurrent_copies_through_the_api_never_answer_5xx(store):
    key = store.create_key("tests")
    app = create_app(_RecordingState(store), store, Settings())
    server, thread, url = _serve(app)
    claim = {"MA_LK": "K1", "MA_CSKCB": "01001", "T_BHTT": "100"}
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def client(i: int) -> None:
        body = {
            "claims": [claim, {**claim, "T_BHTT": str(100 + i % 3)}, {**claim, "MA_LK": f"O{i}"}]
        }
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
            barrier.wait()
            for _ in range(3):
                statuses.append(c.post("/score", json=body, timeout=60).status_code)

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        server.should_exit = True
        thread.join(10)
    assert statuses == [200] * 24
    rows = _scored(store)
    # K1 as first sent, and its two other contents (T_BHTT 101, 102): three versions, once each
    assert sorted(v for k, v, _m in rows if k == "01001/K1") == [1, 2, 3]
    assert len([k for k, _v, _m in rows if k.startswith("01001/O")]) == 8
