"""The review queue on randomized worlds: choose on some seeds by the worst world, report on others.

    python bench/quality_worlds.py --worlds 6 --select   [--work DIR]   # the selection seeds
    python bench/quality_worlds.py --worlds 6 --report   [--work DIR]   # the report seeds

Each world is drawn by simulator.draw_world(seed) (claims, facilities, schemes and rates, late
starts, how the agency labels, and the held-out facility-level scheme that starts in the first
holdout month), simulated, ingested and trained as `claimradar train --cutoff 2025-10-01` does.
The test is the quarter after the cutoff, every claim, against the simulated truth.

--select grids the ranking's term weights (configs/train.toml [priority]) and keeps the setting
with the best WORST-world money in the top 5% (over the validation months and the holdout quarter
of the selection worlds); a term stays only if it raises that worst case.
--report prints, per world and as mean and worst: money in the top 1/5/10% by the queue's order
and by the model's own order, AP, recall per scheme in the top 5%, the held-out scheme's recall,
baselines beside, and the facility early warning's recall and false alarms per month.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.ranking import money_at_stake
from simulator.randomize import CUTOFF, HELD_OUT, REPORT_SEEDS, SELECTION_SEEDS, draw_world
from training.config import TrainConfig, load_config
from training.evaluate import ranking_metrics, recall_by_group, top_k_mask

CUTOFF_DAY = f"{CUTOFF}-01"
GRID = {
    "rules": (0.0, 0.25, 0.5, 1.0),
    "novelty": (0.0, 0.25, 0.5, 1.0),
    "facility_shift": (0.0, 0.5, 1.0, 2.0, 4.0),
}
TIE = 0.005  # worst cases closer than this are a tie, settled by the next criterion


def world_parts(seed: int, work: Path, claims: int | None) -> Path:
    """Simulate, ingest, build features, fit with every term off; keep what ranking needs."""
    folder = work / f"world-{seed}"
    done = folder / "parts.parquet"
    if done.exists():
        return folder
    import simulator
    from contract.ingest import ingest, load_dataset
    from features.registry import feature_names
    from scoring.bundle import anomaly_percentile
    from scoring.ranking import term_money
    from scoring.scorer import predict
    from training import baselines
    from training.data import attach_targets, load_truth, time_split
    from training.models import fit_bundle
    from training.train import anomaly_features, feature_frame

    t0 = time.perf_counter()
    draw = draw_world(seed, claims)
    simulator.simulate(folder / "sim", **draw.simulate_kwargs())
    ingest(folder / "sim", folder / "ds", linkage_key="quality-worlds")
    tables = load_dataset(folder / "ds")
    frame = feature_frame(folder / "ds", tables=tables)
    frame = attach_targets(frame, tables.get("labels"), load_truth(folder / "ds"))
    cfg = load_config()
    cfg = TrainConfig.model_validate({**cfg.model_dump(), "priority": {}})  # every term off
    split = time_split(frame, CUTOFF_DAY, cfg.val_months, cfg.holdout_months)
    names = [n for n in feature_names() if n in frame.columns]
    population = frame[frame["discharged_at"] < split.cutoff]
    bundle = fit_bundle(
        split.train, split.val, split.val_all, population, names, anomaly_features(names), cfg
    )
    from features.early_warning import shift_evidence

    evidence = shift_evidence(tables)
    rows = []
    for period, df in (("val", split.val_all), ("holdout", split.holdout)):
        s = predict(bundle, df)
        claimed = pd.to_numeric(df["fund_claimed"], errors="coerce").fillna(0.0).to_numpy()
        expected = s["expected_overbilled"].to_numpy()
        terms = term_money(bundle, df, anomaly_percentile(bundle, df), claimed)
        part = pd.DataFrame(
            {
                "period": period,
                "claim_id": df["claim_id"].to_numpy(),
                "facility_id": df["facility_id"].astype(str).to_numpy(),
                "month": pd.to_datetime(df["admitted_at"]).dt.strftime("%Y-%m").to_numpy(),
                "claimed": claimed,
                "expected": expected,
                "risk": s["risk_score"].to_numpy(),
                "y": df["true_abuse"].to_numpy(),
                "amount": df["true_overbilled"].to_numpy(),
                "scheme": df["scheme"].to_numpy(),
                **{f"t_{k}": v for k, v in terms.items()},
            }
        )
        shift = evidence.set_index("claim_id")
        for v in ("shift_claim", "shift_cell", "shift_share"):
            part[f"t_{v}"] = np.minimum(part["claim_id"].map(shift[v]).fillna(0.0), claimed)
        if period == "holdout":
            part["b_raw_lightgbm"] = baselines.raw_lightgbm(split.train, cfg.seed)(df)
            part["b_rules_only"] = baselines.rules_only(split.train)(df)
            part["b_cost_outlier"] = baselines.cost_outlier(split.train)(df)
        rows.append(part)
    pd.concat(rows, ignore_index=True).to_parquet(done)
    (folder / "draw.json").write_text(json.dumps(draw.__dict__, indent=1))
    _warning_truth(folder, tables)
    print(f"world {seed}: {len(frame):,} claims in {time.perf_counter() - t0:.0f} s", flush=True)
    return folder


def _warning_truth(folder: Path, tables: dict) -> None:
    """The early warning per month of the holdout against the facilities the held-out scheme
    touches broadly (at least 15% of the facility's claims that month)."""
    from features.early_warning import warnings_by_month

    truth = pd.read_parquet(folder / "ds" / "truth.parquet")
    truth.columns = [c.lower() for c in truth.columns]
    claims = tables["claims"][["claim_id", "facility_id", "admitted_at"]].copy()
    claims["month"] = pd.to_datetime(claims["admitted_at"]).dt.strftime("%Y-%m")
    held = set(truth.loc[truth["scheme"] == HELD_OUT, "ma_lk"])
    claims["held"] = claims["claim_id"].isin(held)
    share = claims.groupby(["facility_id", "month"])["held"].mean()
    rows = []
    months = [m for m in sorted(claims["month"].unique()) if m >= "2025-07"]
    for month, w in warnings_by_month(tables, months).items():
        for r in w.itertuples():
            rows.append(
                {
                    "month": month,
                    "facility_id": r.facility_id,
                    "claims": r.claims,
                    "warning": bool(r.warning),
                    "held_share": float(share.get((r.facility_id, month), 0.0)),
                }
            )
    pd.DataFrame(rows).to_parquet(folder / "warnings.parquet")


def queue(p: pd.DataFrame, weights: dict[str, float]) -> np.ndarray:
    terms = {k: p[f"t_{k}"].to_numpy() for k, w in weights.items() if w > 0}
    return money_at_stake(p["expected"].to_numpy(), terms, weights, p["claimed"].to_numpy())


def money_top(order: np.ndarray, amount: np.ndarray, pct: float) -> float:
    total = amount.sum()
    return float(amount[top_k_mask(order, pct)].sum() / total) if total > 0 else float("nan")


MIN_SCHEME_CLAIMS = 20  # a scheme with fewer claims in a period says too little to constrain


def kept_schemes(part: pd.DataFrame, order: np.ndarray, model: dict) -> float:
    """The lowest recall in the queue's top 5% of a labelled scheme (at least MIN_SCHEME_CLAIMS
    claims) the model's own order has there (recall >= 0.9); 1.0 when there is none."""
    rec = recall_by_group(order, part["y"].to_numpy(), part["scheme"], 5.0)
    rec = rec.set_index("group")["recall"]
    keep = [k for k, r in model.items() if r >= 0.9 and k != HELD_OUT]
    return float(min((rec.get(k, 0.0) for k in keep), default=1.0))


def select(worlds: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Every setting of GRID by, in order (docs/training.md): the worst money in the top 5% over
    the worlds and both periods (validation months, holdout quarter), the worst over the holdout
    quarters (where every kind of evidence, the held-out scheme's too, is present), then the mean;
    worst cases within TIE of each other count as equal. `kept` (the lowest share of a labelled
    scheme the model's own order holds in its top 5% that the queue keeps there) is shown beside
    it: putting it first keeps only the rules term (docs/training.md)."""
    parts = [part for p in worlds.values() for _, part in p.groupby("period")]
    model_recall = []
    for part in parts:
        r = recall_by_group(part["expected"].to_numpy(), part["y"].to_numpy(), part["scheme"], 5.0)
        r = r[r["positives"] >= MIN_SCHEME_CLAIMS]
        model_recall.append(r.set_index("group")["recall"].to_dict())
    rows = []
    for combo in itertools.product(*GRID.values()):
        w = dict(zip(GRID, combo, strict=True))
        scores, hold, kept = [], [], []
        for part, model in zip(parts, model_recall, strict=True):
            order = queue(part, w)
            scores.append(money_top(order, part["amount"].to_numpy(), 5.0))
            kept.append(kept_schemes(part, order, model))
            if part["period"].iloc[0] == "holdout":
                hold.append(scores[-1])
        rows.append(
            {**w, "kept": min(kept), "worst": min(scores), "holdout_worst": min(hold),
             "mean": float(np.mean(scores))}
        )  # fmt: skip
    tab = pd.DataFrame(rows)
    best = tab["worst"].max()
    tab["tier"] = np.where(tab["worst"] >= best - TIE, 0, 1)
    tab["hold_tier"] = -np.round(tab["holdout_worst"] / TIE).where(tab["tier"] == 0, 0)
    tab.loc[tab["tier"] == 1, "hold_tier"] = -tab.loc[tab["tier"] == 1, "worst"]
    return tab.sort_values(["tier", "hold_tier", "mean"], ascending=[True, True, False]).drop(
        columns=["tier", "hold_tier"]
    )


def report_world(p: pd.DataFrame, weights: dict[str, float]) -> dict[str, float]:
    h = p[p["period"] == "holdout"]
    y, amt = h["y"].to_numpy(), h["amount"].to_numpy()
    q, model = queue(h, weights), h["expected"].to_numpy()
    out = {}
    for pct in (1.0, 5.0, 10.0):
        out[f"queue_top{pct:g}"] = money_top(q, amt, pct)
        out[f"model_top{pct:g}"] = money_top(model, amt, pct)
    out["ap_risk"] = ranking_metrics(h["risk"].to_numpy(), y, amt)["average_precision"]
    out["ap_queue"] = ranking_metrics(q, y, amt)["average_precision"]
    for b in ("raw_lightgbm", "rules_only", "cost_outlier"):
        out[f"{b}_top5"] = money_top(h[f"b_{b}"].to_numpy(), amt, 5.0)
    for name, order in (("queue", q), ("model", model)):
        rec = recall_by_group(order, y, h["scheme"], 5.0).set_index("group")["recall"]
        out.update({f"recall_{name}_{k}": float(v) for k, v in rec.items()})
    return out


def warning_stats(folder: Path) -> dict[str, float]:
    w = pd.read_parquet(folder / "warnings.parquet")
    hold = w[w["month"] >= CUTOFF]
    truth = hold[hold["held_share"] >= 0.15]
    flagged = set(
        zip(w.loc[w["warning"], "facility_id"], w.loc[w["warning"], "month"], strict=True)
    )

    def caught(r) -> bool:  # that month or the next
        nxt = (pd.Period(r.month, "M") + 1).strftime("%Y-%m")
        return (r.facility_id, r.month) in flagged or (r.facility_id, nxt) in flagged

    found = [caught(r) for r in truth.itertuples()]
    false = w[w["warning"] & (w["held_share"] == 0)]
    return {
        "warn_true_facility_months": float(len(truth)),
        "warn_recall": float(np.mean(found)) if found else float("nan"),
        "warn_false_per_month": float(len(false) / max(w["month"].nunique(), 1)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worlds", type=int, default=6)
    ap.add_argument("--work", type=Path, default=Path("/tmp/claimradar-worlds"))
    ap.add_argument("--claims", type=int, default=None, help="fix each world's size")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--select", action="store_true")
    mode.add_argument("--report", action="store_true")
    ap.add_argument("--config", type=Path, default=None)
    args = ap.parse_args()
    seeds = (SELECTION_SEEDS if args.select else REPORT_SEEDS)[: args.worlds]
    folders = {s: world_parts(s, args.work, args.claims) for s in seeds}
    worlds = {s: pd.read_parquet(f / "parts.parquet") for s, f in folders.items()}
    if args.select:
        tab = select(worlds)
        base = tab[(tab[list(GRID)] == 0).all(axis=1)].iloc[0]
        print(
            f"selection seeds {list(seeds)}; every term off: worst {base['worst']:.4f}, "
            f"holdout worst {base['holdout_worst']:.4f}, mean {base['mean']:.4f}"
        )
        print(tab.head(15).round(4).to_markdown(index=False))
        best = tab.iloc[0]
        for k in GRID:  # each term's own contribution at the best setting
            same = np.logical_and.reduce([tab[j] == best[j] for j in GRID if j != k])
            without = tab[(tab[k] == 0) & same].iloc[0]
            print(
                f"{k} = {best[k]}: worst {best['worst']:.4f} / holdout worst "
                f"{best['holdout_worst']:.4f} / kept {best['kept']:.2f}; without it "
                f"{without['worst']:.4f} / {without['holdout_worst']:.4f} / {without['kept']:.2f}"
            )
        return
    cfg = load_config(args.config)
    weights = cfg.priority.weights()
    per = pd.DataFrame(
        {s: {**report_world(worlds[s], weights), **warning_stats(folders[s])} for s in seeds}
    ).T
    per.index.name = "seed"
    main_cols = ["queue_top1", "model_top1", "queue_top5", "model_top5", "queue_top10",
                 "model_top10", "ap_risk", "raw_lightgbm_top5", "rules_only_top5",
                 "cost_outlier_top5"]  # fmt: skip
    print(f"report seeds {list(seeds)}; weights {weights}\n")
    print(per[main_cols].round(3).to_markdown())
    summary = pd.DataFrame({"mean": per.mean(), "worst": per.min()})
    print("\nmean and worst over worlds:\n" + summary.loc[main_cols].round(3).to_markdown())
    rec = sorted(c for c in per.columns if c.startswith("recall_"))
    print("\nrecall in the top 5% per scheme (mean, worst):")
    print(summary.loc[rec].round(3).to_markdown())
    warn = ["warn_true_facility_months", "warn_recall", "warn_false_per_month"]
    print("\nfacility early warning per world:\n" + per[warn].round(3).to_markdown())
    print(
        f"\nqueue >= model order in the top 5% on every world: "
        f"{bool((per['queue_top5'] >= per['model_top5'] - 1e-9).all())}; "
        f"held-out {HELD_OUT} recall (queue): mean {per[f'recall_queue_{HELD_OUT}'].mean():.3f}, "
        f"worst {per[f'recall_queue_{HELD_OUT}'].min():.3f}"
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
