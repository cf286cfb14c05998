"""Distribution shift between a reference sample (the champion's training window) and a month:
the population stability index (PSI) with a two-sample test per column, and shares compared.

PSI = sum over bins of (cur - ref) * ln(cur / ref), bins from the reference's deciles (numbers)
or its categories; a missing value is a bin of its own, and empty bins get a small floor so the
logarithm stays finite. The usual reading: below 0.1 stable, 0.1-0.25 moderate, above 0.25 a
major shift. A large PSI on a few rows is noise, so drift also needs the test to reject: the
Kolmogorov-Smirnov test for numbers, chi-square on the category counts for codes.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

FLOOR = 1e-4  # the share given to an empty bin
BINS = 10
MISSING = "__missing__"


def _numeric(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def numeric_bins(ref: pd.Series, cur: pd.Series, bins: int = BINS) -> pd.DataFrame:
    """Counts of the reference and the current values in the reference's quantile bins (plus a
    missing bin): columns bin, ref, cur."""
    r, c = _numeric(ref), _numeric(cur)
    rv = r[~np.isnan(r)]
    edges = np.unique(np.quantile(rv, np.linspace(0, 1, bins + 1)[1:-1])) if len(rv) else []
    edges = np.asarray(edges, dtype="float64")

    def counts(x: np.ndarray) -> np.ndarray:
        ok = x[~np.isnan(x)]
        idx = np.searchsorted(edges, ok, side="right")
        out = np.bincount(idx, minlength=len(edges) + 1).astype("float64")
        return np.append(out, np.isnan(x).sum())

    labels = [f"<= {edges[0]:.4g}"] if len(edges) else ["all"]
    labels += [f"({a:.4g}, {b:.4g}]" for a, b in itertools.pairwise(edges)]
    if len(edges):
        labels.append(f"> {edges[-1]:.4g}")
    labels.append(MISSING)
    return pd.DataFrame({"bin": labels, "ref": counts(r), "cur": counts(c)})


def category_bins(ref: pd.Series, cur: pd.Series) -> pd.DataFrame:
    """Counts per category (a missing value is a category): columns bin, ref, cur."""
    r = ref.astype("object").where(ref.notna(), MISSING).astype(str).value_counts()
    c = cur.astype("object").where(cur.notna(), MISSING).astype(str).value_counts()
    both = r.index.union(c.index)
    return pd.DataFrame(
        {
            "bin": [str(b) for b in both],
            "ref": r.reindex(both, fill_value=0).to_numpy(dtype="float64"),
            "cur": c.reindex(both, fill_value=0).to_numpy(dtype="float64"),
        }
    )


def psi(table: pd.DataFrame) -> float:
    """PSI of a bins table (columns ref and cur: counts)."""
    r, c = table["ref"].to_numpy(), table["cur"].to_numpy()
    if r.sum() == 0 or c.sum() == 0:
        return float("nan")
    p = np.maximum(r / r.sum(), FLOOR)
    q = np.maximum(c / c.sum(), FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def _ks(ref: pd.Series, cur: pd.Series) -> tuple[float, float]:
    r, c = _numeric(ref), _numeric(cur)
    r, c = r[~np.isnan(r)], c[~np.isnan(c)]
    if len(r) < 2 or len(c) < 2:
        return float("nan"), float("nan")
    res = stats.ks_2samp(r, c)
    return float(res.statistic), float(res.pvalue)


def _chi2(table: pd.DataFrame) -> tuple[float, float]:
    t = table[(table["ref"] + table["cur"]) > 0]
    if len(t) < 2 or t["ref"].sum() == 0 or t["cur"].sum() == 0:
        return float("nan"), float("nan")
    res = stats.chi2_contingency(t[["ref", "cur"]].to_numpy().T)
    return float(res.statistic), float(res.pvalue)


def column_drift(ref: pd.Series, cur: pd.Series, categorical: bool = False) -> dict:
    """PSI, the test (ks or chi2), its statistic and p-value, and the two means (numbers)."""
    if categorical:
        table = category_bins(ref, cur)
        stat, p = _chi2(table)
        test = "chi2"
    else:
        table = numeric_bins(ref, cur)
        stat, p = _ks(ref, cur)
        test = "ks"
    out = {"psi": psi(table), "test": test, "statistic": stat, "p_value": p}
    if not categorical:
        rv, cv = _numeric(ref), _numeric(cur)
        out["ref_mean"] = float(np.nanmean(rv)) if np.isfinite(rv).any() else float("nan")
        out["cur_mean"] = float(np.nanmean(cv)) if np.isfinite(cv).any() else float("nan")
    return out


def feature_drift(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    names: list[str],
    categorical: set[str],
    psi_alert: float,
    p_value: float,
) -> pd.DataFrame:
    """One row per feature, largest PSI first: feature, psi, test, statistic, p_value, the means,
    and `drifted` (PSI at least `psi_alert` and the test rejecting at `p_value`)."""
    rows = []
    for name in names:
        if name not in ref.columns or name not in cur.columns:
            continue
        d = column_drift(ref[name], cur[name], name in categorical)
        rows.append({"feature": name, **d})
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["feature", "psi", "test", "statistic", "p_value", "drifted"])
    df["drifted"] = (df["psi"] >= psi_alert) & (df["p_value"] < p_value)
    return df.sort_values("psi", ascending=False, na_position="last").reset_index(drop=True)


def share_change(ref_hits: int, ref_n: int, cur_hits: int, cur_n: int) -> dict:
    """Two shares compared: both shares, the change and a two-proportion z-test's p-value."""
    p1 = ref_hits / ref_n if ref_n else float("nan")
    p2 = cur_hits / cur_n if cur_n else float("nan")
    pooled = (ref_hits + cur_hits) / (ref_n + cur_n) if ref_n + cur_n else float("nan")
    se = math.sqrt(pooled * (1 - pooled) * (1 / ref_n + 1 / cur_n)) if ref_n and cur_n else 0.0
    p = float(2 * stats.norm.sf(abs(p2 - p1) / se)) if se > 0 else float(p1 == p2)
    return {"ref_share": p1, "cur_share": p2, "change": p2 - p1, "p_value": p}


def psi_of(ref: pd.Series, cur: pd.Series, categorical: bool = False) -> float:
    return psi(category_bins(ref, cur) if categorical else numeric_bins(ref, cur))


def baseline_psi(
    ref: pd.DataFrame, months: pd.Series, baseline_months: list[str], column: str, cat: bool
) -> float:
    """How far the training window's own months stray from it: the largest PSI of one of
    `baseline_months` against the rest of the window (0 when there is no such month). A month
    is called drifted only well beyond this, so features that move from month to month by
    nature (seasons, history that grows) do not raise alarms."""
    out = 0.0
    for m in baseline_months:
        inside = (months == m).to_numpy()
        if inside.all() or not inside.any():
            continue
        v = psi_of(ref.loc[~inside, column], ref.loc[inside, column], cat)
        if np.isfinite(v):
            out = max(out, v)
    return out
