"""Behaviour of the fitted bundle that the quality issue asks for: monotone in deviations above
peers, PU weights, and the queue's money at stake."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from scoring.bundle import ModelBundle
from scoring.scorer import predict
from training.config import load_config
from training.data import attach_targets, load_truth, time_split
from training.models import _with_unlabelled, fit_bundle

BED = ("bed_days", "peer_ratio_bed_days", "peer_z_bed_days", "bed_days_over_stay")


@pytest.fixture(scope="module")
def fitted(sim_dataset):
    from contract.ingest import load_dataset
    from features.registry import feature_names
    from training.train import anomaly_features, feature_frame

    cfg = load_config()
    frame = attach_targets(
        feature_frame(sim_dataset), load_dataset(sim_dataset).get("labels"), load_truth(sim_dataset)
    )
    split = time_split(frame, None, cfg.val_months, cfg.holdout_months)
    names = [n for n in feature_names() if n in frame.columns]
    population = frame[frame["discharged_at"] < split.cutoff]
    bundle = fit_bundle(
        split.train, split.val, split.val_all, population, names, anomaly_features(names), cfg
    )
    return bundle, split, cfg, population


def test_raising_bed_days_far_above_peers_never_lowers_risk(fitted):
    bundle, split, cfg, _ = fitted
    assert set(BED) <= set(cfg.weights.monotone_increasing)
    stays = split.holdout[split.holdout["bed_days"].fillna(0) > 0].head(300)
    assert len(stays) > 20
    med = stays["peer_median_bed_days"].fillna(stays["bed_days"]).clip(lower=1.0)
    stay = stays["stay_days"].fillna(stays["bed_days"]).clip(lower=1.0)
    risks, amounts, raw = [], [], []
    for k in (1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0):
        f = stays.copy()
        bd = np.maximum(f["bed_days"], k * med)
        f["bed_days"] = bd
        f["peer_ratio_bed_days"] = np.maximum(f["peer_ratio_bed_days"].fillna(0), bd / med)
        f["peer_z_bed_days"] = np.maximum(f["peer_z_bed_days"].fillna(0), 3.0 * (k - 1.0))
        f["bed_days_over_stay"] = np.maximum(f["bed_days_over_stay"].fillna(0), bd / stay)
        s = predict(bundle, f)
        risks.append(s["risk_score"].to_numpy())
        raw.append(bundle.risk.predict(bundle.matrix(f)))
        amounts.append(s["expected_overbilled"].to_numpy())
    risks, amounts, raw = np.array(risks), np.array(amounts), np.array(raw)
    assert (np.diff(raw, axis=0) >= -1e-12).all()
    assert (np.diff(risks, axis=0) >= -1e-12).all()  # isotonic calibration keeps the order
    assert (np.diff(amounts, axis=0) >= -0.01).all()
    # the constraint is in the saved model (a small world may not split on bed-days at all)
    assert "[monotone_constraints: " in bundle.risk.model_to_string()


def test_unlabelled_claims_join_as_weighted_negatives(fitted):
    _, split, cfg, population = fitted
    cfg = cfg.model_copy(deep=True)
    cfg.weights.unlabelled_weight, cfg.weights.unlabelled_max_rows = 0.1, 500
    pool = population
    months = (pool["discharged_at"] < split.val_start).to_numpy()
    out, w = _with_unlabelled(split.train, pool, pd.Series(months), cfg)
    extra = out.iloc[len(split.train) :]
    assert len(extra) == 500 and (extra["label"] == 0).all()
    assert not extra["claim_id"].isin(split.train["claim_id"]).any()
    assert (extra["discharged_at"] < split.val_start).all()
    assert (w[: len(split.train)] == 1).all()
    n_unlabelled = int(months.sum()) - int(pool["claim_id"].isin(split.train["claim_id"]).sum())
    assert w[len(split.train) :].sum() == pytest.approx(0.1 * n_unlabelled)


def test_the_queue_order_is_the_models_money_when_every_term_is_off(fitted, tmp_path):
    """With the weights fit on the validation months the bundle's money at stake never exceeds
    the fund amount, and with every term off it is exactly the model's expected overbilled amount;
    the head is in the review band at least."""
    bundle, split, cfg, _ = fitted
    p = cfg.priority
    assert bundle.rank_weights["rules"] in p.rules_grid
    assert bundle.rank_weights["novelty"] in p.novelty_grid
    assert bundle.rank_weights["facility_shift"] == p.facility_shift
    f = split.holdout
    s = predict(bundle, f)
    assert (s["priority"] <= f["fund_claimed"].to_numpy() + 1e-6).all()
    off = predict(replace(bundle, rank_weights={}, head_rules=()), f)
    assert np.allclose(off["priority"], off["expected_overbilled"], atol=0.01)
    # with the head's rules, the model's amount floored at the money they prove
    from scoring.ranking import proven_amount

    floor = predict(replace(bundle, rank_weights={}), f)
    proven = proven_amount(bundle, f, f["fund_claimed"].to_numpy(dtype="float64"))
    want = off["expected_overbilled"] if proven is None else np.maximum(off["expected_overbilled"],
                                                                        proven)  # fmt: skip
    assert np.allclose(floor["priority"], want, atol=0.01)
    # the bands hold about their shares of the validation months
    v = predict(bundle, split.val_all)
    assert v["band"].isin(["high", "review"]).mean() == pytest.approx(0.05, abs=0.01)
    if p.head_pct > 0:
        head = v["expected_overbilled"] >= bundle.head_expected
        assert head.mean() == pytest.approx(p.head_pct / 100, abs=0.005)
        assert (v.loc[head, "band"] == "high").all()
    again = ModelBundle.load(bundle.save(tmp_path / "b"))
    assert again.rank_weights == bundle.rank_weights
    assert again.head_expected == bundle.head_expected
    assert np.allclose(predict(again, f.head(300))["priority"], s["priority"].head(300))
