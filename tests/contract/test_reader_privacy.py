"""A NOIDUNGFILE that cannot be read is rejected without echoing its content (issue 13): the
base64 text decodes to names, card and ID numbers."""

from __future__ import annotations

import base64

import pandas as pd
from factories import claim, dossier, raw_envelope

from claimradar.settings import DEV_LINKAGE_KEY
from contract.ingest import ingest, load_dataset


def test_an_unreadable_table_is_rejected_without_its_content(tmp_path):
    person = claim("P1", HO_TEN="NGUYEN VAN BI MAT", SO_CCCD="079123456789")
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in person.items())
    cut = base64.b64encode(f"<TONG_HOP>{inner}".encode()).decode()  # valid base64, truncated XML
    (tmp_path / "e.xml").write_bytes(raw_envelope([{"XML1": cut}, dossier("OK1")]))
    report = ingest(tmp_path / "e.xml", tmp_path / "out", linkage_key=DEV_LINKAGE_KEY)
    rej = pd.read_parquet(tmp_path / "out" / "rejections.parquet")
    hit = rej[rej["field"] == "NOIDUNGFILE"]
    assert len(hit) == 1 and "XML1" in hit["error"].iloc[0]
    assert hit["value"].iloc[0] == f"({len(cut):,} characters, not shown)"
    shown = rej.to_csv() + repr(report)
    assert cut[:40] not in shown and "BI MAT" not in shown and "079123456789" not in shown
    assert list(load_dataset(tmp_path / "out")["claims"]["claim_id"]) == ["OK1"]
