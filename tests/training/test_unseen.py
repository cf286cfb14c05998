"""On a randomized world the review queue's order finds at least the money of the model's own order
in its top 5%, and more of the held-out facility-level scheme no label contains (issue 12: the
former lane and `max` of rule money lost money to the model's own order). The world is one of the
selection seeds of bench/quality_worlds.py, smaller (a regression guard; the figures come from the
report seeds)."""

import numpy as np
import pytest

from scoring.scorer import predict
from training.config import load_config
from training.data import attach_targets, load_truth, time_split
from training.evaluate import recall_by_group, top_k_mask
from training.models import fit_bundle


@pytest.fixture(scope="module")
def unseen_world(tmp_path_factory):
    import simulator
    from claimradar.settings import DEV_LINKAGE_KEY
    from contract.ingest import ingest, load_dataset
    from training.train import feature_frame

    root = tmp_path_factory.mktemp("randomized")
    draw = simulator.draw_world(104, claims=25_000)
    simulator.simulate(root / "tabular", **draw.simulate_kwargs())
    ingest(root / "tabular", root / "dataset", linkage_key=DEV_LINKAGE_KEY)
    ds = root / "dataset"
    return attach_targets(feature_frame(ds), load_dataset(ds).get("labels"), load_truth(ds))


def test_the_queue_finds_at_least_the_models_money_and_the_unlabelled_scheme(unseen_world):
    from features.registry import feature_names
    from simulator.randomize import HELD_OUT
    from training.train import anomaly_features

    cfg = load_config()
    frame = unseen_world
    split = time_split(frame, "2025-10-01", cfg.val_months, cfg.holdout_months)
    assert not (np.r_[split.train["scheme"], split.val["scheme"]] == HELD_OUT).any()
    names = [n for n in feature_names() if n in frame.columns]
    population = frame[frame["discharged_at"] < split.cutoff]
    bundle = fit_bundle(
        split.train, split.val, split.val_all, population, names, anomaly_features(names), cfg
    )
    hold = split.holdout
    s = predict(bundle, hold)
    amount, y = hold["target_amount"].to_numpy(), hold["y"].to_numpy()
    queue, model = s["priority"].to_numpy(), s["expected_overbilled"].to_numpy()

    def money(order):
        return amount[top_k_mask(order, 5.0)].sum() / amount.sum()

    print(f"money in the top 5%: queue {money(queue):.3f}, model {money(model):.3f}")
    assert money(queue) >= money(model) - 0.01
    rq = recall_by_group(queue, y, hold["scheme"], 5.0).set_index("group")["recall"]
    rm = recall_by_group(model, y, hold["scheme"], 5.0).set_index("group")["recall"]
    print(f"{HELD_OUT} recall in the top 5%: queue {rq[HELD_OUT]:.3f}, model {rm[HELD_OUT]:.3f}")
    assert rq[HELD_OUT] > rm[HELD_OUT] + 0.1
