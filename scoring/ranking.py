"""The review queue's order: money at stake per claim, from the model's expected overbilled amount
and the evidence terms the bundle carries."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle


def _col(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in frame.columns:
        return None
    return pd.to_numeric(frame[name], errors="coerce").fillna(0.0).to_numpy(dtype="float64")


def priority_of(
    bundle: ModelBundle,
    frame: pd.DataFrame,
    expected: np.ndarray,
    anomaly: np.ndarray,
    claimed: np.ndarray,
) -> np.ndarray:
    """The ranking in money: the larger of the model's expected overbilled amount and the rules'
    amount at stake (weighted), plus novelty money for the most unusual claims; then the novelty
    lane (`lane_priority`), so that a scheme no label has seen still surfaces by how far it sits
    from its peers."""
    base = money_priority(bundle, frame, expected, anomaly, claimed)
    if bundle.lane_share <= 0 or not bundle.lane_ref:
        return base
    return np.maximum(base, lane_priority(bundle, frame))


def money_priority(
    bundle: ModelBundle,
    frame: pd.DataFrame,
    expected: np.ndarray,
    anomaly: np.ndarray,
    claimed: np.ndarray,
) -> np.ndarray:
    """max(expected, rule_weight x rule amount at stake) + blend x novelty money."""
    money = expected
    rule = _col(frame, "rule_amount")
    if bundle.rule_weight > 0 and rule is not None:
        money = np.maximum(money, bundle.rule_weight * np.minimum(rule, claimed))
    cost, peer = _col(frame, "claim_cost"), _col(frame, "peer_median_total_cost")
    if bundle.novelty == "peer_money":
        return money + bundle.blend * peer_money(bundle, frame, claimed)
    if bundle.novelty == "peer_excess" and cost is not None and peer is not None:
        excess = np.clip((cost - peer) / np.maximum(cost, 1.0), 0.0, 1.0)
        at_stake = excess * claimed
    else:
        at_stake = claimed * bundle.amount_ratio
    lo = min(bundle.novelty_from, 0.999)
    gate = np.clip((anomaly - lo) / (1.0 - lo), 0.0, 1.0)
    return money + bundle.blend * gate * at_stake


# Quantile levels of the lane references: coarse below 0.9, fine in the tail the lane uses.
LANE_LEVELS = np.r_[np.linspace(0.0, 0.9, 91)[:-1], np.linspace(0.9, 1.0, 2001)]
LANE_FEATURES = (  # the robust peer z of each line-group cost and volume
    "peer_z_total_cost",
    "peer_z_diag_cost",
    "peer_z_cost_drug",
    "peer_z_n_service_lines",
    "peer_z_stay_days",
    "peer_z_bed_days",
)


def quantile_ref(values: np.ndarray) -> list[float]:
    """Quantiles of `values` at LANE_LEVELS, made strictly increasing (for interpolation)."""
    v = np.asarray(values, dtype="float64")
    v = v[np.isfinite(v)]
    if not len(v):
        return []
    q = np.maximum.accumulate(np.quantile(v, LANE_LEVELS))
    return (q + np.arange(len(q)) * 1e-9 * (1.0 + np.abs(q).max())).tolist()


def _level(ref: list[float], x: np.ndarray) -> np.ndarray:
    """Quantile level (0..1) of x against a reference from `quantile_ref`."""
    return np.interp(x, ref, LANE_LEVELS) if len(ref) else np.zeros(len(x))


def lane_score(bundle: ModelBundle, frame: pd.DataFrame) -> np.ndarray:
    """How far the claim sits from its peers on its most unusual component: the largest quantile
    level, over `lane_features`, of its robust peer z (missing: not unusual)."""
    best = np.zeros(len(frame))
    for name in bundle.lane_features:
        ref, z = bundle.lane_refs.get(name), _col(frame, name)
        if ref and z is not None:
            z = np.where(frame[name].isna().to_numpy(), -np.inf, z)
            best = np.maximum(best, _level(ref, z))
    return best


def lane_priority(bundle: ModelBundle, frame: pd.DataFrame) -> np.ndarray:
    """The lane in money units: the claim ranked f-th from the top of the lane (f the share of the
    reference claims above it) gets the money priority ranked f x (1 - s) / s from the top, so
    every top k% holds about s x k% lane claims and (1 - s) x k% money claims (s = lane_share)."""
    s = min(max(bundle.lane_share, 1e-6), 1.0)
    above = 1.0 - _level(bundle.lane_ref, lane_score(bundle, frame))
    level = np.clip(1.0 - above * (1.0 - s) / s, 0.0, 1.0)
    return np.interp(level, LANE_LEVELS, bundle.lane_money)


PEER_MONEY = (  # value, peer median, robust z
    ("claim_cost", "peer_median_total_cost", "peer_z_total_cost"),
    ("diag_cost", "peer_median_diag_cost", "peer_z_diag_cost"),
    ("cost_drug", "peer_median_cost_drug", "peer_z_cost_drug"),
)


def peer_money(bundle: ModelBundle, frame: pd.DataFrame, claimed: np.ndarray) -> np.ndarray:
    """Fund money above the peers (same diagnosis, visit type, tier), counted only where the claim
    is far out (robust z from `novelty_z`, fully at twice it): the largest over total, diagnostic
    and drug cost. What a scheme no label has seen adds shows here first."""
    cost = _col(frame, "claim_cost")
    if cost is None:
        return np.zeros(len(frame))
    fund_share = np.clip(claimed / np.maximum(cost, 1.0), 0.0, 1.0)
    z0 = max(bundle.novelty_z, 1e-6)
    best = np.zeros(len(frame))
    for value, median, z in PEER_MONEY:
        v, m, zz = _col(frame, value), _col(frame, median), _col(frame, z)
        if v is None or m is None or zz is None:
            continue
        gate = np.clip((zz - z0) / z0, 0.0, 1.0)
        best = np.maximum(best, gate * np.maximum(v - m, 0.0) * fund_share)
    return best
