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


def _containers_size(x) -> int:
    """Bytes of the dicts, lists and tuples of x (its values counted once where shared)."""
    import sys

    if isinstance(x, dict):
        return sys.getsizeof(x) + sum(_containers_size(v) for v in x.values())
    if isinstance(x, list | tuple):
        return sys.getsizeof(x) + sum(_containers_size(v) for v in x)
    return 0


def test_a_remembered_claim_is_kept_as_its_history_row(trained_model, mlflow_store, sim_dataset):
    """The memory store keeps what later claims' features read of a scored claim (as Redis
    does), not its whole enriched row with every line: a province-year of claims scored through
    the API must fit a worker."""
    from features.online_state.keys import HISTORY_COLUMNS

    state = ScoringState(mlflow_store["tracking_uri"], mlflow_store["artifact_root"], "test-key")
    served = state.load()
    src = claims_json(sim_dataset.parent / "tabular", 60)
    # moved past the world's last day: claims of the month after the snapshot's, which the
    # per-key state answers (an earlier month takes the compiled plan's way)
    moved = [moved_claim(c, c["MA_LK"][:-3] + f"K{i:02d}", days=3) for i, c in enumerate(src)]
    month = max(str(c["NGAY_VAO"])[:6] for c in moved)
    sent = [c for c in moved if str(c["NGAY_VAO"])[:6] == month]
    assert len(sent) >= 20
    out = state.score_records(sent, actor="api:test")
    assert len(out["scored"]) == len(sent) and served.plan.fallbacks == 0
    kept = [served.plan.remembered[c["MA_LK"]] for c in sent]
    assert all(set(r) == {*HISTORY_COLUMNS, "_procs", "_lines"} for r in kept)
    assert sum(len(r["_lines"]) for r in kept) > len(kept)  # the price points' lines are kept
    per_claim = sum(_containers_size(r) for r in kept) / len(kept)
    assert per_claim < 3_000, per_claim
