"""`claimradar train`: features -> time split -> model and baselines -> metrics, plots, model card
-> MLflow run and registry (alias `challenger`)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd

from contract.schema import SCHEMA_VERSION
from scoring.bundle import ModelBundle
from scoring.ranking import queue_order
from scoring.scorer import predict
from training import baselines, plots, tracking
from training.config import TrainConfig, load_config
from training.data import Split, attach_targets, load_truth, time_split
from training.evaluate import ranking_metrics, recall_by_group
from training.models import fit_bundle

Progress = Callable[[str, float], None]


@dataclass
class TrainResult:
    run_id: str
    version: int | None
    metrics: dict[str, float]
    table: pd.DataFrame  # model and baselines x metrics, on validation and holdout
    per_scheme: pd.DataFrame
    card_path: Path | None = None
    extras: dict = field(default_factory=dict)


# the claim columns the baselines read beside the features (all that training reads of claims)
EXTRA_CLAIM_COLUMNS = (
    "primary_icd", "total_drugs", "total_supplies", "patient_copay", "patient_self_pay",
    "treatment_days",
)  # fmt: skip


def _pruned_tables(dataset: Path) -> dict[str, pd.DataFrame]:
    """The columns feature_frame reads beside the feature pipeline (which reads the files
    itself, column-pruned): claim ids and the baseline columns, line claim ids for the counts.
    Never the whole tables (names, card numbers and every line field of the period)."""
    import pyarrow.parquet as pq

    folder = Path(dataset)
    want = {
        "claims": ("claim_id", *EXTRA_CLAIM_COLUMNS),
        "drug_lines": ("claim_id",),
        "service_lines": ("claim_id",),
    }
    out = {}
    for name, cols in want.items():
        path = folder / f"{name}.parquet"
        if path.exists():
            have = set(pq.read_schema(path).names)
            out[name] = pd.read_parquet(path, columns=[c for c in cols if c in have])
    return out


def feature_frame(dataset: Path, tables: dict | None = None) -> pd.DataFrame:
    """The feature pipeline's frame plus the few claim columns baselines need. Without `tables`
    the dataset's files are read column-pruned (what training at national size needs)."""
    from features.pipeline import build_features

    if tables is None:
        # DuckDB reads the parquet files, pruned, its stages on disk
        frame = build_features(Path(dataset), out_of_core=True)
        tables, shift_source = _pruned_tables(dataset), Path(dataset)
    else:
        frame = build_features(tables)
        shift_source = tables
    claims = tables["claims"].set_index("claim_id")
    extra = {}
    for col in EXTRA_CLAIM_COLUMNS:
        if col not in frame.columns:
            extra[col] = frame["claim_id"].map(claims[col])
    for name, table in (("n_drug_lines", "drug_lines"), ("n_service_lines", "service_lines")):
        if name not in frame.columns:
            counts = tables[table].groupby("claim_id").size()
            extra[name] = frame["claim_id"].map(counts).fillna(0)
    if "visit_type_code" not in frame.columns:
        extra["visit_type_code"] = pd.to_numeric(frame["visit_type"], errors="coerce")
    frame = pd.concat([frame, pd.DataFrame(extra, index=frame.index)], axis=1)
    from features.early_warning import with_facility_shift

    return with_facility_shift(frame, shift_source)


def _evaluate(
    name: str, priority: np.ndarray, frame: pd.DataFrame, risk: np.ndarray | None = None
) -> dict[str, float]:
    return ranking_metrics(priority, frame["y"].to_numpy(), frame["target_amount"].to_numpy(), risk)


def _with_targets(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    if "true_abuse" in out.columns:
        out["y"], out["target_amount"] = out["true_abuse"], out["true_overbilled"]
    else:
        out["y"] = out["label"].fillna(0).astype(int)
        out["target_amount"] = out["rejected_amount"].fillna(0.0)
    return out


def train(
    dataset: Path,
    *,
    cutoff: str | None = None,
    labels: Path | None = None,
    config: Path | None = None,
    tracking_uri: str,
    artifact_root: Path,
    models_dir: Path | None = None,
    progress: Progress | None = None,
    register: bool = True,
) -> TrainResult:
    step = progress or (lambda name, frac: None)
    cfg = load_config(config)
    dataset = Path(dataset)
    step("features", 0.05)
    with tempfile.TemporaryDirectory(prefix="claimradar-train-") as tmp:
        # the serving snapshot first, alone in memory: built at the end, its history frame met the
        # split frames (the peak of training at a million claims)
        snapshot = Path(tmp) / "snapshot"
        _save_snapshot(dataset, _data_end(dataset), snapshot)
        bundle, split, names = _fit(dataset, cfg, cutoff, labels, step)
        step("baselines", 0.6)
        table, per_scheme, per_level = _metrics_table(bundle, split, names, cfg)
        metrics = _flatten(table)
        bundle.meta = {
            **bundle.meta,  # the queue's fit on the validation months (training.queue_fit)
            "data_window": split.window(),
            "holdout_source": split.holdout_source,
            "schema_version": SCHEMA_VERSION,
            "rows": {k: len(getattr(split, k)) for k in ("train", "val", "holdout")},
            "metrics": metrics,
            "config": cfg.model_dump(),
        }
        step("mlflow", 0.8)
        run_id, version, card = _log_run(
            bundle, split, names, cfg, dataset, snapshot, (table, per_scheme, per_level),
            tracking_uri, artifact_root, register,
        )  # fmt: skip
    card_path = None
    if models_dir is not None:
        models_dir.mkdir(parents=True, exist_ok=True)
        card_path = models_dir / f"{tracking.MODEL_NAME}-v{version or 'unregistered'}.md"
        card_path.write_text(card.replace("{version}", str(version)))
    step("done", 1.0)
    return TrainResult(run_id, version, metrics, table, per_scheme, card_path)


def _data_end(dataset: Path) -> pd.Timestamp:
    """The day after the last admission: serving's snapshot holds the profiles as of then."""
    adm = pd.read_parquet(dataset / "claims.parquet", columns=["admitted_at"])["admitted_at"]
    last = pd.to_datetime(adm, errors="coerce").max()
    if pd.isna(last):
        raise ValueError(f"{dataset}: no claim with an admission date to train on")
    return last.normalize() + pd.Timedelta(days=1)


def _fit(dataset: Path, cfg: TrainConfig, cutoff, labels, step) -> tuple[ModelBundle, Split, list]:
    """The feature frame, its targets and time split, and the bundle fit on it."""
    from features.registry import feature_names

    # the files are read column-pruned where they are used (features, labels, the snapshot), never
    # held whole: memory grows with the feature frame, not with every table of the period
    frame = feature_frame(dataset)
    label_table = None
    if (dataset / "labels.parquet").exists():
        label_table = pd.read_parquet(dataset / "labels.parquet")
    if labels is not None:
        from contract.ingest import read_tabular_file
        from contract.schema import LABELS
        from contract.validate import check_table

        raw = read_tabular_file(Path(labels), LABELS)
        label_table = check_table(raw, LABELS).frame
    frame = attach_targets(frame, label_table, load_truth(dataset))
    split = time_split(frame, cutoff, cfg.val_months, cfg.holdout_months)
    names = [n for n in feature_names() if n in frame.columns]
    anomaly = anomaly_features(names)
    population = frame[frame["discharged_at"] < split.cutoff]
    del frame  # the split and the population are copies: the whole frame is not needed again
    step("model", 0.3)
    bundle = fit_bundle(split.train, split.val, split.val_all, population, names, anomaly, cfg)
    return bundle, split, names


def _log_run(
    bundle, split, names, cfg, dataset, snapshot, tables, tracking_uri, artifact_root, register
) -> tuple[str, int | None, str]:
    """The run in MLflow (parameters, metrics, the bundle with its snapshot, tables, plots, the
    model and its card), registered as the challenger. Returns run id, version and the card."""
    import shutil

    table, per_scheme, per_level = tables
    metrics = bundle.meta["metrics"]
    client = tracking.connect(tracking_uri, artifact_root)
    with mlflow.start_run(run_name=f"train cutoff {split.cutoff:%Y-%m-%d}") as run:
        mlflow.log_params({**_params(cfg, split, names), "data.path": str(dataset.resolve())})
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        _log_queue_fit(bundle)
        mlflow.set_tags({"schema_version": SCHEMA_VERSION, "holdout_source": split.holdout_source})
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            bdir = bundle.save(tmp / "bundle")
            shutil.move(str(snapshot), str(bdir / "snapshot"))
            mlflow.log_artifacts(str(bdir), artifact_path="bundle")
            (tmp / "features.json").write_text(json.dumps(names, indent=1))
            mlflow.log_artifact(str(tmp / "features.json"))
            table.to_csv(tmp / "metrics_table.csv")
            per_scheme.to_csv(tmp / "recall_per_scheme.csv", index=False)
            per_level.to_csv(tmp / "recall_per_level.csv", index=False)
            for f in ("metrics_table.csv", "recall_per_scheme.csv", "recall_per_level.csv"):
                mlflow.log_artifact(str(tmp / f))
            hold = split.holdout
            scored = predict(bundle, hold)
            for fig_name, fig in plots.all_plots(bundle, hold, scored).items():
                fig.savefig(tmp / fig_name, dpi=90, bbox_inches="tight")
                plt.close(fig)
                mlflow.log_artifact(str(tmp / fig_name), artifact_path="plots")
            _log_model(bundle, split.train)
            card = model_card(bundle, table, per_scheme, per_level, split)
            (tmp / "model_card.md").write_text(card)
            mlflow.log_artifact(str(tmp / "model_card.md"))
        version = None
        if register:
            mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", tracking.MODEL_NAME)
            version = int(mv.version)
            client.set_registered_model_alias(tracking.MODEL_NAME, "challenger", str(version))
            client.set_model_version_tag(
                tracking.MODEL_NAME,
                str(version),
                "holdout_amount_top5pct",
                f"{metrics.get(tracking.HEADLINE, float('nan')):.4f}",
            )
    return run.info.run_id, version, card


def anomaly_features(names: list[str]) -> list[str]:
    """Inputs of the unsupervised component: the claim's deviations from its peers and its
    facility's and clinician's deviations from theirs (ratios and robust z-scores)."""
    from features.registry import FEATURES

    return [
        n
        for n in names
        if FEATURES[n].group in ("peer", "facility", "clinician", "patient")
        and FEATURES[n].unit in ("ratio", "z", "share", "count", "per day")
        and not FEATURES[n].categorical
    ]


def _metrics_table(
    bundle: ModelBundle, split: Split, names: list[str], cfg: TrainConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    train_l = split.train
    scorers = {
        "rules_only": baselines.rules_only(train_l),
        "cost_outlier": baselines.cost_outlier(split.train),
        "logistic": baselines.logistic(train_l, names, cfg.seed),
        "raw_lightgbm": baselines.raw_lightgbm(train_l, cfg.seed),
    }
    rows = {}
    per_scheme = pd.DataFrame()
    per_level = pd.DataFrame()
    for part, df in (("val", _with_targets(split.val_all)), ("holdout", split.holdout)):
        if df.empty:
            continue
        s = predict(bundle, df)
        rows[(part, "model")] = _evaluate(
            "model", queue_order(s["band"], s["priority"]), df, s["risk_score"].to_numpy()
        )
        for name, scorer in scorers.items():
            rows[(part, name)] = _evaluate(name, scorer(df), df)
        if part == "holdout":
            if "scheme" in df.columns:
                per_scheme = recall_by_group(
                    queue_order(s["band"], s["priority"]), df["y"].to_numpy(), df["scheme"], 5.0
                )
            if "facility_level" in df.columns:
                per_level = recall_by_group(
                    queue_order(s["band"], s["priority"]),
                    df["y"].to_numpy(),
                    df["facility_level"].astype(str),
                    5.0,
                )
    table = pd.DataFrame(rows).T
    table.index.names = ["split", "ranker"]
    return table, per_scheme, per_level


def _flatten(table: pd.DataFrame) -> dict[str, float]:
    return {
        f"{part}_{ranker}_{metric}": float(v)
        for (part, ranker), row in table.iterrows()
        for metric, v in row.items()
        if np.isfinite(v)
    }


def _params(cfg: TrainConfig, split: Split, names: list[str]) -> dict[str, str]:
    flat = pd.json_normalize(cfg.model_dump(), sep=".").iloc[0].to_dict()
    out = {f"config.{k}": str(v) for k, v in flat.items()}
    out.update({f"window.{k}": v for k, v in split.window().items()})
    out.update(
        {
            "rows.train": str(len(split.train)),
            "rows.val": str(len(split.val)),
            "rows.holdout": str(len(split.holdout)),
            "features.count": str(len(names)),
            "schema_version": SCHEMA_VERSION,
        }
    )
    return out


def _log_queue_fit(bundle: ModelBundle) -> None:
    """The queue's fitted order in the run: the weights learned on the validation months, the
    head cut, and every grid setting's validation figures (training.queue_fit)."""
    mlflow.log_params(
        {f"queue.weight.{k}": str(v) for k, v in bundle.rank_weights.items()}
        | {"queue.head_expected": str(bundle.head_expected)}
        | {"queue.head_risk": str(bundle.head_risk)}
        | {"queue.head_rules": ",".join(bundle.head_rules) or "none"}
    )
    if bundle.meta.get("queue_fit"):
        mlflow.log_table(pd.DataFrame(bundle.meta["queue_fit"]), "queue_fit.json")


def _save_snapshot(dataset: Path, cutoff: pd.Timestamp, folder: Path) -> None:
    from features.pipeline import build_snapshot

    build_snapshot(dataset, cutoff).save(folder)  # DuckDB reads the files, column-pruned


def _log_model(bundle: ModelBundle, train: pd.DataFrame) -> None:
    import lightgbm
    import mlflow.lightgbm
    from mlflow.models import infer_signature

    example = pd.DataFrame(bundle.matrix(train.head(5)), columns=bundle.feature_names)
    signature = infer_signature(example, bundle.risk.predict(example.to_numpy()))
    mlflow.lightgbm.log_model(
        bundle.risk,
        name="model",
        signature=signature,
        input_example=example,
        pip_requirements=[f"lightgbm=={lightgbm.__version__}", f"pandas=={pd.__version__}"],
    )


def model_card(
    bundle: ModelBundle,
    table: pd.DataFrame,
    per_scheme: pd.DataFrame,
    per_level: pd.DataFrame,
    split: Split,
) -> str:
    w = split.window()
    head = [
        f"# {tracking.MODEL_NAME} version {{version}}",
        "",
        "## Intended use",
        "Ranks health-insurance claims (XML 130) for verification officers by expected overbilled",
        "amount, with reasons. A decision aid: every rejection is an officer's decision.",
        "",
        "## Data window",
        f"- trained on claims discharged before {w['train_until']} with labels decided before "
        f"{w['cutoff']}",
        f"- validated (early stopping, calibration, bands) on {w['val_from']} to {w['cutoff']}",
        f"- holdout: {w['cutoff']} to {w['holdout_until']} ({split.holdout_source})",
        f"- rows: train {len(split.train):,}, validation {len(split.val):,}, "
        f"holdout {len(split.holdout):,}; features {len(bundle.feature_names)}; "
        f"schema {SCHEMA_VERSION}",
        "",
        "## Metrics (holdout and validation; model against baselines)",
        "",
        table.round(4).to_markdown(),
        "",
    ]
    if len(per_scheme):
        head += [
            "## Recall in the top 5% per scheme (holdout)",
            "",
            per_scheme.round(3).to_markdown(index=False),
            "",
        ]
    if len(per_level):
        head += [
            "## Recall in the top 5% per facility level (holdout)",
            "",
            per_level.round(3).to_markdown(index=False),
            "",
        ]
    head += [
        "## Known limits",
        "- Labels come from past reviews, which favoured expensive, rule-flagged claims: the",
        "  risk model inherits that bias; the anomaly component surfaces what reviews missed.",
        "- Schemes absent from the labels are found only through rules, peer deviations and the",
        "  facility early warning, each entering the queue as money at stake with the weights "
        f"{bundle.rank_weights};",
        "  a scheme that leaves costs and volumes near the peers' (e.g. upcoding, drug padding)",
        "  is not found that way.",
        "- Amounts are estimates of the overbilled share; the officer's decision sets the amount.",
        "",
    ]
    return "\n".join(head)
