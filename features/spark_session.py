"""The Spark session every Spark step runs on: the active one when there is one (a test's, or one
a spark-submit driver started), else one started here with the master it is given (local[*] on one
machine, a cluster URL in production: `claimradar.settings.Settings.spark_master`).

Session time zone UTC: naive local timestamps are read as TIMESTAMP_NTZ and never shifted, so
every engine sees the same admission times (features.engine relies on it).
"""

from __future__ import annotations

import tempfile


def spark_session(
    master: str = "local[*]", *, driver_memory: str = "2g", app_name: str = "claimradar"
):
    """The active Spark session, or a new one on `master`. A session already running keeps its
    own master (spark-submit's --master wins over the settings)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    spark = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.warehouse.dir", tempfile.mkdtemp(prefix="claimradar-spark-wh-"))
        .config("spark.driver.memory", driver_memory)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark
