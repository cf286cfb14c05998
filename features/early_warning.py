"""Facility early warning (the warning letters on rising cost per visit, TT 12/2026 art. 13):
per facility and month, cost per visit and visits, the change against the facility's own recent
months split into case mix, price and volume, tested in a way that accounts for volume, and the
claims that carry the shift (evidence for the review queue).

The decomposition. A claim falls in a cell (diagnosis chapter x visit type). Against the baseline
(the facility's own `TREND_MONTHS` months before), the change in cost per visit is
- case mix: what this month's visits would cost at the baseline's cost of each cell, minus the
  baseline cost per visit (more inpatients is not abuse);
- price: this month's lines at their own unit price minus the same lines at the facility's
  baseline unit price of the item;
- volume: the rest of the within-cell change (more items and units per visit).

The statistics. The within-cell change is tested with a z statistic whose variance is the claims'
own cost variance per cell (and the baseline mean's uncertainty), so a facility of 150 claims
needs a much larger relative change than one of 5,000 to be flagged. The relative change is then
shrunk toward the facility's same-level peers (empirical Bayes on volume), compared with the
peers' median change (the other facilities', never its own; a tariff change moves everyone) and
with the facility's own month-to-month variation (a control chart on its own series). A test
passes when all three do.

Two tests, each with its own baseline: the month test against the TREND_MONTHS months before (a
jump), the drift test against the TREND_MONTHS months before the last DRIFT_GAP (a climb spread
over months hides in a baseline that climbs with it). A facility is warned when either passes;
its row's baseline figures (`claims_trend`, `cost_per_visit_trend`, the effects) are those of the
test in `test` (the month test when both passed), and the shift evidence uses the same baseline.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

TREND_MONTHS = 3  # the baseline: the facility's own months before
SERIES_MONTHS = 6  # the facility's own series for the control chart
MIN_CLAIMS = 30  # fewer claims in the month: listed, never flagged
MIN_BASELINE = 60  # fewer baseline claims: listed, never flagged
Z_FLAG = 4.0  # volume-aware z of the within-cell change (about 1 in 30,000 by chance)
EXCESS = 0.10  # relative within-cell change, shrunk and above the peers' median, at least this
SHRINK_CLAIMS = 100  # claims at which the facility's own change counts half against its peers
CONTROL_SIGMAS = 3.0  # the change must exceed this many of the facility's own monthly sigmas
MOVED_Z = 2.0  # a warned facility's cell carries the shift when its own z is above this
LOOKBACK_EXTRA = 3  # months further back a baseline may reach past warned months
SHIFT_SHRINK = 20  # claims at which a cell's mean shift counts half (toward no shift)
DRIFT_GAP = 3  # the drift test's baseline ends this many months before the month (0: no test)
# the drift test's excess and z: on the selection worlds (bench/quality_worlds.py, seeds 101-112,
# months July-December) the most facility-months with >= 5% of their cost overbilled found with
# no false alarm (+4 over the month test alone, of 33); the month test alone found 29
DRIFT_EXCESS = 0.10
DRIFT_Z = 8.0
SHIFT_MONEY = "shift_claim"  # the `facility_shift` money (chosen in bench/quality_worlds.py)

COLUMNS = [
    "month", "facility_id", "facility_name", "facility_level", "claims", "claims_trend",
    "cost_per_visit", "cost_per_visit_trend", "change", "mix_effect", "price_effect",
    "volume_effect", "growth_vs_trend", "growth_shrunk", "peer_growth_median", "growth_excess",
    "own_sigma", "z", "robust_z", "cost_per_visit_last_year", "growth_yoy", "warning", "test",
    "evidence",
]  # fmt: skip


def _month_number(ts: pd.Series) -> np.ndarray:
    ts = pd.to_datetime(ts)
    return (ts.dt.year * 12 + ts.dt.month - 1).to_numpy()


CELL_COLUMNS = ("claim_id", "facility_id", "admitted_at", "total_cost", "fund_claimed",
                "primary_icd", "visit_type")  # fmt: skip
LINE_COLUMNS = ("claim_id", "drug_code", "service_code", "supply_code", "quantity", "unit_price")


def _tables(dataset, lines: bool = True) -> dict[str, pd.DataFrame]:
    """The tables the early warning reads, column-pruned from a dataset folder; `lines`: the line
    tables too (only the price effect of the decomposition reads them)."""
    if isinstance(dataset, dict):
        return dataset if lines else {k: v for k, v in dataset.items() if not k.endswith("_lines")}
    import pyarrow.parquet as pq

    folder = Path(dataset)
    want = {"claims": CELL_COLUMNS, "facilities": None}
    if lines:
        want |= {"drug_lines": LINE_COLUMNS, "service_lines": LINE_COLUMNS}
    out = {}
    for name, cols in want.items():
        p = folder / f"{name}.parquet"
        if p.exists():
            have = pq.read_schema(p).names
            keep = None if cols is None else [c for c in cols if c in have]
            out[name] = pd.read_parquet(p, columns=keep)
    return out


def claim_cells(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per claim: facility, level, month number, cell, cost and the fund's money."""
    c = tables["claims"]
    fac = tables.get("facilities")
    out = pd.DataFrame(
        {
            "claim_id": c["claim_id"].to_numpy(),
            "facility_id": c["facility_id"].astype(str).to_numpy(),
            "month": _month_number(c["admitted_at"]),
            "cost": pd.to_numeric(c["total_cost"], errors="coerce").fillna(0.0).to_numpy(),
            "fund": pd.to_numeric(c["fund_claimed"], errors="coerce").fillna(0.0).to_numpy(),
        }
    )
    icd = c["primary_icd"].astype("string").fillna("").str.upper().str[:1]
    out["cell"] = (icd + "|" + c["visit_type"].astype("string").fillna("")).to_numpy()
    one_claim_sums(out)
    level = name = None
    if fac is not None and len(fac):
        f = fac.drop_duplicates("facility_id").set_index("facility_id")
        level = out["facility_id"].map(f["level"]) if "level" in f else None
        name = out["facility_id"].map(f["facility_name"]) if "facility_name" in f else None
    if level is None:
        level = pd.Series("U", index=out.index)
    out["facility_level"] = level.fillna("U")
    out["facility_name"] = name if name is not None else ""
    return out


def one_claim_sums(cells: pd.DataFrame) -> None:
    """Each claim (a row with its `cost`) as a cell sum of one claim: n, s, ls, ls2 (cell_sums)."""
    cells["log_cost"] = np.log(np.clip(cells["cost"].to_numpy(), 1.0, None))
    cells["n"], cells["s"], cells["ls"] = 1, cells["cost"], cells["log_cost"]
    cells["ls2"] = cells["log_cost"] ** 2


SUMS = ["n", "s", "ls", "ls2"]  # claims, their cost, log cost and squared log cost, summed
CELL_KEYS = ["facility_id", "month", "cell"]
PRICE_KEYS = ["facility_id", "month", "item", "price"]


def cell_sums(cells: pd.DataFrame) -> pd.DataFrame:
    """claim_cells summed per facility, month and cell (with the facility's level and name): all
    the warning's statistics read (means and variances of cost and log cost per cell, cost per
    visit, the control chart), so a period's claims reach it as one row per facility-month-cell
    (the Spark engine sums them on its executors, features.early_warning_spark)."""
    if cells.empty:
        return cells[[*CELL_KEYS, *SUMS, "facility_level", "facility_name"]].copy()
    g = cells.groupby(CELL_KEYS, sort=False)
    out = g[SUMS].sum()
    out[["facility_level", "facility_name"]] = g[["facility_level", "facility_name"]].first()
    return out.reset_index()


def price_sums(lines: pd.DataFrame) -> pd.DataFrame:
    """_line_prices summed per facility, month, item and unit price: lines `w` and quantity
    `qty` (the price effect's medians are weighted by `w`)."""
    if lines.empty:
        return pd.DataFrame({c: [] for c in [*PRICE_KEYS, "w", "qty"]})
    g = lines.groupby(PRICE_KEYS, sort=False)
    return g["qty"].agg(w="size", qty="sum").reset_index()


def _line_prices(tables: dict[str, pd.DataFrame], cells: pd.DataFrame) -> pd.DataFrame:
    """Lines with facility, month, item, quantity and unit price (drugs and services)."""
    parts = []
    for table, code in (("drug_lines", "drug_code"), ("service_lines", "service_code")):
        t = tables.get(table)
        if t is None or t.empty:
            continue
        item = t[code].astype("string").fillna("")
        if table == "service_lines" and "supply_code" in t:
            item = item.where(item != "", t["supply_code"].astype("string").fillna(""))
        parts.append(
            pd.DataFrame(
                {
                    "claim_id": t["claim_id"].to_numpy(),
                    "item": (table[0] + ":" + item).to_numpy(),
                    "qty": pd.to_numeric(t["quantity"], errors="coerce").fillna(0.0).to_numpy(),
                    "price": pd.to_numeric(t["unit_price"], errors="coerce").to_numpy(),
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=["facility_id", "month", "item", "qty", "price"])
    lines = pd.concat(parts, ignore_index=True)
    key = cells.set_index("claim_id")[["facility_id", "month"]]
    lines = lines.join(key, on="claim_id", how="inner")
    return lines[lines["price"].notna()]


def _price_effect(lines: pd.DataFrame, m: int, gap: int = 0) -> pd.Series:
    """Per facility: this month's lines at their price minus at the facility's baseline price of
    the same item, the median of its baseline lines (items without one count as unchanged).
    LINES: price_sums."""
    cur = lines[lines["month"] == m]
    base = lines[(lines["month"] >= m - gap - TREND_MONTHS) & (lines["month"] < m - gap)]
    if cur.empty or base.empty:
        return pd.Series(dtype="float64")
    ref = _weighted_median(base, ["facility_id", "item"], "price", "w").rename("ref")
    x = cur.join(ref, on=["facility_id", "item"])
    diff = (x["price"] - x["ref"]).fillna(0.0) * x["qty"]
    return diff.groupby(x["facility_id"]).sum()


def _weighted_median(rows: pd.DataFrame, keys: list[str], value: str, weight: str) -> pd.Series:
    """Per group of KEYS: the median of VALUE over the rows each repeated WEIGHT times (pandas'
    median of the repeated rows: the mean of the two middle values of an even count)."""
    r = rows.sort_values([*keys, value], kind="stable")
    g = r.groupby(keys, sort=False)[weight]
    end = g.cumsum().to_numpy()
    start = end - r[weight].to_numpy()
    total = g.transform("sum").to_numpy()

    def at(k: np.ndarray) -> pd.Series:  # the value at position k of each group's repeated rows
        hit = (start <= k) & (k < end)
        return r.loc[hit].set_index(keys)[value]

    return (at((total - 1) // 2) + at(total // 2)) / 2


# A variance from sums cancels digits: one below this share of the mean square is rounding, 0
# (a cell whose claims all cost the same has no spread, as pandas' two-pass variance says).
VAR_FLOOR = 1e-12


def _cell_stats(rows: pd.DataFrame, keys=("facility_id", "cell"), prefix: str = "") -> pd.DataFrame:
    """Claims, mean cost, mean and variance (ddof 1) of log cost per group, from cell sums."""
    g = rows.groupby(list(keys))[SUMS].sum()
    n = g["n"].astype("float64")
    lvar = (g["ls2"] - g["ls"] ** 2 / n) / (n - 1)
    lvar = lvar.where(lvar > VAR_FLOOR * g["ls2"] / n, 0.0).where(n > 1)
    out = pd.DataFrame({"n": g["n"], "mean": g["s"] / n, "lmean": g["ls"] / n, "lvar": lvar})
    return out.add_prefix(prefix)


def _baseline(cells: pd.DataFrame, m: int, months: int, excluded: frozenset) -> pd.DataFrame:
    """Each facility's claims of its last `months` months before `m`, leaving out the months it
    was warned in (a shifted month must not become the yardstick of the next one)."""
    win = cells[(cells["month"] >= m - months - LOOKBACK_EXTRA) & (cells["month"] < m)]
    fm = win[["facility_id", "month"]].drop_duplicates()
    if excluded:
        bad = pd.MultiIndex.from_frame(fm).isin(list(excluded))
        fm = fm[~bad]
    rank = fm.groupby("facility_id")["month"].rank(ascending=False, method="first")
    keep = fm[rank <= months]
    return win.merge(keep, on=["facility_id", "month"], how="inner")


def _own_sigma(cells: pd.DataFrame, m: int, excluded: frozenset = frozenset()) -> pd.Series:
    """The facility's own month-to-month sigma of log cost per visit at constant mix over the
    SERIES_MONTHS before `m` (each month against the pooled cell means of that window)."""
    win = _baseline(cells, m, SERIES_MONTHS, excluded)
    if win.empty:
        return pd.Series(dtype="float64")
    g = win.groupby(["facility_id", "cell"])[["s", "n"]].sum()
    pooled = (g["s"] / g["n"]).rename("pooled")
    x = win.join(pooled, on=["facility_id", "cell"])
    x["pooled_cost"] = x["pooled"] * x["n"]  # the month's claims at the window's cell means
    by = x.groupby(["facility_id", "month"])[["s", "pooled_cost"]].sum()
    ratio = np.log(by["s"].clip(lower=1.0) / by["pooled_cost"].clip(lower=1.0))
    sd = ratio.groupby(level=0).std(ddof=1)
    months = ratio.groupby(level=0).size()
    return sd.where(months >= 3)


def _evidence(cur: pd.DataFrame, ref: pd.DataFrame, top: int = 3) -> pd.Series:
    """Per facility: the cells that moved most (money above the baseline cell mean)."""
    x = cur.join(ref["mean"].rename("ref_mean"), on=["facility_id", "cell"])
    x["excess"] = (x["s"] - x["n"] * x["ref_mean"]).fillna(0.0)
    g = x.groupby(["facility_id", "cell"]).agg(
        n=("n", "sum"), excess=("excess", "sum"), ref=("ref_mean", "first")
    )
    g = g[g["excess"] > 0].sort_values("excess", ascending=False)
    out = {}
    for fid, rows in g.groupby(level=0, sort=False):
        parts = []
        for (_, cell), r in rows.head(top).iterrows():
            chapter, vt = cell.split("|")
            per = r["excess"] / r["n"]
            parts.append(
                f"{chapter or '?'}/{vt}: {int(r['n'])} visits +{per:,.0f} "
                f"({per / max(r['ref'], 1.0):+.0%})"
            )
        out[fid] = "; ".join(parts)
    return pd.Series(out, dtype="object")


def _deviations(cur: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """This month's claims with the baseline of their cell: the facility's own cell when it had
    at least 5 claims, else the same-level peers' cell, else the facility's overall baseline.
    `dev` is the claim's cost above the baseline mean (money); the test runs on log cost (costs
    are heavy-tailed): `ldev` and its variance `ldev_var` (the baseline mean's own included).
    CUR may be cell sums (cell_sums): a row's figures are then the sums over its claims."""
    own = _cell_stats(base, prefix="o")
    peer = _cell_stats(base, ("facility_level", "cell"), "p")
    fac = _cell_stats(base, ("facility_id",), "f")
    x = cur.join(own, on=["facility_id", "cell"]).join(peer, on=["facility_level", "cell"])
    x = x.join(fac, on="facility_id")
    use_own = x["on"].fillna(0) >= 5
    use_peer = ~use_own & (x["pn"].fillna(0) >= 5)
    for col in ("n", "mean", "lmean", "lvar"):
        x[f"ref_{col}"] = np.select([use_own, use_peer], [x[f"o{col}"], x[f"p{col}"]], x[f"f{col}"])
    x["dev"] = x["s"] - x["n"] * x["ref_mean"]
    x["ldev"] = x["ls"] - x["n"] * x["ref_lmean"]
    x["ldev_var"] = x["n"] * x["ref_lvar"] * (1.0 + 1.0 / np.clip(x["ref_n"], 1.0, None))
    return x


def _month_table(
    cells: pd.DataFrame, lines: pd.DataFrame, m: int, excluded: frozenset, gap: int = 0
) -> pd.DataFrame:
    """Month `m` against the baseline of the TREND_MONTHS months before `m - gap`."""
    cur = cells[cells["month"] == m]
    base = _baseline(cells, m - gap, TREND_MONTHS, excluded)
    ref = _cell_stats(base)
    fac_base = base.groupby("facility_id")[["n", "s"]].sum()
    x = _deviations(cur, base)
    # this month's visits at baseline cell costs: over the claims whose cell has a baseline
    x["ref_cost"] = x["n"] * x["ref_mean"]
    x["ref_claims"] = x["n"].where(x["ref_mean"].notna())
    g = x.groupby("facility_id")
    claims = g["n"].sum()
    out = pd.DataFrame(
        {
            "facility_level": g["facility_level"].first(),
            "facility_name": g["facility_name"].first(),
            "claims": claims,
            "cost_per_visit": g["s"].sum() / claims,
            "expected": g["ref_cost"].sum() / g["ref_claims"].sum().where(lambda v: v > 0),
            "ldev_sum": g["ldev"].sum(),
            "ldev_var": g["ldev_var"].sum(),
        }
    )
    out["claims_trend"] = fac_base["n"].reindex(out.index).fillna(0).astype("int64")
    out["cost_per_visit_trend"] = (fac_base["s"] / fac_base["n"]).reindex(out.index)
    out["change"] = out["cost_per_visit"] - out["cost_per_visit_trend"]
    out["mix_effect"] = out["expected"] - out["cost_per_visit_trend"]
    within = out["cost_per_visit"] - out["expected"]
    price = _price_effect(lines, m, gap).reindex(out.index)
    out["price_effect"] = (price / out["claims"]).fillna(0.0)
    out["volume_effect"] = within - out["price_effect"]
    out["growth_vs_trend"] = within / out["expected"].where(out["expected"] > 0)
    out["z"] = out["ldev_sum"] / np.sqrt(out["ldev_var"].where(out["ldev_var"] > 0))
    out["evidence"] = _evidence(cur, ref).reindex(out.index).fillna("")
    return out


def _parse_month(month: str) -> int:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(month)):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    period = pd.Period(month, freq="M")
    return period.year * 12 + period.month - 1


def warnings_by_month(
    dataset, months: list[str], *, skip_missing: bool = False
) -> dict[str, pd.DataFrame]:
    """`facility_warnings` of several months (YYYY-MM) from one pass: the tables are read and the
    monthly sequence (each baseline leaving out months already warned) runs once. A month
    without claims is an error, or left out with `skip_missing`."""
    tables = _tables(dataset)
    cells = claim_cells(tables)
    lines = price_sums(_line_prices(tables, cells))
    return warnings_from_sums(cell_sums(cells), lines, months, skip_missing=skip_missing)


def warnings_from_sums(
    sums: pd.DataFrame, lines: pd.DataFrame, months: list[str], *, skip_missing: bool = False
) -> dict[str, pd.DataFrame]:
    """warnings_by_month from a period's cell_sums and price_sums (however they were summed)."""
    wanted = {m: _parse_month(m) for m in months}
    have = set(sums["month"].unique())
    for month, m in list(wanted.items()):
        if m not in have:
            if not skip_missing:
                raise ValueError(f"no claims admitted in {month}")
            del wanted[month]
    if not wanted:
        return {}
    # from the first month of the data, so a month's warnings never depend on which months were
    # asked for (the months already warned shape later baselines); shift_evidence runs the same
    hi = max(wanted.values())
    seq = _sequence(sums, lines, sorted(k for k in have if k <= hi))
    return {month: seq[m] for month, m in wanted.items()}


def facility_warnings(dataset, month: str, *, engine: str = "duckdb") -> pd.DataFrame:
    """One row per facility with claims in `month` (YYYY-MM): cost per visit and visits, the
    change against its own baseline split into case mix, price and volume, the volume-aware
    statistics, and `warning`; sorted with warnings first. `engine` is accepted for symmetry with
    the other feature commands; the monthly aggregates are small and run in pandas."""
    del engine
    return warnings_by_month(dataset, [month])[month]


def _sequence(cells: pd.DataFrame, lines: pd.DataFrame, months) -> dict[int, pd.DataFrame]:
    """The warnings of `months` in order, each month's baseline leaving out the months its
    facility was already warned in."""
    excluded: set = set()
    out = {}
    for m in sorted(months):
        w = _warnings(cells, lines, m, frozenset(excluded))
        out[m] = w
        excluded |= {(f, m) for f in w.loc[w["warning"], "facility_id"]}
    out["excluded"] = frozenset(excluded)  # type: ignore[index]
    return out


MIN_PEERS = 2  # fewer other facilities of the level: the peers are every other facility


def _leave_one_out(values: np.ndarray) -> np.ndarray:
    """Each value's median of the OTHER values (NaN values are no one's peer; their own median is
    of all the others), from one sort; NaN where fewer than MIN_PEERS others."""
    values = np.asarray(values, dtype="float64")
    out = np.full(len(values), np.nan)
    have = ~np.isnan(values)
    s = np.sort(values[have])
    n = len(s)
    if n and (~have).any() and n >= MIN_PEERS:
        out[~have] = np.median(s)
    if n - 1 < MIN_PEERS:
        return out
    j = np.argsort(np.argsort(values[have], kind="stable"), kind="stable")  # sorted positions

    def others_at(r: int) -> np.ndarray:  # the r-th of the others, per removed position j
        return np.where(r < j, s[r], s[np.minimum(r + 1, n - 1)])

    m = (n - 1) // 2
    out[have] = others_at(m) if (n - 1) % 2 else (others_at(m - 1) + others_at(m)) / 2
    return out


def _peer_median(growth: pd.Series, level: pd.Series) -> pd.Series:
    """Each facility's peers' median change: the other facilities of its level (never itself: in
    a level of three a climbing facility would be its own yardstick), or every other facility
    when its level has fewer than MIN_PEERS others with a change."""
    by_level = pd.Series(np.nan, index=growth.index)
    for _, idx in growth.groupby(level).groups.items():
        by_level[idx] = _leave_one_out(growth[idx].to_numpy(dtype="float64"))
    overall = pd.Series(_leave_one_out(growth.to_numpy(dtype="float64")), index=growth.index)
    return by_level.fillna(overall)


def _tested(
    cells: pd.DataFrame,
    lines: pd.DataFrame,
    m: int,
    excluded: frozenset,
    gap: int,
    excess: float,
    z: float,
) -> pd.DataFrame:
    """Month `m` against the baseline before `m - gap`, with the volume-aware statistics and
    `flag` (all three tests passed). The drift test (`gap` > 0) needs the facility's own series
    before its baseline (no control chart, no warning)."""
    out = _month_table(cells, lines, m, excluded, gap)
    growth = out["growth_vs_trend"]
    # shrink toward the same-level peers' median change by volume (empirical Bayes)
    peer = _peer_median(growth, out["facility_level"])
    weight = out["claims"] / (out["claims"] + SHRINK_CLAIMS)
    out["peer_growth_median"] = peer
    out["growth_shrunk"] = weight * growth + (1 - weight) * peer
    out["growth_excess"] = out["growth_shrunk"] - peer
    med = growth.median()
    mad = (growth - med).abs().median() * 1.4826
    out["robust_z"] = (growth - med) / max(mad, 0.02) if growth.notna().any() else np.nan
    out["own_sigma"] = _own_sigma(cells, m - gap, excluded).reindex(out.index)
    sigma = out["own_sigma"] if gap else out["own_sigma"].fillna(0.0)  # drift: a series needed
    control = np.log1p(growth.clip(lower=-0.99)) > CONTROL_SIGMAS * sigma
    out["flag"] = (
        (out["claims"] >= MIN_CLAIMS)
        & (out["claims_trend"] >= MIN_BASELINE)
        & (out["z"] > z)
        & (out["growth_excess"] > excess)
        & control
    ).fillna(False)
    return out


def _warnings(
    cells: pd.DataFrame, lines: pd.DataFrame, m: int, excluded: frozenset = frozenset()
) -> pd.DataFrame:
    """The month test (against the last TREND_MONTHS months) and the drift test (against the
    TREND_MONTHS months before the last DRIFT_GAP: a climb spread over months hides in a baseline
    that climbs with it); a facility flagged by either is warned, its row showing the test that
    fired (the month test when both did)."""
    out = _tested(cells, lines, m, excluded, 0, EXCESS, Z_FLAG)
    out["test"] = np.where(out["flag"], "month", "")
    if DRIFT_GAP:
        drift = _tested(cells, lines, m, excluded, DRIFT_GAP, DRIFT_EXCESS, DRIFT_Z)
        only = drift["flag"].reindex(out.index, fill_value=False) & ~out["flag"]
        if only.any():
            ids = only[only].index
            out.loc[ids, drift.columns] = drift.loc[ids, drift.columns]
            out.loc[ids, "test"] = "drift"
    out["warning"] = out["test"] != ""
    ly = cells[cells["month"] == m - 12].groupby("facility_id")[["s", "n"]].sum()
    ly = ly["s"] / ly["n"]
    out["cost_per_visit_last_year"] = ly.reindex(out.index)
    out["growth_yoy"] = out["cost_per_visit"] / out["cost_per_visit_last_year"] - 1
    y, mo = divmod(m, 12)
    out["month"] = f"{y:04d}-{mo + 1:02d}"
    out = out.reset_index().sort_values(
        ["warning", "growth_excess", "facility_id"], ascending=[False, False, True]
    )
    return out[COLUMNS].reset_index(drop=True)


def quarter_warnings(dataset, quarter: str) -> pd.DataFrame:
    """The quarterly letter (YYYY-Qn): each facility warned in any month of the quarter, with the
    month of its strongest warning."""
    q = re.fullmatch(r"(\d{4})-Q([1-4])", str(quarter))
    if not q:
        raise ValueError(f"quarter must be YYYY-Qn, got {quarter!r}")
    year, n = int(q.group(1)), int(q.group(2))
    first = year * 12 + (n - 1) * 3
    months = [f"{(first + k) // 12:04d}-{(first + k) % 12 + 1:02d}" for k in range(3)]
    frames = list(warnings_by_month(dataset, months, skip_missing=True).values())
    if not frames:
        raise ValueError(f"no claims admitted in {quarter}")
    allm = pd.concat(frames, ignore_index=True)
    allm["quarter"] = quarter
    warned = allm[allm["warning"]].sort_values("growth_excess", ascending=False)
    return warned.drop_duplicates("facility_id").reset_index(drop=True)


def shift_evidence(dataset, months: list[int] | None = None) -> pd.DataFrame:
    """Per claim of a warned facility-month: the money it carries above the baseline cost of its
    cell (the fund's share of it), the evidence the review queue's `facility_shift` term uses.
    `months` are month numbers (year x 12 + month - 1); default every month.
    Claims of months or facilities without a warning are not listed (their shift money is 0)."""
    # the lines feed only the decomposition's price effect, never a flag or the evidence
    cells = claim_cells(_tables(dataset, lines=False))

    def claims_of(warned: pd.DataFrame) -> pd.DataFrame:
        keys = pd.MultiIndex.from_frame(cells[["facility_id", "month"]])
        return cells[keys.isin(pd.MultiIndex.from_frame(warned[["facility_id", "month"]]))]

    return shift_from_sums(cell_sums(cells), claims_of, months)


def shift_from_sums(sums: pd.DataFrame, claims_of, months: list[int] | None = None) -> pd.DataFrame:
    """shift_evidence from the period's cell_sums and `claims_of`: the claim_cells rows of warned
    facility-months it is handed (facility_id, month), the only claims read one by one (on Spark
    the only ones sent to the driver: features.early_warning_spark.shift_evidence_spark)."""
    have = sorted(sums["month"].unique())
    months = have if months is None else [m for m in months if m in set(have)]
    # the sequence of warnings_by_month, from the data's first month (lines: never in a flag)
    seq = _sequence(
        sums, price_sums(pd.DataFrame()), [k for k in have if k <= max(months, default=-1)]
    )
    excluded = seq["excluded"]
    warned = {m: seq[m][seq[m]["warning"]] for m in months if seq[m]["warning"].any()}
    cols = ["facility_shift", "shift_claim", "shift_cell", "shift_share"]
    if not warned:
        return pd.DataFrame({"claim_id": pd.Series(dtype="str"), **{c: [] for c in cols}})
    pairs = pd.concat([w[["facility_id"]].assign(month=m) for m, w in warned.items()])
    cells = claims_of(pairs.astype({"facility_id": "str", "month": "int64"}))
    parts = []
    for m, w in warned.items():
        here = cells[cells["month"] == m]
        # each warned facility's claims against the baseline of the test that warned it
        x = pd.concat(
            [
                _deviations(
                    here[here["facility_id"].isin(set(t["facility_id"]))],
                    _baseline(sums, m - (DRIFT_GAP if test == "drift" else 0), TREND_MONTHS,
                              excluded),
                )
                for test, t in w.groupby("test")
            ]
        )  # fmt: skip
        # the cells that moved: their own z above MOVED_Z
        g = x.groupby(["facility_id", "cell"])
        z = g["ldev"].sum() / np.sqrt(g["ldev_var"].sum().where(lambda v: v > 0))
        moved = z[z > MOVED_Z].index
        keep = pd.MultiIndex.from_frame(x[["facility_id", "cell"]]).isin(moved)
        x = x[keep]
        share = (x["fund"] / x["cost"].where(x["cost"] > 0)).clip(0, 1).fillna(0.0)
        # the cell's shift, shrunk by its volume (a few claims say little about their cell)
        cell_dev = x.groupby(["facility_id", "cell"])["dev"].transform("mean")
        n = x.groupby(["facility_id", "cell"])["dev"].transform("size")
        cell_dev = cell_dev * n / (n + SHIFT_SHRINK)
        growth = (cell_dev / x["ref_mean"].where(x["ref_mean"] > 0)).clip(lower=0).fillna(0.0)
        variants = {
            "shift_claim": x["dev"].clip(lower=0),  # the claim's own cost above its cell
            "shift_cell": np.minimum(cell_dev.clip(lower=0), x["cost"]),  # its cell's shift
            "shift_share": x["cost"] * growth / (1 + growth),  # the inflated share of its cost
        }
        out = pd.DataFrame({"claim_id": x["claim_id"]})
        for name, money in variants.items():
            out[name] = (money * share).fillna(0.0).to_numpy()
        out["facility_shift"] = out[SHIFT_MONEY]
        parts.append(out)
    return pd.concat(parts, ignore_index=True)


def with_facility_shift(frame: pd.DataFrame, dataset) -> pd.DataFrame:
    """`frame` (one row per claim) with the `facility_shift` money of `shift_evidence` over
    `dataset` (0 where no warning): known at the end of the claim's month, a ranking term of
    scoring.ranking, not a model feature."""
    shift = shift_evidence(dataset).set_index("claim_id")["facility_shift"]
    money = frame["claim_id"].map(shift).fillna(0.0).rename("facility_shift")
    return pd.concat([frame.drop(columns=["facility_shift"], errors="ignore"), money], axis=1)
