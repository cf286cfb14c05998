"""The feature matrix's building blocks, shared by the batch path (features.pipeline) and the
online one (features.online): the inputs as engine tables, the enriched claims, the assembly of
every feature and rule column for a set of target claims, and the final dtype pass."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from features import claim_features as cf
from features import lines as ln
from features import profiles as pf
from features import rules as rl
from features.engine import Engine
from features.registry import categorical_names, feature_names

# Columns carried for training and reporting that are NOT model inputs.
ID_COLUMNS = (
    "claim_id",
    "admitted_at",
    "discharged_at",
    "facility_id",
    "facility_level",
    "visit_type",
    "fund_claimed",
    "total_cost",
)
PRICE_MONTHS = 3  # the learned approved price uses the 3 months before the claim's month
PRICE_QUANTILE = 0.9
PRICE_MIN_LINES = 20
Progress = Callable[[int, int], None]
Dataset = Path | str | dict[str, pd.DataFrame]
_EPOCH = pd.Timestamp("1970-01-01")


def day_number(x) -> int:
    return int((pd.Timestamp(x).normalize() - _EPOCH).days)


def month_number(x) -> int:
    ts = pd.Timestamp(x)
    return ts.year * 12 + ts.month - 1


def input_tables(eng: Engine, dataset: Dataset) -> dict[str, ir.Table]:
    if isinstance(dataset, dict):
        src = {n: dataset.get(n) for n in ("claims", "drug_lines", "service_lines", "facilities")}
        if src["claims"] is None:
            raise ValueError("the dataset has no claims table")
    else:
        folder = Path(dataset)
        if not (folder / "claims.parquet").exists():
            raise FileNotFoundError(
                f"{folder} has no claims.parquet; run `claimradar ingest` first"
            )
        src = {}
        for n in ("claims", "drug_lines", "service_lines", "facilities"):
            p = folder / f"{n}.parquet"
            src[n] = p if p.exists() else None
    return {n: eng.canonical(n, d) for n, d in src.items()}


def price_list_table(eng: Engine, price_list: Path | pd.DataFrame | None) -> ir.Table | None:
    """A price list file (parquet or csv): code, level (TW/T/H/X), price, optional strength."""
    if price_list is None:
        return None
    if isinstance(price_list, pd.DataFrame):
        df = price_list.copy()
    else:
        p = Path(price_list)
        df = pd.read_csv(p, dtype=str) if p.suffix.lower() == ".csv" else pd.read_parquet(p)
    df.columns = [c.lower() for c in df.columns]
    missing = [c for c in ("code", "level", "price") if c not in df.columns]
    if missing:
        raise ValueError(f"price list misses column(s) {', '.join(missing)}")
    if "strength" not in df.columns:
        df["strength"] = None
    df = pd.DataFrame(
        {
            "code": df["code"].astype("str"),
            "level": df["level"].astype("str"),
            "price": pd.to_numeric(df["price"]).astype("float64"),
            "strength": df["strength"].astype("str"),  # missing stays missing
        }
    )
    return eng.register("price_list", df)


def price_reference(points: ir.Table, base: ir.Table, price_list: ir.Table | None) -> ir.Table:
    if price_list is not None:
        return ln.listed_price_reference(price_list, base)
    return ln.learned_price_reference(points, PRICE_MONTHS, PRICE_QUANTILE, PRICE_MIN_LINES)


def assemble(
    e: ir.Table,
    procs: ir.Table,
    targets: ir.Table,
    keep: Callable | None = None,
    parts: dict[str, ir.Table] | None = None,
) -> ir.Table:
    """The feature rows of `targets` (a filter of the enriched claims `e`), using all of `e` as
    the history. `keep(name, expr)` may materialize the parts (bounded memory on big data);
    `parts` gives precomputed ones by name (the online path: profiles of earlier months, and
    `window_rows`, the rows of e that share a window partition with a target)."""
    keep = keep or (lambda name, expr: expr)
    parts = parts or {}
    rows = parts.get("window_rows", e)
    win = keep("windows", pf.windows(rows).rename(w_claim_id="claim_id"))

    def part(name: str, build: Callable[[], ir.Table]) -> ir.Table:
        return parts[name] if name in parts else keep(name, build())

    fp = part("facility_profile", lambda: pf.facility_profile(e))
    cp = part("clinician_profile", lambda: pf.clinician_profile(e))
    peers = [
        part(f"peer_{m}", lambda m=m, i=i: pf.peer_stats(e, m, with_n=i == 0))
        for i, (m, _) in enumerate(pf.PEER_METRICS)
    ]
    pr = keep("pair_rules", rl.pair_rules(e, targets))
    sp = keep("procedure_rule", rl.procedure_rule(procs, targets))
    t = targets.left_join(win, targets.claim_id == win.w_claim_id)
    t = t.left_join(
        fp,
        [t.facility_id == fp.fp_facility, t.visit_type == fp.fp_visit_type, t.month == fp.fp_month],
    )
    t = t.left_join(cp, [t.clinician == cp.cp_clinician, t.month == cp.cp_month])
    for (m, _), ps in zip(pf.PEER_METRICS, peers, strict=True):
        t = t.left_join(ps, [t.peer_key == ps[f"ps_key_{m}"], t.month == ps[f"ps_month_{m}"]])
    t = t.left_join(pr, t.claim_id == pr.pr_claim_id)
    t = t.left_join(sp, t.claim_id == sp.sp_claim_id)
    derived = {
        "claim_cost": t.total_cost,
        "claim_fund": t.fund_claimed,
        "cost_vs_fac_30d": (t.fac_cost_mean_30d > 0).ifelse(
            t.total_cost / t.fac_cost_mean_30d, ibis.null("float64")
        ),
        "fac_cost_shift_7d": (t.fac_cost_per_visit_prev > 0).ifelse(
            t.fac_cost_mean_7d / t.fac_cost_per_visit_prev, ibis.null("float64")
        ),
        **pf.peer_deviations(t),
        **rl.cross_claim_rules(t),
    }
    t = t.mutate(**derived)
    flags = [t[r.flag] for r in rl.RULES]
    amounts = [t[r.amount] for r in rl.RULES]
    count = flags[0].cast("int64")
    for f in flags[1:]:
        count = count + f.cast("int64")
    top = ibis.greatest(*amounts)
    t = t.mutate(rule_count=count, rule_amount=ibis.least(top, ibis.greatest(t.fund_claimed, 0.0)))
    return t.select(*ID_COLUMNS, *feature_names())


def finish_frame(df: pd.DataFrame, consume: bool = False) -> pd.DataFrame:
    """Dtypes (flags int8, features float64, categoricals integer codes), stable row order
    (admitted_at, claim_id), inf as NaN. Built column by column in the final order, each column
    taken once: at a million claims the frame is ~1.4 GB and a consolidated copy, a sorted copy and
    an inf-replaced copy of it were each held beside the one before. `consume`: the input's columns
    are dropped as they are converted (the caller hands over a frame it no longer needs)."""
    cats = set(categorical_names())
    flags = {r.flag for r in rl.RULES}
    text = ("claim_id", "facility_id", "facility_level", "visit_type")

    def column(c: str) -> pd.Series:
        s = df.pop(c) if consume else df[c]
        if c in ("admitted_at", "discharged_at"):
            return pd.to_datetime(s).astype("datetime64[us]")
        if c in text:
            return s.astype("str")
        if c not in ID_COLUMNS:
            col = pd.to_numeric(s, errors="coerce")
            if c in flags:
                return col.fillna(0).astype("int8")
            if c in cats or c == "rule_count":
                return col.fillna(0).astype("int64")
            return col.astype("float64")
        return s

    admitted, ids = column("admitted_at"), column("claim_id")
    keys = pd.DataFrame({"a": admitted.to_numpy(), "c": ids.reset_index(drop=True)})
    order = keys.sort_values(["a", "c"], kind="stable").index.to_numpy()
    del keys
    out = {}
    for c in (*ID_COLUMNS, *feature_names()):
        s = admitted if c == "admitted_at" else ids if c == "claim_id" else column(c)
        if s.dtype == "float64":  # inf from divisions by tiny values never reaches a model
            v = s.to_numpy(dtype="float64")[order]
            v[np.isinf(v)] = np.nan
            out[c] = pd.Series(v, copy=False)
        else:
            out[c] = s.take(order).reset_index(drop=True)
        del s
    # one block per column (no consolidated copy beside the columns); pandas consolidates lazily
    return pd.DataFrame(out, copy=False)


def enriched_claims(
    eng: Engine,
    tables: dict[str, ir.Table],
    price_list,
    extra_points=None,
    reference=None,
    items=None,
    counted=None,
):
    """Claims with their line aggregates. `reference`: a precomputed learned price reference
    (the online path's, from the history's price points); `items`: precomputed item
    statistics (lines.item_reference of the same points); `counted`: claims (claim_id) whose
    lines `extra_points` already count (a claim re-sent from the history counts once)."""
    base = cf.claim_base(tables["claims"], tables["facilities"])
    lines = ln.line_table(tables["drug_lines"], tables["service_lines"])
    new = base if counted is None else base.anti_join(counted, base.claim_id == counted.claim_id)
    points = ln.price_points(lines, new)
    if extra_points is not None:
        points = extra_points.union(points)
    pl = price_list_table(eng, price_list)
    ref = reference if reference is not None and pl is None else price_reference(points, base, pl)
    items = items if items is not None else ln.item_reference(points)
    agg = ln.line_aggregates(lines, base, ref, listed=pl is not None, items=items)
    return base, lines, points, cf.enrich(base, agg)


def cast_like(t: ir.Table, like: ir.Table) -> ir.Table:
    """t's columns in like's order and types (history read back from parquet may have drifted,
    e.g. integers with nulls as floats)."""
    schema = like.schema()
    return t.select(*[t[c].cast(schema[c]).name(c) for c in like.columns])
