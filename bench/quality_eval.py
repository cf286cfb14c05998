"""Quality of the scoring bundle against the baselines, on one simulated province-year.

    python bench/quality_eval.py DATASET [--variants] [--config FILE] [--cutoff YYYY-MM-DD]

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
        priority__rule_weight=0.0,
        priority__novelty="share",
        priority__novelty_from=0.9,
        priority__lane_share=0.0,
        blend=0.3,
    )
    v = {"plain (v1 design)": plain}
    for w in (0.05, 0.2, 1.0):
        v[f"PU unlabelled weight {w}"] = variant(plain, weights__unlabelled_weight=w)
    v["pos_weight 3"] = variant(plain, weights__pos_weight=3.0)
    v["monotone on deviations"] = variant(plain, weights__monotone_increasing=MONO)
    for rw in (0.5, 1.0):
        v[f"rule amount max, weight {rw}"] = variant(plain, priority__rule_weight=rw)
    v["novelty peer_excess, blend 0.3"] = variant(plain, priority__novelty="peer_excess")
    v["novelty peer_excess, blend 1"] = variant(plain, priority__novelty="peer_excess", blend=1.0)
    v["novelty off"] = variant(plain, blend=0.0)
    v["novelty lane 0.3"] = variant(plain, priority__lane_share=0.3)
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


LEAVE_OUT = ("upcoding", "padded_stay", "drug_padding", "unbundling", "overprice")
# (rule_weight, novelty, blend, novelty_from or novelty_z, lane_share)
SETTINGS = [
    (1.0, "share", 0.0, 0.9, 0.0),
    (1.0, "share", 0.3, 0.9, 0.0),
    (1.0, "peer_excess", 0.3, 0.9, 0.0),
    *[(1.0, "peer_money", b, z, 0.0) for b in (0.3, 1.0) for z in (3.0, 6.0)],
    *[
        (1.0, nov, b, 0.9, s)
        for nov, b in (("share", 0.0), ("peer_excess", 0.3))
        for s in (0.1, 0.2, 0.3, 0.4, 0.5)
    ],
]
UNSEEN: tuple[str, ...] = ()  # --unseen: schemes whose labels every fit of the sweep drops


def _components(bundle, df: pd.DataFrame):
    s = predict(bundle, df)
    claimed = pd.to_numeric(df["fund_claimed"], errors="coerce").fillna(0.0).to_numpy()
    return s["expected_overbilled"].to_numpy(), s["anomaly"].to_numpy(), claimed


def _priority(bundle, df, comp, setting) -> np.ndarray:
    from scoring.ranking import money_priority, priority_of, quantile_ref

    bundle.rule_weight, bundle.novelty, bundle.blend, last, bundle.lane_share = setting
    if bundle.novelty == "peer_money":
        bundle.novelty_z = last
    else:
        bundle.novelty_from = last
    # df is the lane's reference frame (all claims of the validation months): its money quantiles
    # for this setting, as fit_bundle would have stored them
    bundle.lane_money = quantile_ref(money_priority(bundle, df, *comp))
    return priority_of(bundle, df, *comp)


def sweep(frame: pd.DataFrame, cfg: TrainConfig) -> pd.DataFrame:
    """The priority blend chosen without the holdout: on the validation months, (a) the metrics of
    every setting with the model trained on all labels, and (b) leave-one-scheme-out: for each
    scheme of LEAVE_OUT, its labels removed from training, its recall in the top 5% of the
    validation months — a scheme the labels never saw, as the holdout's unseen one will be."""
    from training import baselines

    split, names, anomaly, population = setup(frame, cfg)
    if UNSEEN:  # schemes the labels never contain (e.g. one the world starts in these months)
        split.train = split.train[~split.train["scheme"].isin(UNSEEN)]
        split.val = split.val[~split.val["scheme"].isin(UNSEEN)]
    df = with_targets(split.val_all)
    y, amt = df["y"].to_numpy(), df["target_amount"].to_numpy()
    leave_out = [k for k in LEAVE_OUT if (df["scheme"] == k).any()]
    rows = {}
    for name, sc in {
        "rules_only": baselines.rules_only(split.train),
        "cost_outlier": baselines.cost_outlier(split.train),
        "logistic": baselines.logistic(split.train, names, cfg.seed),
        "raw_lightgbm": baselines.raw_lightgbm(split.train, cfg.seed),
    }.items():
        m = ranking_metrics(sc(df), y, amt)
        rec = recall_by_group(sc(df), y, df["scheme"], 5.0).set_index("group")["recall"]
        # a baseline does not depend on the labels of one scheme much
        m.update({f"loo_{k}": rec.get(k, np.nan) for k in leave_out})
        m.update({f"unseen_{k}": rec.get(k, np.nan) for k in UNSEEN})
        rows[("baseline", name, "", "", "", "")] = m
    bundle = fit_bundle(split.train, split.val, split.val_all, population, names, anomaly, cfg)
    comp = _components(bundle, df)
    for st in SETTINGS:
        p = _priority(bundle, df, comp, st)
        rows[("model", *map(str, st))] = m = ranking_metrics(p, y, amt)
        rec = recall_by_group(p, y, df["scheme"], 5.0).set_index("group")["recall"]
        m.update({f"unseen_{k}": rec.get(k, np.nan) for k in UNSEEN})
    for k in leave_out:
        t = time.perf_counter()
        tr = split.train[split.train["scheme"] != k]
        va = split.val[split.val["scheme"] != k]
        b = fit_bundle(tr, va, split.val_all, population, names, anomaly, cfg)
        comp_k = _components(b, df)
        for st in SETTINGS:
            top = recall_by_group(_priority(b, df, comp_k, st), y, df["scheme"], 5.0)
            rows[("model", *map(str, st))][f"loo_{k}"] = top.set_index("group")["recall"].get(
                k, np.nan
            )
        print(f"leave out {k}: {time.perf_counter() - t:.0f} s", flush=True)
    out = pd.DataFrame(rows).T
    out.index.names = ["ranker", "rule_weight", "novelty", "blend", "novelty_from", "lane"]
    out["loo_mean"] = out[[f"loo_{k}" for k in leave_out]].mean(axis=1)
    return out[
        ["amount_top5pct", "average_precision", "precision_top1pct", "loo_mean"]
        + [f"loo_{k}" for k in leave_out]
        + [f"unseen_{k}" for k in UNSEEN]
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--variants", action="store_true")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--cutoff", default=None, help="first holdout day, as claimradar train")
    ap.add_argument(
        "--unseen", action="append", default=[], help="--sweep: drop this scheme's labels"
    )
    args = ap.parse_args()
    global CUTOFF, UNSEEN
    CUTOFF, UNSEEN = args.cutoff, tuple(args.unseen)
    cfg = load_config(args.config)
    frame = load_frame(args.dataset)
    split, *_ = setup(frame, cfg)
    print(
        f"claims {len(frame):,}; train labelled {len(split.train):,}, val labelled "
        f"{len(split.val):,}, val all {len(split.val_all):,}, holdout {len(split.holdout):,}; "
        f"cutoff {split.cutoff:%Y-%m-%d}",
        flush=True,
    )
    if args.sweep:
        tab = sweep(frame, cfg)
        print("\nVALIDATION months: priority settings, leave-one-scheme-out recall in the top 5%:")
        print(tab.round(3).to_markdown())
        return
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
