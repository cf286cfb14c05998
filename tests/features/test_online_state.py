"""The online per-key state (features.online_state) against the batch definitions: the claim's
own columns, a month of claims, a stream of requests remembered one after another (across a
month's end, late claims falling back to the compiled plan), re-sent and duplicated claims, and
random claim streams (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from features.pipeline import build_snapshot

AS_OF = pd.Timestamp("2025-05-01")


@pytest.fixture(scope="module")
def full(feature_frame) -> pd.DataFrame:
    return feature_frame.copy()


@pytest.fixture(scope="module")
def snapshot(may_snapshot):
    assert may_snapshot.as_of == AS_OF
    return may_snapshot


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
    _check_enriched(feature_tables, _price_list(feature_tables) if listed else None)


def _lookups(eng: Engine, base, points, pl) -> tuple:
    """The reference prices and item statistics of the Ibis definitions (on `eng`, from
    assembly.enriched_claims' base and price points), as the state's lookups."""
    if pl is not None:
        ref = eng.execute(ln.listed_price_reference(
            eng.register("pl", pl.astype({"price": "float64"})), base))  # fmt: skip
    else:
        ref = eng.execute(ln.learned_price_reference(points, PRICE_MONTHS, PRICE_QUANTILE,
                                                     PRICE_MIN_LINES))  # fmt: skip
    stats = eng.execute(ln.item_reference(points))
    items = {(r.item_key, r.facility_level, r.month): r.value for r in stats.itertuples()}
    refs: dict = {}
    for r in ref.itertuples():
        refs.setdefault((r.item_key, r.facility_level, r.month), []).append(r.ref_price)
    return (lambda k, lv, m: refs.get((k, lv, m), [None]),
            lambda k, lv, m: items.get((k, lv, m)))  # fmt: skip


def _check_enriched(tables: dict, pl) -> list[dict]:
    """claim.enriched_rows against assembly.enriched_claims, column for column."""
    listed = pl is not None
    feature_tables = tables
    with Engine.connect() as eng:
        base, _, points, enriched = enriched_claims(eng, input_tables(eng, feature_tables), pl)
        want = eng.execute(enriched)
        ref_of, item_of = _lookups(eng, base, points, pl)
    facilities = {f["facility_id"]: f for f in oc.records(feature_tables["facilities"])}
    rows = oc.enriched_rows(feature_tables, facilities, ref_of, listed, item_of)
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
    return rows


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


def test_a_resent_claim_replaces_its_copy_and_a_copy_is_a_duplicate(snapshot, feature_tables):
    """A claim sent again (same MA_LK) replaces its remembered copy: it is not its own
    duplicate, and its features are unchanged. The same claim under another MA_LK, sent in a
    later request, is caught as a duplicate of the remembered one."""
    state = OnlineState(snapshot, remember=True)
    c = feature_tables["claims"]
    one = c[(c["admitted_at"] >= "2025-05-10") & (c["admitted_at"] < "2025-05-11")].head(1)
    batch = _subset(feature_tables, c["claim_id"].isin(one["claim_id"]))
    first = state.features(batch)
    again = state.features(batch)
    pd.testing.assert_frame_equal(first, again)
    assert again["rule_duplicate"].iloc[0] == 0
    copy = {k: v.assign(claim_id=v["claim_id"] + "9") for k, v in batch.items()}
    dup = state.features(copy)
    assert dup["rule_duplicate"].iloc[0] == 1 and state.fallbacks == 0
    assert dup["rule_duplicate_amount"].iloc[0] == one["fund_claimed"].iloc[0]


# -- random claim streams ----------------------------------------------------------------------

STREAM = settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def small(feature_tables) -> dict:
    """Three facilities of the world: the history before AS_OF, a pool of May-June claims,
    patients with a history, the snapshot, and the compiled plan (remember=False) that answers
    for everything sent so far (the oracle; tests/features/test_pipeline.py holds it to
    build_features)."""
    from features.pipeline import OnlinePlan

    c = feature_tables["claims"]
    keep = c["facility_id"].isin(sorted(c["facility_id"].unique())[2:5])
    tables = {**_subset(feature_tables, keep), "facilities": feature_tables["facilities"]}
    snap = build_snapshot(tables, AS_OF)
    cl = tables["claims"]
    pool = cl[cl["admitted_at"] >= AS_OF]
    persons = list(snap.history["person_key"].value_counts().index[:4])
    plan = OnlinePlan(snap)
    yield {"tables": tables, "snapshot": snap, "pool": pool, "persons": persons, "plan": plan}
    plan.close()


def _claim(tables: dict, src: str, new_id: str, admitted: pd.Timestamp, person=None) -> dict:
    """Claim `src` with its lines as claim `new_id` admitted at `admitted` (every time of the
    claim moved with it), of `person` when given."""
    cl = tables["claims"]
    head = cl[cl["claim_id"] == src].copy()
    delta = admitted - head["admitted_at"].iloc[0]
    head["claim_id"] = new_id
    head["admitted_at"] = head["admitted_at"] + delta
    head["discharged_at"] = head["discharged_at"] + delta
    if person is not None:
        head["person_key"] = person
    out = {"claims": head}
    for t, times in (("drug_lines", ("ordered_at",)),
                     ("service_lines", ("ordered_at", "performed_at", "result_at"))):  # fmt: skip
        lines = tables[t][tables[t]["claim_id"] == src].copy()
        lines["claim_id"] = new_id
        for col in times:
            lines[col] = lines[col] + delta
        out[t] = lines
    return out


def _cat(parts: list[dict]) -> dict:
    return {k: pd.concat([p[k] for p in parts], ignore_index=True) for k in parts[0]}


EVENT = st.tuples(
    st.sampled_from(["new", "new", "new", "copy", "resend"]),
    st.integers(0, 10_000),  # which pool claim (or which claim sent before)
    st.integers(0, 4),  # which patient (4: the pool claim's own)
    st.integers(0, 50),  # admission day after AS_OF (into June)
    st.integers(0, 24 * 60 - 1),  # minute of the day
    st.booleans(),  # a request ends after this claim
)


@given(events=st.lists(EVENT, min_size=2, max_size=9))
@STREAM
def test_random_claim_streams_equal_batch_over_what_was_sent(small, events):
    """Random streams of requests (new claims of random patients and times, copies of claims
    sent before, re-sent claims with a changed cost; any order within a month, months in
    order): every request's rows equal the rows computed over the snapshot history plus every
    claim sent so far (its latest copy)."""
    tables, pool = small["tables"], small["pool"]
    sent: dict[str, dict] = {}  # claim_id -> latest copy
    claims = []
    for n, (kind, i, p, day, minute, _) in enumerate(events):
        if kind == "new" or not sent:
            src = pool["claim_id"].iloc[i % len(pool)]
            when = AS_OF + pd.Timedelta(days=day, minutes=minute)
            person = small["persons"][p] if p < 4 else None
            claims.append(_claim(tables, src, f"HYP{n:04d}", when, person))
        else:
            ids = list(sent)
            base = sent[ids[i % len(ids)]]
            head = base["claims"]
            new_id = f"HYP{n:04d}" if kind == "copy" else head["claim_id"].iloc[0]
            copy = {k: v.assign(claim_id=new_id) for k, v in base.items()}
            if kind == "resend":
                copy["claims"] = copy["claims"].assign(total_cost=head["total_cost"] * 1.25)
            claims.append(copy)
        sent[claims[-1]["claims"]["claim_id"].iloc[0]] = claims[-1]
    # requests: months in order, cut where the events say and where a claim id would repeat
    order = sorted(
        range(len(claims)), key=lambda k: claims[k]["claims"]["admitted_at"].iloc[0].month
    )
    requests, current = [], []
    for k in order:
        cid = claims[k]["claims"]["claim_id"].iloc[0]
        month = claims[k]["claims"]["admitted_at"].iloc[0].month
        if current and (cid in {c["claims"]["claim_id"].iloc[0] for c in current}
                        or month != current[0]["claims"]["admitted_at"].iloc[0].month):  # fmt: skip
            requests.append(current)
            current = []
        current.append(claims[k])
        if events[k][5]:
            requests.append(current)
            current = []
    requests += [current] if current else []
    state = OnlineState(small["snapshot"], remember=True)
    latest: dict[str, dict] = {}
    for req in requests:
        for c in req:
            latest[c["claims"]["claim_id"].iloc[0]] = c
        got = state.features(_cat(req))
        want = small["plan"].features(_cat(list(latest.values())))
        want = want[want["claim_id"].isin(set(got["claim_id"]))]
        _compare(want, got)
    assert state.fallbacks == 0


# -- the shared store (Redis) ------------------------------------------------------------------


def test_two_replicas_on_one_redis_equal_batch(snapshot, feature_tables, full, redis_server):
    """Two states on one Redis (two replicas), requests alternating between them from May into
    June, then late April claims through the second: every row equals build_features over
    everything, as if one process had seen every claim; a third state started afterwards (a
    restart) reads the remembered claims back, and a state on a later snapshot (a model swap)
    counts the claims both hold once."""
    from features.online_state.shared import RedisStore

    store = RedisStore(redis_server.url(), prefix="t-replicas:")
    store.clear()
    a = OnlineState(snapshot, remember=True, store=store)
    b = OnlineState(snapshot, remember=True, store=RedisStore(redis_server.url(), "t-replicas:"))
    c = feature_tables["claims"]
    first = (c["admitted_at"] >= AS_OF) & (c["admitted_at"] < "2025-05-25")
    got = [a.features(_subset(feature_tables, first))]
    part = c[(c["admitted_at"] >= "2025-05-25") & (c["admitted_at"] < "2025-06-04")]
    groups = _minute_groups(part)
    tables = {**feature_tables, "claims": c.set_index("claim_id", drop=False)}
    for i in range(0, len(groups), 2):
        ids = [x for g in groups[i : i + 2] for x in g]
        replica = b if (i // 2) % 2 == 0 else a
        got.append(replica.features(_subset(tables, c["claim_id"].isin(ids).to_numpy())))
    assert a.fallbacks == b.fallbacks == 0
    sent = set(part["claim_id"]) | set(c.loc[first, "claim_id"])
    _compare(full[full["claim_id"].isin(sent)], pd.concat(got))
    late = c[(c["admitted_at"] >= "2025-04-28") & (c["admitted_at"] < "2025-04-29")]
    out = b.features(_subset(feature_tables, c["claim_id"].isin(late["claim_id"])))
    assert b.fallbacks == 1
    _compare(full[full["claim_id"].isin(set(late["claim_id"]))], out)
    # a restart: a new state on the same store answers June as if it had seen everything
    june = c[(c["admitted_at"] >= "2025-06-04") & (c["admitted_at"] < "2025-06-05")]
    restarted = OnlineState(snapshot, remember=True, store=store)
    out = restarted.features(_subset(feature_tables, c["claim_id"].isin(june["claim_id"])))
    assert restarted.fallbacks == 0 and restarted.epoch == b.epoch > 0
    _compare(full[full["claim_id"].isin(set(june["claim_id"]))], out)
    # a model swap: the new snapshot holds claims remembered before it, they count once
    swapped = OnlineState(build_snapshot(feature_tables, "2025-06-05"), remember=True, store=store)
    nxt = c[(c["admitted_at"] >= "2025-06-05") & (c["admitted_at"] < "2025-06-06")]
    out = swapped.features(_subset(feature_tables, c["claim_id"].isin(nxt["claim_id"])))
    assert swapped.fallbacks == 0
    _compare(full[full["claim_id"].isin(set(nxt["claim_id"]))], out)
    store.clear()


def _mutated(tables: dict, n: int, seed: int) -> dict:
    """n claims of the world with their fields and lines scrambled so that every claim-level
    and line-level check (sex and age edits, card validity, totals, line arithmetic, benefit
    level, beds, order times, visit type vs duration, costly, supportive, out of scope...)
    fires on some of them, with missing values mixed in."""
    rng = np.random.default_rng(seed)
    c = tables["claims"].sample(n, random_state=seed).reset_index(drop=True).copy()
    ids = set(c["claim_id"])

    def pick(values, k):
        return [values[i] for i in rng.integers(0, len(values), k)]

    c["sex"] = pd.array(pick([1, 2, 3, None], n), dtype="Int64")
    c["primary_icd"] = pick(["O80", "N40.1", "P07.3", "C61", "R54", "n95.1", "Z34.0", "J20.9",
                             "Q53", "A09", None], n)  # fmt: skip
    years, months, days = (
        rng.integers(1930, 2025, n),
        rng.integers(0, 13, n),
        rng.integers(0, 29, n),
    )
    c["birth_date"] = [None if rng.random() < 0.05 else f"{y}{m:02d}{d:02d}"
                       for y, m, d in zip(years, months, days, strict=True)]  # fmt: skip
    c["card_valid_from"] = pick(["20240101", "20250615", "20991231", None], n)
    c["card_valid_to"] = pick(["20301231", "20250110", "20200101", None], n)
    c["card_number"] = [x[:2] + str(rng.integers(1, 7)) + x[3:] for x in c["card_number"]]
    c["copay_waiver_date"] = pick([None, None, "20250101"], n)
    c["route_code"] = pick(["1.2", "2", "3.1", None], n)
    c["referred_from"] = pick([None, None, "49001"], n)
    c["referred_to"] = pick([None, None, "49002"], n)
    c["visit_type"] = pick(["01", "02", "03", "04", "05", "06", "07", "08", "09"], n)
    c["discharged_at"] = c["admitted_at"] + pd.to_timedelta(
        pick([30, 200, 239, 241, 1500, 4000, 20000], n), unit="min")  # fmt: skip
    c["total_cost"] = c["total_cost"] * pick([1.0, 1.0, 1.3, 0.5], n)
    c["fund_claimed"] = c["fund_claimed"] * pick([1.0, 1.0, 1.2], n)
    c["total_insured_cost"] = [None if rng.random() < 0.2 else v for v in c["total_insured_cost"]]
    c["outcome"] = pick([1, 2, 5, 8], n)
    c["discharge_type"] = pick([1, 2, 5], n)
    c["secondary_icd"] = pick([None, "I10", "I10;E11;K29"], n)
    out = {"claims": c, "facilities": tables["facilities"]}
    for t in ("drug_lines", "service_lines"):
        x = tables[t][tables[t]["claim_id"].isin(ids)].reset_index(drop=True).copy()
        k = len(x)
        x["benefit_pct"] = pd.array(pick([80, 95, 100, None], k), dtype="Int64")
        x["amount"] = x["amount"] * pick([1.0, 1.0, 1.5], k)
        x["insured_amount"] = [None if rng.random() < 0.1 else v for v in x["insured_amount"]]
        x["fund_claimed"] = x["fund_claimed"] * pick([1.0, 1.0, 2.0], k)
        x["unit_price"] = x["unit_price"] * pick([1.0, 1.0, 400.0], k)
        x["scope"] = pick([1, 1, 2], k)
        x["ordered_at"] = x["ordered_at"] + pd.to_timedelta(pick([0, 0, -3000, 9000], k), "min")
        x["clinician_id"] = pick([None, "000001/QNA-CCHN", "000002/QNA-CCHN"], k)
        if t == "drug_lines":
            x["dosage"] = pick(["1 viên x 2 [2]", "[0,5]", "x", None], k)
            x["drug_name"] = pick(["Albumin 20%", "Paracetamol", None], k)
        else:
            x["cost_group"] = pick([1, 2, 3, 8, 10, 13, 14, 15, 16, 18], k)
            x["result_at"] = x["result_at"] + pd.to_timedelta(pick([0, -9000], k), "min")
        out[t] = x
    return out


@pytest.mark.parametrize("listed", [False, True])
def test_enriched_rows_of_scrambled_claims_equal_the_ibis_definitions(feature_tables, listed):
    """The per-row enrichment on claims where every check fires somewhere (the simulated world
    alone leaves most claim checks quiet)."""
    world = _mutated(feature_tables, 400, seed=11 + listed)
    rows = _check_enriched(world, _price_list(feature_tables) if listed else None)
    for rule in ("sex_diagnosis", "age_diagnosis", "card_invalid", "totals_mismatch",
                 "line_arithmetic", "benefit_level", "bed_on_outpatient", "order_outside_stay",
                 "visit_type_duration", "bed_days_over_stay"):  # fmt: skip
        assert 0 < sum(r[f"rule_{rule}"] for r in rows) < len(rows), rule
