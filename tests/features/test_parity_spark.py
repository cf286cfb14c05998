"""One definition, two engines: the same features on Spark (local mode) and DuckDB, equal within
a float tolerance. Spark starts once per session (the `spark` fixture, tests/conftest.py); the data
is small."""

from __future__ import annotations

import pandas as pd
import pytest

from features.pipeline import build_features


def _before(tables: dict, day: str) -> tuple[dict, int]:
    """The tables' claims admitted before `day` with their lines; and how many claims."""
    c = tables["claims"]
    keep = c["admitted_at"] < day
    ids = set(c.loc[keep, "claim_id"])
    small = {**tables, "claims": c[keep]}
    for t in ("drug_lines", "service_lines"):
        small[t] = tables[t][tables[t]["claim_id"].isin(ids)]
    return small, int(keep.sum())


@pytest.mark.slow  # ~75 s on 2 cores, mostly Spark stage overhead
def test_spark_and_duckdb_give_the_same_features(spark, feature_tables):
    small, n = _before(feature_tables, "2025-04-01")  # three months: every profile kind
    duck = build_features(small, engine="duckdb")
    sprk = build_features(small, engine="spark")
    assert len(duck) == len(sprk) == n
    # timestamps are naive local time on both engines (no time-zone shift)
    pd.testing.assert_series_equal(duck["admitted_at"], sprk["admitted_at"])
    pd.testing.assert_frame_equal(duck, sprk, check_exact=False, rtol=1e-7, atol=1e-6)
    assert duck["rule_count"].sum() > 0 and duck["peer_n"].gt(0).any()


@pytest.mark.slow  # ~60 s: Spark stage overhead
def test_write_features_on_spark_writes_part_files_equal_to_duckdbs_file(
    spark, feature_tables, tmp_path
):
    """`claimradar features --engine spark` writes from the executors (a folder of part files),
    never collecting the frame to the driver, with the DuckDB file's rows, order and dtypes."""
    from features.pipeline import write_features

    small, n = _before(feature_tables, "2025-03-01")
    n_duck = write_features(small, tmp_path / "duck.parquet")
    n_spark = write_features(small, tmp_path / "spark", engine="spark")
    assert n_duck == n_spark == n
    assert (tmp_path / "spark").is_dir() and list((tmp_path / "spark").glob("*.parquet"))
    duck = pd.read_parquet(tmp_path / "duck.parquet")
    sprk = pd.read_parquet(tmp_path / "spark")
    assert list(sprk.columns) == list(duck.columns)
    assert dict(sprk.dtypes.astype(str)) == dict(duck.dtypes.astype(str))
    pd.testing.assert_frame_equal(duck, sprk, check_exact=False, rtol=1e-7, atol=1e-6)
