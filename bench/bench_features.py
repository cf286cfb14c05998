"""Benchmark of the feature pipeline: all features on DuckDB per world size (seconds, peak RSS),
the patient windows on DuckDB against a straightforward pandas implementation (same outputs
checked on a sample), and Spark local mode on the smallest size.

Every measured run is its own subprocess, so peak RSS is that run's alone. Worlds are simulated
once (12 months) and ingested under --keep (default a temp folder).

    .venv/bin/python bench/bench_features.py 250000 1000000 [--threads 2] [--keep DIR]
        [--no-spark] [--no-pandas] [--memory-limit 3GB] [--tile 4 [--spark-tiled]]

`--tile K` adds a K-times larger world made of K copies of the largest one as K provinces
(claims, people, cards, facilities and clinicians renamed per copy; same months), which is
much quicker than simulating and ingesting it; the DuckDB run is timed on it, and Spark local[2]
with `--spark-tiled` (its own process; the whole plan written from the executors).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PREPARE = """
import sys
from pathlib import Path
from simulator import simulate
from contract.ingest import ingest
from claimradar.settings import DEV_LINKAGE_KEY
n, root = int(sys.argv[1]), Path(sys.argv[2])
simulate(root / "sim", n, months=12, seed=0)
ingest(root / "sim", root / "ds", linkage_key=DEV_LINKAGE_KEY)
"""

DUCKDB = """
import json, resource, sys, time
from pathlib import Path
from features.pipeline import write_features
ds, out, threads, mem = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] or None
t = time.perf_counter()
n = write_features(ds, out, threads=threads, memory_limit=mem)
print(json.dumps({"rows": n, "seconds": time.perf_counter() - t,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

SPARK = """
import json, resource, sys, time
from pathlib import Path
from features.engine import _spark_session
t0 = time.perf_counter()
_spark_session()
start = time.perf_counter() - t0
import tempfile
from features.pipeline import write_features
t = time.perf_counter()
n = write_features(Path(sys.argv[1]), Path(tempfile.mkdtemp()) / "f", engine="spark")
print(json.dumps({"rows": n, "seconds": time.perf_counter() - t, "startup": start,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

WINDOWS = """
import json, sys, time
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, sys.argv[3])
from bench_features import pandas_patient_windows, PAT_COLUMNS
from features.engine import Engine
from features import profiles as pf
from features.assembly import enriched_claims, input_tables
ds, threads = Path(sys.argv[1]), int(sys.argv[2])
with Engine.connect("duckdb", threads=threads) as eng:
    _, _, _, enriched = enriched_claims(eng, input_tables(eng, ds), None)
    cols = ["claim_id", "person_key", "facility_id", "admit_day", "total_cost", "is_stay",
            "supply_end_day", "died"]
    e = eng.execute(enriched.select(*cols))
with Engine.connect("duckdb", threads=threads) as eng:
    t = eng.register("e", e)
    t0 = time.perf_counter()
    duck = eng.execute(pf.windows(t.mutate(
        visit_type=t.facility_id, clinician=t.facility_id, admit_min=t.admit_day * 1440,
        sex=t.admit_day * 0, birth_date=t.facility_id))
        .select("claim_id", *PAT_COLUMNS))
    duck_s = time.perf_counter() - t0
t0 = time.perf_counter()
pand = pandas_patient_windows(e)
pandas_s = time.perf_counter() - t0
a = duck.set_index("claim_id").sort_index()
b = pand.set_index("claim_id").sort_index()[a.columns]
sample = a.index.to_series().sample(min(20000, len(a)), random_state=0)
pd.testing.assert_frame_equal(a.loc[sample].astype("float64"), b.loc[sample].astype("float64"),
                              check_exact=False, rtol=1e-9)
print(json.dumps({"duckdb_seconds": duck_s, "pandas_seconds": pandas_s, "checked": len(sample)}))
"""

PAT_COLUMNS = (
    "pat_visits_7d", "pat_visits_30d", "pat_visits_90d", "pat_visits_365d", "pat_cost_90d",
    "pat_cost_365d", "pat_facilities_90d", "pat_facilities_365d", "pat_inpatient_365d",
    "pat_days_since_last", "pat_supply_remaining_days", "pat_died_before",
)  # fmt: skip


def pandas_patient_windows(e):
    """The patient windows the way one would write them in pandas: per person, time-based
    rolling windows over the admission day, closed on the left (the day before)."""
    import numpy as np
    import pandas as pd

    x = e.assign(ts=pd.to_datetime(e["admit_day"], unit="D"), one=1.0)
    x["fac"] = x["facility_id"].astype("category").cat.codes.astype("float64")
    x = x.sort_values(["person_key", "ts"], kind="stable").set_index("ts")
    g = x.groupby("person_key", sort=False)

    def roll(col, days, how):
        r = g[col].rolling(f"{days}D", closed="left")
        out = getattr(r, how)() if isinstance(how, str) else r.apply(how, raw=True)
        return out.to_numpy()

    out = pd.DataFrame({"claim_id": x["claim_id"].to_numpy()})
    for n in (7, 30, 90, 365):
        out[f"pat_visits_{n}d"] = np.nan_to_num(roll("one", n, "count"))
    out["pat_cost_90d"] = np.nan_to_num(roll("total_cost", 90, "sum"))
    out["pat_cost_365d"] = np.nan_to_num(roll("total_cost", 365, "sum"))
    distinct = lambda a: len(np.unique(a))  # noqa: E731
    out["pat_facilities_90d"] = np.nan_to_num(roll("fac", 90, distinct))
    out["pat_facilities_365d"] = np.nan_to_num(roll("fac", 365, distinct))
    out["pat_inpatient_365d"] = np.nan_to_num(roll("is_stay", 365, "sum"))
    day = x["admit_day"].to_numpy()
    out["pat_days_since_last"] = day - roll("admit_day", 365, "max")
    left = roll("supply_end_day", 365, "max") - day
    out["pat_supply_remaining_days"] = np.nan_to_num(np.maximum(left, 0))
    out["pat_died_before"] = np.nan_to_num(roll("died", 365, "max"))
    return out


def tile(src: Path, dst: Path, k: int) -> None:
    """K renamed copies of an ingested dataset, as K provinces of one country."""
    import duckdb

    dst.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET memory_limit='3GB'; SET preserve_insertion_order=false")
    pre, fac = "'{k}' || {c}", "'{k}' || substr({c}, 2)"
    renames = {
        "claims": {"claim_id": pre, "person_key": pre, "card_key": pre, "facility_id": fac,
                   "referred_to": fac, "referred_from": fac},
        "drug_lines": {"claim_id": pre, "clinician_id": pre},
        "service_lines": {"claim_id": pre, "clinician_id": pre, "performer_id": pre},
        "facilities": {"facility_id": fac},
    }  # fmt: skip
    for name, subs in renames.items():
        f = f"read_parquet('{src / name}.parquet')"
        cols = [c[0] for c in con.execute(f"SELECT * FROM {f} LIMIT 0").description]
        parts = []
        for i in range(k):
            sel = [
                (subs[c].format(k=i, c=f'"{c}"') + f' AS "{c}"') if c in subs else f'"{c}"'
                for c in cols
            ]
            parts.append(f"SELECT {', '.join(sel)} FROM {f}")
        con.execute(
            f"COPY ({' UNION ALL '.join(parts)}) TO '{dst / name}.parquet' (FORMAT parquet)"
        )


def child(code: str, *args) -> dict:
    p = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True
    )
    if p.returncode:  # the whole of it kept: a JVM's first error is far above its last lines
        log = Path(tempfile.mkstemp(prefix="bench-features-", suffix=".stderr")[1])
        log.write_text(p.stderr)
        first = next((ln for ln in p.stderr.splitlines() if "Error" in ln or "Exception" in ln), "")
        raise RuntimeError(f"{p.stderr[-2000:]}\nfirst error: {first}\nwhole stderr: {log}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[250_000])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-limit", default="3GB")
    ap.add_argument("--keep", type=Path, help="simulated worlds are kept (and reused) here")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--no-pandas", action="store_true")
    ap.add_argument("--tile", type=int, default=0, help="add K copies of the largest world")
    ap.add_argument(
        "--spark-tiled", action="store_true", help="with --tile: Spark local[2] on it too"
    )
    a = ap.parse_args()
    root = a.keep or Path(tempfile.mkdtemp(prefix="bench-features-"))
    print(f"cpus={os.cpu_count()} threads={a.threads} memory_limit={a.memory_limit}")
    rows = []
    for n in sorted(a.sizes):
        w = root / f"w{n}"
        if not (w / "ds" / "claims.parquet").exists():
            t = time.perf_counter()
            child(PREPARE + "\nprint('{}')", n, w)
            print(f"  simulated + ingested {n:,} claims in {time.perf_counter() - t:.0f} s")
        r = child(DUCKDB, w / "ds", w / "features.parquet", a.threads, a.memory_limit)
        row = {"claims": n, "duckdb_s": r["seconds"], "duckdb_peak_gib": r["peak_rss_kib"] / 2**20}
        print(f"  duckdb all features {n:,}: {r['seconds']:.1f} s, "
              f"peak {row['duckdb_peak_gib']:.2f} GiB")  # fmt: skip
        if not a.no_pandas:
            p = child(WINDOWS, w / "ds", a.threads, Path(__file__).parent)
            row |= {"win_duckdb_s": p["duckdb_seconds"], "win_pandas_s": p["pandas_seconds"]}
            print(f"  patient windows {n:,}: duckdb {p['duckdb_seconds']:.1f} s, pandas "
                  f"{p['pandas_seconds']:.1f} s ({p['checked']:,} rows checked equal)")  # fmt: skip
        if not a.no_spark and n == min(a.sizes):
            s = child(SPARK, w / "ds")
            row |= {"spark_s": s["seconds"], "spark_startup_s": s["startup"]}
            print(f"  spark local[2] all features {n:,}: {s['seconds']:.1f} s "
                  f"(+{s['startup']:.0f} s session start)")  # fmt: skip
        rows.append(row)
    if a.tile > 1:
        n = max(a.sizes)
        w = root / f"w{n}x{a.tile}"
        if not (w / "ds" / "claims.parquet").exists():
            tile(root / f"w{n}" / "ds", w / "ds", a.tile)
        r = child(DUCKDB, w / "ds", w / "features.parquet", a.threads, a.memory_limit)
        row = {"claims": n * a.tile, "duckdb_s": r["seconds"],
               "duckdb_peak_gib": r["peak_rss_kib"] / 2**20}  # fmt: skip
        print(f"  duckdb all features {n * a.tile:,} (tiled): {r['seconds']:.1f} s, "
              f"peak {row['duckdb_peak_gib']:.2f} GiB")  # fmt: skip
        if a.spark_tiled:
            s = child(SPARK, w / "ds")
            row |= {"spark_s": s["seconds"], "spark_startup_s": s["startup"]}
            print(f"  spark local[2] all features {n * a.tile:,} (tiled): {s['seconds']:.1f} s "
                  f"(+{s['startup']:.0f} s session start)")  # fmt: skip
        rows.append(row)
    print()
    print("| claims | DuckDB all features | claims/s | peak RSS | patient windows DuckDB | "
          "pandas | speed-up | Spark local[2] |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        win = (f"{r['win_duckdb_s']:.1f} s | {r['win_pandas_s']:.1f} s | "
               f"{r['win_pandas_s'] / r['win_duckdb_s']:.1f}×") if "win_pandas_s" in r else "– | – | –"  # fmt: skip  # noqa: E501
        spark = f"{r['spark_s']:.0f} s" if "spark_s" in r else "–"
        print(f"| {r['claims']:,} | {r['duckdb_s']:.1f} s | {r['claims'] / r['duckdb_s']:,.0f} | "
              f"{r['duckdb_peak_gib']:.2f} GiB | {win} | {spark} |")  # fmt: skip


if __name__ == "__main__":
    main()
