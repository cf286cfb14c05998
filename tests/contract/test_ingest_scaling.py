"""Ingest is linear in the number of claims (issue 15): the per-claim cost at 4x the size stays
within 1.5x of the per-claim cost at 1x, both measured in this run.

The step that made 1M claims 10x slower per claim than 17k was checking each batch's claim keys
against every key written so far (Series.isin on a growing collection): the commit test holds
that cost to the batch's size (it fails at ~100x on that code). The end-to-end test guards the
whole tabular path at test sizes. CPU time of this process (not wall time), so other processes
on the machine do not move the ratio; the best of a few runs per size.
"""

from __future__ import annotations

import gc
import shutil
import time
from pathlib import Path

import pandas as pd
from factories import claim, drug, service

from contract.batch import validate_batch
from contract.ingest import Limits, ingest
from contract.validate import GROUP, RECORD, SOURCE
from contract.writer import IngestReport, _Run, commit

KEY = "scaling-test-key"
LIMIT = 1.5


def _tabular(folder: Path, n: int) -> Path:
    """n claims with one drug and two service lines each, as parquet."""
    folder.mkdir(parents=True)
    ids = [f"S{i:07d}" for i in range(n)]

    def tile(row: dict, keys: list[str], **col) -> pd.DataFrame:
        df = pd.DataFrame([row] * len(keys))
        df["MA_LK"] = keys
        for c, v in col.items():
            df[c] = v
        return df

    tile(claim("x"), ids, MA_BN=[f"BN{i}" for i in range(n)]).to_parquet(folder / "xml1.parquet")
    tile(drug("x"), ids).to_parquet(folder / "xml2.parquet")
    svc = tile(service("x"), ids + ids)
    svc.sort_values("MA_LK", kind="stable").to_parquet(folder / "xml3.parquet")
    return folder


def _cpu_seconds(src: Path, out: Path, limits: Limits, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        gc.collect()
        gc.disable()  # collections run at moments that depend on everything else alive
        t = time.process_time()
        report = ingest(src, out, limits=limits, linkage_key=KEY)
        best = min(best, time.process_time() - t)
        gc.enable()
        assert report.rejected_total == 0
    return best


def _best(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def test_tabular_ingest_per_claim_cost_is_flat_at_4x(tmp_path):
    n = 3_000
    small, big = _tabular(tmp_path / "small", n), _tabular(tmp_path / "big", 4 * n)
    limits = Limits(chunk_claims=1_000, workers=1)  # CPU of this process: no worker processes
    _cpu_seconds(small, tmp_path / "warm", limits, 1)  # imports, caches
    per_small = _cpu_seconds(small, tmp_path / "o1", limits, 3) / n
    per_big = _cpu_seconds(big, tmp_path / "o4", limits, 3) / (4 * n)
    ratio = per_big / per_small
    assert ratio <= LIMIT, f"per-claim cost at 4x the claims is {ratio:.2f}x (limit {LIMIT}x)"


def test_a_batch_commits_in_the_same_time_after_many_claims(tmp_path):
    """Checking a batch's claim keys against those already written costs the batch's size, not
    the number written so far."""
    batch = validate_batch(
        {
            "claims": _with_internal(
                pd.read_parquet(_tabular(tmp_path / "b", 2_000) / "xml1.parquet")
            )
        },
        Limits(),
        KEY,
    )
    keys = {written: {f"W{i}" for i in range(written)} for written in (1_000, 400_000)}
    cost = dict.fromkeys(keys, float("inf"))
    for i in range(7):  # a fresh run each time (the batch is new to it), the two sizes in turn
        for written in keys:  # (so a busy machine weighs on both alike)
            report = IngestReport(tmp_path / f"o{written}-{i}")
            report.out.mkdir()
            run = _Run(report.out, report, KEY, Limits())
            run.seen_claims.update(dict.fromkeys(keys[written]))
            gc.collect()
            gc.disable()  # a collection walks every live object: not the algorithm's cost
            t = time.process_time()
            commit(batch, run)
            cost[written] = min(cost[written], time.process_time() - t)
            gc.enable()
            run.close()
    ratio = cost[400_000] / cost[1_000]
    assert ratio <= LIMIT, f"a commit after 400k claims costs {ratio:.2f}x one after 1k"


def _with_internal(df: pd.DataFrame) -> pd.DataFrame:
    df[GROUP], df[SOURCE], df[RECORD] = df["MA_LK"], "xml1.parquet", range(len(df))
    return df
