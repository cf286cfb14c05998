"""Claims as the API receives them (XML 130 names, lines in xml2/xml3), from a simulated world."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd


def claims_json(world_tabular: Path, n: int, ids=None) -> list[dict]:
    """The last n claims of the world's tabular files (or those with MA_LK in ids)."""
    x1 = pd.read_parquet(world_tabular / "xml1.parquet")
    x1 = x1[x1["MA_LK"].isin(ids)] if ids is not None else x1.tail(n)
    keys = set(x1["MA_LK"])
    x2 = pd.read_parquet(world_tabular / "xml2.parquet")
    x3 = pd.read_parquet(world_tabular / "xml3.parquet")
    x2, x3 = x2[x2["MA_LK"].isin(keys)], x3[x3["MA_LK"].isin(keys)]

    def clean(d):
        return {k: v for k, v in d.items() if v is not None and v == v}

    drugs = {k: [clean(r) for r in g.to_dict("records")] for k, g in x2.groupby("MA_LK")}
    services = {k: [clean(r) for r in g.to_dict("records")] for k, g in x3.groupby("MA_LK")}
    out = []
    for r in x1.to_dict("records"):
        c = clean(r)
        c["xml2"] = drugs.get(c["MA_LK"], [])
        c["xml3"] = services.get(c["MA_LK"], [])
        out.append(c)
    return out


def moved_claim(claim: dict, new_id: str, days: int = 1) -> dict:
    """The claim under another MA_LK, every date-time (yyyymmddHHMM) `days` later."""

    def move(v):
        if isinstance(v, str) and len(v) == 12 and v.isdigit() and v.startswith("20"):
            t = datetime.strptime(v, "%Y%m%d%H%M") + timedelta(days=days)
            return t.strftime("%Y%m%d%H%M")
        return v

    def fields(d: dict) -> dict:
        return {k: new_id if k == "MA_LK" else move(v) for k, v in d.items()}

    out = fields({k: v for k, v in claim.items() if k not in ("xml2", "xml3")})
    out["xml2"] = [fields(x) for x in claim.get("xml2", [])]
    out["xml3"] = [fields(x) for x in claim.get("xml3", [])]
    return out
