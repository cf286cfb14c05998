"""Tabular ingest streams in bounded memory (issue 15): the input is read in record batches and
spilled by claim key into partitions, one partition in memory at a time. What is accepted and what
is rejected (with which field and error) must not depend on the batch size: a corrupted world gives
the same tables and the same rejection report at a tiny batch size (many spilled partitions) as at
the default (one batch set in memory)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from corrupt_world import corrupt_world
from factories import claim, drug, service, write_tabular

import contract.tabular as tabular
from contract.ingest import Limits, ingest, load_dataset

KEY = "streaming-test-key"


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory) -> Path:
    import simulator

    root = tmp_path_factory.mktemp("corrupt")
    simulator.simulate(root / "clean", 3_000, months=6, start="2025-01", seed=5)
    return corrupt_world(root / "clean", root / "bad")


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    # Batches are cut by claim-key hash, so rows come out grouped by batch: compared as sets of
    # rows (every column, every row, duplicates counted).
    return df.sort_values(list(df.columns), kind="stable").reset_index(drop=True)


def test_tiny_batches_give_the_default_output_and_rejection_report(
    corrupted, tmp_path, monkeypatch
):
    default = ingest(corrupted, tmp_path / "default", linkage_key=KEY)
    # 6 batches of about 500 claims spilled to disk, each table read in several pieces
    monkeypatch.setattr(tabular, "SPILL_BATCHES", 2)
    monkeypatch.setattr(tabular, "READ_ROWS", 1_000)
    tiny = ingest(corrupted, tmp_path / "tiny", limits=Limits(chunk_claims=300), linkage_key=KEY)
    a, b = load_dataset(tmp_path / "default"), load_dataset(tmp_path / "tiny")
    assert set(a) == set(b)
    for name in a:
        pd.testing.assert_frame_equal(_sorted(a[name]), _sorted(b[name]), obj=name)
    rej = a["rejections"]
    errors = set(rej["error"])
    assert any(e.startswith("duplicate claim key") for e in errors)
    assert "no claim summary (XML1) with this MA_LK" in errors
    assert {"negative quantity", "not a number", "missing required field"} <= errors
    assert any(e.startswith("unparseable date") for e in errors)
    assert default.rejected == tiny.rejected and default.written == tiny.written
    assert default.read == tiny.read and default.rejected_total > 0
    # the spill folder is removed
    assert not [p for p in (tmp_path / "tiny").iterdir() if p.name.startswith(".ingest-spill")]


def test_one_partition_in_memory_at_a_time(corrupted, monkeypatch):
    """Arrow memory held while batches are handed out stays a fraction of the whole input (the
    text columns of pandas frames live in Arrow's pool); reading whole tables held all of it."""
    limits = Limits(chunk_claims=100)
    monkeypatch.setattr(tabular, "SPILL_BATCHES", 2)  # 16 batches of about 200 claims
    monkeypatch.setattr(tabular, "READ_ROWS", 1_000)  # the tables read in several pieces
    pool = pa.default_memory_pool()
    base = pool.bytes_allocated()
    whole = [
        pd.read_parquet(corrupted / f"{s}.parquet") for s in ("xml1", "xml2", "xml3")
    ]  # the whole input as pandas frames, for scale
    full = pool.bytes_allocated() - base
    del whole
    base = pool.bytes_allocated()
    peak, claims = 0, 0
    for batch, n, _total in tabular.tabular_batches(corrupted, limits):
        peak = max(peak, pool.bytes_allocated() - base)
        claims += n
        del batch
    assert claims == 3_030
    assert peak < 0.35 * full, f"held {peak / full:.0%} of the input at once"


def test_a_table_as_a_folder_of_parquet_files_and_an_empty_table(tmp_path):
    """A table may be a folder of parquet files (read in file order) or hold no rows."""
    ids = [f"F{i:03d}" for i in range(30)]
    src = write_tabular(tmp_path / "src", [claim(i) for i in ids], [drug(ids[0])])
    services = pd.DataFrame([service(i) for i in ids] + [service("NONE")])
    (src / "xml3").mkdir()
    services.iloc[:20].to_parquet(src / "xml3" / "part-0.parquet", index=False)
    services.iloc[20:].to_parquet(src / "xml3" / "part-1.parquet", index=False)
    pd.DataFrame([drug(ids[0])]).iloc[:0].to_parquet(src / "xml2.parquet", index=False)
    r = ingest(src, tmp_path / "out", limits=Limits(chunk_claims=1), linkage_key=KEY)
    t = load_dataset(tmp_path / "out")
    assert r.read["claims"] == 30 and len(t["claims"]) == 30 and len(t["drug_lines"]) == 0
    assert len(t["service_lines"]) == 30 and r.rejected["service_lines"] == 1
    bad = t["rejections"]
    assert list(bad["record"]) == ["30"] and list(bad["source_file"]) == ["xml3"]


def test_spark_engine_gives_the_embedded_tables_and_rejection_report(
    spark, corrupted, tmp_path, monkeypatch
):
    """--engine spark: the partitions validated in Spark tasks, joined in partition order: the
    same tables and rejection report as the embedded engine, row for row."""
    from contract.spark_ingest import ingest_spark

    monkeypatch.setattr(tabular, "SPILL_BATCHES", 2)  # 3 partitions: 3 Spark tasks
    limits = Limits(chunk_claims=600)
    embedded = ingest(corrupted, tmp_path / "embedded", limits=limits, linkage_key=KEY)
    sprk = ingest_spark(spark, corrupted, tmp_path / "spark", limits=limits, linkage_key=KEY)
    a, b = load_dataset(tmp_path / "embedded"), load_dataset(tmp_path / "spark")
    assert set(a) == set(b) == {
        "claims", "drug_lines", "service_lines", "facilities", "labels", "rejections"
    }  # fmt: skip
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)
    assert len(a["rejections"]) > 100
    assert (embedded.read, embedded.written, embedded.rejected, embedded.files_read) == (
        sprk.read, sprk.written, sprk.rejected, sprk.files_read
    )  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "spark").iterdir()) == sorted(
        p.name for p in (tmp_path / "embedded").iterdir()
    )


def test_partition_of_a_key_is_pandas_hash_of_its_text():
    # Rows go to bucket hash(MA_LK) % k; _bucket hashes each distinct key once (Arrow) and must
    # give every row the bucket pandas' hash_array gives it, or outputs change order.
    keys = ["K1", "K2", "K1", "(missing MA_LK)", "Viêm", "ữ" * 40, "", " x ", "K2", "123", "K1"]
    keys += [f"LK{i:06d}" for i in range(500)]
    arr = pa.array(keys, pa.large_string())
    for k in (1, 7, 50, 1_000):
        want = (pd.util.hash_array(pd.Series(keys).to_numpy(dtype=object)) % k).astype("int64")
        assert (tabular._bucket(arr, k) == want).all()
    assert len(set(tabular._bucket(arr, 50).tolist())) > 40


def test_spill_codec_changes_the_disk_not_the_partitions(corrupted, tmp_path, monkeypatch):
    # Uncompressed by default (least CPU); lz4/zstd on request (less temporary disk).
    monkeypatch.setattr(tabular, "SPILL_BATCHES", 2)
    sizes, parts = {}, {}
    for codec in (None, "lz4", "zstd"):
        folder = tmp_path / str(codec)
        limits = Limits(chunk_claims=300, spill_compression=codec)
        spilled = tabular.spill_tabular(corrupted, limits, folder, keep=True)
        sizes[codec] = sum(p.stat().st_size for p in folder.iterdir())
        parts[codec] = [spilled.batch(q)[0] for q in range(spilled.parts)]
    assert sizes["lz4"] < 0.7 * sizes[None] and sizes["zstd"] < 0.7 * sizes[None]
    for codec in ("lz4", "zstd"):
        for got, want in zip(parts[codec], parts[None], strict=True):
            for name in want:
                pd.testing.assert_frame_equal(got[name], want[name])


def test_spill_writes_few_record_batches_however_many_pieces_are_read(
    corrupted, tmp_path, monkeypatch
):
    """The superlinear step of issue 15: each piece read was cut into one slice per partition and
    every slice written as its own record batch, so the batches (and the spill's fixed costs)
    grew as pieces x partitions. Held back and written together, a partition gets a few large
    record batches whatever the number of pieces; its rows stay in the order they were read."""
    monkeypatch.setattr(tabular, "SPILL_BATCHES", 2)
    monkeypatch.setattr(tabular, "READ_ROWS", 200)  # every table read in many pieces
    folder = tmp_path / "spill"
    spilled = tabular.spill_tabular(corrupted, Limits(chunk_claims=100), folder, keep=True)
    assert spilled.parts == 16
    for name, stem in (("drug_lines", "xml2"), ("service_lines", "xml3")):
        rows = pq.read_metadata(corrupted / f"{stem}.parquet").num_rows
        pieces = -(-rows // 200)
        assert pieces >= 20, (name, rows)
        for q in range(spilled.parts):
            path = folder / f"{name}-{q}.arrow"
            with pa.memory_map(str(path)) as mm:
                reader = pa.ipc.open_file(mm)
                batches, t = reader.num_record_batches, reader.read_all()
            # before: one batch per piece holding the partition's rows (~all of them)
            assert batches <= 1 + pieces // 4, (name, q, batches, pieces)
            # each partition's rows in file order (RECORD: the row's place in its table)
            record = t.column(tabular.RECORD).to_numpy()
            assert (record[1:] > record[:-1]).all()
    # the batches themselves are the same as before (whole claims, every row once)
    got = [spilled.batch(q)[0] for q in range(spilled.parts)]
    total = sum(len(b["service_lines"]) for b in got)
    assert total == pq.read_metadata(corrupted / "xml3.parquet").num_rows


@pytest.fixture
def validating_pids(tmp_path, monkeypatch):
    """The pids of the processes that validate batches, in calls: the file this writes, which
    forked workers append to as well."""
    import os
    import sys

    ingest_module = sys.modules["contract.ingest"]  # the package's `ingest` is the function
    pids = tmp_path / "pids"
    real = ingest_module.validate_batch

    def validate_and_say_where(*args, **kwargs):
        with open(pids, "a") as f:
            f.write(f"{os.getpid()}\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "validate_batch", validate_and_say_where)

    def calls() -> list[str]:
        seen = pids.read_text().split() if pids.exists() else []
        pids.unlink(missing_ok=True)
        return seen

    return calls


def test_partitions_validated_by_worker_processes_give_one_process_output_row_for_row(
    corrupted, tmp_path, monkeypatch, validating_pids
):
    """Tabular ingest with workers: the partitions are validated in worker processes and
    written here in partition order, so the tables and the rejection report are those of one
    process, row for row and in order (not only as sets), and the work really left the process."""
    import os

    monkeypatch.setattr(tabular, "SPILL_BATCHES", 2)
    monkeypatch.setattr(tabular, "READ_ROWS", 1_000)
    one = ingest(
        corrupted, tmp_path / "one", limits=Limits(chunk_claims=150, workers=1), linkage_key=KEY
    )
    assert set(validating_pids()) == {str(os.getpid())}
    two = ingest(
        corrupted, tmp_path / "two", limits=Limits(chunk_claims=150, workers=2), linkage_key=KEY
    )
    seen = validating_pids()
    assert len(seen) == 11 and str(os.getpid()) not in seen and len(set(seen)) == 2
    a, b = load_dataset(tmp_path / "one"), load_dataset(tmp_path / "two")
    assert set(a) == set(b)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)
    assert len(a["rejections"]) > 100
    assert (one.read, one.written, one.rejected) == (two.read, two.written, two.rejected)


def test_a_key_written_by_an_earlier_partition_is_decided_as_one_process_decides_it(
    tmp_path, monkeypatch, validating_pids
):
    """A worker commits its partition alone: it cannot know that an earlier partition wrote one
    of its claim keys. Partitions by key hash never share a key, but the writing process does not
    rely on it: a partition holding a key already written is validated again there, as one
    process does it. Here rows are spread over partitions by position, so the second copy of a
    key lands in another partition than the first."""
    import os

    monkeypatch.setattr(tabular, "SPILL_BATCHES", 1)
    monkeypatch.setattr(tabular, "_bucket", lambda groups, k: np.arange(len(groups)) % k)
    ids = [f"F{i:03d}" for i in range(40)]
    claims = [claim(i) for i in ids] + [claim("F003"), claim("F007")]
    src = write_tabular(tmp_path / "src", claims, [drug(i) for i in ids[:5]])
    out = {}
    for w in (1, 2):
        limits = Limits(chunk_claims=1, workers=w)
        r = ingest(src, tmp_path / f"w{w}", limits=limits, linkage_key=KEY)
        out[w] = (r, load_dataset(tmp_path / f"w{w}"), validating_pids())
    (r1, t1, _), (r2, t2, pids2) = out[1], out[2]
    assert pids2.count(str(os.getpid())) == 2  # the partitions of the second copies, again
    assert r1.written == r2.written and r1.rejected == r2.rejected
    assert r1.written["claims"] == 40 and r1.rejected["claims"] == 2
    for name in t1:
        pd.testing.assert_frame_equal(t1[name], t2[name], obj=name)
    dup = t2["rejections"].loc[lambda d: d["error"].str.startswith("duplicate claim key")]
    assert sorted(dup["value"]) == ["F003", "F007"]
