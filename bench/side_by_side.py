"""One claim's cost, this checkout against another revision, measured side by side.

    python bench/side_by_side.py --before REV [--rounds 4] [--chunks 3] [--http]
                                 [--work DIR] [--claims 60000]

On a shared machine whose speed drifts (±30% within minutes on some hosts), runs one after
another cannot separate a 10% change. This runs both sides **at the same time**, each pinned to
one core (`os.sched_setaffinity`), and swaps the cores every round, so drift and a slower core
fall on both alike. REV is checked out as a git worktree and run from there (PYTHONPATH), this
checkout as it is.

Each side, on `bench_serve`'s world (--work, built once) and its pool of claims moved into the
snapshot month:
- in process (default): `ScoringState.score_records` of one claim at a time into a fresh SQLite
  case store, the process's CPU a call over each chunk of 200 claims;
- `--http`: a one-worker `claimradar serve` and one client sending single claims one after
  another: the server's CPU a call (read from /proc) and the p50 latency over each chunk.
Prints each round and the medians over all chunks, before and after, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 200


def _world(work: Path, claims: int):
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT / "tests"))
    import bench_serve as bs
    from claims_json import claims_json

    env = bs.prepare(work, claims)
    return bs, env, claims_json


def _tree(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [pid] + [p for c in out.stdout.split() for p in _tree(int(c))]


def _cpu(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def child_in_process(work: Path, claims: int, chunks: int) -> list[dict]:
    bs, env, claims_json = _world(work, claims)
    from claimradar.settings import DEV_LINKAGE_KEY
    from serving.online import ScoringState
    from serving.store import Store

    pool = bs.moved_to_snapshot_month(claims_json(work / "world", 50 + CHUNK * chunks))
    store = Store(f"sqlite:///{tempfile.mkdtemp(prefix='side-store-')}/cases.db")
    state = ScoringState(env["CLAIMRADAR_MLFLOW_TRACKING_URI"], work / "artifacts",
                         DEV_LINKAGE_KEY, store=store, online_store="memory")  # fmt: skip
    state.load()
    for c in pool[:50]:  # warm-up
        state.score_records([c], actor="bench")
    out = []
    for k in range(chunks):
        cpu = time.process_time()
        for c in pool[50 + CHUNK * k : 50 + CHUNK * (k + 1)]:
            state.score_records([c], actor="bench")
        out.append({"cpu_ms": (time.process_time() - cpu) / CHUNK * 1000})
    state.writer.close()
    return out


def child_http(work: Path, claims: int, chunks: int) -> list[dict]:
    bs, env, claims_json = _world(work, claims)
    from serving import process

    fresh = tempfile.mkdtemp(prefix="side-cases-", dir=work)
    env = {**env, "CLAIMRADAR_DATABASE_URL": f"sqlite:///{fresh}/cases.db"}
    pool = bs.moved_to_snapshot_month(claims_json(work / "world", 50 + CHUNK * chunks))
    svc = process.start(env, Path(fresh) / "service.log", key_name=f"side-{time.time_ns()}",
                        workers=1, demo=True)  # fmt: skip
    out = []
    try:
        pids = _tree(svc.proc.pid)
        with svc.client() as c:
            for claim in pool[:50]:
                c.post("/score", json={"claims": [claim]}).raise_for_status()
            for k in range(chunks):
                cpu, lat = _cpu(pids), []
                for claim in pool[50 + CHUNK * k : 50 + CHUNK * (k + 1)]:
                    t = time.perf_counter()
                    c.post("/score", json={"claims": [claim]}).raise_for_status()
                    lat.append(time.perf_counter() - t)
                out.append({"cpu_ms": (_cpu(pids) - cpu) / CHUNK * 1000,
                            "p50_ms": statistics.median(lat) * 1000})  # fmt: skip
    finally:
        svc.stop()
    return out


def _side(code: Path, core: int, args) -> subprocess.Popen:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child",
           "http" if args.http else "inproc", "--work", str(args.work),
           "--claims", str(args.claims), "--chunks", str(args.chunks)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(code)}
    return subprocess.Popen(
        cmd, cwd=code, env=env, stdout=subprocess.PIPE, text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),  # children inherit it
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", help="the revision to compare with (a git rev)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--chunks", type=int, default=3, help=f"chunks of {CHUNK} claims a side")
    ap.add_argument("--http", action="store_true", help="over HTTP (one worker), not in process")
    ap.add_argument("--work", type=Path, default=Path("/tmp/claimradar-bench-serve"))
    ap.add_argument("--claims", type=int, default=60_000)
    ap.add_argument("--child", choices=("inproc", "http"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run = child_http if args.child == "http" else child_in_process
        print(json.dumps(run(args.work, args.claims, args.chunks)))
        return
    if not args.before:
        ap.error("--before REV is required")
    if len(os.sched_getaffinity(0)) < 2:
        ap.error("needs two cores")
    _world(args.work, args.claims)  # build the world once, before the pairs
    tree = Path(tempfile.mkdtemp(prefix="side-before-")) / "code"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree),
                    args.before], check=True, capture_output=True)  # fmt: skip
    got: dict[str, list[dict]] = {"before": [], "after": []}
    cores = sorted(os.sched_getaffinity(0))[:2]
    try:
        for r in range(args.rounds):
            a, b = cores if r % 2 == 0 else cores[::-1]
            procs = {"before": _side(tree, a, args), "after": _side(ROOT, b, args)}
            line = []
            for name, p in procs.items():
                out, _ = p.communicate()
                if p.returncode != 0:
                    raise SystemExit(f"the {name} side failed (exit {p.returncode})")
                chunks = json.loads(out.strip().splitlines()[-1])
                got[name] += chunks
                shown = " ".join("/".join(f"{v:.2f}" for v in c.values()) for c in chunks)
                line.append(f"{name} (core {a if name == 'before' else b}): {shown}")
            print(f"round {r + 1}: " + " | ".join(line), flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                       capture_output=True)  # fmt: skip
    for key in got["after"][0]:
        before = statistics.median(c[key] for c in got["before"])
        after = statistics.median(c[key] for c in got["after"])
        print(f"{key}: before {before:.2f}, after {after:.2f} (median of "
              f"{len(got['after'])} chunks a side), after/before {after / before:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
