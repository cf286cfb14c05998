"""Small simulated worlds shared by the simulator tests (built once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from simulator import SCHEMES, simulate


@dataclass
class World:
    path: Path
    result: object
    xml1: pd.DataFrame
    xml2: pd.DataFrame
    xml3: pd.DataFrame
    facilities: pd.DataFrame
    labels: pd.DataFrame
    truth: pd.DataFrame
    truth_lines: pd.DataFrame
    actors: pd.DataFrame

    @property
    def honest_ids(self) -> set[str]:
        return set(self.xml1["MA_LK"]) - set(self.truth["MA_LK"])


def load(path: Path, result) -> World:
    r = {
        k: pd.read_parquet(path / f"{k}.parquet")
        for k in (
            "xml1",
            "xml2",
            "xml3",
            "facilities",
            "labels",
            "truth",
            "truth_lines",
            "truth_actors",
        )
    }
    return World(
        path,
        result,
        r["xml1"],
        r["xml2"],
        r["xml3"],
        r["facilities"],
        r["labels"],
        r["truth"],
        r["truth_lines"],
        r["truth_actors"],
    )


@pytest.fixture(scope="session")
def sim_world(tmp_path_factory) -> World:
    """Default rates, two years: calibration, arithmetic, labels."""
    path = tmp_path_factory.mktemp("world") / "w"
    return load(path, simulate(path, 60_000, months=24, start="2024-01", seed=11, report=True))


@pytest.fixture(scope="session")
def abusive(tmp_path_factory) -> World:
    """Every scheme at three times its default rate: footprints."""
    path = tmp_path_factory.mktemp("abusive") / "w"
    rates = {k: min(0.2, s.rate * 3) for k, s in SCHEMES.items()}
    return load(path, simulate(path, 60_000, months=12, seed=5, schemes=rates))
