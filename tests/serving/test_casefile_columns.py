"""The case store's texts of large frames made column by column in Arrow (serving.casecolumns)
against the way the frame path made them before, value list by value list (`listed_texts`, and
`value_text` per value for a few rows): the same text for every value of every dtype the
canonical tables have, and odd ones (-0.0, ties, 1e15 and past it, NaN and infinities, times
before 1970 with seconds, years of other than four digits, mixed objects); the same content
hashes; and the faster look-ups (among, line_order) against pandas' isin and sort_values."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from contract.schema import CLAIMS, DRUG_LINES, SERVICE_LINES
from serving import casecolumns as cc
from serving import casefile as cf


def odd_frame(n: int = 400, seed: int = 14) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    normal, digits = rng.normal(0, 1e6, n), rng.integers(0, 7, n)
    floats = np.array([round(v, int(d)) for v, d in zip(normal, digits, strict=True)])
    floats[rng.random(n) < 0.2] = np.nan
    floats[rng.random(n) < 0.2] += 0.00005  # ties at the 5th decimal
    floats[:14] = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e15 - 1, 1e15, -1e15, 1e16, 2.5e20,
                   1e-05, 0.33333333, 2.675, -7.0]  # fmt: skip
    when = pd.to_datetime(pd.Series(rng.integers(-(10**9), 2 * 10**9, n), dtype="int64"), unit="s")
    when[rng.random(n) < 0.1] = pd.NaT
    return pd.DataFrame(
        {
            "f": floats,
            "whole": np.round(floats / 7),
            "i": pd.array(
                [None if k % 7 == 0 else (k - 200) * 10**k % 10**17 for k in range(n)],
                dtype="Int64",
            ),
            "j": np.arange(n, dtype="int64") - 5,
            "b": rng.random(n) > 0.5,
            "nb": pd.array([None if k % 5 == 0 else k % 2 == 0 for k in range(n)], dtype="boolean"),
            "s": pd.Series(["a", None, "Nguyễn", ""] * (n // 4), dtype="str"),
            "t": pd.Series([None if k % 5 == 0 else f"x{k}" for k in range(n)], dtype="string"),
            "py": pd.Series(
                [None if k % 3 else f"p{k}" for k in range(n)], dtype=pd.StringDtype("python")
            ),
            "d": when,
            "o": pd.Series([1, "x", None, 2.5] * (n // 4), dtype=object),
        }
    )


def listed_rows(df: pd.DataFrame, names: list[str]) -> list[str]:
    """What casefile's _row_texts gave a frame of 64 rows or more before Arrow: the reference."""
    empty = [""] * len(df)
    cols = [cc.listed_texts(df[n]) if n in df.columns else empty for n in names]
    return ["\x1f".join(values) for values in zip(*cols, strict=True)]


def test_column_texts_are_the_listed_texts_of_every_dtype():
    df = odd_frame()
    for name in df.columns:
        got = cc.column_texts(df[name]).to_pylist()
        assert got == cc.listed_texts(df[name]), name
    names = [*df.columns, "absent"]
    assert cc.row_texts(df, names) == listed_rows(df, names)
    # a few rows go value by value (value_text), as before
    few = df.iloc[:10]
    want = ["\x1f".join(cf._text(v) for v in row) for row in few.to_numpy(dtype=object)]
    assert cc.row_texts(few, list(few.columns)) == want


def test_times_outside_four_digit_years_take_the_listed_way():
    """Years of other than four digits are left to pandas (numpy and strftime need not agree
    on them): the same texts either way."""
    x = pd.Series(np.array(["0999-05-01T10:30:59", "2026-01-01T00:00", "NaT"] * 30,
                           dtype="datetime64[s]"))  # fmt: skip
    assert cc.minute_texts(x.to_numpy()) is None
    assert cc.column_texts(x).to_pylist() == cc.listed_texts(x)


def reference_hashes(tables: dict, ids: set[str] | None = None) -> dict[str, str]:
    """content_hashes as it was before Arrow: isin, sort_values, listed texts."""

    def texts(df, names):
        if len(df) < cc.FEW:
            return cc.row_texts(df, names)
        return listed_rows(df, names)

    claims = tables["claims"]
    if ids is not None:
        claims = claims[claims["claim_id"].astype(str).isin(ids)]
    heads = texts(claims, [f.name for f in CLAIMS.fields])
    out = {str(c): [t] for c, t in zip(claims["claim_id"], heads, strict=True)}
    for marker, name, table in (
        ("D", "drug_lines", DRUG_LINES),
        ("S", "service_lines", SERVICE_LINES),
    ):
        lines = tables.get(name)
        if lines is None or lines.empty:
            continue
        lines = lines[lines["claim_id"].astype(str).isin(out.keys())]
        lines = lines.sort_values(["claim_id", "line_no"], kind="stable")
        body = texts(lines, [f.name for f in table.fields])
        for c, t in zip(lines["claim_id"].astype(str), body, strict=True):
            out[c].append(marker + t)
    return {c: hashlib.sha256("\x1e".join(p).encode()).hexdigest() for c, p in out.items()}


@pytest.fixture(scope="module")
def tables(sim_dataset) -> dict:
    """The world's first 300 claims and their lines, line numbers made hard: missing ones, one
    number for every line of a claim, lines out of order."""
    from contract.ingest import load_dataset

    got = load_dataset(sim_dataset)
    claims = got["claims"].iloc[:300].reset_index(drop=True)
    keep = set(claims["claim_id"])
    out = {"claims": claims}
    for name in ("drug_lines", "service_lines"):
        lines = got[name][got[name]["claim_id"].isin(keep)]
        lines = lines.sample(frac=1.0, random_state=3).reset_index(drop=True)  # out of order
        lines.loc[::7, "line_no"] = pd.NA
        lines.loc[lines["claim_id"] == lines["claim_id"].iloc[5], "line_no"] = 4
        out[name] = lines
    return out


def test_content_hashes_are_the_hashes_made_before(tables):
    assert cf.content_hashes(tables) == reference_hashes(tables)
    ids = set(tables["claims"]["claim_id"].astype(str).iloc[::3])
    assert cf.content_hashes(tables, ids) == reference_hashes(tables, ids)
    few = set(list(ids)[:5])  # a few claims: their lines value by value
    assert cf.content_hashes(tables, few) == reference_hashes(tables, few)


def test_among_and_line_order_are_isin_and_sort_values(tables):
    lines = tables["drug_lines"]
    ids = set(tables["claims"]["claim_id"].astype(str).iloc[::2])
    for col in (lines["claim_id"], lines["claim_id"].astype(object), lines["line_no"]):
        want = col.astype(str).isin(ids).to_numpy()
        assert (cc.among(col, ids) == want).all()
    keep = cc.among(lines["claim_id"], ids)
    assert keep.any() and not keep.all()
    want = lines[keep].sort_values(["claim_id", "line_no"], kind="stable")
    got = lines.iloc[cc.line_order(lines, keep)]
    # claims in any order, each claim's lines in sort_values' order
    for cid, mine in got.groupby("claim_id", sort=False):
        assert list(mine.index) == list(want.index[want["claim_id"] == cid]), cid
