"""Quality of the scoring bundle against the baselines, on one simulated province-year.

    python bench/quality_eval.py DATASET [--variants] [--config FILE] [--cutoff YYYY-MM-DD]

(One world. The ranking's terms are chosen on many randomized worlds: bench/quality_worlds.py.)

Builds (once, cached next to the dataset as features.parquet) the feature frame with targets,
splits it by time as `claimradar train` does, and prints:
- with --variants: the design choices of docs/training.md, each measured on the VALIDATION months
  only (every claim, against the simulated truth): never tuned on the holdout;
- the table of the model and every baseline on validation and holdout, and the recall in the top
  5% per scheme on the holdout, for the config (default configs/train.toml).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.scorer import predict
from training.config import TrainConfig, load_config
from training.data import attach_targets, load_truth, time_split
from training.evaluate import ranking_metrics, recall_by_group
from training.models import fit_bundle

KEEP = ["amount_top1pct", "amount_top5pct", "precision_top1pct", "precision_top5pct"]
KEEP += ["recall_top5pct", "average_precision", "roc_auc"]


def load_frame(dataset: Path) -> pd.DataFrame:
    cache = Path(dataset) / "features.parquet"
    if cache.exists():
        return pd.read_parquet(cache)
    from contract.ingest import load_dataset
    from training.train import feature_frame

    t = time.perf_counter()
    frame = feature_frame(Path(dataset))
    frame = attach_targets(frame, load_dataset(Path(dataset)).get("labels"), load_truth(dataset))
    print(f"features: {len(frame):,} claims in {time.perf_counter() - t:.0f} s", flush=True)
    frame.to_parquet(cache)
    return frame


def with_targets(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["y"], out["target_amount"] = out["true_abuse"], out["true_overbilled"]
    return out


CUTOFF: str | None = None  # --cutoff (as `claimradar train --cutoff`); None: the default rule


def setup(frame: pd.DataFrame, cfg: TrainConfig):
    from features.registry import feature_names
    from training.train import anomaly_features

    split = time_split(frame, CUTOFF, cfg.val_months, cfg.holdout_months)
    names = [n for n in feature_names() if n in frame.columns]
    population = frame[frame["discharged_at"] < split.cutoff]
    return split, names, anomaly_features(names), population


def variant(cfg: TrainConfig, **changes) -> TrainConfig:
    doc = cfg.model_dump()
    for key, value in changes.items():
        node = doc
        *path, last = key.split("__")
        for p in path:
            node = node[p]
        node[last] = value
    return TrainConfig.model_validate(doc)


MONO = [
    "rule_amount",
    "rule_count",
    "peer_ratio_total_cost",
    "peer_z_total_cost",
    "peer_ratio_diag_cost",
    "peer_z_diag_cost",
    "peer_ratio_n_service_lines",
    "peer_z_n_service_lines",
    "peer_ratio_stay_days",
    "peer_z_stay_days",
    "peer_ratio_bed_days",
    "peer_z_bed_days",
    "bed_days_over_stay",
    "drug_days_over_stay",
]


def variants(base: TrainConfig) -> dict[str, TrainConfig]:
    """Each choice of docs/training.md, one change at a time from the plain design, then joined."""
    plain = variant(
        base,
        weights__unlabelled_weight=0.0,
        weights__monotone_increasing=[],
        weights__pos_weight=1.0,
        priority__rules=0.0,
        priority__novelty=0.0,
        priority__facility_shift=0.0,
    )
    v = {"plain (v1 design)": plain}
    for w in (0.05, 0.2, 1.0):
        v[f"PU unlabelled weight {w}"] = variant(plain, weights__unlabelled_weight=w)
    v["pos_weight 3"] = variant(plain, weights__pos_weight=3.0)
    v["monotone on deviations"] = variant(plain, weights__monotone_increasing=MONO)
    for rw in (0.5, 1.0):
        v[f"rules term, weight {rw}"] = variant(plain, priority__rules=rw)
    v["novelty term, weight 0.5"] = variant(plain, priority__novelty=0.5)
    v["facility shift term, weight 1"] = variant(plain, priority__facility_shift=1.0)
    return v


def val_metrics(frame: pd.DataFrame, cfg: TrainConfig) -> dict[str, float]:
    split, names, anomaly, population = setup(frame, cfg)
    bundle = fit_bundle(split.train, split.val, split.val_all, population, names, anomaly, cfg)
    df = with_targets(split.val_all)
    s = predict(bundle, df)
    m = ranking_metrics(
        s["priority"].to_numpy(), df["y"].to_numpy(), df["target_amount"].to_numpy()
    )
    m["risk_ap"] = ranking_metrics(
        s["risk_score"].to_numpy(), df["y"].to_numpy(), df["target_amount"].to_numpy()
    )["average_precision"]
    return m


def full_table(frame: pd.DataFrame, cfg: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    from training.train import _metrics_table

    split, names, anomaly, population = setup(frame, cfg)
    t = time.perf_counter()
    bundle = fit_bundle(split.train, split.val, split.val_all, population, names, anomaly, cfg)
    print(f"fit_bundle: {time.perf_counter() - t:.0f} s", flush=True)
    table, per_scheme, _ = _metrics_table(bundle, split, names, cfg)
    # recall per scheme of every ranker on the holdout
    hold = split.holdout
    from training import baselines

    rows = {"model": predict(bundle, hold)["priority"].to_numpy()}
    rows["rules_only"] = baselines.rules_only(split.train)(hold)
    rows["cost_outlier"] = baselines.cost_outlier(split.train)(hold)
    per = pd.concat(
        {
            k: recall_by_group(v, hold["y"].to_numpy(), hold["scheme"], 5.0).set_index("group")[
                "recall"
            ]
            for k, v in rows.items()
        },
        axis=1,
    )
    per.insert(0, "positives", per_scheme.set_index("group")["positives"])
    return table, per


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--variants", action="store_true")
    ap.add_argument("--cutoff", default=None, help="first holdout day, as claimradar train")
    args = ap.parse_args()
    global CUTOFF
    CUTOFF = args.cutoff
    cfg = load_config(args.config)
    frame = load_frame(args.dataset)
    split, *_ = setup(frame, cfg)
    print(
        f"claims {len(frame):,}; train labelled {len(split.train):,}, val labelled "
        f"{len(split.val):,}, val all {len(split.val_all):,}, holdout {len(split.holdout):,}; "
        f"cutoff {split.cutoff:%Y-%m-%d}",
        flush=True,
    )
    if args.variants:
        rows = {}
        for name, c in variants(cfg).items():
            t = time.perf_counter()
            rows[name] = val_metrics(frame, c)
            print(f"{name}: {time.perf_counter() - t:.0f} s", flush=True)
        tab = pd.DataFrame(rows).T[[*KEEP, "risk_ap"]]
        print("\nVALIDATION months (all claims, truth):\n" + tab.round(4).to_markdown())
        return
    table, per = full_table(frame, cfg)
    print("\n" + table[KEEP].round(4).to_markdown())
    print("\nrecall in the top 5% per scheme (holdout):\n" + per.round(3).to_markdown())


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
