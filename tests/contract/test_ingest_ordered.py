"""A tabular input already in claim order is cut into partitions by row ranges as it is read, with
no spill by key hash (contract.ordered_input, issue 15): the dataset and the rejection report hold
the rows the spill gives, and any input out of claim order still takes the spill."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from corrupt_world import corrupt_world
from factories import claim, drug, service, write_tabular

import contract.tabular as tabular
from contract.fast_check import arrow_text
from contract.ingest import Limits, ingest, load_dataset
from contract.ordered_input import ordered_layout
from contract.tabular import tabular_sources
from contract.validate import as_text

KEY = "ordered-test-key"
INGEST = sys.modules["contract.ingest"]  # contract.ingest the attribute is the function


def _in_claim_order(src: Path, dst: Path) -> Path:
    """SRC's tables sorted by claim key (as text, as ingest groups them), keeping each key's rows in
    their order: duplicates side by side, lines in their claims' order, orphans among them."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        df = pd.read_parquet(f)
        if f.stem in ("xml1", "xml2", "xml3"):
            key = as_text(df["MA_LK"]).fillna(tabular.MISSING_KEY)
            df = df.iloc[key.argsort(kind="stable").to_numpy()].reset_index(drop=True)
        df.to_parquet(dst / f.name, index=False)
    return dst


@pytest.fixture(scope="module")
def ordered(tmp_path_factory) -> Path:
    import simulator

    root = tmp_path_factory.mktemp("ordered")
    simulator.simulate(root / "clean", 3_000, months=6, start="2025-01", seed=7)
    return _in_claim_order(corrupt_world(root / "clean", root / "bad"), root / "sorted")


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns), kind="stable").reset_index(drop=True)


@pytest.fixture
def small_partitions(monkeypatch):
    monkeypatch.setattr(tabular, "SPILL_BATCHES", 2)  # ~6 partitions of ~500 claims
    monkeypatch.setattr(tabular, "READ_ROWS", 700)  # partitions cut across the pieces read
    return Limits(chunk_claims=250)


@pytest.mark.parametrize("workers", [1, 2])
def test_an_input_in_claim_order_is_not_spilled_and_gives_the_spills_rows(
    ordered, tmp_path, monkeypatch, small_partitions, workers
):
    limits = Limits(chunk_claims=small_partitions.chunk_claims, workers=workers)
    spill = tabular.spill_tabular
    layout = ordered_layout(tabular_sources(ordered), tabular.partitions(ordered, limits))
    assert layout is not None and layout.parts >= 5
    spilled = []

    def spy(*a, **k):
        spilled.append(1)
        return spill(*a, **k)

    monkeypatch.setattr(INGEST, "spill_tabular", spy)  # the workers' path
    monkeypatch.setattr(tabular, "spill_tabular", spy)  # one process's (spilled_input)
    got = ingest(ordered, tmp_path / "ordered", limits=limits, linkage_key=KEY)
    assert not spilled  # read partition by partition (fails before: every input was spilled)
    limits = replace(limits, ordered_input=False)
    want = ingest(ordered, tmp_path / "spilled", limits=limits, linkage_key=KEY)
    assert spilled
    a, b = load_dataset(tmp_path / "ordered"), load_dataset(tmp_path / "spilled")
    assert set(a) == set(b)
    for name in a:
        pd.testing.assert_frame_equal(_sorted(a[name]), _sorted(b[name]), obj=name)
    assert got.read == want.read and got.written == want.written
    assert got.rejected == want.rejected and got.rejected_total > 0
    errors = set(a["rejections"]["error"])
    assert any(e.startswith("duplicate claim key") for e in errors)
    assert "no claim summary (XML1) with this MA_LK" in errors


def test_two_workers_give_one_processs_rows_in_file_order(ordered, tmp_path, small_partitions):
    one = ingest(ordered, tmp_path / "1", limits=small_partitions, linkage_key=KEY)
    lim2 = Limits(chunk_claims=small_partitions.chunk_claims, workers=2)
    two = ingest(ordered, tmp_path / "2", limits=lim2, linkage_key=KEY)
    a, b = load_dataset(tmp_path / "1"), load_dataset(tmp_path / "2")
    for name in a:  # row for row: partitions written in order
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)
    assert one.written == two.written
    # the claims come out in the order of the file (the spill writes them in the hash's order)
    keys = as_text(pd.read_parquet(ordered / "xml1.parquet")["MA_LK"]).tolist()
    position = {k: i for i, k in reversed(list(enumerate(keys)))}  # a key's first row
    at = [position[k] for k in a["claims"]["claim_id"]]
    assert at == sorted(at) and len(at) > 1_000


def _layout(tmp_path: Path, claims: list[str], lines: list[str], parts: int = 2, fmt="parquet"):
    src = write_tabular(
        tmp_path / "in",
        [claim(k) for k in claims],
        services=[service(k, stt=i + 1) for i, k in enumerate(lines)],
        drugs=[drug(claims[0])],
        fmt=fmt,
    )
    return ordered_layout(tabular_sources(src), parts)


def test_lines_in_claim_order_with_an_orphan_among_them_are_cut_between_claims(tmp_path):
    claims = ["A", "B", "B", "C", "D"]  # B twice, side by side
    lines = ["A", "A", "X", "B", "C", "C", "C", "Y", "D"]  # X and Y are in no claim
    layout = _layout(tmp_path, claims, lines, parts=2)
    assert layout is not None and layout.parts == 2
    cut = layout.bounds["claims"]
    first = set(claims[cut[0] : cut[1]])
    assert first.isdisjoint(claims[cut[1] : cut[2]])  # B is not split
    rows = layout.bounds["service_lines"]
    lines1, lines2 = lines[rows[0] : rows[1]], lines[rows[1] : rows[2]]
    assert {k for k in lines1 if k in claims} <= first
    assert {k for k in lines2 if k in claims}.isdisjoint(first)
    assert len(lines1) + len(lines2) == len(lines)


@pytest.mark.parametrize(
    ("claims", "lines"),
    [
        (["A", "B", "A"], ["A", "B"]),  # a claim key again after another: the spill decides
        (["A", "B", "C"], ["B", "A", "C"]),  # lines out of their claims' order
        (["A", "B", "C"], ["A", "B", "A"]),  # a claim's lines apart
    ],
)
def test_an_input_out_of_claim_order_takes_the_spill(tmp_path, claims, lines):
    assert _layout(tmp_path, claims, lines) is None


def test_csv_and_one_partition_take_the_spill(tmp_path):
    assert _layout(tmp_path / "csv", ["A", "B"], ["A", "B"], fmt="csv") is None
    assert _layout(tmp_path / "one", ["A", "B"], ["A", "B"], parts=1) is None
    assert _layout(tmp_path / "two", ["A", "B"], ["A", "B"], parts=2) is not None


@pytest.mark.parametrize("typ", [pa.string(), pa.large_string()])
def test_keys_grouped_in_arrow_are_the_pandas_groups(typ):
    """key_groups trims and blanks text keys in Arrow's kernels; the partitions by hash and the
    validation group keys as pandas' "str" strip does: the two must agree on every key."""
    keys = ["A", " A", "A\u00a0", "\u3000A", "\x1cA\x1f", "", "  ", None, "\tB\n", "\u200bC"]
    keys += ["\u2028D", "\x85E", "lk-ñ  ", "0012"]
    piece = pa.table({" ma_lk ": pa.array(keys, typ)})
    want = arrow_text(tabular._groups(piece))
    assert tabular.key_groups(piece).equals(want)
    assert want.to_pylist()[:5] == ["A"] * 5 and want[6].as_py() == tabular.MISSING_KEY


def test_keys_of_other_types_are_grouped_through_pandas():
    piece = pa.table({"MA_LK": pa.array([12, None, 7], pa.int64())})
    assert tabular.key_groups(piece).to_pylist() == ["12", tabular.MISSING_KEY, "7"]
    assert tabular.key_groups(pa.table({"X": [1]})).to_pylist() == [tabular.MISSING_KEY]
