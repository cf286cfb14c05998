"""Training and scoring throughput on a simulated province (default 250,000 claims).

    python bench/bench_train.py [--claims N] [--months 12] [--work DIR] [--config FILE]
                                [--dataset DIR]   # reuse an ingested dataset
                                [--full]          # also time the whole `claimradar train`
                                [--memory]        # only the whole train job, in a fresh
                                                  # process: seconds and peak RSS

Reports, separately: simulate, ingest, the feature step (features.pipeline via
training.train.feature_frame), the fit step (training.models.fit_bundle: risk, amount, anomaly,
bands), scoring every claim (scoring.scorer.predict: claims/s), and the explanations of the top 5%
(LightGBM's own TreeSHAP, `pred_contrib`, as scoring.scorer.contributions) timed against
`shap.TreeExplainer(booster).shap_values` on the same claims, as a ratio; plus the whole
`scoring.scorer.score` path with reason sentences for the top 5%.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from claimradar.settings import DEV_LINKAGE_KEY


def clock(label: str, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    dt = time.perf_counter() - t
    print(f"{label:<38} {dt:9.1f} s", flush=True)
    return out, dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--claims", type=int, default=250_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--work", type=Path, default=Path("/tmp/claimradar-bench-train"))
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dataset", type=Path, default=None, help="an ingested dataset to reuse")
    ap.add_argument(
        "--tile",
        type=int,
        default=1,
        help="--memory on K renamed copies of the dataset (K provinces, labels and truth too):"
        " 1M claims from a 200k world without simulating one",
    )
    ap.add_argument(
        "--full",
        action="store_true",
        help="also time the whole `claimradar train` job (training.train.train: features, fit,"
        " baselines, metrics, plots, snapshot, MLflow logging and registry) in a fresh store",
    )
    ap.add_argument(
        "--memory",
        action="store_true",
        help="only the whole train job (training.train.train) in a fresh process on --dataset or"
        " the simulated world: its wall seconds and peak RSS (the issue-15 memory target)",
    )
    args = ap.parse_args()
    if args.memory:
        train_memory(args)
        return

    import shap

    from contract.ingest import ingest, load_dataset
    from scoring.bundle import contributions
    from scoring.scorer import predict, score
    from simulator import simulate
    from training.config import load_config
    from training.data import attach_targets, load_truth, time_split
    from training.models import fit_bundle
    from training.train import anomaly_features, feature_frame

    cfg = load_config(args.config)
    world, ds = args.work / "world", args.dataset or args.work / "dataset"
    if args.dataset is None and not (world / "manifest.json").exists():
        clock("simulate", simulate, world, args.claims, months=args.months, seed=args.seed)
    if not (ds / "labels.parquet").exists():
        clock("ingest", ingest, world, ds, linkage_key=DEV_LINKAGE_KEY)
    frame, t_feat = clock("feature step (feature_frame)", feature_frame, ds)
    frame = attach_targets(frame, load_dataset(ds).get("labels"), load_truth(ds))
    from features.registry import feature_names

    split = time_split(frame, None, cfg.val_months, cfg.holdout_months)
    names = [n for n in feature_names() if n in frame.columns]
    population = frame[frame["discharged_at"] < split.cutoff]
    bundle, t_fit = clock(
        "fit step (fit_bundle)",
        fit_bundle,
        split.train,
        split.val,
        split.val_all,
        population,
        names,
        anomaly_features(names),
        cfg,
    )
    n = len(frame)
    scored, t_pred = clock(f"predict {n:,} claims", predict, bundle, frame)
    top = frame.iloc[np.argsort(-scored["priority"].to_numpy(), kind="stable")[: n // 20]]
    x = bundle.matrix(top)
    _, t_lgb = clock(f"pred_contrib top 5% ({len(top):,})", contributions, bundle, top)
    explainer = shap.TreeExplainer(bundle.risk)
    _, t_shap = clock("shap.TreeExplainer.shap_values", explainer.shap_values, x)
    _, t_score = clock(
        "score() with reasons for the top 5%",
        score,
        bundle,
        frame,
        model_version="bench",
        explain_top_pct=5.0,
    )
    t_full = float("nan")
    if args.full:
        import tempfile

        from training.train import train

        with tempfile.TemporaryDirectory() as tmp:
            _, t_full = clock(
                "claimradar train (whole job)",
                train,
                ds,
                config=args.config,
                tracking_uri=f"sqlite:///{tmp}/mlflow.db",
                artifact_root=Path(tmp) / "artifacts",
            )
    trees = bundle.risk.num_trees()
    print(
        pd.Series(
            {
                "claims": n,
                "features": len(names),
                "risk trees": trees,
                "train rows (labelled)": len(split.train),
                "feature step s": round(t_feat, 1),
                "fit step s": round(t_fit, 1),
                "training (features + fit) s": round(t_feat + t_fit, 1),
                "whole claimradar train s": round(t_full, 1),
                "predict claims/s": round(n / t_pred),
                "score+reasons claims/s": round(n / t_score),
                "explained claims/s (pred_contrib)": round(len(top) / t_lgb),
                "shap / pred_contrib time": round(t_shap / t_lgb, 2),
            }
        ).to_markdown()
    )


def train_memory(args) -> None:
    """The whole `claimradar train` job in a child process (nothing else loaded in it), timed,
    with its peak resident memory (the kernel's max RSS of the child)."""
    import resource
    import subprocess
    import sys
    import tempfile

    ds = args.dataset or args.work / "dataset"
    if not (ds / "claims.parquet").exists():
        from contract.ingest import ingest
        from simulator import simulate

        world = args.work / "world"
        if not (world / "manifest.json").exists():
            clock("simulate", simulate, world, args.claims, months=args.months, seed=args.seed)
        clock("ingest", ingest, world, ds, linkage_key=DEV_LINKAGE_KEY)
    if args.tile > 1:
        tiled = args.work / f"tiled-{args.tile}"
        if not (tiled / "claims.parquet").exists():
            clock(f"tile x{args.tile}", tile_dataset, ds, tiled, args.tile)
        ds = tiled
    with tempfile.TemporaryDirectory() as tmp:
        code = (
            "from pathlib import Path; from training.train import train; "
            f"r = train(Path({str(ds)!r}), config={str(args.config) if args.config else None!r}, "
            f"tracking_uri='sqlite:///{tmp}/mlflow.db', artifact_root=Path({tmp!r}) / 'a'); "
            "print('holdout', {k: round(v, 4) for k, v in r.metrics.items() "
            "if k.startswith('holdout_model_') and 'top5' in k})"
        )
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # KiB -> GiB
    print(f"whole train job: {wall:.1f} s, peak RSS {peak:.2f} GiB ({ds})")


def tile_dataset(src: Path, dst: Path, k: int) -> None:
    """bench_features.tile (claims, lines, facilities as K provinces) plus the labels and the
    simulated truth, their claim ids renamed the same way."""
    import duckdb
    from bench_features import tile

    tile(src, dst, k)
    con = duckdb.connect()
    for name, col in (("labels", "claim_id"), ("truth", "MA_LK"), ("truth_lines", "MA_LK")):
        f = f"read_parquet('{src / name}.parquet')"
        if not (src / f"{name}.parquet").exists():
            continue
        cols = [c[0] for c in con.execute(f"SELECT * FROM {f} LIMIT 0").description]
        parts = []
        for i in range(k):
            sel = [f'\'{i}\' || "{c}" AS "{c}"' if c == col else f'"{c}"' for c in cols]
            parts.append(f"SELECT {', '.join(sel)} FROM {f}")
        con.execute(
            f"COPY ({' UNION ALL '.join(parts)}) TO '{dst / name}.parquet' (FORMAT parquet)"
        )


if __name__ == "__main__":
    main()
