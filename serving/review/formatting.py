"""What the review pages show of a value: masked identifiers, feature and rule labels, visit
types, in the page's language."""

from __future__ import annotations

from typing import Any

from features.registry import FEATURES, fmt
from features.rules import RULES
from serving.review import i18n
from serving.review.users import Account

RULE_BY_CODE = {r.code: r for r in RULES}


def mask(value: Any, keep_start: int = 0, keep_end: int = 3) -> str:
    """'GD4797912345678' -> 'GD••••••••••678'; short values are masked whole."""
    if value is None or value == "":
        return "—"
    v = str(value)
    if len(v) <= keep_start + keep_end + 2:
        return "•" * len(v)
    return v[:keep_start] + "•" * (len(v) - keep_start - keep_end) + v[len(v) - keep_end :]


def initials(name: Any) -> str:
    if not name:
        return "—"
    return " ".join(p[0] + "." for p in str(name).split() if p)


def identity(ident: dict, user: Account) -> dict:
    """The patient's identifiers as `user` may see them: whole for supervisors, masked else."""
    if user.at_least("supervisor"):
        return {k: (v if v not in (None, "") else "—") for k, v in ident.items()}
    return {
        "patient_name": initials(ident.get("patient_name")),
        "card_number": mask(ident.get("card_number"), keep_start=2, keep_end=3),
        "national_id": mask(ident.get("national_id")),
        "patient_id": mask(ident.get("patient_id")),
        "record_number": mask(ident.get("record_number")),
    }


def feature_label(name: str, lang: str) -> str:
    f = FEATURES.get(name)
    return (f.vi if lang == "vi" else f.en) if f else name


def feature_value(value: Any, name: str, unit: str | None, lang: str) -> str:
    f = FEATURES.get(name)
    return fmt(value, unit or (f.unit if f else "count"), lang)


def visit_label(code: Any, lang: str) -> str:
    from contract.schema import VISIT_TYPES

    c = str(code or "")
    name = i18n.VISIT_TYPES_VI.get(c) if lang == "vi" else VISIT_TYPES.get(c)
    return f"{c} · {name}" if name else (c or "—")


def rule_label(code: str, lang: str) -> str:
    r = RULE_BY_CODE.get(code)
    return (r.what_vi if lang == "vi" else r.what_en) if r else code
