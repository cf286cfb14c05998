"""The online feature path: a plan compiled once per profile snapshot (a service keeps one per
model), and `build_online` for one-off calls. Same definitions as the batch path."""

from __future__ import annotations

import ibis.expr.types as ir
import pandas as pd

from contract.schema import TABLES
from features import claim_features as cf
from features import lines as ln
from features import profiles as pf
from features.assembly import (
    PRICE_MIN_LINES,
    PRICE_MONTHS,
    PRICE_QUANTILE,
    assemble,
    cast_like,
    enriched_claims,
    finish_frame,
    month_number,
)
from features.engine import Engine


class OnlinePlan:
    """The online feature query for one snapshot, built and compiled once.

    The snapshot's parts are loaded into a private DuckDB database once; the incoming claims are
    bound per call to fixed table names with fixed types, so a call runs precompiled SQL instead
    of rebuilding and compiling the Ibis expression (which costs seconds). The definitions are
    build_features' own (`enriched_claims`, `assemble`).

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
        like_points = ln.price_points(ln.line_table(tables["drug_lines"], tables["service_lines"]),
                                      base)  # fmt: skip
        points = None
        self._points_table: str | None = None  # the snapshot's price points, as a table
        self._batch_points: str | None = None  # SQL: the batch's points, before it is history
        if len(snapshot.price_points):
            stored = eng.materialize("snap_points", eng.register("p", snapshot.price_points))
            self._points_table = stored.get_name()
            points = cast_like(stored, like_points)
        base_b, lines_b, _, enriched_b = enriched_claims(
            eng, tables, snapshot.price_list, extra_points=points
        )
        procs_b = ln.procedure_lines(lines_b, base_b)
        # The history lives in two tables of this database. A call inserts the batch's rows
        # into them inside a transaction (replacing a re-sent claim's earlier copy), runs the
        # feature query over them, and rolls back: the query reads plain tables, no union.
        hist = self._table("online_history", snapshot.history, enriched_b)
        procs = self._table("online_history_procs", snapshot.procedures, procs_b)
        if points is not None:  # a claim re-sent from the history: the snapshot's points count it
            known = hist.select("claim_id")
            base_b, lines_b, _, enriched_b = enriched_claims(
                eng, tables, snapshot.price_list, extra_points=points, counted=known
            )
            procs_b = ln.procedure_lines(lines_b, base_b)
            # the batch's own points (claims not yet counted), which a remembered batch adds
            fresh = base_b.anti_join(known, base_b.claim_id == known.claim_id)
            pts_sql = eng._sql(ln.price_points(lines_b, fresh))
            self._batch_points = "CREATE OR REPLACE TEMP TABLE online_batch_points AS " + pts_sql

        # full path
        self._full = self._compile("full", enriched_b, procs_b, hist, procs, ids)
        # fast path
        self._fast = None
        self._history_month: dict[str, int] = {}
        if len(snapshot.history):
            ref = items = None
            if points is not None and snapshot.price_list is None:
                learned = ln.learned_price_reference(
                    points, PRICE_MONTHS, PRICE_QUANTILE, PRICE_MIN_LINES)  # fmt: skip
                ref = cast_like(eng.materialize("snap_reference", learned), learned)
            if points is not None:  # the item statistics of month M read earlier months only
                stats = ln.item_reference(points)
                items = cast_like(eng.materialize("snap_items", stats), stats)
            base_f, lines_f, _, enriched_f = enriched_claims(
                eng, tables, snapshot.price_list, extra_points=points, reference=ref, items=items
            )
            parts = {
                "facility_profile": pf.facility_profile(hist),
                "clinician_profile": pf.clinician_profile(hist),
                **{
                    f"peer_{m}": pf.peer_stats(hist, m, with_n=i == 0)
                    for i, (m, _) in enumerate(pf.PEER_METRICS)
                },
            }
            parts = {k: cast_like(eng.materialize(k, v), v) for k, v in parts.items()}
            procs_f = ln.procedure_lines(lines_f, base_f)
            self._fast = self._compile("fast", enriched_f, procs_f, hist, procs, ids, parts)
            self._history_month = dict(
                zip(snapshot.history["claim_id"], snapshot.history["month"], strict=True)
            )

    def _table(self, name: str, rows: pd.DataFrame, like: ir.Table) -> ir.Table:
        """A table of this database holding `rows` (or none) with `like`'s columns."""
        eng = self.eng
        if len(rows):  # rows may carry only the columns history rows are read for
            rows = rows.reindex(columns=like.columns)
        src = cast_like(eng.register(name, rows), like) if len(rows) else like.limit(0)
        eng.con.raw_sql(f"CREATE TABLE {name} AS {eng._sql(src)}")
        return cast_like(eng.con.table(name), like)  # the expression's types

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
        steps.append(eng._sql(assemble(e, procs, targets, parts=parts)))
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
            if self.remember and self._batch_points is not None:
                steps = [self._batch_points, *steps]
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
        return finish_frame(df)

    def _keep(self, con, claims: pd.DataFrame) -> None:
        """Commit the batch into the history; forget claims older than the history window."""
        months = [month_number(t) for t in claims["admitted_at"]]
        newest = max([*self._history_month.values(), *months], default=0)
        cut = newest - pf.HISTORY_MONTHS
        con.execute(f"DELETE FROM online_history WHERE month < {int(cut)}")
        if self._batch_points is not None:  # later months' learned prices and item statistics
            con.execute(
                f"INSERT INTO {self._points_table} BY NAME SELECT * FROM online_batch_points"
            )
        con.execute("COMMIT")
        self._history_month.update(zip(claims["claim_id"], months, strict=True))
        if months:
            first = min(months)
            self._first_added = min(first, self._first_added or first)

    def add_history(
        self, rows: pd.DataFrame, procs: pd.DataFrame, points: pd.DataFrame | None = None
    ) -> None:
        """Remember claims scored elsewhere (features.online_state.OnlineState answers most
        requests without this plan): their enriched rows and procedure lines replace any
        earlier copy in the history tables, as a remembered batch would; `points` (their price
        points) join the snapshot's, so the full path's learned prices of a later month count
        them as build_features does."""
        with self._lock:
            eng, con = self.eng, self.eng.con.con
            ids = ", ".join("'" + str(c).replace("'", "''") + "'" for c in rows["claim_id"])
            con.execute("BEGIN TRANSACTION")
            try:
                if points is not None and len(points) and self._points_table is not None:
                    like = eng.con.table(self._points_table)
                    src = cast_like(eng.register("added", points[list(like.columns)]), like)
                    con.execute(f"INSERT INTO {self._points_table} BY NAME {eng._sql(src)}")
                for name, df in (("online_history", rows), ("online_history_procs", procs)):
                    if not len(rows):
                        break
                    con.execute(f"DELETE FROM {name} WHERE claim_id IN ({ids})")
                    if len(df):
                        like = eng.con.table(name)
                        src = cast_like(
                            eng.register("added", df.reindex(columns=like.columns)), like
                        )
                        con.execute(f"INSERT INTO {name} BY NAME {eng._sql(src)}")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            if not len(rows):
                return
            months = [int(m) for m in rows["month"]]
            self._history_month.update(zip(rows["claim_id"], months, strict=True))
            first = min(months)
            self._first_added = min(first, self._first_added or first)

    def _path(self, claims: pd.DataFrame) -> list[str]:
        if self._fast is None or not len(claims):
            return self._full
        months = {month_number(t) for t in claims["admitted_at"]}
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
