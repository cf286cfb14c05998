"""Point-in-time profiles as Ibis expressions over the enriched claims, and the profile snapshot
the online path joins.

- Patient, rolling-facility and clinician windows: RANGE frames over day (or minute) numbers that
  end the day before the claim (clinician volume: up to the claim's own minute), never row order.
- Facility and clinician monthly profiles: computed per month and joined to the claims of the
  following month (as of the end of the previous month).
- Peer deviations: median and quartiles of the claim's peer group (diagnosis block x visit type x
  facility level) over the previous months only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd

from features.registry import FEATURE_VERSION

PATIENT_WINDOWS = (7, 30, 90, 365)
FACILITY_WINDOWS = (7, 30)
PEER_MONTHS = 6  # peer statistics use the 6 months before the claim's month
PEER_MIN = 10  # fewer peer claims than this: no peer deviation
# (metric, floor of the robust scale): z = (x - median) / max(IQR / 1.349, 10 % of median, floor)
PEER_METRICS = (
    ("total_cost", 10_000.0),
    ("cost_drug", 5_000.0),
    ("diag_cost", 5_000.0),
    ("n_service_lines", 1.0),
    ("stay_days", 1.0),
    ("bed_days", 1.0),
)
HISTORY_MONTHS = 14  # the snapshot keeps this many months of enriched claims (13 for year-on-year)
DAYS_PER_MONTH = 30.4


def _null():
    return ibis.null("float64")


def _div(a, b):
    return (b != 0).ifelse(a / b, _null())


def windows(e: ir.Table) -> ir.Table:
    """Patient, rolling-facility and clinician window features for every enriched claim."""

    def days(by, n, end=-1):
        return ibis.window(group_by=[e[c] for c in by], order_by=e.admit_day, range=(-n, end))

    person = ("person_key",)
    cols: dict[str, ir.Value] = {}
    for n in PATIENT_WINDOWS:
        cols[f"pat_visits_{n}d"] = e.claim_id.count().over(days(person, n)).cast("float64")
    for n in (90, 365):
        cols[f"pat_cost_{n}d"] = e.total_cost.sum().over(days(person, n)).fill_null(0.0)
        cols[f"pat_facilities_{n}d"] = (
            e.facility_id.collect().over(days(person, n)).unique().length().fill_null(0)
        ).cast("float64")
    cols["pat_inpatient_365d"] = e.is_stay.sum().over(days(person, 365)).fill_null(0)
    last = e.admit_day.max().over(days(person, 365))
    cols["pat_days_since_last"] = (e.admit_day - last).cast("float64")
    last_here = e.admit_day.max().over(days(("person_key", "facility_id"), 365))
    cols["pat_days_since_last_here"] = (e.admit_day - last_here).cast("float64")
    supply_end = e.supply_end_day.max().over(days(person, 365))
    cols["pat_supply_remaining_days"] = ibis.greatest(supply_end - e.admit_day, 0).fill_null(0)
    cols["pat_died_before"] = e.died.max().over(days(person, 365)).fill_null(0)
    w = days(person, 365)
    sex_lo, sex_hi = e.sex.min().over(w), e.sex.max().over(w)
    b_lo, b_hi = e.birth_date.min().over(w), e.birth_date.max().over(w)
    mismatch = (sex_lo != sex_hi) | (sex_hi != e.sex) | (b_lo != b_hi) | (b_hi != e.birth_date)
    cols["pat_identity_mismatch"] = mismatch.fill_null(False).ifelse(1, 0)
    # the facility's own recent billing (so a change this month is seen this month)
    fv = ("facility_id", "visit_type")
    for n in FACILITY_WINDOWS:
        cnt = e.claim_id.count().over(days(fv, n))
        cols[f"fac_claims_{n}d"] = cnt.cast("float64")
        cols[f"fac_cost_mean_{n}d"] = _div(e.total_cost.sum().over(days(fv, n)), cnt)
    # clinician volume: claims in the hour up to this one, and so far this day
    hour = ibis.window(group_by=e.clinician, order_by=e.admit_min, range=(-59, 0))
    today = ibis.window(group_by=[e.clinician, e.admit_day], order_by=e.admit_min, range=(None, 0))
    has = e.clinician.notnull()
    cols["clin_claims_hour"] = has.ifelse(e.claim_id.count().over(hour), 0).cast("float64")
    cols["clin_claims_today"] = has.ifelse(e.claim_id.count().over(today), 0).cast("float64")
    return e.select("claim_id", **cols)


# ---------------------------------------------------------------------------------------------
# Monthly profiles


def peer_month_medians(e: ir.Table) -> ir.Table:
    stay = (e.is_stay == 1).ifelse(e.stay_days, _null())
    return e.group_by(pm_key=e.peer_key, pm_month=e.month).agg(
        pm_cost=e.total_cost.median(), pm_stay=stay.median()
    )


def facility_profile(e: ir.Table) -> ir.Table:
    """Per (facility, visit type, month T): the facility as of the end of month T-1, its growth
    and its peers of the same level. Keyed fp_facility, fp_visit_type, fp_month."""
    pm = peer_month_medians(e)
    x = e.left_join(pm, [e.peer_key == pm.pm_key, e.month == pm.pm_month])
    stay_ratio = (x.is_stay == 1).ifelse(_div(x.stay_days, x.pm_stay), _null())
    fm = x.group_by(f_id=x.facility_id, f_month=x.month).agg(
        f_claims=x.count(),
        f_inpatient=x.is_stay.sum(),
        f_bed_days=x.bed_days.sum(),
        f_imaging=x.n_imaging.sum(),
        f_beds=x.facility_beds.max(),
        f_cost_index=_div(x.total_cost, x.pm_cost).mean(),
        f_case_mix=x.pm_cost.mean(),
        f_stay_index=stay_ratio.mean(),
    )
    fm = fm.mutate(f_target=fm.f_month + 1)
    fvm = e.group_by(
        v_id=e.facility_id, v_level=e.facility_level, v_type=e.visit_type, v_month=e.month
    ).agg(v_n=e.count(), v_cost=e.total_cost.sum())
    fvm = fvm.mutate(v_cpv=fvm.v_cost / fvm.v_n)
    prev = fvm.mutate(target=fvm.v_month + 1)
    peers = prev.group_by(p_level=prev.v_level, p_type=prev.v_type, p_target=prev.target).agg(
        p_cpv=prev.v_cpv.median()
    )
    ly = fvm.select(y_id=fvm.v_id, y_type=fvm.v_type, y_target=fvm.v_month + 13, y_cpv=fvm.v_cpv)
    offs = ibis.memtable({"k": [2, 3, 4]})
    tr = fvm.cross_join(offs)
    tr = tr.group_by(r_id=tr.v_id, r_type=tr.v_type, r_target=tr.v_month + tr.k).agg(
        r_cost=tr.v_cost.sum(), r_n=tr.v_n.sum()
    )
    p = prev.left_join(
        peers,
        [prev.v_level == peers.p_level, prev.v_type == peers.p_type, prev.target == peers.p_target],
    )
    p = p.left_join(ly, [p.v_id == ly.y_id, p.v_type == ly.y_type, p.target == ly.y_target])
    p = p.left_join(tr, [p.v_id == tr.r_id, p.v_type == tr.r_type, p.target == tr.r_target])
    p = p.left_join(fm, [p.v_id == fm.f_id, p.target == fm.f_target])
    return p.select(
        fp_facility=p.v_id,
        fp_visit_type=p.v_type,
        fp_month=p.target,
        fac_claims_prev_month=p.f_claims.cast("float64"),
        fac_cost_per_visit_prev=p.v_cpv,
        fac_peer_cost_per_visit_prev=p.p_cpv,
        fac_cost_vs_peers=_div(p.v_cpv, p.p_cpv),
        fac_growth_yoy=_div(p.v_cpv, p.y_cpv),
        fac_growth_trend=_div(p.v_cpv, _div(p.r_cost, p.r_n)),
        fac_inpatient_share=_div(p.f_inpatient, p.f_claims),
        fac_bed_occupancy=_div(p.f_bed_days, p.f_beds * DAYS_PER_MONTH),
        fac_imaging_rate=_div(p.f_imaging, p.f_claims),
        fac_cost_index=p.f_cost_index,
        fac_case_mix=p.f_case_mix,
        fac_stay_index=p.f_stay_index,
    )


def clinician_profile(e: ir.Table) -> ir.Table:
    """Per (clinician, month T): volume, peak hour, cost vs peers and referral concentration in
    month T-1. Keyed cp_clinician, cp_month."""
    c = e.filter(e.clinician.notnull())
    pm = peer_month_medians(e)
    c = c.left_join(pm, [c.peer_key == pm.pm_key, c.month == pm.pm_month])
    cm = c.group_by(m_clin=c.clinician, m_month=c.month).agg(
        m_claims=c.count(),
        m_days=c.admit_day.nunique(),
        m_cost=c.total_cost.sum(),
        m_level=c.facility_level.max(),
        m_referred=c.referred_out.sum(),
        m_cost_index=_div(c.total_cost, c.pm_cost).mean(),
    )
    cm = cm.mutate(m_cpc=cm.m_cost / cm.m_claims)
    hours = c.group_by(
        h_clin=c.clinician, h_month=c.month, h_day=c.admit_day, h_hour=c.admit_hour
    ).agg(h_n=c.count())
    peak = hours.group_by(k_clin=hours.h_clin, k_month=hours.h_month).agg(k_peak=hours.h_n.max())
    r = c.filter(c.referred_out == 1)
    dest = r.group_by(d_clin=r.clinician, d_month=r.month, d_to=r.referred_to).agg(d_n=r.count())
    top = dest.group_by(t_clin=dest.d_clin, t_month=dest.d_month).agg(t_top=dest.d_n.max())
    peers = cm.group_by(q_level=cm.m_level, q_month=cm.m_month).agg(q_cpc=cm.m_cpc.median())
    p = cm.left_join(peak, [cm.m_clin == peak.k_clin, cm.m_month == peak.k_month])
    p = p.left_join(top, [p.m_clin == top.t_clin, p.m_month == top.t_month])
    p = p.left_join(peers, [p.m_level == peers.q_level, p.m_month == peers.q_month])
    return p.select(
        cp_clinician=p.m_clin,
        cp_month=p.m_month + 1,
        clin_claims_prev_month=p.m_claims.cast("float64"),
        clin_claims_per_day=(p.m_claims / p.m_days).cast("float64"),
        clin_peak_hour=p.k_peak.cast("float64"),
        clin_cost_per_claim=p.m_cpc,
        clin_cost_vs_peers=_div(p.m_cpc, p.q_cpc),
        clin_cost_index=p.m_cost_index,
        clin_referral_share=_div(p.m_referred, p.m_claims),
        clin_referral_concentration=_div(p.t_top.cast("float64"), p.m_referred),
    )


def peer_stats(e: ir.Table, metric: str, with_n: bool = False) -> ir.Table:
    """Median and quartiles of one peer metric per (peer group, month T) over months
    T-PEER_MONTHS .. T-1. Keyed ps_key_<metric>, ps_month_<metric>. One metric per table keeps
    the holistic aggregates (which hold their values in memory) small on big data."""
    offs = ibis.memtable({"k": list(range(1, PEER_MONTHS + 1))})
    x = e.select("peer_key", "month", metric).cross_join(offs)
    aggs = {
        f"pq50_{metric}": x[metric].median(),
        f"pq25_{metric}": x[metric].quantile(0.25),
        f"pq75_{metric}": x[metric].quantile(0.75),
    }
    if with_n:
        aggs["peer_n"] = x.count()
    return x.group_by(**{f"ps_key_{metric}": x.peer_key, f"ps_month_{metric}": x.month + x.k}).agg(
        **aggs
    )


def peer_deviations(t: ir.Table) -> dict[str, ir.Value]:
    """Ratio and robust z-score of the claim's metrics against its peers (t joined with
    peer_stats)."""
    enough = t.peer_n >= PEER_MIN
    out: dict[str, ir.Value] = {"peer_n": t.peer_n.fill_null(0).cast("float64")}
    for m, floor in PEER_METRICS:
        med, q25, q75 = t[f"pq50_{m}"], t[f"pq25_{m}"], t[f"pq75_{m}"]
        scale = ibis.greatest((q75 - q25) / 1.349, med.abs() * 0.1, floor)
        out[f"peer_median_{m}"] = enough.ifelse(med, _null())
        out[f"peer_ratio_{m}"] = enough.ifelse(_div(t[m], med), _null())
        out[f"peer_z_{m}"] = enough.ifelse((t[m] - med) / scale, _null())
    return out


# ---------------------------------------------------------------------------------------------
# The snapshot


SNAPSHOT_PARTS = ("history", "price_points", "procedures", "facilities")


@dataclass
class Snapshot:
    """What the online path needs besides the incoming claims, as of a date: the enriched claims
    of the last HISTORY_MONTHS months, the price points, the procedure lines, the facilities."""

    as_of: pd.Timestamp
    history: pd.DataFrame
    price_points: pd.DataFrame
    procedures: pd.DataFrame
    facilities: pd.DataFrame
    price_list: pd.DataFrame | None = None

    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in SNAPSHOT_PARTS:
            getattr(self, name).to_parquet(folder / f"{name}.parquet", index=False)
        if self.price_list is not None:
            self.price_list.to_parquet(folder / "price_list.parquet", index=False)
        meta = {
            "as_of": self.as_of.strftime("%Y-%m-%d"),
            "feature_version": FEATURE_VERSION,
            "history_claims": len(self.history),
        }
        (folder / "snapshot.json").write_text(json.dumps(meta, indent=1))
        return folder

    @classmethod
    def load(cls, folder: Path) -> Snapshot:
        folder = Path(folder)
        meta = json.loads((folder / "snapshot.json").read_text())
        parts = {n: pd.read_parquet(folder / f"{n}.parquet") for n in SNAPSHOT_PARTS}
        pl = folder / "price_list.parquet"
        return cls(
            pd.Timestamp(meta["as_of"]),
            **parts,
            price_list=pd.read_parquet(pl) if pl.exists() else None,
        )
