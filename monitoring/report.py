"""The monitoring report: the JSON summary and one self-contained HTML page with its plots
(matplotlib PNGs inlined; no script, no network), written as monitor-YYYY-MM.json/.html."""

from __future__ import annotations

import base64
import io
import json
from html import escape
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from monitoring.monitor import Monitoring
from scoring.scorer import BANDS

PREFIX = "monitor-"
MOVER_COLUMNS = ["feature", "group", "psi", "baseline", "ratio", "test", "p_value", "ref_mean",
                 "cur_mean", "drifted"]  # fmt: skip
RULE_COLUMNS = ["code", "rule", "ref_share", "cur_share", "change", "limit", "p_value", "drifted"]


def paths(out: Path, month: str) -> tuple[Path, Path]:
    return Path(out) / f"{PREFIX}{month}.json", Path(out) / f"{PREFIX}{month}.html"


def latest_summary(folder: Path) -> dict | None:
    """The summary of the latest month monitored in `folder` (None when there is none)."""
    files = sorted(Path(folder).glob(f"{PREFIX}????-??.json"))
    return json.loads(files[-1].read_text()) if files else None


def plots(m: Monitoring) -> dict[str, plt.Figure]:
    """The report's figures by file name."""
    figs = {"scores.png": _scores(m), "bands.png": _bands(m), "psi.png": _psi(m)}
    for i, name in enumerate(m.features["feature"].head(4)):
        figs[f"mover_{i + 1}.png"] = _mover(m, name)
    return figs


def _scores(m: Monitoring) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, col in zip(axes, ("risk_score", "priority"), strict=True):
        r, c = m.ref[col].to_numpy(float), m.cur[col].to_numpy(float)
        hi = np.nanquantile(np.concatenate([r, c]), 0.995) if len(r) + len(c) else 1.0
        bins = np.linspace(0, hi or 1.0, 40)
        ax.hist(r, bins=bins, density=True, alpha=0.5, label="training window")
        ax.hist(c, bins=bins, density=True, alpha=0.5, label=m.summary["month"])
        d = m.summary["score_drift"][col]
        ax.set(title=f"{col} (PSI {d['psi']:.3f})", yscale="log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _bands(m: Monitoring) -> plt.Figure:
    b = m.summary["bands"]
    x = np.arange(len(BANDS))
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(x - 0.2, [b["ref_share"][k] * 100 for k in BANDS], 0.4, label="training window")
    ax.bar(x + 0.2, [b["cur_share"][k] * 100 for k in BANDS], 0.4, label=m.summary["month"])
    ax.set_xticks(x, BANDS)
    ax.set(ylabel="% of claims", yscale="log", title=f"Bands (PSI {b['psi']:.3f})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _psi(m: Monitoring) -> plt.Figure:
    top = m.features.head(15).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = ["#c2410c" if d else ("#1d4ed8" if a else "#94a3b8")
               for d, a in zip(top["drifted"], top["alerting"], strict=True)]  # fmt: skip
    ax.barh(top["feature"], top["psi"], color=colours)
    ax.barh(top["feature"], top["baseline"], color="none", edgecolor="black", linewidth=0.8)
    ax.set(xlabel="PSI (outline: the training months' own)", title="Top movers (PSI / own)")
    fig.tight_layout()
    return fig


def _mover(m: Monitoring, name: str) -> plt.Figure:
    r = pd.to_numeric(m.ref[name], errors="coerce").dropna().to_numpy(float)
    c = pd.to_numeric(m.cur[name], errors="coerce").dropna().to_numpy(float)
    fig, ax = plt.subplots(figsize=(4.2, 3))
    both = np.concatenate([r, c])
    if len(both):
        lo, hi = np.quantile(both, [0.005, 0.995])
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
        ax.hist(r, bins=bins, density=True, alpha=0.5, label="training window")
        ax.hist(c, bins=bins, density=True, alpha=0.5, label=m.summary["month"])
        ax.legend(fontsize=7)
    ax.set_title(name, fontsize=10)
    fig.tight_layout()
    return fig


def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _table(rows: list[dict], cols: list[str]) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return escape(str(v if v is not None else ""))

    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = (
    "body{font:14px system-ui,sans-serif;margin:24px;color:#1e293b}table{border-collapse:collapse;"
    "margin:8px 0 20px}td,th{border:1px solid #e2e8f0;padding:3px 8px;text-align:right}"
    "th{background:#f1f5f9}.alert{background:#fff7ed;border-left:4px solid #c2410c;padding:6px "
    "10px;margin:4px 0}.ok{background:#f0fdf4;border-left:4px solid #15803d;padding:6px 10px}"
)


def html(m: Monitoring, figs: dict[str, plt.Figure]) -> str:
    s = m.summary
    imgs = {k: _png(f) for k, f in figs.items()}
    q = s["data_quality"]
    alerts = "".join(f'<div class="alert">{escape(a["kind"])}: {escape(a["message"])}</div>'
                     for a in s["alerts"]) or '<div class="ok">No alert.</div>'  # fmt: skip
    movers = "".join(
        f'<img alt="{escape(k)}" src="data:image/png;base64,{v}">'
        for k, v in imgs.items()
        if k.startswith("mover_")
    )
    model = s["model"]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>claimradar monitor "
        f"{s['month']}</title><style>{CSS}</style></head><body>",
        f"<h1>Monitoring {s['month']}: {model['name']} v{escape(model['version'])}</h1>",
        f"<p>Month: {s['current']['claims']:,} claims. Reference: {s['reference']['claims']:,} "
        f"claims from {s['reference']['from']} to before {s['reference']['until']} (the model's "
        f"training window); baseline months {', '.join(s['reference']['baseline_months'])}.</p>",
        f"<h2>Alerts</h2>{alerts}",
        f"<h2>Data quality</h2><p>{q['rejected_claims']:,} of {q['claims']:,} claims refused "
        f"({q['rejection_rate']:.2%}).</p>",
        _table(q["by_facility"][:20], ["facility_id", "claims", "rejected", "rate", "over"]),
        _table(q["by_field"][:20], ["table", "field", "claims"]),
        "<h2>Scores and bands</h2>",
        f'<img alt="scores" src="data:image/png;base64,{imgs["scores.png"]}">',
        f'<img alt="bands" src="data:image/png;base64,{imgs["bands.png"]}">',
        "<h2>Inputs: the top movers</h2>",
        f'<img alt="psi" src="data:image/png;base64,{imgs["psi.png"]}"><div>{movers}</div>',
        _table(s["feature_drift"]["top_movers"], MOVER_COLUMNS),
        "<h2>Rules: share of claims flagged</h2>",
        _table(s["rules"], RULE_COLUMNS),
        "</body></html>",
    ]
    return "\n".join(parts)


def write(m: Monitoring, out: Path) -> tuple[Path, Path, dict[str, plt.Figure]]:
    """Write monitor-MONTH.json and .html into `out`; returns their paths and the figures
    (closed by the caller once logged)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    js, page = paths(out, m.summary["month"])
    figs = plots(m)
    page.write_text(html(m, figs), encoding="utf-8")
    js.write_text(json.dumps(m.summary, indent=1, ensure_ascii=False, default=str))
    return js, page, figs
