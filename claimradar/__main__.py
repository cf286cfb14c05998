from claimradar.cli import app

app()
