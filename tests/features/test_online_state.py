"""The online per-key state (features.online_state) against the batch definitions: the claim's
own columns, a month of claims, a stream of requests remembered one after another (across a
month's end, late claims falling back to the compiled plan), re-sent and duplicated claims, and
random claim streams (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import lines as ln
from features.assembly import (
    PRICE_MIN_LINES,
    PRICE_MONTHS,
    PRICE_QUANTILE,
    enriched_claims,
    input_tables,
)
from features.engine import Engine
from features.online_state import OnlineState
from features.online_state import claim as oc
from features.pipeline import build_features, build_snapshot

AS_OF = pd.Timestamp("2025-05-01")


@pytest.fixture(scope="module")
def full(feature_tables) -> pd.DataFrame:
    return build_features(feature_tables)


@pytest.fixture(scope="module")
def snapshot(feature_tables):
    return build_snapshot(feature_tables, AS_OF)


def _subset(tables: dict, keep) -> dict:
    claims = tables["claims"][keep]
    ids = set(claims["claim_id"])
    out = {"claims": claims}
    for t in ("drug_lines", "service_lines"):
        out[t] = tables[t][tables[t]["claim_id"].isin(ids)]
    return out


def _compare(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values("claim_id").reset_index(drop=True)
    b = b.sort_values("claim_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-9)


def _price_list(tables: dict) -> pd.DataFrame:
    """An approved price list for half the drugs, below what some lines bill."""
    d = tables["drug_lines"].merge(tables["claims"][["claim_id", "facility_id"]], on="claim_id")
    d = d.merge(tables["facilities"][["facility_id", "level"]], on="facility_id")
    g = d.groupby(["drug_code", "strength", "level"], as_index=False)["unit_price"].median()
    g = g.iloc[::2]
    return pd.DataFrame({"code": g["drug_code"], "strength": g["strength"],
                         "level": g["level"], "price": g["unit_price"] * 0.97})  # fmt: skip


@pytest.mark.parametrize("listed", [False, True])
def test_enriched_rows_equal_the_ibis_definitions(feature_tables, listed):
    """claim.enriched_rows gives assembly.enriched_claims' rows, column for column, for every
    claim of the world (learned prices, or an approved price list with unlisted items)."""
    pl = _price_list(feature_tables) if listed else None
    with Engine.connect() as eng:
        base, _, points, enriched = enriched_claims(eng, input_tables(eng, feature_tables), pl)
        want = eng.execute(enriched)
        if listed:
            ref = eng.execute(ln.listed_price_reference(
                eng.register("pl", pl.astype({"price": "float64"})), base))  # fmt: skip
        else:
            ref = eng.execute(ln.learned_price_reference(points, PRICE_MONTHS, PRICE_QUANTILE,
                                                         PRICE_MIN_LINES))  # fmt: skip
    refs: dict = {}
    for r in ref.itertuples():
        refs.setdefault((r.item_key, r.facility_level, r.month), []).append(r.ref_price)
    facilities = {f["facility_id"]: f for f in oc.records(feature_tables["facilities"])}
    rows = oc.enriched_rows(feature_tables, facilities,
                            lambda k, lv, m: refs.get((k, lv, m), [None]), listed)  # fmt: skip
    got = pd.DataFrame([{k: v for k, v in r.items() if k != "_lines"} for r in rows])
    assert sorted(got.columns) == sorted(want.columns)
    if listed:
        assert want["rule_item_not_listed"].sum() > 0 and want["rule_price_above_approved"].sum()
    want = want.sort_values("claim_id").reset_index(drop=True)
    got = got.sort_values("claim_id").reset_index(drop=True)[list(want.columns)]
    for c in want.columns:
        a, b = want[c], got[c]
        if pd.api.types.is_numeric_dtype(a):
            ok = np.isclose(a.astype("float64"), pd.to_numeric(b).astype("float64"),
                            rtol=1e-9, atol=1e-9, equal_nan=True)  # fmt: skip
        else:
            ok = (a.astype(str) == b.astype(str)) | (a.isna() & b.isna())
        assert np.asarray(ok).all(), (c, a[~np.asarray(ok)].head(3).tolist(),
                                      b[~np.asarray(ok)].head(3).tolist())  # fmt: skip


def test_a_month_of_claims_equals_batch(snapshot, feature_tables, full):
    state = OnlineState(snapshot)
    c = feature_tables["claims"]
    may = (c["admitted_at"] >= AS_OF) & (c["admitted_at"] < "2025-06-01")
    batch = _subset(feature_tables, may)
    got = state.features(batch)
    assert state.fallbacks == 0 and len(got) == may.sum() > 100
    _compare(full[full["claim_id"].isin(set(batch["claims"]["claim_id"]))], got)
    # remember=False: the state is as it was, a second call gives the same rows
    pd.testing.assert_frame_equal(got, state.features(batch))
    rows = state.feature_rows(batch)
    assert rows.values.shape == (len(got), got.shape[1] - 8)
    assert [r["claim_id"] for r in rows.ids] == list(got["claim_id"])


def _minute_groups(claims: pd.DataFrame) -> list[list[str]]:
    """Claim ids in admission order, those admitted in the same minute together (the batch's
    clinician windows count same-minute claims, whatever their order)."""
    c = claims.sort_values(["admitted_at", "claim_id"])
    return [list(g["claim_id"]) for _, g in c.groupby("admitted_at", sort=True)]


def test_a_stream_of_remembered_requests_equals_batch(snapshot, feature_tables, full):
    """The first weeks of May in one request, then requests of one to three admission minutes
    into June, remembered one after
    another: every row equals build_features over everything (the month's end rebuilds June's
    profiles from the remembered May claims); then late April claims and a June claim in one
    request fall back to the compiled plan, which has the remembered claims too."""
    state = OnlineState(snapshot, remember=True)
    c = feature_tables["claims"]
    tables = {**feature_tables, "claims": c.set_index("claim_id", drop=False)}
    first = (c["admitted_at"] >= AS_OF) & (c["admitted_at"] < "2025-05-20")
    got = [state.features(_subset(feature_tables, first))]  # one request of many claims
    part = c[(c["admitted_at"] >= "2025-05-20") & (c["admitted_at"] < "2025-06-08")]
    groups = _minute_groups(part)
    i = 0
    while i < len(groups):
        k = 1 + i % 3
        ids = [x for g in groups[i : i + k] for x in g]
        got.append(state.features(_subset(tables, c["claim_id"].isin(ids).to_numpy())))
        i += k
    got = pd.concat(got)
    assert state.fallbacks == 0 and state.month == 2025 * 12 + 5
    _compare(full[full["claim_id"].isin(set(part["claim_id"]) | set(c.loc[first, "claim_id"]))],
             got)  # fmt: skip
    late = c[(c["admitted_at"] >= "2025-04-25") & (c["admitted_at"] < "2025-04-27")]
    june = c[(c["admitted_at"] >= "2025-06-08") & (c["admitted_at"] < "2025-06-09")].head(5)
    ids = set(late["claim_id"]) | set(june["claim_id"])
    out = state.features(_subset(feature_tables, c["claim_id"].isin(ids)))
    assert state.fallbacks == 1
    _compare(full[full["claim_id"].isin(ids)], out)
