"""The spill of a tabular ingest (contract.tabular): it holds personal data in clear, so it lives in
a private temporary folder outside the dataset, holds only the columns the contract reads, and is
removed when the ingest ends, also on SIGTERM; a Spark task that is run again finds its partition;
a folder of parquet files whose column types differ is a clear ContractError."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from factories import claim, dossier, drug, raw_envelope, service, write_tabular

import contract.tabular as tabular
from contract.ingest import Limits, ingest, load_dataset
from contract.validate import ContractError

KEY = "spill-test-key"
SECRET_NOTE = "ghi chu rieng 0912345678"  # a column the contract does not read


def _world(root: Path, n: int = 40) -> Path:
    ids = [f"P{i:03d}" for i in range(n)]
    return write_tabular(
        root,
        [claim(i, GHI_CHU_RIENG=SECRET_NOTE) for i in ids],
        [drug(i) for i in ids],
        [service(i) for i in ids],
    )


@pytest.mark.parametrize("path", ["spill", "ordered"])
def test_the_spill_is_private_outside_the_dataset_and_holds_only_contract_columns(
    tmp_path, monkeypatch, path
):
    """Both ways a large input is cut into partitions write them to the private folder: the spill
    by key hash, and an input in claim order read partition by partition (contract.ordered_input;
    this world is in claim order)."""
    from contract import ordered_input

    src = _world(tmp_path / "src")
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))  # the system temporary folder
    monkeypatch.setattr(tabular, "SPILL_BATCHES", 2)  # 4 partitions spilled to disk
    seen: list[tuple[Path, int, set[str]]] = []

    def look(folder: Path) -> None:
        columns: set[str] = set()
        for f in sorted(folder.glob("*.arrow")):
            with pa.memory_map(str(f)) as mm:
                columns |= set(pa.ipc.open_file(mm).schema.names)
        seen.append((folder, stat.S_IMODE(folder.stat().st_mode), columns))

    if path == "spill":
        real = tabular.spill_tabular
        monkeypatch.setattr(sys.modules["contract.ingest"], "_layout_apart", lambda *a: None)

        def spy(src, limits, folder, *a, **k):
            spilled = real(src, limits, folder, *a, **k)
            look(folder)
            return spilled

        monkeypatch.setattr(tabular, "spill_tabular", spy)
        monkeypatch.setattr(sys.modules["contract.ingest"], "spill_tabular", spy)  # with workers
    else:
        fill = ordered_input.OrderedInput.fill

        def spy_fill(self, q):
            fill(self, q)
            if q == 0:
                look(self.spilled.folder)

        monkeypatch.setattr(ordered_input.OrderedInput, "fill", spy_fill)
    out = tmp_path / "out"
    r = ingest(src, out, limits=Limits(chunk_claims=5), linkage_key=KEY)
    assert r.written["claims"] == 40
    [(folder, mode, columns)] = seen
    assert out.resolve() not in folder.resolve().parents, folder  # never inside the dataset
    assert folder.resolve().is_relative_to(systmp.resolve())
    assert mode == 0o700
    assert "HO_TEN" in columns and "GHI_CHU_RIENG" not in columns
    assert not folder.exists() and not list(systmp.iterdir())  # removed
    assert sorted(p.name for p in out.iterdir()) == [
        "claims.parquet", "drug_lines.parquet", "rejections.parquet", "service_lines.parquet"
    ]  # fmt: skip
    assert not any(SECRET_NOTE.encode() in p.read_bytes() for p in out.iterdir())


_SLOW_CLI = """
import os, sys, time
import contract.ingest
ing = sys.modules["contract.ingest"]  # (contract.ingest the name is also the function)
target = os.environ.get("SLOW_TARGET", "validate_batch")  # _files_job: XML envelopes
real = getattr(ing, target)
def slow(*a, **k):  # (run by the workers: one write each, whole lines in the pipe)
    sys.stdout.write("validating\\n"); sys.stdout.flush()
    time.sleep(float(os.environ.get("SLOW_SECONDS", "0.3")))
    return real(*a, **k)
setattr(ing, target, slow)
ing.JOB_BYTES = 1  # XML: a job per envelope file
from claimradar.cli import app
app(["ingest", sys.argv[1], "--out", sys.argv[2]])
"""


def _slow_cli_validating(
    tmp_path: Path, systmp: Path, seconds: float, xml: bool = False
) -> subprocess.Popen:
    """`claimradar ingest` of 200 claims in 8 partitions (XML: 8 envelope files), each validation
    SECONDS long, started and seen validating (a worker wrote its line); the spill under SYSTMP."""
    src = _world(tmp_path / "src", n=200) if not xml else _envelopes(tmp_path / "src", 8)
    env = {
        **os.environ, "TMPDIR": str(systmp), "CLAIMRADAR_INGEST_CHUNK_CLAIMS": "1",
        "SLOW_SECONDS": str(seconds), "SLOW_TARGET": "_files_job" if xml else "validate_batch",
    }  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_CLI, str(src), str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    line = proc.stdout.readline().strip()
    if line != "validating":
        proc.kill()
        raise AssertionError(f"{line!r}: {proc.communicate()[1]}")
    return proc


@pytest.mark.parametrize("seconds", [0.3, 120.0])
def test_sigterm_during_cli_ingest_leaves_no_spill(tmp_path, seconds):
    """SIGTERM while workers validate partitions: the command exits at once (a worker in the
    middle of a partition taking two minutes is stopped, not waited for) and the spill of
    personal data is gone."""
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    proc = _slow_cli_validating(tmp_path, systmp, seconds)
    try:
        # spilled (to the private folder) while the batches are validated
        assert list(systmp.rglob("*.arrow")) + list((tmp_path / "out").rglob("*.arrow"))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    assert not list(systmp.iterdir())
    assert not list((tmp_path / "out").rglob("*.arrow"))


def _envelopes(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"env{i}.xml").write_bytes(raw_envelope([dossier(f"X{i:03d}")]))
    return folder


def test_sigterm_during_cli_xml_ingest_stops_its_workers_at_once(tmp_path):
    """The XML workers too are stopped on SIGTERM, not waited for (a job of 48 MB of envelopes
    takes ~10 s; here two minutes)."""
    proc = _slow_cli_validating(tmp_path, tmp_path, 120.0, xml=True)
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)  # fails before: the workers' jobs were waited for
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM


def test_workers_end_when_the_cli_is_killed(tmp_path):
    """SIGKILL (the OOM killer) cannot be caught: the workers must not outlive their parent,
    waiting for ever on the task queue (they did)."""
    import psutil

    proc = _slow_cli_validating(tmp_path, tmp_path, 120.0)
    try:
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert len(workers) == 2
        proc.kill()
        proc.wait(timeout=10)
        _gone, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, f"workers outlived the killed ingest: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for w in locals().get("workers", []):  # whatever happened, none is left behind
            with contextlib.suppress(psutil.Error):
                w.kill()


class _TwiceContext:
    """A driver that runs every task twice (as Spark does on a retried or speculative attempt)."""

    def parallelize(self, items, _n):
        self.items = list(items)
        return self

    def map(self, f):
        self.f = f
        return self

    def collect(self):
        first = [self.f(q) for q in self.items]
        again = [self.f(q) for q in self.items]
        assert first == again
        return again


class _TwiceSpark:
    sparkContext = _TwiceContext()


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns), kind="stable").reset_index(drop=True)


def test_a_spark_task_run_again_takes_its_partition_again(tmp_path, monkeypatch):
    from contract.spark_ingest import ingest_spark

    src = _world(tmp_path / "src")
    monkeypatch.setattr(tabular, "SPILL_BATCHES", 2)  # 4 partitions
    limits = Limits(chunk_claims=5)
    r = ingest_spark(_TwiceSpark(), src, tmp_path / "spark", limits=limits, linkage_key=KEY)
    ingest(src, tmp_path / "embedded", limits=limits, linkage_key=KEY)
    assert r.written["claims"] == 40
    a, b = load_dataset(tmp_path / "embedded"), load_dataset(tmp_path / "spark")
    for name in ("claims", "drug_lines", "service_lines"):  # (embedded: in the file's order)
        pd.testing.assert_frame_equal(_sorted(a[name]), _sorted(b[name]), obj=name)
    # the embedded engine still frees each partition's file once read
    spilled = tabular.spill_tabular(src, limits, tmp_path / "spill")
    spilled.batch(0)
    assert not (tmp_path / "spill" / "claims-0.arrow").exists()


def test_a_spill_error_is_reported_not_a_later_one_of_closing(tmp_path, monkeypatch):
    src = _world(tmp_path / "src")
    monkeypatch.setattr(tabular, "SPILL_BATCHES", 1)  # 8 partitions
    real = tabular._Spill.add
    calls = []

    def failing(self, part, t):
        calls.append(part)
        if len(calls) == 3:
            raise OSError(24, "Too many open files (the original error)")
        real(self, part, t)

    monkeypatch.setattr(tabular._Spill, "add", failing)
    spill = tmp_path / "spill"
    with pytest.raises(OSError, match="the original error"):
        tabular.spill_tabular(src, Limits(chunk_claims=5), spill)
    # every writer was closed: the files can be removed (and were finished, not left open)
    for f in spill.glob("*.arrow"):
        with pa.memory_map(str(f)) as mm:
            assert pa.ipc.open_file(mm).num_record_batches >= 1


def test_parquet_files_of_one_table_with_differing_column_types(tmp_path):
    ids = [f"F{i:03d}" for i in range(10)]
    src = write_tabular(tmp_path / "src", [claim(i) for i in ids])
    (src / "xml3").mkdir()
    a = pd.DataFrame([service(i) for i in ids[:5]])
    b = pd.DataFrame([service(i) for i in ids[5:]])
    b["STT"] = b["STT"].astype(str)  # text in one file ("1" reads as 1; "1.5" cannot)
    b.loc[0, "STT"] = "1.5"
    a.to_parquet(src / "xml3" / "part-0.parquet", index=False)
    b.to_parquet(src / "xml3" / "part-1.parquet", index=False)
    with pytest.raises(
        ContractError, match=r"xml3/part-1.parquet: column STT is large_string there but int64"
    ):
        ingest(src, tmp_path / "out", linkage_key=KEY)
