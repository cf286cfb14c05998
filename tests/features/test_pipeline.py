"""The feature matrix: contract, point in time (no leakage), row-order invariance, batch vs
online parity, the parquet writer and failure paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.pipeline import (
    ID_COLUMNS,
    build_features,
    build_online,
    write_features,
)
from features.profiles import Snapshot
from features.registry import categorical_names, feature_names

CUTOFF = pd.Timestamp("2025-04-10")


@pytest.fixture(scope="module")
def full(feature_frame) -> pd.DataFrame:
    return feature_frame.copy()


def _subset(tables: dict, keep: pd.Series) -> dict:
    ids = set(tables["claims"].loc[keep, "claim_id"])
    out = dict(tables)
    out["claims"] = tables["claims"][keep]
    for t in ("drug_lines", "service_lines"):
        out[t] = tables[t][tables[t]["claim_id"].isin(ids)]
    return out


def _compare(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values("claim_id").reset_index(drop=True)
    b = b.sort_values("claim_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-9)


def test_one_row_per_claim_with_every_feature(feature_tables, full):
    assert list(full.columns) == [*ID_COLUMNS, *feature_names()]
    assert full["claim_id"].is_unique and len(full) == len(feature_tables["claims"])
    feats = full[feature_names()]
    assert all(pd.api.types.is_numeric_dtype(feats[c]) for c in feats.columns)
    assert not np.isinf(feats.select_dtypes("float64").to_numpy()).any()
    for c in categorical_names():
        assert pd.api.types.is_integer_dtype(full[c]), c
    # rules fire on a simulated world with abuse in it, and profiles are filled after month 1
    assert full["rule_count"].sum() > 0
    later = full[full["admitted_at"] >= "2025-03-01"]
    assert later["fac_cost_per_visit_prev"].notna().mean() > 0.9
    assert later["peer_n"].gt(0).mean() > 0.8


def test_no_leakage_from_later_claims(feature_tables, full):
    """A claim's features are unchanged when every claim admitted after it is removed or
    altered (here: after a cutoff day, against the claims before it)."""
    c = feature_tables["claims"]
    before = full[full["admitted_at"] < CUTOFF]
    removed = build_features(_subset(feature_tables, c["admitted_at"] < CUTOFF))
    _compare(before, removed)
    later = c["admitted_at"] >= CUTOFF
    altered = dict(feature_tables)
    cl = c.copy()
    for col in ("total_cost", "fund_claimed", "total_drugs"):
        cl.loc[later, col] = cl.loc[later, col] * 3
    cl.loc[later, "facility_id"] = cl["facility_id"].sort_values().iloc[0]
    cl.loc[later, "primary_icd"] = "O80"
    altered["claims"] = cl
    ids = set(cl.loc[later, "claim_id"])
    for t in ("drug_lines", "service_lines"):
        lines = feature_tables[t].copy()
        m = lines["claim_id"].isin(ids)
        lines.loc[m, "unit_price"] = lines.loc[m, "unit_price"] * 5
        lines.loc[m, "amount"] = lines.loc[m, "amount"] * 5
        altered[t] = lines
    got = build_features(altered)
    _compare(before, got[got["admitted_at"] < CUTOFF])


def test_row_order_never_matters(feature_tables, full):
    rng = np.random.default_rng(0)
    shuffled = {k: v.iloc[rng.permutation(len(v))] for k, v in feature_tables.items()}
    pd.testing.assert_frame_equal(full, build_features(shuffled))


def test_batch_and_online_vectors_are_equal(feature_tables, full, may_snapshot, tmp_path):
    as_of = pd.Timestamp("2025-05-01")
    snap = may_snapshot  # build_snapshot(feature_tables, as_of), shared (tests/features/conftest)
    assert snap.as_of == as_of
    assert snap.history["admitted_at"].max() < as_of
    snap = Snapshot.load(snap.save(tmp_path / "snap"))
    c = feature_tables["claims"]
    may = (c["admitted_at"] >= as_of) & (c["admitted_at"] < "2025-06-01")
    online = build_online(_subset(feature_tables, may), snap)
    batch = full[(full["admitted_at"] >= as_of) & (full["admitted_at"] < "2025-06-01")]
    assert len(online) == may.sum() > 100
    _compare(batch, online)


def test_both_online_paths_match_batch(feature_tables, full, may_snapshot):
    """The compiled fast path (one month) and full path (months mixed, claims re-sent from the
    history) give the batch rows."""
    from features.pipeline import OnlinePlan

    plan = OnlinePlan(may_snapshot)  # as of 2025-05-01
    c = feature_tables["claims"]
    may = (c["admitted_at"] >= "2025-05-01") & (c["admitted_at"] < "2025-05-11")
    mixed = (c["admitted_at"] >= "2025-04-20") & (c["admitted_at"] < "2025-05-11")
    try:
        for mask, path in ((may, plan._fast), (mixed, plan._full)):
            batch = _subset(feature_tables, mask)
            assert plan._path(batch["claims"]) is path
            online = plan.features(batch)
            ids = set(batch["claims"]["claim_id"])
            _compare(full[full["claim_id"].isin(ids)], online)
    finally:
        plan.close()


def test_since_until_select_rows_not_history(feature_tables, full):
    part = build_features(feature_tables, since="2025-03-01", until="2025-03-31")
    assert part["admitted_at"].min() >= pd.Timestamp("2025-03-01")
    assert part["admitted_at"].max() < pd.Timestamp("2025-04-01")
    ref = full[(full["admitted_at"] >= "2025-03-01") & (full["admitted_at"] < "2025-04-01")]
    _compare(ref, part)


def test_write_features_streams_the_same_rows(feature_dataset, full, tmp_path):
    n = write_features(feature_dataset, tmp_path / "f.parquet")
    got = pd.read_parquet(tmp_path / "f.parquet")
    assert n == len(full)
    _compare(full, got)


def test_a_missing_required_column_is_named(feature_tables):
    bad = dict(feature_tables)
    bad["claims"] = feature_tables["claims"].drop(columns="person_key")
    with pytest.raises(ValueError, match="person_key"):
        build_features(bad)


def test_a_dataset_without_lines_still_builds(feature_tables):
    tables = {"claims": feature_tables["claims"].head(50)}
    f = build_features(tables)
    assert len(f) == 50 and (f["n_lines"] == 0).all()
    assert (f["rule_totals_mismatch"] == 1).all()  # costs with no lines behind them


def test_a_service_plan_remembers_what_it_scored(feature_tables, full, may_snapshot):
    """With remember=True, claims scored earlier are history for later calls: the features of
    the later claims equal the batch features computed over everything."""
    from features.pipeline import OnlinePlan

    c = feature_tables["claims"]
    early = (c["admitted_at"] >= "2025-05-01") & (c["admitted_at"] < "2025-05-16")
    late = (c["admitted_at"] >= "2025-05-16") & (c["admitted_at"] < "2025-06-01")
    june = (c["admitted_at"] >= "2025-06-01") & (c["admitted_at"] < "2025-06-11")
    remembering = OnlinePlan(may_snapshot, remember=True)  # as of 2025-05-01
    forgetting = OnlinePlan(may_snapshot)
    try:
        remembering.features(_subset(feature_tables, early))
        forgetting.features(_subset(feature_tables, early))
        later = _subset(feature_tables, late)
        ids = set(later["claims"]["claim_id"])
        want = full[full["claim_id"].isin(ids)]
        _compare(want, remembering.features(later))
        # without memory the late claims miss their earlier May visits
        got = forgetting.features(later).set_index("claim_id")
        assert (got["pat_visits_30d"] < want.set_index("claim_id")["pat_visits_30d"]).any()
        # next month: May's remembered claims change June's profiles, so the full path runs
        remembering.features(later)
        nxt = _subset(feature_tables, june)
        assert remembering._path(nxt["claims"]) is remembering._full
        _compare(full[full["claim_id"].isin(set(nxt["claims"]["claim_id"]))],
                 remembering.features(nxt))  # fmt: skip
    finally:
        remembering.close()
        forgetting.close()
