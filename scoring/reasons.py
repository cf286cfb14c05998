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
from scoring.columns import FloatColumns


def _num(v):
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return v.item() if isinstance(v, np.generic) else v


def reasons(
    bundle: ModelBundle, frame: pd.DataFrame, top: int = 5, x: np.ndarray | None = None
) -> list[list[dict]]:
    """Top reasons per row of `frame` (the claims to explain). x: their feature matrix when the
    caller has it (scoring.scorer.feature_matrix); small inputs are explained on one thread."""
    if frame.empty:
        return []
    contrib = _contrib(bundle, frame, x)
    rows = frame.reset_index(drop=True)
    values: dict[str, list] = {}  # a column's values as Python objects, read once when needed

    def at(i: int, name: str):
        col = values.get(name)
        if col is None:
            col = values[name] = rows[name].tolist()
        return col[i]

    return _explain(bundle, contrib, top, at, set(rows.columns))


def reasons_of_rows(bundle: ModelBundle, rows, idx: np.ndarray, top: int, x: np.ndarray):
    """`reasons` for the feature rows at positions idx (features.online_state.rows.FeatureRows)
    without their DataFrame: the values read one by one as the frame would hold them."""
    if not len(idx):
        return []
    contrib = _contrib(bundle, None, x)
    return _explain(bundle, contrib, top, lambda i, name: rows.value(int(idx[i]), name),
                    set(rows.names))  # fmt: skip


def _contrib(bundle: ModelBundle, frame: pd.DataFrame | None, x: np.ndarray | None) -> np.ndarray:
    if x is None:
        return contributions(bundle, frame)[:, :-1]
    nt = 1 if len(x) <= 2_000 else 0
    return bundle.risk.predict(x, pred_contrib=True, num_threads=nt)[:, :-1]


def _explain(bundle: ModelBundle, contrib: np.ndarray, top: int, at, present: set) -> list:
    """The positive contributions, largest first, as sentences; at(i, name): row i's value."""
    names = bundle.feature_names
    out = []
    orders = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
    for i in range(len(contrib)):
        items = []
        for j in orders[i]:
            c = float(contrib[i, j])
            if c <= 0:
                break
            f = FEATURES.get(names[j])
            value = _num(at(i, names[j])) if names[j] in present else None
            peer = None
            if f is not None and f.peer and f.peer in present:
                peer = _num(at(i, f.peer))
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


def rule_hits(frame: pd.DataFrame, cols: FloatColumns | None = None) -> list[list[dict]]:
    """The rules each claim breaks, with the amount at stake and the message (vi/en).
    cols: the frame's numeric columns when the caller has them."""
    cols = cols or FloatColumns(frame)
    n = len(frame)
    present = [r for r in RULES if r.flag in frame.columns]
    out: list[list[dict]] = [[] for _ in range(n)]
    for r in present:
        flags = cols.get(r.flag)
        if flags is None:
            flags = frame[r.flag].fillna(0).to_numpy()
        hit = np.flatnonzero(np.asarray(flags, dtype="float64") > 0)  # NaN is not > 0
        if not len(hit):
            continue
        amounts = np.zeros(n)
        if r.amount in frame.columns:
            a = cols.get(r.amount)
            if a is None:
                a = frame[r.amount].fillna(0).to_numpy(dtype="float64")
            a = np.asarray(a, dtype="float64")
            amounts = np.where(np.isnan(a), 0.0, a)
        for i in hit:
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
