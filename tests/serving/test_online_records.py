"""The API's small requests in process, without frames: when the served per-key state takes
records (`takes_records`), ScoringState validates without building frames and hands the state
the validator's records. The answers (scores, reasons, field errors) and the case-store rows
equal those of the same requests given frames, request after request (the state remembers each
claim for the next)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from claims_json import claims_json
from sqlalchemy import select

from contract.validate_rows import canonical_frames
from serving.online import ScoringState
from serving.store import Case, ScoredClaim, Store


class RecordsPlan:
    """The served state, taking records: they reach it as records (asserted) and it answers
    from the frames the validator would have built of them."""

    takes_records = True

    def __init__(self, plan) -> None:
        self.plan, self.calls = plan, 0

    def feature_rows(self, batch: dict):
        assert all(isinstance(t, list) for t in batch.values())
        self.calls += 1
        return self.plan.feature_rows(canonical_frames(batch))

    def __getattr__(self, name):
        return getattr(self.plan, name)


class FramesPlan:
    """The served state made to take frames (the path of larger requests), as the baseline."""

    takes_records = False

    def __init__(self, plan) -> None:
        self.plan = plan

    def feature_rows(self, batch: dict):
        assert not any(isinstance(t, list) for t in batch.values())
        return self.plan.feature_rows(batch)

    def __getattr__(self, name):
        return getattr(self.plan, name)


@pytest.fixture(scope="module")
def states(trained_model, mlflow_store, tmp_path_factory):
    out = []
    for name in ("frames", "records"):
        url = f"sqlite:///{tmp_path_factory.mktemp(name) / 'cases.db'}"
        s = ScoringState(
            mlflow_store["tracking_uri"], mlflow_store["artifact_root"], "test-key",
            store=Store(url),
        )  # fmt: skip
        assert s.load().version == str(trained_model.version)
        out.append(s)
    yield out
    for s in out:
        s.stop()


def answer(out: dict) -> str:
    for r in out["scored"]:
        r.pop("scored_at")
    return json.dumps(out, sort_keys=True, default=repr)


def recorded(store: Store) -> list:
    with store.session() as s:
        rows = s.scalars(select(ScoredClaim).order_by(ScoredClaim.claim_key)).all()
        cases = sorted(c.claim_key for c in s.scalars(select(Case)))
        return [
            [r.claim_key, r.content_hash, r.claim_version, r.band, r.priority, r.month,
             r.facility_level, json.dumps(r.claim, sort_keys=True)]
            for r in rows
        ] + cases  # fmt: skip


def test_records_all_the_way_answer_as_frames_do(states, sim_dataset):
    frames, records = states
    plan = RecordsPlan(records.served.plan)
    served = replace(records.served, plan=plan)
    claims = claims_json(sim_dataset.parent / "tabular", 12)
    claims[3]["NGAY_VAO"] = "2025-13-45"  # a field error: not scored, the others are
    requests = [[c] for c in claims[:8]] + [claims[8:12], [claims[0]]]  # the first again
    as_frames = replace(frames.served, plan=FramesPlan(frames.served.plan))
    for req in requests:
        want = frames.score_records(req, actor="api:test", served=as_frames)
        got = records.score_records(req, actor="api:test", served=served)
        assert answer(got) == answer(want)
    assert plan.calls == len(requests) - 1  # not for the request with only the bad claim
    assert recorded(records.store) == recorded(frames.store)
    assert len(recorded(frames.store)) > 10


def test_the_served_state_takes_records_and_answers_as_frames_do(states, sim_dataset):
    """The per-key state itself (features.online_state, `takes_records`): records reach it
    (nothing wraps it) and it answers request after request as it does from frames."""
    frames, records = states
    assert getattr(records.served.plan, "takes_records", False)
    as_frames = replace(frames.served, plan=FramesPlan(frames.served.plan))
    claims = claims_json(sim_dataset.parent / "tabular", 24)[12:]
    requests = [[c] for c in claims[:8]] + [claims[8:12], [claims[2]]]  # one again
    for req in requests:
        want = frames.score_records(req, actor="api:test", served=as_frames)
        got = records.score_records(req, actor="api:test")
        assert answer(got) == answer(want)
    assert recorded(records.store) == recorded(frames.store)
