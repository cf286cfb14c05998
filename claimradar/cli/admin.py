"""Administration: API keys, review-UI accounts, labels from officers' decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from claimradar.cli.common import _fail, _print_frame, _store, app, console

keys_app = typer.Typer(help="API keys of the scoring service.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


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
