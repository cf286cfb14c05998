"""Which lines of a claim document drive its score (the case page marks them): a line priced
above its item's typical price, a line of the cost groups a reason's feature or a rule points at,
an order outside the stay. Heuristic by design: the model scores claims, not lines."""

from __future__ import annotations

# A reason's feature or a rule points at the lines of these cost groups (COST_GROUPS names).
FEATURE_GROUPS = (
    ("lab", ("lab",)),
    ("imaging", ("imaging",)),
    ("functional", ("functional",)),
    ("diag", ("lab", "imaging", "functional")),
    ("bed", ("bed",)),
    ("drug", ("drug",)),
    ("supply_days", ("drug",)),
    ("surgery", ("surgery",)),
    ("procedure", ("surgery", "procedure")),
    ("exam", ("exam",)),
    ("service", ("lab", "imaging", "functional", "procedure", "surgery")),
    ("supportive", ("drug",)),
    ("costly", ("drug", "supply", "surgery")),
    ("top_line", ("drug", "supply", "surgery", "procedure")),
)
RULE_GROUPS = {
    "R05": ("bed",),
    "R06": ("bed",),
    "R08": ("bed",),
    "R13": ("drug",),
    "R16": ("exam",),
    "R17": ("surgery",),
}
PRICE_MARGIN = 1.05  # a unit price 5 % above the item's typical price is marked


def driving_lines(doc: dict, reasons: list[dict], rule_hits: list[dict]) -> dict[str, list[str]]:
    """line_id -> why the line is marked: "price" (above its item's typical price), a rule code,
    or a reason's feature name. Heuristic by design: the model scores claims, not lines."""
    marks: dict[str, list[str]] = {}
    groups: dict[str, str] = {}
    for r in reasons or []:
        feat = str(r.get("feature", ""))
        for token, gs in FEATURE_GROUPS:
            if token in feat:
                for g in gs:
                    groups.setdefault(g, feat)
    codes = {h.get("code") for h in rule_hits or []}
    for code, gs in RULE_GROUPS.items():
        if code in codes:
            for g in gs:
                groups[g] = code
    summary = doc.get("summary", {})
    start, end = summary.get("admitted_at"), summary.get("discharged_at")
    for line in doc.get("lines", []):
        why = []
        price, typical = line.get("unit_price"), line.get("typical_price")
        if price and typical and price > typical * PRICE_MARGIN:
            why.append("R14" if "R14" in codes else "price")
        if line.get("group") in groups:
            why.append(groups[line["group"]])
        at = line.get("ordered_at")
        if "R07" in codes and at and start and end and not (start <= at <= end):
            why.append("R07")
        if why:
            marks[line["line_id"]] = why
    return marks
