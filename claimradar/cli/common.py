"""What every command shares: the Typer app, the console, the progress bar, errors and tables."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
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
SRC_HELP = "An XML 130 envelope, a folder of them, or a tabular folder (xml1/xml2/xml3)."


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


def _print_frame(title: str, df) -> None:
    t = RichTable(title=title)
    for c in df.columns:
        t.add_column(str(c))
    for row in df.itertuples(index=False):
        t.add_row(*[f"{v:,.3g}" if isinstance(v, float) else str(v) for v in row])
    console.print(t)


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


def _store():
    from claimradar.settings import get_settings
    from serving.store import Store

    settings = get_settings()
    return Store(settings.case_store_url, data_key=settings.data_secret())
