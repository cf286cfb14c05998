"""The queue's fit on the validation months (training.queue_fit) on handmade months: a term is kept
only when its labels say it finds more money without losing the model's own catches; the head is
in the high band; the bands hold their shares."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.bundle import ModelBundle
from scoring.ranking import band_of, queue_order
from training.queue_fit import cut_bands, fit_queue, head_cut, head_cut_at_most

N = 2000


def _month(seed: int = 0):
    """Claims whose expected amount the model ranks; 60 labelled abusive claims the model holds in
    its top 5% (100 claims) and 40 it misses, which the rules term (when asked) points at."""
    rng = np.random.default_rng(seed)
    expected = rng.uniform(0, 1000, N)
    order = np.argsort(-expected)
    amount = np.zeros(N)
    caught, missed = order[:60], order[500:540]
    amount[caught] = 5000.0
    amount[missed] = 8000.0
    claimed = np.full(N, 1e6)
    return expected, claimed, amount, caught, missed


def _terms(rules=None, novelty=None):
    z = np.zeros(N)
    return {
        "rules": z if rules is None else rules,
        "novelty": z if novelty is None else novelty,
        "facility_shift": z,
    }


def test_a_term_that_finds_labelled_money_is_kept_and_one_that_does_not_is_dropped():
    expected, claimed, amount, caught, missed = _month()
    rules = np.zeros(N)
    rules[missed] = 2000.0  # points at labelled abuse the model misses
    novelty = np.zeros(N)
    noise = np.setdiff1d(np.arange(N), np.r_[caught, missed])[:40]
    novelty[noise] = 20_000.0  # points at claims nobody found abusive
    fit = fit_queue(
        expected, _terms(rules, novelty), claimed, amount, amount > 0, fixed={}, head_pct=0
    )
    assert fit.weights["rules"] > 0
    assert fit.weights["novelty"] == 0
    ok = [r for r in fit.table if r["ok"]]
    assert ok and all(r["money"] >= r["model_money"] for r in ok)


def test_a_term_that_would_push_out_the_models_catches_is_not_kept():
    expected, claimed, amount, caught, missed = _month()
    rules = np.zeros(N)
    rules[missed] = 2000.0
    # more labelled money in the top, but only by pushing out the claims the model holds there
    more = np.setdiff1d(np.arange(N), np.r_[caught, missed])[:60]
    rules[more] = 5000.0
    amount2 = amount.copy()
    amount2[more] = 9000.0
    fit = fit_queue(
        expected, _terms(rules), claimed, amount2, amount2 > 0, fixed={}, head_pct=0,
        grid={"rules": (0.0, 1.0), "novelty": (0.0,)},
    )  # fmt: skip
    row = {r["rules"]: r for r in fit.table}
    assert row[1.0]["money"] > row[0.0]["money"]
    assert row[1.0]["kept"] < 0.9 and not row[1.0]["ok"]
    assert fit.weights["rules"] == 0.0


def test_the_share_of_the_models_catches_kept_is_a_setting():
    """A term keeping 95% of the model's labelled catches passes keep=0.9 and fails keep=0.97."""
    expected, claimed, amount, _, missed = _month()
    rules = np.zeros(N)
    rules[missed] = 2000.0
    # 40 lifted claims take the 40 places after the model's 60 catches; 3 more push 3 catches out
    rules[np.argsort(expected)[:3]] = 1e5
    grid = {"rules": (0.0, 1.0), "novelty": (0.0,)}
    fits = {}
    for keep in (0.9, 0.97):
        fits[keep] = fit_queue(
            expected, _terms(rules), claimed, amount, amount > 0, fixed={}, head_pct=0,
            grid=grid, keep=keep,
        )  # fmt: skip
    assert {r["rules"]: r for r in fits[0.9].table}[1.0]["kept"] == pytest.approx(0.95)
    assert fits[0.9].weights["rules"] == 1.0
    assert fits[0.97].weights["rules"] == 0.0


def test_the_head_is_in_the_high_band_and_the_bands_hold_their_shares():
    expected, claimed, amount, _, _ = _month(1)
    shift = np.zeros(N)
    shift[np.argsort(expected)[:200]] = 1e5  # evidence lifting 200 claims the model ranks lowest
    terms = {**_terms(), "facility_shift": shift}
    fixed = {"facility_shift": 1.0}
    fit = fit_queue(expected, terms, claimed, amount, amount > 0, fixed=fixed, head_pct=2.0)
    assert fit.head_expected == pytest.approx(head_cut(expected, 2.0))
    bundle = ModelBundle(
        risk=None, feature_names=[], categories={}, calibration=([], []),
        rank_weights=fit.weights, head_expected=fit.head_expected, band_thresholds=fit.thresholds,
    )  # fmt: skip
    from scoring.ranking import money_at_stake

    pr = money_at_stake(expected, terms, fit.weights, claimed)
    band = band_of(bundle, pr, expected)
    head = expected >= fit.head_expected
    assert head.sum() == 40 and (band[head] == "high").all()
    assert np.isin(band, ["high", "review"]).mean() == pytest.approx(0.05, abs=0.002)
    # the queue's top 5% keeps the head although 200 lifted claims carry more money at stake
    order = queue_order(band, pr)
    top = np.argsort(-order, kind="stable")[:100]
    assert set(np.flatnonzero(head)) <= set(top)
    # without the head the lifted claims take the whole top: the model's catches are lost
    off = band_of(bundle, pr)
    assert not set(np.flatnonzero(head)) <= set(np.argsort(-queue_order(off, pr))[:100])


def test_cheap_claims_the_model_is_surest_of_stay_in_the_top_with_a_risk_head():
    """A scheme of cheap claims the model is near-certain of (risk 0.99) sits in its top 5% by
    expected amount only just; lifted claims with more money at stake push it out unless the head
    also holds the model's top claims by risk (issue 12: duplicates pushed out in a world)."""
    expected, claimed, amount, _, _ = _month(2)
    order = np.argsort(-expected)
    cheap = order[70:100]  # in the model's top 5%, below its top 1.5% by amount
    risk = np.full(N, 0.3)
    risk[cheap] = 0.99
    shift = np.zeros(N)
    shift[order[-60:]] = 1e5  # evidence lifting 60 claims the model ranks lowest
    terms = {**_terms(), "facility_shift": shift}
    for pct, kept in ((0.0, False), (1.5, True)):
        fit = fit_queue(
            expected, terms, claimed, amount, amount > 0, fixed={"facility_shift": 1.0},
            head_pct=1.5,
            risk=risk, head_risk_pct=pct,
        )  # fmt: skip
        assert (fit.head_risk is not None) == (pct > 0)
        bundle = ModelBundle(
            risk=None, feature_names=[], categories={}, calibration=([], []),
            rank_weights=fit.weights, head_expected=fit.head_expected,
            band_thresholds=fit.thresholds, head_risk=fit.head_risk,
        )  # fmt: skip
        from scoring.ranking import money_at_stake

        pr = money_at_stake(expected, terms, fit.weights, claimed)
        top = np.argsort(-queue_order(band_of(bundle, pr, expected, risk), pr), kind="stable")
        assert set(cheap) <= set(top[:100]) if kept else not set(cheap) <= set(top[:100])


def test_claims_a_rule_proves_stay_in_the_top_with_the_rules_head():
    """Cheap claims a deterministic rule proves (an exact duplicate, a component billed with its
    parent) sit in the model's top 5% only just; lifted claims push them out unless the head holds
    the claims the bundle's head_rules prove (issue 12: duplicates and unbundling pushed out)."""
    expected, claimed, amount, _, _ = _month(3)
    order = np.argsort(-expected)
    cheap = order[70:100]
    proven = np.zeros(N, dtype=bool)
    proven[cheap] = True
    shift = np.zeros(N)
    shift[order[-60:]] = 1e5
    terms = {**_terms(), "facility_shift": shift}
    for rules in ((), ("duplicate",)):
        fit = fit_queue(
            expected, terms, claimed, amount, amount > 0, fixed={"facility_shift": 1.0},
            head_pct=1.5, proven=proven if rules else None,
        )  # fmt: skip
        bundle = ModelBundle(
            risk=None, feature_names=[], categories={}, calibration=([], []),
            rank_weights=fit.weights, head_expected=fit.head_expected,
            band_thresholds=fit.thresholds, head_rules=rules,
        )  # fmt: skip
        from scoring.ranking import money_at_stake, proven_of

        frame = pd.DataFrame({"rule_duplicate": proven.astype(int)})
        flags = proven_of(bundle, frame)
        assert (flags is None) == (not rules)
        pr = money_at_stake(expected, terms, fit.weights, claimed)
        band = band_of(bundle, pr, expected, None, flags)
        top = np.argsort(-queue_order(band, pr), kind="stable")
        if rules:
            assert (band[cheap] == "high").all() and set(cheap) <= set(top[:100])
        else:
            assert not set(cheap) <= set(top[:100])


def test_band_cuts_without_a_head_are_the_plain_percentiles():
    pr = np.arange(1000, dtype="float64")
    th = cut_bands(pr, np.zeros(1000, bool), high_pct=1, review_pct=5, watch_pct=15)
    assert (pr >= th["high"]).sum() == 10
    assert ((pr >= th["review"]) | (pr >= th["high"])).sum() == 50
    assert (pr >= th["watch"]).sum() == 150


def test_a_risk_head_never_holds_more_than_its_share_at_a_tie():
    risk = np.r_[np.full(50, 1.0), np.full(900, 0.5), np.linspace(0.0, 0.4, 1050)]
    assert head_cut_at_most(risk, 3.0) == 1.0  # 2.5%: the next step would hold 47.5%
    assert head_cut_at_most(risk, 2.0) is None  # even the top step holds more than 2%
    assert head_cut_at_most(np.linspace(0, 1, 1000), 2.0) == pytest.approx(
        head_cut(np.linspace(0, 1, 1000), 2.0)
    )


def test_the_rules_of_the_head_are_known_rules():
    from pydantic import ValidationError

    from features.rules import PROVING_RULES
    from training.config import PriorityParams, load_config

    assert set(load_config().priority.head_rules) <= set(PROVING_RULES)
    with pytest.raises(ValidationError, match="unknown rule"):
        PriorityParams(head_rules=("duplicate", "no_such_rule"))
    with pytest.raises(ValidationError, match="head rules are among"):
        PriorityParams(head_rules=("price_above_approved",))  # a learned price proves nothing


def test_the_proven_money_floors_the_money_at_stake_the_bands_are_cut_on():
    """With `proven_amount` the fit cuts the bands on the expected amount floored at the money the
    head's rules prove: cheap duplicates whose whole fund amount is owed rank by that amount, and
    the head (the model's own surest money) is cut on the model's amount as before."""
    expected, claimed, amount, _, _ = _month(4)
    order = np.argsort(-expected)
    cheap = order[1500:1530]  # the model ranks them low
    proven = np.zeros(N)
    proven[cheap] = 5000.0  # more than any expected amount (at most 1,000)
    amount[cheap] = 5000.0
    kw = {"fixed": {}, "head_pct": 1.5}
    plain = fit_queue(expected, _terms(), claimed, amount, amount > 0, **kw)
    fit = fit_queue(expected, _terms(), claimed, amount, amount > 0, proven_amount=proven, **kw)
    assert fit.head_expected == plain.head_expected
    from scoring.ranking import floored, money_at_stake

    pr = money_at_stake(floored(expected, proven), _terms(), fit.weights, claimed)
    assert (pr[cheap] >= fit.thresholds["high"]).all()
    assert not (expected[cheap] >= plain.thresholds["review"]).any()
    assert fit.thresholds["high"] >= plain.thresholds["high"]
