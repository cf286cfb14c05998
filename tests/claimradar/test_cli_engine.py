"""`--engine` of `claimradar score`: a clear error for an unknown engine or an output the Spark
engine cannot write, before any model is loaded or Spark started. (The Spark scores themselves:
tests/scoring/test_score_spark.py.)"""

from __future__ import annotations

from typer.testing import CliRunner

from claimradar.cli import app


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_score_engine_errors_are_clear(tmp_path):
    r = run("score", tmp_path, "--out", tmp_path / "s.parquet", "--engine", "polars")
    assert r.exit_code == 2 and "--engine must be embedded or spark" in r.output, r.output
    for extra in (["--to-store"], []):
        out = tmp_path / ("s" if extra else "s.csv")
        r = run("score", tmp_path, "--out", out, "--engine", "spark", *extra)
        assert r.exit_code == 2 and "parquet folder" in r.output, r.output
