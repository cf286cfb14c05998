"""simulate(): builds one synthetic province over some months and writes the tabular format."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from contract.schema import SCHEMA_VERSION
from simulator import care, output, schemes
from simulator import catalogue as cat
from simulator.actors import World, build_world
from simulator.frame import MINUTES_PER_DAY, Cols, month_start_days, ymd
from simulator.labels import ReviewParams, review
from simulator.money import settle

VISITS_PER_PERSON_YEAR = 1.86  # published: 174 M visits / 93.6 M insured (2023)
Progress = Callable[[str, float], None]


@dataclass
class SimulationResult:
    out: Path
    paths: dict[str, Path]
    claims: int
    drug_lines: int
    service_lines: int
    facilities: int
    insured_people: int
    clinicians: int
    labels: int
    abusive_claims: int
    overbilled: float  # VND
    by_scheme: dict[str, int] = field(default_factory=dict)
    calibration: pd.DataFrame | None = None

    def summary(self) -> str:
        return (
            f"wrote {self.claims:,} claims, {self.drug_lines:,} drug lines, "
            f"{self.service_lines:,} service lines, {self.facilities} facilities and "
            f"{self.labels:,} labels ({self.abusive_claims:,} abusive claims, "
            f"{self.overbilled:,.0f} VND overbilled) -> {self.out}"
        )


def _rates(overrides: dict[str, float] | None) -> dict[str, float]:
    rates = {k: s.rate for k, s in schemes.SCHEMES.items()}
    for k, v in (overrides or {}).items():
        if k not in rates:
            raise ValueError(f"unknown scheme {k!r}; known: {', '.join(rates)}")
        if not 0.0 <= float(v) <= 0.2:
            raise ValueError(f"rate of {k} must be between 0 and 0.2, got {v}")
        rates[k] = float(v)
    return rates


def _first_months(scheme_start: dict[str, str] | None, start: str, months: int) -> dict[str, int]:
    """Month index (0 = `start`) from which each scheme of `scheme_start` may run."""
    out = {}
    s0 = np.datetime64(start, "M")
    for k, v in (scheme_start or {}).items():
        if k not in schemes.SCHEMES:
            raise ValueError(f"unknown scheme {k!r}; known: {', '.join(schemes.SCHEMES)}")
        try:
            m = int((np.datetime64(str(v), "M") - s0).astype(int))
        except ValueError as e:
            raise ValueError(f"start of {k} must be YYYY-MM, got {v!r}") from e
        if not 0 <= m < months:
            raise ValueError(f"start of {k} ({v}) must be within the simulated months")
        out[k] = m
    return out


def simulate(
    out: Path,
    claims: int,
    months: int = 12,
    start: str = "2025-01",
    seed: int = 0,
    schemes: dict[str, float] | None = None,
    report: bool = False,
    progress: Progress | None = None,
    scheme_start: dict[str, str] | None = None,
    review_params: dict[str, float] | None = None,
    visits_per_person: float | None = None,
) -> SimulationResult:
    """Simulate `claims` claims over `months` months from `start` (YYYY-MM) and write the tabular
    input format (xml1/xml2/xml3/facilities/labels parquet) plus ground truth into `out`.

    `scheme_start` maps a scheme to the first month (YYYY-MM) it may run: before it the scheme has
    no actor and no claim (a scheme the labels of earlier months never contain). Its rate is kept
    per month, so it touches rate x claims x (months it runs / months) claims in all.

    `review_params` change how the agency labels (simulator.labels.ReviewParams: review rates,
    detection, decision lag); `visits_per_person` (default the published 1.86 a year) sets how
    many insured people, and so districts and facilities, the claims come from."""
    from simulator import schemes as sch  # the parameter shadows the module name

    if claims < 100:
        raise ValueError("claims must be at least 100")
    if not 1 <= months <= 120:
        raise ValueError("months must be between 1 and 120")
    try:
        np.datetime64(start, "M")
    except ValueError as e:
        raise ValueError(f"start must be YYYY-MM, got {start!r}") from e
    rates = _rates(schemes)
    first = _first_months(scheme_start, start, months)
    rates = {k: v * (months - first.get(k, 0)) / months for k, v in rates.items()}
    step = progress or (lambda name, frac: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    bounds = month_start_days(start, months)
    day0 = int(bounds[0])

    step("actors", 0.0)
    vpp = float(visits_per_person or VISITS_PER_PERSON_YEAR)
    if not 0.2 <= vpp <= 10:
        raise ValueError("visits_per_person must be between 0.2 and 10")
    n_people = round(claims / (vpp * months / 12))
    world = build_world(n_people, day0, streams[0])
    n_added = sum(sch.added_claims(rates, claims).values())
    step("care", 0.05)
    c = care.generate_claims(world, claims - n_added, bounds, streams[1])
    clin = care.make_clinicians(world, c, months)
    c["clinician"] = care.pick_clinician(clin, c["facility"], c["dept"], streams[2])
    step("lines", 0.2)
    lines = care.generate_lines(world, c, np.arange(c.n), day0, streams[2])
    step("schemes", 0.35)
    ctx = sch.Context(world, c, lines, clin, bounds, streams[3], claims, rates, first_month=first)
    sch.apply(ctx)
    c, lines = ctx.c, ctx.all_lines()
    care.set_performers(world, lines, clin, c, streams[4])

    # final order: claims by admission time; lines by claim, keeping generation order
    order = np.argsort(c["vao"], kind="stable")
    c = c.take(order)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    lines["claim"] = rank[lines["claim"]]
    lines = lines.take(np.argsort(lines["claim"], kind="stable"))

    step("money", 0.45)
    money = settle(world, c, lines)
    over_claim = np.bincount(lines["claim"], money.overbilled_line, c.n).astype(np.int64)
    step("labels", 0.5)
    lab = review(
        c,
        lines,
        money.claim["t_bhtt"],
        over_claim,
        world.facilities["level"],
        int(bounds[-1]),
        streams[5],
        ReviewParams(**(review_params or {})),
    )

    step("write", 0.55)
    paths = _write(
        out, world, c, lines, clin, money, over_claim, lab, ctx, bounds, streams[6], step
    )
    meta = {
        "schema_version": SCHEMA_VERSION,
        "seed": seed,
        "claims": int(c.n),
        "months": months,
        "start": start,
        "insured_people": world.n_people,
        "schemes": rates,
        "scheme_start": dict(sorted((scheme_start or {}).items())),
        "facilities": len(world.facility_code),
        "clinicians": int(clin.n),
        "visits_per_person_year": vpp,
        "review": ReviewParams(**(review_params or {})).__dict__,
    }
    paths["manifest"] = out / "manifest.json"
    paths["manifest"].write_text(json.dumps(meta, indent=2, sort_keys=True))
    sc = c["scheme"]
    by = {k: int((sc == i).sum()) for i, k in enumerate(sch.SCHEME_NAMES)}
    result = SimulationResult(
        out=out,
        paths=paths,
        claims=int(c.n),
        drug_lines=int(paths.pop("_n_drug")),
        service_lines=int(paths.pop("_n_service")),
        facilities=len(world.facility_code),
        insured_people=world.n_people,
        clinicians=int(clin.n),
        labels=len(lab.claim),
        abusive_claims=int((sc >= 0).sum()),
        overbilled=float(over_claim.sum() / 100),
        by_scheme=by,
    )
    if report:
        from simulator.calibration import calibration_report

        step("report", 0.95)
        result.calibration = calibration_report(out)
    step("done", 1.0)
    return result


def _write(
    out: Path,
    world: World,
    c: Cols,
    lines: Cols,
    clin: Cols,
    money,
    over_claim,
    lab,
    ctx,
    bounds,
    rng,
    step,
) -> dict:
    from simulator import schemes as sch

    n = c.n
    yymm = (ymd(c["vao"] // MINUTES_PER_DAY) // 100) % 10000
    ids = output.join(
        pc.take(pa.array(world.facility_code), pa.array(c["facility"])),
        output.padded(yymm, 4),
        output.padded(np.arange(n), 8),
    )
    lo = min(int(c["vao"].min()), int(lines["yl"].min())) - 10
    hi = max(int(c["ra"].max()), int(lines["kq"].max()), int(lines["th"].max())) + 200
    clock = output.Clock(lo, hi)
    clin_ids = output.join(
        output.padded(np.arange(clin.n) + 1 + 40_000, 6), pa.array(np.full(clin.n, "/QNA-CCHN"))
    )
    # ICD-9-CM codes of the claim: its first surgery or procedure carrying one
    icd9_items = np.array([it.icd9 for it in cat.ITEMS])
    li = np.flatnonzero(icd9_items[lines["item"]] != "")
    icd9 = np.full(n, "", dtype=object)
    first = li[np.r_[True, lines["claim"][li][1:] != lines["claim"][li][:-1]]] if len(li) else li
    icd9[lines["claim"][first]] = icd9_items[lines["item"][first]]
    icd9 = icd9.astype(str)
    pstr = output.person_strings(world, rng)
    paths = {
        k: out / f"{k}.parquet"
        for k in (
            "xml1",
            "xml2",
            "xml3",
            "facilities",
            "labels",
            "truth",
            "truth_lines",
            "truth_actors",
        )
    }
    output.write(
        output.claim_table(world, c, money.claim, ids, pstr, clock, int(bounds[0]), icd9),
        paths["xml1"],
    )
    step("write lines", 0.65)
    nd, ns = output.write_lines(
        paths["xml2"],
        paths["xml3"],
        lines,
        money.line,
        ids,
        clock,
        clin_ids,
        world.facility_code,
        c["facility"],
    )
    step("write labels and truth", 0.9)
    output.write(output.facility_table(world), paths["facilities"])
    output.write(
        output.labels_table(ids, lab.claim, lab.label, lab.amount, lab.reason, lab.decided_day),
        paths["labels"],
    )
    # ground truth per claim
    ab = np.flatnonzero(c["scheme"] >= 0)
    actor_str = _actor_ids(world, c["actor_type"][ab], c["actor"][ab], clin_ids, pstr)
    names = np.array([((*sch.VARIANTS.get(s, ()), "", "", ""))[:3] for s in sch.SCHEME_NAMES])
    variant = names[c["scheme"][ab], np.clip(c["variant"][ab], 0, 2)]
    code_m = np.r_[world.facility_code, [""]]
    truth = pa.table(
        {
            "MA_LK": pc.take(ids, pa.array(ab)),
            "scheme": pa.array(np.array(sch.SCHEME_NAMES)[c["scheme"][ab]]),
            "variant": pa.array(variant, pa.string()),
            "actor_type": pa.array(np.array(sch.ACTOR_TYPES)[c["actor_type"][ab]]),
            "actor_id": actor_str,
            "partner_id": output.with_nulls(
                pa.array(code_m[c["partner"][ab]]), c["partner"][ab] >= 0
            ),
            "overbilled": pa.array(over_claim[ab] / 100.0),
            "T_BHTT": pa.array(money.claim["t_bhtt"][ab] / 100.0),
        }
    )
    output.write(truth, paths["truth"])
    # ground truth per line: every line of an abusive claim, with what it overbilled
    ab_mask = np.zeros(n, dtype=bool)
    ab_mask[ab] = True
    lrows = np.flatnonzero(ab_mask[lines["claim"]])
    drug = cat.ITEM_ARRAYS["is_drug"][lines["item"]]
    stt = np.zeros(lines.n, dtype=np.int64)
    for is_drug in (True, False):
        r = np.flatnonzero(drug == is_drug)
        cl = lines["claim"][r]
        start = np.r_[True, cl[1:] != cl[:-1]]
        idx = np.arange(len(r))
        stt[r] = idx - np.maximum.accumulate(np.where(start, idx, 0)) + 1
    ls = lines["scheme"][lrows]
    cs = c["scheme"][lines["claim"][lrows]]
    truth_lines = pa.table(
        {
            "MA_LK": pc.take(ids, pa.array(lines["claim"][lrows])),
            "table": pa.array(np.where(drug[lrows], "XML2", "XML3")),
            "STT": pa.array(stt[lrows]),
            "scheme": pa.array(np.array(sch.SCHEME_NAMES)[cs]),
            "line_changed": pa.array((ls >= 0) | (lines["qty2_honest"][lrows] == 0)),
            "overbilled": pa.array(money.overbilled_line[lrows] / 100.0),
        }
    )
    output.write(truth_lines, paths["truth_lines"])
    ro = ctx.roster
    month0 = np.datetime64(str(np.datetime64(int(bounds[0]), "D"))[:7], "M")
    if ro:
        at = np.array([r["actor_type"] for r in ro])
        aid = np.array([r["actor"] for r in ro])
        actors = pa.table(
            {
                "scheme": pa.array([r["scheme"] for r in ro]),
                "actor_type": pa.array(np.array(sch.ACTOR_TYPES)[at]),
                "actor_id": _actor_ids(world, at, aid, clin_ids, pstr),
                "start_month": pa.array([str(month0 + r["start"]) for r in ro]),
                "end_month": pa.array([str(month0 + r["end"] - 1) for r in ro]),
                "share": pa.array([r["share"] for r in ro]),
            }
        )
    else:
        actors = pa.table(
            {
                k: pa.array([], pa.string())
                for k in ("scheme", "actor_type", "actor_id", "start_month", "end_month")
            }
        )
    output.write(actors, paths["truth_actors"])
    paths["_n_drug"], paths["_n_service"] = nd, ns
    return paths


def _actor_ids(
    world: World, atype: np.ndarray, actor: np.ndarray, clin_ids: pa.Array, pstr: dict
) -> pa.Array:
    """Facility code, clinician certificate number, or card number of each actor."""
    from simulator.schemes import A_CLINICIAN, A_FACILITY

    fac = pa.array(world.facility_code[np.where(atype == A_FACILITY, actor, 0)])
    cl = pc.take(clin_ids, pa.array(np.where(atype == A_CLINICIAN, actor, 0)))
    card = pc.take(pstr["MA_THE_BHYT"], pa.array(np.where(atype >= 2, actor, 0)))
    return pc.if_else(
        pa.array(atype == A_FACILITY), fac, pc.if_else(pa.array(atype == A_CLINICIAN), cl, card)
    )
