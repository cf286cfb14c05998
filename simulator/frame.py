"""A minimal column store (dict of equal-length numpy arrays) and the time helpers the world uses.

Internally every time is an int64 count of minutes since 1970-01-01 (local time, UTC+7 implied),
every day an int64 count of days; strings are built only once, at output.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

MINUTES_PER_DAY = 1440


class Cols(dict):
    """Columns of one table: name -> 1-D numpy array, all of one length."""

    def __len__(self) -> int:  # type: ignore[override]
        for v in self.values():
            return len(v)
        return 0

    @property
    def n(self) -> int:
        return len(self)

    def take(self, idx: np.ndarray) -> Cols:
        return Cols({k: v[idx] for k, v in self.items()})

    def copy(self) -> Cols:
        return Cols({k: v.copy() for k, v in self.items()})

    @staticmethod
    def concat(parts: Iterable[Cols]) -> Cols:
        parts = [p for p in parts if p is not None]
        keys = list(parts[0].keys())
        for p in parts[1:]:
            if list(p.keys()) != keys:
                missing = set(keys) ^ set(p.keys())
                raise KeyError(f"columns differ: {sorted(missing)}")
        return Cols({k: np.concatenate([p[k] for p in parts]) for k in keys})


def month_start_days(start: str, months: int) -> np.ndarray:
    """Day numbers of the first day of each month, months+1 values (the last is the end bound)."""
    first = np.datetime64(start, "M")
    return (first + np.arange(months + 1)).astype("datetime64[D]").astype(np.int64)


def calendar_month(days: np.ndarray) -> np.ndarray:
    """0..11 calendar month of day numbers."""
    return (days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)) % 12


def weekday(days: np.ndarray) -> np.ndarray:
    """0 = Monday .. 6 = Sunday (1970-01-01 was a Thursday)."""
    return (days + 3) % 7


def ymd(days: np.ndarray) -> np.ndarray:
    """Day numbers -> int64 yyyymmdd."""
    d = days.astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    y = m.astype("datetime64[Y]")
    year = y.astype(np.int64) + 1970
    month = (m - y.astype("datetime64[M]")).astype(np.int64) + 1
    dom = (d - m.astype("datetime64[D]")).astype(np.int64) + 1
    return year * 10000 + month * 100 + dom


def stamp(minutes: np.ndarray) -> np.ndarray:
    """Minutes -> int64 yyyymmddHHMM."""
    minutes = np.asarray(minutes, dtype=np.int64)
    days = minutes // MINUTES_PER_DAY
    mod = minutes - days * MINUTES_PER_DAY
    return ymd(days) * 10000 + (mod // 60) * 100 + mod % 60


def round_half_up_div(num: np.ndarray, den: int) -> np.ndarray:
    """Integer num / den rounded half away from zero (num >= 0 in practice)."""
    num = np.asarray(num, dtype=np.int64)
    q = (np.abs(num) * 2 + den) // (2 * den)
    return np.sign(num) * q


def group_rank(keys: np.ndarray) -> np.ndarray:
    """0-based position of each row within its run of equal keys (keys must be sorted)."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.r_[True, keys[1:] != keys[:-1]]
    idx = np.arange(n)
    first = np.maximum.accumulate(np.where(start, idx, 0))
    return idx - first
