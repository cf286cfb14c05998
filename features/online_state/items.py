"""The item-level peer features for one claim in plain Python: `lines.item_pieces` and the
item aggregates of `lines.line_aggregates`, the claim-level shares of `claim_features.enrich`,
and the pseudo price points of `lines.price_points` that carry the item statistics. The Ibis
definitions stay the source of truth (constants are theirs); tests/features/
test_online_state.py checks these against them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from features import lines as ln
from features.online_state.sql import div

# (key, facility level, month) -> the statistic of lines.item_reference, or None
ItemLookup = Callable[[str, str, int], float | None]
_SIBLING = re.compile(r"^([^.|]+)\.")
ITEM_COLUMNS = ("dose_ratio_max", "dose_amount", "dose_ratio_amount", "dose_excess_amount",
                "n_sibling_lines", "n_pricier_lines", "dx_known_amount", "rare_lines",
                "rare_amount")  # fmt: skip


def no_items(key, level, month) -> None:
    return None


def sibling_key(item_key: str | None) -> str | None:
    if item_key is None or "|" in item_key:
        return None
    m = _SIBLING.search(item_key)
    return m.group(1) if m else None


def units_per_day(x: dict, b: dict) -> float | None:
    q = x["quantity"]
    if x["is_drug"] != 1 or q is None or not q > 0 or x["item_key"] is None:
        return None
    return q / max(b["stay_days"], 1.0)


def pieces(x: dict, b: dict, items: ItemLookup) -> tuple:
    """(dose ratio, pricier, rare) of line `x` of claim `b` (None where SQL has null)."""
    level, month, item, vt, icd3 = (b["facility_level"], b["month"], x["item_key"],
                                    b["visit_type"], b["icd3"])  # fmt: skip
    ratio = None
    if item is not None and vt is not None:
        ref = items(f"dose:{item}|{vt}", level, month)
        upd = units_per_day(x, b)
        if ref is not None and ref > 0 and upd is not None:
            ratio = upd / ref
    pricier = None
    sib = sibling_key(item)
    fup = x["fund_unit_price"]
    if sib is not None and fup is not None:
        ref = items(f"sib:{sib}", level, month)
        if ref is not None:
            pricier = fup > ref * ln.PRICE_TOLERANCE
    rare = None
    if icd3 is not None:
        claims = items(f"dx:{icd3}|", level, month)
        if claims is not None and claims >= ln.ITEM_MIN:
            n = items(f"dx:{icd3}|{item}", level, month) if item is not None else None
            rare = (0.0 if n is None else n) < claims * ln.RARE_RATE
    return ratio, pricier, rare


def into(acc: dict, x: dict, b: dict, items: ItemLookup, s, mx) -> None:
    """The item aggregates of one line into `acc` (s: claim._s, mx: claim._max)."""
    ratio, pricier, rare = pieces(x, b, items)
    amt = x["amount"]
    has = ratio is not None
    mx(acc, "dose_ratio_max", ratio)
    s(acc, "dose_amount", has, amt)
    s(acc, "dose_ratio_amount", has, None if amt is None or not has else amt * ratio)
    over = has and ratio > 1.0
    s(
        acc,
        "dose_excess_amount",
        over,
        None if amt is None or not over else amt * (1.0 - 1.0 / ratio),
    )
    s(acc, "n_sibling_lines", pricier is not None, 1.0)
    s(acc, "n_pricier_lines", pricier is True, 1.0)
    s(acc, "dx_known_amount", rare is not None, amt)
    s(acc, "rare_lines", rare is True, 1.0)
    s(acc, "rare_amount", rare is True, amt)


def enrich(t: dict) -> dict:
    """claim_features.enrich's item-level shares."""
    return {
        "dose_ratio_weighted": div(t["dose_ratio_amount"], t["dose_amount"]),
        "pricier_share": div(t["n_pricier_lines"], t["n_sibling_lines"]),
        "rare_service_share": div(t["rare_amount"], t["dx_known_amount"]),
    }


def row_points(r: dict) -> list[tuple]:
    """lines.price_points of one enriched row (from its `_lines`), pseudo items included, as
    (item_key, facility_level, month, price) before counting."""
    level, month, icd3, vt = r["facility_level"], r["month"], r["icd3"], r["visit_type"]
    out = []
    for x in r["_lines"]:
        item, fup = x["item_key"], x["fund_unit_price"]
        if item is not None and fup is not None:
            out.append((item, level, month, fup))
        upd = units_per_day(x, r)
        if upd is not None and vt is not None:
            out.append((f"dose:{item}|{vt}", level, month, upd))
        if icd3 is not None and item is not None:
            out.append((f"dx:{icd3}|{item}", level, month, 0.0))
    if icd3 is not None:
        out.append((f"dx:{icd3}|", level, month, 0.0))
    return out
