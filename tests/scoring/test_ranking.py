"""The queue's order (scoring.ranking) holds its invariants: never above the fund amount claimed,
monotone in the model's expected amount, a term with zero weight changes nothing, a term with
weight raises the claims its evidence names. Fast: no model is trained."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.bundle import ModelBundle
from scoring.ranking import TERMS, priority_of, term_money


def _bundle(**weights) -> ModelBundle:
    return ModelBundle(
        risk=None, feature_names=[], categories={}, calibration=([], []), rank_weights=weights
    )


def _frame(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    claimed = rng.gamma(2.0, 300_000.0, n)
    cost = claimed * rng.uniform(1.0, 1.5, n)
    frame = pd.DataFrame(
        {
            "claim_id": [f"C{i}" for i in range(n)],
            "fund_claimed": claimed,
            "claim_cost": cost,
            "peer_median_total_cost": cost * rng.uniform(0.3, 1.5, n),
            "rule_amount": np.where(rng.random(n) < 0.2, claimed * rng.uniform(0, 3, n), 0.0),
            "facility_shift": np.where(rng.random(n) < 0.1, claimed * rng.uniform(0, 2, n), 0.0),
        }
    )
    anomaly = rng.random(n)
    return frame, claimed, anomaly


weights = st.fixed_dictionaries({k: st.sampled_from([0.0, 0.25, 1.0, 3.0]) for k in TERMS})


@settings(max_examples=60, deadline=None, derandomize=True)
@given(w=weights, seed=st.integers(0, 10_000))
def test_money_at_stake_never_exceeds_the_fund_amount_and_never_falls_below_the_model(w, seed):
    rng = np.random.default_rng(seed)
    frame, claimed, anomaly = _frame(400, rng)
    expected = claimed * rng.uniform(0, 0.6, len(frame))
    p = priority_of(_bundle(**w), frame, expected, anomaly, claimed)
    assert (p <= claimed + 1e-6).all()
    assert (p >= expected - 1e-6).all()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(w=weights, seed=st.integers(0, 10_000))
def test_money_at_stake_is_monotone_in_the_models_expected_amount(w, seed):
    rng = np.random.default_rng(seed)
    frame, claimed, anomaly = _frame(300, rng)
    expected = claimed * rng.uniform(0, 0.5, len(frame))
    more = expected + claimed * rng.uniform(0, 0.5, len(frame))
    b = _bundle(**w)
    lo = priority_of(b, frame, expected, anomaly, claimed)
    hi = priority_of(b, frame, more, anomaly, claimed)
    assert (hi >= lo - 1e-6).all()


def test_a_term_with_zero_weight_changes_nothing():
    rng = np.random.default_rng(3)
    frame, claimed, anomaly = _frame(500, rng)
    expected = claimed * rng.uniform(0, 0.5, len(frame))
    plain = priority_of(_bundle(), frame, expected, anomaly, claimed)
    assert np.allclose(plain, expected)  # the model's own order
    zero = priority_of(_bundle(rules=0.0, novelty=0.0, facility_shift=0.0), frame, expected,
                       anomaly, claimed)  # fmt: skip
    assert np.array_equal(plain, zero)
    # and a weighted term's column, changed, moves nothing when its weight is zero
    other = frame.assign(facility_shift=frame["facility_shift"] * 7 + 1)
    assert np.array_equal(plain, priority_of(_bundle(facility_shift=0.0), other, expected,
                                             anomaly, claimed))  # fmt: skip


def test_a_weighted_term_raises_exactly_the_claims_with_evidence():
    rng = np.random.default_rng(4)
    frame, claimed, anomaly = _frame(500, rng)
    expected = claimed * 0.05
    plain = priority_of(_bundle(), frame, expected, anomaly, claimed)
    shifted = priority_of(_bundle(facility_shift=1.0), frame, expected, anomaly, claimed)
    evidence = frame["facility_shift"].to_numpy() > 0
    assert (shifted[evidence] > plain[evidence]).all()
    assert np.array_equal(shifted[~evidence], plain[~evidence])


def test_terms_are_money_within_the_claim_and_missing_columns_are_no_evidence():
    rng = np.random.default_rng(5)
    frame, claimed, anomaly = _frame(300, rng)
    terms = term_money(_bundle(), frame, anomaly, claimed)
    for name, money in terms.items():
        assert (money >= 0).all() and (money <= claimed + 1e-6).all(), name
    bare = frame[["claim_id", "fund_claimed"]]
    for money in term_money(_bundle(), bare, anomaly, claimed).values():
        assert not money.any()
