"""The demo: the main job end to end on embedded defaults, in six steps."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from claimradar.cli.common import _fail, _print_frame, _print_ingest, app, console, progress_bar

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "envelopes"


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
    from claimradar.settings import get_settings

    settings = get_settings()
    work = _demo_workdir(workdir, settings)
    _demo_sample(work, settings)
    _demo_world(work, settings, claims)
    result = _demo_train(work, settings)
    _demo_promote(work, settings, result.version)
    scored, frame = _demo_score(work, settings)
    env = _demo_env(work, settings)
    logins = _demo_queue(
        work, scored, frame, env["CLAIMRADAR_DATABASE_URL"], env["CLAIMRADAR_DATA_KEY"]
    )
    if not serve:
        return
    _demo_serve(work, env, port, logins)


def _demo_workdir(workdir: Path | None, settings) -> Path:
    """A fresh working folder: the one given, or demo/ under CLAIMRADAR_HOME."""
    work = workdir or settings.ensure_home() / "demo"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    return work


def _demo_sample(work: Path, settings) -> None:
    """1. The way in: XML 130 envelopes as facilities send them (one dossier bad, one file cut)."""
    from claimradar.settings import ingest_limits
    from contract.ingest import ingest as run_ingest
    from contract.ingest import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "envelopes"
        shutil.copytree(SAMPLE, src)
        with progress_bar("1/6 ingest the sample envelopes") as update:
            report = run_ingest(
                src,
                work / "sample",
                limits=ingest_limits(settings),
                linkage_key=settings.linkage_key.get_secret_value(),
                progress=update,
            )
    _print_ingest(report)
    rej = load_dataset(work / "sample").get("rejections")
    if rej is not None and len(rej):
        own = rej[(rej["field"] != "") | (rej["table"] == "file")]
        _print_frame("rejections (field errors)", own[["source_file", "field", "value", "error"]])


def _demo_world(work: Path, settings, claims: int) -> None:
    """2. A province's claims world with abuse schemes and the agency's labels."""
    import simulator
    from claimradar.settings import ingest_limits
    from contract.ingest import ingest as run_ingest

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
            linkage_key=settings.linkage_key.get_secret_value(),
            progress=update,
        )
    console.print(sim.summary())


def _demo_train(work: Path, settings):
    """3. Train against the labels, with baselines, logged and registered in MLflow."""
    from training.train import train as run_train

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
    return result


def _demo_promote(work: Path, settings, version: int) -> None:
    """4. Promote: the challenger becomes champion only if it finds at least as much money."""
    from training import tracking
    from training.promote import promote as run_promote

    client = tracking.connect(settings.tracking_uri, settings.artifact_root)
    decision = run_promote(client, version, dataset=work / "dataset")
    console.print(
        f"4/6 promote v{decision.challenger}: "
        f"{'promoted' if decision.promoted else 'not promoted'} ({decision.reason})"
    )


def _demo_score(work: Path, settings):
    """5. Score every claim with the champion and show the top of the review queue."""
    from serving.batch import resolve_bundle, score_dataset, write_scores

    with progress_bar("5/6 score") as update:
        update(0, 1)
        bundle, version = resolve_bundle(None, settings.tracking_uri, settings.artifact_root)
        scored, frame = score_dataset(work / "dataset", bundle, version, with_frame=True)
        write_scores(scored, work / "scores.parquet")
        update(1, 1)
    _demo_top(scored)
    band = scored["band"].value_counts()
    typer.echo(
        f"demo: scored {len(scored):,} claims with model v{version} "
        f"({band.get('high', 0):,} high, {band.get('review', 0):,} review) -> "
        f"{work / 'scores.parquet'}; MLflow store {settings.tracking_uri} (see mlflow/README.md)"
    )
    return scored, frame


def _demo_top(scored) -> None:
    """The first ten claims of the review queue, with their top reason and rule hits."""
    import pandas as pd

    top = scored.head(10).copy()
    top["top reason"] = [r[0]["text_en"] if r else "" for r in top["reasons"]]
    top["rules"] = [", ".join(h["code"] for h in hits) for hits in top["rule_hits"]]
    top["admitted"] = pd.to_datetime(top["admitted_at"]).dt.strftime("%Y-%m-%d")
    show = ["rank", "claim_id", "facility_id", "admitted", "risk_score", "expected_overbilled",
            "band", "rules", "top reason"]  # fmt: skip
    _print_frame("the top of the review queue (ranked by the money at stake)", top[show].round(3))


def _demo_env(work: Path, settings) -> dict[str, str]:
    """6. The officers' queue: the scores in a case store of the demo's own, two accounts."""
    from serving.sealing import new_key

    return {
        "CLAIMRADAR_HOME": str(settings.home),
        "CLAIMRADAR_MLFLOW_TRACKING_URI": settings.tracking_uri,
        "CLAIMRADAR_MLFLOW_ARTIFACT_ROOT": str(settings.artifact_root),
        "CLAIMRADAR_DATABASE_URL": f"sqlite:///{work / 'cases.db'}",
        "CLAIMRADAR_SECURE_COOKIES": "false",  # plain HTTP on this machine only
        "CLAIMRADAR_DATA_KEY": new_key(),  # seals the identities of the demo's cases
    }


def _demo_queue(work: Path, scored, frame, url: str, data_key: str) -> dict[str, str]:
    import secrets

    from contract.ingest import load_dataset
    from serving.casefile import fill_store
    from serving.review.users import create_user
    from serving.store import Store

    store = Store(url, data_key=data_key)
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


def _stop_on_sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt  # as Ctrl+C: the finally below stops the service


def _demo_serve(work: Path, env: dict, port: int, logins: dict[str, str]) -> None:
    """Serve until Ctrl+C or SIGTERM (`timeout`, systemd, a container stop): the BentoML server
    runs in its own process group, so the demo stops it itself on either."""
    import signal

    from serving import process

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    console.print("starting the service (BentoML: the API and the review UI)...")
    try:
        svc = process.start(env, work / "service.log", port=port, key_name="demo", demo=True)
    except RuntimeError as e:
        raise _fail(str(e)) from None
    except KeyboardInterrupt:  # stopped while starting: process.start stopped the server
        console.print("stopped")
        return
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
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM: let the stop finish
        svc.stop()
