"""The rule bench/quality_worlds.py chooses the queue's fixed weights by (configs/train.toml
[priority]): its order, on handmade results."""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import quality_worlds as qw


def _tab(rows):
    cols = ["name", "lost", "dropped", "held_mean", "worst", "gap", "mean"]
    return pd.DataFrame(rows, columns=cols)


def _order(rows) -> list[str]:
    return qw.rank(_tab(rows))["name"].tolist()


def test_losing_to_the_model_or_dropping_a_scheme_comes_before_anything_else():
    got = _order([
        ("loses", 1, 0, 0.9, 0.9, 0.2, 0.9),
        ("drops", 0, 1, 0.9, 0.9, 0.2, 0.9),
        ("clean", 0, 0, 0.6, 0.3, 0.01, 0.4),
    ])  # fmt: skip
    assert got == ["clean", "drops", "loses"]


def test_a_setting_that_gives_up_the_unlabelled_scheme_ranks_below_one_that_finds_it():
    # better money everywhere, but the held-out scheme's mean recall under 0.5
    got = _order([
        ("gives_up", 0, 1, qw.HELD_FLOOR - 0.01, 0.50, 0.05, 0.70),
        ("finds", 0, 1, qw.HELD_FLOOR, 0.40, 0.03, 0.60),
    ])  # fmt: skip
    assert got == ["finds", "gives_up"]


def test_worst_world_money_decides_beyond_the_tie_and_the_mean_within_it():
    t = qw.TIE
    got = _order([
        ("best_worst", 0, 0, 0.6, 0.45, 0.04, 0.60),
        ("tied_higher_mean", 0, 0, 0.6, 0.45 - t / 2, 0.04 - t / 2, 0.63),
        ("below_tie", 0, 0, 0.6, 0.45 - 2 * t, 0.04, 0.70),
    ])  # fmt: skip
    # within TIE on both the worst money and the gap, the mean decides
    assert got == ["tied_higher_mean", "best_worst", "below_tie"]


def test_a_gap_beyond_the_tie_outranks_the_mean():
    t = qw.TIE
    got = _order([
        ("wide_gap", 0, 0, 0.6, 0.45, 0.05, 0.60),
        ("narrow_gap", 0, 0, 0.6, 0.45, 0.05 - 2 * t, 0.65),
    ])  # fmt: skip
    assert got == ["wide_gap", "narrow_gap"]


def _world(n=1000, scheme_n=40):
    """Honest claims of small amounts; a scheme of `scheme_n` large claims the model's order holds
    in its top 5% (50 places), half of them with risk 0.9 (the model knows them), half 0.1 (held
    by size only)."""
    import numpy as np

    expected = np.linspace(1.0, 10.0, n)
    expected[:scheme_n] = 1000.0 + np.arange(scheme_n)
    risk = np.full(n, 0.05)
    risk[: scheme_n // 2] = 0.9
    risk[scheme_n // 2 : scheme_n] = 0.1
    y = np.zeros(n, dtype=int)
    y[:scheme_n] = 1
    scheme = pd.Series(["padded_stays"] * scheme_n + [""] * (n - scheme_n))
    return pd.DataFrame({"expected": expected, "risk": risk, "y": y, "scheme": scheme})


def test_kept_known_counts_only_the_claims_the_model_calls_abuse():
    import numpy as np

    part = _world()
    # the queue keeps the known half and pushes the size-only half below honest claims
    order = part["expected"].to_numpy().copy()
    order[20:40] = 0.0
    assert qw.kept_by_scheme(part, order)["padded_stays"] == 0.5
    assert qw.kept_known_by_scheme(part, order)["padded_stays"] == 1.0
    # pushing out a known claim is seen
    order[0] = 0.0
    assert np.isclose(qw.kept_known_by_scheme(part, order)["padded_stays"], 19 / 20)
    assert np.isclose(qw.kept_known(part, order), 19 / 20)
    # a scheme the model holds only by size has no known claims: nothing to keep
    part["risk"] = 0.1
    assert np.isnan(qw.kept_known_by_scheme(part, order)["padded_stays"])
    assert qw.kept_known(part, order) == 1.0
