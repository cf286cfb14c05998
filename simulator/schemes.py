"""Abuse schemes: each switchable with a rate, each leaving the footprint it leaves in life.

A scheme's rate is the share of all claims it touches. Its actors (facilities, clinicians, patients
or cards) are drawn first; each starts in some month, ramps up, keeps billing mostly honest claims
(a share of their eligible claims, not all) and some stop and switch to the next scheme of their
kind. Claims a scheme touches carry ground truth: scheme, variant, actor, and per line the amount
of fund money billed beyond the honest counterfactual (whole claims for fabricated ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator import care
from simulator import catalogue as cat
from simulator.actors import World
from simulator.frame import MINUTES_PER_DAY, Cols


@dataclass(frozen=True)
class Scheme:
    rate: float
    actor: str  # facility | clinician | patient | card
    adds_claims: bool
    description: str


SCHEMES: dict[str, Scheme] = {
    "ghost": Scheme(
        0.004,
        "facility",
        True,
        "Ghost visits: fabricated outpatient claims on real people's cards, billed "
        "from a template in the last days of the month",
    ),
    "upcoding": Scheme(
        0.008,
        "clinician",
        False,
        "Upcoding: a service billed as its pricier sibling (X-ray as CT, simple as "
        "complex dressing) or a diagnosis billed as a more severe one",
    ),
    "unbundling": Scheme(
        0.003,
        "facility",
        False,
        "Unbundling: anaesthesia and infusion already included in a surgery or "
        "delivery price billed as separate lines",
    ),
    "needless_tests": Scheme(
        0.010, "clinician", False, "Needless imaging and lab panels added to routine visits"
    ),
    "duplicate": Scheme(
        0.002,
        "facility",
        True,
        "Duplicate billing: the same episode submitted again under a new MA_LK",
    ),
    "padded_stay": Scheme(
        0.004,
        "facility",
        False,
        "Padded length of stay and bed-days: stays kept open longer, or more "
        "bed-days billed than the stay had",
    ),
    "split_admission": Scheme(
        0.001,
        "facility",
        True,
        "Split admissions: one stay discharged and readmitted the same day, billed as two episodes",
    ),
    "card_sharing": Scheme(
        0.002,
        "card",
        True,
        "Borrowed or shared cards: another person's card, one card at two "
        "facilities at once, and cards of people who died",
    ),
    "overprice": Scheme(
        0.006, "facility", False, "Prices above the approved price (DON_GIA_BH over the catalogue)"
    ),
    "drug_padding": Scheme(
        0.010,
        "clinician",
        False,
        "Drug padding: quantities beyond the dose, costly supportive drugs "
        "unrelated to the diagnosis",
    ),
    "chronic_overlap": Scheme(
        0.003,
        "patient",
        True,
        "Overlapping chronic drug supply: a second monthly supply from "
        "another facility while the first is still running",
    ),
    "cost_climb": Scheme(
        0.005,
        "facility",
        False,
        "A facility whose cost per claim climbs month after month beyond peers",
    ),
    "referral_kickback": Scheme(
        0.002,
        "clinician",
        True,
        "Concentrated referrals: one clinician sends patients to one "
        "private hospital, which bills needless care",
    ),
}
SCHEME_NAMES = tuple(SCHEMES)
SCHEME_ID = {k: i for i, k in enumerate(SCHEME_NAMES)}
ACTOR_TYPES = ("facility", "clinician", "patient", "card")
A_FACILITY, A_CLINICIAN, A_PATIENT, A_CARD = range(4)
VARIANTS = {
    "upcoding": ("service", "diagnosis"),
    "padded_stay": ("longer_stay", "extra_bed_days"),
    "card_sharing": ("borrowed", "concurrent", "deceased"),
    "drug_padding": ("quantity", "supportive"),
    "duplicate": ("exact", "shifted"),
}

TRUTH_COLUMNS = ("scheme", "variant", "actor_type", "actor", "partner", "icd_override")


def added_claims(rates: dict[str, float], n_claims: int) -> dict[str, int]:
    """Claims each claim-adding scheme adds (card sharing adds only its concurrent and deceased
    variants, half of its claims)."""
    out = {}
    for k, s in SCHEMES.items():
        if not s.adds_claims:
            continue
        kk = round(rates.get(k, 0.0) * n_claims)
        out[k] = kk - round(kk * 0.5) if k == "card_sharing" else kk
    return out


@dataclass
class Context:
    world: World
    c: Cols
    lines: Cols
    clin: Cols
    bounds: np.ndarray
    rng: np.random.Generator
    n_target: int
    rates: dict[str, float]
    roster: list[dict] = field(default_factory=list)
    switch_queue: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    locked: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pending: list[Cols] = field(default_factory=list)
    first_month: dict[str, int] = field(default_factory=dict)  # scheme -> first month it runs

    @property
    def months(self) -> int:
        return len(self.bounds) - 1

    @property
    def day0(self) -> int:
        return int(self.bounds[0])

    def month(self, idx=None) -> np.ndarray:
        v = self.c["vao"] if idx is None else self.c["vao"][idx]
        return np.searchsorted(self.bounds, v // MINUTES_PER_DAY, side="right") - 1

    def free(self) -> np.ndarray:
        """Claims no scheme has touched (nor copied: a duplicate's original stays as it was)."""
        free = self.c["scheme"] < 0
        free[self.locked[self.locked < len(free)]] = False
        return free

    def level(self, idx=None) -> np.ndarray:
        f = self.c["facility"] if idx is None else self.c["facility"][idx]
        return self.world.facilities["level"][f]

    def add_claims(self, new: Cols) -> np.ndarray:
        n0 = self.c.n
        new["episode"] = np.arange(new.n) + int(self.c["episode"].max()) + 1
        self.c = Cols.concat([self.c, new])
        return np.arange(n0, self.c.n)

    def add_lines(self, new: Cols, honest: bool = False) -> None:
        """Queue lines of fabricated or abused claims. Schemes only ever read the lines of claims
        no scheme has touched, which are all in `lines`, so new ones are concatenated once."""
        if not honest:
            new["qty2_honest"] = np.zeros(new.n, dtype=np.int64)
        self.pending.append(new)

    def all_lines(self) -> Cols:
        out = Cols.concat([self.lines, *self.pending])
        self.pending = []
        return out

    def lines_of(self, claims: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.c.n, dtype=bool)
        mask[claims] = True
        return np.flatnonzero(mask[self.lines["claim"]])

    def mark(self, idx, scheme: str, actor_type: int, actor, variant=0, partner=-1) -> None:
        c = self.c
        c["scheme"][idx] = SCHEME_ID[scheme]
        c["variant"][idx] = variant
        c["actor_type"][idx] = actor_type
        c["actor"][idx] = actor
        c["partner"][idx] = partner

    def new_lines_for(self, claims: np.ndarray, scale: float = 1.0) -> None:
        """Honest-looking lines of fabricated claims, none of which should have been paid."""
        ln = care.generate_lines(self.world, self.c, claims, self.day0, self.rng, scale)
        self.add_lines(ln)

    def item_lines(self, claims: np.ndarray, items: np.ndarray, scheme: str) -> Cols:
        ln = care.build_lines(self.world, self.c, claims, items, self.rng)
        ln["scheme"][:] = SCHEME_ID[scheme]
        return ln

    # -- choosing actors and their claims ------------------------------------------------------

    def select(
        self,
        scheme: str,
        actor_of: np.ndarray,
        eligible: np.ndarray,
        k: int,
        share=(0.15, 0.45),
        max_capacity: float | None = None,
    ) -> np.ndarray:
        """Exactly k claims (or all there are) of abusive actors, drawn by each actor's share of
        its eligible claims and its ramp since its start month. With max_capacity, actors whose
        weighted eligible claims fit within max_capacity x k are taken first."""
        rng = self.rng
        eligible = eligible & (actor_of >= 0)
        first_m = self.first_month.get(scheme, 0)
        if first_m > 0:
            eligible = eligible & (self.month() >= first_m)
        if k <= 0 or not eligible.any():
            return np.zeros(0, dtype=np.int64)
        s = SCHEMES[scheme]
        atype = ACTOR_TYPES.index(s.actor)
        ids = np.unique(actor_of[eligible])
        ids = ids[rng.permutation(len(ids))]
        months = self.months
        queue = [(a, m) for a, m in self.switch_queue.pop(atype, []) if a in set(ids.tolist())]
        if queue:
            first = np.array([a for a, _ in queue])
            ids = np.r_[first, ids[~np.isin(ids, first)]]
        start = rng.integers(0, max(1, int(months * 0.6)), len(ids))
        for i, (_a, m) in enumerate(queue):
            start[i] = m
        start = np.maximum(start, first_m)
        end = np.full(len(ids), months)
        stop = rng.random(len(ids)) < 0.3
        end = np.where(
            stop, np.minimum(months, start + rng.integers(3, max(4, months), len(ids))), end
        )
        a_share = rng.uniform(*share, len(ids))
        ramp = max(1.0, months / 3)
        pos = np.full(int(actor_of.max()) + 1, -1)
        pos[ids] = np.arange(len(ids))
        rows = np.flatnonzero(eligible)
        r_pos = pos[actor_of[rows]]
        t = self.month(rows)
        st, en = start[r_pos], end[r_pos]
        w = a_share[r_pos] * np.minimum(1.0, 0.35 + 0.65 * (t - st + 1) / ramp)
        w = np.where((t >= st) & (t < en), w, 0.0)
        cap = np.bincount(r_pos, w, minlength=len(ids))
        if max_capacity is not None:
            # actors the scheme can saturate come first (a climbing facility climbs visibly)
            fits = (cap > 0) & (cap <= max_capacity * k)
            if fits.any():
                order = np.r_[np.flatnonzero(fits), np.flatnonzero(~fits)]
                ids, start, end, stop, a_share = (
                    v[order] for v in (ids, start, end, stop, a_share)
                )
                inv = np.empty_like(order)
                inv[order] = np.arange(len(order))
                r_pos = inv[r_pos]
                cap = cap[order]
        chosen = np.searchsorted(np.cumsum(cap), 1.3 * k) + 1
        chosen = min(chosen, len(ids))
        w = np.where(r_pos < chosen, w, 0.0)
        pos_w = w > 0
        if pos_w.sum() <= k:
            picked = rows[pos_w]
        else:
            key = np.log(rng.random(len(rows))) / np.where(pos_w, w, 1e-300)
            picked = rows[np.argsort(-key, kind="stable")[:k]]
        # actors stopping early hand over to the next scheme of their kind
        self.switch_queue.setdefault(atype, [])
        for i in range(chosen):
            if stop[i] and end[i] < months - 2:
                self.switch_queue[atype].append((int(ids[i]), int(end[i])))
        for i in range(chosen):
            self.roster.append(
                dict(
                    scheme=scheme,
                    actor_type=atype,
                    actor=int(ids[i]),
                    start=int(start[i]),
                    end=int(end[i]),
                    share=float(a_share[i]),
                )
            )
        return np.sort(picked)


# ----------------------------------------------------------------------------------------------
# The schemes


def _copy_claims(ctx: Context, src: np.ndarray) -> Cols:
    new = ctx.c.take(src)
    for k in ("origin",):
        new[k] = np.zeros(len(src), dtype=bool)
    new["chronic_visit"] = np.zeros(len(src), dtype=bool)
    new["ref_from"] = np.full(len(src), -1)
    new["ref_to"] = np.full(len(src), -1)
    new["icd_override"] = np.full(len(src), -1)
    return new


def ghost(ctx: Context, k: int) -> None:
    c, world, rng = ctx.c, ctx.world, ctx.rng
    lvl = ctx.level()
    elig = (
        ctx.free() & np.isin(c["vtype"], [cat.EXAM]) & np.isin(lvl, [cat.X, cat.H, cat.PK, cat.PH])
    )
    elig &= ~c["origin"] & (c["route"] != cat.R_EMERGENCY)
    src = ctx.select("ghost", c["facility"], elig, k, share=(0.1, 0.3))
    if len(src) == 0:
        return
    new = _copy_claims(ctx, src)
    # each facility bills one template (the disease of its first ghost claim)
    fac = new["facility"]
    order = np.argsort(fac, kind="stable")
    first = order[np.r_[True, fac[order][1:] != fac[order][:-1]]]
    tmpl = np.zeros(int(fac.max()) + 1, dtype=np.int64)
    tmpl[fac[first]] = new["disease"][first]
    new["disease"] = tmpl[fac]
    # victims: people of the facility's district, dated in the month's last week
    ppl = world.people
    dist = world.facilities["district"][fac]
    dist = np.where(dist >= 0, dist, 0)
    by_d = np.argsort(ppl["district"], kind="stable")
    lo = np.searchsorted(ppl["district"][by_d], dist)
    hi = np.searchsorted(ppl["district"][by_d], dist, side="right")
    victim = by_d[lo + (rng.random(len(src)) * (hi - lo)).astype(np.int64)]
    new["person"] = victim
    new["card_person"] = victim.copy()
    m = ctx.month(src)
    end = ctx.bounds[m + 1]
    day = end - 1 - rng.integers(0, 7, len(src))
    new["vao"] = day * MINUTES_PER_DAY + 450 + rng.integers(0, 480, len(src))
    new["ra"] = new["vao"] + 20 + rng.integers(0, 40, len(src))
    new["route"] = np.full(len(src), cat.R_DISTRICT)
    new["rv_type"] = np.ones(len(src), dtype=np.int64)
    new["supply"] = cat.DISEASE_ARRAYS["course"][new["disease"]].astype(np.int64)
    idx = ctx.add_claims(new)
    care.finalize_routes(world, ctx.c)
    ctx.mark(idx, "ghost", A_FACILITY, ctx.c["facility"][idx])
    ctx.new_lines_for(idx)


def duplicate(ctx: Context, k: int) -> None:
    c, rng = ctx.c, ctx.rng
    elig = ctx.free() & ~c["chronic_visit"] & (c["ra"] // MINUTES_PER_DAY < ctx.bounds[-1])
    src = ctx.select("duplicate", c["facility"], elig, k, share=(0.05, 0.2))
    if len(src) == 0:
        return
    new = _copy_claims(ctx, src)
    for key in ("ref_from", "ref_to"):
        new[key] = c[key][src]
    shifted = rng.random(len(src)) < 0.5
    shift = np.where(shifted, rng.integers(1, 30, len(src)), 0)
    shift = np.minimum(shift, MINUTES_PER_DAY - 1 - c["ra"][src] % MINUTES_PER_DAY)
    ctx.locked = np.r_[ctx.locked, src]
    new["vao"] = new["vao"] + shift
    new["vao_nt"] = np.where(new["vao_nt"] > 0, new["vao_nt"] + shift, -1)
    new["ra"] = new["ra"] + shift
    idx = ctx.add_claims(new)
    ctx.mark(idx, "duplicate", A_FACILITY, ctx.c["facility"][idx], variant=shifted.astype(int))
    # same lines again, shifted like the claim
    li = ctx.lines_of(src)
    mapping = np.full(ctx.c.n, -1)
    mapping[src] = idx
    ln = ctx.lines.take(li)
    sh = np.zeros(ctx.c.n, dtype=np.int64)
    sh[idx] = shift
    ln["claim"] = mapping[ln["claim"]]
    for t in ("yl", "th"):
        ln[t] = ln[t] + sh[ln["claim"]]
    ln["kq"] = np.where(ln["kq"] >= 0, ln["kq"] + sh[ln["claim"]], -1)
    ln["scheme"][:] = SCHEME_ID["duplicate"]
    ctx.add_lines(ln)


def split_admission(ctx: Context, k: int) -> None:
    c, rng = ctx.c, ctx.rng
    elig = ctx.free() & (c["vtype"] == cat.INPATIENT) & (c["bed_days"] >= 4) & ~c["emergency"]
    elig &= c["ra"] // MINUTES_PER_DAY < ctx.bounds[-1]  # both admissions inside the period
    src = ctx.select("split_admission", c["facility"], elig, k, share=(0.15, 0.4))
    if len(src) == 0:
        return
    bd = c["bed_days"][src]
    kd = 1 + (rng.random(len(src)) * (bd - 2)).astype(np.int64)  # days in the first stay
    day_in = c["vao"][src] // MINUTES_PER_DAY
    split_day = day_in + kd
    a_ra = split_day * MINUTES_PER_DAY + 540 + rng.integers(0, 60, len(src))
    b_vao = split_day * MINUTES_PER_DAY + 840 + rng.integers(0, 90, len(src))
    new = _copy_claims(ctx, src)
    new["ref_from"] = c["ref_from"][src].copy()  # readmitted under the same referral
    new["vao"] = b_vao
    new["vao_nt"] = b_vao + 20
    new["bed_days"] = bd - kd
    new["days"] = (new["ra"] // MINUTES_PER_DAY) - split_day + 1
    c["ra"][src] = a_ra
    c["bed_days"][src] = kd
    c["days"][src] = kd + 1
    c["outcome"][src] = 2
    idx = ctx.add_claims(new)
    ctx.mark(src, "split_admission", A_FACILITY, c["facility"][src])
    ctx.mark(idx, "split_admission", A_FACILITY, ctx.c["facility"][idx])
    # move the second part's lines (ordered after the split) to the new claim
    ln = ctx.lines
    mapping = np.full(ctx.c.n, -1)
    mapping[src] = idx
    li = ctx.lines_of(src)
    bed = np.isin(cat.ITEM_ARRAYS["group"][ln["item"][li]], [14, 15, 16])
    late = ~bed & (ln["yl"][li] >= a_ra[np.searchsorted(src, ln["claim"][li])])
    mv = li[late]
    ln["claim"][mv] = mapping[ln["claim"][mv]]
    off = b_vao[np.searchsorted(idx, ln["claim"][mv])]
    for t in ("yl", "th"):
        ln[t][mv] = np.maximum(ln[t][mv], off)
    ln["kq"][mv] = np.where(ln["kq"][mv] >= 0, np.maximum(ln["kq"][mv], ln["th"][mv]), -1)
    # bed-days split between the two stays; the second stay gets its own bed line
    bl = li[bed & (ln["item"][li] != cat.ITEM["BED_ICU"])]
    pos = np.searchsorted(src, ln["claim"][bl])
    second = ln.take(bl)
    second["claim"] = idx[pos]
    second["qty2"] = (bd[pos] - kd[pos]) * 2
    second["qty2_honest"] = second["qty2"].copy()
    second["yl"] = b_vao[pos] + 20
    second["th"] = second["yl"]
    second["kq"] = ctx.c["ra"][idx[pos]]
    icu = li[ln["item"][li] == cat.ITEM["BED_ICU"]]
    icu_q = np.bincount(np.searchsorted(src, ln["claim"][icu]), ln["qty2"][icu], minlength=len(src))
    ln["qty2"][bl] = np.maximum(kd[pos] * 2 - icu_q[pos], 2)
    ln["qty2_honest"][bl] = ln["qty2"][bl]
    ln["kq"][bl] = a_ra[pos]
    # what stays with the first claim ends by its discharge
    stay = li[~late]
    end_a = a_ra[np.searchsorted(src, ln["claim"][stay])]
    for t in ("yl", "th"):
        ln[t][stay] = np.minimum(ln[t][stay], end_a)
    ln["kq"][stay] = np.where(ln["kq"][stay] >= 0, np.minimum(ln["kq"][stay], end_a), -1)
    ctx.lines = ln
    ctx.add_lines(second, honest=True)
    # what the second admission adds: a new exam and admission tests
    items = np.r_[
        np.full(len(idx), cat.ITEM["EXAM"]),
        np.full(len(idx), cat.ITEM["CBC"]),
        np.full(len(idx), cat.ITEM["GLU"]),
    ]
    ctx.add_lines(ctx.item_lines(np.r_[idx, idx, idx], items, "split_admission"))
    ctx.lines["scheme"][li] = np.where(
        ctx.lines["scheme"][li] < 0, SCHEME_ID["split_admission"], ctx.lines["scheme"][li]
    )


def card_sharing(ctx: Context, k_borrowed: int, k_added: int) -> None:
    c, world, rng = ctx.c, ctx.world, ctx.rng
    ppl = world.people
    # borrowed: an uninsured relative is treated under a neighbour's card
    elig = ctx.free() & ~c["chronic_visit"] & ~c["origin"]
    src = ctx.select("card_sharing", c["person"], elig, k_borrowed, share=(0.5, 0.9))
    if len(src):
        by_c = np.argsort(ppl["commune"], kind="stable")
        com = ppl["commune"][c["person"][src]]
        lo = np.searchsorted(ppl["commune"][by_c], com)
        hi = np.searchsorted(ppl["commune"][by_c], com, side="right")
        owner = by_c[lo + (rng.random(len(src)) * (hi - lo)).astype(np.int64)]
        c["card_person"][src] = owner
        care.finalize_routes(world, c)
        ctx.mark(src, "card_sharing", A_CARD, owner, variant=0)
        ctx.lines["qty2_honest"][ctx.lines_of(src)] = 0
    if k_added <= 0:
        return
    # deceased cards: staff bill visits on the cards of people who died
    dead = np.flatnonzero(ppl["death_day"] < ctx.bounds[-1] - 5)
    k_dead = min(k_added // 2, 0 if len(dead) == 0 else k_added // 2)
    k_conc = k_added - k_dead
    if k_dead:
        person = dead[rng.integers(0, len(dead), k_dead)]
        # the death stays as recorded: no later scheme may lengthen it
        died = np.flatnonzero((ctx.c["outcome"] == 5) & np.isin(ctx.c["person"], person))
        ctx.locked = np.r_[ctx.locked, died]
        dd = ppl["death_day"][person]
        day = (
            dd + 3 + (rng.random(k_dead) * np.maximum(ctx.bounds[-1] - dd - 4, 1)).astype(np.int64)
        )
        day = np.minimum(day, ctx.bounds[-1] - 1)
        new = _copy_claims(ctx, np.zeros(k_dead, dtype=np.int64))
        new["person"] = person
        new["card_person"] = person.copy()
        new["facility"] = ppl["registered"][person]
        new["disease"] = np.where(
            ppl["chronic"][person] >= 0, ppl["chronic"][person], cat.DISEASE["I10"]
        ).astype(np.int64)
        dial = new["disease"] == cat.DISEASE["N18.5"]
        new["disease"] = np.where(dial, cat.DISEASE["I10"], new["disease"])
        new["vtype"] = np.full(k_dead, cat.CHRONIC_DRUGS)
        _outpatient(new, day, rng)
        new["supply"] = np.full(k_dead, 30)
        new["days"] = np.full(k_dead, 30)
        new["route"] = np.full(k_dead, cat.R_OWN)
        new["emergency"] = np.zeros(k_dead, dtype=bool)
        new["dept"] = np.full(k_dead, cat.DEPT["K01"])
        new["outcome"] = np.full(k_dead, 2)
        new["rv_type"] = np.ones(k_dead, dtype=np.int64)
        new["clinician"] = care.pick_clinician(ctx.clin, new["facility"], new["dept"], rng)
        idx = ctx.add_claims(new)
        care.finalize_routes(world, ctx.c)
        ctx.mark(idx, "card_sharing", A_FACILITY, ctx.c["facility"][idx], variant=2)
        ctx.new_lines_for(idx)
    if k_conc:
        c = ctx.c
        elig = ctx.free() & (c["vtype"] == cat.INPATIENT) & (c["bed_days"] >= 2)
        src = ctx.select("card_sharing", c["card_person"], elig, k_conc, share=(0.5, 0.9))
        if len(src) == 0:
            return
        new = _copy_claims(ctx, src)
        n = len(src)
        others = np.r_[world.facilities_of(cat.H), world.facilities_of(cat.PK)]
        f = others[rng.integers(0, len(others), n)]
        f = np.where(
            f == c["facility"][src], others[(np.searchsorted(others, f) + 1) % len(others)], f
        )
        new["facility"] = f
        mild = np.array([cat.DISEASE[x] for x in ("J06.9", "K29.7", "M54.5", "I10")])
        new["disease"] = mild[rng.integers(0, len(mild), n)]
        day = (
            c["vao"][src] // MINUTES_PER_DAY
            + 1
            + (rng.random(n) * (c["bed_days"][src] - 1)).astype(np.int64)
        )
        day = np.minimum(day, ctx.bounds[-1] - 1)  # inside the period (the stay may run past it)
        new["vtype"] = np.full(n, cat.EXAM)
        _outpatient(new, day, rng)
        new["supply"] = cat.DISEASE_ARRAYS["course"][new["disease"]].astype(np.int64)
        new["route"] = np.full(n, cat.R_DISTRICT)
        new["emergency"] = np.zeros(n, dtype=bool)
        new["dept"] = np.full(n, cat.DEPT["K01"])
        new["clinician"] = care.pick_clinician(ctx.clin, f, new["dept"], rng)
        new["outcome"] = np.full(n, 2)
        new["rv_type"] = np.ones(n, dtype=np.int64)
        idx = ctx.add_claims(new)
        care.finalize_routes(world, ctx.c)
        ctx.mark(idx, "card_sharing", A_CARD, ctx.c["card_person"][idx], variant=1)
        ctx.new_lines_for(idx)


def _outpatient(new: Cols, day: np.ndarray, rng) -> None:
    n = len(day)
    new["vao"] = day * MINUTES_PER_DAY + 450 + rng.integers(0, 420, n)
    new["vao_nt"] = np.full(n, -1)
    new["ra"] = new["vao"] + 20 + rng.integers(0, 60, n)
    new["bed_days"] = np.zeros(n, dtype=np.int64)
    new["days"] = np.zeros(n, dtype=np.int64)


def upcoding(ctx: Context, k: int) -> None:
    c, rng = ctx.c, ctx.rng
    ln = ctx.lines
    up = cat.ITEM_ARRAYS["upcode_to"][ln["item"]]
    lvl_l = ctx.level(ln["claim"])
    ok = (up >= 0) & cat.ITEM_ARRAYS["allowed"][np.maximum(up, 0), lvl_l]
    has_up = np.zeros(c.n, dtype=bool)
    has_up[ln["claim"][ok]] = True
    has_dx = np.array([bool(d.upcode_icd) for d in cat.DISEASES])[c["disease"]] & (
        c["vtype"] == cat.EXAM
    )
    elig = ctx.free() & (has_up | has_dx) & ~c["origin"]
    src = ctx.select("upcoding", c["clinician"], elig, k)
    if len(src) == 0:
        return
    svc = has_up[src] & ((rng.random(len(src)) < 0.6) | ~has_dx[src])
    s_svc, s_dx = src[svc], src[~svc]
    ctx.mark(s_svc, "upcoding", A_CLINICIAN, c["clinician"][s_svc], variant=0)
    ctx.mark(s_dx, "upcoding", A_CLINICIAN, c["clinician"][s_dx], variant=1)
    # service upcoding: the line is billed as its pricier sibling
    sel = np.zeros(c.n, dtype=bool)
    sel[s_svc] = True
    li = np.flatnonzero(ok & sel[ln["claim"]])
    target = up[li]
    lvl = lvl_l[li]
    ln["item"][li] = target
    ln["price_bh"][li] = cat.ITEM_ARRAYS["approved"][target, lvl]
    markup = cat.PRIVATE_MARKUP[lvl]
    ln["price_bv"][li] = np.round(ln["price_bh"][li] * markup).astype(np.int64)
    ln["scheme"][li] = SCHEME_ID["upcoding"]
    # diagnosis upcoding: a more severe principal code, with the tests that would justify it
    c["icd_override"][s_dx] = len(cat.DISEASES) + c["disease"][s_dx]
    items = np.r_[np.full(len(s_dx), cat.ITEM["XR_CHEST"]), np.full(len(s_dx), cat.ITEM["CRP"])]
    dz = np.r_[c["disease"][s_dx], c["disease"][s_dx]]
    resp = np.isin(dz, [cat.DISEASE[x] for x in ("J06.9", "J20.9")])
    items = np.where(
        resp,
        items,
        np.r_[np.full(len(s_dx), cat.ITEM["US_ABD"]), np.full(len(s_dx), cat.ITEM["ECG"])],
    )
    claims = np.r_[s_dx, s_dx]
    allowed = cat.ITEM_ARRAYS["allowed"][items, ctx.level(claims)]
    if allowed.any():
        ctx.add_lines(ctx.item_lines(claims[allowed], items[allowed], "upcoding"))


def unbundling(ctx: Context, k: int) -> None:
    c = ctx.c
    ln = ctx.lines
    parent = np.isin(cat.ITEM_ARRAYS["group"][ln["item"]], [8]) | (
        ln["item"] == cat.ITEM["DELIVERY"]
    )
    has = np.zeros(c.n, dtype=bool)
    has[ln["claim"][parent]] = True
    elig = ctx.free() & has
    src = ctx.select("unbundling", c["facility"], elig, k, share=(0.3, 0.7))
    if len(src) == 0:
        return
    ctx.mark(src, "unbundling", A_FACILITY, c["facility"][src])
    pl = np.flatnonzero(parent & np.isin(ln["claim"], src))
    # first parent line per claim
    first = pl[np.r_[True, ln["claim"][pl][1:] != ln["claim"][pl][:-1]]] if len(pl) else pl
    cl = ln["claim"][first]
    deliv = ln["item"][first] == cat.ITEM["DELIVERY"]
    comp1 = np.where(deliv, cat.ITEM["SUTURE"], cat.ITEM["ANAESTH"])
    comp2 = np.full(len(first), cat.ITEM["INFUSION"])
    new = ctx.item_lines(np.r_[cl, cl], np.r_[comp1, comp2], "unbundling")
    for t in ("yl", "th"):
        new[t] = np.r_[ln[t][first], ln[t][first]]  # ordered with the parent service
    new["kq"] = np.r_[ln["kq"][first], ln["kq"][first]]
    ctx.add_lines(new)


def needless_tests(ctx: Context, k: int) -> None:
    c, rng = ctx.c, ctx.rng
    lvl = ctx.level()
    elig = (
        ctx.free()
        & np.isin(c["vtype"], [cat.EXAM, cat.CHRONIC_DRUGS])
        & np.isin(lvl, [cat.TW, cat.T, cat.H, cat.PK, cat.PH])
        & ~c["origin"]
    )
    src = ctx.select("needless_tests", c["clinician"], elig, k)
    if len(src) == 0:
        return
    ctx.mark(src, "needless_tests", A_CLINICIAN, c["clinician"][src])
    panel = [
        ("CBC", 0.9),
        ("GLU", 0.8),
        ("CREA", 0.8),
        ("UREA", 0.7),
        ("AST", 0.8),
        ("ALT", 0.8),
        ("CHOL", 0.7),
        ("TRIG", 0.7),
        ("HDL", 0.6),
        ("LDL", 0.6),
        ("URINE", 0.6),
        ("ELEC", 0.5),
        ("HBA1C", 0.3),
        ("US_ABD", 0.7),
        ("XR_CHEST", 0.5),
        ("ECG", 0.6),
        ("CT_HEAD", 0.12),
        ("ECHO", 0.2),
    ]
    items = np.array([cat.ITEM[i] for i, _ in panel])
    p = np.array([q for _, q in panel])
    hit = rng.random((len(src), len(items))) < p
    hit &= cat.ITEM_ARRAYS["allowed"][items][:, ctx.level(src)].T
    # skip tests the claim already has
    li = ctx.lines_of(src)
    have = np.zeros((len(src), cat.N_ITEMS), dtype=bool)
    have[np.searchsorted(src, ctx.lines["claim"][li]), ctx.lines["item"][li]] = True
    hit &= ~have[:, items]
    r, j = np.nonzero(hit)
    ctx.add_lines(ctx.item_lines(src[r], items[j], "needless_tests"))


def padded_stay(ctx: Context, k: int) -> None:
    c, rng = ctx.c, ctx.rng
    elig = ctx.free() & (c["vtype"] == cat.INPATIENT) & (c["bed_days"] >= 1)
    src = ctx.select("padded_stay", c["facility"], elig, k)
    if len(src) == 0:
        return
    longer = rng.random(len(src)) < 0.6
    extra = rng.integers(2, 6, len(src))
    ctx.mark(src, "padded_stay", A_FACILITY, c["facility"][src], variant=(~longer).astype(int))
    ex_by = np.zeros(c.n, dtype=np.int64)
    ex_by[src] = extra
    lg = src[longer]
    c["ra"][lg] = c["ra"][lg] + ex_by[lg] * MINUTES_PER_DAY
    c["days"][lg] += ex_by[lg]
    c["bed_days"][lg] += ex_by[lg]
    ln = ctx.lines
    li = ctx.lines_of(src)
    bed = li[
        np.isin(cat.ITEM_ARRAYS["group"][ln["item"][li]], [15])
        & (ln["item"][li] != cat.ITEM["BED_ICU"])
    ]
    # one bed line per claim carries the extra days
    first = bed[np.r_[True, ln["claim"][bed][1:] != ln["claim"][bed][:-1]]] if len(bed) else bed
    ln["qty2"][first] += ex_by[ln["claim"][first]] * 2
    is_long = np.zeros(c.n, dtype=bool)
    is_long[lg] = True
    ln["kq"][first] = np.where(
        is_long[ln["claim"][first]], c["ra"][ln["claim"][first]], ln["kq"][first]
    )
    ln["scheme"][first] = SCHEME_ID["padded_stay"]
    # longer stays also bill oral drugs for the extra days
    dl = li[cat.ITEM_ARRAYS["is_drug"][ln["item"][li]] & is_long[ln["claim"][li]]]
    oral = np.array([it.route == "1.01" for it in cat.ITEMS])[ln["item"][dl]]
    dl = dl[oral]
    add = np.ceil(cat.ITEM_ARRAYS["daily"][ln["item"][dl]] * ex_by[ln["claim"][dl]] * 2).astype(
        np.int64
    )
    ln["qty2"][dl] += add
    ln["scheme"][dl] = SCHEME_ID["padded_stay"]


def overprice(ctx: Context, k: int) -> None:
    c, rng = ctx.c, ctx.rng
    elig = ctx.free() & (c["vtype"] != cat.CHRONIC_SERVICES)
    src = ctx.select("overprice", c["facility"], elig, k, share=(0.3, 0.8))
    if len(src) == 0:
        return
    ctx.mark(src, "overprice", A_FACILITY, c["facility"][src])
    nf = len(ctx.world.facility_code)
    factor = 1.1 + 0.4 * np.random.default_rng(rng.integers(2**32)).random(nf)
    ln = ctx.lines
    li = ctx.lines_of(src)
    grp = cat.ITEM_ARRAYS["group"][ln["item"][li]]
    li = li[np.isin(grp, [1, 2, 3, 4, 10, 18])]
    f = factor[c["facility"][ln["claim"][li]]]
    new_bh = np.ceil(ln["price_bh"][li] * f).astype(np.int64)
    ln["price_bv"][li] = np.maximum(ln["price_bv"][li], new_bh)
    ln["price_bh"][li] = new_bh
    ln["scheme"][li] = SCHEME_ID["overprice"]


SUPPORTIVE_IN = ("ALBU", "GLUTA", "LOLA", "CITI", "CEREB")


def drug_padding(ctx: Context, k: int) -> None:
    c, rng = ctx.c, ctx.rng
    ln = ctx.lines
    has_drug = np.zeros(c.n, dtype=bool)
    has_drug[ln["claim"][cat.ITEM_ARRAYS["is_drug"][ln["item"]]]] = True
    elig = ctx.free() & has_drug & ~c["origin"] & (c["vtype"] != cat.SHORT_STAY)
    src = ctx.select("drug_padding", c["clinician"], elig, k)
    if len(src) == 0:
        return
    inp = np.isin(c["vtype"][src], cat.INPATIENT_TYPES)
    supportive = np.where(inp, rng.random(len(src)) < 0.75, rng.random(len(src)) < 0.35)
    ctx.mark(src, "drug_padding", A_CLINICIAN, c["clinician"][src], variant=supportive.astype(int))
    qsrc = src[~supportive]
    li = ctx.lines_of(qsrc)
    li = li[
        cat.ITEM_ARRAYS["is_drug"][ln["item"][li]] & (cat.ITEM_ARRAYS["ratio"][ln["item"][li]] > 0)
    ]
    mult = rng.choice([1.5, 2.0, 2.5, 3.0], len(li))
    ln["qty2"][li] = np.ceil(ln["qty2"][li] * mult).astype(np.int64)
    ln["scheme"][li] = SCHEME_ID["drug_padding"]
    ssrc = src[supportive]
    if len(ssrc):
        inp_s = np.isin(c["vtype"][ssrc], cat.INPATIENT_TYPES)
        pool = np.array([cat.ITEM[x] for x in SUPPORTIVE_IN])
        item = np.where(inp_s, pool[rng.integers(0, len(pool), len(ssrc))], cat.ITEM["GINKGO"])
        second = inp_s & (rng.random(len(ssrc)) < 0.5)
        item2 = pool[rng.integers(0, len(pool), second.sum())]
        claims = np.r_[ssrc, ssrc[second]]
        items = np.r_[item, item2]
        new = ctx.item_lines(claims, items, "drug_padding")
        ctx.add_lines(new)


def chronic_overlap(ctx: Context, k: int) -> None:
    c, world, rng = ctx.c, ctx.world, ctx.rng
    elig = (
        ctx.free()
        & (c["vtype"] == cat.CHRONIC_DRUGS)
        & (c["ra"] // MINUTES_PER_DAY < ctx.bounds[-1] - 16)
    )
    src = ctx.select("chronic_overlap", c["person"], elig, k, share=(0.5, 0.9))
    if len(src) == 0:
        return
    n = len(src)
    new = _copy_claims(ctx, src)
    others = np.r_[
        world.facilities_of(cat.H), world.facilities_of(cat.PK), world.facilities_of(cat.X)
    ]
    f = others[rng.integers(0, len(others), n)]
    f = np.where(f == c["facility"][src], others[(np.searchsorted(others, f) + 1) % len(others)], f)
    new["facility"] = f
    day = c["vao"][src] // MINUTES_PER_DAY + rng.integers(5, 16, n)
    _outpatient(new, day, rng)
    new["days"] = c["supply"][src].copy()
    new["supply"] = c["supply"][src].copy()
    new["dept"] = np.full(n, cat.DEPT["K01"])
    new["clinician"] = care.pick_clinician(ctx.clin, f, new["dept"], rng)
    new["route"] = np.full(n, cat.R_DISTRICT)
    new["chronic_visit"] = np.ones(n, dtype=bool)
    idx = ctx.add_claims(new)
    care.finalize_routes(world, ctx.c)
    ctx.mark(np.r_[idx], "chronic_overlap", A_PATIENT, ctx.c["person"][idx])
    ctx.new_lines_for(idx)


def _climb_plan(ctx: Context, elig: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Facilities whose cost climbs: each bills a growing share of its claims from a start month
    chosen so that the scheme's k claims are concentrated in a few facilities and months, the
    share ramping to (nearly) all of them. Returns the claims and their months since start."""
    c, rng = ctx.c, ctx.rng
    months = ctx.months
    month = ctx.month()
    facs = np.unique(c["facility"][elig])
    facs = facs[rng.permutation(len(facs))]
    picked, since = [], []
    remaining = k
    for f in facs:  # a handful of facilities; the loop ends once k claims are placed
        rows = np.flatnonzero(elig & (c["facility"] == f))
        counts = np.bincount(month[rows], minlength=months)

        def share(s: int) -> np.ndarray:
            t = np.arange(months)
            ramp = 0.3 + 0.7 * (t - s) / max(1.0, (months - s) / 2)
            return np.where(t >= s, np.minimum(1.0, ramp), 0.0)

        earliest = ctx.first_month.get("cost_climb", 0)  # never before the scheme may run
        latest = max(earliest, months - 3)  # climbing for three months at least
        s = latest
        while s > earliest and (share(s) * counts).sum() < remaining:
            s -= 1
        sh = share(s)
        expected = (sh * counts).sum()
        if expected <= 0:
            continue
        sh = sh * min(1.0, remaining / expected)
        take = rows[rng.random(len(rows)) < sh[month[rows]]]
        if len(take) == 0:
            continue
        picked.append(take)
        since.append(month[take] - s)
        ctx.roster.append(
            dict(
                scheme="cost_climb",
                actor_type=A_FACILITY,
                actor=int(f),
                start=int(s),
                end=months,
                share=float(sh.max()),
            )
        )
        remaining -= len(take)
        if remaining <= 0:
            break
    if not picked:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    out = np.concatenate(picked)
    order = np.argsort(out)
    return out[order], np.concatenate(since)[order]


def cost_climb(ctx: Context, k: int) -> None:
    c, rng = ctx.c, ctx.rng
    lvl = ctx.level()
    elig = ctx.free() & np.isin(lvl, [cat.H, cat.PK, cat.PH]) & ~c["origin"]
    src, since = _climb_plan(ctx, elig, k)
    if len(src) == 0:
        return
    ctx.mark(src, "cost_climb", A_FACILITY, c["facility"][src])
    # intensity grows with the months since the facility's start
    growth = np.minimum(1.0 + since, 6) / 3.0
    extra = [
        ("US_ABD", 0.6), ("ECG", 0.6), ("XR_CHEST", 0.5), ("CRP", 0.6), ("HBA1C", 0.4),
        ("CHOL", 0.6), ("TRIG", 0.6), ("VITB", 0.7), ("GINKGO", 0.6), ("ECHO", 0.4),
        ("CT_HEAD", 0.15), ("SCOPE", 0.15),
    ]  # fmt: skip
    items = np.array([cat.ITEM[i] for i, _ in extra])
    # the drugs of the claim are billed in growing quantities
    li = ctx.lines_of(src)
    drug = li[cat.ITEM_ARRAYS["is_drug"][ctx.lines["item"][li]]]
    g_by = np.zeros(c.n)
    g_by[src] = growth
    ctx.lines["qty2"][drug] = np.ceil(
        ctx.lines["qty2"][drug] * (1 + g_by[ctx.lines["claim"][drug]])
    ).astype(np.int64)
    ctx.lines["scheme"][drug] = SCHEME_ID["cost_climb"]
    p = np.minimum(np.array([q for _, q in extra])[None, :] * growth[:, None], 0.95)
    hit = rng.random((len(src), len(items))) < p
    hit &= cat.ITEM_ARRAYS["allowed"][items][:, ctx.level(src)].T
    r, j = np.nonzero(hit)
    # stays get a costly supportive infusion, on more of them as the months go by
    stay = np.isin(c["vtype"][src], cat.INPATIENT_TYPES) & (rng.random(len(src)) < 0.4 * growth)
    pool = np.array([cat.ITEM[x] for x in ("GLUTA", "CITI", "CEREB")])
    sup = pool[rng.integers(0, len(pool), stay.sum())]
    ctx.add_lines(ctx.item_lines(np.r_[src[r], src[stay]], np.r_[items[j], sup], "cost_climb"))


def referral_kickback(ctx: Context, k: int) -> None:
    c, world, rng = ctx.c, ctx.world, ctx.rng
    lvl = ctx.level()
    elig = ctx.free() & (c["vtype"] == cat.EXAM) & np.isin(lvl, [cat.H, cat.X, cat.PK])
    elig &= ~c["origin"] & (c["ref_to"] < 0) & (c["ra"] // MINUTES_PER_DAY < ctx.bounds[-1] - 3)
    src = ctx.select("referral_kickback", c["clinician"], elig, k, share=(0.3, 0.6))
    if len(src) == 0:
        return
    ph = world.facilities_of(cat.PH)
    # each clinician has one partner hospital
    partner_of = ph[(c["clinician"][src] * 7 + 3) % len(ph)]
    n = len(src)
    new = _copy_claims(ctx, src)
    new["facility"] = partner_of
    inpatient = rng.random(n) < 0.3
    day = c["ra"][src] // MINUTES_PER_DAY + rng.integers(0, 3, n)
    _outpatient(new, day, rng)
    new["vao"] = np.maximum(new["vao"], c["ra"][src] + 60)
    new["ra"] = new["vao"] + 40 + rng.integers(0, 80, n)
    los = rng.integers(2, 5, n)
    new["vtype"] = np.where(inpatient, cat.INPATIENT, cat.EXAM)
    new["vao_nt"] = np.where(inpatient, new["vao"] + 30, -1)
    new["ra"] = np.where(
        inpatient, (new["vao"] // MINUTES_PER_DAY + los) * MINUTES_PER_DAY + 540, new["ra"]
    )
    new["bed_days"] = np.where(inpatient, los, 0)
    new["days"] = np.where(inpatient, los + 1, 0)
    new["route"] = np.full(n, cat.R_REFERRAL)
    new["ref_from"] = c["facility"][src].copy()
    new["dept"] = care.claim_dept(world, new)
    new["clinician"] = care.pick_clinician(ctx.clin, new["facility"], new["dept"], rng)
    c["rv_type"][src] = 2
    c["outcome"][src] = 3
    c["ref_to"][src] = partner_of
    idx = ctx.add_claims(new)
    ctx.mark(src, "referral_kickback", A_CLINICIAN, c["clinician"][src], partner=partner_of)
    ctx.mark(idx, "referral_kickback", A_CLINICIAN, c["clinician"][src], partner=partner_of)
    # the referring exam itself was billed as due; the induced episode was not needed
    ctx.new_lines_for(idx, scale=1.4)


def apply(ctx: Context) -> None:
    """Run every scheme with a non-zero rate, in a fixed order."""
    n = ctx.n_target
    for k in TRUTH_COLUMNS:
        ctx.c[k] = np.full(ctx.c.n, -1, dtype=np.int64)
    adds = added_claims(ctx.rates, n)
    r = {k: round(ctx.rates.get(k, 0.0) * n) for k in SCHEMES}
    if r["ghost"]:
        ghost(ctx, r["ghost"])
    if r["duplicate"]:
        duplicate(ctx, r["duplicate"])
    if r["split_admission"]:
        split_admission(ctx, r["split_admission"])
    if r["card_sharing"]:
        card_sharing(ctx, r["card_sharing"] - adds["card_sharing"], adds["card_sharing"])
    if r["chronic_overlap"]:
        chronic_overlap(ctx, r["chronic_overlap"])
    if r["referral_kickback"]:
        referral_kickback(ctx, r["referral_kickback"])
    if r["padded_stay"]:
        padded_stay(ctx, r["padded_stay"])
    if r["upcoding"]:
        upcoding(ctx, r["upcoding"])
    if r["unbundling"]:
        unbundling(ctx, r["unbundling"])
    if r["needless_tests"]:
        needless_tests(ctx, r["needless_tests"])
    if r["drug_padding"]:
        drug_padding(ctx, r["drug_padding"])
    if r["overprice"]:
        overprice(ctx, r["overprice"])
    if r["cost_climb"]:
        cost_climb(ctx, r["cost_climb"])
