"""The insurance arithmetic of xml130.md §5.2 (checks 3 and 4), exact in integer cents.

Quantities are whole half-units and prices whole VND, so THANH_TIEN_BV is exact; every later
rounding is half away from zero to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import catalogue as cat
from simulator.actors import World, card_percent
from simulator.frame import Cols, round_half_up_div


@dataclass
class Settlement:
    line: Cols  # per line: bv, bh, bhtt, bncct, bntt (cents) and muc
    claim: (
        Cols  # per claim: t_thuoc, t_vtyt, t_tongchi_bv, t_tongchi_bh, t_bntt, t_bncct, t_bhtt, muc
    )
    overbilled_line: np.ndarray  # cents of fund money per line beyond the honest counterfactual


def line_amounts(qty2, price, ratio) -> np.ndarray:
    """round(SO_LUONG x price x ratio / 100, 2) in cents, SO_LUONG = qty2 / 2."""
    num = np.asarray(qty2, dtype=np.int64) * np.asarray(price, dtype=np.int64) * 50
    return round_half_up_div(num * np.asarray(ratio, dtype=np.int64), 100)


def benefit(world: World, c: Cols, total_bh_cents: np.ndarray) -> np.ndarray:
    """MUC_HUONG per claim: the card's %, times the route's share; 100 at commune stations and for
    correct-route episodes below 15 % of the base salary."""
    pct = card_percent(world.people).astype(np.int64)[c["card_person"]]
    factor = cat.ROUTE_FACTOR[c["route"]]
    muc = np.round(pct * factor).astype(np.int64)
    lvl = world.facilities["level"][c["facility"]]
    correct = factor == 1.0
    small = correct & (total_bh_cents < cat.SMALL_CLAIM * 100)
    return np.where((lvl == cat.X) | small, 100, muc)


def settle(world: World, c: Cols, lines: Cols) -> Settlement:
    n = c.n
    bv = line_amounts(lines["qty2"], lines["price_bv"], 100)
    bh = line_amounts(lines["qty2"], lines["price_bh"], lines["ratio"])
    cl = lines["claim"]
    t_bh = np.bincount(cl, bh, minlength=n).astype(np.int64)
    muc = benefit(world, c, t_bh)
    lm = muc[cl]
    bhtt = round_half_up_div(bh * lm, 100)
    bncct = bh - bhtt
    bntt = bv - bh
    grp = cat.ITEM_ARRAYS["group"][lines["item"]]
    drug = cat.ITEM_ARRAYS["is_drug"][lines["item"]]

    def total(v, mask=None):
        w = v if mask is None else np.where(mask, v, 0)
        return np.bincount(cl, w, minlength=n).astype(np.int64)

    t_bncct = total(bncct)
    claim = Cols(
        t_thuoc=total(bv, drug),
        t_vtyt=total(bv, np.isin(grp, [10, 11])),
        t_tongchi_bv=total(bv),
        t_tongchi_bh=t_bh,
        t_bntt=total(bntt),
        t_bncct=t_bncct,
        t_bhtt=t_bh - t_bncct,
        muc=muc,
    )
    honest_bh = line_amounts(lines["qty2_honest"], lines["price_bh_honest"], lines["ratio"])
    honest_bhtt = round_half_up_div(honest_bh * lm, 100)
    line = Cols(bv=bv, bh=bh, bhtt=bhtt, bncct=bncct, bntt=bntt, muc=lm)
    return Settlement(line=line, claim=claim, overbilled_line=bhtt - honest_bhtt)
