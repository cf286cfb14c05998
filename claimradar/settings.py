"""One typed settings object for the whole project: defaults < settings file < environment.

Nothing happens at import: paths are computed and folders created only when asked for.
Environment variables use the prefix ``CLAIMRADAR_`` (``CLAIMRADAR_HOME``,
``CLAIMRADAR_DATABASE_URL``...). The settings file is ``claimradar.toml`` in the working
directory, or the path in ``CLAIMRADAR_CONFIG``.
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# The development key is public: it only keeps demo data pseudonymous. Production sets its own.
DEV_LINKAGE_KEY = "claimradar-dev-linkage-key-not-secret"


def project_root() -> Path:
    """The checkout this package runs from (editable install), else the working directory."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def _config_file() -> Path:
    return Path(os.environ.get("CLAIMRADAR_CONFIG", "claimradar.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLAIMRADAR_", extra="forbid")

    home: Path = Field(
        default_factory=lambda: project_root() / ".claimradar",
        description="Local data: datasets, the case store, the BentoML home.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking store; default sqlite under mlflow/."
    )
    mlflow_artifact_root: Path | None = Field(
        default=None, description="Where MLflow keeps artifacts; default mlflow/artifacts."
    )
    database_url: str | None = Field(
        default=None, description="Case-store database URL; default a SQLite file under home."
    )
    bentoml_home: Path | None = Field(
        default=None, description="BENTOML_HOME; default home/bentoml"
    )
    linkage_key: SecretStr = Field(
        default=SecretStr(DEV_LINKAGE_KEY),
        description="Key of the keyed hash that links people and cards without storing them.",
    )
    # Ingest hardening limits.
    max_file_bytes: int = Field(default=4 * 1024**3, description="Largest input file accepted.")
    max_depth: int = Field(default=32, description="Deepest element nesting accepted in XML.")
    max_field_chars: int = Field(default=65_536, description="Longest field value accepted.")
    max_table_bytes: int = Field(
        default=64 * 1024**2, description="Largest decoded table document inside one dossier."
    )
    ingest_chunk_claims: int = Field(
        default=2_000, description="Claims held in memory before a chunk is written."
    )
    ingest_workers: int = Field(
        default=2, description="Processes parsing envelope files or validating tabular partitions."
    )
    spark_master: str = Field(
        default="local[*]",
        description="Spark master of the --engine spark commands: local[*] on one machine, a "
        "cluster URL (spark://host:7077, yarn, k8s://...) in production; a session already "
        "running (spark-submit) keeps its own.",
    )
    spark_driver_memory: str = Field(default="2g", description="Spark driver memory (local mode).")
    # The scoring service and the review UI.
    api_max_claims: int = Field(default=1_000, description="Most claims in one POST /score.")
    api_max_xml_bytes: int = Field(
        default=32 * 1024**2, description="Largest envelope accepted by POST /score_xml."
    )
    api_max_body_bytes: int = Field(
        default=32 * 1024**2,
        description="Largest request body accepted by POST /score (refused with 413 before "
        "parsing; /score_xml allows twice api_max_xml_bytes, for base64).",
    )
    api_max_dossiers: int = Field(
        default=1_000, description="Most dossiers (HOSO) in one POST /score_xml envelope."
    )
    api_max_lines_per_claim: int = Field(
        default=500, description="Most drug lines, and most service lines, of one claim."
    )
    api_clock_skew_hours: float = Field(
        default=24.0,
        description="Admission/discharge times later than now plus this are refused.",
    )
    model_poll_seconds: float = Field(
        default=10.0, description="How often the service looks for a newly promoted champion."
    )
    online_store: str = Field(
        default="memory",
        description="Where the service remembers scored claims for later claims' features: "
        "`memory` (each process its own) or redis://host:port/db (shared by every replica, "
        "kept across restarts and model swaps).",
    )
    scoring_telemetry: bool = Field(
        default=False,
        description="BentoML's access-log line and OpenTelemetry span for every request to the "
        "scoring routes (/score, /score_xml). Off: at intake rates they cost ~8% of a worker's CPU "
        "a one-claim request, and every scored claim is recorded with its caller in the case "
        "store and counted in /metrics; the other routes are logged and traced as before.",
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs review sessions; replicas must share it. Default: a random "
        "key kept in $CLAIMRADAR_HOME/session.key.",
    )
    data_key: SecretStr | None = Field(
        default=None,
        description="Key (32 bytes, URL-safe base64) that seals the identity fields of cases in "
        "the case store; keep it apart from the database and its backups. Default: a random key "
        "kept in $CLAIMRADAR_HOME/data.key.",
    )
    secure_cookies: bool = Field(
        default=True, description="Session cookies only over HTTPS (off for a local demo)."
    )
    approval_amount: float = Field(
        default=5_000_000.0,
        description="Rejections above this amount (VND) wait for a supervisor's approval.",
    )
    # The review UI's bounds (serving/review, docs/review.md).
    review_page_size: int = Field(
        default=50, ge=1, le=500, description="Cases on one page of the review queue."
    )
    review_export_rows: int = Field(
        default=100_000, ge=1, description="Most rows of one queue export (CSV, Excel)."
    )
    review_max_form_bytes: int = Field(
        default=2_000_000, ge=1_024, description="Largest posted review form (413 unread)."
    )
    review_max_form_fields: int = Field(
        default=20_000, ge=10, description="Most fields of a posted form (a case line posts two)."
    )
    review_max_login_bytes: int = Field(
        default=16_384, ge=256, description="Largest sign-in form (read before any sign-in)."
    )
    # Monitoring (`claimradar monitor`, issue 16): where reports go and when a change alerts.
    monitoring_dir: Path | None = Field(
        default=None, description="Monitoring reports (JSON, HTML); default home/monitoring."
    )
    monitor_psi_min: float = Field(
        default=0.02, description="A model input drifts only from this PSI on..."
    )
    monitor_drift_ratio: float = Field(
        default=2.5, description="...and from this multiple of the training months' own PSI."
    )
    monitor_p_value: float = Field(
        default=0.01, description="...with its test (KS, chi-square, z) rejecting at this level."
    )
    monitor_min_drifted_features: int = Field(
        default=2, description="Drifted claim-level inputs that raise a feature-drift alert."
    )
    monitor_score_psi_min: float = Field(default=0.1, description="Least PSI of a score alert.")
    monitor_band_psi_min: float = Field(default=0.05, description="Least PSI of a band alert.")
    monitor_rule_share_min: float = Field(
        default=0.005, description="Least change of the share of claims a rule flags."
    )
    monitor_rejection_rate: float = Field(
        default=0.02, description="Share of refused claims in a month that raises an alert."
    )
    monitor_facility_rejection_rate: float = Field(
        default=0.10, description="Share of one facility's claims refused that raises an alert."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    # Resolved values (defaults that depend on other settings).
    # Standard variables of the ecosystems are honoured when ours are not set: MLflow's
    # MLFLOW_TRACKING_URI (the registry lives in the same store) and BentoML's BENTOML_HOME.
    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        return f"sqlite:///{project_root() / 'mlflow' / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.mlflow_artifact_root or project_root() / "mlflow" / "artifacts"

    @property
    def case_store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'claimradar.db'}"

    @property
    def monitor_dir(self) -> Path:
        return self.monitoring_dir or self.home / "monitoring"

    @property
    def bento_home(self) -> Path:
        if self.bentoml_home:
            return self.bentoml_home
        if os.environ.get("BENTOML_HOME"):
            return Path(os.environ["BENTOML_HOME"])
        return self.home / "bentoml"

    def review_secret(self) -> str:
        """The session signing key: set, or created once under the home folder (0600)."""
        if self.session_secret is not None:
            return self.session_secret.get_secret_value()
        import secrets

        return _key_file(self.ensure_home() / "session.key", lambda: secrets.token_urlsafe(48))

    def data_secret(self) -> str:
        """The data key: set, or created once under the home folder (0600)."""
        if self.data_key is not None:
            return self.data_key.get_secret_value()
        from serving.sealing import new_key

        return _key_file(self.ensure_home() / "data.key", new_key)

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def request_limits(settings: Settings):
    """The scoring API's limits while reading a request (serving.limits.RequestLimits)."""
    from datetime import timedelta

    from serving.limits import RequestLimits

    return RequestLimits(
        max_dossiers=settings.api_max_dossiers,
        max_lines_per_claim=settings.api_max_lines_per_claim,
        clock_skew=timedelta(hours=settings.api_clock_skew_hours),
    )


def review_options(settings: Settings) -> dict:
    """The review UI's options from the settings (serving.review.create_review_app keywords)."""
    return {
        "secure_cookies": settings.secure_cookies,
        "approval_threshold": settings.approval_amount,
        "per_page": settings.review_page_size,
        "export_rows": settings.review_export_rows,
        "max_form_bytes": settings.review_max_form_bytes,
        "max_form_fields": settings.review_max_form_fields,
        "max_login_bytes": settings.review_max_login_bytes,
    }


def body_limits(settings: Settings) -> dict[str, int]:
    """Most request-body bytes per route (base64 envelopes are 4/3 of what they carry)."""
    return {"/score": settings.api_max_body_bytes, "/score_xml": 2 * settings.api_max_xml_bytes}


def ingest_limits(settings: Settings):
    """The ingest hardening limits (contract.ingest.Limits) these settings ask for."""
    from contract.ingest import Limits

    return Limits(
        settings.max_file_bytes,
        settings.max_depth,
        settings.max_field_chars,
        settings.max_table_bytes,
        settings.ingest_chunk_claims,
        settings.ingest_workers,
    )


def spark_session(settings: Settings, app_name: str = "claimradar"):
    """The Spark session of the --engine spark commands, on `spark_master` (or the session a
    spark-submit driver already runs)."""
    from features.spark_session import spark_session as start

    return start(
        settings.spark_master, driver_memory=settings.spark_driver_memory, app_name=app_name
    )


def monitor_thresholds(settings: Settings):
    """The monitoring alert thresholds (monitoring.Thresholds) these settings ask for."""
    from monitoring import Thresholds

    return Thresholds(
        psi_min=settings.monitor_psi_min,
        drift_ratio=settings.monitor_drift_ratio,
        p_value=settings.monitor_p_value,
        min_drifted_features=settings.monitor_min_drifted_features,
        score_psi_min=settings.monitor_score_psi_min,
        band_psi_min=settings.monitor_band_psi_min,
        rule_share_min=settings.monitor_rule_share_min,
        rejection_rate=settings.monitor_rejection_rate,
        facility_rejection_rate=settings.monitor_facility_rejection_rate,
    )


def _key_file(path: Path, make) -> str:
    """A key kept in a file (0600), created once: written whole to a private temporary file and
    linked into place, so workers starting together all read the one key that won, never an
    empty or half-written file."""
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(make())
            with contextlib.suppress(FileExistsError):  # another process linked its key first
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()
