"""The review queue's order: expected money at stake per claim.

    money at stake = min(fund claimed, max(expected overbilled, proven) + sum_j w_j x term_j)

The model's own estimate, E[overbilled | claim] = P(abuse) x the overbilled amount if abusive, is
the base, never below `proven`: the fund money a rule of `bundle.head_rules` proves on the claim
(an exact duplicate's whole fund amount, a bundled component's lines, bed-days beyond the stay).
What a rule proves is owed back whatever the model estimates, so the expected overbilled amount
is at least that. Other evidence enters only as money, each term an amount of fund money the
evidence puts at stake, with a non-negative weight:
- `rules`: the deterministic checks' amount at stake (price above the approved price, bed-days
  beyond the stay, ...);
- `novelty`: the claimed money above the peer median cost, for claims the anomaly model ranks among
  the most unusual (gated by its percentile);
- `facility_shift`: the money a claim carries above its cell's baseline cost at a facility the early
  warning flags this month (features.early_warning.shift_evidence);
- `dose_excess`: the fund's share of the drug cost beyond each drug's usual units per day for the
  visit type (feature `dose_excess_amount`: drugs billed in padded quantities);
- `rare_items`: the fund's share of the cost in items peers at the level rarely bill for the
  claim's diagnosis (feature `rare_service_share` x the fund amount: tests and drugs added to
  claims that do not need them).
The weights of the rules and novelty terms are fit when the model is trained, on the validation
months' labels (training.queue_fit: the most labelled money in the queue's top 5%, never less than
the model's own order there); the facility-shift and item-evidence weights, which no label can
teach (their schemes are the ones nobody has caught yet), and the head below are chosen on
randomized worlds by the worst world (bench/quality_worlds.py) and kept in configs/train.toml.
A term with weight 0 changes nothing. The cap keeps the money at stake within what the claim asks.

The head: evidence may lift a claim above others, but not push out the model's own surest money.
Claims whose expected overbilled amount is at or above `bundle.head_expected` (the model's top few
per cent of the validation months) are in the high band, beside the claims with the most money at
stake, so the queue's top 5% keeps the known schemes the model itself holds there; so are the claims
whose risk is at or above `bundle.head_risk` (the model's surest few per cent by risk), so a scheme
of cheap claims the model is near-certain of (duplicates, needless tests) is not pushed out by
costlier lifted claims; and so are the claims a rule of `bundle.head_rules` proves (an exact
duplicate, a component billed with the service whose price includes it: money the fund does not
owe whatever the model says, and a minute's work for an officer to confirm). The queue is worked
band by band; within a band, money at stake orders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # the review app orders its queue without loading LightGBM
    from scoring.bundle import ModelBundle
    from scoring.columns import FloatColumns

TERMS = ("rules", "novelty", "facility_shift", "dose_excess", "rare_items")
BANDS = ("high", "review", "watch", "low")  # best first
_TIER = 1e15  # money at stake stays far below this (VND), so band-then-money is one float order


def _col(frame: pd.DataFrame, name: str, cols: FloatColumns | None = None) -> np.ndarray | None:
    """The column as floats, missing and non-numbers 0; None when the frame lacks it. cols: the
    frame's numeric columns when the caller has them (the same floats, no pandas per column)."""
    v = None if cols is None else cols.get(name)
    if v is not None:
        return np.where(np.isnan(v), 0.0, v)
    if name not in frame.columns:
        return None
    return pd.to_numeric(frame[name], errors="coerce").fillna(0.0).to_numpy(dtype="float64")


def term_money(
    bundle: ModelBundle,
    frame: pd.DataFrame,
    anomaly: np.ndarray,
    claimed: np.ndarray,
    cols: FloatColumns | None = None,
) -> dict[str, np.ndarray]:
    """Each term's money per claim (VND, before its weight), never above the claimed amount.
    cols: the frame's numeric columns when the caller has them."""
    zero = np.zeros(len(frame))
    rule = _col(frame, "rule_amount", cols)
    rules = zero if rule is None else np.clip(np.minimum(rule, claimed), 0.0, None)
    cost, peer = _col(frame, "claim_cost", cols), _col(frame, "peer_median_total_cost", cols)
    novelty = zero
    if cost is not None and peer is not None:
        excess = np.clip((cost - peer) / np.maximum(cost, 1.0), 0.0, 1.0) * claimed
        lo = min(bundle.novelty_from, 0.999)
        novelty = np.clip((anomaly - lo) / (1.0 - lo), 0.0, 1.0) * excess
    shift = _col(frame, "facility_shift", cols)
    shift = zero if shift is None else np.minimum(shift, claimed)
    items = item_terms(frame, claimed, cols)
    return {"rules": rules, "novelty": novelty, "facility_shift": shift, **items}


def item_terms(
    frame: pd.DataFrame, claimed: np.ndarray, cols: FloatColumns | None = None
) -> dict[str, np.ndarray]:
    """The item-level evidence as fund money per claim: drug cost beyond the usual units per day
    and cost in items rarely billed for the diagnosis, each at the fund's share of the claim's
    cost, never above the fund amount claimed (0 where the features are absent)."""
    claimed = np.clip(np.asarray(claimed, dtype="float64"), 0.0, None)
    zero = np.zeros(len(frame))
    cost = _col(frame, "claim_cost", cols)
    fund_share = zero if cost is None else np.clip(claimed / np.maximum(cost, 1.0), 0.0, 1.0)
    dose = _col(frame, "dose_excess_amount", cols)
    rare = _col(frame, "rare_service_share", cols)
    dose = zero if dose is None else np.clip(dose, 0.0, None) * fund_share
    rare = zero if rare is None else np.clip(rare, 0.0, 1.0) * claimed
    return {"dose_excess": np.minimum(dose, claimed), "rare_items": np.minimum(rare, claimed)}


def priority_of(
    bundle: ModelBundle,
    frame: pd.DataFrame,
    expected: np.ndarray,
    anomaly: np.ndarray,
    claimed: np.ndarray,
    cols: FloatColumns | None = None,
) -> np.ndarray:
    """Money at stake of a feature frame under the bundle's weights (cols: its numeric columns
    when the caller has them)."""
    weights = bundle.rank_weights or {}
    terms = {}
    if any(w > 0 for w in weights.values()):
        terms = term_money(bundle, frame, anomaly, claimed, cols)
    return money_at_stake(floored(expected, proven_amount(bundle, frame, claimed, cols)), terms,
                          weights, claimed)  # fmt: skip


def proven_amount(
    bundle: ModelBundle, frame: pd.DataFrame, claimed: np.ndarray, cols: FloatColumns | None = None
) -> np.ndarray | None:
    """The fund money the rules of `bundle.head_rules` prove on each claim (the largest of their
    amounts at stake, `rule_<name>_amount`, where the rule's flag is set), never above the fund
    amount claimed; None when the bundle names no such rule."""
    if not bundle.head_rules:
        return None
    out = np.zeros(len(frame))
    for name in bundle.head_rules:
        v = _col(frame, f"rule_{name}_amount", cols)
        flag = _col(frame, f"rule_{name}", cols)
        if v is not None and flag is not None:
            out = np.maximum(out, np.where(flag > 0, v, 0.0))
    return np.clip(np.minimum(out, np.asarray(claimed, dtype="float64")), 0.0, None)


def floored(expected: np.ndarray, proven: np.ndarray | None) -> np.ndarray:
    """The expected overbilled amount, at least the proven amount (None: as it is)."""
    expected = np.asarray(expected, dtype="float64")
    return expected if proven is None else np.maximum(expected, proven)


def money_at_stake(
    expected: np.ndarray,
    terms: dict[str, np.ndarray],
    weights: dict[str, float],
    claimed: np.ndarray,
) -> np.ndarray:
    """The expected overbilled amount plus the weighted evidence terms (a term with weight 0, or
    absent, adds nothing), capped by the fund amount the claim asks."""
    money = np.asarray(expected, dtype="float64").copy()
    for name, w in weights.items():
        if w > 0:
            money += w * terms[name]
    return np.minimum(money, np.maximum(claimed, 0.0))


def proven_of(
    bundle: ModelBundle, frame: pd.DataFrame, cols: FloatColumns | None = None
) -> np.ndarray | None:
    """Claims a rule of `bundle.head_rules` proves (its flag set): None when the bundle names
    none."""
    if not bundle.head_rules:
        return None
    out = np.zeros(len(frame), dtype=bool)
    for name in bundle.head_rules:
        v = _col(frame, f"rule_{name}", cols)
        if v is not None:
            out |= v > 0
    return out


def in_head(
    bundle: ModelBundle,
    expected: np.ndarray,
    risk: np.ndarray | None = None,
    proven: np.ndarray | None = None,
) -> np.ndarray:
    """Claims among the model's own surest money, or (with `risk`) among the claims it is surest
    are abusive, or (with `proven`) proven by a rule of `bundle.head_rules` (in the high band)."""
    expected = np.asarray(expected, dtype="float64")
    head = np.zeros(len(expected), dtype=bool)
    if proven is not None:
        head |= np.asarray(proven, dtype=bool)
    if bundle.head_expected is not None:
        head |= expected >= bundle.head_expected
    if risk is not None and getattr(bundle, "head_risk", None) is not None:
        head |= np.asarray(risk, dtype="float64") >= bundle.head_risk
    return head


def band_of(
    bundle: ModelBundle,
    priority: np.ndarray,
    expected: np.ndarray | None = None,
    risk: np.ndarray | None = None,
    proven: np.ndarray | None = None,
) -> np.ndarray:
    """Bands by the money-at-stake cut-offs of the validation months; a head claim (when
    `expected`, and `risk` or `proven`, are given) is in the high band."""
    priority = np.asarray(priority, dtype="float64")
    t = bundle.band_thresholds
    if not t:
        return np.full(len(priority), "low", dtype=object)
    high = priority >= t["high"]
    if expected is not None:
        high |= in_head(bundle, expected, risk, proven)
    return np.select(
        [high, priority >= t["review"], priority >= t["watch"]],
        ["high", "review", "watch"],
        default="low",
    ).astype(object)


def queue_order(band: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """One float whose descending order is the queue's: band first (high, review, watch, low),
    then money at stake. For top-k measures of the queue as officers work it."""
    tier = np.select([np.asarray(band) == b for b in BANDS], [3.0, 2.0, 1.0, 0.0], default=0.0)
    return tier * _TIER + np.nan_to_num(np.asarray(priority, dtype="float64"), nan=0.0)
