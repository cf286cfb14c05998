"""A large request's line aggregates column-wise (features.online_state.batch) against the
per-line Python of claim.py, which tests/features/test_online_state.py holds to the Ibis
definitions: the same rows, value for value (the same floats: sums taken in claim.py's order),
on the whole world, on scrambled claims, on a claim id sent twice in one request; and the state
answering a large request with duplicates and repeat patients inside it as batch features do."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from test_online_state import AS_OF, _cat, _claim, _compare, _mutated, _price_list, _subset
from test_online_state import _lookups as _engine_lookups

from features.assembly import (
    enriched_claims,
    input_tables,
)
from features.engine import Engine
from features.online_state import OnlineState
from features.online_state import batch as ob
from features.online_state import claim as oc
from features.pipeline import OnlinePlan, build_snapshot


def _lookups(tables: dict, pl) -> tuple:
    """The reference prices and item statistics of the Ibis definitions, as the state's
    lookups."""
    with Engine.connect() as eng:
        base, _, points, _ = enriched_claims(eng, input_tables(eng, tables), pl)
        return _engine_lookups(eng, base, points, pl)


def _same(a: list[dict], b: list[dict]) -> int:
    """Rows a (claim.py) and b (batch.py) identical: every value of the same type and equal
    (NaN as NaN), the `_lines` b keeps equal to those of a. Returns the values compared."""
    assert len(a) == len(b)
    n = 0
    for ra, rb in zip(a, b, strict=True):
        assert ra.keys() == rb.keys()
        for k, va in ra.items():
            vb = rb[k]
            if k == "_lines":
                keep = [{c: x[c] for c in (*ob.LINE_KEYS, *ob.TIME_KEYS) if c in y}
                        for x, y in zip(va, vb, strict=True)]  # fmt: skip
                assert keep == vb, (ra["claim_id"], keep, vb)
                continue
            nan = isinstance(va, float) and math.isnan(va) and math.isnan(vb)
            assert type(va) is type(vb) and (va == vb or nan), (ra["claim_id"], k, va, vb)
            n += 1
    return n


def _both(tables: dict, pl, two_prices: bool = False) -> tuple[list[dict], list[dict]]:
    """claim.py's rows and batch.py's; two_prices: every other item has two reference prices
    (a price list may list one twice: the left join counts its lines twice)."""
    refs, items = _lookups(tables, pl)
    if two_prices:
        one = refs

        def refs(k, lv, m):
            got = one(k, lv, m)
            return (
                [*got, got[0] * 0.5 if got[0] is not None else 1.0]
                if k is not None and len(k) % 2
                else got
            )

    facilities = {f["facility_id"]: f for f in oc.records(tables["facilities"])}
    args = (tables, facilities, refs, pl is not None, items)
    return oc.enriched_rows(*args), ob.enriched_rows(*args)


@pytest.mark.parametrize("listed", [False, True])
def test_columnwise_rows_equal_the_per_line_rows_on_the_world(feature_tables, listed):
    a, b = _both(feature_tables, _price_list(feature_tables) if listed else None)
    assert len(a) > 1000 and _same(a, b) > 100_000


@pytest.mark.parametrize("listed", [False, True])
def test_columnwise_rows_equal_the_per_line_rows_on_scrambled_claims(feature_tables, listed):
    """Every line check fires somewhere, with nulls mixed in; and one claim id twice in the
    request (two different claims under it): each copy is enriched with every line of the id,
    against its own claim columns, as claim.py does."""
    world = _mutated(feature_tables, 400, seed=21 + listed)
    c = world["claims"]
    twin = c.iloc[[0]].assign(visit_type="03", admitted_at=c["admitted_at"].iloc[0]
                              - pd.Timedelta(days=2))  # fmt: skip
    world["claims"] = pd.concat([c, twin], ignore_index=True)
    a, b = _both(world, _price_list(feature_tables) if listed else None, two_prices=True)
    assert _same(a, b) > 10_000
    # the explosion was exercised: lines counted once per price
    assert any(r["n_drug_lines"] + r["n_service_lines"] > len(r["_lines"]) for r in b)
    first, second = (r for r in b if r["claim_id"] == twin["claim_id"].iloc[0])
    assert first["_lines"] == second["_lines"] and first["n_lines"] > 0
    assert (first["visit_type"], second["visit_type"]) != ("03", "03")


@pytest.fixture(scope="module")
def small(feature_tables) -> dict:
    """Three facilities of the world: the snapshot as of AS_OF, the May-June pool, and the
    compiled plan over everything sent (the oracle, remember=False)."""
    c = feature_tables["claims"]
    keep = c["facility_id"].isin(sorted(c["facility_id"].unique())[2:5])
    tables = {**_subset(feature_tables, keep), "facilities": feature_tables["facilities"]}
    snap = build_snapshot(tables, AS_OF)
    cl = tables["claims"]
    plan = OnlinePlan(snap)
    persons = list(snap.history["person_key"].value_counts().index[:3])
    pool = cl[cl["admitted_at"] >= AS_OF]
    yield {"tables": tables, "snapshot": snap, "pool": pool, "persons": persons, "plan": plan}
    plan.close()


def test_a_large_request_with_duplicates_and_repeat_patients_inside_it_equals_batch(small):
    """One request of 40 claims (the column-wise path) where claims depend on each other: the
    same patient several times on one day and on nearby days, exact copies of a claim under
    other ids (duplicates of each other), a copy at the same minute; then a second request
    that repeats a claim of the first (a re-send) and copies another: every row equals the
    rows of the compiled plan over everything sent."""
    tables, pool = small["tables"], small["pool"]
    ids = list(pool["claim_id"].iloc[:200:7])
    parts = []
    for n, src in enumerate(ids[:24]):
        person = small["persons"][n % 3] if n % 2 else None
        when = AS_OF + pd.Timedelta(days=3 + n % 4, minutes=480 + 37 * n)
        parts.append(_claim(tables, src, f"BIG{n:03d}", when, person))
    for n in range(8):  # copies of earlier claims in the same request
        base = parts[n]
        parts.append({k: v.assign(claim_id=f"CPY{n:03d}") for k, v in base.items()})
    for n in range(8):  # the same patient again the same day, other claims
        when = AS_OF + pd.Timedelta(days=3 + n % 4, minutes=900 + n)
        parts.append(_claim(tables, ids[24 + n % 4], f"REP{n:03d}", when, small["persons"][0]))
    first = _cat(parts)
    assert len(first["claims"]) >= ob.MIN_CLAIMS
    state = OnlineState(small["snapshot"], remember=True)
    got = state.features(first)
    want = small["plan"].features(first)
    assert got["rule_duplicate"].sum() >= 8 and state.fallbacks == 0
    _compare(want, got)
    again = [parts[3], {k: v.assign(claim_id="CPY900") for k, v in parts[5].items()},
             *parts[10:26]]  # fmt: skip
    second = _cat(again)
    got = state.features(second)
    everything = _cat([*parts, again[1]])
    want = small["plan"].features(everything)
    _compare(want[want["claim_id"].isin(set(got["claim_id"]))], got)
    assert state.fallbacks == 0


def test_records_per_dtype_are_the_values_cleaned_one_by_one():
    """sql.records turns a column per dtype (sql.column): the same values of the same types as
    clean() of each value (text, floats with NaN, -0.0 and infinities, nullable integers, times
    with NaT, booleans, mixed objects)."""
    import numpy as np

    from features.online_state import sql

    n = 40
    df = pd.DataFrame(
        {
            "s": pd.Series(["a", None, "Nguyễn", ""] * (n // 4), dtype="str"),
            "t": pd.Series([None if k % 5 == 0 else f"x{k}" for k in range(n)], dtype="string"),
            "f": [np.nan, -0.0, np.inf, 2.5, 1e20] * (n // 5),
            "i": pd.array([None if k % 3 == 0 else k * 10**15 for k in range(n)], dtype="Int64"),
            "j": np.arange(n, dtype="int64"),
            "d": pd.Series(pd.to_datetime(["2025-01-02 03:04", None] * (n // 2))),
            "b": [True, False] * (n // 2),
            "o": pd.Series([1, "x", None, 2.5] * (n // 4), dtype=object),
        }
    )
    got = sql.records(df)
    want = [{k: sql.clean(v) for k, v in zip(df.columns, row, strict=True)}
            for row in zip(*(df[c].tolist() for c in df.columns), strict=True)]  # fmt: skip
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert list(g) == list(w)
        for k in w:
            assert type(g[k]) is type(w[k]), k
            assert g[k] == w[k] or (g[k] != g[k] and w[k] != w[k]), k
