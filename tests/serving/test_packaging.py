"""`bentoml build` makes a self-contained bento of the service, and that bento serves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pins(text: str) -> set[str]:
    return {ln.strip() for ln in text.splitlines() if "==" in ln and not ln.startswith("#")}


def test_bento_requirements_follow_the_lock():
    uv = shutil.which("uv")
    assert uv, "uv is needed to export the lock (./dev installs it)"
    out = subprocess.run(
        [uv, "export", "--no-dev", "--no-hashes", "--no-emit-project", "--no-header",
         "--no-annotate", "--frozen"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    want = {p for p in _pins(out) if not p.startswith(("pyspark==", "py4j=="))}
    have = _pins((ROOT / "serving" / "requirements.txt").read_text())
    assert have == want, (
        f"serving/requirements.txt is out of step with uv.lock (docs/service.md says how to "
        f"regenerate it): missing {sorted(want - have)[:5]}, extra {sorted(have - want)[:5]}"
    )


@pytest.fixture(scope="module")
def bento(tmp_path_factory):
    home = tmp_path_factory.mktemp("bentoml-home")
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", str(ROOT), "--output", "tag"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    tag = done.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    return home, tag, home / "bentos" / name / version


def test_the_bento_holds_the_service_and_not_the_rest(bento):
    _, _, folder = bento
    src = folder / "src"
    for need in (
        "claimradar/service.py", "serving/api.py", "serving/example_claim.json",
        "serving/migrations/env.py", "features/pipeline.py", "claimradar/settings.py",
    ):  # fmt: skip
        assert (src / need).is_file(), need
    assert list((src / "serving" / "migrations" / "versions").glob("0001_*.py"))
    assert list((src / "serving" / "review" / "templates").glob("*.html"))
    assert not (src / "tests").exists() and not (src / "simulator").exists()
    reqs = (folder / "env" / "python" / "requirements.txt").read_text()
    assert "lightgbm==" in reqs and "bentoml==" in reqs and "pyspark==" not in reqs


def test_the_bento_serves_scores(bento, trained_model, mlflow_store, sim_dataset, tmp_path):
    """The built bento, not the checkout, answers /score (its model comes from the registry)."""
    from claims_json import claims_json
    from service_proc import start_service

    home, tag, _ = bento
    db = Path(mlflow_store["tracking_uri"].removeprefix("sqlite:///"))
    svc = start_service(
        tmp_path, db, mlflow_store["artifact_root"],
        env={"CLAIMRADAR_BENTOML_HOME": str(home)}, bento=tag,
    )  # fmt: skip
    try:
        with svc.client() as c:
            r = c.post("/score", json={"claims": claims_json(sim_dataset.parent / "tabular", 2)})
        assert r.status_code == 200 and len(r.json()["scored"]) == 2
        assert f'BentoServer from "{tag}"' in svc.log.read_text()
    finally:
        svc.stop()
