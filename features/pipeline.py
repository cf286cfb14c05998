"""The feature matrix: one row per claim, every feature and rule column, point in time.

Batch (`build_features`) and online (`build_online`) run the same Ibis definitions; the online
path unions the incoming claims with the profile snapshot's history and keeps the incoming rows.
Everything runs inside the engine; the only pandas step is the final dtype pass (`_finish`),
shared by both paths.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from contract.schema import TABLES
from features import claim_features as cf
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


def _day(x) -> int:
    return int((pd.Timestamp(x).normalize() - _EPOCH).days)


def _month(x) -> int:
    ts = pd.Timestamp(x)
    return ts.year * 12 + ts.month - 1


# ---------------------------------------------------------------------------------------------
# Inputs


def _inputs(eng: Engine, dataset: Dataset) -> dict[str, ir.Table]:
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


def _price_list(eng: Engine, price_list: Path | pd.DataFrame | None) -> ir.Table | None:
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


def _reference(points: ir.Table, base: ir.Table, price_list: ir.Table | None) -> ir.Table:
    if price_list is not None:
        return cf.listed_price_reference(price_list, base)
    return cf.learned_price_reference(points, PRICE_MONTHS, PRICE_QUANTILE, PRICE_MIN_LINES)


# ---------------------------------------------------------------------------------------------
# Assembly (shared by both paths)


def _assemble(
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


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    """Dtypes (flags int8, features float64, categoricals integer codes), stable row order."""
    out = {}
    cats = set(categorical_names())
    flags = {r.flag for r in rl.RULES}
    for c in ID_COLUMNS:
        out[c] = df[c]
    for c in feature_names():
        col = pd.to_numeric(df[c], errors="coerce")
        if c in flags:
            out[c] = col.fillna(0).astype("int8")
        elif c in cats or c == "rule_count":
            out[c] = col.fillna(0).astype("int64")
        else:
            out[c] = col.astype("float64")
    res = pd.DataFrame(out)
    for c in ("admitted_at", "discharged_at"):
        res[c] = pd.to_datetime(res[c]).astype("datetime64[us]")
    for c in ("claim_id", "facility_id", "facility_level", "visit_type"):
        res[c] = res[c].astype("str")
    res = res.sort_values(["admitted_at", "claim_id"], kind="stable").reset_index(drop=True)
    # inf from divisions by tiny values never reaches a model
    num = res.select_dtypes("float64").columns
    res[num] = res[num].replace([np.inf, -np.inf], np.nan)
    return res


def _enriched(
    eng: Engine, tables: dict[str, ir.Table], price_list, extra_points=None, reference=None
):
    """Claims with their line aggregates. `reference`: a precomputed learned price reference
    (the online path's, from the history's price points)."""
    base = cf.claim_base(tables["claims"], tables["facilities"])
    lines = cf.line_table(tables["drug_lines"], tables["service_lines"])
    points = cf.price_points(lines, base)
    if extra_points is not None:
        points = extra_points.union(points)
    pl = _price_list(eng, price_list)
    ref = reference if reference is not None and pl is None else _reference(points, base, pl)
    agg = cf.line_aggregates(lines, base, ref, listed=pl is not None)
    return base, lines, points, cf.enrich(base, agg)


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
    tables = _inputs(eng, dataset)
    base, lines, _, enriched = _enriched(eng, tables, price_list)
    e = eng.materialize("enriched", enriched)
    step(1, 3)
    procs = eng.materialize("procedures", cf.procedure_lines(lines, base))
    pred = ibis.literal(True)
    if since is not None:
        pred = pred & (e.admit_day >= _day(since))
    if until is not None:
        pred = pred & (e.admit_day <= _day(until))
    step(2, 3)
    return _assemble(e, procs, e.filter(pred), keep=eng.materialize if staged else None)


def build_features(
    dataset: Dataset,
    *,
    engine: str = "duckdb",
    since=None,
    until=None,
    price_list: Path | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """One row per claim admitted in [since, until] (dates, inclusive; default all): ID_COLUMNS
    then registry.feature_names(). Every claim in the dataset serves as history."""
    with Engine.connect(engine) as eng:
        expr = feature_expression(
            eng, dataset, since=since, until=until, price_list=price_list, progress=progress
        )
        df = eng.execute(expr)
    if progress:
        progress(3, 3)
    return _finish(df)


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
    """Like build_features, written to a parquet file. On DuckDB the rows stream to the file
    (out of core), so this is the path for data larger than memory. Returns the row count."""
    out = Path(out)
    if engine != "duckdb":
        df = build_features(
            dataset, engine=engine, since=since, until=until, price_list=price_list,
            progress=progress,
        )  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(out, index=False)
        return len(df)
    with Engine.connect("duckdb", memory_limit=memory_limit, threads=threads, on_disk=True) as eng:
        expr = feature_expression(
            eng, dataset, since=since, until=until, price_list=price_list, progress=progress,
            staged=True,
        )  # fmt: skip
        expr = _cast_for_file(expr)
        eng.to_parquet(expr.order_by(["admitted_at", "claim_id"]), out)
    if progress:
        progress(3, 3)
    import pyarrow.parquet as pq

    return pq.read_metadata(out).num_rows


def _cast_for_file(t: ir.Table) -> ir.Table:
    """The dtypes of _finish, in the engine."""
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


# ---------------------------------------------------------------------------------------------
# Online path and snapshot


def build_snapshot(
    dataset: Dataset, as_of, *, engine: str = "duckdb", price_list: Path | None = None
) -> pf.Snapshot:
    """The profile snapshot as of `as_of` (a date): built only from claims admitted before it."""
    as_of = pd.Timestamp(as_of)
    with Engine.connect(engine) as eng:
        tables = _inputs(eng, dataset)
        c = tables["claims"]
        tables["claims"] = c.filter(c.admitted_at < as_of.to_pydatetime())
        base, lines, points, enriched = _enriched(eng, tables, price_list)
        m = _month(as_of)
        hist = enriched.filter(enriched.month >= m - pf.HISTORY_MONTHS)
        pts = points.filter(points.month >= m - PRICE_MONTHS)
        procs = cf.procedure_lines(lines, base)
        procs = procs.filter(procs.start_day >= _day(as_of) - 2)
        parts = {
            "history": eng.execute(hist),
            "price_points": eng.execute(pts),
            "procedures": eng.execute(procs),
            "facilities": eng.execute(tables["facilities"]),
        }
    pl = None
    if price_list is not None:
        pl = pd.read_csv(price_list, dtype=str) if str(price_list).endswith(".csv") else (
            pd.read_parquet(price_list))  # fmt: skip
    return pf.Snapshot(as_of.normalize(), **parts, price_list=pl)


def _like(t: ir.Table, like: ir.Table) -> ir.Table:
    """t's columns in like's order and types (history read back from parquet may have drifted,
    e.g. integers with nulls as floats)."""
    schema = like.schema()
    return t.select(*[t[c].cast(schema[c]).name(c) for c in like.columns])


class OnlinePlan:
    """The online feature query for one snapshot, built and compiled once.

    The snapshot's parts are loaded into a private DuckDB database once; the incoming claims are
    bound per call to fixed table names with fixed types, so a call runs precompiled SQL instead
    of rebuilding and compiling the Ibis expression (which costs seconds). The definitions are
    build_features' own (`_enriched`, `_assemble`).

    Two compiled paths give the same rows as build_features over history + batch:
    - fast, for the usual request (claims of one month M, none re-sent from an earlier month):
      monthly profiles, peer statistics and learned prices of month M read only earlier months,
      so they are the history's own, computed here once; only the batch is enriched per call,
      and windows read only the rows sharing a partition (person, facility, clinician) with it;
    - full, otherwise: history and batch enriched together, every part recomputed.
    One call at a time per plan: `features()` holds a lock.
    """

    def __init__(self, snapshot: pf.Snapshot, *, remember: bool = False):
        """remember: keep every batch's claims in the history (a service: a patient's claims
        scored this morning count in this afternoon's windows and duplicate checks)."""
        import threading

        self.snapshot = snapshot
        self.remember = remember
        self._first_added: int | None = None  # earliest month of a remembered claim
        self._lock = threading.Lock()
        eng = self.eng = Engine.connect("duckdb", threads=1)
        placeholder = {n: TABLES[n].empty() for n in ("claims", "drug_lines", "service_lines")}
        for c in ("person_key", "card_key"):
            placeholder["claims"][c] = pd.Series([], dtype="str")
        placeholder["facilities"] = snapshot.facilities
        tables = {n: eng.canonical(n, d, bind=f"online_{n}") for n, d in placeholder.items()}
        ids = eng.register("ids", pd.DataFrame({"claim_id": pd.Series([], dtype="str")}),
                           name="online_ids")  # fmt: skip
        base = cf.claim_base(tables["claims"], tables["facilities"])
        like_points = cf.price_points(cf.line_table(tables["drug_lines"], tables["service_lines"]),
                                      base)  # fmt: skip
        points = None
        if len(snapshot.price_points):
            points = _like(
                eng.materialize("snap_points", eng.register("p", snapshot.price_points)),
                like_points,
            )
        base_b, lines_b, _, enriched_b = _enriched(
            eng, tables, snapshot.price_list, extra_points=points
        )
        procs_b = cf.procedure_lines(lines_b, base_b)
        # The history lives in two tables of this database. A call inserts the batch's rows
        # into them inside a transaction (replacing a re-sent claim's earlier copy), runs the
        # feature query over them, and rolls back: the query reads plain tables, no union.
        hist = self._table("online_history", snapshot.history, enriched_b)
        procs = self._table("online_history_procs", snapshot.procedures, procs_b)

        # full path
        self._full = self._compile("full", enriched_b, procs_b, hist, procs, ids)
        # fast path
        self._fast = None
        self._history_month: dict[str, int] = {}
        if len(snapshot.history):
            ref = None
            if points is not None and snapshot.price_list is None:
                learned = cf.learned_price_reference(
                    points, PRICE_MONTHS, PRICE_QUANTILE, PRICE_MIN_LINES)  # fmt: skip
                ref = _like(eng.materialize("snap_reference", learned), learned)
            base_f, lines_f, _, enriched_f = _enriched(
                eng, tables, snapshot.price_list, extra_points=points, reference=ref
            )
            parts = {
                "facility_profile": pf.facility_profile(hist),
                "clinician_profile": pf.clinician_profile(hist),
                **{
                    f"peer_{m}": pf.peer_stats(hist, m, with_n=i == 0)
                    for i, (m, _) in enumerate(pf.PEER_METRICS)
                },
            }
            parts = {k: _like(eng.materialize(k, v), v) for k, v in parts.items()}
            procs_f = cf.procedure_lines(lines_f, base_f)
            self._fast = self._compile("fast", enriched_f, procs_f, hist, procs, ids, parts)
            self._history_month = dict(
                zip(snapshot.history["claim_id"], snapshot.history["month"], strict=True)
            )

    def _table(self, name: str, rows: pd.DataFrame, like: ir.Table) -> ir.Table:
        """A table of this database holding `rows` (or none) with `like`'s columns."""
        eng = self.eng
        src = _like(eng.register(name, rows), like) if len(rows) else like.limit(0)
        eng.con.raw_sql(f"CREATE TABLE {name} AS {eng._sql(src)}")
        return _like(eng.con.table(name), like)  # the expression's types

    def _compile(self, path, batch_rows, batch_procs, hist, procs, ids, parts=None):
        """SQL statements: the batch's enriched rows and procedure lines into the history
        tables (a re-sent claim replaces its copy), then the feature query."""
        eng = self.eng
        steps = []
        for name, expr, into in (
            (f"online_{path}_rows", batch_rows, "online_history"),
            (f"online_{path}_procs", batch_procs, "online_history_procs"),
        ):
            steps += [
                f"CREATE OR REPLACE TEMP TABLE {name} AS {eng._sql(expr)}",
                f"DELETE FROM {into} WHERE claim_id IN (SELECT claim_id FROM online_ids)",
                f"INSERT INTO {into} BY NAME SELECT * FROM {name}",
            ]
        e = hist
        targets = e.semi_join(ids, e.claim_id == ids.claim_id)
        if parts is not None:
            parts = dict(parts)
            # Windows look back at most max(FACILITY_WINDOWS) days for a facility and to the
            # same day for a clinician (a patient's whole history is kept): older rows of those
            # partitions cannot reach a target's window.
            first = targets.admit_day.min().as_scalar()
            parts["window_rows"] = e.filter(
                e.person_key.isin(targets.person_key)
                | (
                    e.facility_id.isin(targets.facility_id)
                    & (e.admit_day >= first - max(pf.FACILITY_WINDOWS))
                )
                | (e.clinician.isin(targets.clinician.fill_null("")) & (e.admit_day >= first - 1))
            )
        steps.append(eng._sql(_assemble(e, procs, targets, parts=parts)))
        return steps

    def features(self, claims_batch: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """Feature rows for incoming claims (canonical tables with person_key/card_key)."""
        with self._lock:
            eng = self.eng
            for n in ("claims", "drug_lines", "service_lines"):
                eng.canonical(n, claims_batch.get(n), bind=f"online_{n}")
            facilities = claims_batch.get("facilities")
            own = facilities is not None and len(facilities)
            eng.canonical("facilities", facilities if own else self.snapshot.facilities,
                          bind="online_facilities")  # fmt: skip
            eng.register("ids", claims_batch["claims"][["claim_id"]], name="online_ids")
            *steps, final = self._path(claims_batch["claims"])
            con = eng.con.con
            con.execute("BEGIN TRANSACTION")
            try:
                for sql in steps:
                    con.execute(sql)
                df = con.execute(final).fetch_df()
            except BaseException:
                con.execute("ROLLBACK")
                raise
            if not self.remember:
                con.execute("ROLLBACK")  # the history tables as they were
            else:
                self._keep(con, claims_batch["claims"])
        return _finish(df)

    def _keep(self, con, claims: pd.DataFrame) -> None:
        """Commit the batch into the history; forget claims older than the history window."""
        months = [_month(t) for t in claims["admitted_at"]]
        newest = max([*self._history_month.values(), *months], default=0)
        cut = newest - pf.HISTORY_MONTHS
        con.execute(f"DELETE FROM online_history WHERE month < {int(cut)}")
        con.execute("COMMIT")
        self._history_month.update(zip(claims["claim_id"], months, strict=True))
        if months:
            first = min(months)
            self._first_added = min(first, self._first_added or first)

    def _path(self, claims: pd.DataFrame) -> list[str]:
        if self._fast is None or not len(claims):
            return self._full
        months = {_month(t) for t in claims["admitted_at"]}
        if len(months) != 1:
            return self._full
        (m,) = months
        if any(self._history_month.get(c, m) < m for c in claims["claim_id"]):
            return self._full  # a re-sent claim moved out of an earlier month
        if self._first_added is not None and self._first_added < m:
            return self._full  # remembered claims of earlier months change month m's profiles
        return self._fast

    def close(self) -> None:
        self.eng.close()


def build_online(claims_batch: dict[str, pd.DataFrame], snapshot: pf.Snapshot) -> pd.DataFrame:
    """Feature rows for incoming claims (canonical tables: claims, drug_lines, service_lines,
    with person_key/card_key) against a profile snapshot; same definitions as build_features.
    A service keeps one OnlinePlan per model instead (compiled once)."""
    plan = OnlinePlan(snapshot)
    try:
        return plan.features(claims_batch)
    finally:
        plan.close()
