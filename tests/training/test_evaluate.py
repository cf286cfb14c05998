import numpy as np
import pandas as pd
import pytest

from training.evaluate import ranking_metrics, recall_by_group, top_k_mask


def test_top_k_takes_the_highest_and_breaks_ties_stably():
    p = np.array([0.1, 0.9, 0.5, 0.9, 0.2])
    assert list(np.flatnonzero(top_k_mask(p, 40))) == [1, 3]
    assert top_k_mask(p, 1).sum() == 1 and top_k_mask(p, 1)[1]


def test_money_and_precision_in_the_top_k():
    n = 100
    priority = np.arange(n, 0, -1, dtype=float)  # claim 0 ranked first
    y = np.zeros(n, dtype=int)
    amount = np.zeros(n)
    y[[0, 2, 50]] = 1
    amount[[0, 2, 50]] = [300.0, 100.0, 600.0]
    m = ranking_metrics(priority, y, amount)
    assert m["amount_top1pct"] == pytest.approx(0.3)  # claim 0 only
    assert m["amount_top5pct"] == pytest.approx(0.4)  # claims 0 and 2
    assert m["precision_top5pct"] == pytest.approx(2 / 5)
    assert m["recall_top5pct"] == pytest.approx(2 / 3)
    assert 0 < m["average_precision"] < 1 and 0.5 < m["roc_auc"] <= 1
    perfect = ranking_metrics(amount, y, amount)
    assert perfect["amount_top5pct"] == 1.0 and perfect["average_precision"] == 1.0


def test_recall_per_group():
    priority = np.array([9, 8, 7, 1, 0], dtype=float)
    y = np.array([1, 0, 1, 1, 1])
    groups = pd.Series(["a", "a", "b", "b", "c"])
    r = recall_by_group(priority, y, groups, pct=60).set_index("group")
    assert r.loc["a", "recall"] == 1.0 and r.loc["b", "recall"] == 0.5 and r.loc["c", "recall"] == 0
