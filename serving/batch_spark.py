"""Batch scoring on Spark (`claimradar score --engine spark`): the features built on Spark, scored
by the one scorer inside `mapInPandas`, ranked in the queue's order across the whole period, the
top explained, written as parquet partitioned by month.

Nothing of the scoring is re-implemented: each Arrow batch goes through the feature frame's own
dtype pass (features.assembly.finish_frame) and scoring.scorer.predict (risk, expected overbilled
amount, money at stake, band), scoring.ranking.queue_order and scoring.reasons (LightGBM's
pred_contrib reasons, rule hits), so a claim gets what `serving.batch.score_dataset` gives it.
What needs the whole period runs in Spark: the rank (a sort; ties in admission then claim order,
as the embedded scorer's frame is sorted) and the top-k% cut for the reasons.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from scoring.bundle import ModelBundle

KEEP = ("facility_id", "facility_level", "visit_type", "admitted_at", "fund_claimed")
SCORE_SCHEMA = (
    "claim_id string, risk_score double, expected_overbilled double, "
    "estimated_overbilled_if_abusive double, anomaly double, priority double, band string, "
    "queue double, rule_hits string, facility_id string, facility_level string, "
    "visit_type string, admitted_at timestamp_ntz, fund_claimed double"
)
REASON_SCHEMA = "claim_id string, reasons string"
_PID_SHIFT = 33  # monotonically_increasing_id: partition index above bit 33, row number below


def _json(items: list) -> str:
    return json.dumps(items, ensure_ascii=False)  # as serving.batch.write_scores


def _frame(batch: pd.DataFrame) -> pd.DataFrame:
    """A Spark batch of feature rows as the embedded feature frame (dtypes, order), with the
    facility-shift money kept when the batch has it."""
    from features.assembly import finish_frame

    frame = finish_frame(batch.drop(columns=["facility_shift"], errors="ignore"))
    if "facility_shift" not in batch.columns:
        return frame
    money = pd.Series(batch["facility_shift"].to_numpy("float64"), index=batch["claim_id"])
    shift = frame["claim_id"].map(money).fillna(0.0).rename("facility_shift")
    return pd.concat([frame, shift], axis=1)  # as early_warning.with_facility_shift


def _scorer(bundle: ModelBundle):
    def run(batches):
        from scoring.ranking import queue_order
        from scoring.reasons import rule_hits
        from scoring.scorer import predict

        for batch in batches:
            if batch.empty:
                continue
            frame = _frame(batch)
            out = predict(bundle, frame)
            out["queue"] = queue_order(out["band"].to_numpy(), out["priority"].to_numpy())
            out["rule_hits"] = [_json(h) for h in rule_hits(frame)]
            for c in KEEP:
                out[c] = frame[c].to_numpy()
            out["band"] = out["band"].astype(str)
            yield out

    return run


def _explainer(bundle: ModelBundle, top: int):
    def run(batches):
        from scoring.reasons import reasons
        from scoring.scorer import feature_matrix

        for batch in batches:
            if batch.empty:
                continue
            frame = _frame(batch)
            texts = reasons(bundle, frame, top, feature_matrix(bundle, frame))
            yield pd.DataFrame(
                {"claim_id": frame["claim_id"].to_numpy(), "reasons": [_json(r) for r in texts]}
            )

    return run


def rank_in_queue_order(scores):
    """`scores` with `rank` (1 = first in the queue): queue_order descending, ties in order of
    admission then claim id (the embedded frame's order). One distributed sort; the rank is each
    row's place within its sorted partition plus the rows of the partitions before it (a small
    count per partition), so no step gathers the period on one worker."""
    from pyspark.sql import functions as F

    keys = (
        scores.select("claim_id", "queue", "admitted_at")
        .orderBy(F.desc("queue"), F.asc("admitted_at"), F.asc("claim_id"))
        .select(
            "claim_id",
            F.spark_partition_id().alias("pid"),
            F.monotonically_increasing_id().alias("mid"),
        )
        .cache()
    )
    counts = sorted((r["pid"], r["count"]) for r in keys.groupBy("pid").count().collect())
    offsets, total = [], 0
    for pid, n in counts:
        offsets.append((pid, total))
        total += n
    spark = scores.sparkSession
    off = spark.createDataFrame(offsets or [(0, 0)], "pid int, offset long")
    ranked = keys.join(F.broadcast(off), "pid").select(
        "claim_id",
        (F.col("offset") + F.col("mid") - F.shiftleft(F.col("pid").cast("long"), _PID_SHIFT) + 1)
        .cast("long")
        .alias("rank"),
    )
    return scores.join(ranked, "claim_id")


def score_features_spark(
    features,
    bundle: ModelBundle,
    version: str,
    *,
    shift=None,
    explain_top: float | None = None,
    explain_bands: tuple[str, ...] = ("high", "review"),
    top_reasons: int = 5,
):
    """Scores of a Spark DataFrame of feature rows (features.pipeline's columns), as a Spark
    DataFrame: the embedded scorer's columns (reasons and rule hits as JSON text, as
    `write_scores` writes them) plus the five claim columns `score_dataset` keeps. `shift`: a
    Spark DataFrame (claim_id, facility_shift) of the early warning's money, 0 where absent.
    Reasons for the top `explain_top`% of the queue, else for the claims in `explain_bands`."""
    from pyspark.sql import functions as F

    if shift is not None:
        features = features.join(shift, "claim_id", "left").fillna(0.0, ["facility_shift"])
    scores = features.mapInPandas(_scorer(bundle), SCORE_SCHEMA).cache()  # read twice
    scores = rank_in_queue_order(scores)
    if explain_top is not None:
        n = scores.count()
        pick = scores.filter(F.col("rank") <= max(1, math.ceil(n * explain_top / 100)))
    else:
        pick = scores.filter(F.col("band").isin(list(explain_bands)))
    chosen = features.join(pick.select("claim_id"), "claim_id", "left_semi")
    why = chosen.mapInPandas(_explainer(bundle, top_reasons), REASON_SCHEMA)
    scored_at = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    out = scores.join(why, "claim_id", "left").select(
        "claim_id", "risk_score", "expected_overbilled", "estimated_overbilled_if_abusive",
        "anomaly", "priority", "band", "rank",
        F.coalesce(F.col("reasons"), F.lit("[]")).alias("reasons"),
        "rule_hits",
        F.lit(str(version)).alias("model_version"),
        F.lit(scored_at).alias("scored_at"),
        *KEEP,
    )  # fmt: skip
    return out


def score_dataset_spark(
    dataset: Path,
    bundle: ModelBundle,
    version: str,
    out: Path,
    *,
    since: str | None = None,
    explain_top: float | None = None,
    features: Path | None = None,
) -> dict[str, int]:
    """`claimradar score --engine spark`: features on Spark (the active session, see
    features.spark_session), scored and ranked there, written to `out` as parquet partitioned by
    admission month (month=YYYY-MM), MA_LK at the edge, each month's rows in rank order.
    `features`: a feature parquet file or folder (`claimradar features`) scored instead of
    building the features (`since` then does not apply). Returns the claims per band."""
    from pyspark.sql import functions as F

    from features.engine import Engine
    from features.pipeline import feature_expression

    dataset = Path(dataset)
    with Engine.connect("spark") as eng:
        spark = eng.spark
        if features is not None:
            rows = spark.read.parquet(str(features))
        else:
            expr = feature_expression(eng, dataset, since=since)
            # computed once and cut from its plan: the feature plan is thousands of nodes, and
            # every later stage would carry (and describe) it again (the driver ran out of heap)
            rows = spark.table(eng.materialize("features", expr).get_name()).localCheckpoint()
        shift = None
        if bundle.rank_weights.get("facility_shift", 0) > 0:
            shift = facility_shift_frame(spark, dataset)
        scored = score_features_spark(rows, bundle, version, shift=shift, explain_top=explain_top)
        scored = scored.withColumnRenamed("claim_id", "MA_LK").withColumn(
            "month", F.date_format("admitted_at", "yyyy-MM")
        )
        (
            scored.repartition("month")
            .sortWithinPartitions("month", "rank")  # the writer keeps this order
            .write.mode("overwrite")
            .partitionBy("month")
            .parquet(str(out))
        )
    bands = pd.read_parquet(out, columns=["band"])["band"].value_counts()
    return {str(k): int(v) for k, v in bands.items()}


def facility_shift_frame(spark, dataset: Path):
    """The early warning's facility-shift money per claim (features.early_warning.shift_evidence:
    only claims of warned facility-months) as a Spark DataFrame (claim_id, facility_shift). The
    period is summed on the executors; only the warned facility-months' claims reach the driver
    (features.early_warning_spark.shift_evidence_spark)."""
    from features.early_warning_spark import shift_evidence_spark

    money = shift_evidence_spark(spark, Path(dataset))[["claim_id", "facility_shift"]]
    money = money.astype({"claim_id": "str", "facility_shift": "float64"})
    return spark.createDataFrame(money, "claim_id string, facility_shift double")


def read_scores(out: Path) -> pd.DataFrame:
    """A Spark scores folder as one frame in queue order (claim_id as the scorer names it)."""
    df = pd.read_parquet(out).rename(columns={"MA_LK": "claim_id"})
    df["month"] = df["month"].astype(str)
    return df.sort_values("rank").reset_index(drop=True)
