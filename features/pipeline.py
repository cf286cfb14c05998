"""The feature matrix: one row per claim, every feature and rule column, point in time.

Batch (`build_features`, `write_features`) and online (`features.online`: `OnlinePlan`,
`build_online`, re-exported here) run the same Ibis definitions (`features.assembly`); the online
path unions the incoming claims with the profile snapshot's history and keeps the incoming rows.
Everything runs inside the engine; the only pandas step is the final dtype pass
(`assembly.finish_frame`), shared by both paths.
"""

from __future__ import annotations

from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd

from features import lines as ln
from features import profiles as pf
from features import rules as rl
from features.assembly import (
    ID_COLUMNS,
    PRICE_MONTHS,
    Dataset,
    Progress,
    assemble,
    day_number,
    enriched_claims,
    finish_frame,
    input_tables,
    month_number,
)
from features.engine import Engine
from features.online import OnlinePlan, build_online
from features.registry import categorical_names, feature_names

__all__ = [
    "ID_COLUMNS",
    "OnlinePlan",
    "build_features",
    "build_online",
    "build_snapshot",
    "feature_expression",
    "write_features",
]


def feature_expression(
    eng: Engine,
    dataset: Dataset,
    *,
    since=None,
    until=None,
    price_list: Path | None = None,
    progress: Progress | None = None,
    staged: bool = False,
) -> ir.Table:
    """The batch feature expression on `eng` (enriched claims materialized once; with `staged`,
    every part too, which bounds memory on data larger than memory)."""
    step = progress or (lambda done, total: None)
    tables = input_tables(eng, dataset)
    base, lines, _, enriched = enriched_claims(eng, tables, price_list)
    e = eng.materialize("enriched", enriched)
    step(1, 3)
    procs = eng.materialize("procedures", ln.procedure_lines(lines, base))
    pred = ibis.literal(True)
    if since is not None:
        pred = pred & (e.admit_day >= day_number(since))
    if until is not None:
        pred = pred & (e.admit_day <= day_number(until))
    step(2, 3)
    return assemble(e, procs, e.filter(pred), keep=eng.materialize if staged else None)


def build_features(
    dataset: Dataset,
    *,
    engine: str = "duckdb",
    since=None,
    until=None,
    price_list: Path | None = None,
    progress: Progress | None = None,
    out_of_core: bool = False,
) -> pd.DataFrame:
    """One row per claim admitted in [since, until] (dates, inclusive; default all): ID_COLUMNS
    then registry.feature_names(). Every claim in the dataset serves as history.
    `out_of_core` (DuckDB): the plan's stages materialized one by one in a database file in the
    temp folder (as write_features does), not held in memory: for whole periods (training,
    batch scoring; at a million claims peak 5.8 -> 3.6 GiB and faster)."""
    staged = out_of_core and engine == "duckdb"
    with Engine.connect(engine, on_disk=staged) as eng:
        expr = feature_expression(
            eng, dataset, since=since, until=until, price_list=price_list, progress=progress,
            staged=staged,
        )  # fmt: skip
        df = eng.execute_lean(expr)
    if progress:
        progress(3, 3)
    return finish_frame(df, consume=True)


def write_features(
    dataset: Dataset,
    out: Path,
    *,
    engine: str = "duckdb",
    since=None,
    until=None,
    price_list: Path | None = None,
    progress: Progress | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> int:
    """Like build_features, written to parquet: on DuckDB one file, the rows streamed to it (out
    of core); on Spark a folder of part files written by the executors, in the same row order
    and dtypes (nothing is collected to the driver: at a million claims that ran the driver out
    of heap). Either is read back whole by pandas, DuckDB or Spark. Returns the row count."""
    duck = engine == "duckdb"
    options = {"memory_limit": memory_limit, "threads": threads, "on_disk": True} if duck else {}
    with Engine.connect(engine, **options) as eng:
        expr = feature_expression(
            eng, dataset, since=since, until=until, price_list=price_list, progress=progress,
            staged=duck,
        )  # fmt: skip
        n = eng.to_parquet(_cast_for_file(expr).order_by(["admitted_at", "claim_id"]), Path(out))
    if progress:
        progress(3, 3)
    return n


def _cast_for_file(t: ir.Table) -> ir.Table:
    """The dtypes of finish_frame, in the engine."""
    cats = set(categorical_names())
    flags = {r.flag for r in rl.RULES}
    cols = {c: t[c] for c in ID_COLUMNS}
    for c in feature_names():
        if c in flags:
            cols[c] = t[c].fill_null(0).cast("int32").cast("int8")  # never elided
        elif c in cats or c == "rule_count":
            cols[c] = t[c].fill_null(0).cast("int64")
        else:
            v = t[c].cast("float64")
            cols[c] = v.isinf().ifelse(ibis.null("float64"), v)
    return t.select(**cols)


def build_snapshot(
    dataset: Dataset, as_of, *, engine: str = "duckdb", price_list: Path | None = None
) -> pf.Snapshot:
    """The profile snapshot as of `as_of` (a date): built only from claims admitted before it."""
    as_of = pd.Timestamp(as_of)
    with Engine.connect(engine) as eng:
        tables = input_tables(eng, dataset)
        c = tables["claims"]
        tables["claims"] = c.filter(c.admitted_at < as_of.to_pydatetime())
        base, lines, points, enriched = enriched_claims(eng, tables, price_list)
        m = month_number(as_of)
        hist = enriched.filter(enriched.month >= m - pf.HISTORY_MONTHS)
        pts = points.filter(points.month >= m - max(PRICE_MONTHS, ln.ITEM_MONTHS))
        procs = ln.procedure_lines(lines, base)
        procs = procs.filter(procs.start_day >= day_number(as_of) - 2)
        parts = {  # the same frames as eng.execute gives (no decimals here), in about their size
            "history": eng.execute_lean(hist),
            "price_points": eng.execute_lean(pts),
            "procedures": eng.execute_lean(procs),
            "facilities": eng.execute_lean(tables["facilities"]),
        }
    pl = None
    if price_list is not None:
        pl = pd.read_csv(price_list, dtype=str) if str(price_list).endswith(".csv") else (
            pd.read_parquet(price_list))  # fmt: skip
    return pf.Snapshot(as_of.normalize(), **parts, price_list=pl)
