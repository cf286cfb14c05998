"""Data commands: ingest, export-xml, features, facilities, simulate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from claimradar.cli.common import SRC_HELP, _fail, _print_frame, _print_ingest, app, progress_bar


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
