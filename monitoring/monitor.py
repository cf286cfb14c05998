"""`claimradar monitor`: one month against the champion's training window.

The reference is every claim discharged before the champion's cutoff (what it was trained,
validated and calibrated on), scored by the champion; the month is every claim admitted in it.
Compared: data quality (refused records), each model input (PSI and a test), the scores and the
bands, and the share of claims each rule flags. Each comparison is judged against how much the
training window's own months differ from it (`drift.baseline_psi`), and raises an alert past the
thresholds (`Thresholds`, from the settings).

Which inputs can raise a feature-drift alert: the claim's own values (groups claim, lines, peer,
rule). Facility and clinician profiles take one value per entity and month, shared by all its
claims, so the tests' independence does not hold and their monthly swings are the early
warning's business; patient histories lengthen as the data grow. They are reported, not alerted.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.registry import FEATURES, categorical_names
from features.rules import RULES
from monitoring import drift
from monitoring.quality import data_quality, load_rejections
from scoring.bundle import ModelBundle
from scoring.registry import MODEL_NAME
from scoring.scorer import BANDS, OPEN_BANDS, predict

ALERT_GROUPS = ("claim", "lines", "peer", "rule")
SCORES = ("risk_score", "priority")
MIN_BASELINE_CLAIMS = 50


@dataclass(frozen=True)
class Thresholds:
    """When a comparison becomes an alert (claimradar.settings: `monitor_*`)."""

    psi_min: float = 0.02  # a feature's PSI must reach this ...
    drift_ratio: float = 2.5  # ... and this multiple of the training months' own PSI
    p_value: float = 0.01  # ... with its test (KS, chi-square, z) rejecting at this level
    min_drifted_features: int = 2  # claim-level inputs drifted for a feature-drift alert
    score_psi_min: float = 0.1  # risk score or money at stake
    band_psi_min: float = 0.05  # band shares
    rule_share_min: float = 0.005  # absolute change of the share of claims a rule flags
    rejection_rate: float = 0.02  # refused claims of the month
    facility_rejection_rate: float = 0.10  # refused claims of one facility ...
    facility_min_claims: int = 20  # ... with at least this many claims that month
    warmup_months: int = 1  # first months of the data left out of the baseline (no history)
    top_movers: int = 10


@dataclass
class Monitoring:
    summary: dict  # the JSON summary
    features: pd.DataFrame  # one row per model input, largest PSI first
    ref: pd.DataFrame = field(repr=False)  # reference claims: inputs and scores
    cur: pd.DataFrame = field(repr=False)  # the month's claims: inputs and scores


def check_month(month: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month or ""):
        raise ValueError(f"--month must be YYYY-MM, got {month!r}")
    return month


def feature_frame(dataset: Path, bundle: ModelBundle) -> pd.DataFrame:
    """Every claim's model inputs (the batch pipeline), with the facility-shift money when the
    bundle ranks with it (as `claimradar score` does)."""
    from features.pipeline import build_features

    frame = build_features(Path(dataset))
    if bundle.rank_weights.get("facility_shift", 0) > 0:
        from features.early_warning import with_facility_shift

        frame = with_facility_shift(frame, Path(dataset))
    return frame


def monitor(
    dataset: Path,
    month: str,
    bundle: ModelBundle,
    version: str,
    thresholds: Thresholds,
    *,
    frame: pd.DataFrame | None = None,
    alias: str = "champion",
) -> Monitoring:
    check_month(month)
    t = thresholds
    frame = feature_frame(dataset, bundle) if frame is None else frame
    window = dict(bundle.meta.get("data_window") or {})
    if "cutoff" not in window:
        raise ValueError(f"model v{version} has no training window (data_window) in its bundle")
    cutoff = pd.Timestamp(window["cutoff"])
    months = frame["admitted_at"].dt.strftime("%Y-%m")
    ref_mask = (frame["discharged_at"] < cutoff).to_numpy()
    cur_mask = (months == month).to_numpy()
    if not cur_mask.any():
        have = f"{months.min()} to {months.max()}" if len(months) else "none"
        raise ValueError(f"no claims admitted in {month} in {dataset} (months: {have})")
    if not ref_mask.any():
        raise ValueError(f"no claims before the model's cutoff {cutoff:%Y-%m-%d} in {dataset}")
    outputs = ["risk_score", "priority", "band"]
    sub = frame[ref_mask | cur_mask].drop(columns=outputs, errors="ignore")
    scored = predict(bundle, sub)[outputs].set_index(sub.index)
    both = pd.concat([sub, scored], axis=1)  # one join: no fragmented frame
    ref, cur = both[ref_mask[ref_mask | cur_mask]], both[cur_mask[ref_mask | cur_mask]]
    ref_months = months[ref_mask]
    counts = ref_months.value_counts()
    first = sorted(months.unique())[: t.warmup_months]
    base = sorted(m for m, n in counts.items() if n >= MIN_BASELINE_CLAIMS and m not in first)

    features = _features(ref, cur, ref_months, base, bundle.feature_names, t)
    scores = {s: _one(ref, cur, ref_months, base, s, False, t.score_psi_min, t) for s in SCORES}
    bands = _bands(ref, cur, ref_months, base, t)
    rules = _rules(ref, cur, ref_months, base, t)
    quality = data_quality(
        load_rejections(dataset),
        cur[["claim_id", "facility_id"]],
        month,
        t.facility_rejection_rate,
        t.facility_min_claims,
    )
    alerts = _alerts(features, scores, bands, rules, quality, t)
    movers = features.head(t.top_movers)
    summary = {
        "month": month,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": str(Path(dataset).resolve()),
        "model": {
            "name": MODEL_NAME,
            "version": str(version),
            "alias": alias,
            "data_window": window,
        },
        "reference": {
            "claims": len(ref),
            "from": str(ref_months.min()),
            "until": window["cutoff"],
            "baseline_months": base,
        },
        "current": {"claims": len(cur), "inside_training_window": bool(month < f"{cutoff:%Y-%m}")},
        "data_quality": quality,
        "feature_drift": {
            "features": len(features),
            "drifted": features.loc[features["drifted"], "feature"].tolist(),
            "top_movers": _records(movers),
            "all": _records(features),
        },
        "score_drift": scores,
        "bands": bands,
        "rules": rules,
        "alerts": alerts,
        "thresholds": asdict(t),
    }
    return Monitoring(summary, features, ref, cur)


def _features(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    ref_months: pd.Series,
    base_months: list[str],
    names: list[str],
    t: Thresholds,
) -> pd.DataFrame:
    cat = set(categorical_names())
    table = drift.feature_drift(ref, cur, names, cat, t.psi_min, t.p_value)
    if table.empty:
        return table.assign(group=[], baseline=[], alerting=[], ratio=[])
    table["group"] = [FEATURES[n].group if n in FEATURES else "" for n in table["feature"]]
    table["baseline"] = [
        drift.baseline_psi(ref, ref_months, base_months, n, n in cat) for n in table["feature"]
    ]
    table["alerting"] = table["group"].isin(ALERT_GROUPS)
    # how far beyond its own month-to-month swing: the order of the top movers
    table["ratio"] = table["psi"] / np.maximum(table["baseline"], t.psi_min)
    table["drifted"] = (
        table["alerting"]
        & (table["psi"] >= np.maximum(t.psi_min, t.drift_ratio * table["baseline"]))
        & (table["p_value"] < t.p_value)
    )
    return table.sort_values("ratio", ascending=False, na_position="last").reset_index(drop=True)


def _one(ref, cur, ref_months, base_months, col, cat, floor, t: Thresholds) -> dict:
    d = drift.column_drift(ref[col], cur[col], cat)
    base = drift.baseline_psi(ref, ref_months, base_months, col, cat)
    d["baseline"] = base
    d["limit"] = max(floor, t.drift_ratio * base)
    d["drifted"] = bool(d["psi"] >= d["limit"] and d["p_value"] < t.p_value)
    return _plain(d)


def _bands(ref, cur, ref_months, base_months, t: Thresholds) -> dict:
    out = _one(ref, cur, ref_months, base_months, "band", True, t.band_psi_min, t)
    share = {
        "ref": ref["band"].value_counts(normalize=True).reindex(BANDS, fill_value=0.0),
        "cur": cur["band"].value_counts(normalize=True).reindex(BANDS, fill_value=0.0),
    }
    out["ref_share"] = {b: float(v) for b, v in share["ref"].items()}
    out["cur_share"] = {b: float(v) for b, v in share["cur"].items()}
    out["ref_case_share"] = float(share["ref"][list(OPEN_BANDS)].sum())
    out["cur_case_share"] = float(share["cur"][list(OPEN_BANDS)].sum())
    return out


def _rules(ref, cur, ref_months, base_months, t: Thresholds) -> list[dict]:
    out = []
    for r in RULES:
        if r.flag not in ref.columns:
            continue
        rf = ref[r.flag].fillna(0).to_numpy() > 0
        cf = cur[r.flag].fillna(0).to_numpy() > 0
        d = drift.share_change(int(rf.sum()), len(rf), int(cf.sum()), len(cf))
        base = 0.0
        for m in base_months:
            inside = (ref_months == m).to_numpy()
            if inside.any() and not inside.all():
                base = max(base, abs(rf[inside].mean() - rf[~inside].mean()))
        limit = max(t.rule_share_min, t.drift_ratio * base)
        d.update(
            code=r.code,
            rule=r.name,
            ref_claims=int(rf.sum()),
            cur_claims=int(cf.sum()),
            baseline=float(base),
            limit=float(limit),
            drifted=bool(abs(d["change"]) >= limit and d["p_value"] < t.p_value),
        )
        out.append(_plain(d))
    return out


def _alerts(features, scores, bands, rules, quality, t: Thresholds) -> list[dict]:
    alerts = []
    drifted = features[features["drifted"]]
    if len(drifted) >= t.min_drifted_features:
        top = ", ".join(f"{r.feature} (PSI {r.psi:.3f})" for r in drifted.head(5).itertuples())
        alerts.append(
            _alert("feature_drift", f"{len(drifted)} claim-level inputs drifted: {top}",
                   features=drifted["feature"].tolist())
        )  # fmt: skip
    for name, d in scores.items():
        if d["drifted"]:
            alerts.append(_alert("score_drift", f"{name} drifted (PSI {d['psi']:.3f})", score=name))
    if bands["drifted"]:
        alerts.append(
            _alert("band_drift", f"band shares drifted (PSI {bands['psi']:.3f}; case bands "
                   f"{bands['cur_case_share']:.1%} vs {bands['ref_case_share']:.1%})")
        )  # fmt: skip
    moved = [r for r in rules if r["drifted"]]
    if moved:
        top = ", ".join(f"{r['code']} {r['ref_share']:.1%} -> {r['cur_share']:.1%}" for r in moved)
        alerts.append(_alert("rule_share", f"share of claims flagged changed: {top}",
                             rules=[r["code"] for r in moved]))  # fmt: skip
    if quality["rejection_rate"] > t.rejection_rate:
        alerts.append(
            _alert("rejection_rate", f"{quality['rejected_claims']:,} of {quality['claims']:,} "
                   f"claims refused ({quality['rejection_rate']:.1%})")
        )  # fmt: skip
    over = [f for f in quality["by_facility"] if f["over"]]
    if over:
        top = ", ".join(f"{f['facility_id']} {f['rate']:.0%}" for f in over[:5])
        alerts.append(_alert("facility_rejections", f"facilities with many refused claims: {top}",
                             facilities=[f["facility_id"] for f in over]))  # fmt: skip
    return alerts


def _alert(kind: str, message: str, **detail) -> dict:
    return {"kind": kind, "message": message, **detail}


def _plain(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not np.isfinite(v):
            v = None
        out[k] = v
    return out


def _records(df: pd.DataFrame) -> list[dict]:
    return [_plain(r) for r in df.to_dict("records")]
