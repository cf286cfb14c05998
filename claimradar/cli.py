"""The command line: one Typer app, one command per job. Each command parses, loads settings and
calls one library function; long jobs show progress and end with a one-line summary."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table as RichTable

from claimradar import __version__

app = typer.Typer(
    name="claimradar",
    help="Score health-insurance claims (XML 130) for abuse risk and rank them for review.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)
MODEL = "claimradar-abuse"
SRC_HELP = "An XML 130 envelope, a folder of them, or a tabular folder (xml1/xml2/xml3)."
SAMPLE = Path(__file__).resolve().parent / "samples" / "envelopes"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"claimradar {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """claimradar: abuse detection for the social health-insurance fund."""


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar; yields a callback(done, total)."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


@app.command()
def ingest(
    src: Annotated[Path, typer.Argument(help=SRC_HELP)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the canonical dataset.")],
) -> None:
    """Read claims into the canonical dataset; bad records go to rejections.parquet."""
    from claimradar.settings import get_settings, ingest_limits
    from contract.ingest import ingest as run_ingest
    from contract.validate import ContractError

    settings = get_settings()
    try:
        with progress_bar(f"ingest {src.name}") as update:
            report = run_ingest(
                src,
                out,
                limits=ingest_limits(settings),
                linkage_key=settings.linkage_key.get_secret_value(),
                progress=update,
            )
    except (ContractError, FileNotFoundError) as e:
        raise _fail(str(e)) from None
    _print_ingest(report)
    typer.echo(report.summary())


def _print_ingest(report) -> None:
    t = RichTable(title="ingest")
    for col in ("table", "read", "written", "rejected"):
        t.add_column(col, justify="right" if col != "table" else "left")
    names = ("claims", "drug_lines", "service_lines", "facilities", "labels")
    for name in names:
        if report.read[name] or name in ("claims", "drug_lines", "service_lines"):
            t.add_row(
                name,
                f"{report.read[name]:,}",
                f"{report.written[name]:,}",
                f"{report.rejected[name]:,}",
            )
    console.print(t)
    for f, msg in report.file_errors:
        console.print(f"[yellow]file refused[/yellow] {f}: {msg}")
    if report.skipped_tables:
        skipped = ", ".join(f"{k} x{v}" for k, v in sorted(report.skipped_tables.items()))
        console.print(f"other tables skipped (not used for scoring): {skipped}")


@app.command("export-xml")
def export_xml(
    dataset: Annotated[Path, typer.Argument(help="A canonical dataset folder (from ingest).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the envelopes.")],
    per_file: Annotated[int, typer.Option(help="Dossiers per envelope file.")] = 1000,
) -> None:
    """Write the dataset's claims as XML 130 envelopes (GIAMDINHHS), one set per facility."""
    from contract.export import export_xml as run_export

    if not (dataset / "claims.parquet").exists():
        raise _fail(f"{dataset} has no claims.parquet; run `claimradar ingest` first")
    with progress_bar("export-xml") as update:
        files = run_export(dataset, out, per_file=per_file, progress=update)
    typer.echo(f"wrote {len(files):,} envelope file(s) -> {out}")


@app.command()
def features(
    data: Annotated[Path, typer.Argument(help="A canonical dataset folder (from ingest).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Parquet file, one row per claim.")],
    engine: Annotated[str, typer.Option(help="duckdb (default) or spark.")] = "duckdb",
    since: Annotated[str | None, typer.Option(help="Claims admitted from this date.")] = None,
    until: Annotated[str | None, typer.Option(help="Claims admitted before this date.")] = None,
    price_list: Annotated[
        Path | None, typer.Option(help="Approved prices (else learned from prior months).")
    ] = None,
) -> None:
    """Build every feature and rule flag per claim, point in time."""
    from features.pipeline import write_features

    if engine not in ("duckdb", "spark"):
        raise _fail(f"--engine must be duckdb or spark, not {engine!r}")
    if not (data / "claims.parquet").exists():
        raise _fail(f"{data} has no claims.parquet; run `claimradar ingest` first")
    with progress_bar(f"features ({engine})") as update:
        try:
            n = write_features(
                data,
                out,
                engine=engine,
                since=since,
                until=until,
                price_list=price_list,
                progress=update,
            )
        except ValueError as e:
            raise _fail(str(e)) from None
    typer.echo(f"wrote features of {n:,} claims -> {out}")


@app.command()
def facilities(
    data: Annotated[Path, typer.Argument(help="A canonical dataset folder (from ingest).")],
    month: Annotated[str, typer.Option(help="The month to check, YYYY-MM.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="CSV of the table (default beside DATA).")
    ] = None,
) -> None:
    """Early warning: facilities whose cost per visit grows abnormally against their peers."""
    from features.early_warning import facility_warnings

    try:
        table = facility_warnings(data, month)
    except ValueError as e:
        raise _fail(str(e)) from None
    out = out or data / f"facility_warnings_{month}.csv"
    table.to_csv(out, index=False)
    warned = table[table["warning"]] if "warning" in table.columns else table
    show = [
        "facility_id",
        "facility_name",
        "facility_level",
        "claims",
        "cost_per_visit",
        "growth_vs_trend",
        "growth_yoy",
        "peer_growth_median",
        "robust_z",
    ]
    show = [c for c in show if c in warned.columns]
    _print_frame(f"facilities with abnormal cost growth, {month}", warned[show].round(3))
    typer.echo(f"{len(warned)} of {len(table)} facilities flagged for {month} -> {out}")


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the tabular output.")],
    claims: Annotated[int, typer.Option("--claims", "-n", help="Number of claims.")] = 100_000,
    months: Annotated[int, typer.Option(help="Months simulated.")] = 12,
    start: Annotated[str, typer.Option(help="First month, YYYY-MM.")] = "2025-01",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same output.")] = 0,
    scheme: Annotated[
        list[str] | None, typer.Option(help="Abuse scheme rate, NAME=RATE (repeatable).")
    ] = None,
    scheme_start: Annotated[
        list[str] | None,
        typer.Option(help="First month of a scheme, NAME=YYYY-MM (repeatable)."),
    ] = None,
    report: Annotated[bool, typer.Option(help="Print the calibration report.")] = False,
) -> None:
    """Simulate a claims world with labelled abuse schemes (tabular input format + truth)."""
    import simulator

    rates: dict[str, float] = {}
    for item in scheme or []:
        name, _, rate = item.partition("=")
        if name not in simulator.SCHEMES:
            raise _fail(f"unknown scheme {name!r}; known: {', '.join(sorted(simulator.SCHEMES))}")
        try:
            rates[name] = float(rate)
        except ValueError:
            raise _fail(f"--scheme {item!r}: the rate must be a number") from None
    starts = dict(item.partition("=")[::2] for item in scheme_start or [])
    with progress_bar("simulate") as update:
        total = 1000

        def step(_name: str, fraction: float) -> None:
            update(int(fraction * total), total)

        try:
            result = simulator.simulate(
                out,
                claims,
                months=months,
                start=start,
                seed=seed,
                schemes=rates or None,
                scheme_start=starts or None,
                report=report,
                progress=step,
            )
        except ValueError as e:
            raise _fail(str(e)) from None
    if report and getattr(result, "calibration", None) is not None:
        _print_frame("calibration", result.calibration)
    typer.echo(result.summary())


def _print_frame(title: str, df) -> None:
    t = RichTable(title=title)
    for c in df.columns:
        t.add_column(str(c))
    for row in df.itertuples(index=False):
        t.add_row(*[f"{v:,.3g}" if isinstance(v, float) else str(v) for v in row])
    console.print(t)


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
        f"trained run {result.run_id}, registered {MODEL} v{result.version} as challenger; "
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
) -> None:
    """Make the challenger champion if it finds at least as much money in the top 5%."""
    from claimradar.settings import get_settings
    from training import tracking
    from training.promote import promote as run_promote

    s = get_settings()
    client = tracking.connect(s.tracking_uri, s.artifact_root)
    try:
        d = run_promote(client, version, force=force, dataset=data)
    except ValueError as e:
        raise _fail(str(e)) from None
    verdict = "promoted" if d.promoted else "not promoted"
    typer.echo(f"v{d.challenger} {verdict} (champion was v{d.champion}): {d.reason}")


@app.command()
def models() -> None:
    """List registered versions, their aliases and headline holdout metrics."""
    import pandas as pd

    from claimradar.settings import get_settings
    from training import tracking

    s = get_settings()
    rows = tracking.versions(tracking.connect(s.tracking_uri, s.artifact_root))
    if not rows:
        typer.echo("no registered versions yet; run claimradar train")
        return
    _print_frame(MODEL, pd.DataFrame(rows).drop(columns=["run_id", "created"]))
    typer.echo(f"{len(rows)} version(s) of {MODEL}")


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
) -> None:
    """Score every claim: risk, expected overbilled amount, rank, band, reasons, rule hits."""
    from claimradar.settings import get_settings
    from serving.batch import resolve_bundle, score_dataset, write_scores

    s = get_settings()
    try:
        bundle, version = resolve_bundle(model, s.tracking_uri, s.artifact_root)
    except ValueError as e:
        raise _fail(str(e)) from None
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


def _to_store(data: Path, scored, frame) -> int:
    from contract.ingest import load_dataset
    from serving.casefile import fill_store

    store = _store()
    with progress_bar("record in the case store") as update:
        return fill_store(store, scored, load_dataset(data), frame, "cli:score", progress=update)


def service_env(settings, bento: str | None = None) -> dict[str, str]:
    """The environment a BentoML server process needs: its home, no tracking, the settings.
    From a checkout the project root goes on PYTHONPATH; a bento brings its own sources."""
    import os

    from claimradar.settings import project_root

    env = dict(os.environ)
    env.update(
        BENTOML_HOME=str(settings.bento_home),
        BENTOML_DO_NOT_TRACK="true",
        CLAIMRADAR_HOME=str(settings.home),
        CLAIMRADAR_MLFLOW_TRACKING_URI=settings.tracking_uri,
        CLAIMRADAR_MLFLOW_ARTIFACT_ROOT=str(settings.artifact_root),
        CLAIMRADAR_DATABASE_URL=settings.case_store_url,
    )
    if bento is None:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(project_root()), env.get("PYTHONPATH")])
        )
    return env


def serve_command(host: str, port: int, bento: str | None = None) -> list[str]:
    import sys

    from claimradar.settings import project_root

    target = [bento] if bento else ["claimradar.service:ClaimRadar", "--working-dir",
                                    str(project_root())]  # fmt: skip
    return [
        sys.executable, "-m", "bentoml", "serve", *target, "--host", host, "--port", str(port),
    ]  # fmt: skip


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 3000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    bento: Annotated[
        str | None, typer.Option(help="Serve a built bento (NAME:VERSION) instead of the checkout.")
    ] = None,
) -> None:
    """Serve the scoring API and the review UI (BentoML) with the champion model."""
    import os

    from claimradar.settings import get_settings
    from serving.store import upgrade

    s = get_settings()
    s.ensure_home()
    upgrade(s.case_store_url)  # once here, not racing in every worker
    cmd = serve_command(host, port, bento)
    typer.echo(f"claimradar: serving on http://{host}:{port} (API /score, UI /review, /docs.json)")
    os.execvpe(cmd[0], cmd, {**service_env(s, bento), "CLAIMRADAR_WORKERS": str(workers)})


keys_app = typer.Typer(help="API keys of the scoring service.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _store():
    from claimradar.settings import get_settings
    from serving.store import Store

    return Store(get_settings().case_store_url)


@keys_app.command("create")
def keys_create(name: Annotated[str, typer.Argument(help="Who uses the key, e.g. claims-system.")]):
    """Create an API key; it is shown once and stored only as a hash."""
    try:
        key = _store().create_key(name)
    except ValueError as e:
        raise _fail(str(e)) from None
    console.print(f"API key {name!r} created; keep it now, it is not shown again:")
    typer.echo(key)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (names, prefixes, dates; never the keys)."""
    import pandas as pd

    rows = _store().list_keys()
    if not rows:
        typer.echo("no API keys; create one with claimradar keys create NAME")
        return
    _print_frame("API keys", pd.DataFrame(rows))


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke an API key: requests with it are refused with 403 from now on."""
    if not _store().revoke_key(name):
        raise _fail(f"no active API key named {name!r}")
    typer.echo(f"API key {name!r} revoked")


users_app = typer.Typer(help="Accounts of the review UI.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="Login name: lower-case letters, digits, . _ -")],
    role: Annotated[str, typer.Option(help="officer, supervisor or admin.")] = "officer",
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="CLAIMRADAR_USER_PASSWORD",
            help="At least 10 characters; asked for when not given (never echoed).",
        ),
    ] = "",
) -> None:
    """Create a review-UI account (the password is stored as an argon2id hash)."""
    from serving.review.users import create_user

    try:
        create_user(_store(), name, role, password)
    except ValueError as e:
        raise _fail(str(e)) from None
    typer.echo(f"user {name.strip().lower()!r} created with role {role}")


@users_app.command("list")
def users_list() -> None:
    """List accounts: name, role, active, locked until, created."""
    import pandas as pd

    from serving.review.users import list_users

    rows = list_users(_store())
    if not rows:
        typer.echo("no users; create one with claimradar users create NAME --role officer")
        return
    _print_frame("review users", pd.DataFrame(rows))


@users_app.command("unlock")
def users_unlock(name: Annotated[str, typer.Argument(help="The account to unlock.")]) -> None:
    """Lift a lockout after repeated failed logins."""
    from serving.review.users import unlock_user

    if not unlock_user(_store(), name):
        raise _fail(f"no user named {name!r}")
    typer.echo(f"user {name!r} unlocked")


labels_app = typer.Typer(help="Officers' decisions as training labels.", no_args_is_help=True)
app.add_typer(labels_app, name="labels")


@labels_app.command("export")
def labels_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Labels file (.csv or .parquet).")],
) -> None:
    """Write final decisions in the labels format `claimradar train --labels` reads."""
    from serving.labels import export_labels

    n = export_labels(_store(), out)
    typer.echo(f"exported {n:,} decided claims as labels -> {out}")


@app.command()
def demo(
    workdir: Annotated[
        Path | None, typer.Option(help="Where to write; default a folder under CLAIMRADAR_HOME.")
    ] = None,
    claims: Annotated[int, typer.Option(help="Claims in the simulated world.")] = 40_000,
    serve: Annotated[
        bool, typer.Option(help="End by serving the API and the review UI until Ctrl+C.")
    ] = True,
    port: Annotated[int, typer.Option(help="Port of the demo service.")] = 3000,
) -> None:
    """The main job end to end on embedded defaults: ingest the sample envelopes, simulate a
    province-year of claims (scaled down), train and register a model, promote it, score every
    claim into the case store, create review accounts, then serve the API and the review UI."""
    import pandas as pd

    import simulator
    from claimradar.settings import get_settings, ingest_limits
    from contract.ingest import ingest as run_ingest
    from contract.ingest import load_dataset
    from serving.batch import resolve_bundle, score_dataset, write_scores
    from training import tracking
    from training.promote import promote as run_promote
    from training.train import train as run_train

    settings = get_settings()
    work = workdir or settings.ensure_home() / "demo"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    key = settings.linkage_key.get_secret_value()
    # 1. The way in: XML 130 envelopes as facilities send them (one dossier bad, one file cut).
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "envelopes"
        shutil.copytree(SAMPLE, src)
        with progress_bar("1/6 ingest the sample envelopes") as update:
            report = run_ingest(
                src,
                work / "sample",
                limits=ingest_limits(settings),
                linkage_key=key,
                progress=update,
            )
    _print_ingest(report)
    rej = load_dataset(work / "sample").get("rejections")
    if rej is not None and len(rej):
        own = rej[(rej["field"] != "") | (rej["table"] == "file")]
        _print_frame("rejections (field errors)", own[["source_file", "field", "value", "error"]])
    # 2. A province's claims world with abuse schemes and the agency's labels.
    with progress_bar("2/6 simulate a province-year of claims") as update:
        sim = simulator.simulate(
            work / "world",
            claims,
            months=12,
            start="2025-01",
            seed=0,
            progress=lambda _n, f: update(int(f * 100), 100),
        )
    with progress_bar("   ingest it") as update:
        run_ingest(
            work / "world",
            work / "dataset",
            limits=ingest_limits(settings),
            linkage_key=key,
            progress=update,
        )
    console.print(sim.summary())
    # 3. Train against the labels, with baselines, logged and registered in MLflow.
    with progress_bar("3/6 train") as update:
        result = run_train(
            work / "dataset",
            tracking_uri=settings.tracking_uri,
            artifact_root=settings.artifact_root,
            models_dir=work / "models",
            progress=lambda _n, f: update(int(f * 100), 100),
        )
    cols = ["amount_top5pct", "precision_top5pct", "average_precision", "roc_auc"]
    _print_frame(
        "holdout: model and baselines",
        result.table.reset_index().query("split == 'holdout'")[["ranker", *cols]].round(3),
    )
    # 4. Promote: the challenger becomes champion only if it finds at least as much money.
    client = tracking.connect(settings.tracking_uri, settings.artifact_root)
    decision = run_promote(client, result.version, dataset=work / "dataset")
    console.print(
        f"4/6 promote v{decision.challenger}: "
        f"{'promoted' if decision.promoted else 'not promoted'} ({decision.reason})"
    )
    # 5. Score every claim with the champion and show the top of the review queue.
    with progress_bar("5/6 score") as update:
        update(0, 1)
        bundle, version = resolve_bundle(None, settings.tracking_uri, settings.artifact_root)
        scored, frame = score_dataset(work / "dataset", bundle, version, with_frame=True)
        write_scores(scored, work / "scores.parquet")
        update(1, 1)
    top = scored.head(10).copy()
    top["top reason"] = [r[0]["text_en"] if r else "" for r in top["reasons"]]
    top["rules"] = [", ".join(h["code"] for h in hits) for hits in top["rule_hits"]]
    top["admitted"] = pd.to_datetime(top["admitted_at"]).dt.strftime("%Y-%m-%d")
    _print_frame(
        "the top of the review queue (ranked by the money at stake)",
        top[
            [
                "rank",
                "claim_id",
                "facility_id",
                "admitted",
                "risk_score",
                "expected_overbilled",
                "band",
                "rules",
                "top reason",
            ]
        ].round(3),
    )
    band = scored["band"].value_counts()
    typer.echo(
        f"demo: scored {len(scored):,} claims with model v{version} "
        f"({band.get('high', 0):,} high, {band.get('review', 0):,} review) -> "
        f"{work / 'scores.parquet'}; MLflow store {settings.tracking_uri} (see mlflow/README.md)"
    )
    # 6. The officers' queue: the scores in a case store of the demo's own, two accounts.
    env = {
        "CLAIMRADAR_HOME": str(settings.home),
        "CLAIMRADAR_MLFLOW_TRACKING_URI": settings.tracking_uri,
        "CLAIMRADAR_MLFLOW_ARTIFACT_ROOT": str(settings.artifact_root),
        "CLAIMRADAR_DATABASE_URL": f"sqlite:///{work / 'cases.db'}",
        "CLAIMRADAR_SECURE_COOKIES": "false",  # plain HTTP on this machine only
    }
    logins = _demo_queue(work, scored, frame, env["CLAIMRADAR_DATABASE_URL"])
    if not serve:
        return
    _demo_serve(work, env, port, logins)


def _demo_queue(work: Path, scored, frame, url: str) -> dict[str, str]:
    import secrets

    from contract.ingest import load_dataset
    from serving.casefile import fill_store
    from serving.review.users import create_user
    from serving.store import Store

    store = Store(url)
    with progress_bar("6/6 fill the review queue") as update:
        fill_store(store, scored, load_dataset(work / "dataset"), frame, "cli:demo",
                   progress=update)  # fmt: skip
    logins = {}
    for name, role in (("officer", "officer"), ("supervisor", "supervisor")):
        logins[name] = secrets.token_urlsafe(9)
        create_user(store, name, role, logins[name])
    with store.session() as s:
        from sqlalchemy import func, select

        from serving.store import Case

        open_cases = s.scalar(select(func.count()).select_from(Case))
    store.engine.dispose()
    typer.echo(f"demo: {open_cases:,} cases in the review queue; accounts officer and supervisor")
    return logins


def _demo_serve(work: Path, env: dict, port: int, logins: dict[str, str]) -> None:
    from serving import process

    console.print("starting the service (BentoML: the API and the review UI)...")
    try:
        svc = process.start(env, work / "service.log", port=port, key_name="demo")
    except RuntimeError as e:
        raise _fail(str(e)) from None
    typer.echo(
        f"demo: review queue at {svc.url}/review  (log in as officer / {logins['officer']}; "
        f"supervisor / {logins['supervisor']})\n"
        f"demo: scoring API at {svc.url}/score with 'Authorization: Bearer {svc.key}' "
        f"(spec: {svc.url}/docs.json)\n"
        f"demo: serving until Ctrl+C (log: {svc.log})",
    )
    try:
        svc.proc.wait()
    except KeyboardInterrupt:
        console.print("stopping the service")
    finally:
        svc.stop()


if __name__ == "__main__":  # pragma: no cover - python -m claimradar.cli
    app()
