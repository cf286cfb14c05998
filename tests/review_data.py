"""Helpers of the review tests: a small, realistic slice of the scored world for the case store
(every case-band claim of a few facilities plus the same patients' other claims), and users."""

from __future__ import annotations

import pandas as pd

from serving.casefile import fill_store
from serving.review.users import create_user

PASSWORDS = {
    "officer1": "officer1-password",
    "officer2": "officer2-password",
    "super1": "super1-password!",
    "super2": "super2-password!",
    "admin1": "admin1-password!",
}
ROLES = {"officer1": "officer", "officer2": "officer", "super1": "supervisor",
         "super2": "supervisor", "admin1": "admin"}  # fmt: skip


def slice_of(sw: dict, cases: int = 120) -> pd.DataFrame:
    """The `cases` highest-priority claims of the case bands and their patients' other claims."""
    scored, claims = sw["scored"], sw["tables"]["claims"]
    top = scored[scored["band"].isin(["high", "review"])].nlargest(cases, "priority")
    people = claims.loc[claims["claim_id"].isin(top["claim_id"]), "person_key"]
    same = claims.loc[claims["person_key"].isin(people), "claim_id"]
    return scored[scored["claim_id"].isin(set(top["claim_id"]) | set(same))]


def fill(store, sw: dict, cases: int = 120, facility_months: bool = False) -> pd.DataFrame:
    part = slice_of(sw, cases)
    fill_store(
        store, part, sw["tables"], sw["frame"], actor="cli:test", facility_months=facility_months
    )
    return part


def add_users(store) -> dict[str, int]:
    return {n: create_user(store, n, ROLES[n], p) for n, p in PASSWORDS.items()}
