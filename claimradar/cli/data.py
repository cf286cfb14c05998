"""Data commands: ingest, export-xml, features, facilities, simulate."""

from __future__ import annotations

import signal
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from claimradar.cli.common import SRC_HELP, _fail, _print_frame, _print_ingest, app, progress_bar


def _exit_on_sigterm(signum, _frame) -> None:
    raise SystemExit(128 + signum)


@app.command()
def ingest(
    src: Annotated[Path, typer.Argument(help=SRC_HELP)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the canonical dataset.")],
    engine: Annotated[
        str, typer.Option(help="embedded (default) or spark (tabular input: tasks per partition).")
    ] = "embedded",
) -> None:
    """Read claims into the canonical dataset; bad records go to rejections.parquet."""
    from claimradar.settings import get_settings, ingest_limits, spark_session
    from contract.ingest import ingest as run_ingest
    from contract.validate import ContractError

    if engine not in ("embedded", "spark"):
        raise _fail(f"--engine must be embedded or spark, not {engine!r}")
    settings = get_settings()
    # SIGTERM (`timeout`, systemd, a container stop) exits through the finally blocks, so the
    # spill of personal data and the partial work folders are removed
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with progress_bar(f"ingest {src.name} ({engine})") as update:
            if engine == "spark":
                from contract.spark_ingest import ingest_spark

                run_ingest = partial(ingest_spark, spark_session(settings, "claimradar-ingest"))
            report = run_ingest(
                src,
                out,
                limits=ingest_limits(settings),
                linkage_key=settings.linkage_key.get_secret_value(),
                progress=update,
            )
    except (ContractError, FileNotFoundError) as e:
        raise _fail(str(e)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    _print_ingest(report)
    typer.echo(report.summary())


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
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Parquet file, one row per claim (with --engine spark: a folder of part files).",
        ),
    ],
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
    if engine == "spark":
        from claimradar.settings import get_settings, spark_session

        spark_session(get_settings(), "claimradar-features")  # on the settings' spark_master
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
    month: Annotated[str | None, typer.Option(help="The month to check, YYYY-MM.")] = None,
    quarter: Annotated[
        str | None, typer.Option(help="The quarterly letter, YYYY-Qn (instead of --month).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="CSV of the table (default beside DATA).")
    ] = None,
    engine: Annotated[
        str, typer.Option(help="embedded (default) or spark: the period read on Spark (--month).")
    ] = "embedded",
) -> None:
    """Early warning: facilities whose cost per visit rises far beyond their own history and
    their peers, with the change split into case mix, price and volume, and the evidence."""
    from features.early_warning import facility_warnings, quarter_warnings

    if (month is None) == (quarter is None):
        raise _fail("give one of --month YYYY-MM or --quarter YYYY-Qn")
    if engine not in ("embedded", "spark"):
        raise _fail(f"--engine must be embedded or spark, not {engine!r}")
    if engine == "spark" and quarter:
        raise _fail("--engine spark takes --month (the quarterly letter runs embedded)")
    period = month or quarter
    try:
        if engine == "spark":
            table = _warnings_spark(data, month)
        else:
            table = facility_warnings(data, month) if month else quarter_warnings(data, quarter)
    except ValueError as e:
        raise _fail(str(e)) from None
    table = table.rename(columns={"facility_id": "MA_CSKCB"})
    out = out or data / f"facility_warnings_{period}.csv"
    table.to_csv(out, index=False)
    warned = table[table["warning"]]
    show = ["MA_CSKCB", "claims", "cost_per_visit", "change", "mix_effect", "price_effect",
            "volume_effect", "z"]  # fmt: skip
    view = warned[show].copy()
    for col in ("cost_per_visit", "change", "mix_effect", "price_effect", "volume_effect"):
        view[col] = (view[col] / 1000).round(0)  # thousand VND: fits an 80-column terminal
    view["z"] = view["z"].round(1)
    _print_frame(f"warned facilities, {period} (thousand VND per visit)", view)
    for r in warned.itertuples():
        typer.echo(f"  {r.MA_CSKCB}: {r.evidence}")
    typer.echo(f"{len(warned)} of {len(table)} facilities warned for {period} -> {out}")


def _warnings_spark(data: Path, month: str):
    from claimradar.settings import get_settings, spark_session
    from features.early_warning_spark import facility_warnings_spark

    spark = spark_session(get_settings(), "claimradar-facilities")
    return facility_warnings_spark(spark, data, month)


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
    randomize: Annotated[
        int | None,
        typer.Option(
            help="Draw the world's shape from this seed (facilities, schemes, rates, starts, "
            "labelling, a held-out facility-level scheme); --claims, if given, fixes the size."
        ),
    ] = None,
) -> None:
    """Simulate a claims world with labelled abuse schemes (tabular input format + truth)."""
    import simulator

    if randomize is not None:
        draw = simulator.draw_world(randomize, claims if claims != 100_000 else None)
        with progress_bar(f"simulate world {randomize}"):
            result = simulator.simulate(out, **draw.simulate_kwargs(), report=report)
        typer.echo(f"world {randomize}: held out {draw.held_out} from {draw.scheme_start}")
        typer.echo(result.summary())
        return

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
