"""The per-key state of the online path and the arithmetic that reads it: per patient (their
claims of the last HISTORY_MONTHS, in a few numbers each), per facility and visit type (claims and
cost per day), per clinician (admission minutes), per surgery performer (procedure spans by day).

`window_features`, `pair_features` and `procedure_features` are `profiles.windows`,
`rules.pair_rules` and `rules.procedure_rule` for one target claim, written once as lookups and
arithmetic; tests/features/test_online_state.py checks them against the Ibis definitions.
"""

from __future__ import annotations

import bisect
import operator as op
import sys
from collections import defaultdict
from typing import NamedTuple

from features import profiles as pf
from features import rules as rl
from features.online_state.sql import and3, cmp, day_number, greatest, or3

# What the month's profiles, the windows and the pair rules read of a remembered claim (the
# compiled plan's history rows get these; its other columns are never read from history rows).
HISTORY_COLUMNS = (
    "claim_id", "person_key", "card_key", "facility_id", "visit_type", "facility_level",
    "facility_beds", "referred_to", "referred_from", "referred_out", "admitted_at",
    "discharged_at", "birth_date", "sex", "icd3", "peer_key", "admit_day", "admit_min",
    "discharge_min", "month", "admit_hour", "stay_days", "total_cost", "cost_drug", "diag_cost",
    "n_service_lines", "n_imaging", "bed_days", "is_stay", "died", "n_lines", "supply_days",
    "supply_end_day", "clinician",
)  # fmt: skip


class Visit(NamedTuple):
    """What the patient windows and pair rules read of one claim."""

    claim_id: str
    month: int
    day: int
    admit_min: int
    discharge_min: int
    cost: float | None
    facility: str
    is_stay: int
    supply_end: float
    supply_days: float
    died: int
    sex: int | None
    birth: str | None
    n_lines: float
    icd3: str | None


class Proc(NamedTuple):
    """A surgery line (lines.procedure_lines)."""

    claim_id: str
    line_key: str
    performer: str
    admit_min: int
    start_day: int | None
    start_min: int | None
    end_min: int | None
    fund: float


def _i(s):
    return None if s is None else sys.intern(s)


def visit(r: dict) -> Visit:
    return Visit(
        r["claim_id"],
        r["month"],
        r["admit_day"],
        r["admit_min"],
        r["discharge_min"],
        r["total_cost"],
        _i(r["facility_id"]),
        r["is_stay"],
        r["supply_end_day"],
        r["supply_days"],
        r["died"],
        r["sex"],
        _i(r["birth_date"]),
        r["n_lines"],
        _i(r["icd3"]),
    )


def procedures(r: dict) -> list[Proc]:
    """lines.procedure_lines of one enriched claim (its `_lines`; a history_row keeps them)."""
    if "_procs" in r:
        return [p if isinstance(p, Proc) else Proc(*p) for p in r["_procs"]]
    out = []
    for x in r.get("_lines", ()):
        if x["cost_group"] not in (8,) or x["performer_id"] is None:
            continue
        start = x["performed_at"] if x["performed_at"] is not None else x["ordered_at"]
        sd = day_number(start)
        smin = None if start is None else sd * 1440 + start.hour * 60 + start.minute
        res = x["result_at"]
        emin = None if res is None else day_number(res) * 1440 + res.hour * 60 + res.minute
        end = greatest(
            smin + 30 if emin is None and smin is not None else emin,
            None if smin is None else smin + 1,
        )
        fund = 0.0 if x["line_fund"] is None else x["line_fund"]
        out.append(
            Proc(
                r["claim_id"], x["line_key"], x["performer_id"], r["admit_min"], sd, smin, end, fund
            )
        )
    return out


def history_row(r: dict, procs: list[Proc]) -> dict:
    """What a remembered claim is kept as in this process: its HISTORY_COLUMNS, its surgeries
    (`_procs`) and, of its lines, what the month's price points read (`_lines` with item,
    fund unit price, quantity, drug flag: items.row_points) — as Redis keeps it
    (shared._row_json), not the whole enriched row with every line (~5x the memory)."""
    if "_procs" in r:  # one already
        return r
    row = {c: r.get(c) for c in HISTORY_COLUMNS}
    row["_procs"] = tuple(procs)
    row["_lines"] = tuple(
        {k: x[k] for k in _POINT_FIELDS} for x in r.get("_lines", ()) if x["item_key"] is not None
    )
    return row


_POINT_FIELDS = ("item_key", "fund_unit_price", "quantity", "is_drug")


class KeyState:
    """The rolling per-key state. `add`/`remove` keep it in step claim by claim."""

    def __init__(self) -> None:
        self.person: dict[str, list[Visit]] = defaultdict(list)
        self.facility: dict[tuple, dict[int, list]] = defaultdict(
            dict
        )  # (fac, vt) -> day -> [n, sum, nonnull]
        self.clinician: dict[str, list[int]] = defaultdict(list)  # sorted admission minutes
        self.performer: dict[str, dict[int, list[Proc]]] = defaultdict(lambda: defaultdict(list))
        self.index: dict[str, tuple] = {}  # claim_id -> what add() put where
        self._windows: dict[tuple, dict] = {}  # _facility_windows' answers since the last change
        self._fkeys: dict[tuple, tuple] = {}

    def __contains__(self, claim_id: str) -> bool:
        return claim_id in self.index

    def add(self, r: dict, procs: list[Proc]) -> None:
        v = visit(r)
        fkey = (v.facility, r["visit_type"])
        fkey = self._fkeys.setdefault(fkey, fkey)  # one tuple per facility and visit type
        entry = (_i(r["person_key"]), fkey, _i(r["clinician"]), v, tuple(procs))
        self.insert(v.claim_id, entry)

    def insert(self, claim_id: str, entry: tuple) -> None:
        """Put back what remove() returned (or add() built)."""
        person, fkey, clin, v, procs = entry
        if self._windows:
            self._windows.clear()
        self.person[person].append(v)
        b = self.facility[fkey].setdefault(v.day, [0, 0.0, 0])
        b[0] += 1
        if v.cost is not None:
            b[1] += v.cost
            b[2] += 1
        if clin is not None:
            bisect.insort(self.clinician[clin], v.admit_min)
        for p in procs:
            self.performer[p.performer][p.start_day].append(p)
        self.index[claim_id] = entry

    def remove(self, claim_id: str) -> tuple:
        entry = self.index.pop(claim_id)
        if self._windows:
            self._windows.clear()
        person, fkey, clin, v, procs = entry
        visits = self.person[person]
        visits.remove(v)
        if not visits:
            del self.person[person]
        b = self.facility[fkey][v.day]
        b[0] -= 1
        if v.cost is not None:
            b[1] -= v.cost
            b[2] -= 1
        if b[0] == 0:
            del self.facility[fkey][v.day]
        if clin is not None:
            mins = self.clinician[clin]
            del mins[bisect.bisect_left(mins, v.admit_min)]
        for p in procs:
            self.performer[p.performer][p.start_day].remove(p)
        return entry

    def prune(self, before_month: int) -> None:
        """Forget claims admitted before `before_month` (the history window)."""
        old = [cid for cid, (_, _, _, v, _) in self.index.items() if v.month < before_month]
        for cid in old:
            self.remove(cid)

    # -- the features ----------------------------------------------------------------------
    def window_features(self, t: dict) -> dict:
        """profiles.windows for target `t` (an enriched row already added to the state)."""
        d = t["admit_day"]
        out: dict = {}
        rows = [v for v in self.person.get(t["person_key"], ()) if d - 365 <= v.day <= d - 1]
        for n in pf.PATIENT_WINDOWS:
            out[f"pat_visits_{n}d"] = float(sum(1 for v in rows if v.day >= d - n))
        for n in (90, 365):
            w = [v for v in rows if v.day >= d - n]
            costs = [v.cost for v in w if v.cost is not None]
            out[f"pat_cost_{n}d"] = float(sum(costs)) if costs else 0.0
            out[f"pat_facilities_{n}d"] = float(len({v.facility for v in w}))
        out["pat_inpatient_365d"] = sum(v.is_stay for v in rows)
        last = max((v.day for v in rows), default=None)
        out["pat_days_since_last"] = None if last is None else float(d - last)
        here = [v.day for v in rows if v.facility == t["facility_id"]]
        out["pat_days_since_last_here"] = float(d - max(here)) if here else None
        end = max((v.supply_end for v in rows), default=None)
        out["pat_supply_remaining_days"] = 0 if end is None else max(end - d, 0)
        out["pat_died_before"] = max((v.died for v in rows), default=0)
        out["pat_identity_mismatch"] = _identity_mismatch(rows, t)
        out.update(self._facility_windows(t["facility_id"], t["visit_type"], d))
        clin = t["clinician"]
        if clin is None:
            out["clin_claims_hour"] = out["clin_claims_today"] = 0.0
        else:
            mins, m = self.clinician[clin], t["admit_min"]
            hi = bisect.bisect_right(mins, m)
            out["clin_claims_hour"] = float(hi - bisect.bisect_left(mins, m - 59))
            out["clin_claims_today"] = float(hi - bisect.bisect_left(mins, d * 1440))
        return out

    def _facility_windows(self, facility, visit_type, d: int) -> dict:
        """fac_claims_{n}d and fac_cost_mean_{n}d of a facility and visit type on day d: each
        window summed day by day from its first day (the same floats whichever claim asks),
        once per (facility, visit type, day) while the state does not change (a request's
        claims share a few facilities and days)."""
        key = (facility, visit_type, d)
        got = self._windows.get(key)
        if got is not None:
            return got
        days = self.facility.get((facility, visit_type), {})
        sums = {n: [0, 0.0, 0] for n in pf.FACILITY_WINDOWS}
        for day in range(d - max(pf.FACILITY_WINDOWS), d):
            b = days.get(day)
            if b is not None:
                for n, acc in sums.items():
                    if day >= d - n:
                        acc[0], acc[1], acc[2] = acc[0] + b[0], acc[1] + b[1], acc[2] + b[2]
        got = {}
        for n, (cnt, total, nonnull) in sums.items():
            got[f"fac_claims_{n}d"] = float(cnt)
            got[f"fac_cost_mean_{n}d"] = total / cnt if cnt and nonnull else None
        self._windows[key] = got
        return got

    def pair_features(self, t: dict) -> dict:
        """rules.pair_rules for target `t`: pr_duplicate, pr_overlap, pr_chronic_left."""
        a_day, a_min, a_id = t["admit_day"], t["admit_min"], t["claim_id"]
        dup = ovl = chronic = None
        for b in self.person.get(t["person_key"], ()):
            if not (a_day - rl.PAIR_DAYS <= b.day <= a_day) or b.claim_id == a_id:
                continue
            if not (b.admit_min < a_min or (b.admit_min == a_min and b.claim_id < a_id)):
                continue
            is_dup = and3(
                b.facility == t["facility_id"],
                b.day == a_day,
                b.n_lines == t["n_lines"],
                _near(b.cost, t["total_cost"]),
            )
            a_from = t["referred_from"]
            is_ovl = and3(
                b.facility != t["facility_id"],
                t["is_stay"] + b.is_stay > 0,
                b.discharge_min - a_min >= 60,
                a_from is None or a_from != b.facility,
            )
            left = float(b.supply_end - a_day)
            is_chronic = and3(
                cmp(b.icd3, t["icd3"], op.eq),
                b.supply_days >= rl.CHRONIC_MIN_SUPPLY,
                t["supply_days"] >= rl.CHRONIC_MIN_SUPPLY,
                left > rl.CHRONIC_MAX_LEFT,
            )
            dup = max(dup or 0, 1 if is_dup else 0)
            ovl = max(ovl or 0, 1 if is_ovl else 0)
            chronic = max(chronic or 0.0, left if is_chronic else 0.0)
        return {"pr_duplicate": dup, "pr_overlap": ovl, "pr_chronic_left": chronic}

    def procedure_features(self, t: dict, procs: list[Proc]) -> dict:
        """rules.procedure_rule for target `t` and its surgery lines: sp_lines, sp_fund."""
        hit: dict[str, float] = {}
        a_min, a_id = t["admit_min"], t["claim_id"]
        for a in procs:
            if a.start_day is None or a.start_min is None or a.end_min is None:
                continue
            days = self.performer.get(a.performer, {})
            for day in (a.start_day - 1, a.start_day, a.start_day + 1):
                for b in days.get(day, ()):
                    if b.claim_id == a_id or b.start_min is None or b.end_min is None:
                        continue
                    if not (
                        b.start_min < a.end_min - rl.SIMULTANEOUS_MIN
                        and a.start_min < b.end_min - rl.SIMULTANEOUS_MIN
                    ):
                        continue
                    if b.admit_min < a_min or (b.admit_min == a_min and b.claim_id < a_id):
                        hit[a.line_key] = max(hit.get(a.line_key, a.fund), a.fund)
        if not hit:
            return {"sp_lines": None, "sp_fund": None}
        return {"sp_lines": float(len(hit)), "sp_fund": float(sum(hit.values()))}


def _near(b_cost, a_cost):
    if b_cost is None or a_cost is None:
        return None
    return abs(b_cost - a_cost) <= max(a_cost, b_cost) * 0.01


def _identity_mismatch(rows: list[Visit], t: dict) -> int:
    sexes = [v.sex for v in rows if v.sex is not None]
    births = [v.birth for v in rows if v.birth is not None]
    lo, hi = (min(sexes), max(sexes)) if sexes else (None, None)
    blo, bhi = (min(births), max(births)) if births else (None, None)
    bad = or3(
        cmp(lo, hi, op.ne),
        cmp(hi, t["sex"], op.ne),
        cmp(blo, bhi, op.ne),
        cmp(bhi, t["birth_date"], op.ne),
    )
    return 1 if bad else 0
