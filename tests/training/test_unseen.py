"""A scheme the training labels never contain (it starts after the cutoff) is found by the novelty
lane of the priority more often than by the supervised model alone, on a small simulated world."""

import numpy as np
import pytest

from scoring.scorer import predict
from training.config import load_config
from training.data import attach_targets, load_truth, time_split
from training.evaluate import ranking_metrics, recall_by_group
from training.models import fit_bundle

SCHEME, CUTOFF = "needless_tests", "2025-07-01"


@pytest.fixture(scope="module")
def unseen_world(tmp_path_factory):
    import simulator
    from claimradar.settings import DEV_LINKAGE_KEY
    from contract.ingest import ingest, load_dataset
    from training.train import feature_frame

    root = tmp_path_factory.mktemp("unseen")
    simulator.simulate(
        root / "tabular",
        30_000,
        months=9,
        start="2025-01",
        seed=5,
        scheme_start={SCHEME: "2025-07"},
    )
    ingest(root / "tabular", root / "dataset", linkage_key=DEV_LINKAGE_KEY)
    ds = root / "dataset"
    return attach_targets(feature_frame(ds), load_dataset(ds).get("labels"), load_truth(ds))


def test_novelty_lane_finds_an_unseen_scheme(unseen_world):
    from features.registry import feature_names
    from training.train import anomaly_features

    cfg = load_config()
    assert cfg.priority.lane_share > 0  # the default ranking has the lane
    frame = unseen_world
    split = time_split(frame, CUTOFF, cfg.val_months, cfg.holdout_months)
    seen = np.r_[split.train["scheme"], split.val["scheme"]]
    assert (seen != SCHEME).all()  # no label of the scheme before the cutoff
    assert not ((frame["scheme"] == SCHEME) & (frame["discharged_at"] < split.cutoff)).any()
    names = [n for n in feature_names() if n in frame.columns]
    population = frame[frame["discharged_at"] < split.cutoff]
    bundle = fit_bundle(
        split.train, split.val, split.val_all, population, names, anomaly_features(names), cfg
    )
    hold = split.holdout
    y, amount = hold["y"].to_numpy(), hold["target_amount"].to_numpy()
    assert (hold["scheme"] == SCHEME).sum() > 50

    def recall(priority):
        rec = recall_by_group(priority, y, hold["scheme"], 5.0).set_index("group")["recall"]
        return float(rec[SCHEME])

    full = predict(bundle, hold)["priority"].to_numpy()
    bundle.lane_share, bundle.blend = 0.0, 0.0  # the supervised model (and rule money) alone
    alone = predict(bundle, hold)["priority"].to_numpy()
    found, found_alone = recall(full), recall(alone)
    print(f"{SCHEME} recall in the top 5%: with the lane {found:.3f}, alone {found_alone:.3f}")
    assert found > found_alone + 0.1, (found, found_alone)
    assert found >= 0.5, found
    # the lane does not cost the money ranking much
    m_full, m_alone = ranking_metrics(full, y, amount), ranking_metrics(alone, y, amount)
    a_full, a_alone = m_full["amount_top5pct"], m_alone["amount_top5pct"]
    print(f"amount in the top 5%: with the lane {a_full:.3f}, alone {a_alone:.3f}")
    assert a_full >= a_alone - 0.05
