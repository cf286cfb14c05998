"""Randomized worlds: deterministic per seed, different across seeds, and the held-out scheme never
runs before its start month (so no label before the cutoff can contain it)."""

import numpy as np
import pandas as pd

from simulator import draw_world, simulate
from simulator.randomize import CUTOFF, HELD_OUT, REPORT_SEEDS, SELECTION_SEEDS


def test_a_seed_draws_one_world_and_seeds_differ():
    assert draw_world(7) == draw_world(7)
    draws = [draw_world(s) for s in range(20)]
    assert len({round(d.visits_per_person, 6) for d in draws}) == 20
    assert len({tuple(sorted(d.schemes.items())) for d in draws}) == 20
    off = [sum(v == 0 for v in d.schemes.values()) for d in draws]
    assert max(off) > 0  # some worlds run without some schemes
    assert not set(SELECTION_SEEDS) & set(REPORT_SEEDS)
    for d in draws:
        assert d.scheme_start[HELD_OUT] == CUTOFF and d.schemes[HELD_OUT] > 0


def test_the_held_out_scheme_starts_at_the_cutoff_month(tmp_path):
    draw = draw_world(104, claims=8_000)
    simulate(tmp_path / "w", **draw.simulate_kwargs())
    truth = pd.read_parquet(tmp_path / "w" / "truth.parquet")
    xml1 = pd.read_parquet(tmp_path / "w" / "xml1.parquet")
    held = xml1[xml1["MA_LK"].isin(truth.loc[truth["scheme"] == HELD_OUT, "MA_LK"])]
    assert len(held) > 0
    months = held["NGAY_VAO"].astype(str).str[:6]
    assert (months >= CUTOFF.replace("-", "")).all(), np.unique(months)
