"""Model commands: train, promote, models, score, close-month."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from claimradar.cli.common import _fail, _print_frame, _store, app, progress_bar


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="A canonical dataset folder (from ingest).")],
    cutoff: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD; default: 3 months before the data's end.")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Labels file (labels format); default DATA's labels.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Training config (TOML); default configs/train.toml.")
    ] = None,
    tune: Annotated[int, typer.Option(help="Optuna trials over time-based folds (0 = off).")] = 0,
) -> None:
    """Train the risk and amount models with baselines; log to MLflow; register a challenger."""
    from claimradar.settings import get_settings, project_root
    from scoring.registry import MODEL_NAME
    from training.train import train as run_train

    s = get_settings()
    if tune:
        from training.tune import tune as run_tune

        config = run_tune(
            data,
            cutoff=cutoff,
            trials=tune,
            config=config,
            tracking_uri=s.tracking_uri,
            artifact_root=s.artifact_root,
        )
    with progress_bar("train") as update:
        result = run_train(
            data,
            cutoff=cutoff,
            labels=labels,
            config=config,
            tracking_uri=s.tracking_uri,
            artifact_root=s.artifact_root,
            models_dir=project_root() / "models",
            progress=lambda name, f: update(int(f * 100), 100),
        )
    cols = ["amount_top1pct", "amount_top5pct", "precision_top5pct", "average_precision", "roc_auc"]
    table = result.table.reset_index()
    _print_frame("metrics", table[["split", "ranker", *cols]].round(3))
    if len(result.per_scheme):
        _print_frame("recall in the top 5% per scheme (holdout)", result.per_scheme.round(3))
    typer.echo(
        f"trained run {result.run_id}, registered {MODEL_NAME} v{result.version} as challenger; "
        f"model card -> {result.card_path}"
    )


@app.command()
def promote(
    version: Annotated[
        int | None, typer.Option(help="Version to promote (default challenger).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Promote without comparing.")] = False,
    data: Annotated[
        Path | None, typer.Option(help="Dataset to re-evaluate on (default the challenger's).")
    ] = None,
    live: Annotated[
        bool,
        typer.Option(help="Gate on the live comparison in the case store (claimradar compare)."),
    ] = False,
    min_decided: Annotated[
        int, typer.Option(help="With --live: decided cases the comparison needs.")
    ] = 30,
) -> None:
    """Make the challenger champion if it finds at least as much money in the top 5% (of the
    holdout, or with --live of the decided cases among the claims both versions scored)."""
    from claimradar.settings import get_settings
    from training import tracking
    from training.promote import promote as run_promote

    s = get_settings()
    client = tracking.connect(s.tracking_uri, s.artifact_root)
    why = None
    if live and not force:
        from claimradar.cli.monitor import live_gate

        ok, why = live_gate(client, version, 5.0, min_decided)
        if not ok:
            typer.echo(f"not promoted: {why}")
            return
    try:
        d = run_promote(client, version, force=force or live, dataset=data)
    except ValueError as e:
        raise _fail(str(e)) from None
    verdict = "promoted" if d.promoted else "not promoted"
    typer.echo(f"v{d.challenger} {verdict} (champion was v{d.champion}): {why or d.reason}")


@app.command()
def models() -> None:
    """List registered versions, their aliases and headline holdout metrics."""
    import pandas as pd

    from claimradar.settings import get_settings
    from scoring.registry import MODEL_NAME
    from training import tracking

    s = get_settings()
    rows = tracking.versions(tracking.connect(s.tracking_uri, s.artifact_root))
    if not rows:
        typer.echo("no registered versions yet; run claimradar train")
        return
    _print_frame(MODEL_NAME, pd.DataFrame(rows).drop(columns=["run_id", "created"]))
    typer.echo(f"{len(rows)} version(s) of {MODEL_NAME}")


@app.command()
def score(
    data: Annotated[Path, typer.Argument(help="A canonical dataset folder (from ingest).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Scores file (.parquet or .csv).")],
    model: Annotated[
        str | None,
        typer.Option(help="Version, @alias, models:/claimradar-abuse@alias or a bundle folder."),
    ] = None,
    since: Annotated[str | None, typer.Option(help="Score claims admitted from this date.")] = None,
    explain_top: Annotated[
        float | None, typer.Option(help="Explain the top PCT%; default the review band.")
    ] = None,
    to_store: Annotated[
        bool,
        typer.Option(
            "--to-store", help="Also record the scores in the case store and open review cases."
        ),
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            help="embedded (default) or spark: features and scores on Spark (settings "
            "spark_master), OUT a folder of parquet partitioned by month."
        ),
    ] = "embedded",
) -> None:
    """Score every claim: risk, expected overbilled amount, rank, band, reasons, rule hits."""
    if engine not in ("embedded", "spark"):
        raise _fail(f"--engine must be embedded or spark, not {engine!r}")
    if engine == "spark" and (to_store or out.suffix == ".csv"):
        raise _fail("--engine spark writes a parquet folder; --to-store and .csv need embedded")
    from claimradar.settings import get_settings
    from serving.batch import resolve_bundle, score_dataset, write_scores

    s = get_settings()
    try:
        bundle, version = resolve_bundle(model, s.tracking_uri, s.artifact_root)
    except ValueError as e:
        raise _fail(str(e)) from None
    if engine == "spark":
        _score_spark(data, out, bundle, version, since=since, explain_top=explain_top)
        return
    with progress_bar("score") as update:
        update(0, 2)
        scored, frame = score_dataset(
            data, bundle, version, since=since, explain_top=explain_top, with_frame=True
        )
        update(1, 2)
        write_scores(scored, out)
        update(2, 2)
    bands = scored["band"].value_counts().to_dict()
    typer.echo(
        f"scored {len(scored):,} claims with model v{version} "
        f"(high {bands.get('high', 0):,}, review {bands.get('review', 0):,}) -> {out}"
    )
    if to_store:
        new = _to_store(data, scored, frame)
        typer.echo(f"case store: {new:,} new scored claims recorded, review cases opened")


def _score_spark(data: Path, out: Path, bundle, version: str, **options) -> None:
    from claimradar.settings import get_settings, spark_session
    from serving.batch_spark import score_dataset_spark

    if not (data / "claims.parquet").exists():
        raise _fail(f"{data} has no claims.parquet; run `claimradar ingest` first")
    spark_session(get_settings(), "claimradar-score")
    with progress_bar("score (spark)") as update:
        update(0, 1)
        bands = score_dataset_spark(data, bundle, version, out, **options)
        update(1, 1)
    typer.echo(
        f"scored {sum(bands.values()):,} claims with model v{version} on Spark "
        f"(high {bands.get('high', 0):,}, review {bands.get('review', 0):,}) -> {out}/month=*"
    )


def _to_store(data: Path, scored, frame) -> int:
    from contract.ingest import load_dataset
    from serving.casefile import fill_store

    store = _store()
    with progress_bar("record in the case store") as update:
        return fill_store(store, scored, load_dataset(data), frame, "cli:score", progress=update)


@app.command("close-month")
def close_month(
    month: Annotated[str, typer.Option(help="The month to close, YYYY-MM.")],
) -> None:
    """Close a month in the case store: the facility early warning over the claims scored so far
    (through the API or in batch), the facility page's months, and the warned facilities' claims
    re-ranked by the money their shift puts at stake (opening cases for those lifted into a
    review band). Run again when late claims arrive: it replaces what it added."""
    import re

    from claimradar.settings import get_settings
    from serving.batch import resolve_bundle
    from serving.month_close import close_month as close

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise _fail(f"--month must be YYYY-MM, got {month!r}")
    s = get_settings()

    def bundle_for(version: str):
        try:
            return resolve_bundle(str(version), s.tracking_uri, s.artifact_root)[0]
        except ValueError as e:
            raise _fail(f"model v{version} of the stored scores: {e}") from None

    out = close(_store(), month, bundle_for)
    typer.echo(
        f"{month}: {out.claims_read:,} claims read, {len(out.warned)} facilities warned"
        f"{' (' + ', '.join(out.warned) + ')' if out.warned else ''}; {out.rows_reranked:,} scored "
        f"rows re-ranked, {out.cases_opened:,} cases opened, {out.cases_updated:,} cases updated"
    )
