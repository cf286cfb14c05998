"""OnlineState: a claim's features as in-process lookups and arithmetic over per-key state.

Initialised from the model's profile snapshot, updated as claims are scored (remember=True).
What depends on whole months (facility and clinician profiles of the month, peer statistics,
learned approved prices) is computed once per month by the Ibis definitions themselves
(`profiles.facility_profile`, `clinician_profile`, `peer_stats`, `lines.learned_price_reference`)
over the snapshot's history plus the remembered claims; what rolls claim by claim (patient,
facility and clinician windows, the pair and procedure rules) lives in `keys.KeyState`; the
claim's own columns come from `claim.enriched_rows`.
"""

from __future__ import annotations

import threading
from collections import defaultdict

import ibis
import pandas as pd

from features import lines as ln
from features import profiles as pf
from features.assembly import (
    ID_COLUMNS,
    PRICE_MIN_LINES,
    PRICE_MONTHS,
    PRICE_QUANTILE,
    cast_like,
    month_number,
    price_list_table,
)
from features.engine import Engine
from features.online_state.claim import enriched_rows
from features.online_state.keys import KeyState, Proc, procedures
from features.online_state.rows import FeatureRows, feature_row
from features.online_state.sql import records
from features.registry import feature_names

_OUT = (*ID_COLUMNS, *feature_names())
_PROC_COLUMNS = (
    "claim_id",
    "line_key",
    "performer_id",
    "admit_min",
    "start_day",
    "start_min",
    "end_min",
    "line_fund",
)


class OnlineState:
    """Feature rows for incoming claims, equal to build_features' rows over snapshot history +
    remembered claims + the batch, for the usual request: the claims of one month M, M not
    earlier than the state's month, none of them re-sent from an earlier month.

    Anything else falls back to the compiled OnlinePlan's full path (correctness first):
    claims of several months in one request, a month earlier than the state's (a late claim: it
    would change the profiles of the months after it), a re-sent claim whose earlier copy lies
    in an earlier month. The plan is built on the first fallback and brought up to date with the
    claims remembered since (their enriched rows go into its history tables); with
    remember=True the fallback's claims then enter the state too, and the month's profiles are
    recomputed when they reach back before it. A claim of a later month moves the state to that
    month first: its profiles, peer statistics and learned prices are recomputed (a few seconds,
    once a month) and claims older than HISTORY_MONTHS before it are forgotten.

    One call at a time: `features()` holds a lock.
    """

    def __init__(self, snapshot: pf.Snapshot, *, remember: bool = False, plan=None):
        self.snapshot = snapshot
        self.remember = remember
        self.listed = snapshot.price_list is not None
        self.facilities = {f["facility_id"]: f for f in records(snapshot.facilities)}
        self._plan = plan
        self._lock = threading.Lock()
        self.keys = KeyState()
        self.month_of: dict[str, int] = {}
        self.remembered: dict[str, dict] = {}  # claim_id -> enriched row (with its _lines)
        self.unsynced: set[str] = set()  # remembered, not yet in the plan's history
        self.fallbacks = 0
        procs: dict[str, list[Proc]] = defaultdict(list)
        for p in records(snapshot.procedures):
            procs[p["claim_id"]].append(
                Proc(*(None if p.get(c) is None else p[c] for c in _PROC_COLUMNS))
            )
        for r in records(snapshot.history):
            self.keys.add(r, procs.pop(r["claim_id"], []))
            self.month_of[r["claim_id"]] = r["month"]
        for orphan in procs.values():  # surgeries of claims older than the history
            for p in orphan:
                self.keys.performer[p.performer][p.start_day].append(p)
        self.month = month_number(snapshot.as_of)
        self._monthly(self.month)

    # -- what depends on whole months --------------------------------------------------------
    def _history(self, eng: Engine):
        """The snapshot's history plus the remembered claims, as an engine table."""
        hist = self.snapshot.history
        rem = pd.DataFrame(
            [{k: v for k, v in r.items() if k != "_lines"} for r in self.remembered.values()]
        )
        if not len(hist) and not len(rem):
            return None
        if not len(hist):
            return eng.register("remembered", rem)
        h = eng.register("history", hist)
        if not len(rem):
            return h
        return h.union(cast_like(eng.register("remembered", rem[list(hist.columns)]), h))

    def _points(self) -> pd.DataFrame:
        pts = [p for p in (self.snapshot.price_points, _points(self.remembered.values())) if len(p)]
        return pd.concat(pts, ignore_index=True) if pts else pd.DataFrame()

    def _monthly(self, month: int) -> None:
        """Profiles, peer statistics and approved prices of `month`, by the Ibis definitions."""
        self.fp, self.cp, self.peers, self.refs = {}, {}, {}, {}
        with Engine.connect("duckdb", threads=1) as eng:
            e = self._history(eng)
            if e is not None:
                fp = eng.execute(pf.facility_profile(e).filter(lambda t: t.fp_month == month))
                for r in records(fp):
                    key = (r.pop("fp_facility"), r.pop("fp_visit_type"))
                    r.pop("fp_month")
                    self.fp[key] = r
                cp = eng.execute(pf.clinician_profile(e).filter(lambda t: t.cp_month == month))
                for r in records(cp):
                    key = r.pop("cp_clinician")
                    r.pop("cp_month")
                    self.cp[key] = r
                for i, (m, _) in enumerate(pf.PEER_METRICS):
                    ps = pf.peer_stats(e, m, with_n=i == 0)
                    ps = eng.execute(ps.filter(ps[f"ps_month_{m}"] == month))
                    for r in records(ps):
                        got = self.peers.setdefault(r[f"ps_key_{m}"], {})
                        got[m] = (r[f"pq50_{m}"], r[f"pq25_{m}"], r[f"pq75_{m}"])
                        if i == 0:
                            got["peer_n"] = r["peer_n"]
            if self.listed:
                pl = price_list_table(eng, self.snapshot.price_list)
                ref = eng.execute(ln.listed_price_reference(pl, ibis.memtable({"month": [month]})))
            else:
                pts = self._points()
                ref = pd.DataFrame(columns=["item_key", "facility_level", "ref_price"])
                if len(pts):
                    learned = ln.learned_price_reference(
                        eng.register("points", pts), PRICE_MONTHS, PRICE_QUANTILE, PRICE_MIN_LINES
                    )
                    ref = eng.execute(learned.filter(learned.month == month))
        for r in records(ref):
            self.refs.setdefault((r["item_key"], r["facility_level"]), []).append(r["ref_price"])
        self.month = month

    def _ref(self, item_key, level, month):
        if month != self.month:
            return [None]
        return self.refs.get((item_key, level), [None])

    # -- a request ---------------------------------------------------------------------------
    def why_not(self, claims: pd.DataFrame) -> str | None:
        """Why the state cannot answer these claims exactly (None: it can)."""
        if not len(claims):
            return "no claims"
        months = {month_number(t) for t in claims["admitted_at"]}
        if len(months) != 1:
            return "claims of several months"
        (m,) = months
        if m < self.month:
            return "a month before the state's"
        if any(self.month_of.get(c, m) < m for c in claims["claim_id"]):
            return "a claim re-sent from an earlier month"
        return None

    def features(self, claims_batch: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """Feature rows for incoming claims (canonical tables with person_key/card_key): the
        frame build_features gives (assembly.finish_frame's dtypes and order)."""
        return self.feature_rows(claims_batch).frame()

    def feature_rows(self, claims_batch: dict[str, pd.DataFrame]) -> FeatureRows:
        """The same rows as ids + a float matrix (rows.FeatureRows), no DataFrame built."""
        with self._lock:
            claims = claims_batch["claims"]
            if self.why_not(claims) is not None:
                return FeatureRows.from_frame(self._fallback(claims_batch))
            m = month_number(claims["admitted_at"].iloc[0])
            if m > self.month:
                self._roll(m)
            facs = self.facilities
            own = claims_batch.get("facilities")
            if own is not None and len(own):
                facs = {f["facility_id"]: f for f in records(own)}
            rows = enriched_rows(claims_batch, facs, self._ref, self.listed)
            return self._answer(rows)

    def _answer(self, rows: list[dict]) -> FeatureRows:
        replaced: dict[str, tuple] = {}
        procs = [procedures(r) for r in rows]
        for r, p in zip(rows, procs, strict=True):
            cid = r["claim_id"]
            if cid in self.keys:
                entry = self.keys.remove(cid)
                replaced.setdefault(cid, entry)
            self.keys.add(r, p)
        out = [self._row(r, p) for r, p in zip(rows, procs, strict=True)]
        if self.remember:
            for r in rows:
                self._keep(r)
        else:  # the state as it was
            for r in rows:
                if r["claim_id"] in self.keys:
                    self.keys.remove(r["claim_id"])
            for cid, entry in replaced.items():
                self.keys.insert(cid, entry)
        return FeatureRows.from_rows(out)

    def _row(self, t: dict, procs: list[Proc]) -> dict:
        got = {
            **self.keys.window_features(t),
            **self.keys.pair_features(t),
            **self.keys.procedure_features(t, procs),
            **_profile(self.fp.get((t["facility_id"], t["visit_type"])), _FP),
            **_profile(None if t["clinician"] is None else self.cp.get(t["clinician"]), _CP),
        }
        return feature_row(t, got, self.peers.get(t["peer_key"], {}))

    def _keep(self, r: dict) -> None:
        cid = r["claim_id"]
        self.remembered[cid] = r
        self.month_of[cid] = r["month"]
        self.unsynced.add(cid)

    def _roll(self, month: int) -> None:
        """Move the state to a later month: forget what the history window drops, recompute
        the month's profiles, peer statistics and learned prices."""
        cut = month - pf.HISTORY_MONTHS
        self.keys.prune(cut)
        for cid in [c for c, r in self.remembered.items() if r["month"] < cut]:
            del self.remembered[cid]
        self._monthly(month)

    # -- the fallback ------------------------------------------------------------------------
    def plan(self):
        """The compiled OnlinePlan (built on first use), with every remembered claim in its
        history."""
        from features.online import OnlinePlan

        if self._plan is None:
            self._plan = OnlinePlan(self.snapshot, remember=self.remember)
        if self.unsynced:
            rows = [self.remembered[c] for c in self.unsynced if c in self.remembered]
            hist = pd.DataFrame([{k: v for k, v in r.items() if k != "_lines"} for r in rows])
            procs = pd.DataFrame(
                [p for r in rows for p in procedures(r)], columns=list(_PROC_COLUMNS)
            )
            self._plan.add_history(hist, procs, _points(rows))
            self.unsynced.clear()
        return self._plan

    def _fallback(self, claims_batch: dict[str, pd.DataFrame]) -> pd.DataFrame:
        self.fallbacks += 1
        out = self.plan().features(claims_batch)
        if self.remember and len(claims_batch["claims"]):
            rows = enriched_rows(claims_batch, self.facilities, self._ref, self.listed)
            earlier = False
            for r in rows:
                cid = r["claim_id"]
                if cid in self.keys:
                    self.keys.remove(cid)
                self.keys.add(r, procedures(r))
                self.remembered[cid] = r
                self.month_of[cid] = r["month"]  # the plan has it already
                earlier = earlier or r["month"] < self.month
            self._plan.add_history(
                pd.DataFrame(columns=["claim_id", "month"]), pd.DataFrame(), _points(rows)
            )
            if earlier:  # a late claim changes this month's profiles
                self._monthly(self.month)
        return out

    def close(self) -> None:
        if self._plan is not None:
            self._plan.close()


_FP = (
    "fac_claims_prev_month",
    "fac_cost_per_visit_prev",
    "fac_peer_cost_per_visit_prev",
    "fac_cost_vs_peers",
    "fac_growth_yoy",
    "fac_growth_trend",
    "fac_inpatient_share",
    "fac_bed_occupancy",
    "fac_imaging_rate",
    "fac_cost_index",
    "fac_case_mix",
    "fac_stay_index",
)
_CP = (
    "clin_claims_prev_month",
    "clin_claims_per_day",
    "clin_peak_hour",
    "clin_cost_per_claim",
    "clin_cost_vs_peers",
    "clin_cost_index",
    "clin_referral_share",
    "clin_referral_concentration",
)


def _profile(found: dict | None, columns: tuple[str, ...]) -> dict:
    if found is None:
        return dict.fromkeys(columns)
    return {c: found[c] for c in columns}


def _points(rows) -> pd.DataFrame:
    """lines.price_points of enriched rows (their `_lines`)."""
    out = []
    for r in rows:
        for x in r["_lines"]:
            if x["fund_unit_price"] is not None and x["item_key"] is not None:
                out.append((x["item_key"], r["facility_level"], r["month"], x["fund_unit_price"]))
    df = pd.DataFrame(out, columns=["item_key", "facility_level", "month", "price"])
    return df.groupby(list(df.columns), as_index=False).size().rename(columns={"size": "n"})
