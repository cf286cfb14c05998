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
