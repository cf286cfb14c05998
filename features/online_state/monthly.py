"""What depends on whole months, for one month: the facility and clinician profiles, the peer
statistics and the approved (or learned) prices, computed by the Ibis definitions themselves
(`profiles.facility_profile`, `clinician_profile`, `peer_stats`, `lines.learned_price_reference`
/ `listed_price_reference`) over the snapshot's history plus the remembered claims, once a month
(and again when a late claim changes an earlier month)."""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import pandas as pd

from features import lines as ln
from features import profiles as pf
from features.assembly import (
    PRICE_MIN_LINES,
    PRICE_MONTHS,
    PRICE_QUANTILE,
    cast_like,
    price_list_table,
)
from features.engine import Engine
from features.online_state.items import row_points
from features.online_state.sql import records


@dataclass
class MonthParts:
    month: int
    fp: dict = field(default_factory=dict)  # (facility, visit type) -> profile columns
    cp: dict = field(default_factory=dict)  # clinician -> profile columns
    peers: dict = field(default_factory=dict)  # peer key -> metric -> (median, q25, q75); peer_n
    refs: dict = field(default_factory=dict)  # (item key, level) -> [reference prices]
    items: dict = field(default_factory=dict)  # (key, level) -> lines.item_reference value


def price_points(rows) -> pd.DataFrame:
    """lines.price_points of enriched rows (from their `_lines`), pseudo items included."""
    out = [p for r in rows for p in row_points(r)]
    df = pd.DataFrame(out, columns=["item_key", "facility_level", "month", "price"])
    return df.groupby(list(df.columns), as_index=False).size().rename(columns={"size": "n"})


def _history(eng: Engine, snapshot: pf.Snapshot, remembered: list[dict]):
    """The snapshot's history (less the claims remembered again since) plus the remembered
    claims, as an engine table."""
    hist = snapshot.history
    rem = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in remembered])
    if len(rem) and len(hist):
        hist = hist[~hist["claim_id"].isin(set(rem["claim_id"]))]
    if not len(hist) and not len(rem):
        return None
    if not len(snapshot.history):
        return eng.register("remembered", rem)
    h = eng.register("history", hist if len(hist) else snapshot.history.iloc[:0])
    if not len(rem):
        return h
    return h.union(cast_like(eng.register("remembered", rem.reindex(columns=hist.columns)), h))


def month_parts(snapshot: pf.Snapshot, remembered: list[dict], month: int) -> MonthParts:
    out = MonthParts(month)
    with Engine.connect("duckdb", threads=1) as eng:
        e = _history(eng, snapshot, remembered)
        if e is not None:
            fp = eng.execute(pf.facility_profile(e).filter(lambda t: t.fp_month == month))
            for r in records(fp):
                key = (r.pop("fp_facility"), r.pop("fp_visit_type"))
                r.pop("fp_month")
                out.fp[key] = r
            cp = eng.execute(pf.clinician_profile(e).filter(lambda t: t.cp_month == month))
            for r in records(cp):
                key = r.pop("cp_clinician")
                r.pop("cp_month")
                out.cp[key] = r
            for i, (m, _) in enumerate(pf.PEER_METRICS):
                ps = pf.peer_stats(e, m, with_n=i == 0)
                ps = eng.execute(ps.filter(ps[f"ps_month_{m}"] == month))
                for r in records(ps):
                    got = out.peers.setdefault(r[f"ps_key_{m}"], {})
                    got[m] = (r[f"pq50_{m}"], r[f"pq25_{m}"], r[f"pq75_{m}"])
                    if i == 0:
                        got["peer_n"] = r["peer_n"]
        pts = [p for p in (snapshot.price_points, price_points(remembered)) if len(p)]
        pts = pd.concat(pts, ignore_index=True) if pts else pd.DataFrame()
        if len(pts):
            items = ln.item_reference(eng.register("item_points", pts))
            for r in records(eng.execute(items.filter(items.month == month))):
                out.items[(r["item_key"], r["facility_level"])] = r["value"]
        if snapshot.price_list is not None:
            pl = price_list_table(eng, snapshot.price_list)
            ref = eng.execute(ln.listed_price_reference(pl, ibis.memtable({"month": [month]})))
        else:
            ref = pd.DataFrame(columns=["item_key", "facility_level", "ref_price"])
            if len(pts):
                learned = ln.learned_price_reference(
                    eng.register("points", pts), PRICE_MONTHS, PRICE_QUANTILE, PRICE_MIN_LINES
                )
                ref = eng.execute(learned.filter(learned.month == month))
    for r in records(ref):
        out.refs.setdefault((r["item_key"], r["facility_level"]), []).append(r["ref_price"])
    return out
