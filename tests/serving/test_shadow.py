"""Shadow challengers over HTTP: with a champion (v1) and a challenger (v2, here the same run
registered again) in the registry, a real `claimradar serve` answers with the champion's scores
alone, records the challenger's beside them in the case store without opening cases, and
`claimradar compare` reads both."""

import shutil
import time

import pytest
from claims_json import claims_json
from mlflow.tracking import MlflowClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from scoring.registry import MODEL_NAME
from serving.outcomes import compare_versions, version_scores
from serving.store import Case, ScoredClaim, Store


@pytest.fixture(scope="module")
def shadow_service(trained_model, mlflow_store, tmp_path_factory):
    from service_proc import start_service

    root = tmp_path_factory.mktemp("shadow")
    db = root / "registry.db"
    shutil.copy(mlflow_store["tracking_uri"].removeprefix("sqlite:///"), db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    v1 = client.get_model_version(MODEL_NAME, str(trained_model.version))
    v2 = client.create_model_version(MODEL_NAME, source=v1.source, run_id=v1.run_id)
    client.set_registered_model_alias(MODEL_NAME, "champion", v1.version)
    client.set_registered_model_alias(MODEL_NAME, "challenger", v2.version)
    svc = start_service(root / "svc", db, mlflow_store["artifact_root"])
    yield svc, str(v1.version), str(v2.version)
    svc.stop()


def test_the_challenger_scores_in_the_shadow(shadow_service, sim_dataset, monkeypatch):
    svc, champion, challenger = shadow_service
    claims = claims_json(sim_dataset.parent / "tabular", 30)
    with svc.client() as c:
        r = c.post("/score", json={"claims": claims})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == champion
    assert {s["model_version"] for s in body["scored"]} == {champion}
    scored = {s["MA_LK"] for s in body["scored"]}
    assert len(scored) >= 20

    store = Store(svc.case_store_url, migrate=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the shadow records after the answer
        shadow = version_scores(store, challenger)
        if set(shadow["claim_id"]) >= scored:
            break
        time.sleep(0.5)
    assert set(shadow["claim_id"]) == scored
    # the same bundle under another version: the same scores, recorded as v2
    mine = {s["MA_LK"]: s for s in body["scored"]}
    for row in shadow.itertuples():
        assert row.band == mine[row.claim_id]["band"]
        assert row.priority == pytest.approx(mine[row.claim_id]["priority"], abs=0.01)  # 3 dp
    with store.session() as s:
        cases = s.scalar(select(func.count(Case.id)))
        case_models = set(s.scalars(
            select(ScoredClaim.model_version).join(Case, Case.scored_claim_id == ScoredClaim.id)
        ))  # fmt: skip
    opened = sum(1 for s in body["scored"] if s["band"] in ("high", "review"))
    assert cases == opened and case_models <= {champion}  # the shadow opened no case
    r = compare_versions(store, champion, challenger)
    assert r["claims_both"] == len(scored) and r["band_agreement"] == 1.0
    store.engine.dispose()

    from claimradar.cli import app
    from claimradar.settings import get_settings

    monkeypatch.setenv("CLAIMRADAR_DATABASE_URL", svc.case_store_url)
    get_settings.cache_clear()
    try:
        res = CliRunner().invoke(
            app, ["compare", "--champion", champion, "--challenger", challenger]
        )
    finally:
        get_settings.cache_clear()
    assert res.exit_code == 0, res.output
    assert "band agreement 100.0%" in res.output
