"""Batch scoring of a dataset (`claimradar score`): the same scorer as the API, fed by the batch
feature pipeline; and resolving which model to use."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd

from scoring import registry
from scoring.bundle import ModelBundle
from scoring.scorer import score


def resolve_bundle(
    model: str | None, tracking_uri: str, artifact_root: Path
) -> tuple[ModelBundle, str]:
    """A bundle folder, a version number, `models:/claimradar-abuse@alias`, `@alias`, or None for
    the champion (else the newest challenger). Returns the bundle and its version label."""
    if model and Path(model).is_dir() and (Path(model) / "bundle.json").exists():
        return ModelBundle.load(Path(model)), Path(model).name
    client = registry.connect(tracking_uri, artifact_root)
    if model is None:
        version = registry.default_version(client)
    elif model.isdigit():
        version = int(model)
    else:
        alias = model.rsplit("@", 1)[-1]
        version = registry.version_by_alias(client, alias)
    if version is None:
        raise ValueError(f"no registered model for {model or 'champion/challenger'}; train first")
    tmp = Path(tempfile.mkdtemp(prefix="claimradar-model-"))
    return ModelBundle.load(registry.bundle_dir(client, version, tmp)), str(version)


def score_dataset(
    dataset: Path,
    bundle: ModelBundle,
    version: str,
    *,
    since: str | None = None,
    explain_top: float | None = None,
    with_frame: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of every claim (admitted from `since`), ranked; with_frame: also the feature frame
    (what the case store keeps beside a case: the claim against its peers)."""
    from features.pipeline import build_features

    frame = build_features(Path(dataset), since=since, out_of_core=True)
    if bundle.rank_weights.get("facility_shift", 0) > 0:
        # the early warning's evidence: money above the cell baseline at warned facility-months
        from features.early_warning import with_facility_shift

        frame = with_facility_shift(frame, Path(dataset))
    scored = score(bundle, frame, model_version=version, explain_top_pct=explain_top)
    if "facility_shift" in frame.columns:  # the weighted shift money the priority holds
        w = bundle.rank_weights.get("facility_shift", 0.0)
        claimed = pd.to_numeric(frame["fund_claimed"], errors="coerce").fillna(0.0).clip(lower=0)
        added = w * frame["facility_shift"].clip(upper=claimed)
        # score() keeps the frame's rows in order (MA_LK alone is unique only per facility)
        assert (scored["claim_id"].to_numpy() == frame["claim_id"].to_numpy()).all()
        scored["shift_added"] = added.to_numpy()
    keep = frame[
        ["claim_id", "facility_id", "facility_level", "visit_type", "admitted_at", "fund_claimed"]
    ]
    scored = scored.merge(keep, on="claim_id", how="left").sort_values("rank")
    return (scored, frame) if with_frame else scored


def write_scores(scored: pd.DataFrame, out: Path) -> Path:
    """Parquet or CSV by suffix; MA_LK at the edge; reasons and rule hits as JSON text."""
    df = scored.rename(columns={"claim_id": "MA_LK"}).copy()
    for col in ("reasons", "rule_hits"):
        df[col] = [json.dumps(v, ensure_ascii=False) for v in df[col]]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        df.to_csv(out, index=False)
    else:
        df.to_parquet(out, index=False)
    return out
