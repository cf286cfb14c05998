"""Reasons an officer can act on: the features that pushed a claim's risk up most (LightGBM's own
TreeSHAP contributions), each as a sentence with the claim's value and its peers' value in
Vietnamese and English; and the rule hits with the amount at stake."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.registry import FEATURES
from features.rules import RULES
from scoring.bundle import ModelBundle, contributions


def _num(v):
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return v.item() if isinstance(v, np.generic) else v


def reasons(bundle: ModelBundle, frame: pd.DataFrame, top: int = 5) -> list[list[dict]]:
    """Top reasons per row of `frame` (the claims to explain)."""
    if frame.empty:
        return []
    contrib = contributions(bundle, frame)[:, :-1]
    names = bundle.feature_names
    out = []
    rows = frame.reset_index(drop=True)
    for i in range(len(rows)):
        order = np.argsort(-contrib[i], kind="stable")[:top]
        items = []
        for j in order:
            c = float(contrib[i, j])
            if c <= 0:
                break
            f = FEATURES.get(names[j])
            value = _num(rows.at[i, names[j]]) if names[j] in rows.columns else None
            peer = None
            if f is not None and f.peer and f.peer in rows.columns:
                peer = _num(rows.at[i, f.peer])
            items.append(
                {
                    "feature": names[j],
                    "value": value,
                    "peer_value": peer,
                    "contribution": round(c, 4),
                    "text_vi": f.explain(value, peer, "vi") if f else names[j],
                    "text_en": f.explain(value, peer, "en") if f else names[j],
                }
            )
        out.append(items)
    return out


def rule_hits(frame: pd.DataFrame) -> list[list[dict]]:
    """The rules each claim breaks, with the amount at stake and the message (vi/en)."""
    rows = frame.reset_index(drop=True)
    present = [r for r in RULES if r.flag in rows.columns]
    out: list[list[dict]] = [[] for _ in range(len(rows))]
    for r in present:
        flags = rows[r.flag].fillna(0).to_numpy()
        amounts = (
            rows[r.amount].fillna(0).to_numpy(dtype="float64")
            if r.amount in rows.columns
            else np.zeros(len(rows))
        )
        for i in np.flatnonzero(flags > 0):
            amt = float(amounts[i])
            out[i].append(
                {
                    "code": r.code,
                    "rule": r.name,
                    "amount": round(amt, 2),
                    "text_vi": r.message(amt, "vi"),
                    "text_en": r.message(amt, "en"),
                }
            )
    return out
