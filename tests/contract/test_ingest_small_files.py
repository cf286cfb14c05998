"""Many small envelope files (most facilities send one dossier per file) read together
(contract.file_batches.job_batches: their tables read in one scan) and decided together in
groups (contract.ingest._files_job -> gather_units -> decide_batch(units=...) -> commit) must
give exactly the dataset, rejection report (row for row, in order) and counts of reading each
file alone and deciding and committing each file's batch alone (SMALL_FILE_BYTES = 0,
GROUP_UNITS = 1: the per-file path).

The corpus holds what makes deciding files together differ from deciding them alone if it is
done wrong: duplicate keys inside a file and across files (where the first is rejected, and
where the later one has errors of its own), two files of one name in different folders (the
same dossier ids), files with 4210 names, with both names of a field, with unknown fields,
malformed, hostile, empty and non-XML files between good ones, files with dossiers missing
their claim summary or with unreadable tables, and files of several dossiers beside files of
one (some split into several batches)."""

from __future__ import annotations

import importlib
import random
from pathlib import Path

import pandas as pd
import pytest
from factories import claim, dossier, drug, raw_envelope, service

from contract.ingest import Limits, ingest, load_dataset

ingest_mod = importlib.import_module("contract.ingest")  # (contract re-exports a function ingest)
file_batches = importlib.import_module("contract.file_batches")

KEY = "small-files-test-key"


def _corpus(folder: Path, seed: int = 7) -> None:
    """About 70 envelope files; the named cases at fixed places, good files of one or a few
    dossiers (random) around them."""
    rng = random.Random(seed)
    folder.mkdir()
    files: dict[str, bytes] = {}

    def put(name: str, dossiers: list[dict]) -> None:
        files[name] = raw_envelope(dossiers)

    def filler(prefix: str, n: int) -> None:
        for i in range(n):
            k = rng.choice([1, 1, 1, 1, 2, 3])
            put(
                f"{prefix}{i:02d}.xml",
                [
                    dossier(f"{prefix.upper()}{i}D{j}", rng.randint(0, 4), rng.randint(0, 3))
                    for j in range(k)
                ],
            )

    filler("a", 6)
    put("b00_dup_in_file.xml", [dossier("K1"), dossier("K1", n_drugs=1)])
    put("b01_dup_first_bad.xml", [dossier("K2", NGAY_VAO="2025-01-01"), dossier("K2")])
    put("b02_key_x.xml", [dossier("X1")])
    put("b03_key_x_again.xml", [dossier("X1", T_BHTT=5.0)])  # rejected: X1 was written
    put("b04_key_y_bad.xml", [dossier("Y1", NGAY_VAO="bad")])
    put("b05_key_y_again.xml", [dossier("Y1")])  # written: the first Y1 was rejected
    put("b06_key_x_third.xml", [dossier("X1", n_services=0)])
    bad_and_dup = dossier("X1")
    bad_and_dup["XML2"] = [drug("X1", 1, SO_LUONG="many")]
    put("b07_key_x_bad.xml", [bad_and_dup])  # its own error, not a duplicate
    put("b08_two_x.xml", [dossier("Z1"), dossier("X1"), dossier("Z2")])
    filler("c", 5)
    # the same file name (and dossier ids) in two folders: one bad, one good
    bad_line = dossier("S1")
    bad_line["XML3"] = [service("S1", 1, DON_GIA_BV="abc")]
    files["sub1/same.xml"] = raw_envelope([bad_line])
    files["sub2/same.xml"] = raw_envelope([dossier("S2")])
    # names: 4210, both names in one file (the first column wins there), unknown, lower case
    alias = dossier("N1")
    alias["XML1"] = [claim("N1", MA_THE_BHYT=None, MA_THE="HC4790123456789")]
    put("d00_4210.xml", [alias])
    both = {**dossier("N2"), "XML1": [claim("N2", MA_THE_BHYT=None, MA_THE="HC4790123456780")]}
    late = dossier("N3")  # the 4750 name in the second dossier of a file whose first uses 4210
    put("d01_both_names.xml", [both, late])
    put("d02_4750.xml", [dossier("N4")])
    extra = dossier("N5")
    extra["XML1"] = [{**claim("N5"), "GHI_CHU_RIENG": "x"}]
    extra["XML2"] = [{**drug("N5", 1), "MA_RIENG": "y"}]
    put("d03_unknown_fields.xml", [extra])
    lower = dossier("N6")
    lower["XML1"] = [{k.lower() if k == "MA_THE_BHYT" else k: v for k, v in claim("N6").items()}]
    put("d04_lower_case.xml", [lower])
    filler("e", 5)
    # files refused, whole or in part, between good ones
    cut = raw_envelope([dossier("T1"), dossier("T2")])
    files["f00_truncated.xml"] = cut[: len(cut) - 300]
    files["f01_dtd.xml"] = (
        b'<?xml version="1.0"?><!DOCTYPE GIAMDINHHS [<!ENTITY a "aaaa">]><GIAMDINHHS/>'
    )
    files["f02_empty.xml"] = b""
    files["f03_not_xml.xml"] = b"MA_LK,T_TONGCHI\nQ1,100\n"
    put("f04_no_dossiers.xml", [])
    orphan = dossier("O1")
    orphan["XML2"][0]["MA_LK"] = "OTHER"
    put("f05_orphan_and_no_xml1.xml", [orphan, {"XML2": [drug("NOX1", 1)]}, dossier("O2")])
    put("f06_bad_base64.xml", [{**dossier("O3"), "XML3": "not base64 !!"}])
    put("f07_skipped_table.xml", [{**dossier("O4"), "XML4": "x"}])
    filler("g", 4)
    # larger files: split into several batches at chunk_claims=8
    # (H3 twice: in its first batch and its third)
    put("h00_big.xml", [dossier(f"H{i}", 3, 2) for i in range(19)] + [dossier("H3")])
    put(
        "h01_big_x.xml", [dossier(f"J{i}", 1, 1) for i in range(9)] + [dossier("X1"), dossier("Y1")]
    )
    filler("i", 8)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def _ingest(src: Path, out: Path, limits: Limits):
    report = ingest(src, out, limits=limits, linkage_key=KEY)
    return report, load_dataset(out)


def _same(a, b) -> None:
    (ra, da), (rb, db) = a, b
    assert set(da) == set(db) == {"claims", "drug_lines", "service_lines", "rejections"}
    for name in da:
        pd.testing.assert_frame_equal(da[name], db[name], obj=name)  # same rows, same order
    for counter in ("read", "written", "rejected", "skipped_tables"):
        assert getattr(ra, counter) == getattr(rb, counter), counter
    assert ra.file_errors == rb.file_errors


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("small") / "in"
    _corpus(src)
    return src


@pytest.fixture(scope="module")
def alone(corpus, tmp_path_factory):
    """The per-file path: every file read alone, every batch of it validated, decided and
    committed alone."""
    mp = pytest.MonkeyPatch()
    mp.setattr(ingest_mod, "GROUP_UNITS", 1)
    mp.setattr(file_batches, "SMALL_FILE_BYTES", 0)  # every file streamed on its own
    try:
        out = tmp_path_factory.mktemp("alone")
        return {
            chunk: _ingest(corpus, out / str(chunk), Limits(workers=1, chunk_claims=chunk))
            for chunk in (8, 2_000)
        }
    finally:
        mp.undo()


@pytest.mark.parametrize(
    ("workers", "chunk", "job_bytes", "small_bytes"),
    [
        (1, 2_000, None, None),
        (1, 8, None, 20_000),  # the files of many dossiers streamed between the small ones
        # the worker pool (fork, many small jobs): ~10 s each
        pytest.param(2, 2_000, 6_000, None, marks=pytest.mark.slow),
        pytest.param(2, 8, 3_000, 20_000, marks=pytest.mark.slow),
    ],
)
def test_small_files_decided_together_give_each_file_alone(
    corpus, alone, tmp_path, monkeypatch, workers, chunk, job_bytes, small_bytes
):
    if job_bytes:  # several jobs: the worker pool, groups cut at job boundaries
        monkeypatch.setattr(ingest_mod, "JOB_BYTES", job_bytes)
    if small_bytes:
        monkeypatch.setattr(file_batches, "SMALL_FILE_BYTES", small_bytes)
    sizes, reads = [], []
    validated, read_smalls = ingest_mod._validated, file_batches._read_smalls

    def counting(group, *a):
        sizes.append(len(group))
        return validated(group, *a)

    def counting_reads(smalls, *a):
        reads.append(len(smalls))
        return read_smalls(smalls, *a)

    monkeypatch.setattr(ingest_mod, "_validated", counting)
    monkeypatch.setattr(file_batches, "_read_smalls", counting_reads)
    together = _ingest(corpus, tmp_path / "together", Limits(workers=workers, chunk_claims=chunk))
    if workers == 1:  # (the pool's workers count in their own processes)
        assert max(sizes) > 5  # batches of several files were decided together
        assert max(reads) > 5  # and the tables of several files read together
    _same(together, alone[chunk])


def test_what_the_corpus_decides(alone):
    """The per-file semantics the grouped path must keep, checked on their own (so that both
    paths being wrong alike does not pass)."""
    report, data = alone[8]
    claims, rej = data["claims"], data["rejections"]
    ids = claims["claim_id"].tolist()
    assert ids.count("X1") == 1  # its first file's; the later ones rejected
    assert ids.count("Y1") == 1  # the second Y1 (the first was rejected): written
    assert ids.count("K1") == 1 and "K2" not in ids  # a key twice in a file: the first stands
    assert "S2" in ids and "S1" not in ids  # same file name, two folders: decided apart
    assert {"N1", "N2", "N3", "N4", "N5", "N6", "O2", "O4", "T1"} <= set(ids)
    assert not {"O1", "O3", "T2"} & set(ids)
    card = claims.set_index("claim_id")["card_number"]
    assert card["N1"] == "HC4790123456789" and card["N2"] == "HC4790123456780"
    # the file's first dossier named the field MA_THE: its column MA_THE_BHYT was dropped
    assert pd.isna(card["N3"])
    assert card["N4"] == card["N6"] == claim("N4")["MA_THE_BHYT"]
    dup = rej[rej["error"].str.startswith("duplicate claim key")]
    assert sorted(dup["claim_id"]) == ["H3", "K1", "K2", "X1", "X1", "X1", "X1", "Y1"]
    x_bad = rej[(rej["claim_id"] == "X1") & (rej["source_file"] == "b07_key_x_bad.xml")]
    assert set(x_bad["error"]) == {"not a number", WITH}  # its own error only
    # the report in file order, each file's rows together
    order = rej["source_file"].tolist()
    firsts = list(dict.fromkeys(order))
    assert order == sorted(order, key=firsts.index)
    assert len(report.file_errors) == 4  # truncated, DTD, empty, not XML
    assert report.skipped_tables["XML4"] == 1


WITH = "rejected with its claim: another record of it has errors"
