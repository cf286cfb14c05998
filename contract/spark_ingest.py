"""`claimradar ingest --engine spark`: tabular input validated in Spark tasks, one task per
partition of whole claims.

The driver streams the input tables once and spills their rows by claim key into partitions
(contract.tabular.spill_tabular: every row of a MA_LK in one partition, file order within it).
Each Spark task reads its partition, runs the same checks as the embedded engine (the Arrow field
checks of contract.fast_check and the cross-claim checks of contract.batch: duplicate keys, lines
without their claim) and writes its part of every table and of the rejection report; the driver
joins the parts in partition order, so the tables and the rejection report are the embedded
engine's, row for row. The cross-claim checks are exact without a shuffle because a claim key
never spans two partitions. The work folder (the spill, which holds personal data in clear, and
the tasks' parts) is a private temporary folder outside OUT, under ``spill_dir`` (default the
system temporary folder); it and OUT must be visible to the executors (one machine in local mode;
on a cluster pass a ``spill_dir`` on a shared filesystem).

This module sits in contract (the lowest layer) and never imports pyspark or features: the
caller passes a running SparkSession (claimradar.settings.spark_session starts one).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from contract.batch import validate_batch
from contract.ingest import Limits, Progress, batch_memory_pool, ingest_side_tables
from contract.tabular import Spilled, is_tabular, spill_tabular
from contract.validate import ContractError
from contract.writer import IngestReport, _Run, commit

TABLES = ("claims", "drug_lines", "service_lines", "rejections")


def _task(spilled: Spilled, q: int, parts_dir: str, limits: Limits, key: str) -> dict:
    """Validate partition q and write its part of every table (runs in a Spark task)."""
    out = Path(parts_dir) / f"part-{q:05d}"
    out.mkdir(parents=True, exist_ok=True)
    batch_memory_pool()  # a Python worker of Spark runs task after task: as ingest's process
    run = _Run(out, IngestReport(out), key, limits)
    try:
        batch, _n, _total = spilled.batch(q)
        commit(validate_batch(batch, limits, key), run)
    finally:
        run.close()
    rep = run.report
    return {"read": dict(rep.read), "rejected": dict(rep.rejected), "written": dict(rep.written)}


def ingest_spark(
    spark,
    src: Path,
    out: Path,
    *,
    limits: Limits | None = None,
    linkage_key: str,
    progress: Progress | None = None,
    spill_dir: Path | None = None,
) -> IngestReport:
    """contract.ingest.ingest for a tabular folder, the partitions validated by Spark tasks."""
    src, out = Path(src), Path(out)
    if not src.exists():
        raise FileNotFoundError(f"{src} does not exist")
    if not is_tabular(src):
        raise ContractError(f"{src}: --engine spark reads tabular input (xml1/xml2/xml3 tables)")
    if not linkage_key:
        raise ValueError("ingest needs a linkage key")
    limits = limits or Limits()
    out.mkdir(parents=True, exist_ok=True)
    report = IngestReport(out)
    work = Path(tempfile.mkdtemp(prefix="claimradar-ingest-spark-", dir=spill_dir))  # 0700
    try:
        # keep: a retried task takes its partition again (the work folder goes in the finally)
        spilled = spill_tabular(src, limits, work / "spill", keep=True)
        parts_dir = str(work / "parts")
        sc = spark.sparkContext
        results = (
            sc.parallelize(range(spilled.parts), spilled.parts)
            .map(lambda q: _task(spilled, q, parts_dir, limits, linkage_key))
            .collect()
        )
        for r in results:
            report.read.update(Counter(r["read"]))
            report.rejected.update(Counter(r["rejected"]))
            report.written.update(Counter(r["written"]))
        if progress:
            progress(spilled.n_claims, spilled.n_claims)
        side = work / "side"  # facilities, labels (their rejections go after the claims')
        side.mkdir()
        run = _Run(side, report, linkage_key, limits)
        try:
            ingest_side_tables(src, run, limits)
        finally:
            run.close()
        _join_parts(Path(parts_dir), out, spilled.parts, side / "rejections.parquet")
        for f in side.iterdir():
            if f.name not in {f"{t}.parquet" for t in TABLES}:
                shutil.move(f, out / f.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _join_parts(parts_dir: Path, out: Path, parts: int, side_rejections: Path) -> None:
    """Each table's parts, in partition order, into one parquet file (row groups streamed)."""
    for name in TABLES:
        files = [parts_dir / f"part-{q:05d}" / f"{name}.parquet" for q in range(parts)]
        if name == "rejections":
            files.append(side_rejections)
        schema = pq.ParquetFile(files[0]).schema_arrow
        with pq.ParquetWriter(out / f"{name}.parquet", schema, compression="zstd") as w:
            for f in files:
                pf = pq.ParquetFile(f)
                for i in range(pf.num_row_groups):
                    w.write_table(pf.read_row_group(i))
