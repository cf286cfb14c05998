"""The review queue's order: expected money at stake per claim.

    money at stake = min(fund claimed, expected overbilled + sum_j w_j x term_j)

The model's own estimate, E[overbilled | claim] = P(abuse) x the overbilled amount if abusive, is
the base. Other evidence enters only as money, each term an amount of fund money the evidence puts
at stake, with a non-negative weight:
- `rules`: the deterministic checks' amount at stake (price above the approved price, bed-days
  beyond the stay, ...);
- `novelty`: the claimed money above the peer median cost, for claims the anomaly model ranks among
  the most unusual (gated by its percentile);
- `facility_shift`: the money a claim carries above its cell's baseline cost at a facility the early
  warning flags this month (features.early_warning.shift_evidence).
The weights are chosen on randomized worlds by the worst world's money in the top 5%
(bench/quality_worlds.py) and kept in configs/train.toml; a term that does not earn its place has
weight 0 and then changes nothing. The cap keeps the money at stake within what the claim asks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle

TERMS = ("rules", "novelty", "facility_shift")


def _col(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in frame.columns:
        return None
    return pd.to_numeric(frame[name], errors="coerce").fillna(0.0).to_numpy(dtype="float64")


def term_money(
    bundle: ModelBundle,
    frame: pd.DataFrame,
    expected: np.ndarray,
    anomaly: np.ndarray,
    claimed: np.ndarray,
) -> dict[str, np.ndarray]:
    """Each term's money per claim (VND, before its weight), never above the claimed amount."""
    zero = np.zeros(len(frame))
    rule = _col(frame, "rule_amount")
    rules = zero if rule is None else np.clip(np.minimum(rule, claimed), 0.0, None)
    cost, peer = _col(frame, "claim_cost"), _col(frame, "peer_median_total_cost")
    novelty = zero
    if cost is not None and peer is not None:
        excess = np.clip((cost - peer) / np.maximum(cost, 1.0), 0.0, 1.0) * claimed
        lo = min(bundle.novelty_from, 0.999)
        novelty = np.clip((anomaly - lo) / (1.0 - lo), 0.0, 1.0) * excess
    shift = _col(frame, "facility_shift")
    shift = zero if shift is None else np.minimum(shift, claimed)
    return {"rules": rules, "novelty": novelty, "facility_shift": shift}


def priority_of(
    bundle: ModelBundle,
    frame: pd.DataFrame,
    expected: np.ndarray,
    anomaly: np.ndarray,
    claimed: np.ndarray,
) -> np.ndarray:
    """Money at stake: the expected overbilled amount plus the weighted evidence terms, capped by
    the fund amount the claim asks."""
    money = np.asarray(expected, dtype="float64").copy()
    weights = {k: w for k, w in (bundle.rank_weights or {}).items() if w > 0}
    if weights:
        terms = term_money(bundle, frame, expected, anomaly, claimed)
        for name, w in weights.items():
            money += w * terms[name]
    return np.minimum(money, np.maximum(claimed, 0.0))
