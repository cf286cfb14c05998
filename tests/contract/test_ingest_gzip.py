"""Envelopes sent gzip-compressed (NAME.xml.gz) read as the same files plain: the same dataset,
rejection report and counts; the inflated bytes bounded by the plain file's limit (a small file
that inflates without end is refused at the limit, the good files beside it read); a corrupt or
truncated stream refused with what went wrong; gzip bytes under a plain .xml name refused as
before (libxml2 would inflate a gzip path itself, unbounded)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pandas as pd
import pytest
from factories import dossier, raw_envelope
from test_ingest_small_files import _corpus

from contract.ingest import Limits, ingest, load_dataset

KEY = "gzip-test-key"


def _ingest(src: Path, out: Path, limits: Limits):
    report = ingest(src, out, limits=limits, linkage_key=KEY)
    return report, load_dataset(out)


def _gzipped(src: Path, dst: Path) -> None:
    """SRC's files, each gzip-compressed as NAME.xml.gz, in the same folders."""
    for p in src.rglob("*"):
        if p.is_file():
            q = dst / p.relative_to(src)
            q.parent.mkdir(parents=True, exist_ok=True)
            q.with_name(q.name + ".gz").write_bytes(gzip.compress(p.read_bytes(), mtime=0))


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("gz")
    _corpus(root / "plain")
    _gzipped(root / "plain", root / "gz")
    return root / "plain", root / "gz"


@pytest.mark.parametrize("workers", [1, 2])
def test_gzip_envelopes_read_as_the_plain_files(corpora, tmp_path, workers):
    plain, gz = corpora
    limits = Limits(workers=workers, chunk_claims=8)
    ra, da = _ingest(plain, tmp_path / "plain", limits)
    rb, db = _ingest(gz, tmp_path / "gz", limits)
    assert rb.files_read == ra.files_read > 50
    for counter in ("read", "written", "rejected", "skipped_tables"):
        assert getattr(rb, counter) == getattr(ra, counter), counter
    assert ra.written["claims"] > 50
    # the same file errors, under the compressed names
    assert [(f + ".gz", e) for f, e in ra.file_errors] == list(rb.file_errors)
    for name in ("claims", "drug_lines", "service_lines"):
        pd.testing.assert_frame_equal(da[name], db[name], obj=name)
    rej_a, rej_b = da["rejections"], db["rejections"].copy()
    assert (rej_b["source_file"].str.endswith(".xml.gz")).all()
    rej_b["source_file"] = rej_b["source_file"].str.removesuffix(".gz")
    pd.testing.assert_frame_equal(rej_a, rej_b)


def _envelope_of(n: int, prefix: str) -> bytes:
    return raw_envelope([dossier(f"{prefix}{i}", 3, 2) for i in range(n)])


def test_a_gzip_file_that_inflates_past_the_limit_is_refused_there(tmp_path):
    """A few KiB that inflate past max_file_bytes: refused when the limit is passed (the
    dossiers complete before it were read), the plain and gzip files beside it read whole."""
    src = tmp_path / "in"
    src.mkdir()
    big = _envelope_of(60, "B")
    limit = len(big) // 2
    # whitespace compresses ~1000:1: the bomb is small on disk and far over the limit inflated
    bomb = big.replace(b"</GIAMDINHHS>", b" " * (50 * limit) + b"</GIAMDINHHS>")
    (src / "a_bomb.xml.gz").write_bytes(gzip.compress(bomb))
    assert (src / "a_bomb.xml.gz").stat().st_size < limit  # under the limit on disk
    (src / "b_good.xml.gz").write_bytes(gzip.compress(_envelope_of(5, "G")))
    (src / "c_plain.xml").write_bytes(_envelope_of(4, "P"))
    report, data = _ingest(src, tmp_path / "out", Limits(workers=1, max_file_bytes=limit))
    assert report.files_read == 3
    (name, error), *others = report.file_errors
    assert not others
    assert name == "a_bomb.xml.gz"
    assert f"inflates to more than the limit of {limit:,} bytes" in error
    ids = set(data["claims"]["claim_id"])
    assert {f"G{i}" for i in range(5)} | {f"P{i}" for i in range(4)} <= ids
    read_of_bomb = {i for i in ids if i.startswith("B")}
    assert read_of_bomb < {f"B{i}" for i in range(60)}  # some dossiers, not the whole file


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("truncated.xml.gz", None, "the gzip stream is corrupt or truncated"),
        ("not_gzip.xml.gz", b"<GIAMDINHHS/>", "the gzip stream is corrupt or truncated"),
        ("gzip_named_plain.xml", "gz", "is not XML"),
    ],
)
def test_corrupt_or_misnamed_compression_is_refused_and_the_rest_read(
    tmp_path, name, data, message
):
    src = tmp_path / "in"
    src.mkdir()
    whole = gzip.compress(_envelope_of(40, "T"))
    if data is None:
        data = whole[: len(whole) * 2 // 3]
    elif data == "gz":
        data = whole
    (src / name).write_bytes(data)
    (src / "z_good.xml.gz").write_bytes(gzip.compress(_envelope_of(3, "G")))
    report, got = _ingest(src, tmp_path / "out", Limits(workers=1))
    assert [f for f, _ in report.file_errors] == [name]
    assert message in report.file_errors[0][1]
    assert {"G0", "G1", "G2"} <= set(got["claims"]["claim_id"])


def test_planned_by_the_inflated_size(tmp_path):
    """Work is planned (jobs, the compiled reader's threshold) by what a gzip file inflates to,
    read from its trailer; a plain file by its size."""
    from contract.xml_reader import inflated_size

    data = _envelope_of(20, "S")
    (tmp_path / "a.xml.gz").write_bytes(gzip.compress(data))
    (tmp_path / "b.xml").write_bytes(data)
    assert inflated_size(tmp_path / "a.xml.gz") == len(data)
    assert inflated_size(tmp_path / "b.xml") == len(data) == os.path.getsize(tmp_path / "b.xml")
