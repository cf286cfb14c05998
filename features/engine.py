"""Where the feature expressions run: an Ibis backend (DuckDB by default, Spark at scale) and the
canonical tables registered on it, read column-pruned from parquet or from in-memory frames.

The feature definitions (claim_features, rules, profiles) are plain Ibis expressions and never
import an engine; this module is the only place that knows which one executes them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from contract.schema import TABLES

ENGINES = ("duckdb", "spark")

# Columns of the canonical tables the features read (everything else, personal data included,
# never reaches an engine). card_number is read only to take its benefit digit (character 3).
NEEDED: dict[str, tuple[str, ...]] = {
    "claims": (
        "claim_id", "person_key", "card_key", "birth_date", "sex", "card_number",
        "card_valid_from", "card_valid_to", "copay_waiver_date", "primary_icd", "secondary_icd",
        "route_code", "referred_from", "referred_to", "admitted_at", "discharged_at",
        "treatment_days", "outcome", "discharge_type", "total_drugs", "total_supplies",
        "total_cost", "total_insured_cost", "patient_self_pay", "patient_copay", "fund_claimed",
        "other_sources", "visit_type", "facility_id",
    ),
    "drug_lines": (
        "claim_id", "line_no", "drug_code", "strength", "cost_group", "drug_name", "dosage",
        "scope", "insurance_ratio", "quantity", "unit_price", "amount", "insured_amount",
        "benefit_pct", "fund_claimed", "other_sources", "clinician_id", "ordered_at",
    ),
    "service_lines": (
        "claim_id", "line_no", "service_code", "supply_code", "cost_group", "scope", "quantity",
        "unit_price", "insured_unit_price", "service_ratio", "insurance_ratio", "amount",
        "insured_amount", "benefit_pct", "fund_claimed", "other_sources", "clinician_id",
        "performer_id", "ordered_at", "performed_at", "result_at",
    ),
    "facilities": ("facility_id", "level", "ownership", "beds"),
}  # fmt: skip
# Without these a claim cannot be placed in time, linked or costed.
REQUIRED: dict[str, tuple[str, ...]] = {
    "claims": (
        "claim_id", "person_key", "admitted_at", "discharged_at", "facility_id", "visit_type",
        "total_cost", "fund_claimed",
    ),
    "drug_lines": ("claim_id", "cost_group", "amount"),
    "service_lines": ("claim_id", "cost_group", "amount"),
    "facilities": ("facility_id",),
}  # fmt: skip


def _spark_session():
    """The active Spark session, or a local one (UTC session time zone: naive local timestamps
    are read as TIMESTAMP_NTZ and never shifted)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    master = os.environ.get("CLAIMRADAR_SPARK_MASTER", "local[2]")
    spark = (
        SparkSession.builder.master(master)
        .appName("claimradar-features")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.warehouse.dir", tempfile.mkdtemp(prefix="claimradar-spark-wh-"))
        .config("spark.driver.memory", os.environ.get("CLAIMRADAR_SPARK_MEMORY", "2g"))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@dataclass
class Engine:
    """An Ibis backend plus the tables registered on it."""

    kind: str
    con: object
    spark: object = None
    tmp: Path | None = None
    tables: dict[str, ibis.Table] = field(default_factory=dict)
    _n: int = 0
    _bound: dict[str, pa.Schema] = field(default_factory=dict)

    @classmethod
    def connect(
        cls,
        kind: str = "duckdb",
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        on_disk: bool = False,
    ) -> Engine:
        """`on_disk`: DuckDB keeps its work tables in a database file in the temp folder rather
        than in memory (out of core for data larger than memory)."""
        if kind not in ENGINES:
            raise ValueError(f"unknown engine {kind!r}; use one of {', '.join(ENGINES)}")
        tmp = Path(tempfile.mkdtemp(prefix=f"claimradar-{kind}-"))
        if kind == "duckdb":
            config = {"temp_directory": str(tmp / "spill"), "preserve_insertion_order": False}
            if threads:
                config["threads"] = threads
            if memory_limit:
                config["memory_limit"] = memory_limit
            db = str(tmp / "work.duckdb") if on_disk else ":memory:"
            return cls(kind, ibis.duckdb.connect(db, **config), tmp=tmp)
        spark = _spark_session()
        return cls(kind, ibis.pyspark.connect(spark), spark=spark, tmp=tmp)

    def _name(self, stem: str) -> str:
        self._n += 1
        return f"cr_{stem}_{self._n}"

    def register(
        self,
        stem: str,
        data: pd.DataFrame | Path,
        columns: tuple[str, ...] | None = None,
        *,
        name: str | None = None,
    ) -> ibis.Table:
        """Register a frame or a parquet file (or folder) under a fresh name (or `name`, which
        replaces what was bound to it); only `columns` (those present) are read."""
        name = name or self._name(stem)
        if isinstance(data, pd.DataFrame):
            cols = [c for c in (columns or data.columns) if c in data.columns]
            arrow = pa.Table.from_pandas(data[cols], preserve_index=False)
            if name in self._bound:  # a rebinding keeps the types the compiled SQL expects
                arrow = arrow.cast(self._bound[name])
            self._bound[name] = arrow.schema
            if self.kind == "duckdb":
                self.con.con.register(name, arrow)
                return self.con.table(name)
            path = self.tmp / f"{name}.parquet"
            pq.write_table(arrow, path)
            data = path
        path = Path(data)
        if self.kind == "duckdb":
            src = str(path / "*.parquet") if path.is_dir() else str(path)
            present = _parquet_columns(path)
            cols = [c for c in (columns or present) if c in present]
            sel = ", ".join(f'"{c}"' for c in cols)
            self.con.raw_sql(
                f"CREATE OR REPLACE VIEW {name} AS SELECT {sel} FROM read_parquet('{src}')"
            )
            return self.con.table(name)
        df = self.spark.read.parquet(str(path))
        cols = [c for c in (columns or df.columns) if c in df.columns]
        df.select(*cols).createOrReplaceTempView(name)
        return self.con.table(name)

    def canonical(
        self, name: str, data: pd.DataFrame | Path | None, *, bind: str | None = None
    ) -> ibis.Table:
        """A canonical table with the columns the features need; missing optional columns are
        added as typed nulls and a missing table as an empty one. A missing required column is
        an error that names it. `bind`: register under this fixed name (see online.OnlinePlan)."""
        needed = NEEDED[name]
        if data is None:
            data = TABLES[name].empty()
        present = (
            list(data.columns) if isinstance(data, pd.DataFrame) else _parquet_columns(Path(data))
        )
        lacking = [c for c in REQUIRED.get(name, ()) if c not in present]
        if lacking:
            raise ValueError(f"{name} lacks required column(s): {', '.join(lacking)}")
        if isinstance(data, pd.DataFrame):
            missing = [c for c in needed if c not in data.columns]
            if missing:
                data = data.copy()
                for c in missing:
                    data[c] = _empty_like(name, c, len(data))
        t = self.register(name, data, needed, name=bind)
        absent = [c for c in needed if c not in t.columns]
        if absent:
            t = t.mutate(**{c: ibis.null(_ibis_type(name, c)) for c in absent})
        return t.select(*needed)

    def _sql(self, expr: ibis.Table) -> str:
        # registers the expression's in-memory tables (small constant tables) on the backend
        self.con._run_pre_execute_hooks(expr)
        return str(self.con.compile(expr))

    def execute(self, expr: ibis.Table) -> pd.DataFrame:
        return self.con.execute(expr)

    def execute_lean(self, expr: ibis.Table) -> pd.DataFrame:
        """A large result in about its own size: on DuckDB fetched as Arrow (decimals cast to
        float64) and handed to pandas column by column, the Arrow buffers released as they go
        (ibis's own conversion holds the Arrow table, a column copy of it and a consolidated
        frame at once: ~5 GB more at a million claims). Dtypes are Arrow's: for callers that
        normalise them (features.assembly.finish_frame)."""
        if self.kind != "duckdb":
            return self.execute(expr)
        table = self.con.to_pyarrow(expr)
        for i, f in enumerate(table.schema):
            if pa.types.is_decimal(f.type):
                table = table.set_column(i, f.name, table.column(i).cast(pa.float64()))
        return table.to_pandas(self_destruct=True, split_blocks=True)

    def materialize(self, stem: str, expr: ibis.Table) -> ibis.Table:
        """Compute once and keep (DuckDB: a temp table; Spark: a cached view)."""
        name = self._name(stem)
        sql = self._sql(expr)
        if self.kind == "duckdb":
            # a plain table: in memory, or in the database file when on disk
            self.con.raw_sql(f"CREATE TABLE {name} AS {sql}")
            return self.con.table(name)
        df = self.spark.sql(sql)
        df.cache().createOrReplaceTempView(name)
        return self.con.table(name)

    def to_parquet(self, expr: ibis.Table, path: Path) -> int:
        """`expr` written in its order, never collected here: DuckDB one file (streamed), Spark a
        folder of part files written by the executors (collecting a million claims' features ran
        the driver out of heap). Returns the rows written."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        sql = self._sql(expr)
        if self.kind == "duckdb":
            self.con.raw_sql(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
        else:
            self.spark.sql(sql).write.mode("overwrite").parquet(str(path))
        files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
        return sum(pq.read_metadata(f).num_rows for f in files)

    def close(self) -> None:
        if self.kind == "duckdb":
            self.con.disconnect()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _parquet_columns(path: Path) -> list[str]:
    first = next(iter(sorted(path.glob("*.parquet")))) if path.is_dir() else path
    return pq.read_schema(first).names


def _field(table: str, column: str):
    for f in TABLES[table].fields:
        if f.name == column:
            return f
    return None


_IBIS = {"str": "string", "Int64": "int64", "float64": "float64", "datetime64[us]": "timestamp"}


def _ibis_type(table: str, column: str) -> str:
    f = _field(table, column)
    return _IBIS[f.dtype] if f is not None else "string"


def _empty_like(table: str, column: str, n: int) -> pd.Series:
    f = _field(table, column)
    dtype = f.dtype if f is not None else "str"
    return pd.Series([None] * n, dtype=dtype)
