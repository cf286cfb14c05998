"""Labels as an agency has them: only reviewed claims, chosen by today's rules and by cost, decided
weeks later, with some abuse missed and a little honest money rejected on technicalities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import catalogue as cat
from simulator.frame import MINUTES_PER_DAY, Cols
from simulator.schemes import SCHEME_NAMES

# Chance an officer who reviews an abusive claim finds the abuse, per scheme.
DETECTION = {
    "ghost": 0.45,
    "upcoding": 0.35,
    "unbundling": 0.75,
    "needless_tests": 0.3,
    "duplicate": 0.9,
    "padded_stay": 0.5,
    "split_admission": 0.55,
    "card_sharing": 0.4,
    "overprice": 0.9,
    "drug_padding": 0.4,
    "chronic_overlap": 0.6,
    "cost_climb": 0.3,
    "referral_kickback": 0.15,
}
BASE_REVIEW = 0.02  # routine sampling
COST_REVIEW = 0.35  # extra chance for the most expensive claims
RULE_REVIEW = 0.5  # extra chance when a deterministic rule fires
TECHNICAL = 0.04  # reviewed honest claims with a technical rejection


@dataclass(frozen=True)
class ReviewParams:
    """How the agency reviews: the chances above (routine, by cost, by rule), a factor on the
    detection chance of every scheme, and the decision lag (days: a floor plus a gamma's scale)."""

    base: float = BASE_REVIEW
    cost: float = COST_REVIEW
    rule: float = RULE_REVIEW
    detection: float = 1.0
    lag_floor: int = 14
    lag_scale: float = 14.0


@dataclass
class Labels:
    claim: np.ndarray
    label: np.ndarray
    amount: np.ndarray  # cents
    reason: np.ndarray  # str
    decided_day: np.ndarray
    rule_hit: np.ndarray  # per claim (all claims)
    reviewed: np.ndarray  # per claim


def rule_hits(c: Cols, lines: Cols, facility_level: np.ndarray) -> np.ndarray:
    """What today's deterministic checks see (xml130.md §5.2): prices above the approved price,
    bed-days beyond the stay, items already in a service's price, duplicates, one card in two
    places at once."""
    n = c.n
    hit = np.zeros(n, dtype=bool)
    ia = cat.ITEM_ARRAYS
    lvl = facility_level[c["facility"][lines["claim"]]]
    over = lines["price_bh"] > ia["approved"][lines["item"], lvl]
    hit[lines["claim"][over]] = True
    grp = ia["group"][lines["item"]]
    beds = (
        np.bincount(lines["claim"], np.where(np.isin(grp, [14, 15, 16]), lines["qty2"], 0), n) / 2
    )
    stay = (c["ra"] // MINUTES_PER_DAY) - (c["vao"] // MINUTES_PER_DAY)
    hit |= beds > np.maximum(stay, 1)
    bundled = np.isin(lines["item"], [cat.ITEM["ANAESTH"], cat.ITEM["INFUSION"]])
    hit[lines["claim"][bundled]] = True
    key = c["card_person"] * 100_000 + (c["vao"] // MINUTES_PER_DAY) % 100_000
    order = np.lexsort((c["facility"], key))
    k, f = key[order], c["facility"][order]
    dup = np.r_[False, (k[1:] == k[:-1]) & (f[1:] == f[:-1])]
    hit[order[dup]] = True
    return hit


def review(
    c: Cols,
    lines: Cols,
    fund_cents: np.ndarray,
    overbilled_cents: np.ndarray,
    facility_level: np.ndarray,
    end_day: int,
    rng: np.random.Generator,
    params: ReviewParams | None = None,
) -> Labels:
    pr = params or ReviewParams()
    n = c.n
    rules = rule_hits(c, lines, facility_level)
    rank = np.argsort(np.argsort(fund_cents, kind="stable"), kind="stable") / max(n - 1, 1)
    p = pr.base + pr.cost * rank**8 + pr.rule * rules
    reviewed = rng.random(n) < p
    scheme = c["scheme"]
    abusive = (scheme >= 0) & (overbilled_cents > 0)
    det = np.array([DETECTION[s] for s in SCHEME_NAMES] + [0.0])[np.where(scheme >= 0, scheme, -1)]
    det = np.clip(det * pr.detection, 0.0, 1.0)
    det = np.where(rules, np.minimum(1.0, det + 0.3), det)
    found = reviewed & abusive & (rng.random(n) < det)
    technical = reviewed & (scheme < 0) & (rng.random(n) < TECHNICAL)
    amount = np.where(found, np.round(overbilled_cents * rng.uniform(0.6, 1.0, n)), 0)
    amount = np.where(technical, np.round(fund_cents * rng.uniform(0.02, 0.15, n)), amount)
    amount = np.minimum(amount, fund_cents).astype(np.int64)
    label = (found | technical).astype(np.int64)
    reasons = np.array(
        [cat.REVIEW_REASONS[s] for s in SCHEME_NAMES] + [cat.REVIEW_REASONS["technical"]]
    )
    reason = np.where(found, reasons[np.where(scheme >= 0, scheme, -1)], "")
    reason = np.where(technical, reasons[-1], reason)
    # decisions come 2 to 16 weeks after the episode; only those made by the end are known
    lag = pr.lag_floor + np.round(rng.gamma(2.0, pr.lag_scale, n)).astype(np.int64)
    decided = c["ra"] // MINUTES_PER_DAY + lag
    keep = np.flatnonzero(reviewed & (decided < end_day))
    return Labels(keep, label[keep], amount[keep], reason[keep], decided[keep], rules, reviewed)
