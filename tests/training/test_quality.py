"""Behaviour of the fitted bundle that the quality issue asks for: monotone in deviations above
peers, PU weights, and the money blend of the priority."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from scoring.bundle import ModelBundle
from scoring.ranking import lane_priority
from scoring.scorer import predict
from training.config import load_config
from training.data import attach_targets, load_truth, time_split
from training.evaluate import top_k_mask
from training.models import _with_unlabelled, fit_bundle

BED = ("bed_days", "peer_ratio_bed_days", "peer_z_bed_days", "bed_days_over_stay")


@pytest.fixture(scope="module")
def fitted(world):
    from contract.ingest import load_dataset
    from features.registry import feature_names
    from training.train import anomaly_features, feature_frame

    cfg = load_config()
    frame = attach_targets(
        feature_frame(world), load_dataset(world).get("labels"), load_truth(world)
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


def test_priority_takes_the_larger_of_model_and_rule_money(fitted, tmp_path):
    bundle, split, _, _ = fitted
    f = split.holdout.head(50).copy()
    f["rule_amount"] = 0.0
    base = predict(bundle, f)
    bundle2 = ModelBundle.load(bundle.save(tmp_path / "b"))
    assert np.allclose(predict(bundle2, f)["priority"], base["priority"])
    bundle2.rule_weight, bundle2.blend, bundle2.lane_share = 1.0, 0.0, 0.0
    f["rule_amount"] = f["fund_claimed"] * 10  # capped at the fund amount
    p = predict(bundle2, f)["priority"].to_numpy()
    want = np.maximum(base["expected_overbilled"].to_numpy(), f["fund_claimed"].to_numpy())
    assert np.allclose(p, want, rtol=1e-6)


def test_novelty_lane_takes_its_share_of_the_top_and_rises_with_peer_deviation(fitted, tmp_path):
    bundle, split, cfg, _ = fitted
    assert bundle.lane_share == cfg.priority.lane_share > 0
    assert set(bundle.lane_refs) == set(bundle.lane_features) and bundle.lane_ref
    ref = split.val_all  # the lane's reference claims
    s = predict(bundle, ref)
    base = predict(replace(bundle, lane_share=0.0), ref)
    lane = lane_priority(bundle, ref)
    assert np.allclose(s["priority"], np.maximum(base["priority"], lane))
    # about lane_share of the top 5% is there by the lane alone (it outbids the money)
    top = top_k_mask(s["priority"].to_numpy(), 5.0)
    by_lane = top & (lane > base["priority"].to_numpy())
    assert by_lane.sum() / top.sum() == pytest.approx(bundle.lane_share, abs=0.1)
    # the band thresholds include the lane: about 5% of the reference claims are high or review
    assert s["band"].isin(["high", "review"]).mean() == pytest.approx(0.05, abs=0.01)
    # further from the peers on tests and imaging never lowers the lane priority
    f = ref.head(200).copy()
    steps = []
    for z in (0.0, 2.0, 5.0, 20.0, 100.0):
        f["peer_z_diag_cost"] = np.maximum(ref.head(200)["peer_z_diag_cost"].fillna(0), z)
        steps.append(lane_priority(bundle, f))
    assert (np.diff(np.array(steps), axis=0) >= -1e-9).all()
    assert (steps[-1] > steps[0]).mean() > 0.5
    # the lane survives a save and load
    again = ModelBundle.load(bundle.save(tmp_path / "lane"))
    assert np.allclose(predict(again, ref.head(500))["priority"], s["priority"].head(500))
