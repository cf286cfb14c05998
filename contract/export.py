"""Export a canonical dataset as XML 130 envelopes (GIAMDINHHS), one file per facility and chunk.

Values are written as the standard writes them (timestamps yyyyMMddHHmm, amounts with 2 decimals,
quantities and unit prices with up to 3), so ingest(export(tables)) gives back the same tables.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from lxml import etree

from contract.schema import CLAIMS, DRUG_LINES, SERVICE_LINES, XML_LAYOUT, Field, Table


def _format(f: Field, v: object) -> str | None:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    if f.kind in ("timestamp", "date"):
        fmt = "%Y%m%d" if f.kind == "date" else "%Y%m%d%H%M"
        return pd.Timestamp(v).strftime(fmt)
    if f.kind == "money":
        return f"{float(v):.2f}"
    if f.kind == "quantity":
        s = f"{float(v):.3f}".rstrip("0").rstrip(".")
        return "0" if s in ("", "-0") else s
    if f.kind == "int":
        return str(int(v))
    return str(v)


def _record_element(tag: str, row: dict, table: Table) -> etree._Element:
    el = etree.Element(tag)
    for f in table.fields:
        child = etree.SubElement(el, f.xml)
        text = _format(f, row.get(f.name))
        if text is not None:
            child.text = text
    return el


def table_document(loai: str, rows: list[dict]) -> bytes:
    """The inner document of one table for one claim (what NOIDUNGFILE carries, before base64)."""
    root_tag, list_tag, rec_tag = XML_LAYOUT[loai]
    table = {"XML1": CLAIMS, "XML2": DRUG_LINES, "XML3": SERVICE_LINES}[loai]
    if rec_tag is None:
        root = _record_element(root_tag, rows[0], table)
    else:
        root = etree.Element(root_tag)
        lst = etree.SubElement(root, list_tag)
        for r in rows:
            lst.append(_record_element(rec_tag, r, table))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def envelope(facility_id: str, dossiers: list[dict[str, list[dict]]], created: datetime) -> bytes:
    """A GIAMDINHHS document holding the given dossiers (each: XML table name -> rows)."""
    root = etree.Element("GIAMDINHHS")
    unit = etree.SubElement(root, "THONGTINDONVI")
    etree.SubElement(unit, "MACSKCB").text = facility_id
    info = etree.SubElement(root, "THONGTINHOSO")
    etree.SubElement(info, "NGAYLAP").text = created.strftime("%Y%m%d")
    etree.SubElement(info, "SOLUONGHOSO").text = str(len(dossiers))
    lst = etree.SubElement(info, "DANHSACHHOSO")
    for d in dossiers:
        hoso = etree.SubElement(lst, "HOSO")
        for loai in ("XML1", "XML2", "XML3"):
            rows = d.get(loai) or []
            if not rows:
                continue
            fh = etree.SubElement(hoso, "FILEHOSO")
            etree.SubElement(fh, "LOAIHOSO").text = loai
            etree.SubElement(fh, "NOIDUNGFILE").text = base64.b64encode(
                table_document(loai, rows)
            ).decode("ascii")
    etree.SubElement(root, "CHUKYDONVI")
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def export_xml(
    dataset: Path | dict[str, pd.DataFrame],
    out: Path,
    *,
    per_file: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Write envelopes for every claim of a canonical dataset; returns the files written."""
    if isinstance(dataset, dict):
        tables = dataset
    else:
        from contract.ingest import load_dataset

        tables = load_dataset(Path(dataset))
    claims = tables["claims"]
    lines = {
        "XML2": tables.get("drug_lines", DRUG_LINES.empty()),
        "XML3": tables.get("service_lines", SERVICE_LINES.empty()),
    }
    by_claim = {
        loai: {k: g.to_dict("records") for k, g in df.groupby("claim_id", sort=False)}
        for loai, df in lines.items()
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    created = datetime(2000, 1, 1)
    written: list[Path] = []
    done = 0
    for facility, fc in claims.groupby("facility_id", sort=True):
        rows = fc.to_dict("records")
        for start in range(0, len(rows), per_file):
            chunk = rows[start : start + per_file]
            dossiers = [
                {
                    "XML1": [r],
                    "XML2": by_claim["XML2"].get(r["claim_id"], []),
                    "XML3": by_claim["XML3"].get(r["claim_id"], []),
                }
                for r in chunk
            ]
            path = out / f"{facility}_{start // per_file + 1:05d}.xml"
            path.write_bytes(envelope(str(facility), dossiers, created))
            written.append(path)
            done += len(chunk)
            if progress:
                progress(done, len(claims))
    return written
