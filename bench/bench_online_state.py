"""Online features in process: the per-key state (features.online_state.OnlineState) against the
compiled DuckDB plan it replaces (features.online.OnlinePlan), same claims, same run.

    .venv/bin/python bench/bench_online_state.py [--claims 20000] [--months 6] [--singles 100]
        [--batch 1000] [--work DIR] [--out FILE] [--redis]

Simulates and ingests a world once (cached in --work), builds the profile snapshot as of the
first day of its last month, then builds both (remember=True, as the service does) and sends
the last month's claims in admission order: `--singles` requests of one claim, alternately to
the plan and to the state (p50 / p99 per claim; for the state also without building the
DataFrame, `feature_rows`; with --redis also to a state whose remembered claims live in a
throwaway redis-server), then one request of `--batch` claims to each (claims/s). Every answer
of a state is checked against the plan's (same rows, same values).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


def world(work: Path, claims: int, months: int) -> dict:
    from claimradar.settings import DEV_LINKAGE_KEY
    from contract.ingest import ingest, load_dataset
    from simulator import simulate

    ds = work / f"ds-{claims}-{months}"
    if not (ds / "claims.parquet").exists():
        simulate(work / f"sim-{claims}-{months}", claims, months=months, start="2025-01", seed=7)
        ingest(work / f"sim-{claims}-{months}", ds, linkage_key=DEV_LINKAGE_KEY)
    return load_dataset(ds)


def one_claim_batches(tables: dict, ids: list[str]) -> list[dict]:
    by = {t: dict(tuple(tables[t].groupby("claim_id"))) for t in ("drug_lines", "service_lines")}
    claims = tables["claims"].set_index("claim_id", drop=False)
    out = []
    for cid in ids:
        b = {"claims": claims.loc[[cid]].reset_index(drop=True)}
        for t in ("drug_lines", "service_lines"):
            b[t] = by[t].get(cid, tables[t].iloc[:0])
        out.append(b)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--claims", type=int, default=20_000)
    ap.add_argument("--months", type=int, default=6)
    ap.add_argument("--singles", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench-online")
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--redis",
        action="store_true",
        help="also a state on a throwaway redis-server (the shared online store)",
    )
    a = ap.parse_args()
    from features.online import OnlinePlan
    from features.online_state import OnlineState
    from features.pipeline import build_snapshot

    tables = world(a.work, a.claims, a.months)
    c = tables["claims"]
    last = c["admitted_at"].max()
    as_of = pd.Timestamp(year=last.year, month=last.month, day=1)
    snap = build_snapshot(tables, as_of)
    t = time.perf_counter()
    plan = OnlinePlan(snap, remember=True)
    plan_build = time.perf_counter() - t
    t = time.perf_counter()
    state = OnlineState(snap, remember=True)
    state_build = time.perf_counter() - t
    tracemalloc.start()  # what one state holds (Python allocations), measured on a second one
    held = OnlineState(snap)
    gc.collect()
    state_mb = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    del held
    server = shared = None
    if a.redis:
        sys.path.insert(0, str(ROOT / "tests"))
        from redis_proc import RedisServer

        from features.online_state.shared import RedisStore

        server = RedisServer()
        shared = OnlineState(snap, remember=True, store=RedisStore(server.url()))
    month = c[c["admitted_at"] >= as_of].sort_values(["admitted_at", "claim_id"])
    ids = list(month["claim_id"])
    singles = one_claim_batches(tables, ids[: a.singles])
    t_plan, t_state, t_rows, t_redis, mismatches = [], [], [], [], 0
    for b in singles:
        t = time.perf_counter()
        want = plan.features(b)
        t_plan.append(time.perf_counter() - t)
        t = time.perf_counter()
        rows = state.feature_rows(b)
        t_rows.append(time.perf_counter() - t)
        got = rows.frame()
        t_state.append(time.perf_counter() - t)
        frames = [got]
        if shared is not None:
            t = time.perf_counter()
            frames.append(shared.feature_rows(b).frame())
            t_redis.append(time.perf_counter() - t)
        for got in frames:
            try:
                pd.testing.assert_frame_equal(want, got, check_exact=False, rtol=1e-9, atol=1e-9)
            except AssertionError:
                mismatches += 1
    rest = ids[a.singles : a.singles + a.batch]
    keep = c["claim_id"].isin(rest)
    big = {"claims": c[keep]}
    for tname in ("drug_lines", "service_lines"):
        big[tname] = tables[tname][tables[tname]["claim_id"].isin(rest)]
    t = time.perf_counter()
    want = plan.features(big)
    b_plan = time.perf_counter() - t
    t = time.perf_counter()
    got = state.features(big)
    b_state = time.perf_counter() - t
    try:
        pd.testing.assert_frame_equal(want, got, check_exact=False, rtol=1e-9, atol=1e-9)
    except AssertionError:
        mismatches += 1
    res = {
        "world": {"claims": a.claims, "months": a.months, "history_claims": len(snap.history),
                  "as_of": str(as_of.date())},
        "build_s": {"plan": round(plan_build, 2), "state": round(state_build, 2)},
        "state_mb": round(state_mb, 1),
        "state_bytes_per_history_claim": round(state_mb * 1e6 / max(len(snap.history), 1)),
        "single_claim_ms": {
            "plan": {"p50": pct(t_plan, 50), "p99": pct(t_plan, 99)},
            "state": {"p50": pct(t_state, 50), "p99": pct(t_state, 99)},
            "state_rows_no_frame": {"p50": pct(t_rows, 50), "p99": pct(t_rows, 99)},
            "n": len(singles),
        },
        "ratio_p50_plan_over_state": pct(t_plan, 50) / pct(t_state, 50),
        "single_claim_ms_redis_store": (
            {"p50": pct(t_redis, 50), "p99": pct(t_redis, 99)} if t_redis else None
        ),
        "ratio_p50_plan_over_state_rows": pct(t_plan, 50) / pct(t_rows, 50),
        "batch": {"claims": len(rest), "plan_claims_per_s": len(rest) / b_plan,
                  "state_claims_per_s": len(rest) / b_state},
        "fallbacks": state.fallbacks,
        "mismatches": mismatches,
    }  # fmt: skip
    plan.close()
    state.close()
    if server is not None:
        shared.close()
        server.stop()
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
