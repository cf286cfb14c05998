"""Fitting the review queue's order on the validation months: the evidence terms' weights that
labels can teach, the head (the model's own surest money) and the band cut-offs.

The queue (scoring.ranking) orders by band, then by money at stake. Here, on every claim of the
validation months with the labels known by the cutoff:
- the head cut: the expected overbilled amount of the model's own top `head_pct`% of claims, and
  the risk of its top `head_risk_pct`% (the claims it is surest are abusive, whatever their amount);
- the rules and novelty weights: every term off, unless a setting of the small grid finds more
  labelled money in the queue's top `review_pct`% by at least `min_gain` (a share: labels of two
  months are few, and a gain within their noise does not carry), at least the model order's
  labelled money there, and keeps `keep` (KEEP) of the labelled abusive claims the model order holds
  there; the best such setting by money, ties to the smaller weights. The facility-shift and
  item-evidence weights (`fixed`) are not fit here: their schemes are the ones no label has caught
  yet, so they are chosen on randomized worlds (bench/quality_worlds.py), like `head_pct`;
- the band cut-offs on money at stake: the high band is the head and the top `high_pct`% by money;
  the high and review bands together hold `review_pct`% of the claims.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from scoring.ranking import floored, money_at_stake
from training.evaluate import top_k_mask

GRID = {"rules": (0.0, 0.25, 0.5, 1.0), "novelty": (0.0, 0.1, 0.25)}
KEEP = 0.9  # share of the model order's labelled abusive claims in the top that the queue keeps


@dataclass
class QueueFit:
    weights: dict[str, float]
    head_expected: float | None
    thresholds: dict[str, float]
    table: list[dict] = field(default_factory=list)  # every grid setting's validation figures
    head_risk: float | None = None


def head_cut(expected: np.ndarray, head_pct: float) -> float | None:
    """The expected overbilled amount from which a claim is in the model's top head_pct%."""
    expected = np.asarray(expected, dtype="float64")
    if head_pct <= 0 or not len(expected):
        return None
    k = max(1, int(np.floor(len(expected) * head_pct / 100)))
    return float(np.sort(expected)[::-1][k - 1])


def head_cut_at_most(values: np.ndarray, pct: float) -> float | None:
    """The value from which a claim is in the top `pct`% — raised past a tie that would hold more
    (calibrated risk comes in steps: one step can hold 5% of the claims, or 96%); None when even
    the highest value is held by more than `pct`%."""
    values = np.asarray(values, dtype="float64")
    cut = head_cut(values, pct)
    if cut is None:
        return None
    k = max(1, int(np.floor(len(values) * pct / 100)))
    if (values >= cut).sum() <= k:
        return cut
    above = np.unique(values[values > cut])
    return float(above[0]) if len(above) and (values >= above[0]).sum() <= k else None


def cut_bands(
    priority: np.ndarray,
    head: np.ndarray,
    *,
    high_pct: float,
    review_pct: float,
    watch_pct: float,
) -> dict[str, float]:
    """Money-at-stake cut-offs: the high band is the head and the top `high_pct`% by money; with
    the review band, `review_pct`% of the claims; the watch band from the `watch_pct`% cut."""
    pr = np.asarray(priority, dtype="float64")
    n = len(pr)
    if not n:
        return {"high": np.inf, "review": np.inf, "watch": np.inf}
    high = float(np.percentile(pr, 100 - high_pct))
    top = head | (pr >= high)
    rest = np.sort(pr[~top])[::-1]
    k = math.ceil(n * review_pct / 100) - int(top.sum())  # as training.evaluate.top_k_mask
    review = float(rest[k - 1]) if 1 <= k <= len(rest) else (np.inf if k < 1 else -np.inf)
    return {"high": high, "review": review, "watch": float(np.percentile(pr, 100 - watch_pct))}


def in_review(priority: np.ndarray, head: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """The queue's top: the high and review bands."""
    pr = np.asarray(priority)
    return (pr >= thresholds["review"]) | (pr >= thresholds["high"]) | head


def fit_queue(
    expected: np.ndarray,
    terms: dict[str, np.ndarray],
    claimed: np.ndarray,
    label_amount: np.ndarray,
    label_positive: np.ndarray,
    *,
    fixed: dict[str, float],
    head_pct: float,
    high_pct: float = 1.0,
    review_pct: float = 5.0,
    watch_pct: float = 15.0,
    grid: dict[str, tuple[float, ...]] = GRID,
    min_gain: float = 0.0,
    keep: float = KEEP,
    risk: np.ndarray | None = None,
    head_risk_pct: float = 0.0,
    proven: np.ndarray | None = None,
    proven_amount: np.ndarray | None = None,
) -> QueueFit:
    """The queue fit on the validation months (arrays over every claim of those months; label
    amounts 0 and label_positive False where no abuse is known). With `risk` and `head_risk_pct`,
    the claims in the model's top `head_risk_pct`% by risk are in the head too; with `proven`,
    the claims a rule of the bundle's head_rules proves; with `proven_amount`, the money those
    rules prove, below which no claim's expected overbilled amount is taken in the money at
    stake (scoring.ranking)."""
    expected = np.asarray(expected, dtype="float64")
    amount = np.nan_to_num(np.asarray(label_amount, dtype="float64"))
    pos = np.asarray(label_positive, dtype=bool)
    cut = head_cut(expected, head_pct)
    head = expected >= cut if cut is not None else np.zeros(len(expected), dtype=bool)
    risk_cut = head_cut_at_most(risk, head_risk_pct) if risk is not None else None
    if risk_cut is not None:
        head |= np.asarray(risk, dtype="float64") >= risk_cut
    if proven is not None:
        head |= np.asarray(proven, dtype=bool)
    at_least = floored(expected, proven_amount)  # the head and the model's own order: as it is
    model_top = top_k_mask(expected, review_pct)
    model_money = float(amount[model_top].sum())
    held = model_top & pos
    bands = {"high_pct": high_pct, "review_pct": review_pct, "watch_pct": watch_pct}
    rows, base, best = [], None, None
    settings = [(0.0,) * len(grid)] + [
        c for c in itertools.product(*grid.values()) if any(c)
    ]  # every term off first: the baseline a term must beat
    for combo in settings:
        w = {**dict(zip(grid, combo, strict=True)), **fixed}
        pr = money_at_stake(at_least, terms, w, claimed)
        th = cut_bands(pr, head, **bands)
        top = in_review(pr, head, th)
        money = float(amount[top].sum())
        kept = float((top & held).sum() / held.sum()) if held.any() else 1.0
        if base is None:
            base = (w, th, money)
        gain = money >= base[2] * (1 + min_gain) + 1e-6 if any(combo) else True
        ok = gain and money >= model_money - 1e-6 and kept >= keep and any(combo)
        rows.append({**w, "money": money, "model_money": model_money, "kept": kept, "ok": ok})
        if ok and (best is None or (money, -sum(combo)) > best[0]):
            best = ((money, -sum(combo)), w, th)
    _, weights, thresholds = best if best is not None else (None, base[0], base[1])
    return QueueFit(
        weights=weights, head_expected=cut, thresholds=thresholds, table=rows, head_risk=risk_cut
    )
