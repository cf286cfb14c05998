"""python -m claimradar.cli (the service process and the demo test start the CLI this way)."""

from claimradar.cli import app

app()
