"""The case-store write of a request's few claims without pandas (serving.caserows) against the
frame path (serving.casefile): the same content hashes, claim documents, claim meta and typical
prices, and the same rows recorded in a real SQLite case store, over the simulated world's claims
(nulls, dates, decimals, odd line numbers included) and over the records the row-wise validator
gives for claims as the API receives them. Documents are compared as sorted JSON text, so an int
where the frame path has a float (3 against 3.0) is a difference too."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from claims_json import claims_json
from factories import claim, drug, service
from sqlalchemy import select

from claimradar.settings import DEV_LINKAGE_KEY
from contract.ingest import load_dataset
from contract.limits import Limits
from contract.validate_rows import canonical_frames, validate_rows
from features.online_state.rows import FeatureRows
from serving import casefile as cf
from serving import caserows as cr
from serving.casefile import OTHER_FEATURES, PEER_FEATURES
from serving.online import CASE_COLUMNS, case_records, raw_records
from serving.store import Case, ScoredClaim, Store

FEATURES = [c for p in PEER_FEATURES for c in p[:2]] + list(OTHER_FEATURES)


def text(x) -> str:
    """Sorted JSON text of a document as it is (a NaN or a numpy value shows)."""
    return json.dumps(x, sort_keys=True, ensure_ascii=False, default=repr)


def plain(x) -> str:
    """Of a value as the store records it (serving.casefile._plain'd: the scored row's meta)."""
    return text(cf._plain(x))


def records(tables: dict) -> dict:
    return {k: None if v is None else v.to_dict("records") for k, v in tables.items()}


@pytest.fixture(scope="module")
def world(sim_dataset) -> dict:
    """150 claims of the world with their lines and facilities, made harder: decimals of every
    kind, a missing and a repeated line number, missing dates, names and money, a claim whose
    facility is not in the facilities table; and a feature frame with missing values."""
    tables = load_dataset(sim_dataset)
    claims = tables["claims"]
    # the claims with the most missing fields first, then any
    nulls = claims.isna().sum(axis=1).sort_values(ascending=False, kind="stable")
    ids = list(nulls.index[:75]) + list(claims.index[:75])
    claims = claims.loc[list(dict.fromkeys(ids))].reset_index(drop=True)
    keep = set(claims["claim_id"])
    drugs = tables["drug_lines"][tables["drug_lines"]["claim_id"].isin(keep)]
    services = tables["service_lines"][tables["service_lines"]["claim_id"].isin(keep)]
    drugs, services = drugs.reset_index(drop=True), services.reset_index(drop=True)
    claims.loc[0, "fund_claimed"] = 1234567.8949
    claims.loc[1, "total_cost"] = np.nan
    claims.loc[2, "discharged_at"] = pd.NaT
    claims.loc[3, "patient_name"] = None
    claims.loc[4, "facility_id"] = "NOT-A-FACILITY"
    claims.loc[5, "birth_date"] = None
    drugs.loc[0, "unit_price"] = 0.33333333
    drugs.loc[1, "quantity"] = 2.5
    per_claim = drugs.groupby("claim_id")["line_no"].transform("size")
    many = drugs.index[per_claim >= 3]
    drugs.loc[many[0], "line_no"] = pd.NA  # the first line of a claim: sorts last
    other = drugs.loc[many[many > many[0]], "claim_id"].iloc[-1]
    mine = drugs.index[drugs["claim_id"] == other]
    drugs.loc[mine, "line_no"] = 7  # one number for every line of a claim: their order kept
    assert drugs.loc[many[0], "claim_id"] != other
    services.loc[0, "unit_price"] = 1e-05
    services.loc[1, "service_code"] = None  # priced by its supply code
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"claim_id": claims["claim_id"].astype("str")})
    frame["facility_level"] = pd.Series(rng.choice(["1", "2", "3", None], len(frame)), dtype="str")
    for c in FEATURES:
        v = rng.normal(1e5, 3e4, len(frame)).round(rng.integers(0, 6))
        v[rng.random(len(frame)) < 0.2] = np.nan
        frame[c] = v
    out = {"claims": claims, "drug_lines": drugs, "service_lines": services}
    return {"tables": out, "facilities": tables["facilities"], "frame": frame}


@pytest.mark.parametrize("n", [1, 5, 150])
@pytest.mark.parametrize("with_facilities", [False, True])
def test_hashes_documents_and_meta_equal_the_frame_path(world, n, with_facilities):
    tables = {k: v for k, v in world["tables"].items()}
    if with_facilities:
        tables["facilities"] = world["facilities"]
    claims = tables["claims"].iloc[:n]
    tables = {**tables, "claims": claims}
    ids = set(claims["claim_id"].astype(str))
    frame = world["frame"][world["frame"]["claim_id"].isin(ids)]
    recs, frame_recs = records(tables), frame.to_dict("records")

    assert cr.content_hashes(recs, ids) == cf.content_hashes(tables, ids)
    assert len(set(cr.content_hashes(recs).values())) == len(ids)  # every claim its own
    assert cr.typical_prices(recs, frame_recs) == cf.typical_prices(tables, frame)
    for f, fr in ((frame, frame_recs), (None, None)):
        want = cf.claim_documents(tables, f)
        got = cr.claim_documents(recs, fr)
        assert list(got) == list(want)
        for cid in want:
            assert text(got[cid]) == text(want[cid]), cid
        scored = pd.DataFrame({"claim_id": claims["claim_id"]})
        meta = cf._claim_meta(scored, tables, f)
        rows = cr.claim_meta(list(claims["claim_id"]), recs, fr)
        for cid in claims["claim_id"]:
            assert plain(rows[cid]) == plain(meta.loc[cid].to_dict()), cid


def test_the_comparison_sees_a_changed_field(world):
    """The checks above are not vacuous: one decimal, one minute or one line number changed
    gives another hash and another document."""
    tables = {k: v.iloc[:3] if k == "claims" else v for k, v in world["tables"].items()}
    base = records(tables)
    cid = base["claims"][0]["claim_id"]
    before = (cr.content_hashes(base)[cid], text(cr.claim_documents(base)[cid]))
    for table, key, change in (
        ("claims", "fund_claimed", lambda v: v + 0.001),
        ("claims", "admitted_at", lambda v: v + pd.Timedelta(minutes=1)),
    ):
        changed = records(tables)
        changed[table][0][key] = change(changed[table][0][key])
        after = (cr.content_hashes(changed)[cid], text(cr.claim_documents(changed)[cid]))
        assert after[0] != before[0] and after[1] != before[1], key


def api_claims(sim_dataset) -> list[dict]:
    """Claims as the API receives them: the world's last ones and hand-made ones with decimals,
    times to the minute and missing optional fields."""
    out = claims_json(sim_dataset.parent / "tabular", 20)
    for i, price in enumerate(("12500.5", "0.125", "7")):
        c = claim(f"RW{i}", T_TONGCHI_BV=1234567.891, T_NGUONKHAC=None, NGAY_TTOAN=None)
        c["xml2"] = [drug(f"RW{i}", 1, DON_GIA=price), drug(f"RW{i}", 2, SO_LUONG="0.5")]
        c["xml3"] = [service(f"RW{i}", 1)]
        out.append(c)
    return out


@pytest.mark.parametrize("n", [1, 23])
def test_validator_records_give_what_its_frames_give(sim_dataset, n):
    """What the API's requests hand the case store: the row-wise validator's records against
    its frames (the same good rows)."""
    claims = api_claims(sim_dataset)[-n:]
    res = validate_rows(raw_records(claims), Limits(workers=1), DEV_LINKAGE_KEY, internal=False)
    assert len(res.good["claims"]) == n, pd.concat(res.rejections)
    tables, recs = res.good, res.records
    assert "_group" not in tables["claims"].columns and "_group" in recs["claims"][0]
    for name, frame in tables.items():
        assert len(recs[name]) == len(frame)
    assert cr.content_hashes(recs) == cf.content_hashes(tables)
    want, got = cf.claim_documents(tables), cr.claim_documents(recs)
    assert {c: text(d) for c, d in got.items()} == {c: text(d) for c, d in want.items()}
    meta = cf._claim_meta(tables["claims"][["claim_id"]], tables, None)
    rows = cr.claim_meta([r["claim_id"] for r in recs["claims"]], recs, None)
    assert {c: plain(m) for c, m in rows.items()} == {
        c: plain(meta.loc[c].to_dict()) for c in meta.index
    }


@pytest.mark.parametrize("n", [0, 1, 23])
def test_the_records_make_the_validators_frames(sim_dataset, n):
    """frames=False builds no frame and keeps the same records; canonical_frames turns them into
    the frames it would have built (values and dtypes)."""
    claims = api_claims(sim_dataset)[-n:] if n else []
    raw = raw_records(claims)
    res = validate_rows(raw, Limits(workers=1), DEV_LINKAGE_KEY, internal=False)
    lean = validate_rows(raw, Limits(workers=1), DEV_LINKAGE_KEY, internal=False, frames=False)
    assert lean.good == {} and lean.records == res.records
    made = canonical_frames(lean.records)
    for name, frame in res.good.items():
        pd.testing.assert_frame_equal(made[name], frame.reset_index(drop=True))


def test_case_records_are_the_case_frame_rows():
    """The feature values the online path hands the case store equal the records of
    FeatureRows.frame(CASE_COLUMNS), missing and infinite values included."""
    rng = np.random.default_rng(3)
    names = list(FeatureRows.names)
    values = rng.normal(0, 1e4, (6, len(names))).round(3)
    values[:, ::2] = values[:, ::2].round()  # whole numbers: still floats in the frame
    values[rng.random(values.shape) < 0.2] = np.nan
    values[0, names.index("claim_cost")] = np.inf  # as from_rows leaves it: NaN
    values[np.isinf(values)] = np.nan
    ids = [
        {"claim_id": f"C{i}", "admitted_at": pd.Timestamp("2025-03-01 08:00"),
         "discharged_at": None, "facility_id": "F1", "facility_level": [None, "2"][i % 2],
         "visit_type": "01", "fund_claimed": 1.0, "total_cost": 2.0}
        for i in range(6)
    ]  # fmt: skip
    rows = FeatureRows(ids, values)
    want = rows.frame(CASE_COLUMNS).to_dict("records")
    got = case_records(rows)
    assert [plain({k: r[k] for k in g}) for r, g in zip(want, got, strict=True)] == [
        plain(g) for g in got
    ]
    assert set(CASE_COLUMNS) <= set(got[0])


def recorded(store: Store) -> list[dict]:
    with store.session() as s:
        rows = s.scalars(select(ScoredClaim).order_by(ScoredClaim.claim_key)).all()
        cases = {c.claim_key: c.claim_version for c in s.scalars(select(Case))}
        return [
            {
                "key": r.claim_key, "hash": r.content_hash, "version": r.claim_version,
                "claim": text(r.claim), "facility_level": r.facility_level, "month": r.month,
                "fund": r.fund_claimed, "person": r.person_key, "band": r.band,
                "sealed": r.identity is not None, "case": cases.get(r.claim_key),
                "codes": r.rule_codes, "features": r.reason_features,
            }
            for r in rows
        ]  # fmt: skip


def test_fill_rows_records_what_fill_store_records(world, tmp_path):
    """Both ways into two real SQLite stores: the same scored rows, documents and cases; then
    the same claims again with one changed (a new version moving its case) and unchanged."""
    tables = dict(world["tables"])
    claims = tables["claims"].iloc[:12]
    tables["claims"] = claims
    frame = world["frame"][world["frame"]["claim_id"].isin(set(claims["claim_id"]))]
    scored = pd.DataFrame(
        {
            "claim_id": claims["claim_id"],
            "model_version": "3",
            "risk_score": np.linspace(0.1, 0.9, len(claims)),
            "expected_overbilled": 1000.5,
            "priority": np.linspace(10, 1e6, len(claims)),
            "band": ["review", "low", "high", "watch"] * 3,
            "reasons": [[{"feature": "drug_share", "value": 0.5}]] * len(claims),
            "rule_hits": [[{"code": "R13", "amount": 10.0}], []] * 6,
        }
    )
    a = Store(f"sqlite:///{tmp_path / 'frames.db'}")
    b = Store(f"sqlite:///{tmp_path / 'rows.db'}")
    kw = {"open_bands": ("high", "review"), "facility_months": False}
    assert cf.fill_store(a, scored, tables, frame, "t", **kw) == 12
    got = cr.fill_batch(b, scored.to_dict("records"), records(tables), frame.to_dict("records"),
                        "t", **kw)  # fmt: skip
    assert got == 12
    assert recorded(b) == recorded(a)
    # again: the first claim changed (a case: it moves), a low one changed, the rest as they were
    again = claims.copy()
    again.loc[0, "fund_claimed"] = again.loc[0, "fund_claimed"] + 1
    again.loc[1, "total_cost"] = 1.5
    tables2 = {**tables, "claims": again}
    assert cf.fill_store(a, scored, tables2, frame, "t", **kw) == 2
    # as frames (small: row-wise inside fill_batch) this time
    assert cr.fill_batch(b, scored, tables2, frame, "t", **kw) == 2
    assert recorded(b) == recorded(a)
    assert {r["version"] for r in recorded(a)} == {1, 2}


def test_the_writer_records_requests_of_records_and_of_frames(tmp_path):
    """The API's small requests hand the case writer records: recorded before write returns,
    replays idempotent, and never in one transaction with a request of frames."""
    from serving.writer import CaseWriter, _groups, _Job

    def request(ids: list[str]):
        claims = []
        for i in ids:
            c = claim(i)
            c["xml2"], c["xml3"] = [drug(i, 1)], [service(i, 1)]
            claims.append(c)
        res = validate_rows(raw_records(claims), Limits(workers=1), DEV_LINKAGE_KEY, internal=False)
        scored = [
            {"claim_id": i, "model_version": "1", "risk_score": 0.5, "expected_overbilled": 1.0,
             "priority": 2.0, "band": "review", "reasons": [], "rule_hits": []}
            for i in ids
        ]  # fmt: skip
        return scored, res

    store = Store(f"sqlite:///{tmp_path / 'cases.db'}")
    w = CaseWriter(store)
    try:
        scored, res = request(["K1", "K2"])
        assert w.write(scored, res.records, None, "api:t") == 2
        assert w.write(scored, res.records, None, "api:t") == 0  # sent again
        other, res2 = request(["K3"])
        assert w.write(pd.DataFrame(other), res2.good, None, "api:t") == 1
    finally:
        w.close()
    with store.session() as s:
        assert len(s.scalars(select(Case)).all()) == 3
    jobs = [
        _Job(scored, res.records, None, "a"),
        _Job(pd.DataFrame(other), res2.good, None, "a"),
        _Job(other, res2.records, None, "a"),
    ]
    assert [len(g) for g in _groups(jobs)] == [1, 1, 1]  # kinds apart, then K3 twice
    assert [len(g) for g in _groups([jobs[0], jobs[2]])] == [2]


# -- the frame path's faster ways to the same values (issue 14) ----------------------------------
def _plain_rows(df: pd.DataFrame) -> list[dict]:
    """What _records gave before it went column by column: _plain of every to_dict value."""
    return [{k: cf._plain(v) for k, v in r.items()} for r in df.to_dict("records")]


def test_plain_columns_give_the_values_plain_gives_value_by_value():
    """casefile._records converts a column per dtype (_plain_column): the same values and
    types as _plain of each value, for floats (rounded to 3 decimals as Python rounds, not as
    numpy does), nullable and plain integers, text, times and anything else."""
    rng = np.random.default_rng(14)
    n = 3000
    floats = np.array(
        [
            round(v, int(d))
            for v, d in zip(rng.normal(0, 1e4, n), rng.integers(2, 7, n), strict=True)
        ]
    )
    floats[rng.random(n) < 0.3] += 0.0005  # ties at the 4th decimal
    floats[:8] = [np.nan, np.inf, -np.inf, -0.0, 0.0005, 1.0005, 2.675, 1e20]
    df = pd.DataFrame(
        {
            "f": floats,
            "i": pd.array([None if k % 7 == 0 else k * 10**9 for k in range(n)], dtype="Int64"),
            "j": np.arange(n, dtype="int64") - 5,
            "s": pd.Series(["a", None, "Nguyễn", ""] * (n // 4), dtype="str"),
            "t": pd.Series([None if k % 5 == 0 else f"x{k}" for k in range(n)], dtype="string"),
            "d": pd.to_datetime(
                pd.Series(rng.integers(0, 2_000_000_000, n), dtype="int64"), unit="s"
            ).where(rng.random(n) > 0.1),
            "b": rng.random(n) > 0.5,
            "o": pd.Series([1, "x", None, 2.5] * (n // 4), dtype=object),
        }
    )
    got = cf._records(df, df.columns)
    want = _plain_rows(df)
    assert text(got) == text(want)
    for g, w in zip(got, want, strict=True):
        assert [type(v) for v in g.values()] == [type(v) for v in w.values()]
    # the reference sees a numpy rounding: a float that numpy rounds otherwise is in the sample
    assert any(round(v, 3) != float(np.round(v, 3)) for v in floats[np.isfinite(floats)].tolist())
    assert cf._records(df, ["f", "missing"]) == [{"f": r["f"]} for r in want]


@pytest.mark.parametrize("with_facilities", [False, True])
def test_summary_documents_are_the_summaries_of_claim_documents(world, with_facilities):
    tables = dict(world["tables"])
    if with_facilities:
        tables["facilities"] = world["facilities"]
    want = {cid: {"summary": d["summary"]} for cid, d in cf.claim_documents(tables).items()}
    got = cf.summary_documents({"claims": tables["claims"], "facilities": tables.get("facilities")})
    assert list(got) == list(want)
    assert text(got) == text(want)


def test_claim_documents_are_json_safe_as_made():
    """The scored rows take the claim documents as they are (_score_row no longer runs them
    through _plain again): every value in them is already what _plain would make of it."""
    from factories import claim, drug, service

    claims = []
    for i in ("P1", "P2"):
        c = claim(i)
        c["xml2"], c["xml3"] = [drug(i, 1), drug(i, 2)], [service(i, 1)]
        claims.append(c)
    res = validate_rows(raw_records(claims), Limits(workers=1), DEV_LINKAGE_KEY, internal=False)
    tables = {k: v for k, v in res.good.items()}
    frame = pd.DataFrame({"claim_id": ["P1", "P2"], "facility_level": ["2", None],
                          **{c: [1.23456, np.nan] for c in FEATURES}})  # fmt: skip
    for docs in (
        cf.claim_documents(tables, frame),
        cr.claim_documents(records(tables), frame.to_dict("records")),
    ):
        for doc in docs.values():
            assert doc["lines"] and doc["peers"]
            assert text(cf._plain(doc)) == text(doc)


def test_a_claim_that_is_a_case_keeps_its_full_document_in_a_low_band(world, tmp_path):
    """The cases are read in the recording transaction (record_scores(documents=...)): a claim
    that has a case gets its full document whatever its band now, one that has none its
    summary alone; both ways, as one request and again as a changed claim."""
    tables = dict(world["tables"])
    claims = tables["claims"].iloc[:4]
    tables["claims"] = claims
    ids = list(claims["claim_id"])
    frame = world["frame"][world["frame"]["claim_id"].isin(set(ids))]

    def scored(bands):
        return pd.DataFrame({"claim_id": ids, "model_version": "3", "risk_score": 0.5,
                             "expected_overbilled": 10.0, "priority": 5.0, "band": bands,
                             "reasons": [[]] * 4, "rule_hits": [[]] * 4})  # fmt: skip

    changed = claims.copy()
    changed["total_cost"] = changed["total_cost"].fillna(0) + 1  # every claim a new version
    kw = {"open_bands": ("high", "review"), "facility_months": False}
    for way in ("frames", "records"):
        store = Store(f"sqlite:///{tmp_path / way}.db")

        def fill(s, t, way=way, store=store):
            if way == "frames":
                return cf.fill_store(store, s, t, frame, "t", **kw)
            return cr.fill_batch(store, s.to_dict("records"), records(t),
                                 frame.to_dict("records"), "t", **kw)  # fmt: skip

        assert fill(scored(["review", "low", "high", "low"]), tables) == 4
        assert fill(scored(["low"] * 4), {**tables, "claims": changed}) == 4
        with store.session() as s:
            rows = s.execute(select(ScoredClaim).order_by(ScoredClaim.id)).scalars().all()
            latest = {r.claim_id: r.claim for r in rows if r.claim_version == 2}
        assert sorted(latest) == sorted(ids)
        full = {cid for cid, doc in latest.items() if "lines" in doc}
        assert full == {ids[0], ids[2]}, way  # the cases, though low now
        assert all(set(latest[c]) == {"summary"} for c in (ids[1], ids[3]))


@pytest.mark.parametrize("with_facilities", [False, True])
def test_chunk_documents_are_what_claim_and_summary_documents_give(world, with_facilities):
    """A chunk's documents made column by column over the whole tables (casefile._chunk_documents)
    against its parts (chunk_parts: claim_documents of the full ones' rows, summary_documents of
    the others'): the same document per claim, for a chunk of some of the claims, full ones
    chosen at random, the frame's levels where the facilities table has none."""
    tables = dict(world["tables"])
    if with_facilities:
        tables["facilities"] = world["facilities"]
    frame = world["frame"]
    ids = list(tables["claims"]["claim_id"].astype(str))
    rng = np.random.default_rng(9)
    part = pd.DataFrame({"claim_id": [c for c in ids if rng.random() < 0.8]})
    full = {c for c in ids if rng.random() < 0.4}
    typical = cf.typical_prices(tables, frame)
    for f in (frame, None, frame.iloc[:0]):
        want = cf.chunk_parts(part, tables, f, full, typical)
        got = cf._chunk_documents(part, tables, f, full, typical)
        assert {c: text(d) for c, d in got.items()} == {c: text(d) for c, d in want.items()}
        assert sum("lines" in d for d in got.values()) > 10
    # a claim twice in the claims: by the parts, as before
    twice = {**tables, "claims": pd.concat([tables["claims"], tables["claims"].iloc[:1]])}
    small = pd.DataFrame({"claim_id": ids[1:4]})
    assert cf._chunk_documents(small, twice, frame, set(ids[1:3]), typical) == cf.chunk_parts(
        small, twice, frame, set(ids[1:3]), typical
    )


@pytest.mark.parametrize("with_facilities", [False, True])
def test_claim_metas_are_the_claim_meta_frame_rows(world, with_facilities):
    """fill_store's claim meta from the columns' lists (casefile.claim_metas) against the frame
    of _claim_meta: the same values once made plain, with and without the feature frame, for a
    scored claim the claims do not hold, and a frame that names a claim twice."""
    tables = dict(world["tables"])
    if with_facilities:
        tables["facilities"] = world["facilities"]
    ids = list(tables["claims"]["claim_id"])
    scored = pd.DataFrame({"claim_id": [*ids[::2], "NOT-A-CLAIM"]})
    frame = world["frame"]
    twice = pd.concat([frame, frame.iloc[:5].assign(facility_level="X")])
    for f in (frame, None, twice):
        want = cf._claim_meta(scored, tables, f).to_dict("index")
        got = cf.claim_metas(scored, tables, f)
        assert list(got) == list(want)
        assert {c: plain(m) for c, m in got.items()} == {c: plain(m) for c, m in want.items()}
