"""Training data: the feature frame joined with labels (and truth when simulated), split by time.

Only claims discharged before the cutoff whose labels were decided before it train the model; the
last `val_months` before the cutoff validate; the months after the cutoff are the holdout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class Split:
    cutoff: pd.Timestamp
    val_start: pd.Timestamp
    holdout_end: pd.Timestamp
    train: pd.DataFrame  # labelled, decided before the cutoff
    val: pd.DataFrame  # labelled, decided before the cutoff
    val_all: pd.DataFrame  # every claim of the validation months (for band thresholds)
    holdout: pd.DataFrame  # every claim of the holdout months, with the evaluation target
    holdout_source: str  # "truth", "labels" or "last labelled month"

    def window(self) -> dict[str, str]:
        d = "%Y-%m-%d"
        return {
            "train_until": self.val_start.strftime(d),
            "val_from": self.val_start.strftime(d),
            "cutoff": self.cutoff.strftime(d),
            "holdout_until": self.holdout_end.strftime(d),
        }


def default_cutoff(frame: pd.DataFrame, holdout_months: int) -> pd.Timestamp:
    """The start of the last `holdout_months` months of admissions (discharges may spill over)."""
    last = frame["admitted_at"].max()
    return (last.to_period("M") - (holdout_months - 1)).to_timestamp()


def attach_targets(
    frame: pd.DataFrame, labels: pd.DataFrame | None, truth: pd.DataFrame | None
) -> pd.DataFrame:
    """Add label columns (label, rejected_amount, decided_at) and, when given, truth columns
    (true_abuse, true_overbilled, scheme)."""
    ids = frame["claim_id"]
    new: dict[str, pd.Series] = {}  # joined once: the frame's columns are neither copied nor split
    if labels is not None and len(labels):
        lab = labels.drop_duplicates("claim_id", keep="last").set_index("claim_id")
        new["label"] = ids.map(lab["label"]).astype("Float64")
        new["rejected_amount"] = ids.map(lab["rejected_amount"]).astype("float64")
        # A label without a decision date is taken as known at discharge.
        decided = ids.map(lab["decided_at"])
        new["decided_at"] = decided.fillna(frame["discharged_at"]).where(new["label"].notna())
    else:
        new["label"] = pd.Series(pd.NA, index=frame.index, dtype="Float64")
        new["rejected_amount"] = pd.Series(np.nan, index=frame.index)
        new["decided_at"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us]")
    if truth is not None and len(truth):
        t = truth.groupby("claim_id").agg(
            true_overbilled=("overbilled", "sum"), scheme=("scheme", "first")
        )
        new["true_overbilled"] = ids.map(t["true_overbilled"]).fillna(0.0)
        new["scheme"] = ids.map(t["scheme"]).fillna("none")
        new["true_abuse"] = (new["true_overbilled"] > 0).astype("int64")
    kept = frame.drop(columns=[c for c in new if c in frame.columns])
    out = pd.concat([kept, pd.DataFrame(new, index=frame.index)], axis=1)
    return out


def time_split(
    frame: pd.DataFrame, cutoff: pd.Timestamp | None, val_months: int, holdout_months: int
) -> Split:
    cutoff = pd.Timestamp(cutoff) if cutoff is not None else default_cutoff(frame, holdout_months)
    val_start = (cutoff.to_period("M") - val_months).to_timestamp()
    holdout_end = (cutoff.to_period("M") + holdout_months).to_timestamp()
    dis = frame["discharged_at"]
    known = frame["label"].notna() & (frame["decided_at"] < cutoff)
    train = frame[(dis < val_start) & known]
    val = frame[(dis >= val_start) & (dis < cutoff) & known]
    val_all = frame[(dis >= val_start) & (dis < cutoff)]
    holdout = frame[(dis >= cutoff) & (dis < holdout_end)].copy()
    if "true_abuse" in frame.columns:
        source = "truth"
        holdout["y"] = holdout["true_abuse"]
        holdout["target_amount"] = holdout["true_overbilled"]
    elif holdout["label"].notna().any():
        source = "labels"
        holdout = holdout[holdout["label"].notna()].copy()
        holdout["y"] = holdout["label"].astype("int64")
        holdout["target_amount"] = holdout["rejected_amount"].fillna(0.0)
    else:
        source = "last labelled month"
        lab = frame[frame["label"].notna()]
        month = lab["discharged_at"].dt.to_period("M").max()
        holdout = lab[lab["discharged_at"].dt.to_period("M") == month].copy()
        holdout["y"] = holdout["label"].astype("int64")
        holdout["target_amount"] = holdout["rejected_amount"].fillna(0.0)
    if train.empty or train["label"].nunique() < 2:
        raise ValueError(
            f"not enough labelled claims before {val_start:%Y-%m-%d} to train "
            f"({len(train)} labelled, classes {sorted(train['label'].dropna().unique())}); "
            "choose a later --cutoff or give more labels"
        )
    return Split(cutoff, val_start, holdout_end, train, val, val_all, holdout, source)


def load_truth(dataset: Path) -> pd.DataFrame | None:
    p = Path(dataset) / "truth.parquet"
    if not p.exists():
        return None
    t = pd.read_parquet(p)
    t.columns = [c.lower() for c in t.columns]
    return t.rename(columns={"ma_lk": "claim_id"})
