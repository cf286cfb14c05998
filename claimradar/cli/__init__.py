"""The command line: one Typer app, one command per job. Each command parses, loads settings and
calls one library function; long jobs show progress and end with a one-line summary.

The commands live by area: common (the app, progress, errors), data, model, monitor, serve,
admin (keys, users, labels) and demo. Importing the package registers them on `app`, in the order
`claimradar --help` lists them. Library imports stay inside the commands, so starting the CLI does
no work."""

# isort: off
from claimradar.cli import data, model, monitor, serve, admin, demo  # noqa: F401 - the order of --help

# isort: on
from claimradar.cli.common import app

__all__ = ["app"]
