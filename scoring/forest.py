"""The anomaly percentile for the API's small requests: the isolation forest's trees walked with
numpy, all trees at once, with sklearn's own arithmetic (float32 inputs against float64
thresholds, the per-tree path lengths added tree by tree in order), so the scores are the same
floats as `IsolationForest.score_samples`. sklearn walks its trees one by one through joblib
(~100 us a tree: 20-40 ms for one claim); larger inputs still go its way."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle
from scoring.bundle import anomaly_percentile as _sklearn_percentile
from scoring.columns import FloatColumns

SMALL = 256  # rows up to which the numpy walk is the faster one


class CompiledForest:
    """A fitted sklearn IsolationForest as flat node arrays (every tree's nodes one after
    another; a leaf points at itself)."""

    def __init__(self, model) -> None:
        from sklearn.ensemble._iforest import _average_path_length

        trees = model.estimators_
        subsample = model._max_features != model.n_features_in_
        left, right, feature, threshold, value, roots = [], [], [], [], [], []
        offset, depth = 0, 0
        for t, (est, feats) in enumerate(zip(trees, model.estimators_features_, strict=True)):
            tree = est.tree_
            n = tree.node_count
            leaf = tree.children_left == -1
            idx = np.arange(n)
            left.append(np.where(leaf, idx, tree.children_left) + offset)
            right.append(np.where(leaf, idx, tree.children_right) + offset)
            f = np.where(leaf, 0, tree.feature)
            feature.append(np.asarray(feats)[f] if subsample else f)
            threshold.append(np.where(leaf, np.inf, tree.threshold))
            # sklearn adds decision_path_lengths[leaf] + average_path_length_per_tree[leaf] - 1.0
            value.append(
                model._decision_path_lengths[t] + model._average_path_length_per_tree[t] - 1.0
            )
            roots.append(offset)
            offset += n
            depth = max(depth, int(tree.max_depth))
        self.left, self.right = np.concatenate(left), np.concatenate(right)
        self.feature = np.concatenate(feature).astype(np.intp)
        self.threshold = np.concatenate(threshold).astype(np.float64)
        self.value = np.concatenate(value).astype(np.float64)
        self.roots = np.asarray(roots, dtype=np.intp)
        self.depth = depth
        self.denominator = len(trees) * _average_path_length([model._max_samples])

    def score_samples(self, x: np.ndarray) -> np.ndarray:
        """IsolationForest.score_samples(x) for finite x."""
        x32 = np.asarray(x, dtype=np.float32)
        n = len(x32)
        rows = np.arange(n)[:, None]
        nodes = np.broadcast_to(self.roots, (n, len(self.roots))).copy()
        for _ in range(self.depth):
            go_left = x32[rows, self.feature[nodes]].astype(np.float64) <= self.threshold[nodes]
            nodes = np.where(go_left, self.left[nodes], self.right[nodes])
        # 0 + tree 1 + tree 2 + ... in tree order, as sklearn adds them (accumulate is sequential)
        per_tree = self.value[nodes]
        depths = np.add.accumulate(per_tree, axis=1)[:, -1] if n else np.zeros(0)
        d = self.denominator
        scores = 2 ** (-np.divide(depths, d, out=np.ones_like(depths), where=d != 0))
        return -scores


_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled(model) -> CompiledForest:
    if model not in _compiled:
        _compiled[model] = CompiledForest(model)
    return _compiled[model]


def anomaly_percentile(
    bundle: ModelBundle, frame: pd.DataFrame | None, cols: FloatColumns | None = None
) -> np.ndarray:
    """scoring.bundle.anomaly_percentile, the same numbers; small inputs by the numpy walk,
    larger ones by sklearn on the same matrix. frame may be None when `cols` holds every
    anomaly feature (the online rows, no DataFrame)."""
    feats = bundle.anomaly_features
    if bundle.anomaly is None or not feats:
        return np.zeros(cols.n if frame is None else len(frame))
    x = (cols if cols is not None else FloatColumns(frame)).matrix(feats)
    if x is None:  # a feature missing or not numeric: the frame's way (reindex, to_numeric)
        return _sklearn_percentile(bundle, frame)
    # bundle.anomaly_percentile's matrix: missing values filled, then 0
    fill = np.array([bundle.anomaly_fill.get(f, np.nan) for f in feats], dtype="float64")
    x = np.where(np.isnan(x), np.nan_to_num(fill, nan=0.0), x)
    if len(x) <= SMALL and type(bundle.anomaly).__name__ == "IsolationForest":
        score = -compiled(bundle.anomaly).score_samples(x)
    else:
        score = -bundle.anomaly.score_samples(x)
    ref = np.asarray(bundle.anomaly_reference)
    return np.searchsorted(ref, score, side="right") / max(len(ref), 1)
