"""Model behaviour: the score is a function of the claim, not of its key or its place in a batch."""

import numpy as np
import pytest

from scoring.bundle import ModelBundle
from scoring.scorer import predict
from training import tracking
from training.train import feature_frame


@pytest.fixture(scope="module")
def bundle_and_frame(trained_model, mlflow_store, sim_dataset, tmp_path_factory):
    client = tracking.connect(mlflow_store["tracking_uri"], mlflow_store["artifact_root"])
    b = ModelBundle.load(
        tracking.bundle_dir(client, trained_model.version, tmp_path_factory.mktemp("b"))
    )
    return b, feature_frame(sim_dataset).head(4000)


def test_score_does_not_depend_on_the_claim_key(bundle_and_frame):
    b, f = bundle_and_frame
    renamed = f.assign(claim_id=["X" + str(i)[::-1] for i in range(len(f))])
    a, r = predict(b, f), predict(b, renamed)
    np.testing.assert_array_equal(a["risk_score"].to_numpy(), r["risk_score"].to_numpy())
    np.testing.assert_array_equal(a["priority"].to_numpy(), r["priority"].to_numpy())


def test_score_does_not_depend_on_row_order(bundle_and_frame):
    b, f = bundle_and_frame
    shuffled = f.sample(frac=1.0, random_state=5)
    a = predict(b, f).set_index("claim_id")
    s = predict(b, shuffled).set_index("claim_id").loc[a.index]
    np.testing.assert_array_equal(a["risk_score"].to_numpy(), s["risk_score"].to_numpy())
    np.testing.assert_array_equal(a["band"].to_numpy(), s["band"].to_numpy())
    # one claim scored alone gets what it got in the batch
    one = predict(b, f.iloc[[17]])
    assert one["priority"].iloc[0] == a["priority"].iloc[17]
