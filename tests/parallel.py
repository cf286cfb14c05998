"""The suite on two workers (pytest-xdist; `-n 2 --dist loadfile` in pyproject.toml's addopts).

Each test file runs whole on one worker, in its order, so module fixtures (a service, a browser, a
world) are built once. The Spark files form one unit: one Spark JVM per run. The long units are
given out first (longest first), so that no long file starts last while the other worker idles;
a unit not listed in WEIGHTS weighs one second a test. The weights are a file's seconds in a
loaded two-worker run (`--durations=0`, set-up and call summed); a stale weight only changes the
order, never what runs. `pytest -n 0` runs everything in one process, as before.

What both workers need and is costly to build (the 12,000-claim world, the trained model, the
scored world) is built once per run by whichever worker asks first (`shared`, tests/conftest.py);
PostgreSQL and Redis servers, CLAIMRADAR_HOME and ports are each worker's own."""

from __future__ import annotations

from xdist.scheduler import LoadFileScheduling

SPARK = "spark"
SPARK_FILES = {
    "tests/contract/test_ingest_spill.py", "tests/contract/test_ingest_streaming.py",
    "tests/features/test_early_warning_spark.py", "tests/features/test_parity_spark.py",
    "tests/scoring/test_score_spark.py",
}  # fmt: skip
WEIGHTS = {
    "tests/serving/test_store_interrupted_fill.py": 330,
    SPARK: 290,
    "tests/claimradar/test_demo.py": 135,
    "tests/serving/test_review_store.py": 85,
    "tests/features/test_pipeline.py": 85,
    "tests/serving/test_service_http.py": 75,
    "tests/features/test_online_state.py": 70,
    "tests/serving/test_online.py": 70,
    "tests/browser/test_review_browser.py": 55,
    "tests/serving/test_online_records.py": 55,
    "tests/serving/test_month_close.py": 50,
    "tests/features/test_early_warning.py": 45,
    "tests/serving/test_fuzz_api.py": 40,
    "tests/serving/test_packaging.py": 35,
    "tests/monitoring/test_monitor.py": 35,
    "tests/serving/test_shadow.py": 30,
    "tests/training/test_notebook_report.py": 30,
    "tests/serving/test_review_durability.py": 30,
    "tests/contract/test_ingest_small_files.py": 30,
    "tests/contract/test_validate_rows.py": 25,
    "tests/training/test_train.py": 25,
    "tests/claimradar/test_settings.py": 25,
}


class Plan(LoadFileScheduling):
    """loadfile, with the Spark files as one unit and the long units first."""

    ordered = False

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return SPARK if path in SPARK_FILES else path

    def _assign_work_unit(self, node) -> None:
        if not self.ordered:  # the first call, once every worker has collected
            units = sorted(self.workqueue.items(), key=lambda u: -WEIGHTS.get(u[0], len(u[1])))
            self.workqueue.clear()
            self.workqueue.update(units)
            self.ordered = True
        super()._assign_work_unit(node)
