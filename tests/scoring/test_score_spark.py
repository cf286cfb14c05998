"""`claimradar score --engine spark` against the embedded scorer on the same feature rows: the same
scores, money at stake, bands, queue order (rank), reasons for the top 5% and rule hits; the
output partitioned by admission month. (That Spark builds the same features is
tests/features/test_parity_spark.py.) The last two months of the model world keep Spark's part
short."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

SINCE = "2025-07-01"


@pytest.fixture(scope="module")
def both(spark, sim_dataset, trained_model, mlflow_store, tmp_path_factory):
    from serving.batch import resolve_bundle, score_dataset
    from serving.batch_spark import read_scores, score_dataset_spark

    bundle, version = resolve_bundle(str(trained_model.version), **mlflow_store)
    embedded, frame = score_dataset(
        sim_dataset, bundle, version, since=SINCE, explain_top=5, with_frame=True
    )
    tmp = tmp_path_factory.mktemp("spark-scores")
    feats = tmp / "features.parquet"
    frame.drop(columns=["facility_shift"], errors="ignore").to_parquet(feats, index=False)
    bands = score_dataset_spark(
        sim_dataset, bundle, version, tmp / "scores", explain_top=5, features=feats
    )
    return {
        "bundle": bundle,
        "embedded": embedded.reset_index(drop=True),
        "spark": read_scores(tmp / "scores"),
        "bands": bands,
        "out": tmp / "scores",
    }


def test_spark_scores_equal_the_embedded_engine(both):
    e, s = both["embedded"], both["spark"]
    assert both["bundle"].rank_weights.get("facility_shift", 0) > 0  # the shift money is joined
    assert len(s) == len(e) > 1000
    # the queue's order: rank by rank the same claims
    assert s["rank"].tolist() == list(range(1, len(s) + 1))
    assert s["claim_id"].tolist() == e["claim_id"].tolist()
    assert s["band"].tolist() == e["band"].tolist()
    assert set(e["band"]) >= {"high", "review"}
    for col in ("risk_score", "expected_overbilled", "estimated_overbilled_if_abusive",
                "anomaly", "priority", "fund_claimed"):  # fmt: skip
        np.testing.assert_allclose(s[col], e[col], rtol=1e-9, atol=1e-6, err_msg=col)
    for col in ("facility_id", "facility_level", "visit_type"):
        assert s[col].tolist() == e[col].astype(str).tolist()
    assert (s["admitted_at"].to_numpy() == pd.to_datetime(e["admitted_at"]).to_numpy()).all()


def test_spark_explains_the_same_top_claims_with_the_same_reasons(both):
    e, s = both["embedded"], both["spark"]
    k = int(np.ceil(len(e) * 5 / 100))
    want = [json.dumps(r, ensure_ascii=False) for r in e["reasons"]]
    assert s["reasons"].tolist() == want
    explained = s["reasons"] != "[]"
    assert explained[:k].sum() > k // 2 and not explained[k:].any()
    hits = [json.dumps(r, ensure_ascii=False) for r in e["rule_hits"]]
    assert s["rule_hits"].tolist() == hits and (s["rule_hits"] != "[]").any()


def test_spark_scores_are_partitioned_by_month_in_rank_order(both):
    out, s = both["out"], both["spark"]
    months = sorted(p.name for p in out.glob("month=*"))
    assert months == ["month=2025-07", "month=2025-08"]
    for folder in out.glob("month=*"):
        part = pd.read_parquet(folder)
        assert part["rank"].is_monotonic_increasing
        month = folder.name.split("=")[1]
        assert (part["admitted_at"].dt.strftime("%Y-%m") == month).all()
    assert both["bands"] == s["band"].value_counts().to_dict()
    assert set(s.columns) >= {"claim_id", "model_version", "scored_at", "month"}
