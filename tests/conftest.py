import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# Tests never write into the checkout's own data folder.
os.environ.setdefault(
    "CLAIMRADAR_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "claimradar-test-home")
)


# -- shared fixtures: a small simulated world, ingested once; a real MLflow store; a trained model


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    import simulator
    from features.ingest import ingest

    root = tmp_path_factory.mktemp("world")
    simulator.simulate(root / "tabular", 12_000, months=8, start="2025-01", seed=3)
    ingest(root / "tabular", root / "dataset")
    return root / "dataset"


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("mlflow")
    return {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "artifact_root": root / "artifacts"}


@pytest.fixture(scope="session")
def trained(world, store, tmp_path_factory):
    from training.train import train

    models = tmp_path_factory.mktemp("models")
    result = train(world, models_dir=models, **store)
    return result
