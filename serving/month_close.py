"""Closing a month in the case store: the facility early warning over the claims the store holds,
and its evidence into the review queue, for claims scored one at a time through the API.

The API scores a claim when it arrives; whether its facility's month shifted is known only once the
month is complete, so its `facility_shift` term (scoring/ranking.py) is 0 when it is scored.
`close_month` reads the month's claims and the CONTEXT_MONTHS before it from the store (the summary
every scored row keeps: facility, visit type, diagnosis, cost), runs features.early_warning on them
(the same code as `claimradar facilities` on a dataset), writes the facility months the facility
page shows, and re-ranks the month's scored rows:

    priority = min(fund claimed, money at stake without the shift + w x shift money)

with w the facility-shift weight of the model that scored the row. The weighted shift money is kept
on the row (`shift_added`), so closing a month again replaces it instead of adding twice, and the
batch path (`claimradar score --to-store`), whose priority already holds it, records it too. When a
row's priority was capped at the fund amount its money without the shift is not known exactly; the
lower bound (fund claimed - shift added) is used, so a re-close never lifts a claim it would not
lift otherwise. A claim lifted into a review band opens a case (its page shows the summary the
store kept; the lines are kept for cases scored in a review band), an open case takes its new
priority, and every change is audited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from serving.models import Case, ScoredClaim

log = logging.getLogger("claimradar.month_close")

CONTEXT_MONTHS = 12  # months before the closed one the early warning reads (baselines, series)
SUMMARY_FIELDS = ("visit_type", "admitted_at", "primary_icd", "total_cost")
EPS = 0.005  # VND: changes below this are no change


@dataclass
class MonthClose:
    month: str
    claims_read: int = 0
    warned: list[str] = field(default_factory=list)
    rows_reranked: int = 0
    cases_opened: int = 0
    cases_updated: int = 0


def _month_number(month: str) -> int:
    p = pd.Period(month, freq="M")
    return p.year * 12 + p.month - 1


def _window(month: str) -> list[str]:
    p = pd.Period(month, freq="M")
    return [str(p - k) for k in range(CONTEXT_MONTHS, -1, -1)]


def store_tables(store, month: str) -> dict[str, pd.DataFrame]:
    """The claims of `month` and the CONTEXT_MONTHS before it as the early warning reads them: one
    row per claim (its latest version), `claim_id` the claim key (MA_LK is unique only within a
    facility), and the facilities' levels."""
    summary = [ScoredClaim.claim[("summary", f)].as_string() for f in SUMMARY_FIELDS]
    rows = []
    with store.session() as s:
        q = (
            select(
                ScoredClaim.claim_key, ScoredClaim.claim_version, ScoredClaim.id,
                ScoredClaim.facility_id, ScoredClaim.facility_level, ScoredClaim.fund_claimed,
                *summary,  # the summary's fields extracted by the database, not whole documents
            )
            .where(ScoredClaim.month.in_(_window(month)))
            .execution_options(yield_per=5000)
        )  # fmt: skip
        for key, version, rid, fac, level, fund, *values in s.execute(q):
            rows.append((key, version or 0, rid, fac, level, fund, *values))
    cols = ["claim_id", "claim_version", "id", "facility_id", "level", "fund_claimed",
            *SUMMARY_FIELDS]  # fmt: skip
    df = pd.DataFrame(rows, columns=cols)
    if df.empty:
        return {"claims": df, "facilities": pd.DataFrame(columns=["facility_id", "level"])}
    df = df.sort_values(["claim_id", "claim_version", "id"])
    df = df.drop_duplicates("claim_id", keep="last")
    df = df[df["admitted_at"].notna() & df["facility_id"].notna()]
    df["admitted_at"] = pd.to_datetime(df["admitted_at"], errors="coerce")
    df["total_cost"] = pd.to_numeric(df["total_cost"], errors="coerce")
    df = df[df["admitted_at"].notna()]
    claims = df.drop(columns=["claim_version", "id", "level"]).reset_index(drop=True)
    fac = df[["facility_id", "level"]].dropna().drop_duplicates("facility_id", keep="last")
    return {"claims": claims, "facilities": fac.reset_index(drop=True)}


def close_month(
    store,
    month: str,
    bundle_for: Callable[[str], object],
    *,
    actor: str = "cli:close-month",
    open_bands: tuple[str, ...] = ("high", "review"),
) -> MonthClose:
    """The early warning of `month` (YYYY-MM) over the store's claims, its facility months written
    and its evidence re-ranking the month's scored rows (see the module docstring). `bundle_for`
    gives the model bundle of a model version (its facility-shift weight, bands and head)."""
    from features.early_warning import shift_evidence, warnings_by_month

    _month_number(month)  # a clear error for a bad month before reading anything
    out = MonthClose(month)
    tables = store_tables(store, month)
    claims = tables["claims"]
    out.claims_read = len(claims)
    if claims.empty or not (claims["admitted_at"].dt.strftime("%Y-%m") == month).any():
        return out
    warnings = warnings_by_month(tables, [month])[month]
    out.warned = sorted(warnings.loc[warnings["warning"], "facility_id"].astype(str))
    evidence = shift_evidence(tables, [_month_number(month)])
    shift = evidence.set_index("claim_id")["facility_shift"].to_dict()
    with store.session() as s:  # every model's bundle before the write transaction opens
        versions = s.scalars(
            select(ScoredClaim.model_version).where(ScoredClaim.month == month).distinct()
        ).all()
    bundles = {v: bundle_for(v) for v in versions}
    _rerank(store, month, shift, bundles, actor, open_bands, out)
    _write_facility_months(store, warnings)  # after the re-rank: shown once it took effect
    log.info(
        "closed %s: %d claims read, %d facilities warned, %d rows re-ranked, %d cases opened",
        month, out.claims_read, len(out.warned), out.rows_reranked, out.cases_opened,
    )  # fmt: skip
    return out


def _write_facility_months(store, warnings: pd.DataFrame) -> None:
    from serving.casefile import facility_month_rows
    from serving.models import FacilityMonth

    rows = facility_month_rows(warnings)
    with store.session.begin() as s:
        ids = [r.facility_id for r in rows]
        if ids:
            s.execute(
                FacilityMonth.__table__.delete().where(
                    FacilityMonth.month == rows[0].month, FacilityMonth.facility_id.in_(ids)
                )
            )
        s.add_all(rows)


def _base(row: ScoredClaim) -> float:
    """The row's money at stake without the shift: kept at its first close (`priority_base`);
    before that, its priority less the shift money in it (none for the API's rows). A batch row
    capped at the fund amount with shift money in it has only a lower bound (fund - shift)."""
    if row.priority_base is not None:
        return float(row.priority_base)
    claimed = max(float(row.fund_claimed or 0.0), 0.0)
    old = float(row.shift_added or 0.0)
    prio = float(row.priority or 0.0)
    if old <= 0 or prio < claimed - EPS:
        return max(prio - old, 0.0)
    return max(claimed - old, 0.0)


def _cases_of(s, keys: list[str]) -> dict[str, Case]:
    """The cases of these claim keys, read in bounded IN lists (SQLite and PostgreSQL limits)."""
    cases: dict[str, Case] = {}
    for i in range(0, len(keys), 500):
        part = keys[i : i + 500]
        cases.update({c.claim_key: c for c in s.scalars(select(Case).where(
            Case.claim_key.in_(part)))})  # fmt: skip
    return cases


def _open_case(s, r: ScoredClaim, prio: float) -> tuple[Case, bool]:
    """A new case for the row, in a savepoint: when another writer (the API scoring the claim's
    resubmission, another close) opened the claim's case since the cases were read, the unique
    claim key refuses ours and the close goes on with theirs (opened: False) instead of aborting
    the month."""
    case = Case(
        claim_id=r.claim_id, claim_key=r.claim_key, scored_claim_id=r.id,
        priority=prio, claim_version=r.claim_version,
    )  # fmt: skip
    try:
        with s.begin_nested():
            s.add(case)
    except IntegrityError:
        theirs = s.scalars(select(Case).where(Case.claim_key == r.claim_key)).one()
        log.info("case of %s opened by another writer meanwhile: kept", r.claim_key)
        return theirs, False
    return case, True


def _rerank(store, month, shift, bundles, actor, open_bands, out: MonthClose) -> None:
    from features.rules import proven_by_codes
    from scoring.ranking import band_of

    with store.session.begin() as s:
        rows = s.scalars(select(ScoredClaim).where(ScoredClaim.month == month)).all()
        cases = _cases_of(s, sorted({r.claim_key for r in rows if r.claim_key}))
        # a case opens only on a claim's latest version, as the latest model scored it
        latest: dict[str, tuple] = {}
        for r in rows:
            rank = (r.claim_version or 0, r.id)
            if r.claim_key not in latest or rank > latest[r.claim_key]:
                latest[r.claim_key] = rank
        for r in sorted(rows, key=lambda r: (r.claim_key or "", r.id)):
            bundle = bundles[r.model_version]
            w = float((bundle.rank_weights or {}).get("facility_shift", 0.0))
            claimed = max(float(r.fund_claimed or 0.0), 0.0)
            add = w * min(float(shift.get(r.claim_key, 0.0)), claimed)
            base = _base(r)
            prio = float(min(claimed, base + add))
            expected = np.round([float(r.expected_overbilled)], 2)
            proven = np.array([proven_by_codes(r.rule_codes, bundle.head_rules)])
            band = str(band_of(bundle, np.array([prio]), expected, np.array([r.risk_score]),
                               proven)[0])  # fmt: skip
            same = abs(prio - r.priority) < EPS and abs(add - (r.shift_added or 0.0)) < EPS
            if same and band == r.band:
                continue
            before = {"priority": r.priority, "band": r.band, "shift_added": r.shift_added}
            r.priority, r.band, r.shift_added, r.priority_base = prio, band, add, base
            out.rows_reranked += 1
            store.audit(s, actor, "rerank", "scored_claim", r.id, before=before, after={
                "claim": r.claim_key, "priority": prio, "band": band, "shift_added": add,
            })  # fmt: skip
            case = cases.get(r.claim_key)
            is_latest = latest.get(r.claim_key) == (r.claim_version or 0, r.id)
            opened = False
            if case is None and band in open_bands and is_latest:
                case, opened = _open_case(s, r, prio)
                cases[r.claim_key] = case
            if opened:
                out.cases_opened += 1
                store.audit(s, actor, "open", "case", case.id, after={
                    "claim": r.claim_key, "claim_version": r.claim_version, "priority": prio,
                    "expected_overbilled": r.expected_overbilled, "band": band,
                    "facility_shift": add,
                })  # fmt: skip
            elif case is not None and case.scored_claim_id == r.id:
                # only while the case is still on this row (a resubmission may have moved it)
                done = s.execute(
                    update(Case)
                    .where(Case.id == case.id, Case.scored_claim_id == r.id)
                    .values(priority=prio)
                )
                if done.rowcount:
                    out.cases_updated += 1
                    store.audit(s, actor, "rerank", "case", case.id, before={
                        "priority": case.priority}, after={"priority": prio})  # fmt: skip
