"""Monitoring commands: monitor (a month against the champion's training window) and compare (two
model versions on the claims both scored in the case store)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from claimradar.cli.common import _fail, _print_frame, app, console, progress_bar

OUT_HELP = (
    "Folder for monitor-MONTH.json and .html (default $CLAIMRADAR_HOME/monitoring, where the "
    "review dashboard reads them)."
)


@app.command()
def monitor(
    data: Annotated[Path, typer.Argument(help="A canonical dataset folder (from ingest).")],
    month: Annotated[str, typer.Option(help="The month to check, YYYY-MM (admissions).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help=OUT_HELP)] = None,
    model: Annotated[
        str | None, typer.Option(help="Version to monitor (default the champion).")
    ] = None,
    mlflow_log: Annotated[
        bool, typer.Option("--mlflow/--no-mlflow", help="Log the run to MLflow.")
    ] = True,
) -> None:
    """Data quality, input, score, band and rule drift of a month against the champion's
    training window; alerts past the thresholds of the settings (monitor_*). Writes a JSON
    summary and an HTML report and logs them to MLflow as a monitoring run of the model.
    Exits 0 with or without alerts (read the JSON's `alerts`), 2 on bad input."""
    import matplotlib.pyplot as plt

    from claimradar.settings import get_settings, monitor_thresholds
    from monitoring import check_month, report, tracking
    from monitoring import monitor as run_monitor
    from scoring import registry
    from scoring.bundle import ModelBundle

    s = get_settings()
    try:
        check_month(month)
    except ValueError as e:
        raise _fail(str(e)) from None
    if not (data / "claims.parquet").exists():
        raise _fail(f"{data} has no claims.parquet; run `claimradar ingest` first")
    client = registry.connect(s.tracking_uri, s.artifact_root)
    with (
        tempfile.TemporaryDirectory(prefix="claimradar-monitor-") as tmp,
        progress_bar(f"monitor {month}") as update,
    ):
        update(0, 3)
        try:
            if model is None:
                bundle, version, alias = tracking.champion(client, Path(tmp))
            else:
                if not model.isdigit():
                    raise ValueError(f"--model must be a version number, not {model!r}")
                version, alias = model, "version"
                bundle = ModelBundle.load(registry.bundle_dir(client, int(model), Path(tmp)))
            update(1, 3)
            result = run_monitor(data, month, bundle, version, monitor_thresholds(s), alias=alias)
        except ValueError as e:
            raise _fail(str(e)) from None
        update(2, 3)
        js, page, figs = report.write(result, out or s.monitor_dir)
        run_id = tracking.log_run(client, result, [js, page], figs) if mlflow_log else None
        for fig in figs.values():
            plt.close(fig)
        update(3, 3)
    summary = result.summary
    movers = result.features.head(8)[["feature", "group", "psi", "baseline", "ratio", "drifted"]]
    _print_frame(f"top movers, {month} against the training window", movers.round(4))
    for a in summary["alerts"]:
        console.print(f"[red]ALERT[/red] {a['kind']}: {a['message']}")
    logged = f"; MLflow run {run_id}" if run_id else ""
    typer.echo(
        f"{month}: {len(summary['alerts'])} alert(s) for model v{version} ({alias}); "
        f"{summary['current']['claims']:,} claims, {summary['data_quality']['rejected_claims']:,} "
        f"refused -> {js}, {page}{logged}"
    )


@app.command()
def compare(
    champion: Annotated[
        str | None, typer.Option(help="Version (default the registry's champion).")
    ] = None,
    challenger: Annotated[
        str | None, typer.Option(help="Version (default the registry's challenger).")
    ] = None,
    top: Annotated[float, typer.Option(help="The top PCT% by money at stake.")] = 5.0,
    since: Annotated[
        str | None, typer.Option(help="Only cases decided from this date (YYYY-MM-DD).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the JSON here.")] = None,
) -> None:
    """Two model versions on the claims both scored in the case store (`score --to-store` with
    each): band agreement, and on the decided cases the money rejected and the hit rate each puts
    in its top PCT%."""
    import json
    from datetime import datetime

    from claimradar.cli.common import _store
    from claimradar.settings import get_settings
    from scoring import registry
    from serving.outcomes import compare_versions

    if champion is None or challenger is None:
        s = get_settings()
        client = registry.connect(s.tracking_uri, s.artifact_root)
        champion = champion or _alias(registry, client, "champion")
        challenger = challenger or _alias(registry, client, "challenger")
    try:
        when = datetime.strptime(since, "%Y-%m-%d") if since else None
    except ValueError:
        raise _fail(f"--since must be YYYY-MM-DD, not {since!r}") from None
    if not 0 < top <= 100:
        raise _fail("--top must be a percentage above 0 and at most 100")
    r = compare_versions(_store(), champion, challenger, top, when)
    if r["claims_both"] == 0:
        raise _fail(
            f"no claim scored by both v{champion} and v{challenger} in the case store; score "
            "the same data with each (claimradar score --model V --to-store)"
        )
    import pandas as pd

    table = pd.DataFrame({k: r[k] for k in ("champion", "challenger")}).T
    table.insert(0, "version", [champion, challenger])
    _print_frame(f"top {top:g}% on {r['claims_both']:,} claims both scored", table.round(4))
    if out:
        out.write_text(json.dumps(r, indent=1))
    typer.echo(
        f"band agreement {r['band_agreement']:.1%}; {r['decided']:,} decided cases, "
        f"{r['money_rejected']:,.0f} VND rejected; in the top {top:g}%: champion v{champion} "
        f"{r['champion']['money_in_top']:,.0f}, challenger v{challenger} "
        f"{r['challenger']['money_in_top']:,.0f}"
    )


def _alias(registry, client, alias: str) -> str:
    v = registry.version_by_alias(client, alias)
    if v is None:
        raise _fail(f"no {alias} in the registry; give --{alias} VERSION")
    return str(v)


RETRAIN_LOCKED = 75  # EX_TEMPFAIL: another retrain holds the lock; cron tries again next time


@app.command()
def retrain(
    data: Annotated[Path, typer.Argument(help="A canonical dataset folder (from ingest).")],
    cutoff: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD; default: 3 months before the data's end.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Training config (TOML); default configs/train.toml.")
    ] = None,
    promote: Annotated[
        bool, typer.Option("--promote/--no-promote", help="Promote if the gate passes.")
    ] = True,
) -> None:
    """The loop in one command, safe from cron: the officers' final decisions from the case
    store as labels -> train with them (a new challenger) -> compare with the champion on the
    same recent holdout -> promote if it finds at least as much money in the top 5%.
    One run at a time (a lock under $CLAIMRADAR_HOME; a second run exits 75 at once), no
    prompts; exit 0 whether promoted or not, 2 on an error. Without decisions in the store it
    trains on DATA's own labels."""
    import fcntl
    from datetime import UTC, datetime

    from claimradar.cli.common import _store
    from claimradar.settings import get_settings, project_root
    from serving.labels import export_labels
    from training import tracking
    from training.promote import promote as run_promote
    from training.train import train as run_train

    s = get_settings()
    lock_path = s.ensure_home() / "retrain.lock"
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            console.print(f"another retrain is running (lock {lock_path}); nothing done")
            raise typer.Exit(code=RETRAIN_LOCKED) from None
        if not (data / "claims.parquet").exists():
            raise _fail(f"{data} has no claims.parquet; run `claimradar ingest` first")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        labels = s.home / "retrain" / f"labels-{stamp}.csv"
        n = export_labels(_store(), labels)
        typer.echo(f"{n:,} decided case(s) exported as labels -> {labels}")
        try:
            with progress_bar("train") as update:
                result = run_train(
                    data,
                    cutoff=cutoff,
                    labels=labels if n else None,
                    config=config,
                    tracking_uri=s.tracking_uri,
                    artifact_root=s.artifact_root,
                    models_dir=project_root() / "models",
                    progress=lambda name, f: update(int(f * 100), 100),
                )
            typer.echo(f"trained v{result.version} (challenger), run {result.run_id}")
            if not promote:
                return
            client = tracking.connect(s.tracking_uri, s.artifact_root)
            d = run_promote(client, result.version, dataset=data)
        except ValueError as e:
            raise _fail(str(e)) from None
    verdict = "promoted" if d.promoted else "kept as challenger"
    before = f"champion was v{d.champion}" if d.champion is not None else "no champion before"
    typer.echo(f"v{d.challenger} {verdict} ({before}): {d.reason}")


def live_gate(client, challenger: int | None, top: float, min_decided: int) -> tuple[bool, str]:
    """`promote --live`: the challenger passes when, on the claims both versions scored in the
    case store, it puts at least as much of the decided money rejected in its top `top`% as the
    champion, over at least `min_decided` decided cases. (The decided cases come from the
    champion's queue: a challenger that finds other money is not credited for it.)"""
    from claimradar.cli.common import _store
    from scoring import registry
    from serving.outcomes import compare_versions

    champion = registry.version_by_alias(client, "champion")
    challenger = challenger or registry.version_by_alias(client, "challenger")
    if challenger is None:
        raise _fail("no challenger: train a model first (claimradar train)")
    if champion is None or champion == challenger:
        return champion is None, "no champion yet" if champion is None else "already champion"
    r = compare_versions(_store(), str(champion), str(challenger), top)
    if r["decided"] < min_decided:
        return False, (
            f"live comparison: {r['decided']:,} decided case(s) among the {r['claims_both']:,} "
            f"claims both scored; at least {min_decided:,} needed"
        )
    a, b = r["champion"]["money_in_top"], r["challenger"]["money_in_top"]
    why = (
        f"live comparison, money rejected in the top {top:g}% of {r['claims_both']:,} claims "
        f"both scored ({r['decided']:,} decided): challenger v{challenger} {b:,.0f} vs champion "
        f"v{champion} {a:,.0f} VND"
    )
    if b <= 0:  # a tie at nothing is no evidence for the challenger
        return False, why + "; no decided money in the challenger's top: not promoted"
    return b >= a, why


@app.command()
def outcomes(
    by: Annotated[
        str,
        typer.Option(help="Dimensions, comma-separated: month, band, facility_id, rule, reason."),
    ] = "month,band",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the table as CSV.")] = None,
) -> None:
    """What the review found, from the case store: cases opened and decided, hit rate beside the
    expected one (mean calibrated probability), money rejected against the expected overbilled
    amount, days to decision; per the dimensions asked."""
    from claimradar.cli.common import _store
    from serving.outcomes import case_rows, summarize

    dims = [d.strip() for d in by.split(",") if d.strip()]
    try:
        rows = case_rows(_store())
        table = summarize(rows, dims)
    except ValueError as e:
        raise _fail(str(e)) from None
    if out:
        table.to_csv(out, index=False)
    show = [*dims, "cases", "decided", "hit_rate", "expected_hit_rate", "money_rejected",
            "expected_overbilled_decided", "median_days_to_decision"]  # fmt: skip
    _print_frame(f"outcomes by {', '.join(dims)}", table[show].round(3))
    where = f" -> {out}" if out else ""
    typer.echo(
        f"{len(table)} group(s); {len(rows):,} cases, {int(rows['decided'].sum()):,} decided{where}"
    )
