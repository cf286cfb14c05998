"""Envelope files validated together (contract.batch.gather_units, decide_batch(units=...)): the
batches of many small files checked, decided and committed as one batch, everything across rows
decided per file as if alone. The dataset, the rejection report (row for row, in order) and the
report's counts must be those of validating each file alone (issue 15: a file of one dossier
paid ~75 ms of fixed cost). tests/contract/test_ingest_small_files.py has the larger corpus."""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from factories import claim, dossier, drug, raw_envelope

import contract.batch as batch
from contract.ingest import Limits, ingest, load_dataset

ingest_mod = importlib.import_module("contract.ingest")  # (contract re-exports a function ingest)
file_batches = importlib.import_module("contract.file_batches")

KEY = "grouped-test-key"


def _corpus(folder: Path) -> None:
    folder.mkdir()
    orphan = dossier("OR1")
    orphan["XML2"][0]["MA_LK"] = "OTHER"
    alias = dossier("AL1")
    alias["XML1"] = [claim("AL1", MA_THE_BHYT=None, MA_THE="HC4790123456789")]
    files = {
        "f00": [dossier("A1"), dossier("A2", n_drugs=0)],
        "f01": [dossier("B1", NGAY_VAO="2025-01-01"), dossier("B2")],
        "f02": [dossier("A1", T_BHTT=1.0)],  # the key of f00's first claim again
        "f03": [dossier("C1"), dossier("C1")],  # twice in one file
        "f04": [alias],  # 4210 names
        "f05": [orphan, {"XML2": [drug("NOX1", 1)]}],  # a line of another claim; no XML1
        "f06": [{**dossier("D1"), "XML4": "x"}],  # a table that is skipped
        "f07": [dossier("E1", n_services=5)],
        "f09": [dossier("G1"), {**dossier("G2"), "XML2": [drug("G2", 1, SO_LUONG="x")]}],
    }
    for name, dossiers in files.items():
        (folder / f"{name}.xml").write_bytes(raw_envelope(dossiers))
    cut = raw_envelope([dossier("T1"), dossier("T2")])
    (folder / "f08.xml").write_bytes(cut[: len(cut) - 300])  # truncated in the second dossier


@pytest.mark.parametrize("workers", [1, 2])
def test_files_checked_together_give_each_file_alone(tmp_path, monkeypatch, workers):
    _corpus(tmp_path / "in")
    if workers == 2:
        monkeypatch.setattr(ingest_mod, "JOB_BYTES", 4_000)  # several jobs: the worker pool
    limits = Limits(workers=workers)
    calls = []
    check = batch.check_batch
    counted = lambda *a, **k: calls.append(1) or check(*a, **k)  # noqa: E731
    monkeypatch.setattr(batch, "check_batch", counted)  # (validate_batch: a batch alone)
    monkeypatch.setattr(ingest_mod, "check_batch", counted)  # (batches decided together)
    together = ingest(tmp_path / "in", tmp_path / "together", limits=limits, linkage_key=KEY)
    if workers == 1:  # (the pool's workers count in their own processes)
        assert 0 < len(calls) < 10  # ten files, fewer field checks: they did run together
    monkeypatch.setattr(ingest_mod, "GROUP_UNITS", 1)  # each file's batch decided alone
    monkeypatch.setattr(file_batches, "SMALL_FILE_BYTES", 0)  # and each file read alone
    alone = ingest(tmp_path / "in", tmp_path / "alone", limits=limits, linkage_key=KEY)
    a, b = load_dataset(tmp_path / "together"), load_dataset(tmp_path / "alone")
    assert set(a) == set(b) == {"claims", "drug_lines", "service_lines", "rejections"}
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)  # same rows, same order
    for counter in ("read", "written", "rejected", "skipped_tables"):
        assert getattr(together, counter) == getattr(alone, counter), counter
    assert together.file_errors == alone.file_errors and len(together.file_errors) == 1
    rej = a["rejections"]
    errors = set(rej["error"])
    assert any(e.startswith("duplicate claim key") for e in errors)
    assert "no claim summary (XML1) with this MA_LK" in errors
    assert {"not a number", "dossier has no XML1 claim summary"} <= errors
    assert any(e.startswith("unparseable date") for e in errors)
    assert "AL1" in set(a["claims"]["claim_id"]) and together.skipped_tables["XML4"] == 1


def test_the_writer_gathers_frames_into_the_same_rows(tmp_path, monkeypatch):
    # Frames written one by one (one row group each, before) and gathered into row groups of
    # FLUSH_ROWS: the same rows and values, nulls of every type included, a frame whose column
    # is null everywhere among them.
    from contract.schema import DRUG_LINES
    from contract.validate import check_table
    from contract.writer import REJECTIONS_SCHEMA, _Writer, arrow_schema

    raw = pd.DataFrame([drug(f"K{i}", i) for i in range(7)])
    raw.loc[2, ["SO_LUONG", "NGAY_YL", "TEN_THUOC"]] = None
    frame = check_table(raw.assign(_group="g", _source="s", _record="r"), DRUG_LINES).frame
    frames = [frame.iloc[:3], frame.iloc[3:4], frame.iloc[4:]]
    frames[1] = frames[1].assign(drug_name=pd.Series([None], dtype="str", index=frames[1].index))
    schema = arrow_schema(DRUG_LINES)
    monkeypatch.setattr(_Writer, "FLUSH_ROWS", 4)  # a flush inside, the rest at close
    want = pa.concat_tables(
        pa.Table.from_pandas(f[schema.names], schema=schema, preserve_index=False) for f in frames
    )
    for small in (4_096, 1):  # frames concatenated first, or converted one by one
        monkeypatch.setattr(_Writer, "SMALL_ROWS", small)
        w = _Writer(tmp_path / f"gathered-{small}.parquet", schema)
        for f in frames:
            w.write(f)
        w.write(frame.iloc[:0])
        w.close()
        got = pq.read_table(tmp_path / f"gathered-{small}.parquet")
        assert got.equals(want) and w.rows == 7
        assert pq.ParquetFile(tmp_path / f"gathered-{small}.parquet").metadata.num_row_groups == 2
    rej = pd.DataFrame({c: ["a", "b"] for c in REJECTIONS_SCHEMA.names})
    w = _Writer(tmp_path / "rej.parquet", REJECTIONS_SCHEMA)
    w.write(rej)
    w.write(rej.iloc[:1])
    w.close()
    assert pq.read_table(tmp_path / "rej.parquet").num_rows == 3
