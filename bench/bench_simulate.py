"""Benchmark of `simulator.simulate`: claims per second and peak memory per world size.

Each size runs in its own subprocess so peak RSS is that run's alone.

    .venv/bin/python bench/bench_simulate.py 100000 1000000 [3000000] [--months 12] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from simulator import simulate
n, months, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
t = time.perf_counter()
r = simulate(out, n, months=months, seed=0)
dt = time.perf_counter() - t
print(json.dumps({"claims": r.claims, "lines": r.drug_lines + r.service_lines, "seconds": dt,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def run(n: int, months: int, out: Path) -> dict:
    env = dict(os.environ)
    t = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(months), str(out)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["wall_seconds"] = time.perf_counter() - t
    res["disk_mib"] = sum(f.stat().st_size for f in out.glob("*")) / 2**20
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[100_000, 1_000_000])
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--keep", type=Path, help="keep the worlds under this folder")
    a = ap.parse_args()
    base = a.keep or Path(tempfile.mkdtemp(prefix="bench-simulate-"))
    print(f"cpus={os.cpu_count()} python={sys.version.split()[0]} months={a.months}")
    print(
        f"{'claims':>10} {'lines':>11} {'seconds':>8} {'claims/s':>10} "
        f"{'peak RSS GiB':>13} {'disk MiB':>9}"
    )
    try:
        for n in a.sizes:
            out = base / f"w{n}"
            r = run(n, a.months, out)
            print(
                f"{r['claims']:>10,} {r['lines']:>11,} {r['seconds']:>8.1f} "
                f"{r['claims'] / r['seconds']:>10,.0f} {r['peak_rss_kib'] / 2**20:>13.2f} "
                f"{r['disk_mib']:>9.0f}",
                flush=True,
            )
            if not a.keep:
                shutil.rmtree(out, ignore_errors=True)
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    _ = resource  # peak RSS is read in the child


if __name__ == "__main__":
    main()
