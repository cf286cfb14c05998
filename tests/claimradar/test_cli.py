import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from factories import claim, dossier, drug, raw_envelope, service, write_tabular
from typer.testing import CliRunner

from claimradar import __version__
from claimradar.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_version_from_the_console_script():
    exe = Path(sys.executable).parent / "claimradar"
    assert exe.exists(), "the console script is installed beside the interpreter"
    out = subprocess.run([exe, "--version"], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == f"claimradar {__version__}"


@pytest.mark.parametrize("command", ["ingest", "export-xml", "simulate", "demo"])
def test_every_command_has_help(command):
    r = run(command, "--help")
    assert r.exit_code == 0, r.output
    assert "Usage" in r.output and "--help" in r.output


def test_ingest_prints_counts_and_summary(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.xml").write_bytes(raw_envelope([dossier("C1"), dossier("C2", GIOI_TINH=9)]))
    (src / "b.xml").write_bytes(b"<!DOCTYPE x [<!ENTITY a 'b'>]><GIAMDINHHS/>")
    r = run("ingest", src, "--out", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    last = r.output.strip().splitlines()[-1]
    assert re.search(r"read 2 claims.*wrote 1 claims.*rejected 5 record\(s\) and 1 file", last)
    assert str(tmp_path / "ds") in last
    assert "b.xml" in r.output and "DTD" in r.output
    assert (tmp_path / "ds" / "rejections.parquet").exists()


def test_ingest_missing_column_is_a_clear_error(tmp_path):
    src = tmp_path / "tab"
    src.mkdir()
    pd.DataFrame({"MA_LK": ["A"]}).to_csv(src / "xml1.csv", index=False)
    r = run("ingest", src, "--out", tmp_path / "ds")
    assert r.exit_code == 2
    assert "xml1.csv" in r.output and "MA_BENH_CHINH" in r.output
    assert "Traceback" not in r.output


def test_export_then_ingest_from_the_cli(tmp_path):
    write_tabular(
        tmp_path / "src",
        [claim("E1"), claim("E2", MA_CSKCB="01001")],
        [drug("E1")],
        [service("E2")],
    )
    assert run("ingest", tmp_path / "src", "--out", tmp_path / "ds").exit_code == 0
    r = run("export-xml", tmp_path / "ds", "--out", tmp_path / "xml")
    assert r.exit_code == 0 and "wrote 2 envelope file(s)" in r.output
    r = run("ingest", tmp_path / "xml", "--out", tmp_path / "ds2")
    assert "wrote 2 claims, 1 drug lines, 1 service lines" in r.output


def test_features_and_facilities_commands(sim_dataset, tmp_path):
    out = tmp_path / "features.parquet"
    r = run("features", sim_dataset, "--out", out, "--since", "2025-06-01")
    assert r.exit_code == 0, r.output
    f = pd.read_parquet(out)
    claims = pd.read_parquet(sim_dataset / "claims.parquet")
    assert len(f) == (claims["admitted_at"] >= "2025-06-01").sum() and "rule_count" in f.columns
    assert f"wrote features of {len(f):,} claims" in r.output
    assert run("features", sim_dataset, "--out", out, "--engine", "polars").exit_code == 2
    r = run("facilities", sim_dataset, "--month", "2025-06", "--out", tmp_path / "fw.csv")
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "fw.csv")
    want = {"MA_CSKCB", "cost_per_visit", "mix_effect", "price_effect", "volume_effect", "warning"}
    assert want <= set(table.columns)
    assert "facilities warned for 2025-06" in r.output
    table = [line for line in r.output.splitlines() if "fw.csv" not in line]  # not the path
    assert max(len(line) for line in table) <= 80, r.output
    assert run("facilities", sim_dataset, "--month", "2031-01").exit_code == 2
