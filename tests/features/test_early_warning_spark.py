"""The facility early warning on Spark (`claimradar facilities --engine spark`) equals the embedded
engine: on a handmade world with a facility whose cost jumps (so there is a warning to agree on)
and on a simulated, ingested world with drug and service lines."""

from __future__ import annotations

import pandas as pd
import pytest
from test_early_warning import handmade

from features.early_warning import facility_warnings, warnings_by_month
from features.early_warning_spark import facility_warnings_spark, warnings_by_month_spark


def _assert_same(embedded: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(spark.columns) == list(embedded.columns)
    pd.testing.assert_frame_equal(
        spark.reset_index(drop=True), embedded.reset_index(drop=True),
        check_exact=False, rtol=1e-9, atol=1e-6, check_dtype=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def jump_world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jump-world")
    for name, table in handmade(1).items():
        table.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def test_spark_warns_the_same_facilities_with_the_same_figures(spark, jump_world):
    months = ["2025-06", "2025-07", "2025-08"]
    embedded = warnings_by_month(jump_world, months)
    on_spark = warnings_by_month_spark(spark, jump_world, months)
    for month in months:
        _assert_same(embedded[month], on_spark[month])
    warned = on_spark["2025-07"]
    assert warned.loc[warned["warning"], "facility_id"].tolist() == ["49001"]
    assert not on_spark["2025-06"]["warning"].any()


def test_spark_equals_embedded_on_an_ingested_world(spark, feature_dataset):
    embedded = facility_warnings(feature_dataset, "2025-05")
    on_spark = facility_warnings_spark(spark, feature_dataset, "2025-05")
    assert len(on_spark) >= 5 and on_spark["price_effect"].ne(0).any()  # lines were read
    _assert_same(embedded, on_spark)


def test_a_bad_month_is_the_same_clear_error(spark, feature_dataset):
    with pytest.raises(ValueError, match="YYYY-MM"):
        facility_warnings_spark(spark, feature_dataset, "2025-13")
    with pytest.raises(ValueError, match="no claims admitted in 2031-01"):
        facility_warnings_spark(spark, feature_dataset, "2031-01")


def test_the_facilities_command_on_spark_writes_the_embedded_table(spark, jump_world, tmp_path):
    from typer.testing import CliRunner

    from claimradar.cli import app

    def run(*args):
        return CliRunner().invoke(app, [str(a) for a in args])

    base = ["facilities", jump_world, "--month", "2025-07", "--out"]
    r = run(*base, tmp_path / "spark.csv", "--engine", "spark")
    assert r.exit_code == 0, r.output
    assert "1 of 22 facilities warned for 2025-07" in r.output
    assert run(*base, tmp_path / "embedded.csv").exit_code == 0
    _assert_same(pd.read_csv(tmp_path / "embedded.csv"), pd.read_csv(tmp_path / "spark.csv"))
    for bad in (["--engine", "polars"], ["--engine", "spark", "--quarter", "2025-Q3"]):
        args = ["facilities", jump_world, *bad] if "--quarter" in bad else [*base[:-1], *bad]
        r = run(*args)
        assert r.exit_code == 2 and "--engine" in r.output, r.output


def test_spark_sends_the_driver_sums_not_claims(spark, feature_dataset):
    """The whole-period reading ends on the executors: the driver gets one row per facility,
    month and cell (and per facility, month, item and price), the embedded engine's sums."""
    from features import early_warning as ew
    from features.early_warning_spark import warning_sums

    sums, prices = warning_sums(spark, feature_dataset)
    tables = ew._tables(feature_dataset)
    cells = ew.claim_cells(tables)
    want = ew.cell_sums(cells).sort_values(ew.CELL_KEYS).reset_index(drop=True)
    assert len(sums) == len(want) < len(cells) / 3
    pd.testing.assert_frame_equal(
        sums[want.columns], want, check_exact=False, rtol=1e-9, check_dtype=False
    )
    lines = ew.price_sums(ew._line_prices(tables, cells))
    assert len(prices) == len(lines) and prices["w"].sum() == lines["w"].sum()


@pytest.mark.parametrize(
    "world",
    [dict(seed=5, jump=1.8, cells_move=("J",)), dict(seed=7, jump_month="2025-03", ramp=0.05)],
)
def test_spark_shift_money_is_the_embedded_and_reads_only_warned_claims(
    spark, tmp_path, monkeypatch, world
):
    """The scorer's facility-shift money on Spark (serving.batch_spark.facility_shift_frame) equals
    features.early_warning.shift_evidence (a jump, and a slow climb the drift test warns), and
    the only claims that reach the driver are those of the warned facility-months."""
    from features import early_warning_spark as ews
    from features.early_warning import shift_evidence
    from serving.batch_spark import facility_shift_frame

    tables = handmade(**world)
    for name, table in tables.items():
        table.to_parquet(tmp_path / f"{name}.parquet", index=False)
    embedded = shift_evidence(tmp_path)
    assert (embedded["facility_shift"] > 0).sum() > 50
    read = []
    to_pandas = ews._to_pandas
    monkeypatch.setattr(ews, "_to_pandas", lambda df: read.append(out := to_pandas(df)) or out)
    on_spark = ews.shift_evidence_spark(spark, tmp_path)
    pd.testing.assert_frame_equal(
        on_spark.reset_index(drop=True), embedded.reset_index(drop=True),
        check_exact=False, rtol=1e-9, atol=1e-6, check_dtype=False,
    )  # fmt: skip
    claims = [r for r in read if "claim_id" in r.columns]
    assert len(claims) == 1 and len(claims[0]) < len(tables["claims"]) / 5
    c = tables["claims"].set_index("claim_id").loc[claims[0]["claim_id"]]
    assert (c["facility_id"] == "49001").all()  # the warned hospital's claims, no one else's
    frame = facility_shift_frame(spark, tmp_path).toPandas()
    got = frame.set_index("claim_id")["facility_shift"].sort_index()
    want = embedded.set_index("claim_id")["facility_shift"].sort_index()
    pd.testing.assert_series_equal(got, want, check_exact=False, rtol=1e-9, check_dtype=False)
