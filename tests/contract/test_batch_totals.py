"""Ingest report totals (issue 13): a dossier refused before its claim summary could be read (its
XML1 unreadable or missing) counts as a claim read and rejected, so the totals account for every
dossier sent."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from factories import dossier, raw_envelope

from contract.ingest import Limits, ingest

IDS = ["G0", "G1", "G2"]


def _break_g1_xml1(envelope: bytes, how: str) -> bytes:
    a, b = [m.span() for m in re.finditer(rb"<HOSO>.*?</HOSO>", envelope, re.S)][1]
    h = envelope[a:b]
    if how == "unreadable":
        h = re.sub(rb"<NOIDUNGFILE>[^<]*", b"<NOIDUNGFILE>!!not-base64!!", h, count=1)
    else:  # the XML1 file left out of the dossier
        h = re.sub(rb"<FILEHOSO>.*?</FILEHOSO>", b"", h, count=1, flags=re.S)
    return envelope[:a] + h + envelope[b:]


@pytest.mark.parametrize("how", ["unreadable", "missing"])
def test_a_dossier_without_a_readable_summary_is_a_rejected_claim(tmp_path, how):
    src = tmp_path / "src"
    src.mkdir()
    (src / "e.xml").write_bytes(_break_g1_xml1(raw_envelope([dossier(i) for i in IDS]), how))
    report = ingest(src, tmp_path / "out", limits=Limits(workers=1), linkage_key="k" * 32)
    assert report.read["claims"] == 3  # three dossiers sent
    assert report.written["claims"] == 2 and report.rejected["claims"] == 1
    assert report.read["claims"] == report.written["claims"] + report.rejected["claims"]
    assert "read 3 claims" in report.summary() and "wrote 2 claims" in report.summary()
    rej = pd.read_parquet(tmp_path / "out" / "rejections.parquet")
    assert (rej["table"] == "claims").sum() >= 1
    written = set(pd.read_parquet(tmp_path / "out" / "claims.parquet")["claim_id"])
    assert written == {"G0", "G2"}
