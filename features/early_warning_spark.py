"""The facility early warning with its whole-period reading on Spark
(`claimradar facilities DATA --month M --engine spark`).

The warning of a month depends on every month before it (each month's baseline leaves out the
months its facility was already warned in), so it reads the whole period: every claim and every
drug and service line up to the month. On Spark that reading and the summing run on the
executors: the claims up to the end of the month become one row per facility, month and cell
(claims, cost, log cost and its square summed: features.early_warning.cell_sums), their priced
lines one row per facility, month, item and unit price (lines and quantity: price_sums). Only
those sums reach the driver (at a national month, ~14M claims and ~60M lines, tens of thousands
of rows instead). The statistics themselves (baselines, the volume-aware test, the peers, the
control chart, the thresholds) are features.early_warning's, called through its public
`warnings_from_sums`, so the Spark engine cannot drift from the embedded one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.early_warning import (
    CELL_KEYS,
    PRICE_KEYS,
    one_claim_sums,
    price_sums,
    shift_from_sums,
    warnings_from_sums,
)
from features.early_warning import _parse_month as _parse

CLAIM_COLUMNS = (
    "claim_id", "facility_id", "admitted_at", "total_cost", "fund_claimed", "primary_icd",
    "visit_type",
)  # fmt: skip
LINE_COLUMNS = {
    "drug_lines": ("claim_id", "drug_code", "quantity", "unit_price"),
    "service_lines": ("claim_id", "service_code", "supply_code", "quantity", "unit_price"),
}
FACILITY_COLUMNS = ("facility_id", "level", "facility_name")
_ORDER = "_cr_row"  # the file's row order, restored before the rows reach pandas


def _month_number(col):
    from pyspark.sql import functions as F

    return F.year(col) * 12 + F.month(col) - 1


def _read(spark, path: Path, columns: tuple[str, ...]):
    """The parquet table's `columns` (those present), numbered in file order; None if absent."""
    from pyspark.sql import functions as F

    if not path.exists():
        return None
    df = spark.read.parquet(str(path))
    cols = [c for c in columns if c in df.columns]
    return df.select(*cols).withColumn(_ORDER, F.monotonically_increasing_id())


def _to_pandas(df) -> pd.DataFrame:
    return df.orderBy(_ORDER).drop(_ORDER).toPandas()


def warning_sums(spark, dataset: Path, until_month: int | None = None, lines: bool = True):
    """The period's features.early_warning.cell_sums and price_sums, summed on Spark: claims
    admitted up to month number `until_month` (year x 12 + month - 1; None: all) and their priced
    lines. Only the sums (one row per facility, month and cell; per facility, month, item and
    unit price) reach the driver, never a claim or a line."""
    from pyspark.sql import functions as F

    folder = Path(dataset)
    cells = _claim_cells(spark, folder)
    if until_month is not None:
        cells = cells.filter(F.col("month") <= until_month)
    cells = cells.select("claim_id", *CELL_KEYS, "s", "ls").cache()
    sums = (
        cells.groupBy("facility_id", "month", "cell")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum("s").alias("s"),
            F.sum("ls").alias("ls"),
            F.sum(F.col("ls") * F.col("ls")).alias("ls2"),
        )
        .toPandas()
    )
    parts = []
    keys = cells.select("claim_id", "facility_id", "month")
    for name, columns in LINE_COLUMNS.items() if lines else ():
        t = _read(spark, folder / f"{name}.parquet", columns)
        if t is None:
            continue
        item = F.coalesce(F.col(columns[1]).cast("string"), F.lit(""))
        if "supply_code" in t.columns:  # a service line without a service code: its supply
            supply = F.coalesce(F.col("supply_code").cast("string"), F.lit(""))
            item = F.when(item != "", item).otherwise(supply)
        price = F.col("unit_price").cast("double")
        parts.append(
            t.filter(price.isNotNull() & ~F.isnan(price))
            .join(keys, "claim_id")
            .select(
                "facility_id",
                "month",
                F.concat(F.lit(name[0] + ":"), item).alias("item"),
                price.alias("price"),
                F.coalesce(F.col("quantity").cast("double"), F.lit(0.0)).alias("qty"),
            )
        )
    prices = None
    if parts:
        union = parts[0]
        for more in parts[1:]:
            union = union.unionByName(more)
        prices = (
            union.groupBy("facility_id", "month", "item", "price")
            .agg(F.count(F.lit(1)).alias("w"), F.sum("qty").alias("qty"))
            .toPandas()
        )
    cells.unpersist()
    facilities = _read(spark, folder / "facilities.parquet", FACILITY_COLUMNS)
    fac = _to_pandas(facilities) if facilities is not None else None
    return _with_facilities(sums, fac), _prices(prices)


def _claim_cells(spark, folder: Path):
    """features.early_warning.claim_cells on Spark, without the facility's level and name: one
    row per claim (claim_id, facility_id, month, cell; cost s, its log ls, the fund's money)."""
    from pyspark.sql import functions as F

    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    claims = _read(spark, folder / "claims.parquet", CLAIM_COLUMNS)
    if claims is None:
        raise ValueError(f"{folder} has no claims.parquet")
    cost = F.coalesce(F.col("total_cost").cast("double"), F.lit(0.0))
    icd = F.upper(F.coalesce(F.col("primary_icd").cast("string"), F.lit(""))).substr(1, 1)
    visit = F.coalesce(F.col("visit_type").cast("string"), F.lit(""))
    return claims.select(
        F.col("claim_id"),
        F.col("facility_id").cast("string").alias("facility_id"),
        _month_number(F.col("admitted_at")).alias("month"),
        F.concat(icd, F.lit("|"), visit).alias("cell"),
        cost.alias("s"),
        F.log(F.greatest(cost, F.lit(1.0))).alias("ls"),
        F.coalesce(F.col("fund_claimed").cast("double"), F.lit(0.0)).alias("fund"),
        F.col(_ORDER),
    )


def shift_evidence_spark(spark, dataset: Path, months: list[int] | None = None) -> pd.DataFrame:
    """features.early_warning.shift_evidence with the period on Spark: the warnings' sequence from
    the sums of warning_sums (no lines: they feed only the price effect, never a flag), then the
    claims of the warned facility-months alone read to the driver (one query, their facility and
    month pairs broadcast), in the file's order as the embedded engine reads them."""
    from pyspark.sql import functions as F

    folder = Path(dataset)
    sums, _ = warning_sums(spark, folder, lines=False)

    def claims_of(warned: pd.DataFrame) -> pd.DataFrame:
        pairs = spark.createDataFrame(warned, "facility_id string, month long")
        cells = _claim_cells(spark, folder).join(
            F.broadcast(pairs), ["facility_id", "month"], "left_semi"
        )
        x = _to_pandas(cells.drop("ls")).rename(columns={"s": "cost"})
        x["month"] = x["month"].astype("int64")
        one_claim_sums(x)
        level = sums.drop_duplicates("facility_id").set_index("facility_id")
        x["facility_level"] = x["facility_id"].map(level["facility_level"]).fillna("U")
        x["facility_name"] = x["facility_id"].map(level["facility_name"])
        return x

    return shift_from_sums(sums, claims_of, months)


def _with_facilities(sums: pd.DataFrame, fac: pd.DataFrame | None) -> pd.DataFrame:
    """The facility's level ("U" unknown) and name on its sums, as claim_cells gives them."""
    level = name = None
    if fac is not None and len(fac):
        f = fac.drop_duplicates("facility_id").set_index("facility_id")
        level = sums["facility_id"].map(f["level"]) if "level" in f else None
        name = sums["facility_id"].map(f["facility_name"]) if "facility_name" in f else None
    sums["facility_level"] = level.fillna("U") if level is not None else "U"
    sums["facility_name"] = name if name is not None else ""
    sums["month"] = sums["month"].astype("int64")
    return sums.sort_values(CELL_KEYS, kind="stable").reset_index(drop=True)


def _prices(prices: pd.DataFrame | None) -> pd.DataFrame:
    if prices is None or prices.empty:
        return price_sums(pd.DataFrame())
    prices["month"] = prices["month"].astype("int64")
    return prices.sort_values(PRICE_KEYS, kind="stable").reset_index(drop=True)


def warnings_by_month_spark(spark, dataset: Path, months: list[str]) -> dict[str, pd.DataFrame]:
    """features.early_warning.warnings_by_month with the period summed on Spark."""
    last = max(_parse(m) for m in months)
    sums, prices = warning_sums(spark, dataset, last)
    return warnings_from_sums(sums, prices, months)


def facility_warnings_spark(spark, dataset: Path, month: str) -> pd.DataFrame:
    """features.early_warning.facility_warnings of `month` (YYYY-MM) on the Spark engine."""
    return warnings_by_month_spark(spark, dataset, [month])[month]
