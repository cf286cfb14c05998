import fcntl
import os
import pickle
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# Tests never write into the checkout's own data folder (one home per xdist worker).
WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1 under `-n 2`; None in one process
os.environ.setdefault(
    "CLAIMRADAR_HOME",
    str(
        Path(os.environ.get("TMPDIR", "/tmp"))
        / f"claimradar-test-home{'-' + WORKER if WORKER else ''}"
    ),
)


def shared(tmp_path_factory, name: str, build):
    """`build(folder)` once per test run, even over several xdist workers: the first worker to ask
    builds into a folder beside the workers' own temp dirs (under a file lock) and pickles the
    value; the others wait for it and load it. Only for what tests read and never change."""
    if WORKER is None:
        return build(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent / "shared"
    root.mkdir(exist_ok=True)
    folder, done = root / name, root / f"{name}.pickle"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if done.exists():
            return pickle.loads(done.read_bytes())
        shutil.rmtree(folder, ignore_errors=True)  # a build that failed in the other worker
        folder.mkdir()
        value = build(folder)
        done.write_bytes(pickle.dumps(value))
        return value


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` (pyproject.toml) is tests/parallel.py's plan: the Spark files together,
    the long files first."""
    if config.getvalue("dist") == "loadfile":
        from parallel import Plan

        return Plan(config, log)
    return None


# -- shared fixtures: a small simulated world, ingested once; a real MLflow store; a trained model


@pytest.fixture(scope="session")
def sim_dataset(tmp_path_factory) -> Path:
    def build(root: Path) -> Path:
        import simulator
        from claimradar.settings import DEV_LINKAGE_KEY
        from contract.ingest import ingest

        simulator.simulate(root / "tabular", 12_000, months=8, start="2025-01", seed=3)
        ingest(root / "tabular", root / "dataset", linkage_key=DEV_LINKAGE_KEY)
        return root / "dataset"

    return shared(tmp_path_factory, "world", build)


@pytest.fixture(scope="session")
def trained_store(sim_dataset, tmp_path_factory) -> tuple:
    """The model trained on sim_dataset into a fresh MLflow store, once per run: (the store's
    database, its artifact root, the TrainResult). Tests use `mlflow_store`, a copy."""

    def build(root: Path) -> tuple:
        from training.train import train

        db, artifacts = root / "mlflow.db", root / "artifacts"
        result = train(
            sim_dataset, models_dir=root / "models", tracking_uri=f"sqlite:///{db}",
            artifact_root=artifacts,
        )  # fmt: skip
        return db, artifacts, result

    return shared(tmp_path_factory, "trained", build)


@pytest.fixture(scope="session")
def mlflow_store(trained_store, tmp_path_factory) -> dict:
    """A real MLflow store holding the trained model (registered as challenger): this session's
    (this worker's) copy of the database, so tests may train, tune and promote in it; the artifact
    root is shared (new runs and versions write under new ids)."""
    db, artifacts, _ = trained_store
    root = tmp_path_factory.mktemp("mlflow")
    shutil.copy(db, root / "mlflow.db")
    return {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "artifact_root": artifacts}


@pytest.fixture(scope="session")
def trained_model(trained_store, mlflow_store):
    return trained_store[2]


@pytest.fixture(scope="session")
def service(trained_model, mlflow_store, tmp_path_factory):
    """A real `claimradar serve` (BentoML) on loopback, serving a copy of the trained store."""
    from service_proc import start_service

    db = Path(mlflow_store["tracking_uri"].removeprefix("sqlite:///"))
    svc = start_service(tmp_path_factory.mktemp("service"), db, mlflow_store["artifact_root"])
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def redis_server():
    """A throwaway redis-server on loopback (the online store's shared backend); tests take a
    database number or a key prefix of their own."""
    from redis_proc import RedisServer

    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def scored_world(sim_dataset, mlflow_store, trained_model, tmp_path_factory) -> dict:
    """The world scored by the trained model, with its tables and feature frame: what
    `claimradar score --to-store` hands to serving.casefile.fill_store (review tests)."""
    from contract.ingest import load_dataset
    from features.pipeline import build_features
    from scoring.scorer import score
    from serving.batch import resolve_bundle

    def build(_root: Path) -> dict:
        bundle, version = resolve_bundle(str(trained_model.version), **mlflow_store)
        tables = load_dataset(sim_dataset)
        frame = build_features(sim_dataset)
        scored = score(bundle, frame, model_version=version)
        return {"scored": scored, "tables": tables, "frame": frame, "version": version}

    return shared(tmp_path_factory, "scored", build)


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole test run (local[2]; UTC session time zone). Every
    Spark test takes this fixture; engines find it as the active session."""
    pyspark = pytest.importorskip("pyspark.sql")
    session = (
        pyspark.SparkSession.builder.master("local[2]")
        .appName("claimradar-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "2g")  # the product's default (features.spark_session)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


# -- tiers: a test that trains a model, starts a server or a browser, builds a bento, or runs
# Spark is slow, whatever its file; `./dev test -m "not slow"` is the fast tier (CI runs all).
SLOW_FIXTURES = {
    "trained_model", "service", "scored_world", "bento", "page", "browser", "context", "fitted",
    "unseen_world", "bundle_and_frame", "spark", "postgres_admin_url", "postgres_url",
    "own_postgres",  # a PostgreSQL server of its own, stopped and started again
    "sim_dataset",  # simulating and ingesting 12,000 claims: the world of the model tests
    "trained_store",
}  # fmt: skip
SLOW_IDS = (
    "browser", "postgresql", "test_demo", "notebook", "test_packaging", "test_unseen",
    # tens of seconds each on 2 cores: ingest of a 60k-claim world, MLflow's migrations of a
    # fresh store in a subprocess, the hypothesis round trip through XML
    "test_abusive_world_is_kept_whole_by_ingest", "test_models_command_uses_mlflow_tracking_uri",
    "test_tables_to_xml_to_tables_is_identity",
    # compiling online plans several times over (test_batch_and_online_vectors_are_equal stays)
    "test_a_service_plan_remembers_what_it_scored", "test_both_online_paths_match_batch",
    # the same early-warning check on more seeds (seed 1 stays in the fast tier)
    "noise_is_not[2]", "noise_is_not[3]",
    "test_fuzz_readers",  # hypothesis fuzzing of the XML and tabular readers (minutes)
    # the online state over a stream of requests and over random streams (a plan as oracle)
    "test_a_stream_of_remembered_requests", "test_random_claim_streams_equal_batch",
    "test_two_replicas_on_one_redis",
)  # fmt: skip


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & SLOW_FIXTURES or any(k in item.nodeid for k in SLOW_IDS):
            item.add_marker(pytest.mark.slow)
