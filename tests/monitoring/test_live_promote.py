"""`claimradar promote --live`: the challenger becomes champion only if, on the claims both
versions scored in the case store, it puts at least as much of the decided money rejected in
its top 5% as the champion, over enough decided cases."""

import shutil
from datetime import timedelta

import pytest
from mlflow.tracking import MlflowClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from scoring.registry import MODEL_NAME
from serving.review.users import create_user
from serving.store import Case, Decision, Store


def _rows(version: str, reverse: bool) -> list[dict]:
    return [{
        "claim_id": f"L{i:03d}", "model_version": version, "month": "2025-06",
        "facility_id": "01001", "band": "review", "risk_score": 0.3,
        "expected_overbilled": 50_000.0, "fund_claimed": 1_000_000.0,
        "priority": float(i if reverse else 1000 - i), "rule_hits": [], "reasons": [],
        "claim": {"summary": {"claim_id": f"L{i:03d}"}},
    } for i in range(60)]  # fmt: skip


@pytest.fixture
def registry_and_store(trained_model, mlflow_store, tmp_path):
    db = tmp_path / "registry.db"
    shutil.copy(mlflow_store["tracking_uri"].removeprefix("sqlite:///"), db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    v1 = client.get_model_version(MODEL_NAME, str(trained_model.version))
    v2 = client.create_model_version(MODEL_NAME, source=v1.source, run_id=v1.run_id)
    client.set_registered_model_alias(MODEL_NAME, "champion", str(v1.version))
    client.set_registered_model_alias(MODEL_NAME, "challenger", str(v2.version))
    store = Store(f"sqlite:///{tmp_path / 'cases.db'}")
    store.record_scores(_rows(str(v1.version), reverse=False), "cli:test", ("review",))
    officer = create_user(store, "officer1", "officer", "officer1-password")
    with store.session.begin() as s:  # the champion's top three claims were rejected
        for claim in ("L000", "L001", "L002", "L030"):
            case = s.scalar(select(Case).where(Case.claim_id == claim))
            s.add(Decision(case_id=case.id, officer_id=officer, outcome="reject_full",
                           amount_rejected=400_000.0, status="final",
                           decided_at=case.opened_at + timedelta(days=1)))  # fmt: skip
            s.execute(update(Case).where(Case.id == case.id).values(status="decided"))
    yield client, store, uri, str(v1.version), str(v2.version)
    store.engine.dispose()


def _promote(monkeypatch, uri, store, *args):
    from claimradar.cli import app
    from claimradar.settings import get_settings

    monkeypatch.setenv("CLAIMRADAR_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("CLAIMRADAR_DATABASE_URL", store.url)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["promote", "--live", *args])
    finally:
        get_settings.cache_clear()


def _champion(client) -> str:
    return str(client.get_model_version_by_alias(MODEL_NAME, "champion").version)


def test_live_gate_keeps_a_challenger_that_finds_less(registry_and_store, monkeypatch):
    client, store, uri, v1, v2 = registry_and_store
    store.record_scores(_rows(v2, reverse=True), "cli:test", ())  # ranks them the other way
    r = _promote(monkeypatch, uri, store, "--min-decided", "3")
    assert r.exit_code == 0, r.output
    assert "not promoted" in r.output and "challenger v" + v2 in r.output
    assert "1,200,000" in r.output  # the champion's top 5% (3 claims) held three rejections
    assert _champion(client) == v1
    r = _promote(monkeypatch, uri, store, "--min-decided", "10")
    assert "4 decided case(s)" in r.output and _champion(client) == v1


def test_live_gate_promotes_a_challenger_at_least_as_good(registry_and_store, monkeypatch):
    client, store, uri, _v1, v2 = registry_and_store
    store.record_scores(_rows(v2, reverse=False), "cli:test", ())
    r = _promote(monkeypatch, uri, store, "--min-decided", "3")
    assert r.exit_code == 0, r.output
    assert f"v{v2} promoted" in r.output and "live comparison" in r.output
    assert _champion(client) == v2


def test_live_gate_does_not_promote_on_a_tie_at_nothing(registry_and_store, monkeypatch):
    """When neither version's top holds any decided money (every decision accepted the claim),
    an equal challenger has shown nothing: it is not promoted."""
    client, store, uri, v1, v2 = registry_and_store
    store.record_scores(_rows(v2, reverse=False), "cli:test", ())
    with store.session.begin() as s:
        s.execute(update(Decision).values(outcome="accept", amount_rejected=0.0))
    r = _promote(monkeypatch, uri, store, "--min-decided", "3")
    assert r.exit_code == 0, r.output
    assert "not promoted" in r.output and "no decided money" in r.output
    assert _champion(client) == v1
