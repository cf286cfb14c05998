"""Scoring service latency and throughput: a real `claimradar serve` (BentoML) on loopback.

    python bench/bench_serve.py [--claims 60000] [--work DIR] [--singles 300] [--batches 5]

Builds (once, cached in --work) a simulated province, trains and promotes a model, starts the
service, then measures over HTTP:
- single-claim requests, one after another: p50 / p99 latency (reasons included when the claim is
  in the review band, as the API always does);
- batches of 1,000 claims: claims/s;
against the peer measured in the same run on the same claims: bare LightGBM `predict` +
`pred_contrib` (TreeSHAP) on the model's feature rows (the floor no service can beat), and the
service's own in-process stages (validation, features, scoring) so the gap is accounted for.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--claims", type=int, default=60_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/claimradar-bench-serve"))
    ap.add_argument("--singles", type=int, default=300)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    from claims_json import claims_json

    from serving import process

    env = prepare(args.work, args.claims)
    # the claims of the last simulated month, as the claims system would send them
    pool = claims_json(args.work / "world", 1000 * args.batches + args.singles)
    singles, batch_pool = pool[: args.singles], pool[args.singles :]

    svc = process.start(env, args.work / "service.log", key_name=f"bench-{time.time_ns()}",
                        workers=args.workers, demo=True)  # fmt: skip
    try:
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
    finally:
        svc.stop()

    # the peer, same claims, same process: bare LightGBM on the model's feature rows
    from claimradar.settings import DEV_LINKAGE_KEY
    from contract.ingest import Limits, validate_batch
    from contract.validate import INTERNAL
    from scoring.scorer import score
    from serving.online import ScoringState, _raw_tables

    state = ScoringState(env["CLAIMRADAR_MLFLOW_TRACKING_URI"], args.work / "artifacts",
                         DEV_LINKAGE_KEY)  # fmt: skip
    served = state.load()
    booster = served.bundle.risk

    def stages(claims):
        t0 = time.perf_counter()
        res = validate_batch(_raw_tables(claims), Limits(workers=1), state.linkage_key, None)
        good = {k: v.drop(columns=[c for c in INTERNAL if c in v.columns])
                for k, v in res.good.items()}  # fmt: skip
        t1 = time.perf_counter()
        frame = served.plan.features(good)
        t2 = time.perf_counter()
        out = score(served.bundle, frame, model_version=served.version)
        t3 = time.perf_counter()
        return frame, out, (t1 - t0, t2 - t1, t3 - t2)

    frames, single_stage = [], []
    for claim in singles:
        frame, _, st = stages([claim])
        frames.append(frame)
        single_stage.append(st)
    bare = []
    for frame in frames:
        x = served.bundle.matrix(frame)
        t = time.perf_counter()
        booster.predict(x)
        booster.predict(x, pred_contrib=True)
        bare.append(time.perf_counter() - t)
    batch_stage, bare_batch = [], []
    for i in range(args.batches):
        frame, out, st = stages(batch_pool[i * 1000 : (i + 1) * 1000])
        batch_stage.append(st)
        x = served.bundle.matrix(frame)
        band = out["band"].isin(["high", "review"]).to_numpy()
        t = time.perf_counter()
        booster.predict(x)
        booster.predict(x[band], pred_contrib=True)
        bare_batch.append(time.perf_counter() - t)
    served.plan.close()

    per_claim_http = n_scored / sum(bt)
    per_claim_bare = 1000 * args.batches / sum(bare_batch)
    res = {
        "history_claims": len(served.snapshot.history),
        "single_p50_ms": pct(lat, 50),
        "single_p99_ms": pct(lat, 99),
        "single_explained": explained,
        "bare_single_p50_ms": pct(bare, 50),
        "bare_single_p99_ms": pct(bare, 99),
        "single_overhead_p50": pct(lat, 50) / pct(bare, 50),
        "stage_single_ms": {
            k: 1000 * statistics.median(s[i] for s in single_stage)
            for i, k in enumerate(("validate", "features", "score"))
        },
        "batch_claims_per_s": per_claim_http,
        "bare_batch_claims_per_s": per_claim_bare,
        "batch_overhead": per_claim_bare / per_claim_http,
        "stage_batch_s": {
            k: statistics.median(s[i] for s in batch_stage)
            for i, k in enumerate(("validate", "features", "score"))
        },
    }
    print(json.dumps(res, indent=1))
    print(
        f"single claim over HTTP: p50 {res['single_p50_ms']:.1f} ms, p99 {res['single_p99_ms']:.1f}"
        f" ms ({explained}/{len(singles)} with reasons); bare LightGBM predict+pred_contrib p50 "
        f"{res['bare_single_p50_ms']:.2f} ms -> {res['single_overhead_p50']:.0f}x\n"
        f"batches of 1,000: {per_claim_http:,.0f} claims/s over HTTP; bare LightGBM "
        f"{per_claim_bare:,.0f} claims/s -> {res['batch_overhead']:.0f}x"
    )


if __name__ == "__main__":
    main()
