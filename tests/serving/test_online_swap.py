"""A model swap with the in-process (memory) online store keeps the remembered claims: the new
state takes them over its snapshot's copies, and a claim a request still in flight on the old
model remembers after the swap reaches the new state too (as Redis keeps them for replicas)."""

from __future__ import annotations

from claims_json import claims_json, moved_claim

from serving.online import ScoringState


def _codes(state: ScoringState, claim: dict, served=None) -> set[str]:
    out = state.score_records([claim], actor="api:test", served=served)
    (hit,) = out["scored"]
    return {h["code"] for h in hit["rule_hits"]}


def test_a_model_swap_keeps_the_remembered_claims(trained_model, mlflow_store, sim_dataset):
    state = ScoringState(mlflow_store["tracking_uri"], mlflow_store["artifact_root"], "test-key")
    old = state.load()
    src_a, src_b = claims_json(sim_dataset.parent / "tabular", 2)
    a = [moved_claim(src_a, src_a["MA_LK"][:-3] + f"S0{i}", days=1) for i in (1, 2)]
    b = [moved_claim(src_b, src_b["MA_LK"][:-3] + f"S0{i}", days=2) for i in (1, 2)]
    assert "R11" not in _codes(state, a[0])
    new = state.swap(old.bundle, old.snapshot, "next", "champion")
    assert state.served is new and new.plan is not old.plan
    # remembered before the swap: its copy sent to the new model is a duplicate (R11)
    assert "R11" in _codes(state, a[1])
    # a request still on the old model after the swap: the new model remembers its claim too
    assert "R11" not in _codes(state, b[0], served=old)
    assert "R11" in _codes(state, b[1])
    assert new.plan.fallbacks == 0
