"""OnlineState: a claim's features as in-process lookups and arithmetic over per-key state.

Initialised from the model's profile snapshot, updated as claims are scored (remember=True).
What depends on whole months (facility and clinician profiles, peer statistics, learned
approved prices) is computed once per month by the Ibis definitions (`monthly.month_parts`);
what rolls claim by claim (patient, facility and clinician windows, the pair and procedure
rules) lives in `keys.KeyState`; the claim's own columns come from `claim.enriched_rows` (a
large request's line aggregates column-wise: `batch.enriched_rows`). The
remembered claims live in this process, or in Redis (`shared.RedisStore`) where every replica
sees them.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import replace

import pandas as pd

from features import profiles as pf
from features.assembly import month_number
from features.online_state.batch import enriched_rows
from features.online_state.keys import HISTORY_COLUMNS, KeyState, Proc, history_row, procedures
from features.online_state.monthly import month_parts, price_points
from features.online_state.rows import FeatureRows, feature_row
from features.online_state.sql import records

PROC_COLUMNS = ("claim_id", "line_key", "performer_id", "admit_min", "start_day", "start_min",
                "end_min", "line_fund")  # fmt: skip


class OnlineState:
    """Feature rows for incoming claims, equal to build_features' rows over snapshot history +
    remembered claims + the batch, for the usual request: the claims of one month M, M not
    earlier than the state's month, none of them re-sent from an earlier month.

    Anything else falls back to the compiled OnlinePlan's full path (correctness first):
    claims of several months in one request, a month earlier than the state's (a late claim: it
    would change the profiles of the months after it), a re-sent claim whose earlier copy lies
    in an earlier month. The plan is built on the first fallback and brought up to date with the
    claims remembered since (their history rows go into its tables); with remember=True the
    fallback's claims then enter the state too, and the month's profiles are recomputed when
    they reach back before it. A claim of a later month moves the state to that month first:
    its profiles, peer statistics and learned prices are recomputed (a few seconds, once a
    month) and claims older than HISTORY_MONTHS before it are forgotten (in this process).

    store: None keeps the remembered claims here; a shared.RedisStore keeps them in Redis, read
    and written atomically per request, so replicas see each other's claims and they outlive a
    restart or a model swap (the snapshot's part is rebuilt, the remembered claims stay).
    The store's copy of a claim supersedes the snapshot's (a model swap's new snapshot holds
    claims remembered before it). Known limit: a claim of the snapshot's own month re-sent
    through another replica still counts once more in this replica's facility and clinician
    windows until it reloads.

    One call at a time: `features()` holds a lock.
    """

    def __init__(
        self,
        snapshot: pf.Snapshot,
        *,
        remember: bool = False,
        plan=None,
        store=None,
        remembered: list[dict] = (),
    ):
        """remembered: without a store, the claims an earlier state remembered
        (`remembered_rows()`, a model swap): they stay remembered, over this snapshot's copies."""
        # only what history rows are read for (monthly parts, the plan): a quarter of the columns
        keep = [c for c in HISTORY_COLUMNS if c in snapshot.history.columns]
        self.snapshot = snapshot = replace(snapshot, history=snapshot.history[keep])
        self.remember = remember
        self.store = store
        self.listed = snapshot.price_list is not None
        self.facilities = {f["facility_id"]: f for f in records(snapshot.facilities)}
        self._plan = plan
        self._lock = threading.Lock()
        self.keys = KeyState()  # the snapshot's claims (+ the remembered ones without a store)
        self.remembered: dict[str, dict] = {}  # claim_id -> its keys.history_row
        self.unsynced: set[str] = set()  # remembered, not yet in the plan's history
        self.synced: dict[str, str] = {}  # with a store: claim_id -> row text the plan has
        self.fallbacks = 0
        self.successor: OnlineState | None = None  # after a swap: where new claims go too
        self.epoch = store.epoch() if store is not None else 0
        procs: dict[str, list[Proc]] = defaultdict(list)
        for p in records(snapshot.procedures):
            procs[p["claim_id"]].append(Proc(*(p.get(c) for c in PROC_COLUMNS)))
        for r in records(snapshot.history):
            self.keys.add(r, procs.pop(r["claim_id"], []))
        for orphan in procs.values():  # surgeries of claims older than the history
            for p in orphan:
                self.keys.performer[p.performer][p.start_day].append(p)
        if store is not None:  # claims remembered before this snapshot: Redis holds them once
            self._supersede(store.rows_text())
        else:  # the same in this process: a remembered claim replaces the snapshot's copy
            self._keep(remembered, month_number(snapshot.as_of) - pf.HISTORY_MONTHS)
        self._monthly(month_number(snapshot.as_of))

    # -- a model swap (memory store) ---------------------------------------------------------
    def remembered_rows(self) -> list[dict]:
        """The claims remembered here (the memory store's part a model swap hands over)."""
        with self._lock:
            return list(self.remembered.values())

    def hand_over(self, new: OnlineState) -> None:
        """After `new` was built from remembered_rows(): give it what was remembered since, and
        from now on every claim this state remembers (requests still in flight on the old
        model), so no claim is forgotten by the swap."""
        with self._lock:
            since = [r for c, r in self.remembered.items() if new.remembered.get(c) is not r]
            new.adopt(since)
            self.successor = new

    def adopt(self, rows: list[dict]) -> None:
        """Remember rows another state answered (a swap's hand-over)."""
        if not rows:
            return
        with self._lock:
            self._keep(rows, self.month - pf.HISTORY_MONTHS)
            if any(r["month"] < self.month for r in rows):  # they may change this month's parts
                self._monthly(self.month)
            if self.successor is not None:  # swapped out in turn
                self.successor.adopt(rows)

    def _keep(self, rows, cut: int) -> None:
        for r in rows:
            if r["month"] < cut:
                continue
            cid = r["claim_id"]
            if cid in self.keys:
                self.keys.remove(cid)
            procs = procedures(r)
            self.keys.add(r, procs)
            self.remembered[cid] = history_row(r, procs)
            self.unsynced.add(cid)

    # -- what depends on whole months --------------------------------------------------------
    def _remembered(self) -> list[dict]:
        if self.store is not None:
            return list(self.store.rows().values())
        return list(self.remembered.values())

    def _monthly(self, month: int) -> None:
        self.parts = month_parts(self.snapshot, self._remembered(), month)
        self.month = month

    def _ref(self, item_key, level, month):
        if month != self.month:
            return [None]
        return self.parts.refs.get((item_key, level), [None])

    def _item(self, key, level, month):
        return self.parts.items.get((key, level)) if month == self.month else None

    # -- a request ---------------------------------------------------------------------------
    takes_records = True  # feature_rows takes contract.validate_rows' records as well as frames

    def why_not(self, claims: pd.DataFrame | list[dict]) -> str | None:
        """Why the state cannot answer these claims exactly (None: it can)."""
        if not len(claims):
            return "no claims"
        months = {month_number(t) for t in _column(claims, "admitted_at")}
        if len(months) != 1:
            return "claims of several months"
        (m,) = months
        if m < self.month:
            return "a month before the state's"
        index = self.keys.index  # claim_id -> (person, fkey, clinician, Visit, procs)
        if any(c in index and index[c][3].month < m for c in _column(claims, "claim_id")):
            return "a claim re-sent from an earlier month"
        return None

    def features(self, claims_batch: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """Feature rows for incoming claims (canonical tables with person_key/card_key): the
        frame build_features gives (assembly.finish_frame's dtypes and order)."""
        return self.feature_rows(claims_batch).frame()

    def feature_rows(self, claims_batch: dict) -> FeatureRows:
        """The same rows as ids + a float matrix (rows.FeatureRows), no DataFrame built. The
        tables may be frames or records (contract.validate_rows' RowsResult.records: a request's
        claims are never made frames unless the compiled plan must answer them)."""
        with self._lock:
            claims = claims_batch["claims"]
            if self.why_not(claims) is not None:
                return FeatureRows.from_frame(self._fallback(_frames(claims_batch)))
            m = month_number(_column(claims, "admitted_at")[0])
            if m > self.month:
                self._roll(m)
            facs = self.facilities
            own = claims_batch.get("facilities")
            if own is not None and len(own):
                facs = {f["facility_id"]: f for f in records(own)}
            rows = enriched_rows(claims_batch, facs, self._ref, self.listed, self._item)
            if self.store is None:
                return self._answer(rows)
            procs = [procedures(r) for r in rows]
            got = self.store.exchange(rows, procs, month=m, remember=self.remember)
            if got is None:  # a claim remembered (by any replica) in an earlier month
                return FeatureRows.from_frame(self._fallback(_frames(claims_batch)))
            if got["epoch"] != self.epoch:  # a late claim reached back before this month
                self.epoch = got["epoch"]
                self._monthly(self.month)
                rows = enriched_rows(claims_batch, facs, self._ref, self.listed, self._item)
            view = self.store.view(self.keys, got, rows, procs)
            out = [self._row(view, r, p) for r, p in zip(rows, procs, strict=True)]
            if self.remember:
                self._supersede(r["claim_id"] for r in rows)
            return FeatureRows.from_rows(out)

    def _supersede(self, claim_ids) -> None:
        """Claims the shared store holds: the snapshot's copies leave this process's state, so
        a claim counts once (after a model swap the new snapshot holds claims remembered
        before it; a claim of the snapshot's month may be re-sent)."""
        for cid in claim_ids:
            if cid in self.keys:
                self.keys.remove(cid)

    def _answer(self, rows: list[dict]) -> FeatureRows:
        replaced: dict[str, tuple] = {}
        procs = [procedures(r) for r in rows]
        for r, p in zip(rows, procs, strict=True):
            cid = r["claim_id"]
            if cid in self.keys:
                replaced.setdefault(cid, self.keys.remove(cid))
            self.keys.add(r, p)
        out = [self._row(self.keys, r, p) for r, p in zip(rows, procs, strict=True)]
        if self.remember:
            for r, p in zip(rows, procs, strict=True):
                self.remembered[r["claim_id"]] = history_row(r, p)
                self.unsynced.add(r["claim_id"])
            if self.successor is not None:  # swapped out while this request ran
                self.successor.adopt(rows)
        else:  # the state as it was
            for r in rows:
                if r["claim_id"] in self.keys:
                    self.keys.remove(r["claim_id"])
            for cid, entry in replaced.items():
                self.keys.insert(cid, entry)
        return FeatureRows.from_rows(out)

    def _row(self, keys: KeyState, t: dict, procs: list[Proc]) -> dict:
        parts = self.parts
        clin = t["clinician"]
        got = {
            **keys.window_features(t),
            **keys.pair_features(t),
            **keys.procedure_features(t, procs),
            **_profile(parts.fp.get((t["facility_id"], t["visit_type"])), _FP),
            **_profile(None if clin is None else parts.cp.get(clin), _CP),
        }
        return feature_row(t, got, parts.peers.get(t["peer_key"], {}))

    def _roll(self, month: int) -> None:
        """Move the state to a later month: forget what the history window drops, recompute
        the month's profiles, peer statistics and learned prices."""
        cut = month - pf.HISTORY_MONTHS
        self.keys.prune(cut)
        for cid in [c for c, r in self.remembered.items() if r["month"] < cut]:
            del self.remembered[cid]
        if self.store is not None:  # and in Redis, for every replica
            self.store.prune(cut)
        self._monthly(month)

    # -- the fallback ------------------------------------------------------------------------
    def plan(self):
        """The compiled OnlinePlan (built on first use), with every remembered claim in its
        history."""
        from features.online import OnlinePlan

        if self._plan is None:
            self._plan = OnlinePlan(self.snapshot, remember=self.remember)
        if self.store is not None:
            texts = self.store.rows_text()
            new = {c for c, t in texts.items() if self.synced.get(c) != t}
            rows = [r for c, r in self.store.rows().items() if c in new]
            procs = [Proc(*p) for r in rows for p in r.get("_procs", ())]
            self.synced.update((c, texts[c]) for c in new)
        else:
            rows = [self.remembered[c] for c in self.unsynced if c in self.remembered]
            procs = [p for r in rows for p in procedures(r)]
            self.unsynced.clear()
        if rows:
            hist = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")}
                                 for r in rows])  # fmt: skip
            self._plan.add_history(hist, pd.DataFrame(procs, columns=list(PROC_COLUMNS)),
                                   price_points(rows))  # fmt: skip
        return self._plan

    def _fallback(self, claims_batch: dict[str, pd.DataFrame]) -> pd.DataFrame:
        self.fallbacks += 1
        out = self.plan().features(claims_batch)
        if not self.remember or not len(claims_batch["claims"]):
            return out
        rows = enriched_rows(claims_batch, self.facilities, self._ref, self.listed, self._item)
        procs = [procedures(r) for r in rows]
        late = any(r["month"] < self.month for r in rows)
        self._plan.add_history(pd.DataFrame(columns=["claim_id", "month"]), pd.DataFrame(),
                               price_points(rows))  # fmt: skip
        if self.store is not None:
            got = self.store.exchange(rows, procs, month=-1, remember=True,
                                      late_before=self.month)  # fmt: skip
            texts = self.store.rows_text([r["claim_id"] for r in rows])
            self.synced.update(texts)  # the plan has them (it remembered the batch)
            self.epoch = got["epoch"]
            self._supersede(texts)
        else:
            for r, p in zip(rows, procs, strict=True):
                cid = r["claim_id"]
                if cid in self.keys:
                    self.keys.remove(cid)
                self.keys.add(r, p)
                self.remembered[cid] = history_row(r, p)
            if self.successor is not None:
                self.successor.adopt(rows)
        if late:  # a late claim changes this month's profiles
            self._monthly(self.month)
        return out

    def close(self) -> None:
        if self._plan is not None:
            self._plan.close()


_FP = ("fac_claims_prev_month", "fac_cost_per_visit_prev", "fac_peer_cost_per_visit_prev",
       "fac_cost_vs_peers", "fac_growth_yoy", "fac_growth_trend", "fac_inpatient_share",
       "fac_bed_occupancy", "fac_imaging_rate", "fac_cost_index", "fac_case_mix",
       "fac_stay_index")  # fmt: skip
_CP = ("clin_claims_prev_month", "clin_claims_per_day", "clin_peak_hour", "clin_cost_per_claim",
       "clin_cost_vs_peers", "clin_cost_index", "clin_referral_share",
       "clin_referral_concentration")  # fmt: skip


def _profile(found: dict | None, columns: tuple[str, ...]) -> dict:
    if found is None:
        return dict.fromkeys(columns)
    return {c: found[c] for c in columns}


def _column(table, name: str) -> list:
    """One column of a frame or of records."""
    return [r[name] for r in table] if isinstance(table, list) else table[name].tolist()


def _frames(batch: dict) -> dict:
    """The batch as frames (records made the validator's frames: contract.validate_rows)."""
    if not isinstance(batch["claims"], list):
        return batch
    from contract.validate_rows import canonical_frames

    return {**batch, **canonical_frames(batch)}
