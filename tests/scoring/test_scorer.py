"""The scorer's lean paths give the numbers of the plain ones: the feature matrix from numeric
blocks equals ModelBundle.matrix, the numpy walk of the isolation forest equals sklearn's
score_samples, predict equals the column-by-column computation; reasons (TreeSHAP) are computed
only for the claims of the bands that show them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from scoring.bundle import anomaly_percentile as sklearn_percentile
from scoring.bundle import calibrate
from scoring.columns import FloatColumns
from scoring.forest import anomaly_percentile, compiled
from scoring.ranking import band_of, priority_of, proven_of
from scoring.scorer import feature_matrix, predict, score


@pytest.fixture(scope="module")
def bundle_frame(scored_world, mlflow_store):
    from serving.batch import resolve_bundle

    bundle, _ = resolve_bundle(scored_world["version"], **mlflow_store)
    return bundle, scored_world["frame"].tail(600).reset_index(drop=True)


def test_the_feature_matrix_is_the_bundles(bundle_frame):
    bundle, frame = bundle_frame
    for part in (frame, frame.head(1), frame.iloc[7:9]):
        np.testing.assert_array_equal(feature_matrix(bundle, part), bundle.matrix(part))
    odd = frame.head(5).copy()  # nullable ints with a gap, a boolean column, a text column
    name = bundle.feature_names[0]
    odd[name] = pd.array([1, None, 3, 4, 5], dtype="Int64")
    odd[bundle.feature_names[1]] = [True, False, True, False, True]
    np.testing.assert_array_equal(feature_matrix(bundle, odd), bundle.matrix(odd))
    odd[bundle.feature_names[2]] = ["1", "x", None, "2.5", "3"]  # not numeric: the bundle's way
    np.testing.assert_array_equal(feature_matrix(bundle, odd), bundle.matrix(odd))
    assert FloatColumns(odd).get(bundle.feature_names[2]) is None


def test_a_long_frames_matrix_is_the_bundles(bundle_frame):
    """Over several transposed pieces (a partial last one), and a second matrix of other
    columns from the same FloatColumns (the anomaly model's after the risk model's)."""
    bundle, frame = bundle_frame
    long = pd.concat([frame] * 15, ignore_index=True)  # 9,000 rows: 3 pieces, the last partial
    cols = FloatColumns(long)
    np.testing.assert_array_equal(feature_matrix(bundle, long, cols), bundle.matrix(long))
    other = bundle.anomaly_features[::-1]
    want = long[other].to_numpy(dtype="float64", na_value=np.nan)
    np.testing.assert_array_equal(cols.matrix(other), want)
    np.testing.assert_array_equal(cols.matrix(bundle.feature_names), bundle.matrix(long))


def test_the_forest_walk_is_sklearns(bundle_frame):
    bundle, frame = bundle_frame
    assert bundle.anomaly is not None
    for part in (frame.head(256), frame.head(1), frame.iloc[100:103]):
        np.testing.assert_array_equal(
            anomaly_percentile(bundle, part), sklearn_percentile(bundle, part)
        )
    x = np.random.default_rng(0).normal(0, 1e4, size=(50, len(bundle.anomaly_features)))
    np.testing.assert_array_equal(
        compiled(bundle.anomaly).score_samples(x), bundle.anomaly.score_samples(x)
    )


def test_predict_is_the_column_by_column_computation(bundle_frame):
    bundle, frame = bundle_frame
    out = predict(bundle, frame)
    x = bundle.matrix(frame)
    risk = np.clip(calibrate(bundle, bundle.risk.predict(x)), 0.0, 1.0)
    claimed = pd.to_numeric(frame["fund_claimed"], errors="coerce").fillna(0.0).to_numpy()
    share = np.clip(bundle.amount.predict(x), 0.0, 1.0) if bundle.amount else bundle.amount_ratio
    expected = risk * (share * claimed)
    anomaly = sklearn_percentile(bundle, frame)
    priority = priority_of(bundle, frame, expected, anomaly, claimed)
    np.testing.assert_array_equal(out["risk_score"], risk)
    np.testing.assert_array_equal(out["expected_overbilled"], np.round(expected, 2))
    np.testing.assert_array_equal(out["priority"], priority)
    proven = proven_of(bundle, frame)  # the claims the bundle's head rules prove
    assert list(out["band"]) == list(band_of(bundle, priority, expected, risk, proven))


def test_claims_a_head_rule_proves_are_in_the_high_band_and_no_rules_change_nothing(bundle_frame):
    bundle, frame = bundle_frame
    frame = frame.copy()
    frame["rule_duplicate"] = 0
    proven = frame.index[::7]
    frame.loc[proven, "rule_duplicate"] = 1
    # R11's amount: the whole fund amount of the later claim
    frame["rule_duplicate_amount"] = np.where(frame["rule_duplicate"] > 0, frame["fund_claimed"], 0)
    plain = predict(replace(bundle, head_rules=()), frame)
    out = predict(replace(bundle, head_rules=("duplicate",)), frame)
    at = frame.index.get_indexer(proven)
    assert (out["band"].to_numpy()[at] == "high").all()
    assert (plain["band"].to_numpy()[at] != "high").any()  # the rule is what put them there
    rest = np.setdiff1d(np.arange(len(frame)), at)
    assert list(out["band"].to_numpy()[rest]) == list(plain["band"].to_numpy()[rest])
    pr, before = out["priority"].to_numpy(), plain["priority"].to_numpy()
    np.testing.assert_array_equal(pr[rest], before[rest])
    # a proven duplicate's money at stake: the whole fund amount it asks (what R11 proves)
    claimed = frame["fund_claimed"].to_numpy(dtype="float64")
    np.testing.assert_allclose(pr[at], claimed[at])
    assert (pr[at] >= before[at] - 1e-6).all() and (pr[at] > before[at]).any()
    clean = frame.assign(rule_duplicate=0)  # a head rule that proves nothing changes nothing
    pd.testing.assert_frame_equal(
        predict(replace(bundle, head_rules=("duplicate",)), clean),
        predict(replace(bundle, head_rules=()), clean),
    )


def test_reasons_only_for_the_bands_that_show_them(bundle_frame):
    bundle, frame = bundle_frame
    explained: list[int] = []
    real = bundle.risk.predict

    def counting(x, *a, **kw):
        if kw.get("pred_contrib"):
            explained.append(len(x))
        return real(x, *a, **kw)

    bundle.risk.predict = counting
    try:
        out = score(bundle, frame, model_version="t")
        low = score(bundle, frame[~out["band"].isin(["high", "review"]).to_numpy()],
                    model_version="t")  # fmt: skip
    finally:
        del bundle.risk.predict
    shown = out["band"].isin(["high", "review"]).to_numpy()
    assert shown.any() and not shown.all()
    assert explained == [int(shown.sum())]  # one TreeSHAP call, for those claims only
    assert all(len(r) for r in out.loc[shown, "reasons"])
    assert not any(len(r) for r in out.loc[~shown, "reasons"])
    assert not any(len(r) for r in low["reasons"])
