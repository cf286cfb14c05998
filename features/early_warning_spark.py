"""The facility early warning with its whole-period reading on Spark
(`claimradar facilities DATA --month M --engine spark`).

The warning of a month depends on every month before it (each month's baseline leaves out the
months its facility was already warned in), so it reads the whole period: every claim and every
drug and service line up to the month. On Spark that part runs distributed: the claims up to the
end of the month, pruned to the seven columns the warning reads; the lines of those claims that
carry a unit price, joined to them and pruned to the item, quantity and price; the facilities'
level and name. The statistics themselves (cells, baselines, the volume-aware test, the peers,
the control chart, the thresholds) are features.early_warning's, called through its public
`warnings_by_month` on these tables, so the Spark engine cannot drift from the embedded one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.early_warning import _parse_month as _parse
from features.early_warning import warnings_by_month

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


def warning_tables(spark, dataset: Path, until_month: int | None = None) -> dict[str, pd.DataFrame]:
    """The tables features.early_warning reads, read and reduced on Spark: claims admitted up to
    month number `until_month` (year x 12 + month - 1; None: all), the priced lines of those
    claims, the facilities. Rows in file order, as the embedded engine reads them."""
    from pyspark.sql import functions as F

    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    folder = Path(dataset)
    claims = _read(spark, folder / "claims.parquet", CLAIM_COLUMNS)
    if claims is None:
        raise ValueError(f"{folder} has no claims.parquet")
    if until_month is not None:
        claims = claims.filter(_month_number(F.col("admitted_at")) <= until_month)
    claims = claims.cache()
    out = {"claims": _to_pandas(claims)}
    keys = claims.select("claim_id")
    for name, columns in LINE_COLUMNS.items():
        lines = _read(spark, folder / f"{name}.parquet", columns)
        if lines is None:
            continue
        price = F.col("unit_price").cast("double")
        priced = lines.filter(price.isNotNull() & ~F.isnan(price))
        out[name] = _to_pandas(priced.join(keys, "claim_id", "left_semi"))
    facilities = _read(spark, folder / "facilities.parquet", FACILITY_COLUMNS)
    if facilities is not None:
        out["facilities"] = _to_pandas(facilities)
    claims.unpersist()
    return out


def warnings_by_month_spark(spark, dataset: Path, months: list[str]) -> dict[str, pd.DataFrame]:
    """features.early_warning.warnings_by_month with the period read on Spark."""
    last = max(_parse(m) for m in months)
    return warnings_by_month(warning_tables(spark, dataset, last), months)


def facility_warnings_spark(spark, dataset: Path, month: str) -> pd.DataFrame:
    """features.early_warning.facility_warnings of `month` (YYYY-MM) on the Spark engine."""
    return warnings_by_month_spark(spark, dataset, [month])[month]
