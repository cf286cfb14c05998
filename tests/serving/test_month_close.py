"""Closing a month in the case store (serving/month_close.py), on SQLite and a real PostgreSQL:
claims scored one at a time (no facility-shift money when scored) are re-ranked by the early
warning once their month is closed; a re-close changes nothing; a zero weight changes nothing; the
warning read from the store equals the one read from the same claims as a dataset."""

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from features.early_warning import shift_evidence, warnings_by_month
from scoring.bundle import ModelBundle
from serving.month_close import close_month, store_tables
from serving.store import AuditEvent, Case, FacilityMonth, ScoredClaim, Store

MONTHS = [f"2025-{m:02d}" for m in range(1, 8)]
FACILITIES = ["01001", "01002", "01003", "01004"]
CLIMBER, CLOSED = "01001", "2025-07"
EXPECTED = 10_000.0  # every claim's expected overbilled amount (VND)
THRESHOLDS = {"high": 400_000.0, "review": 60_000.0, "watch": 20_000.0}


def _bundle(weight: float) -> ModelBundle:
    return ModelBundle(
        risk=None, feature_names=[], categories={}, calibration=([], []),
        rank_weights={"facility_shift": weight}, band_thresholds=THRESHOLDS,
    )  # fmt: skip


def _claims(seed: int = 7) -> pd.DataFrame:
    """Four facilities of one level, ~90 claims a month in four diagnosis x visit-type cells with
    ordinary noise; the climber's cost per visit jumps 40% in the closed month."""
    rng = np.random.default_rng(seed)
    rows = []
    for fac in FACILITIES:
        for month in MONTHS:
            n = int(rng.integers(80, 100))
            cell = rng.integers(0, 4, n)
            base = np.array([250_000.0, 400_000.0, 600_000.0, 1_200_000.0])[cell]
            cost = base * np.exp(rng.normal(0.0, 0.25, n))
            if fac == CLIMBER and month == CLOSED:
                cost *= 1.4
            day = rng.integers(1, 28, n)
            for i in range(n):
                rows.append(
                    {
                        "claim_id": f"{fac}-{month}-{i:03d}",
                        "facility_id": fac,
                        "month": month,
                        "admitted_at": f"{month}-{day[i]:02d}T08:00",
                        "visit_type": "01" if cell[i] % 2 == 0 else "03",
                        "primary_icd": "J06" if cell[i] < 2 else "K29",
                        "total_cost": round(float(cost[i])),
                        "fund_claimed": round(0.8 * float(cost[i])),
                    }
                )
    return pd.DataFrame(rows)


def _rows(claims: pd.DataFrame) -> list[dict]:
    """The claims as the API records them: no shift money, the model's expected amount alone."""
    out = []
    for r in claims.to_dict("records"):
        prio = min(EXPECTED, r["fund_claimed"])
        out.append(
            {
                "claim_id": r["claim_id"], "content_hash": f"h-{r['claim_id']}",
                "model_version": "1", "risk_score": 0.1, "expected_overbilled": EXPECTED,
                "priority": prio, "band": "low", "facility_id": r["facility_id"],
                "facility_level": "H", "month": r["month"], "fund_claimed": r["fund_claimed"],
                "reasons": [], "rule_hits": [],
                "claim": {"summary": {k: r[k] for k in (
                    "claim_id", "facility_id", "visit_type", "admitted_at", "primary_icd",
                    "total_cost", "fund_claimed")}},
            }
        )  # fmt: skip
    return out


@pytest.fixture
def world(store_url):
    store = Store(store_url)
    claims = _claims()
    store.record_scores(_rows(claims), actor="api:test", open_bands=("high", "review"))
    yield store, claims
    store.engine.dispose()


def _state(store) -> dict[str, tuple[float, str, float | None]]:
    with store.session() as s:
        return {
            r.claim_id: (r.priority, r.band, r.shift_added) for r in s.scalars(select(ScoredClaim))
        }


def _dataset(claims: pd.DataFrame) -> dict[str, pd.DataFrame]:
    c = claims.assign(admitted_at=pd.to_datetime(claims["admitted_at"]))
    c["claim_id"] = c["facility_id"] + "/" + c["claim_id"]  # the store's claim key
    fac = pd.DataFrame({"facility_id": FACILITIES, "level": "H"})
    return {"claims": c.drop(columns=["month"]), "facilities": fac}


def test_closing_a_month_lifts_the_warned_facility_and_only_it(world):
    store, claims = world
    before = _state(store)
    out = close_month(store, CLOSED, lambda v: _bundle(0.5))
    assert out.warned == [CLIMBER]
    after = _state(store)
    lifted = {c for c in after if after[c][0] > before[c][0] + 1}
    assert lifted, "no claim of the warned facility was lifted"
    assert all(c.startswith(f"{CLIMBER}-{CLOSED}") for c in lifted)
    # the money added is half the shift evidence, never above what the claim asks
    shift = shift_evidence(_dataset(claims), [2025 * 12 + 6]).set_index("claim_id")
    fund = claims.set_index("claim_id")["fund_claimed"]
    for c in lifted:
        money = shift.loc[f"{CLIMBER}/{c}", "facility_shift"]
        assert after[c][2] == pytest.approx(0.5 * min(money, fund[c]))
        assert after[c][0] == pytest.approx(min(fund[c], EXPECTED + after[c][2]))
        assert after[c][0] <= fund[c] + 1e-6
    # claims lifted into a review band are cases now, at their new priority, audited
    review = {c for c in lifted if after[c][1] in ("high", "review")}
    assert review and out.cases_opened == len(review)
    with store.session() as s:
        cases = {c.claim_id: c.priority for c in s.scalars(select(Case))}
        fm = s.scalars(select(FacilityMonth).where(FacilityMonth.month == CLOSED)).all()
        reranks = s.scalars(select(AuditEvent).where(AuditEvent.action == "rerank")).all()
    assert set(cases) == review
    assert all(cases[c] == pytest.approx(after[c][0]) for c in review)
    assert {f.facility_id for f in fm if f.warning} == {CLIMBER} and len(fm) == 4
    assert len(reranks) == out.rows_reranked == len([c for c in after if after[c] != before[c]])


def test_a_second_close_changes_nothing_and_a_zero_weight_nothing_at_all(world):
    store, _ = world
    before = _state(store)
    assert close_month(store, CLOSED, lambda v: _bundle(0.0)).rows_reranked == 0
    assert _state(store) == before
    close_month(store, CLOSED, lambda v: _bundle(0.5))
    once = _state(store)
    again = close_month(store, CLOSED, lambda v: _bundle(0.5))
    assert again.rows_reranked == 0 and again.cases_opened == 0
    assert _state(store) == once
    # back to weight 0: the shift comes out again, priorities are the API's
    close_month(store, CLOSED, lambda v: _bundle(0.0))
    assert {c: v[0] for c, v in _state(store).items()} == pytest.approx(
        {c: v[0] for c, v in before.items()}
    )


def test_the_store_reads_what_a_dataset_of_the_same_claims_gives(world):
    store, claims = world
    tables = store_tables(store, CLOSED)
    assert len(tables["claims"]) == len(claims)
    a = warnings_by_month(tables, [CLOSED])[CLOSED].set_index("facility_id")
    b = warnings_by_month(_dataset(claims), [CLOSED])[CLOSED].set_index("facility_id")
    cols = ["claims", "cost_per_visit", "z", "growth_excess", "warning"]
    pd.testing.assert_frame_equal(a[cols].sort_index(), b[cols].sort_index())


def test_closing_an_empty_or_malformed_month(world):
    store, _ = world
    assert close_month(store, "2026-03", lambda v: _bundle(0.5)).rows_reranked == 0
    with pytest.raises(ValueError):
        close_month(store, "2025-13", lambda v: _bundle(0.5))


def test_capped_rows_and_resubmitted_claims(store_url):
    """A priority capped at the fund amount comes back to it when the shift goes (review
    finding: the lower bound fund - shift was written); a resubmitted claim's case opens on
    its latest version, and a re-close updates that case."""
    store = Store(store_url)
    try:
        claims = _claims()
        climb = claims[(claims["facility_id"] == CLIMBER) & (claims["month"] == CLOSED)]
        capped = climb["claim_id"].iloc[0]
        claims.loc[claims["claim_id"] == capped, "fund_claimed"] = 5_000  # below EXPECTED
        rows = _rows(claims)
        store.record_scores(rows, actor="api:test", open_bands=("high", "review"))
        again = [
            dict(r, content_hash=f"v2-{r['claim_id']}", risk_score=0.2)
            for r in rows
            if r["claim_id"] in set(climb["claim_id"].iloc[1:20])
        ]
        store.record_scores(again, actor="api:test", open_bands=("high", "review"))
        close_month(store, CLOSED, lambda v: _bundle(0.5))
        with store.session() as s:
            cases = {c.claim_id: c for c in s.scalars(select(Case))}
            rows_of = {}
            for r in s.scalars(select(ScoredClaim)):
                rows_of.setdefault(r.claim_id, {})[r.claim_version] = r
        resent = {r["claim_id"] for r in again}
        assert resent & set(cases), "no resubmitted claim was lifted into a case"
        for cid in resent & set(cases):
            assert cases[cid].claim_version == 2
            assert cases[cid].scored_claim_id == rows_of[cid][2].id
        assert rows_of[capped][1].priority == pytest.approx(5_000)
        close_month(store, CLOSED, lambda v: _bundle(0.0))  # the shift goes again
        with store.session() as s:
            row = s.scalars(select(ScoredClaim).where(ScoredClaim.claim_id == capped)).one()
            case_prio = {c.claim_id: c.priority for c in s.scalars(select(Case))}
            v2 = {r.claim_id: r.priority for r in s.scalars(
                select(ScoredClaim).where(ScoredClaim.claim_version == 2))}  # fmt: skip
        assert row.priority == pytest.approx(5_000) and row.shift_added == 0
        for cid in resent & set(case_prio):
            assert case_prio[cid] == pytest.approx(v2[cid]) == pytest.approx(EXPECTED)
    finally:
        store.engine.dispose()


def test_a_case_another_writer_opened_meanwhile_does_not_abort_the_close(world, monkeypatch):
    """The API (a resubmission) or another close opens a claim's case after this close read the
    cases: the unique claim key refuses a second case; the close keeps theirs, moves its priority
    and finishes the month (it aborted the whole close before)."""
    import serving.month_close as mc

    store, _ = world
    first = close_month(store, CLOSED, lambda v: _bundle(0.5))
    assert first.cases_opened > 0
    close_month(store, CLOSED, lambda v: _bundle(0.0))  # every row back to the model's amount
    with store.session() as s:
        n_cases = len(s.scalars(select(Case)).all())
    monkeypatch.setattr(mc, "_cases_of", lambda s, keys: {})  # read before the others committed
    again = close_month(store, CLOSED, lambda v: _bundle(0.5))
    assert again.cases_opened == 0 and again.cases_updated == first.cases_opened
    after = _state(store)
    with store.session() as s:
        cases = {c.claim_id: c.priority for c in s.scalars(select(Case))}
        opened = s.scalars(select(AuditEvent).where(AuditEvent.action == "open")).all()
    assert len(cases) == n_cases and len(opened) == first.cases_opened
    assert all(cases[c] == pytest.approx(after[c][0]) for c in cases)


def test_a_row_a_head_rule_proves_is_read_from_its_stored_rule_codes():
    """Re-banding at the close keeps the claims the bundle's head_rules prove in the head: the
    row's stored codes (",R11,R14,") name the rule; another rule's code, or none, does not."""
    from features.rules import proven_by_codes

    def _proven(bundle, codes):  # as the close reads a row
        return proven_by_codes(codes, bundle.head_rules)

    bundle = ModelBundle(risk=None, feature_names=[], categories={}, calibration=([], []),
                         head_rules=("duplicate", "bundled_component"))  # fmt: skip
    assert _proven(bundle, ",R11,R14,") and _proven(bundle, ",R19,")
    assert not _proven(bundle, ",R14,") and not _proven(bundle, None)
    assert not _proven(bundle, ",R111,")  # a code is matched whole
    off = ModelBundle(risk=None, feature_names=[], categories={}, calibration=([], []))
    assert not _proven(off, ",R11,R19,")
