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
            "dose_excess_amount": np.where(rng.random(n) < 0.1, cost * rng.uniform(0, 2, n), 0.0),
            "rare_service_share": np.where(rng.random(n) < 0.1, rng.uniform(0, 1, n), 0.0),
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
    zero = priority_of(_bundle(**dict.fromkeys(TERMS, 0.0)), frame, expected, anomaly, claimed)
    assert np.array_equal(plain, zero)
    # and a weighted term's column, changed, moves nothing when its weight is zero
    other = frame.assign(
        facility_shift=frame["facility_shift"] * 7 + 1,
        dose_excess_amount=frame["dose_excess_amount"] * 7 + 1,
        rare_service_share=1.0,
    )
    for name in ("facility_shift", "dose_excess", "rare_items"):
        assert np.array_equal(plain, priority_of(_bundle(**{name: 0.0}), other, expected,
                                                 anomaly, claimed)), name  # fmt: skip


def test_a_weighted_term_raises_exactly_the_claims_with_evidence():
    rng = np.random.default_rng(4)
    frame, claimed, anomaly = _frame(500, rng)
    expected = claimed * 0.05
    plain = priority_of(_bundle(), frame, expected, anomaly, claimed)
    for name, column in (
        ("facility_shift", "facility_shift"),
        ("dose_excess", "dose_excess_amount"),
        ("rare_items", "rare_service_share"),
    ):
        shifted = priority_of(_bundle(**{name: 1.0}), frame, expected, anomaly, claimed)
        evidence = frame[column].to_numpy() > 0
        assert (shifted[evidence] > plain[evidence]).all(), name
        assert np.array_equal(shifted[~evidence], plain[~evidence]), name


def test_item_evidence_is_the_funds_share_of_the_flagged_cost():
    """Drug cost beyond the usual dose and cost in rarely billed items count at the fund's share
    of the claim's cost (a claim the fund pays 40% of puts 40% of its padded drugs at stake)."""
    frame = pd.DataFrame(
        {
            "claim_cost": [1_000_000.0, 1_000_000.0, 500_000.0, 0.0],
            "dose_excess_amount": [200_000.0, 0.0, 2_000_000.0, 50_000.0],
            "rare_service_share": [0.0, 0.25, 0.5, 0.5],
        }
    )
    claimed = np.array([400_000.0, 800_000.0, 500_000.0, 0.0])
    terms = term_money(_bundle(), frame, np.zeros(4), claimed)
    assert np.allclose(terms["dose_excess"], [80_000.0, 0.0, 500_000.0, 0.0])  # capped by claimed
    assert np.allclose(terms["rare_items"], [0.0, 200_000.0, 250_000.0, 0.0])


def test_terms_are_money_within_the_claim_and_missing_columns_are_no_evidence():
    rng = np.random.default_rng(5)
    frame, claimed, anomaly = _frame(300, rng)
    terms = term_money(_bundle(), frame, anomaly, claimed)
    for name, money in terms.items():
        assert (money >= 0).all() and (money <= claimed + 1e-6).all(), name
    bare = frame[["claim_id", "fund_claimed"]]
    for money in term_money(_bundle(), bare, anomaly, claimed).values():
        assert not money.any()


def test_the_money_a_head_rule_proves_is_the_floor_of_the_expected_amount():
    """A claim a rule of head_rules proves carries at least the proven money, capped at the fund
    amount; other rules' amounts floor nothing, and without head rules the amounts change
    nothing (issue 12: cheap proven duplicates ranked by the model's 0.74 x their amount)."""
    rng = np.random.default_rng(5)
    frame, claimed, anomaly = _frame(600, rng)
    n = len(frame)
    dup, stay = rng.random(n) < 0.1, rng.random(n) < 0.1
    frame["rule_duplicate"], frame["rule_bed_days_over_stay"] = dup.astype(int), stay.astype(int)
    frame["rule_duplicate_amount"] = np.where(dup, claimed, 0.0)  # the whole fund amount
    frame["rule_bed_days_over_stay_amount"] = np.where(stay, claimed * rng.uniform(0, 3, n), 0.0)
    frame["rule_chronic_supply_overlap"] = 1  # not a proving rule of the head
    frame["rule_chronic_supply_overlap_amount"] = claimed
    expected = claimed * rng.uniform(0, 0.3, n)
    for w in ({}, {"facility_shift": 1.0, "rules": 0.5}):
        plain = priority_of(_bundle(**w), frame, expected, anomaly, claimed)
        bundle = _bundle(**w)
        bundle.head_rules = ("duplicate", "bed_days_over_stay")
        p = priority_of(bundle, frame, expected, anomaly, claimed)
        proven = np.minimum(
            np.maximum(frame["rule_duplicate_amount"], frame["rule_bed_days_over_stay_amount"]),
            claimed,
        ).to_numpy()
        lifted = proven > expected
        assert (p <= claimed + 1e-6).all() and (p >= plain - 1e-6).all()
        assert (p >= proven - 1e-6).all()
        assert np.array_equal(p[~(dup | stay)], plain[~(dup | stay)])
        if not w:  # no terms: the money at stake is the larger of the two
            assert np.allclose(p, np.maximum(expected, proven))
            assert (p[lifted] > plain[lifted]).all() and lifted.sum() > 20
        more = priority_of(bundle, frame, expected * 1.5, anomaly, claimed)
        assert (more >= p - 1e-6).all()  # still monotone in the model's expected amount
    dup_only = _bundle()
    dup_only.head_rules = ("duplicate",)
    for gone in ("rule_duplicate_amount", "rule_duplicate"):  # the amount or the flag absent
        only = priority_of(dup_only, frame.drop(columns=gone), expected, anomaly, claimed)
        assert np.allclose(only, expected), gone
