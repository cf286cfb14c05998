"""Charts drawn on the server as inline SVG (no script, no network): the SHAP waterfall of a
claim's top reasons and a facility's monthly cost per visit against its same-level peers."""

from __future__ import annotations

from markupsafe import Markup, escape

from serving.review.i18n import num

RED, DARK, BLUE, GREY, GRID = "#c2410c", "#1e293b", "#1d4ed8", "#64748b", "#e2e8f0"


def _short(x: float) -> str:
    a = abs(x)
    if a >= 1e9:
        return f"{x / 1e9:.1f}B"
    if a >= 1e6:
        return f"{x / 1e6:.1f}M"
    if a >= 1e3:
        return f"{x / 1e3:.0f}k"
    return f"{x:.0f}"


def waterfall(reasons: list[dict], lang: str, total_label: str, width: int = 820) -> Markup:
    """Each reason's contribution (log-odds) stacked from 0, then their sum."""
    items = [(r.get(f"text_{lang}") or r.get("feature", ""), float(r.get("contribution") or 0))
             for r in reasons if r.get("contribution") is not None]  # fmt: skip
    if not items:
        return Markup("")
    label_w, row_h, pad = 400, 30, 12
    plot_w = width - label_w - 70
    total = sum(c for _, c in items)
    hi = max(total, max(0.0, *(c for _, c in items)), 1e-9)
    scale = plot_w / hi
    height = (len(items) + 1) * row_h + 2 * pad + 14
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(total_label)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    x0 = label_w
    out.append(
        f'<line x1="{x0}" y1="{pad - 4}" x2="{x0}" y2="{height - pad - 10}" stroke="{GREY}"/>'
    )
    cum = 0.0
    for i, (label, c) in enumerate([*items, (total_label, None)]):
        y = pad + i * row_h
        if c is None:
            start, end, colour = 0.0, total, DARK
            value = f"{total:+.2f}".replace(".", "," if lang == "vi" else ".")
        else:
            start, end, colour = cum, cum + c, RED
            cum = end
            value = f"{c:+.2f}".replace(".", "," if lang == "vi" else ".")
        a, b = sorted((start, end))
        text = label if len(label) <= 62 else label[:60] + "…"
        out.append(
            f'<text x="{label_w - 8}" y="{y + row_h / 2 + 4}" text-anchor="end" '
            f'font-size="12" fill="{DARK}"><title>{escape(label)}</title>{escape(text)}</text>'
        )
        out.append(
            f'<rect x="{x0 + a * scale:.1f}" y="{y + 5}" width="{max((b - a) * scale, 1.5):.1f}" '
            f'height="{row_h - 10}" rx="2" fill="{colour}"/>'
        )
        out.append(
            f'<text x="{x0 + b * scale + 6:.1f}" y="{y + row_h / 2 + 4}" font-size="11" '
            f'fill="{GREY}">{value}</text>'
        )
        if c is not None and i < len(items):
            out.append(
                f'<line x1="{x0 + end * scale:.1f}" y1="{y + row_h - 5}" '
                f'x2="{x0 + end * scale:.1f}" y2="{y + row_h + 5}" stroke="{GREY}" '
                'stroke-dasharray="2,2"/>'
            )
    out.append("</svg>")
    return Markup("".join(out))


def trend(months: list[dict], lang: str, labels: tuple[str, str, str], width: int = 760) -> Markup:
    """Cost per visit by month (this facility, solid) against the same-level median (dashed);
    warning months as red dots. labels: (this facility, peers, warning)."""
    pts = [m for m in months if m.get("cost_per_visit") is not None]
    if not pts:
        return Markup("")
    height, left, right, top, bottom = 260, 64, 16, 16, 54
    pw, ph = width - left - right, height - top - bottom
    values = [m["cost_per_visit"] for m in pts] + [
        m["peer_cost_per_visit"] for m in pts if m.get("peer_cost_per_visit") is not None
    ]
    lo, hi = 0.0, max(values) * 1.1 or 1.0
    n = len(pts)

    def x(i: int) -> float:
        return left + (pw * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + ph - (v - lo) / (hi - lo) * ph

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(labels[0])}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'stroke="{GRID}"/><text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
            f'font-size="11" fill="{GREY}">{_short(v)}</text>'
        )
    for i, m in enumerate(pts):
        out.append(
            f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'font-size="11" fill="{GREY}">{escape(m["month"])}</text>'
        )
    peer = [(x(i), y(m["peer_cost_per_visit"])) for i, m in enumerate(pts)
            if m.get("peer_cost_per_visit") is not None]  # fmt: skip
    if peer:
        d = " ".join(f"{a:.1f},{b:.1f}" for a, b in peer)
        out.append(
            f'<polyline points="{d}" fill="none" stroke="{GREY}" stroke-width="2" '
            'stroke-dasharray="6,4"/>'
        )
    own = [(x(i), y(m["cost_per_visit"])) for i, m in enumerate(pts)]
    out.append(
        f'<polyline points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in own)}" fill="none" '
        f'stroke="{BLUE}" stroke-width="2.5"/>'
    )
    for (a, b), m in zip(own, pts, strict=True):
        colour = RED if m.get("warning") else BLUE
        r = 5 if m.get("warning") else 3.5
        tip = f"{m['month']}: {num(m['cost_per_visit'], lang)}"
        out.append(
            f'<circle cx="{a:.1f}" cy="{b:.1f}" r="{r}" fill="{colour}"><title>{escape(tip)}'
            "</title></circle>"
        )
    ly = height - 14
    out.append(
        f'<line x1="{left}" x2="{left + 24}" y1="{ly - 4}" y2="{ly - 4}" stroke="{BLUE}" '
        f'stroke-width="2.5"/><text x="{left + 30}" y="{ly}" font-size="12" fill="{DARK}">'
        f"{escape(labels[0])}</text>"
        f'<line x1="{left + 190}" x2="{left + 214}" y1="{ly - 4}" y2="{ly - 4}" '
        f'stroke="{GREY}" stroke-width="2" stroke-dasharray="6,4"/>'
        f'<text x="{left + 220}" y="{ly}" font-size="12" fill="{DARK}">{escape(labels[1])}</text>'
        f'<circle cx="{left + 390}" cy="{ly - 4}" r="5" fill="{RED}"/>'
        f'<text x="{left + 400}" y="{ly}" font-size="12" fill="{DARK}">{escape(labels[2])}</text>'
    )
    out.append("</svg>")
    return Markup("".join(out))
