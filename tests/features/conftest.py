"""A small simulated world shared by the feature tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimradar.settings import DEV_LINKAGE_KEY
from contract.ingest import ingest, load_dataset


@pytest.fixture(scope="session")
def feature_dataset(tmp_path_factory) -> Path:
    """3,000 simulated claims over six months (2025-01 .. 2025-06), ingested."""
    from simulator import simulate

    root = tmp_path_factory.mktemp("feature-world")
    simulate(root / "sim", 3_000, months=6, start="2025-01", seed=7)
    ingest(root / "sim", root / "ds", linkage_key=DEV_LINKAGE_KEY)
    return root / "ds"


@pytest.fixture(scope="session")
def feature_tables(feature_dataset) -> dict:
    return load_dataset(feature_dataset)


@pytest.fixture(scope="session")
def feature_frame(feature_tables):
    """build_features over the whole feature world, built once for every module that compares
    against it (a copy per module: a test that changes it in place spoils no other module)."""
    from features.pipeline import build_features

    return build_features(feature_tables)


@pytest.fixture(scope="session")
def may_snapshot(feature_tables):
    """The profile snapshot as of 2025-05-01 (the online tests' cut), built once. Online plans and
    states copy it into their own databases and never change it."""
    from features.pipeline import build_snapshot

    return build_snapshot(feature_tables, "2025-05-01")
