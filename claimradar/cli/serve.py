"""The serve command and the server process it starts (command line and environment)."""

from __future__ import annotations

from typing import Annotated

import typer

from claimradar.cli.common import app

# The service refuses the public development linkage key unless it serves demo or test data:
# with it anyone can recompute the keyed hashes that link patients and cards.
DEMO_ENV = "CLAIMRADAR_DEMO"
DEV_KEY_REFUSED = (
    "CLAIMRADAR_LINKAGE_KEY is not set: the service will not run with the public development "
    "linkage key. Set CLAIMRADAR_LINKAGE_KEY to your own secret (the key the data was ingested "
    "with), or pass --demo for demo and test data."
)


def uses_dev_key(settings) -> bool:
    from claimradar.settings import DEV_LINKAGE_KEY

    return settings.linkage_key.get_secret_value() == DEV_LINKAGE_KEY


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
    demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="Allow the public development linkage key (demo and test data only)."
        ),
    ] = False,
) -> None:
    """Serve the scoring API and the review UI (BentoML) with the champion model."""
    import os

    from claimradar.cli.common import _fail
    from claimradar.settings import get_settings
    from serving.store import upgrade

    s = get_settings()
    if uses_dev_key(s) and not demo:
        raise _fail(DEV_KEY_REFUSED)
    s.ensure_home()
    # once here, not racing in every worker; with the data key, so an older store's identities
    # are sealed by migration 0005, not dropped; the keys exist before the workers start
    upgrade(s.case_store_url, s.data_secret())
    s.review_secret()
    cmd = serve_command(host, port, bento)
    typer.echo(f"claimradar: serving on http://{host}:{port} (API /score, UI /review, /docs.json)")
    env = {**service_env(s, bento), "CLAIMRADAR_WORKERS": str(workers)}
    if demo:
        env[DEMO_ENV] = "1"  # the workers check the key again (service.py)
    os.execvpe(cmd[0], cmd, env)
