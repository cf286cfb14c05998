"""Concurrent small requests scored together (serving.combine): the batches it forms, that
requests waiting while one is scored are taken as one batch, that a failure stays with its own
request, and — on a real model and per-key state — that each request gets exactly what its claims
get when the same claims are sent in one request."""

from __future__ import annotations

import threading
import time

import pytest
from claims_json import claims_json, moved_claim

from serving.combine import Combiner, _Job, batches
from serving.online import ScoringState


def _job(key, ids, n=None):
    return _Job(key, frozenset(ids), n)


def test_batches_keep_keys_apart_and_a_claims_copies_in_order():
    a, b = object(), object()
    jobs = [
        _job(a, {"1"}),
        _job(a, {"2"}),
        _job(b, {"3"}),  # another served model: its own batch
        _job(a, {"1", "4"}),  # claim 1 again: after the batch that holds its first copy
        _job(a, {"5"}),  # fits the first batch
        _job(a, {"4"}),  # after the batch holding 4
    ]
    got = [[jobs.index(j) for j in g] for g in batches(jobs, max_claims=128)]
    assert got == [[0, 1, 4], [2], [3], [5]]
    # never more than max_claims claims in a batch, a request never split
    big = [_job(a, {f"{i}-{k}" for k in range(3)}) for i in range(5)]
    sizes = [sum(j.size for j in g) for g in batches(big, max_claims=7)]
    assert sizes == [6, 6, 3]


def _gated(score):
    """A score function whose first call waits for `gate` (so requests pile up behind it)."""
    gate, calls = threading.Event(), []

    def run(key, payloads):
        calls.append(list(payloads))
        if len(calls) == 1:
            assert gate.wait(30)
        return score(key, payloads)

    return run, gate, calls


def _wait_until(cond, seconds=30.0):
    end = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_requests_waiting_while_one_is_scored_are_scored_together():
    run, gate, calls = _gated(lambda key, ps: [p * 10 for p in ps])
    comb = Combiner(run)
    key = object()
    got: dict[int, int] = {}

    def send(p):
        got[p] = comb.run(key, {str(p)}, p)

    first = threading.Thread(target=send, args=(1,))
    first.start()
    _wait_until(lambda: len(calls) == 1)  # scoring request 1, alone (nobody was waiting)
    others = [threading.Thread(target=send, args=(p,)) for p in (2, 3, 4)]
    for t in others:
        t.start()
    _wait_until(lambda: len(comb._pending) == 3)
    gate.set()
    for t in (first, *others):
        t.join(30)
    assert got == {1: 10, 2: 20, 3: 30, 4: 40}
    assert calls[0] == [1] and sorted(calls[1]) == [2, 3, 4] and len(calls) == 2
    assert comb.combined == 3
    # a lone request is scored at once, alone
    assert comb.run(key, {"5"}, 5) == 50 and calls[-1] == [5]


def test_a_failing_request_fails_alone():
    def score(key, ps):
        if "bad" in ps:
            raise ValueError("bad request")
        return [p.upper() for p in ps]

    run, gate, calls = _gated(score)
    comb = Combiner(run)
    key = object()
    got: dict[str, object] = {}

    def send(p):
        try:
            got[p] = comb.run(key, {p}, p)
        except ValueError as e:
            got[p] = e

    threads = [threading.Thread(target=send, args=(p,)) for p in ("first", "a", "bad", "b")]
    threads[0].start()
    _wait_until(lambda: len(calls) == 1)
    for t in threads[1:]:
        t.start()
    _wait_until(lambda: len(comb._pending) == 3)
    gate.set()
    for t in threads:
        t.join(30)
    assert got["first"] == "FIRST" and got["a"] == "A" and got["b"] == "B"
    assert isinstance(got["bad"], ValueError)
    assert sorted(calls[1]) == ["a", "b", "bad"]  # tried together, then each alone
    assert sorted(tuple(c) for c in calls[2:]) == [("a",), ("b",), ("bad",)]


def _answers(out: dict) -> dict[str, dict]:
    keep = ("risk_score", "band", "expected_overbilled", "priority", "reasons", "rule_hits")
    return {r["MA_LK"]: {k: r[k] for k in keep} for r in out["scored"]}


@pytest.fixture(scope="module")
def claims(sim_dataset):
    src = claims_json(sim_dataset.parent / "tabular", 8)
    moved = [moved_claim(c, c["MA_LK"][:-3] + f"C{i:02d}", days=1) for i, c in enumerate(src)]
    # the first claim's copy under another MA_LK: a duplicate (R11) of it
    return [*moved, moved_claim(src[0], src[0]["MA_LK"][:-3] + "D00", days=1)]


def test_concurrent_requests_get_what_their_claims_get_in_one_request(
    trained_model, mlflow_store, claims
):
    """Sent one claim a request by concurrent clients and scored together, each request's answer
    equals its claim's answer when the same claims are sent in one request; the duplicate
    among them is caught."""
    first, rest = claims[0], claims[1:]
    uri, root = mlflow_store["tracking_uri"], mlflow_store["artifact_root"]

    one = ScoringState(uri, root, "test-key")
    one.load()
    want = _answers(one.score_records([first], actor="api:test"))
    want.update(_answers(one.score_records(rest, actor="api:test")))
    assert any("R11" in {h["code"] for h in a["rule_hits"]} for a in want.values())

    state = ScoringState(uri, root, "test-key")
    state.load()
    run, gate, calls = _gated(state._features_and_scores)
    state.combiner._score = run
    got: dict[str, dict] = {}

    def send(claim):
        out = state.score_records([claim], actor="api:test")
        assert [r["MA_LK"] for r in out["scored"]] == [claim["MA_LK"]] and not out["errors"]
        got.update(_answers(out))

    lead = threading.Thread(target=send, args=(first,))
    lead.start()
    _wait_until(lambda: len(calls) == 1)
    others = [threading.Thread(target=send, args=(c,)) for c in rest]
    for t in others:
        t.start()
    _wait_until(lambda: len(state.combiner._pending) == len(rest))
    gate.set()
    for t in (lead, *others):
        t.join(60)
    assert len(calls) == 2 and len(calls[1]) == len(rest)  # the rest scored as one batch
    assert got == want and len(got) == len(claims)
    assert state.served.plan.fallbacks == 0
