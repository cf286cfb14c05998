"""The supervisors' dashboard: money recovered and hit rate by month and band (serving.outcomes),
the facilities with the most money rejected, officers' throughput, the drift alerts of the
latest monitoring report (`claimradar monitor` writes monitor-YYYY-MM.json into the monitoring
folder) and the model versions in service; charts drawn on the server as inline SVG."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from serving.outcomes import case_rows, records, summarize, throughput
from serving.review.charts import BLUE, DARK, GREY, GRID, RED, _short
from serving.store import Store

log = logging.getLogger("claimradar.review")
REPORT = re.compile(r"monitor-(\d{4}-\d{2})\.json")
TOP_FACILITIES = 10


@dataclass(frozen=True)
class DashboardConfig:
    """Kept on `app.state.dashboard`: where monitoring reports are, and which model versions
    serve (a callable returning {"champion": "3", "challenger": "4"}, None when unknown)."""

    monitoring_dir: Path | None = None
    model_versions: Callable[[], dict[str, str | None]] | None = None


def latest_monitoring(folder: Path | None) -> dict | None:
    """The summary of the latest month in `folder` (by month), or None."""
    if folder is None or not Path(folder).is_dir():
        return None
    found = sorted(p for p in Path(folder).iterdir() if REPORT.fullmatch(p.name))
    for path in reversed(found):  # monitor-YYYY-MM.json: the name orders the months
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("monitoring report %s unreadable", path.name)
            continue
        if isinstance(doc, dict) and isinstance(doc.get("alerts"), list):
            return doc
    return None


def registry_versions(tracking_uri: str, artifact_root: Path, ttl: float = 60.0):
    """A `model_versions` callable over the MLflow registry, answers kept `ttl` seconds."""
    lock, cache = threading.Lock(), {"at": float("-inf"), "value": None}

    def versions() -> dict[str, str | None] | None:
        with lock:
            if time.monotonic() - cache["at"] < ttl:
                return cache["value"]
            try:
                from scoring import registry

                client = registry.connect(tracking_uri, artifact_root)
                value = {a: _str(registry.version_by_alias(client, a))
                         for a in ("champion", "challenger")}  # fmt: skip
            except Exception:  # the registry unreachable: the page says "unknown"
                log.warning("model registry unreachable for the dashboard", exc_info=True)
                value = None
            cache.update(at=time.monotonic(), value=value)
            return value

    return versions


def _str(v) -> str | None:
    return None if v is None else str(v)


def dashboard_view(store: Store, cfg: DashboardConfig) -> dict[str, Any]:
    rows = case_rows(store)
    by_month = summarize(rows, "month")
    facilities = summarize(rows, "facility_id")
    facilities = facilities[facilities["money_rejected"] > 0].sort_values(
        ["money_rejected", "facility_id"], ascending=[False, True]
    )
    n = len(rows)
    decided = int(rows["decided"].sum()) if n else 0
    hits = int(rows["hit"].sum()) if n else 0
    return {
        "totals": {
            "cases": n,
            "decided": decided,
            "hits": hits,
            "hit_rate": hits / decided if decided else None,
            "expected_hit_rate": float(rows["risk_score"].mean()) if n else None,
            "money_rejected": float(rows["amount_rejected"].fillna(0).sum()) if n else 0.0,
            "expected_overbilled": float(rows["expected_overbilled"].sum()) if n else 0.0,
        },
        "by_month": records(by_month),
        "by_month_band": records(summarize(rows, ["month", "band"])),
        "by_band": records(summarize(rows, "band")),
        "facilities": records(facilities.head(TOP_FACILITIES)),
        "officers": records(throughput(rows).sort_values(["decided_month", "officer"])),
        "monitoring": latest_monitoring(cfg.monitoring_dir),
        "models": cfg.model_versions() if cfg.model_versions else None,
    }


# -- charts ---------------------------------------------------------------------------------------
def _frame(width: int, height: int, label: str) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
    ]


def _axis(out: list[str], lo: float, hi: float, y, left: int, right: int, fmt) -> None:
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        out.append(
            f'<line x1="{left}" x2="{right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{GREY}">{escape(fmt(v))}</text>'
        )


def _legend(out: list[str], items: list[tuple[str, str, bool]], x0: int, y: int) -> None:
    x = x0
    for colour, label, dashed in items:
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        out.append(
            f'<line x1="{x}" x2="{x + 24}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" '
            f'stroke-width="6"{dash}/><text x="{x + 30}" y="{y}" font-size="12" '
            f'fill="{DARK}">{escape(label)}</text>'
        )
        x += 40 + 8 * len(label)


def money_chart(months: list[dict], labels: tuple[str, str], width: int = 760) -> Markup:
    """Per month: the money rejected (red) beside the expected overbilled amount of the decided
    cases (grey). labels: (rejected, expected)."""
    if not months:
        return Markup("")
    height, left, right, top, bottom = 240, 64, 16, 16, 50
    pw, ph = width - left - right, height - top - bottom
    hi = max([m["money_rejected"] or 0 for m in months]
             + [m["expected_overbilled_decided"] or 0 for m in months]) * 1.1 or 1.0  # fmt: skip

    def y(v: float) -> float:
        return top + ph - v / hi * ph

    out = _frame(width, height, labels[0])
    _axis(out, 0.0, hi, y, left, width - right, _short)
    step = pw / len(months)
    bar = min(28.0, step * 0.35)
    for i, m in enumerate(months):
        cx = left + step * (i + 0.5)
        for dx, v, colour in ((-bar, m["money_rejected"], RED),
                              (0.0, m["expected_overbilled_decided"], GREY)):  # fmt: skip
            v = float(v or 0)
            out.append(
                f'<rect x="{cx + dx:.1f}" y="{y(v):.1f}" width="{bar:.1f}" '
                f'height="{max(top + ph - y(v), 0):.1f}" fill="{colour}"><title>'
                f"{escape(m['month'])}: {escape(_short(v))}</title></rect>"
            )
        out.append(
            f'<text x="{cx:.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11" '
            f'fill="{GREY}">{escape(m["month"])}</text>'
        )
    _legend(out, [(RED, labels[0], False), (GREY, labels[1], False)], left, height - 10)
    out.append("</svg>")
    return Markup("".join(out))


def hit_rate_chart(months: list[dict], labels: tuple[str, str], width: int = 760) -> Markup:
    """Per month: the realised hit rate (blue, decided months) and the expected one from the
    calibrated probabilities (dashed grey, every month). labels: (realised, expected)."""
    if not months:
        return Markup("")
    height, left, right, top, bottom = 240, 64, 16, 16, 50
    pw, ph = width - left - right, height - top - bottom
    n = len(months)

    def x(i: int) -> float:
        return left + pw * (i + 0.5) / n

    def y(v: float) -> float:
        return top + ph - v * ph

    out = _frame(width, height, labels[0])
    _axis(out, 0.0, 1.0, y, left, width - right, lambda v: f"{v:.0%}")
    for i, m in enumerate(months):
        out.append(
            f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'font-size="11" fill="{GREY}">{escape(m["month"])}</text>'
        )
    for key, colour, dashed in (("expected_hit_rate", GREY, True), ("hit_rate", BLUE, False)):
        pts = [(x(i), y(float(m[key]))) for i, m in enumerate(months) if m.get(key) is not None]
        if not pts:
            continue
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        out.append(
            f'<polyline points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in pts)}" fill="none" '
            f'stroke="{colour}" stroke-width="2.5"{dash}/>'
        )
        for a, b in pts:
            out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{colour}"/>')
    _legend(out, [(BLUE, labels[0], False), (GREY, labels[1], True)], left, height - 10)
    out.append("</svg>")
    return Markup("".join(out))
