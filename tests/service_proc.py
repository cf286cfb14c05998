"""A real claimradar service (`claimradar serve`, i.e. `bentoml serve`) on a loopback port, over a
COPY of a test MLflow store (tests may promote in it) and a fresh case store."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from serving.process import Service, start


@dataclass
class TestService:
    svc: Service
    home: Path
    tracking_uri: str
    artifact_root: Path
    case_store_url: str

    def __getattr__(self, name):
        return getattr(self.svc, name)


def start_service(
    root: Path,
    tracking_db: Path,
    artifact_root: Path,
    env: dict | None = None,
    bento: str | None = None,
) -> TestService:
    root.mkdir(parents=True, exist_ok=True)
    db = root / "mlflow.db"
    shutil.copy(tracking_db, db)
    home = root / "home"
    settings = {
        "CLAIMRADAR_HOME": str(home),
        "CLAIMRADAR_MLFLOW_TRACKING_URI": f"sqlite:///{db}",
        "CLAIMRADAR_MLFLOW_ARTIFACT_ROOT": str(artifact_root),
        "CLAIMRADAR_DATABASE_URL": f"sqlite:///{home / 'cases.db'}",
        "CLAIMRADAR_MODEL_POLL_SECONDS": "1",
        "CLAIMRADAR_SECURE_COOKIES": "false",
        **(env or {}),
    }
    # the test data is ingested with the public development linkage key: --demo allows it
    svc = start(settings, root / "service.log", key_name="tests", bento=bento, demo=True)
    return TestService(
        svc, home, settings["CLAIMRADAR_MLFLOW_TRACKING_URI"], artifact_root,
        settings["CLAIMRADAR_DATABASE_URL"],
    )  # fmt: skip
