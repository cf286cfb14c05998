"""A simulated tabular world with errors of every kind ingest checks (issue 15): bad dates and
codes, text where numbers belong, missing required fields, negative quantities, duplicate claim
keys (far apart in the file, so batches cut by key must still see them together), lines whose claim
is missing or whose MA_LK is empty. Deterministic for a given seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def corrupt_world(src: Path, out: Path, seed: int = 7) -> Path:
    """Copy the tabular world SRC into OUT with about 3% of the records broken."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    x1 = pd.read_parquet(src / "xml1.parquet")
    x2 = pd.read_parquet(src / "xml2.parquet")
    x3 = pd.read_parquet(src / "xml3.parquet")

    def pick(df: pd.DataFrame, frac: float) -> np.ndarray:
        return rng.choice(len(df), max(1, int(len(df) * frac)), replace=False)

    x1.loc[pick(x1, 0.01), "NGAY_VAO"] = "20251340"  # month 13
    x1.loc[pick(x1, 0.005), "NGAY_RA"] = "yesterday"
    x1.loc[pick(x1, 0.01), "MA_BENH_CHINH"] = "NOT A CODE"
    x1.loc[pick(x1, 0.005), "MA_CSKCB"] = None  # required
    money = x1["T_TONGCHI_BV"].astype("str")
    money.iloc[pick(x1, 0.005)] = "12,5e3x"
    money.iloc[pick(x1, 0.002)] = "inf"
    x1["T_TONGCHI_BV"] = money
    dups = x1.iloc[pick(x1, 0.01)].copy()  # the same keys again, at the end of the file
    dups["MA_BN"] = "DUPLICATE"
    x1 = pd.concat([x1, dups], ignore_index=True)
    x1.loc[pick(x1, 0.001), "MA_LK"] = None
    x2.loc[pick(x2, 0.01), "SO_LUONG"] = -1.0
    x2.loc[pick(x2, 0.005), "MA_NHOM"] = 99  # unknown code
    x2.loc[pick(x2, 0.003), "MA_LK"] = "NO-SUCH-CLAIM"
    x3.loc[pick(x3, 0.005), "NGAY_YL"] = "2025"
    x3.loc[pick(x3, 0.003), "MA_LK"] = None
    stt = x3["STT"].astype("str")
    stt.iloc[pick(x3, 0.003)] = "1.5"
    x3["STT"] = stt
    x1.to_parquet(out / "xml1.parquet", row_group_size=997)  # several row groups
    x2.to_parquet(out / "xml2.parquet", row_group_size=1009)
    x3.to_parquet(out / "xml3.parquet", row_group_size=1013)
    for name in ("facilities.parquet", "labels.parquet"):
        if (src / name).exists():
            (out / name).write_bytes((src / name).read_bytes())
    return out
