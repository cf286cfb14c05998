"""Online scoring in process: JSON claims and envelopes, field-level errors, the case store."""

import pytest
from claims_json import claims_json as _claims_json
from claims_json import moved_claim

from serving.online import ScoringState
from serving.store import Case, ScoredClaim, Store


@pytest.fixture(scope="module")
def state(trained_model, mlflow_store, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('cases') / 'cases.db'}"
    s = ScoringState(
        mlflow_store["tracking_uri"], mlflow_store["artifact_root"], "test-key", store=Store(url)
    )
    assert s.load().version == str(trained_model.version)
    return s


def test_good_claims_are_scored_and_bad_ones_get_field_errors(state, sim_dataset):
    claims = _claims_json(sim_dataset.parent / "tabular", 4)
    claims[1]["NGAY_VAO"] = "2025-13-45"
    claims[2]["xml3"][0]["MA_NHOM"] = 99
    out = state.score_records(claims, actor="api:test")
    assert {r["MA_LK"] for r in out["scored"]} == {claims[0]["MA_LK"], claims[3]["MA_LK"]}
    errs = {e["index"]: e for e in out["errors"]}
    assert set(errs) == {1, 2}
    assert errs[1]["errors"][0]["field"] == "NGAY_VAO"
    assert "unparseable date" in errs[1]["errors"][0]["error"]
    assert errs[2]["errors"][0]["field"] == "MA_NHOM" and errs[2]["MA_LK"] == claims[2]["MA_LK"]
    for r in out["scored"]:
        assert 0 <= r["risk_score"] <= 1 and r["band"] in ("high", "review", "watch", "low")
        assert r["model_version"] == out["model_version"]


def test_scores_are_recorded_once_per_claim_and_model(state, sim_dataset):
    claims = _claims_json(sim_dataset.parent / "tabular", 30)
    state.score_records(claims, actor="api:test")
    state.score_records(claims, actor="api:test")
    with state.store.session() as s:
        ids = [c.claim_id for c in s.query(ScoredClaim).all()]
        assert len(ids) == len(set(ids)) >= 30
        cases = s.query(Case).all()
        bands = {c.claim_id: c.band for c in s.query(ScoredClaim).all()}
        assert all(bands[c.claim_id] in ("high", "review") for c in cases)


def test_envelope_scores_like_json(state, sim_dataset, tmp_path):
    from contract.export import export_xml
    from contract.ingest import load_dataset

    tables = load_dataset(sim_dataset)
    some = tables["claims"].tail(3)
    subset = {
        "claims": some,
        "drug_lines": tables["drug_lines"][tables["drug_lines"]["claim_id"].isin(some["claim_id"])],
        "service_lines": tables["service_lines"][
            tables["service_lines"]["claim_id"].isin(some["claim_id"])
        ],
    }
    files = export_xml(subset, tmp_path / "xml", per_file=10)
    out_xml = state.score_envelope(files[0].read_bytes(), actor="api:test")
    same = _claims_json(sim_dataset.parent / "tabular", 3, ids=list(some["claim_id"]))
    out_json = state.score_records(same, actor="api:test")
    by = {r["MA_LK"]: r["risk_score"] for r in out_json["scored"]}
    assert out_xml["scored"] and all(by[r["MA_LK"]] == r["risk_score"] for r in out_xml["scored"])


def test_personal_values_are_masked_in_field_errors(state, sim_dataset):
    claims = _claims_json(sim_dataset.parent / "tabular", 2)
    claims[0]["MA_THE_BHYT"] = "XX12345678901234567"  # a bad card number
    out = state.score_records(claims, actor="api:test")
    (err,) = out["errors"]
    (field,) = [e for e in err["errors"] if e["field"] == "MA_THE_BHYT"]
    assert field["value"].endswith("567") and "12345678" not in field["value"]


def test_a_duplicate_sent_to_another_replica_is_caught(
    trained_model, mlflow_store, sim_dataset, redis_server, tmp_path
):
    """Two `claimradar serve` processes on one Redis (CLAIMRADAR_ONLINE_STORE): a claim scored
    by the first, then the same claim under another MA_LK sent to the second, is flagged as a
    duplicate there (R11); the first copy is not (nothing like it came before)."""
    from pathlib import Path

    from redis import Redis
    from service_proc import start_service

    Redis.from_url(redis_server.url(5)).flushdb()
    db = Path(mlflow_store["tracking_uri"].removeprefix("sqlite:///"))
    env = {"CLAIMRADAR_ONLINE_STORE": redis_server.url(5)}
    (src,) = _claims_json(sim_dataset.parent / "tabular", 1)
    first = moved_claim(src, src["MA_LK"][:-3] + "R01")  # a day later than the world's claim
    second = moved_claim(src, src["MA_LK"][:-3] + "R02")
    one = start_service(tmp_path / "one", db, mlflow_store["artifact_root"], env)
    try:
        two = start_service(tmp_path / "two", db, mlflow_store["artifact_root"], env)
        try:
            with one.client() as c:
                r = c.post("/score", json={"claims": [first]})
            assert r.status_code == 200, r.text
            (hit,) = r.json()["scored"]
            assert "R11" not in {h["code"] for h in hit["rule_hits"]}
            with two.client() as c:
                r = c.post("/score", json={"claims": [second]})
            assert r.status_code == 200, r.text
            (hit,) = r.json()["scored"]
            assert "R11" in {h["code"] for h in hit["rule_hits"]}
        finally:
            two.stop()
    finally:
        one.stop()
