"""Rebuild the sample envelopes shipped in claimradar/samples/envelopes (used by `claimradar demo`).

    uv run python scripts/make_sample.py

A small simulated world exported as XML 130 envelopes, plus two files that show the rejection
report at work: one dossier with a bad date and a bad sex code, and one truncated file.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from pathlib import Path

from lxml import etree

import simulator
from claimradar.settings import DEV_LINKAGE_KEY
from contract.export import export_xml
from contract.ingest import ingest

OUT = Path(__file__).resolve().parents[1] / "claimradar" / "samples" / "envelopes"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        simulator.simulate(tmp / "world", 300, months=3, start="2025-01", seed=7)
        ingest(tmp / "world", tmp / "ds", linkage_key=DEV_LINKAGE_KEY)
        shutil.rmtree(OUT, ignore_errors=True)
        files = export_xml(tmp / "ds", OUT, per_file=100)
    # One dossier with structural errors: the claim is rejected whole, the others go through.
    first = files[0]
    root = etree.parse(str(first)).getroot()
    hoso = root.find("THONGTINHOSO/DANHSACHHOSO/HOSO")
    for fh in hoso.findall("FILEHOSO"):
        if fh.findtext("LOAIHOSO") == "XML1":
            node = fh.find("NOIDUNGFILE")
            doc = etree.fromstring(base64.b64decode(node.text))
            doc.find("NGAY_VAO").text = "2025-13-45"
            doc.find("GIOI_TINH").text = "7"
            xml = etree.tostring(doc, xml_declaration=True, encoding="utf-8")
            node.text = base64.b64encode(xml)
    first.write_bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))
    # A file cut off in transit: its complete dossiers are read, the rest is reported.
    last = files[-1].read_bytes()
    files[-1].unlink()
    (OUT / "zz_truncated_upload.xml").write_bytes(last[: len(last) // 2])
    total = sum(p.stat().st_size for p in OUT.glob("*.xml"))
    print(f"wrote {len(list(OUT.glob('*.xml')))} sample files ({total / 1e6:.1f} MB) -> {OUT}")


if __name__ == "__main__":
    main()
