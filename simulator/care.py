"""Honest care: who falls ill with what, when, where they are treated, and every line billed.

Everything is drawn in bulk with numpy; the only loops run over diseases, age-sex strata, months or
care packages (dozens), never over claims.
"""

from __future__ import annotations

import numpy as np

from simulator import catalogue as cat
from simulator.actors import World
from simulator.frame import MINUTES_PER_DAY, Cols, calendar_month, weekday

# Published: visits +2.95 % a year, costs +10.35 % (Quang Nam 2023). Visit volume grows with the
# first; the cost of a visit grows through care intensity (more optional tests and drugs per visit).
VISIT_GROWTH = 0.0295
INTENSITY_GROWTH = 0.085
# Relative acute-visit rate per age band (0-5, 6-15, 16-39, 40-59, 60+).
ACUTE_RATE = np.array([3.0, 1.1, 0.65, 0.95, 1.9])
# Level mix per visit type and severity: columns TW, T, H, X, PK, PH.
LEVEL_P = {
    cat.EXAM: np.array(
        [
            [0.01, 0.06, 0.50, 0.22, 0.14, 0.07],
            [0.03, 0.14, 0.48, 0.15, 0.10, 0.10],
            [0.08, 0.30, 0.47, 0.00, 0.05, 0.10],
        ]
    ),
    cat.INPATIENT: np.array(
        [
            [0.02, 0.16, 0.62, 0.06, 0.00, 0.14],
            [0.05, 0.28, 0.54, 0.00, 0.00, 0.13],
            [0.12, 0.45, 0.35, 0.00, 0.00, 0.08],
        ]
    ),
    cat.OUT_TREAT: np.array([[0.0, 0.3, 0.6, 0.0, 0.0, 0.1]] * 3),
}
# Optional-item intensity by level (tests and imaging are ordered more at big and private places).
LEVEL_INTENSITY = np.array([1.2, 1.15, 1.0, 0.7, 1.3, 1.3])
# Claims per clinician per working day: outpatient exam rooms, then inpatient wards.
EXAM_LOAD, WARD_LOAD = 35.0, 3.0

CLAIM_COLUMNS = (
    "person",
    "card_person",
    "facility",
    "disease",
    "vtype",
    "route",
    "vao",
    "vao_nt",
    "ra",
    "days",
    "bed_days",
    "supply",
    "outcome",
    "rv_type",
    "ref_from",
    "ref_to",
    "dept",
    "clinician",
    "episode",
    "emergency",
    "chronic_visit",
    "origin",
)


def _empty_claims(n: int) -> Cols:
    c = Cols()
    for k in CLAIM_COLUMNS:
        c[k] = np.full(n, -1, dtype=np.int64)
    c["emergency"] = np.zeros(n, dtype=bool)
    c["chronic_visit"] = np.zeros(n, dtype=bool)
    c["origin"] = np.zeros(n, dtype=bool)
    return c


def _sample_days(rng, month: np.ndarray, bounds: np.ndarray, anyday: np.ndarray) -> np.ndarray:
    """A day within each claim's month; routine visits mostly on weekdays."""
    out = np.empty(len(month), dtype=np.int64)
    for m in np.unique(month):
        idx = np.flatnonzero(month == m)
        days = np.arange(bounds[m], bounds[m + 1])
        wd = weekday(days)
        w = np.where(wd < 5, 1.0, np.where(wd == 5, 0.5, 0.12))
        cdf = np.cumsum(w) / w.sum()
        pick = np.searchsorted(cdf, rng.random(len(idx)), side="right")
        any_pick = rng.integers(0, len(days), len(idx))
        out[idx] = days[np.where(anyday[idx], any_pick, np.minimum(pick, len(days) - 1))]
    return out


def _clock(rng, n: int, emergency: np.ndarray) -> np.ndarray:
    """Arrival minute of the day: 07:00-11:00 or 13:30-16:30; emergencies at any hour."""
    morning = rng.random(n) < 0.72
    m = np.where(morning, 420 + rng.integers(0, 240, n), 810 + rng.integers(0, 180, n))
    return np.where(emergency, rng.integers(0, MINUTES_PER_DAY, n), m)


def chronic_visits(world: World, bounds: np.ndarray, rng: np.random.Generator) -> Cols:
    """Monthly visits of people in a chronic programme, each after the previous supply ran out."""
    ppl = world.people
    cp = np.flatnonzero(ppl["chronic"] >= 0)
    dis = ppl["chronic"][cp]
    months = len(bounds) - 1
    supply = np.where(rng.random(len(cp)) < 0.3, 28, 30)
    k = int(np.ceil(months * 31 / 28)) + 2
    # at least one day of slack, so moving a Sunday pickup to Monday never shortens a supply
    gap = rng.choice([1, 2, 3, 4, 6, 8], (len(cp), k), p=[0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    skip = rng.random((len(cp), k)) < 0.07
    intervals = supply[:, None] * (1 + skip) + gap
    first = bounds[0] - supply + rng.integers(0, 30, len(cp))
    days = first[:, None] + np.cumsum(intervals, axis=1)
    days = days + (weekday(days) == 6)  # Sunday -> Monday: only ever later, never overlapping
    rows, cols = np.nonzero((days >= bounds[0]) & (days < bounds[-1]))
    n = len(rows)
    c = _empty_claims(n)
    c["person"] = cp[rows]
    c["card_person"] = c["person"]
    c["disease"] = dis[rows].astype(np.int64)
    dialysis = c["disease"] == cat.DISEASE["N18.5"]
    c["vtype"] = np.where(dialysis, cat.CHRONIC_SERVICES, cat.CHRONIC_DRUGS)
    day = days[rows, cols]
    vao = day * MINUTES_PER_DAY + _clock(rng, n, np.zeros(n, dtype=bool))
    c["vao"] = vao
    c["supply"] = supply[rows]
    sessions = np.where(supply[rows] == 28, 12, 13)
    c["days"] = np.where(dialysis, sessions, c["supply"])
    # dialysis: one claim per month of sessions, the last one S-2 days after the first
    c["ra"] = np.where(
        dialysis,
        (day + supply[rows] - 2) * MINUTES_PER_DAY + 660,
        vao + 30 + rng.integers(0, 90, n),
    )
    reg = ppl["registered"][c["person"]]
    t_general = world.facilities_of(cat.T)[0]
    c["facility"] = np.where(dialysis, np.where(rng.random(n) < 0.7, t_general, reg), reg)
    # commune stations and clinics do not dialyse: those patients go to the provincial hospital
    lvl = world.facilities["level"][c["facility"]]
    c["facility"] = np.where(dialysis & np.isin(lvl, [cat.X, cat.PK]), t_general, c["facility"])
    c["chronic_visit"][:] = True
    c["outcome"] = np.full(n, 2)
    c["rv_type"] = np.full(n, 1)
    c["bed_days"] = np.zeros(n, dtype=np.int64)
    c["route"] = np.full(n, cat.R_DISTRICT)
    return c


def acute_episodes(world: World, n_claims: int, bounds: np.ndarray, rng) -> Cols:
    """n_claims acute claims: episodes, some of them a referral (a claim at the referring
    district hospital, then one at the higher-level hospital)."""
    ppl, fac = world.people, world.facilities
    months = len(bounds) - 1
    n = n_claims
    da = cat.DISEASE_ARRAYS
    w = ACUTE_RATE[ppl["age_band"]] * np.where(ppl["chronic"] >= 0, 1.3, 1.0)
    person = rng.choice(world.n_people, n, p=w / w.sum())
    band = ppl["age_band"][person]
    sex = ppl["sex"][person]

    # month and disease jointly, per age-sex stratum
    trend = (1 + VISIT_GROWTH) ** (np.arange(months) / 12) * np.diff(bounds)
    cal = calendar_month(bounds[:-1])
    month = np.empty(n, dtype=np.int64)
    disease = np.empty(n, dtype=np.int64)
    for b in range(5):
        for s in (1, 2):
            idx = np.flatnonzero((band == b) & (sex == s))
            if len(idx) == 0:
                continue
            sexok = (da["sex"] == 0) | (da["sex"] == s)
            sexf = np.where(
                s == 1, 2 * da["male_bias"] / (1 + da["male_bias"]), 2 / (1 + da["male_bias"])
            )
            wd = da["weight"] * da["ages"][:, b] * sexf * sexok
            table = trend[:, None] * wd[None, :] * da["season"][:, cal].T
            cdf = np.cumsum(table.ravel())
            cell = np.searchsorted(cdf / cdf[-1], rng.random(len(idx)), side="right")
            cell = np.minimum(cell, table.size - 1)
            month[idx], disease[idx] = np.divmod(cell, len(cat.DISEASES))

    # visit type from each disease's mix
    vtype = np.full(n, cat.EXAM, dtype=np.int64)
    for d, dz in enumerate(cat.DISEASES):
        idx = np.flatnonzero(disease == d)
        if len(idx) == 0 or len(dz.visit_mix) == 1:
            vtype[idx] = next(iter(dz.visit_mix))
            continue
        kinds = np.array(list(dz.visit_mix))
        p = np.array(list(dz.visit_mix.values()), dtype=float)
        vtype[idx] = kinds[rng.choice(len(kinds), len(idx), p=p / p.sum())]

    # level, then facility
    sev = da["severity"][disease]
    level = np.empty(n, dtype=np.int64)
    for vt, tab in LEVEL_P.items():
        for s_ in range(3):
            idx = np.flatnonzero((vtype == vt) & (sev == s_))
            level[idx] = rng.choice(6, len(idx), p=tab[s_] / tab[s_].sum())
    facility = _facility_at_level(world, person, level, disease, rng)
    reg = ppl["registered"][person]
    reg_level = fac["level"][reg]
    own = np.where(vtype == cat.EXAM, rng.random(n) < 0.3, rng.random(n) < 0.25)
    own &= (vtype == cat.EXAM) | np.isin(reg_level, [cat.H, cat.T, cat.PH])
    own &= ~((vtype == cat.OUT_TREAT) & (reg_level == cat.X))
    facility = np.where(own, reg, facility)
    level = fac["level"][facility].astype(np.int64)
    # inpatient at a commune station is a commune stay; some short and day-care stays
    vtype = np.where((vtype == cat.INPATIENT) & (level == cat.X), cat.COMMUNE_STAY, vtype)
    u = rng.random(n)
    mild_in = (vtype == cat.INPATIENT) & (sev == 0) & np.isin(level, [cat.H, cat.T, cat.PH])
    vtype = np.where(mild_in & (u < 0.06), cat.SHORT_STAY, vtype)
    vtype = np.where(mild_in & (u >= 0.06) & (u < 0.10), cat.DAYCARE, vtype)

    inpatient = np.isin(vtype, (*cat.INPATIENT_TYPES, cat.SHORT_STAY))
    emergency = inpatient & (rng.random(n) < np.choose(sev, [0.08, 0.3, 0.45]))
    # route kind: referral into provincial/central care, wrong route, province-level free access
    route = np.full(n, cat.R_DISTRICT, dtype=np.int64)
    high = np.isin(level, [cat.T, cat.TW]) & (facility != reg)
    u = rng.random(n)
    route = np.where(high, cat.R_REFERRAL, route)
    route = np.where(high & inpatient & (level == cat.T) & (u < 0.4), cat.R_PROVINCE_FREE, route)
    route = np.where(high & inpatient & (level == cat.TW) & (u < 0.1), cat.R_WRONG_CENTRAL, route)
    route = np.where(emergency, cat.R_EMERGENCY, route)
    has_origin = (route == cat.R_REFERRAL) & (rng.random(n) < 0.7)

    # keep exactly n_claims claims, counting each referral as two
    size = 1 + has_origin
    cum = np.cumsum(size)
    keep = int(np.searchsorted(cum, n_claims, side="right"))
    if keep < n and (cum[keep - 1] if keep else 0) < n_claims:
        has_origin[keep] = False
        keep += 1
    sl = slice(0, keep)
    person, month, disease, vtype, level = person[sl], month[sl], disease[sl], vtype[sl], level[sl]
    facility, route, emergency, has_origin = facility[sl], route[sl], emergency[sl], has_origin[sl]
    sev, reg, inpatient = sev[sl], reg[sl], inpatient[sl]
    n = keep

    day = _sample_days(rng, month, bounds, emergency)
    vao = day * MINUTES_PER_DAY + _clock(rng, n, emergency)
    # length of stay (days between admission and discharge dates)
    lvl_f = np.array([1.15, 1.15, 1.0, 1.0, 1.0, 0.9])[level]
    mean = np.maximum(da["los"][disease], 1.0) * lvl_f
    los = np.round(rng.lognormal(np.log(mean) - 0.1, 0.45)).astype(np.int64)
    los = np.where(vtype == cat.INPATIENT, np.maximum(los, (rng.random(n) > 0.04).astype(int)), los)
    los = np.where(vtype == cat.COMMUNE_STAY, rng.integers(1, 4, n), los)
    los = np.where(vtype == cat.DAYCARE, rng.integers(1, 5, n), los)
    course = np.where(vtype == cat.OUT_TREAT, rng.integers(5, 11, n), 0)
    los = np.where(np.isin(vtype, [cat.EXAM, cat.SHORT_STAY]), 0, los)
    vao_nt = np.where(
        np.isin(vtype, (*cat.INPATIENT_TYPES, cat.SHORT_STAY)),
        vao + 15 + rng.integers(0, 100, n),
        -1,
    )
    ra = (day + los) * MINUTES_PER_DAY + 480 + rng.integers(0, 240, n)
    same_day = (vtype == cat.INPATIENT) & (los == 0)
    ra = np.where(same_day, vao_nt + 250 + rng.integers(0, 400, n), ra)
    ra = np.where(vtype == cat.EXAM, vao + 25 + rng.integers(0, 150, n), ra)
    vao_nt = np.where(vtype == cat.SHORT_STAY, vao + 10 + rng.integers(0, 30, n), vao_nt)
    ra = np.where(vtype == cat.SHORT_STAY, vao_nt + 40 + rng.integers(0, 150, n), ra)
    ra = np.where(vtype == cat.OUT_TREAT, (day + course - 1) * MINUTES_PER_DAY + 1439, ra)
    ra = np.maximum(ra, np.where(vao_nt > 0, vao_nt + 30, vao + 15))
    stay_days = (ra // MINUTES_PER_DAY) - day
    days = np.where(np.isin(vtype, [cat.EXAM, cat.SHORT_STAY]), 0, stay_days + 1)
    bed_days = np.where(np.isin(vtype, cat.INPATIENT_TYPES), np.maximum(stay_days, 1), 0)

    c = _empty_claims(n)
    c.update(
        person=person,
        card_person=person.copy(),
        facility=facility,
        disease=disease,
        vtype=vtype,
        route=route,
        vao=vao,
        vao_nt=vao_nt,
        ra=ra,
        days=days,
        bed_days=bed_days,
        emergency=emergency,
    )
    c["supply"] = np.where(vtype == cat.EXAM, da["course"][disease], course)
    out_u = rng.random(n)
    c["outcome"] = np.where(
        inpatient,
        np.where(out_u < 0.35, 1, np.where(out_u < 0.96, 2, 3)),
        np.where(out_u < 0.15, 1, np.where(out_u < 0.75, 2, 3)),
    )
    c["rv_type"] = np.ones(n, dtype=np.int64)
    c["episode"] = np.arange(n)
    c["ref_from"] = np.where(
        route == cat.R_REFERRAL, world.district_hospital[ppl["district"][person]], -1
    )

    # the referring visits: an exam at the district hospital that ends in a transfer
    oi = np.flatnonzero(has_origin)
    o = c.take(oi)
    o["facility"] = world.district_hospital[ppl["district"][o["person"]]]
    o["vtype"] = np.full(len(oi), cat.EXAM)
    o["route"] = np.full(len(oi), cat.R_DISTRICT)
    o["emergency"] = np.zeros(len(oi), dtype=bool)
    earlier = (
        np.where(vao[oi] % MINUTES_PER_DAY < 720, MINUTES_PER_DAY, 0)
        + 120
        + rng.integers(0, 60, len(oi))
    )
    # the referring visit ends before the referral, and inside the simulated period
    o["vao"] = np.maximum(vao[oi] - earlier, bounds[0] * MINUTES_PER_DAY)
    o["ra"] = np.minimum(o["vao"] + 40 + rng.integers(0, 40, len(oi)), vao[oi] - 5)
    o["vao"] = np.minimum(o["vao"], o["ra"] - 5)
    o["vao_nt"] = np.full(len(oi), -1)
    o["days"] = np.zeros(len(oi), dtype=np.int64)
    o["bed_days"] = np.zeros(len(oi), dtype=np.int64)
    o["supply"] = np.zeros(len(oi), dtype=np.int64)
    o["outcome"] = np.full(len(oi), 3)
    o["rv_type"] = np.full(len(oi), 2)
    o["ref_from"] = np.full(len(oi), -1)
    o["ref_to"] = facility[oi]
    o["origin"] = np.ones(len(oi), dtype=bool)
    c["ref_from"][oi] = o["facility"]
    return Cols.concat([c, o])


def _facility_at_level(world: World, person, level, disease, rng) -> np.ndarray:
    ppl, fac = world.people, world.facilities
    out = np.empty(len(person), dtype=np.int64)
    lx = level == cat.X
    out[lx] = world.commune_station[ppl["commune"][person[lx]]]
    lh = level == cat.H
    out[lh] = world.district_hospital[ppl["district"][person[lh]]]
    for lv in (cat.TW, cat.T, cat.PK, cat.PH):
        idx = np.flatnonzero(level == lv)
        ids = world.facilities_of(lv)
        w = fac["weight"][ids].astype(float)
        out[idx] = ids[rng.choice(len(ids), len(idx), p=w / w.sum())]
        if lv == cat.T and len(ids) >= 2:
            # the obstetrics-paediatrics hospital takes most children and deliveries
            dept = cat.DISEASE_ARRAYS["dept"][disease[idx]]
            kids = (ppl["age_band"][person[idx]] <= 1) | np.isin(
                dept, [cat.DEPT["K26"], cat.DEPT["K16"]]
            )
            out[idx[kids & (rng.random(len(idx)) < 0.7)]] = ids[1]
    return out


def finalize_routes(world: World, c: Cols) -> None:
    """1.1 at the card's registered facility; 1.2 elsewhere at district level (route-free)."""
    reg = world.people["registered"][c["card_person"]]
    at_own = (c["facility"] == reg) & ~c["emergency"]
    free = np.isin(c["route"], [cat.R_OWN, cat.R_DISTRICT])
    c["route"] = np.where(at_own, cat.R_OWN, np.where(free, cat.R_DISTRICT, c["route"]))


def claim_dept(world: World, c: Cols) -> np.ndarray:
    lvl = world.facilities["level"][c["facility"]]
    ward = np.isin(c["vtype"], cat.INPATIENT_TYPES) & ~np.isin(lvl, [cat.X, cat.PK])
    dept = np.where(ward, cat.DISEASE_ARRAYS["dept"][c["disease"]], cat.DEPT["K01"])
    return dept.astype(np.int64)


# ----------------------------------------------------------------------------------------------
# Honest-world invariants


def resolve_overlaps(world: World, c: Cols, rng, rounds: int = 12) -> None:
    """No person has two episodes whose [NGAY_VAO, NGAY_RA] overlap (honest world). Acute
    episodes in conflict move, whole (with their referral pair), to another person of the same
    age band and sex."""
    ppl = world.people
    strata = ppl["age_band"].astype(np.int64) * 3 + ppl["sex"]
    order_p = np.argsort(strata, kind="stable")
    bounds = np.searchsorted(strata[order_p], np.arange(16))
    for _ in range(rounds):
        bad = overlapping(c["person"], c["vao"], c["ra"], both=True)
        bad &= ~c["chronic_visit"]
        if not bad.any():
            return
        ep = np.unique(c["episode"][bad])
        in_ep = np.isin(c["episode"], ep)
        # one new person per episode, drawn for its acute (non-origin) claim
        main = np.flatnonzero(in_ep & ~c["origin"])
        s = strata[c["person"][main]]
        lo, hi = bounds[s], bounds[s + 1]
        newp = order_p[lo + (rng.random(len(main)) * (hi - lo)).astype(np.int64)]
        by_episode = np.full(int(c["episode"].max()) + 1, -1, dtype=np.int64)
        by_episode[c["episode"][main]] = newp
        rows = np.flatnonzero(in_ep)
        c["person"][rows] = by_episode[c["episode"][rows]]
        c["card_person"][rows] = c["person"][rows]


def overlapping(
    person: np.ndarray, start: np.ndarray, end: np.ndarray, both: bool = False
) -> np.ndarray:
    """Rows whose interval starts before an earlier interval of the same person has ended; with
    both=True also the row just before each of them (usually the stay they collide with)."""
    order = np.lexsort((start, person))
    p, s, e = person[order], start[order], end[order]
    big = np.int64(1) << 40
    runmax = np.maximum.accumulate(p * big + e) - p * big
    prev = np.r_[np.int64(-1), runmax[:-1]]
    same = np.r_[False, p[1:] == p[:-1]]
    hit = same & (s <= prev)
    out = np.zeros(len(person), dtype=bool)
    out[order[hit]] = True
    if both:
        out[order[np.r_[hit[1:], False]]] = True
    return out


def assign_deaths(world: World, c: Cols, rng) -> None:
    """Some elderly inpatients die in hospital: always their last episode."""
    order = np.lexsort((c["vao"], c["person"]))
    p = c["person"][order]
    last = np.r_[p[1:] != p[:-1], True]
    rows = order[last]
    ppl = world.people
    sev = cat.DISEASE_ARRAYS["severity"][c["disease"][rows]]
    old = ppl["age_years"][c["person"][rows]] >= 60
    risk = np.choose(sev, [0.002, 0.015, 0.07]) * old
    die = (c["vtype"][rows] == cat.INPATIENT) & (rng.random(len(rows)) < risk) & ~c["origin"][rows]
    d = rows[die]
    c["outcome"][d] = 5
    c["rv_type"][d] = 1
    ppl["death_day"][c["person"][d]] = c["ra"][d] // MINUTES_PER_DAY


def make_clinicians(world: World, c: Cols, months: int) -> Cols:
    """Clinicians per facility and department, sized to realistic workloads, then assigned."""
    nf = len(world.facility_code)
    nd = len(cat.DEPT_CODES)
    lvl = world.facilities["level"]
    key = c["facility"] * nd + c["dept"]
    counts = np.bincount(key, minlength=nf * nd)
    workdays = max(1, months) * 22
    load = np.full(nd, WARD_LOAD)
    load[cat.DEPT["K01"]] = EXAM_LOAD
    need = np.ceil(counts / (workdays * np.tile(load, nf))).astype(np.int64)
    allowed = np.ones((nf, nd), dtype=bool)
    small = np.isin(lvl, [cat.X, cat.PK])
    allowed[small, :] = False
    allowed[:, cat.DEPT["K01"]] = True
    allowed[:, cat.DEPT["K42"]] = ~small  # laboratory and imaging staff perform tests
    allowed[:, cat.DEPT["K43"]] = ~small
    need = np.maximum(need, allowed.ravel().astype(np.int64))
    # laboratory and imaging staff, sized to the facility's volume
    per_fac = np.bincount(c["facility"], minlength=nf)
    techs = np.maximum(1, np.ceil(per_fac / (workdays * 40))).astype(np.int64) * ~small
    need = need.reshape(nf, nd)
    need[:, cat.DEPT["K42"]] = techs
    need[:, cat.DEPT["K43"]] = techs
    need = need.ravel()
    offsets = np.r_[0, np.cumsum(need)]
    clin = Cols(
        facility=np.repeat(np.arange(nf * nd) // nd, need),
        dept=np.repeat(np.arange(nf * nd) % nd, need),
    )
    clin["offset"] = offsets[:-1]
    clin["need"] = need
    return clin


def pick_clinician(clin: Cols, facility: np.ndarray, dept: np.ndarray, rng) -> np.ndarray:
    nd = len(cat.DEPT_CODES)
    key = facility * nd + dept
    n = clin["need"][key]
    key = np.where(n > 0, key, facility * nd + cat.DEPT["K01"])
    n = clin["need"][key]
    return clin["offset"][key] + (rng.random(len(key)) * n).astype(np.int64)


def generate_claims(world: World, n_claims: int, bounds: np.ndarray, rng) -> Cols:
    ch = chronic_visits(world, bounds, rng)
    if ch.n > 0.45 * n_claims:
        keep = np.sort(rng.permutation(ch.n)[: int(0.45 * n_claims)])
        ch = ch.take(keep)
    ac = acute_episodes(world, n_claims - ch.n, bounds, rng)
    ch["episode"] = np.arange(ch.n) + ac.n
    c = Cols.concat([ac, ch])
    resolve_overlaps(world, c, rng)
    finalize_routes(world, c)
    assign_deaths(world, c, rng)
    c["dept"] = claim_dept(world, c)
    return c


# ----------------------------------------------------------------------------------------------
# Lines


LINE_COLUMNS = (
    "claim",
    "item",
    "qty2",
    "price_bv",
    "price_bh",
    "ratio",
    "yl",
    "th",
    "kq",
    "dept",
    "clin",
    "performer",
    "bed",
    "scheme",
    "qty2_honest",
    "price_bh_honest",
    "price_bv_honest",
)


def _package(d: cat.Disease, cls: str) -> cat.Pkg:
    """A disease's care package; every exam and every stay also carries the usual basics."""
    own = {"out": d.out, "inp": d.inp, "chronic": d.chronic}[cls]
    basics = {"out": cat.BASIC_OUT, "inp": cat.BASIC_IN, "chronic": ()}[cls]
    keys = {k for k, _ in own}
    return own + tuple((k, p) for k, p in basics if k not in keys)


def visit_class(vtype: np.ndarray) -> np.ndarray:
    """0 outpatient exam / treatment / short stay, 1 inpatient-type stay, 2 chronic visit."""
    return np.select(
        [
            np.isin(vtype, cat.INPATIENT_TYPES),
            np.isin(vtype, [cat.CHRONIC_DRUGS, cat.CHRONIC_SERVICES]),
        ],
        [1, 2],
        0,
    )


def draw_items(
    world: World, c: Cols, claim_idx: np.ndarray, day0: int, rng, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(claim, item) pairs of each claim's care package, drawn by probability."""
    cls = visit_class(c["vtype"][claim_idx])
    dz = c["disease"][claim_idx]
    lvl = world.facilities["level"][c["facility"][claim_idx]]
    years = (c["vao"][claim_idx] // MINUTES_PER_DAY - day0) / 365.25
    intensity = (1 + INTENSITY_GROWTH) ** years * LEVEL_INTENSITY[lvl] * scale
    out_c, out_i = [], []
    key = dz * 3 + cls
    order = np.argsort(key, kind="stable")
    ks = key[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    ends = np.r_[starts[1:], len(ks)]
    allowed = cat.ITEM_ARRAYS["allowed"]
    for s, e in zip(starts, ends, strict=True):
        rows = order[s:e]
        d, k = divmod(int(ks[s]), 3)
        pkg = _package(cat.DISEASES[d], ("out", "inp", "chronic")[k])
        if not pkg:
            continue
        items = np.array([cat.ITEM[i] for i, _ in pkg])
        p = np.array([q for _, q in pkg])
        optional = p < 1
        pm = np.where(
            optional[None, :], np.minimum(p[None, :] * intensity[rows, None], 0.98), p[None, :]
        )
        pm = pm * allowed[items][:, lvl[rows]].T
        hit = rng.random(pm.shape) < pm
        r, j = np.nonzero(hit)
        out_c.append(claim_idx[rows[r]])
        out_i.append(items[j])
    if not out_c:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(out_c), np.concatenate(out_i)


_QTY_RULES = {
    "PHYSIO": "course",
    "NEB": "day2",
    "DRESS": "half",
    "SYRINGE": "day2",
    "IVSET": "third",
    "CANNULA": "third",
    "DIALYSIS": "sessions",
    "CBC": "fifth",
}


def build_lines(world: World, c: Cols, claim_of: np.ndarray, item: np.ndarray, rng) -> Cols:
    """Quantities, prices, times, departments and staff for (claim, item) pairs."""
    n = len(claim_of)
    ia = cat.ITEM_ARRAYS
    fac = c["facility"][claim_of]
    lvl = world.facilities["level"][fac]
    vt = c["vtype"][claim_of]
    cls = visit_class(vt)
    bed_days = c["bed_days"][claim_of]
    stay = np.maximum(bed_days, 1)
    # quantity in half units
    is_drug = ia["is_drug"][item]
    drug_days = np.select(
        [cls == 1, cls == 2], [stay, c["supply"][claim_of]], np.maximum(c["supply"][claim_of], 1)
    )
    drug_days = np.where(vt == cat.SHORT_STAY, 1, drug_days)
    drug_days = np.where(vt == cat.CHRONIC_SERVICES, c["days"][claim_of] * 0 + 30, drug_days)
    inject = np.array([it.route.startswith("2.") for it in cat.ITEMS])[item]
    drug_days = np.where(
        inject & (cls == 1), np.minimum(drug_days, 4 + rng.integers(0, 6, n)), drug_days
    )
    qty2 = np.where(is_drug, np.ceil(ia["daily"][item] * drug_days * 2), 2).astype(np.int64)
    course = np.maximum(c["days"][claim_of], rng.integers(5, 11, n))
    for key, rule in _QTY_RULES.items():
        m = item == cat.ITEM[key]
        if not m.any():
            continue
        base = {
            "course": np.where(cls == 1, np.ceil(stay / 2), course),
            "day2": np.where(cls == 1, np.minimum(stay * 2, 10), 1),
            "half": np.where(cls == 1, np.ceil(stay / 2), 1),
            "third": np.ceil(stay / 3),
            "sessions": c["days"][claim_of],
            "fifth": 1 + stay // 5,
        }[rule]
        qty2[m] = (np.asarray(base)[m] * 2).astype(np.int64)
    approved = ia["approved"][item, lvl]
    markup = np.where(ia["is_drug"][item], 1.0, cat.PRIVATE_MARKUP[lvl])
    price_bv = np.round(approved * markup).astype(np.int64)
    # times inside the stay
    vao, ra = c["vao"][claim_of], c["ra"][claim_of]
    vnt = np.where(c["vao_nt"][claim_of] > 0, c["vao_nt"][claim_of], vao)
    span = ra - vao
    grp = ia["group"][item]
    u = rng.random((3, n))
    yl = vao + (u[0] * 0.5 * span).astype(np.int64)
    yl = np.where(grp == 13, vao + np.minimum(5, span), yl)
    yl = np.where(np.isin(grp, [14, 15, 16]), vnt, yl)
    th = yl + (u[1] * np.minimum(45, ra - yl)).astype(np.int64)
    kq = th + (u[2] * np.minimum(180, ra - th)).astype(np.int64)
    kq = np.where(np.isin(grp, [14, 15, 16]), ra, kq)
    kq = np.where(is_drug, -1, kq)
    dept = c["dept"][claim_of].copy()
    dept = np.where(grp == 13, cat.DEPT["K01"], dept)
    big = ~np.isin(lvl, [cat.X, cat.PK])
    dept = np.where((grp == 1) & big, cat.DEPT["K42"], dept)
    dept = np.where(np.isin(grp, [2, 3]) & big, cat.DEPT["K43"], dept)
    bed = np.where(np.isin(grp, [14, 15, 16]), rng.integers(1, 60, n), -1)
    return Cols(
        claim=claim_of.astype(np.int64),
        item=item.astype(np.int64),
        qty2=qty2,
        price_bv=price_bv,
        price_bh=approved.astype(np.int64),
        ratio=ia["ratio"][item].astype(np.int64),
        yl=yl,
        th=th,
        kq=kq,
        dept=dept.astype(np.int64),
        clin=c["clinician"][claim_of].copy(),
        performer=np.full(n, -1, dtype=np.int64),
        bed=bed.astype(np.int64),
        scheme=np.full(n, -1, dtype=np.int64),
        qty2_honest=qty2.copy(),
        price_bh_honest=approved.astype(np.int64),
        price_bv_honest=price_bv.copy(),
    )


def bed_items(world: World, c: Cols, claim_idx: np.ndarray, rng) -> tuple[np.ndarray, ...]:
    """Bed-day lines of inpatient-type stays: (claim, item, quantity in days)."""
    vt = c["vtype"][claim_idx]
    stay = claim_idx[np.isin(vt, cat.INPATIENT_TYPES)]
    d = c["disease"][stay]
    lvl = world.facilities["level"][c["facility"][stay]]
    surgical = np.isin(
        cat.DISEASE_ARRAYS["dept"][d], [cat.DEPT["K19"], cat.DEPT["K22"], cat.DEPT["K26"]]
    )
    item = np.where(surgical & (lvl != cat.X), cat.ITEM["BED_SURG"], cat.ITEM["BED_INT"])
    item = np.where(c["vtype"][stay] == cat.DAYCARE, cat.ITEM["BED_DAY"], item)
    days = c["bed_days"][stay]
    icu = (cat.DISEASE_ARRAYS["severity"][d] == 2) & (days >= 3) & (rng.random(len(stay)) < 0.15)
    icu &= np.isin(lvl, [cat.TW, cat.T, cat.H, cat.PH])
    icu_days = np.where(icu, np.minimum(2, days - 1), 0)
    claims = np.r_[stay, stay[icu]]
    items = np.r_[item, np.full(icu.sum(), cat.ITEM["BED_ICU"])]
    qty = np.r_[days - icu_days, icu_days[icu]]
    return claims, items, qty


def generate_lines(
    world: World, c: Cols, claim_idx: np.ndarray, day0: int, rng, scale: float = 1.0
) -> Cols:
    """All lines (exam, beds, package items) of the given claims."""
    pc, pi = draw_items(world, c, claim_idx, day0, rng, scale)
    ec = claim_idx
    ei = np.full(len(ec), cat.ITEM["EXAM"])
    bc, bi, bq = bed_items(world, c, claim_idx, rng)
    lines = build_lines(world, c, np.r_[ec, bc, pc], np.r_[ei, bi, pi], rng)
    nb = len(ec)
    lines["qty2"][nb : nb + len(bc)] = bq * 2
    lines["qty2_honest"][nb : nb + len(bc)] = bq * 2
    return lines


def set_performers(world: World, lines: Cols, clin: Cols, c: Cols, rng) -> None:
    """Performer (NGUOI_THUC_HIEN) for tests, imaging, surgery and procedures."""
    grp = cat.ITEM_ARRAYS["group"][lines["item"]]
    need = np.isin(grp, [1, 2, 3, 8, 18])
    fac = c["facility"][lines["claim"]]
    lvl = world.facilities["level"][fac]
    tech = np.isin(grp, [1, 2, 3]) & ~np.isin(lvl, [cat.X, cat.PK])
    dept = np.where(grp == 1, cat.DEPT["K42"], cat.DEPT["K43"])
    perf = pick_clinician(clin, fac, dept, rng)
    lines["performer"] = np.where(need, np.where(tech, perf, lines["clin"]), -1)
