"""Scoring service latency and throughput: a real `claimradar serve` (BentoML) on loopback.

    python bench/bench_serve.py [--claims 60000] [--work DIR] [--singles 300] [--batches 5]
                                [--clients 20] [--seconds 60] [--workers 2] [--out FILE]
                                [--online-store memory|redis]

Builds (once, cached in --work) a simulated province, trains and promotes a model, starts the
service with --workers processes on a fresh case store, then measures over HTTP:
- single-claim requests, one after another: p50 / p99 latency (reasons included when the claim is
  in the review band, as the API always does);
- batches of 1,000 claims: claims/s;
- `--clients` threads (httpx, one connection each) sending one claim per request for `--seconds`:
  requests/s, p50 / p99, errors;
each against the peer measured in the same run on the same claims: bare LightGBM `predict` +
`pred_contrib` (TreeSHAP, for the claims in the review band) on the model's feature rows, one
row at a time, 1,000 at a time, and from as many threads as clients (the floor no service can
beat); and the service's own in-process stages (validation, features, model, reasons, case store)
so the gap is accounted for.

The claims sent are the world's last ones moved into the month the model's snapshot ends in
(the month the service scores: the snapshot holds the world up to its last day) under new MA_LK,
every date-time shifted by the same days: the requests the per-key state answers, as the claims
system would send new claims. (The world's own last claims lie in the snapshot's months before
it: the state would hand every request to the compiled plan, ~1 s a claim.)
`--online-store redis` starts a throwaway redis-server (tests/redis_proc.py) and runs the
service and the in-process stages on it (CLAIMRADAR_ONLINE_STORE, separate databases).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

STAGES = ("validation", "features", "model", "reasons", "store")


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q)) if xs else float("nan")


def moved_to_snapshot_month(pool: list[dict]) -> list[dict]:
    """The claims under new MA_LK (first character B), every date-time (yyyymmddHHMM) moved by
    the days that bring the earliest into the month the snapshot ends in (the day after the
    latest claim), the rest after it in order."""
    from datetime import datetime, timedelta

    def when(v: str) -> datetime:
        return datetime.strptime(v, "%Y%m%d%H%M")

    starts = [when(c["NGAY_VAO"]) for c in pool]
    end = max(starts) + timedelta(days=1)
    month_start = end.replace(day=1, hour=0, minute=0)
    shift = timedelta(days=max(0, (month_start.date() - min(starts).date()).days))

    def move(v):
        if isinstance(v, str) and len(v) == 12 and v.isdigit() and v.startswith("20"):
            return (when(v) + shift).strftime("%Y%m%d%H%M")
        return v

    def fields(d: dict) -> dict:
        return {k: "B" + v[1:] if k == "MA_LK" else move(v) for k, v in d.items()}

    next_month = (month_start + timedelta(days=32)).replace(day=1)
    past = sum(s + shift >= next_month for s in starts)
    if past:  # the online state answers the snapshot's month; later claims take the compiled plan
        print(
            f"warning: {past:,} of {len(pool):,} claims fall past the snapshot month once moved: "
            "they take the compiled plan (~1 s a claim) and swamp the figures; send fewer "
            "(--batches, --singles)",
            file=sys.stderr,
        )
    out = []
    for c in pool:
        m = fields({k: v for k, v in c.items() if k not in ("xml2", "xml3")})
        m["xml2"] = [fields(x) for x in c.get("xml2", [])]
        m["xml3"] = [fields(x) for x in c.get("xml3", [])]
        out.append(m)
    return out


def prepare(work: Path, claims: int) -> dict[str, str]:
    import simulator
    from claimradar.settings import DEV_LINKAGE_KEY
    from contract.ingest import ingest
    from scoring import registry
    from training.train import train

    env = {
        "CLAIMRADAR_HOME": str(work / "home"),
        "CLAIMRADAR_MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "CLAIMRADAR_MLFLOW_ARTIFACT_ROOT": str(work / "artifacts"),
        "CLAIMRADAR_DATABASE_URL": f"sqlite:///{work / 'home' / 'cases.db'}",
    }
    if not (work / "ready").exists():
        t = time.perf_counter()
        simulator.simulate(work / "world", claims, months=13, start="2025-01", seed=7)
        ingest(work / "world", work / "dataset", linkage_key=DEV_LINKAGE_KEY)
        result = train(
            work / "dataset",
            models_dir=work / "models",
            tracking_uri=env["CLAIMRADAR_MLFLOW_TRACKING_URI"],
            artifact_root=work / "artifacts",
        )
        client = registry.connect(env["CLAIMRADAR_MLFLOW_TRACKING_URI"], work / "artifacts")
        client.set_registered_model_alias(registry.MODEL_NAME, "champion", str(result.version))
        (work / "ready").write_text(str(result.version))
        print(
            f"prepared {claims:,} claims, model v{result.version} "
            f"in {time.perf_counter() - t:.0f} s"
        )
    return env


def concurrent(
    send, items: list, clients: int, seconds: float
) -> tuple[list[float], int, int, float]:
    """`clients` threads call send(item) in a loop for `seconds` (items taken round-robin).
    Returns (latencies of the calls that succeeded, calls, errors, elapsed seconds)."""
    lat: list[float] = []
    counts = {"calls": 0, "errors": 0}
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    start_gate = threading.Barrier(clients + 1)

    def run(k: int) -> None:
        mine, calls, errors = [], 0, 0
        i = k
        ctx = send.session() if hasattr(send, "session") else None
        start_gate.wait()
        while time.perf_counter() < stop:
            item = items[i % len(items)]
            i += clients
            t = time.perf_counter()
            try:
                ok = send(item, ctx)
            except Exception:
                ok = False
            calls += 1
            if ok:
                mine.append(time.perf_counter() - t)
            else:
                errors += 1
        if ctx is not None:
            ctx.close()
        with lock:
            lat.extend(mine)
            counts["calls"] += calls
            counts["errors"] += errors

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for th in threads:
        th.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    return lat, counts["calls"], counts["errors"], time.perf_counter() - t0


def over_http(svc, singles, batch_pool, args) -> dict:
    """The three HTTP measurements on the running service."""
    with svc.client() as c:
        for claim in singles[:20]:  # warm-up
            c.post("/score", json={"claims": [claim]}).raise_for_status()
        lat, explained = [], 0
        for claim in singles:
            t = time.perf_counter()
            r = c.post("/score", json={"claims": [claim]})
            lat.append(time.perf_counter() - t)
            r.raise_for_status()
            explained += bool(r.json()["scored"][0]["reasons"])
        bt, n_scored = [], 0
        for i in range(args.batches):
            chunk = batch_pool[i * 1000 : (i + 1) * 1000]
            t = time.perf_counter()
            r = c.post("/score", json={"claims": chunk})
            bt.append(time.perf_counter() - t)
            r.raise_for_status()
            n_scored += len(r.json()["scored"])

    class Send:
        def session(self):
            return svc.client(timeout=30)

        def __call__(self, claim, client) -> bool:
            r = client.post("/score", json={"claims": [claim]})
            return r.status_code == 200 and len(r.json()["scored"]) == 1

    conc = []
    if args.seconds > 0:
        conc = concurrent(Send(), singles + batch_pool, args.clients, args.seconds)
    return {"lat": lat, "explained": explained, "bt": bt, "n_scored": n_scored, "conc": conc}


def in_process(env, work: Path, singles, batch_pool, args) -> dict:
    """The service's stages in this process (the same ScoringState, a case store of its own) and
    the bare model on the same feature rows."""
    from claimradar.settings import DEV_LINKAGE_KEY
    from serving.online import ScoringState
    from serving.store import Store

    store = Store(f"sqlite:///{tempfile.mkdtemp(prefix='bench-store-')}/cases.db")
    state = ScoringState(env["CLAIMRADAR_MLFLOW_TRACKING_URI"], work / "artifacts",
                         DEV_LINKAGE_KEY, store=store,
                         online_store=args.in_process_store)  # fmt: skip
    served = state.load()
    booster = served.bundle.risk
    timed = hasattr(state, "stage_times")  # the service's own stage clock (issue 14)
    if timed:
        state.stage_times = {}
    seen: list = []  # the feature frames the service computed, for the bare model
    rowwise = hasattr(served.plan, "feature_rows")  # the service reads rows, no frame
    name = "feature_rows" if rowwise else "features"
    featurize = getattr(served.plan, name)
    setattr(served.plan, name, lambda tables: seen.append(featurize(tables)) or seen[-1])

    def as_frame(got):
        return got.frame() if rowwise else got

    def stages(claims) -> tuple[dict[str, float], object]:
        """Seconds per stage for one request, and the feature frame of its claims."""
        if timed:
            state.stage_times.clear()
            cpu, t = time.process_time(), time.perf_counter()
            state.score_records(claims, actor="bench")
            # the whole request (JSON claims to recorded cases), as CPU time too (this process:
            # the case writer's thread included): on a machine shared with other work the CPU
            # seconds move less than the wall clock
            took = {"request": time.perf_counter() - t, "request_cpu": time.process_time() - cpu}
            frame = as_frame(seen.pop())  # after the clock: the bare model's input
            return {**{k: sum(state.stage_times.get(k, [0.0])) for k in STAGES}, **took}, frame
        # the service before issue 14: the same three calls as ScoringState._score
        from contract.ingest import Limits, validate_batch
        from contract.validate import INTERNAL
        from scoring.scorer import score
        from serving.casefile import fill_store
        from serving.online import _raw_tables

        t0 = time.perf_counter()
        res = validate_batch(_raw_tables(claims), Limits(workers=1), DEV_LINKAGE_KEY, None)
        good = {k: v.drop(columns=[c for c in INTERNAL if c in v.columns])
                for k, v in res.good.items()}  # fmt: skip
        t1 = time.perf_counter()
        frame = served.plan.features(good)
        seen.clear()
        t2 = time.perf_counter()
        out = score(served.bundle, frame, model_version=served.version)
        t3 = time.perf_counter()
        fill_store(store, out, good, frame, "bench", facility_months=False)
        t4 = time.perf_counter()
        return {"validation": t1 - t0, "features": t2 - t1, "model": t3 - t2, "reasons": 0.0,
                "store": t4 - t3}, frame  # fmt: skip

    frames, single_stage = [], []
    for claim in singles:
        st, frame = stages([claim])
        frames.append(frame)
        single_stage.append(st)
    bare = []
    rows = []
    for frame in frames:
        x = np.ascontiguousarray(served.bundle.matrix(frame))
        rows.append(x)
        t = time.perf_counter()
        booster.predict(x, num_threads=1)
        booster.predict(x, pred_contrib=True, num_threads=1)
        bare.append(time.perf_counter() - t)
    batch_stage, bare_batch = [], []
    for i in range(args.batches):
        st, frame = stages(batch_pool[i * 1000 : (i + 1) * 1000])
        batch_stage.append(st)
        x = served.bundle.matrix(frame)
        t = time.perf_counter()
        p = booster.predict(x)
        # the review band is the top of the order; the bare peer explains the same share
        top = np.argsort(-p)[: max(1, int(0.1 * len(p)))]
        booster.predict(x[top], pred_contrib=True)
        bare_batch.append(time.perf_counter() - t)

    def bare_call(x, _ctx) -> bool:
        booster.predict(x, num_threads=1)
        booster.predict(x, pred_contrib=True, num_threads=1)
        return True

    bare_conc = concurrent(bare_call, rows, args.clients, min(args.seconds, 10)) if rows else []
    writer = getattr(state, "writer", None)
    if writer is not None:
        writer.close()
    served.plan.close()
    return {"single_stage": single_stage, "bare": bare, "batch_stage": batch_stage,
            "bare_batch": bare_batch, "bare_conc": bare_conc,
            "history": len(served.snapshot.history)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--claims", type=int, default=60_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/claimradar-bench-serve"))
    ap.add_argument("--singles", type=int, default=300)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0, help="concurrency phase (0: skip)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    ap.add_argument("--online-store", choices=("memory", "redis"), default="memory")
    args = ap.parse_args()
    from claims_json import claims_json

    from serving import process

    env = prepare(args.work, args.claims)
    # a fresh case store per run: a run that found the last run's claims recorded would time
    # writes that change nothing (the same content scored by the same model is a no-op)
    fresh = tempfile.mkdtemp(prefix="bench-cases-", dir=args.work)
    env = {**env, "CLAIMRADAR_DATABASE_URL": f"sqlite:///{fresh}/cases.db"}
    # the claims of the last simulated month, as the claims system would send them
    pool = claims_json(args.work / "world", 1000 * args.batches + args.singles)
    pool = moved_to_snapshot_month(pool)
    singles, batch_pool = pool[: args.singles], pool[args.singles :]
    redis = None
    args.in_process_store = "memory"
    if args.online_store == "redis":
        from redis_proc import RedisServer

        redis = RedisServer()
        env = {**env, "CLAIMRADAR_ONLINE_STORE": redis.url(0)}
        args.in_process_store = redis.url(1)  # its own remembered claims
    try:
        svc = process.start(env, args.work / "service.log", key_name=f"bench-{time.time_ns()}",
                            workers=args.workers, demo=True)  # fmt: skip
        try:
            http = over_http(svc, singles, batch_pool, args)
        finally:
            svc.stop()
        local = in_process(env, args.work, singles, batch_pool, args)
    finally:
        if redis is not None:
            redis.stop()

    lat, bt, bare = http["lat"], http["bt"], local["bare"]
    per_claim_http = http["n_scored"] / sum(bt) if bt else float("nan")
    per_claim_bare = 1000 * len(bt) / sum(local["bare_batch"]) if bt else float("nan")
    res = {
        "online_store": args.online_store,
        "workers": args.workers,
        "history_claims": local["history"],
        "single_p50_ms": pct(lat, 50),
        "single_p99_ms": pct(lat, 99),
        "single_explained": http["explained"],
        "singles": len(lat),
        "bare_single_p50_ms": pct(bare, 50),
        "bare_single_p99_ms": pct(bare, 99),
        "single_overhead_p50": pct(lat, 50) / pct(bare, 50),
        "stage_single_ms": {
            k: 1000 * statistics.median(s[k] for s in local["single_stage"]) for k in STAGES
        },
        "batch_claims_per_s": per_claim_http,
        "bare_batch_claims_per_s": per_claim_bare,
        "batch_overhead": per_claim_bare / per_claim_http,
        "stage_batch_ms": {
            k: 1000 * statistics.median(s.get(k, float("nan")) for s in local["batch_stage"])
            for k in (*STAGES, "request", "request_cpu")
        }
        if local["batch_stage"]
        else {},
    }
    if http["conc"]:
        clat, calls, errors, took = http["conc"]
        blat, bcalls, _, btook = local["bare_conc"]
        res.update(
            {
                "concurrent_clients": args.clients,
                "concurrent_seconds": round(took, 1),
                "concurrent_requests_per_s": len(clat) / took,
                "concurrent_p50_ms": pct(clat, 50),
                "concurrent_p99_ms": pct(clat, 99),
                "concurrent_errors": errors,
                "concurrent_calls": calls,
                "bare_concurrent_per_s": bcalls / btook,
                "bare_concurrent_p99_ms": pct(blat, 99),
            }
        )
    print(json.dumps(res, indent=1))
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))
    print(
        f"single claim over HTTP: p50 {res['single_p50_ms']:.1f} ms, p99 {res['single_p99_ms']:.1f}"
        f" ms ({http['explained']}/{len(singles)} with reasons); bare LightGBM predict+pred_contrib"
        f" p50 {res['bare_single_p50_ms']:.2f} ms -> {res['single_overhead_p50']:.0f}x\n"
        f"batches of 1,000: {per_claim_http:,.0f} claims/s over HTTP; bare LightGBM "
        f"{per_claim_bare:,.0f} claims/s -> {res['batch_overhead']:.0f}x"
    )
    if http["conc"]:
        print(
            f"{args.clients} clients x {res['concurrent_seconds']} s on {args.workers} workers: "
            f"{res['concurrent_requests_per_s']:.1f} requests/s, p50 "
            f"{res['concurrent_p50_ms']:.1f} ms, p99 {res['concurrent_p99_ms']:.1f} ms, "
            f"{res['concurrent_errors']} errors; bare LightGBM from {args.clients} threads "
            f"{res['bare_concurrent_per_s']:,.0f} calls/s"
        )


if __name__ == "__main__":
    main()
