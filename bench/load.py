"""Load: 20 clients on a real `claimradar serve` through a model promotion (issue 13).

    python bench/load.py [--clients 20] [--seconds 120] [--claims 60000] [--work DIR]
                         [--workers 2] [--out FILE]

Builds (once, cached in --work; the same world as bench/bench_serve.py) a simulated province and a
champion model, starts the service, and runs locust headless for `--seconds` with `--clients`
users, each sending one claim per request to POST /score (a tenth of them a batch of 20) and now
and then GET /model. Half-way through, a new version is registered and promoted to champion; the
service picks it up while the load goes on. Reports requests, errors (the target is 0), latency
percentiles, when the promoted version was first served, and the resident memory of the service's
processes at the start, half-way and at the end (no growth is the target). Each claim is sent
once per run at most until the pool runs out, then again (re-sent claims are idempotent in the
case store).

This file is also the locustfile: locust imports it (not as __main__) and finds `ScoringUser`.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ != "__main__":  # loaded by locust: the simulated claims system
    import itertools

    from locust import HttpUser, between, task

    _POOL = json.loads(Path(os.environ["LOAD_CLAIMS"]).read_text())
    _NEXT = itertools.count()

    class ScoringUser(HttpUser):
        wait_time = between(0.0, 0.05)

        def on_start(self) -> None:
            self.client.headers["Authorization"] = f"Bearer {os.environ['LOAD_KEY']}"

        def _claims(self, n: int) -> list[dict]:
            return [_POOL[next(_NEXT) % len(_POOL)] for _ in range(n)]

        @task(18)
        def one_claim(self) -> None:
            with self.client.post("/score", json={"claims": self._claims(1)},
                                  name="/score 1", catch_response=True) as r:  # fmt: skip
                _check(r)

        @task(2)
        def twenty_claims(self) -> None:
            with self.client.post("/score", json={"claims": self._claims(20)},
                                  name="/score 20", catch_response=True) as r:  # fmt: skip
                _check(r)

        @task(1)
        def model(self) -> None:
            self.client.get("/model", name="/model")

    def _check(r) -> None:
        if r.status_code != 200:  # a claim refused by validation is a 200 with its errors
            r.failure(f"HTTP {r.status_code}: {r.text[:200]}")


def _promote(env: dict[str, str]) -> int:
    """A new registered version of the champion's run, promoted to champion."""
    from scoring import registry

    client = registry.connect(env["CLAIMRADAR_MLFLOW_TRACKING_URI"],
                              Path(env["CLAIMRADAR_MLFLOW_ARTIFACT_ROOT"]))  # fmt: skip
    champion = client.get_model_version_by_alias(registry.MODEL_NAME, "champion")
    new = client.create_model_version(registry.MODEL_NAME, source=champion.source,
                                      run_id=champion.run_id)  # fmt: skip
    client.set_registered_model_alias(registry.MODEL_NAME, "champion", new.version)
    return int(new.version)


def _memory_mb(pid: int) -> float:
    """Resident memory of a process and its children (the BentoML server and its workers)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / 2**20


def _watch_version(svc, want: int, t0: float, out: dict) -> None:
    """When GET /model first answers the promoted version (seconds into the run)."""
    with svc.client() as c:
        while "served_after_s" not in out and time.monotonic() - t0 < out["limit"]:
            try:
                if c.get("/model").json().get("version") == str(want):
                    out["served_after_s"] = round(time.monotonic() - t0, 1)
            except Exception:  # counted by locust, not here
                pass
            time.sleep(0.5)


def _stats(prefix: Path) -> dict:
    with open(f"{prefix}_stats.csv") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for r in rows:
        out[r["Name"]] = {
            "requests": int(r["Request Count"]),
            "errors": int(r["Failure Count"]),
            "rps": round(float(r["Requests/s"]), 1),
            "p50_ms": float(r["50%"]),
            "p95_ms": float(r["95%"]),
            "p99_ms": float(r["99%"]),
            "max_ms": float(r["Max Response Time"]),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=120, help="load duration (issue: 300)")
    ap.add_argument("--claims", type=int, default=60_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/claimradar-bench-serve"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_serve import prepare
    from claims_json import claims_json

    from serving import process

    env = prepare(args.work, args.claims)
    pool = args.work / "load-claims.json"
    pool.write_text(json.dumps(claims_json(args.work / "world", 3000)))
    svc = process.start(env, args.work / "service.log", key_name=f"load-{time.time_ns()}",
                        workers=args.workers, demo=True)  # fmt: skip
    result: dict = {"clients": args.clients, "seconds": args.seconds, "workers": args.workers}
    try:
        pid = svc.proc.pid
        result["memory_mb_start"] = round(_memory_mb(pid), 1)
        prefix = args.work / "locust"
        cmd = [sys.executable, "-m", "locust", "-f", __file__, "--headless",
               "-u", str(args.clients), "-r", str(args.clients), "-t", f"{args.seconds}s",
               "--host", svc.url, "--csv", str(prefix), "--only-summary",
               "--stop-timeout", "30"]  # fmt: skip
        lenv = {**os.environ, "LOAD_CLAIMS": str(pool), "LOAD_KEY": svc.key}
        t0 = time.monotonic()
        locust = subprocess.Popen(cmd, env=lenv, cwd=ROOT)
        try:
            time.sleep(args.seconds / 2)
            result["memory_mb_half"] = round(_memory_mb(pid), 1)
            version = _promote(env)
            result["promoted_version"] = version
            result["promoted_at_s"] = round(time.monotonic() - t0, 1)
            seen = {"limit": args.seconds + 30}
            watcher = threading.Thread(target=_watch_version, args=(svc, version, t0, seen))
            watcher.start()
            locust.wait(args.seconds + 120)
            watcher.join(60)
            result["promoted_served_after_s"] = seen.get("served_after_s")
        finally:
            if locust.poll() is None:
                locust.terminate()
                locust.wait(30)
        result["memory_mb_end"] = round(_memory_mb(pid), 1)
        result["locust_exit"] = locust.returncode
        stats = _stats(prefix)
        result["endpoints"] = {k: v for k, v in stats.items() if k != "Aggregated"}
        result["total"] = stats.get("Aggregated")
    finally:
        svc.stop()
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    total = result.get("total") or {}
    print(f"load: {total.get('requests', 0):,} requests, {total.get('errors', '?')} errors, "
          f"p50 {total.get('p50_ms')} ms, p99 {total.get('p99_ms')} ms; promoted v"
          f"{result.get('promoted_version')} served after {result.get('promoted_served_after_s')} "
          f"s; memory {result['memory_mb_start']} -> {result['memory_mb_end']} MB")  # fmt: skip


if __name__ == "__main__":
    main()
