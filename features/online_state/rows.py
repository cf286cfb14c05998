"""A target claim's feature row from its enriched row and what the state looked up for it:
`assembly.assemble`'s derived columns, `profiles.peer_deviations`, `rules.cross_claim_rules`, the
rule count and amount, written once as arithmetic on one row."""

from __future__ import annotations

from operator import itemgetter

import numpy as np
import pandas as pd

from features import profiles as pf
from features import rules as rl
from features.assembly import ID_COLUMNS
from features.online_state.sql import div, greatest, least
from features.registry import categorical_names, feature_names

_FLAGS = tuple(r.flag for r in rl.RULES)
_AMOUNTS = tuple(r.amount for r in rl.RULES)
_NAMES = feature_names()
_INT8 = frozenset(_FLAGS)
_INT64 = frozenset([*categorical_names(), "rule_count"])
_STR = ("claim_id", "facility_id", "facility_level", "visit_type")
_VALUES = itemgetter(*_NAMES)


def _pos(v) -> bool:
    return v is not None and v > 0


def feature_row(t: dict, looked_up: dict, peers: dict) -> dict:
    """t: the enriched row; looked_up: windows, pair and procedure results, the facility and
    clinician profile columns; peers: metric -> (median, q25, q75), plus "peer_n"."""
    r = {**t, **looked_up}
    cost, fund = r["total_cost"], r["fund_claimed"]
    mean30, prev = r.get("fac_cost_mean_30d"), r.get("fac_cost_per_visit_prev")
    r["claim_cost"], r["claim_fund"] = cost, fund
    r["cost_vs_fac_30d"] = None if not _pos(mean30) or cost is None else cost / mean30
    mean7 = r.get("fac_cost_mean_7d")
    r["fac_cost_shift_7d"] = None if not _pos(prev) or mean7 is None else mean7 / prev
    n = peers.get("peer_n")
    enough = n is not None and n >= pf.PEER_MIN
    r["peer_n"] = float(n or 0)
    for m, floor in pf.PEER_METRICS:
        med, q25, q75 = peers.get(m) or (None, None, None)
        x = r[m]
        iqr = None if q25 is None or q75 is None else (q75 - q25) / 1.349
        scale = greatest(iqr, None if med is None else abs(med) * 0.1, floor)
        r[f"peer_median_{m}"] = med if enough else None
        r[f"peer_ratio_{m}"] = div(x, med) if enough else None
        ok = enough and x is not None and med is not None
        r[f"peer_z_{m}"] = (x - med) / scale if ok else None
    dup = r["pr_duplicate"] or 0
    ovl = r["pr_overlap"] or 0
    left = r["pr_chronic_left"] or 0.0
    chronic = left > 0
    supply = max(r["supply_days"], 1.0)
    volume = r["n_exams"] > 0 and (
        r["clin_claims_hour"] > rl.CLINICIAN_HOUR_MAX
        or r["clin_claims_today"] > rl.CLINICIAN_DAY_MAX
    )
    sim = (r["sp_lines"] or 0.0) > 0
    dead = r["pat_died_before"] > 0
    r.update(
        rule_duplicate=dup,
        rule_duplicate_amount=fund if dup > 0 else 0.0,
        rule_overlapping_stay=ovl,
        rule_overlapping_stay_amount=fund if ovl > 0 else 0.0,
        rule_chronic_supply_overlap=1 if chronic else 0,
        rule_chronic_supply_overlap_amount=r["drug_fund"] * min(left / supply, 1.0)
        if chronic
        else 0.0,
        chronic_supply_left_days=left,
        rule_clinician_volume=1 if volume else 0,
        rule_clinician_volume_amount=r["exam_fund"] if volume else 0.0,
        rule_simultaneous_procedures=1 if sim else 0,
        rule_simultaneous_procedures_amount=r["sp_fund"] or 0.0,
        rule_deceased_patient=1 if dead else 0,
        rule_deceased_patient_amount=fund if dead else 0.0,
    )
    r["rule_count"] = sum(int(r[f] or 0) for f in _FLAGS)
    top = greatest(*(r[a] for a in _AMOUNTS))
    r["rule_amount"] = least(top, greatest(fund, 0.0))
    return r


class FeatureRows:
    """Feature rows in the order `assembly.finish_frame` gives them (admitted_at, claim_id):
    `ids` (the ID_COLUMNS of each row, as dicts) and `values` (a float64 matrix of
    registry.feature_names(), NaN for missing, codes and flags as numbers), for a hot path that
    feeds a model without a DataFrame; `frame()` is the DataFrame finish_frame would give,
    `matrix()` the same numbers as that frame's columns read as floats."""

    names = _NAMES

    def __init__(self, ids: list[dict], values: np.ndarray, frame: pd.DataFrame | None = None):
        self.ids, self.values, self._frame = ids, values, frame
        self._matrix: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_rows(cls, rows: list[dict]) -> FeatureRows:
        rows = sorted(rows, key=lambda r: (r["admitted_at"], r["claim_id"]))
        ids = [{c: r[c] for c in ID_COLUMNS} for r in rows]
        values = np.array([_VALUES(r) for r in rows], dtype="float64")
        values = values.reshape(len(rows), len(_NAMES))
        values[np.isinf(values)] = np.nan
        return cls(ids, values)

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> FeatureRows:
        """From finish_frame's output (the compiled plan's answer)."""
        ids = df[list(ID_COLUMNS)].to_dict("records")
        return cls(ids, df[_NAMES].to_numpy(dtype="float64"), df)

    def column(self, name: str) -> list:
        """One ID column's values, row by row."""
        return [r[name] for r in self.ids]

    def value(self, i: int, name: str):
        """`frame()[name].tolist()[i]` without the frame, for a feature column: an int for the
        integer columns (0 for missing), else a float (NaN for missing)."""
        if self._frame is not None:
            v = self._frame[name].iat[i]
            return v.item() if isinstance(v, np.generic) else v
        v = self.values[i, _LOC[name]]
        if name in _INT8 or name in _INT64:
            return int(np.nan_to_num(v, nan=0.0))
        return float(v)

    def matrix(self) -> np.ndarray:
        """`frame()[names].to_numpy("float64")` without the frame: the integer columns (flags,
        codes, the rule count) hold 0 for missing, as frame() casts them."""
        if self._matrix is None:
            m = self.values.copy()
            m[:, _INT_LOCS] = np.trunc(np.nan_to_num(m[:, _INT_LOCS], nan=0.0))
            self._matrix = m
        return self._matrix

    def take(self, idx) -> FeatureRows:
        """The rows at positions `idx`, in that order."""
        idx = np.asarray(idx, dtype=np.intp)
        sub = None if self._frame is None else self._frame.iloc[idx].reset_index(drop=True)
        return FeatureRows([self.ids[i] for i in idx], self.values[idx], sub)

    def frame(self, columns=None) -> pd.DataFrame:
        """finish_frame's DataFrame; `columns`: only these feature columns (and the ID columns),
        in registry order, with the same dtypes."""
        if self._frame is not None:
            if columns is None:
                return self._frame
            return self._frame[[*ID_COLUMNS, *(c for c in _NAMES if c in set(columns))]]
        n = len(self.ids)
        cols: dict = {}
        for c in ID_COLUMNS:
            vals = self.column(c)
            if c in ("admitted_at", "discharged_at"):
                cols[c] = pd.to_datetime(pd.Series(vals, dtype=object)).astype("datetime64[us]")
            elif c in _STR:
                cols[c] = pd.Series(vals, dtype="str")
            else:
                cols[c] = np.array(vals, dtype="float64")
        wanted = None if columns is None else set(columns)
        for j, c in enumerate(_NAMES):
            if wanted is not None and c not in wanted:
                continue
            v = self.values[:, j]
            if c in _INT8:
                cols[c] = np.nan_to_num(v, nan=0.0).astype("int8")
            elif c in _INT64:
                cols[c] = np.nan_to_num(v, nan=0.0).astype("int64")
            else:
                cols[c] = v.copy()
        df = pd.DataFrame(cols, index=pd.RangeIndex(n))
        if columns is None:
            self._frame = df
        return df


_LOC = {c: j for j, c in enumerate(_NAMES)}
_INT_LOCS = np.array([j for j, c in enumerate(_NAMES) if c in _INT8 or c in _INT64], dtype=np.intp)
