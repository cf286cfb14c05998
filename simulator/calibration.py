"""The calibration report: a simulated world's figures beside the published ones
(reference/published-figures.md), each with the tolerance the tests hold it to."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

# Quang Nam 2023: 10.2 bn VND rejected; its spending is not published, so it is estimated as
# insured people x visits per person x the national average spending per visit.
REJECTED_SHARE = 10.2e9 / (1_477_179 * 1.86 * 470_000)

# (figure, published, kind of tolerance, tolerance)
PUBLISHED = (
    ("visits per insured person per year", 1.86, "abs", 0.10),
    ("average fund spending per visit (VND)", 470_000.0, "rel", 0.15),
    ("inpatient share of visits (assumed, not published)", 0.10, "abs", 0.03),
    ("visits, year on year", 0.0295, "abs", 0.02),
    ("costs, year on year", 0.1035, "abs", 0.035),
    ("rejected share of spending", REJECTED_SHARE, "rel", 0.5),
)
INPATIENT_TYPES = ("03", "04", "06", "09")


def _yoy(month: np.ndarray, values: np.ndarray, months: int) -> float:
    """Growth of the later 12-month-shifted months over the same calendar months a year before."""
    if months < 13:
        return float("nan")
    tot = np.bincount(month, values, minlength=months)
    m = np.arange(months - 12)
    return float(tot[m + 12].sum() / tot[m].sum() - 1)


def calibration_report(out_dir: Path) -> pd.DataFrame:
    """Columns: figure, published, simulated, tolerance, ok (NA when the world is too short)."""
    out_dir = Path(out_dir)
    meta = json.loads((out_dir / "manifest.json").read_text())
    x1 = pq.read_table(
        out_dir / "xml1.parquet", columns=["NGAY_VAO", "T_BHTT", "MA_LOAI_KCB"]
    ).to_pandas()
    lab = pq.read_table(out_dir / "labels.parquet", columns=["T_XUATTOAN"]).to_pandas()
    months = int(meta["months"])
    start = np.datetime64(meta["start"], "M")
    ym = x1["NGAY_VAO"].str.slice(0, 6)
    vao_month = pd.to_datetime(ym, format="%Y%m").to_numpy().astype("datetime64[M]")
    month = (vao_month - start).astype(np.int64)
    month = np.clip(month, 0, months - 1)
    fund = x1["T_BHTT"].to_numpy(dtype=float)
    simulated = (
        len(x1) / meta["insured_people"] / (months / 12),
        float(fund.mean()),
        float(x1["MA_LOAI_KCB"].isin(INPATIENT_TYPES).mean()),
        _yoy(month, np.ones(len(x1)), months),
        _yoy(month, fund, months),
        float(lab["T_XUATTOAN"].fillna(0).sum() / fund.sum()),
    )
    rows = []
    for (figure, pub, kind, tol), sim in zip(PUBLISHED, simulated, strict=True):
        if np.isnan(sim):
            ok = pd.NA
        elif kind == "abs":
            ok = bool(abs(sim - pub) <= tol)
        else:
            ok = bool(abs(sim - pub) <= tol * abs(pub))
        text = f"±{tol:g}" if kind == "abs" else f"±{tol:.0%}"
        rows.append(
            {"figure": figure, "published": pub, "simulated": sim, "tolerance": text, "ok": ok}
        )
    df = pd.DataFrame(rows)
    df["ok"] = df["ok"].astype("boolean")
    return df
