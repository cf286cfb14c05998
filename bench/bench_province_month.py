"""A province-month end to end (issue 15): ingest -> features -> score with reasons for the top 5%.

    python bench/bench_province_month.py [--claims 230000] [--work DIR]

The average Vietnamese province sends ~230,000 claims a month. The bench simulates one such
month (tabular XML 130 tables, one month, seed 3) and a model world (30,000 claims over 12 months,
seed 2) whose model it fits once (cached in --work). Then, in a fresh process, it times what a
month's batch run does:

- ingest: `contract.ingest.ingest` of the month's tables (validation, rejections, parquet);
- score: `serving.batch.score_dataset` (features built out of core, the facility early warning's
  evidence when the model weighs it, risk, expected amount, money at stake, bands, rank, reasons
  for the top 5%), written to parquet as `claimradar score` writes it;

beside the floor measured in the same process on the same data (the peer): a pyarrow read of the
three input tables into pandas and LightGBM `predict` on the month's feature matrix. Reported:
seconds and CPU seconds per step, claims/s, peak RSS (VmHWM) and the ratio to the peer.

The month has no months before it in the dataset (the features' history is the month itself);
a production run reads the months before it too (their features are built once and cached by
`claimradar features`), which this bench does not time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, re, resource, sys, time
from pathlib import Path
import numpy as np, pyarrow.parquet as pq
from contract.ingest import ingest
from scoring.bundle import ModelBundle
from serving.batch import score_dataset

src, work, bdir = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
def cpu():
    return sum(getattr(resource.getrusage(w), a) for w in (resource.RUSAGE_SELF,
               resource.RUSAGE_CHILDREN) for a in ("ru_utime", "ru_stime"))
out = {}
t, c = time.perf_counter(), cpu()
r = ingest(src, work / "month-dataset", linkage_key="bench-key")
out["ingest"] = (time.perf_counter() - t, cpu() - c)
out["claims"] = int(r.read["claims"])
t, c = time.perf_counter(), cpu()
bundle = ModelBundle.load(bdir)
scored, frame = score_dataset(work / "month-dataset", bundle, "bench", explain_top=5.0,
                              with_frame=True)
scored.to_parquet(work / "month-scores.parquet", index=False)
out["score"] = (time.perf_counter() - t, cpu() - c)
out["scored"] = len(scored)
out["explained"] = int(scored["reasons"].map(lambda x: x is not None and len(x) > 0).sum())
# the floor, on the same data in the same process
t, c = time.perf_counter(), cpu()
n = [len(pq.read_table(src / f"{s}.parquet").to_pandas()) for s in ("xml1", "xml2", "xml3")]
out["peer_read"] = (time.perf_counter() - t, cpu() - c)
x = bundle.matrix(frame)
t, c = time.perf_counter(), cpu()
bundle.risk.predict(x)
out["peer_predict"] = (time.perf_counter() - t, cpu() - c)
out["peak_rss_mb"] = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())
                         .group(1)) / 1024
print("RESULT " + json.dumps(out))
"""


def _run(code: str, *args: str) -> None:
    subprocess.run([sys.executable, "-c", code, *args], check=True, cwd=ROOT)


def prepare(work: Path, claims: int) -> tuple[Path, Path]:
    """The month's tables and the model's bundle folder, made once (each in a child process)."""
    month, bdir = work / f"month-{claims}", work / "bundle"
    if not (month / "xml1.parquet").exists():
        t = time.perf_counter()
        _run(
            "import sys, simulator; simulator.simulate(sys.argv[1], int(sys.argv[2]), months=1,"
            " start='2026-01', seed=3)",
            str(month), str(claims),
        )  # fmt: skip
        print(f"simulated the month: {time.perf_counter() - t:.0f} s", flush=True)
    if not (bdir / "bundle.json").exists():
        t = time.perf_counter()
        _run(
            """
import sys
from pathlib import Path
import simulator
from contract.ingest import ingest, load_dataset
from features.registry import feature_names
from training.config import load_config
from training.data import attach_targets, load_truth, time_split
from training.models import fit_bundle
from training.train import anomaly_features, feature_frame
work = Path(sys.argv[1])
simulator.simulate(work / "model-world", 30000, months=12, start="2025-01", seed=2)
ds = work / "model-dataset"
ingest(work / "model-world", ds, linkage_key="bench-key")
cfg = load_config(None)
frame = attach_targets(feature_frame(ds), load_dataset(ds).get("labels"), load_truth(ds))
split = time_split(frame, None, cfg.val_months, cfg.holdout_months)
names = [n for n in feature_names() if n in frame.columns]
population = frame[frame["discharged_at"] < split.cutoff]
bundle = fit_bundle(split.train, split.val, split.val_all, population, names,
                    anomaly_features(names), cfg)
bundle.save(work / "bundle")
""",
            str(work),
        )
        print(f"fit the model (30,000-claim world): {time.perf_counter() - t:.0f} s", flush=True)
    return month, bdir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--claims", type=int, default=230_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/claimradar-bench-month"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    month, bdir = prepare(args.work, args.claims)
    shutil.rmtree(args.work / "month-dataset", ignore_errors=True)  # ingest writes it afresh
    p = subprocess.run(
        [sys.executable, "-c", CHILD, str(month), str(args.work), str(bdir)],
        check=True, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    r = json.loads(next(x for x in p.stdout.splitlines() if x.startswith("RESULT "))[7:])
    n = r["claims"]
    ours = (r["ingest"][0] + r["score"][0], r["ingest"][1] + r["score"][1])
    peer = (r["peer_read"][0] + r["peer_predict"][0], r["peer_read"][1] + r["peer_predict"][1])
    print(f"\nprovince-month, {n:,} claims ({r['scored']:,} scored, {r['explained']:,} with "
          f"reasons), peak RSS {r['peak_rss_mb']:,.0f} MB")  # fmt: skip
    print(f"{'step':44} {'wall s':>7} {'cpu s':>7} {'claims/s':>9}")
    rows = [
        ("ingest (validate, reject, write)", r["ingest"]),
        ("score (features, model, rank, reasons top 5%)", r["score"]),
        ("end to end", ours),
        ("peer: pyarrow read of the three tables", r["peer_read"]),
        ("peer: LightGBM predict on the feature matrix", r["peer_predict"]),
        ("peer: read + predict", peer),
    ]
    for name, (s, c) in rows:
        print(f"{name:44} {s:>7.1f} {c:>7.1f} {n / s:>9,.0f}")
    met = "met" if ours[0] <= 60 else "not met"
    print(f"\nend to end / peer: {ours[0] / peer[0]:.1f}x wall, {ours[1] / peer[1]:.1f}x CPU;"
          f" target <= 60 s wall: {met} ({ours[0]:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
