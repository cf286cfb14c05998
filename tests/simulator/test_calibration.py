"""The world matches the published figures within the stated tolerances."""

from __future__ import annotations

import pandas as pd

from simulator import calibration_report


def test_report_columns_and_every_figure_within_tolerance(sim_world):
    df = calibration_report(sim_world.path)
    assert list(df.columns) == ["figure", "published", "simulated", "tolerance", "ok"]
    assert len(df) == 6
    bad = df[df["ok"] != True]  # noqa: E712
    assert bad.empty, bad.to_string()
    pd.testing.assert_frame_equal(df, sim_world.result.calibration)


def test_costs_grow_faster_than_visits(sim_world):
    df = calibration_report(sim_world.path).set_index("figure")
    assert (
        df.loc["costs, year on year", "simulated"] > 2 * df.loc["visits, year on year", "simulated"]
    )


def test_short_world_reports_growth_as_unknown(tmp_path):
    from simulator import simulate

    simulate(tmp_path / "w", 3_000, months=6, seed=1)
    df = calibration_report(tmp_path / "w").set_index("figure")
    assert df.loc["visits, year on year", "ok"] is pd.NA
    assert df["simulated"].notna().sum() == 4
