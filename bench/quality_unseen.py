"""A scheme the training labels never contain: does the ranking still find it?

    python bench/quality_unseen.py [--scheme needless_tests] [--claims 250000] [--months 12]
                                   [--work DIR] [--config FILE] [--seed 1]

Simulates a province where SCHEME starts in the first of the last `holdout_months` months, which
is the cutoff given to training (`claimradar train --cutoff`), ingests it, builds the
features (cached), fits the bundle on the months before the cutoff exactly as `claimradar train`
does, checks that no training or validation label is of that scheme, and reports the scheme's
recall in the top 5% of the holdout ranking (model and baselines), beside every other scheme's.
Stages already done in --work are reused.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality_eval
from quality_eval import load_frame, setup


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scheme", default="needless_tests")
    ap.add_argument("--claims", type=int, default=250_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--start", default="2025-01")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/claimradar-unseen"))
    ap.add_argument("--config", type=Path, default=None)
    args = ap.parse_args()

    from claimradar.settings import DEV_LINKAGE_KEY
    from contract.ingest import ingest
    from scoring.scorer import predict
    from simulator import simulate
    from training import baselines
    from training.config import load_config
    from training.evaluate import recall_by_group
    from training.models import fit_bundle

    cfg = load_config(args.config)
    first = np.datetime64(args.start, "M") + args.months - cfg.holdout_months
    world, ds = args.work / "world", args.work / "ds"
    if not (world / "manifest.json").exists():
        t = time.perf_counter()
        r = simulate(
            world,
            args.claims,
            months=args.months,
            start=args.start,
            seed=args.seed,
            scheme_start={args.scheme: str(first)},
        )
        print(f"simulate: {time.perf_counter() - t:.0f} s; {r.summary()}", flush=True)
    if not (ds / "labels.parquet").exists():
        t = time.perf_counter()
        ingest(world, ds, linkage_key=DEV_LINKAGE_KEY)
        print(f"ingest: {time.perf_counter() - t:.0f} s", flush=True)
    frame = load_frame(ds)
    quality_eval.CUTOFF = f"{first}-01"  # as `claimradar train --cutoff`: the scheme's first month
    split, names, anomaly, population = setup(frame, cfg)
    seen = pd.concat([split.train, split.val])
    n_seen = int((seen["scheme"] == args.scheme).sum())
    before = int(((frame["scheme"] == args.scheme) & (frame["discharged_at"] < split.cutoff)).sum())
    print(
        f"{args.scheme} starts {first}; cutoff {split.cutoff:%Y-%m-%d}; its claims before the "
        f"cutoff: {before}, among training/validation labels: {n_seen}; in the holdout: "
        f"{int((split.holdout['scheme'] == args.scheme).sum())}",
        flush=True,
    )
    bundle = fit_bundle(split.train, split.val, split.val_all, population, names, anomaly, cfg)
    hold = split.holdout
    from dataclasses import replace

    scores = {
        "model": predict(bundle, hold)["priority"].to_numpy(),
        # the same bundle without the novelty lane, and the supervised model (+ rule money) alone
        "no_lane": predict(replace(bundle, lane_share=0.0), hold)["priority"].to_numpy(),
        "supervised": predict(replace(bundle, lane_share=0.0, blend=0.0), hold)[
            "priority"
        ].to_numpy(),
        "rules_only": baselines.rules_only(split.train)(hold),
        "cost_outlier": baselines.cost_outlier(split.train)(hold),
    }
    per = pd.concat(
        {
            k: recall_by_group(v, hold["y"].to_numpy(), hold["scheme"], 5.0).set_index("group")[
                "recall"
            ]
            for k, v in scores.items()
        },
        axis=1,
    )
    print("\nrecall in the top 5% of the holdout, per scheme:\n" + per.round(3).to_markdown())
    from training.evaluate import ranking_metrics

    head = pd.DataFrame(
        {
            k: ranking_metrics(v, hold["y"].to_numpy(), hold["target_amount"].to_numpy())
            for k, v in scores.items()
        }
    ).T[["amount_top5pct", "precision_top5pct", "average_precision"]]
    print("\nholdout, every claim:\n" + head.round(3).to_markdown())
    print(
        f"\nUNSEEN {args.scheme}: model recall in the top 5% = {per.loc[args.scheme, 'model']:.3f}"
        f" (without the lane {per.loc[args.scheme, 'no_lane']:.3f}, supervised alone "
        f"{per.loc[args.scheme, 'supervised']:.3f})"
    )


if __name__ == "__main__":
    main()
