"""The XML tables read with array operations (contract.xml_tables, the fast path) against the
hardened lxml parser they stand in for (contract.xml_reader._parse_table), and the envelope reader
with the fast path against the same reader with it turned off.

The fast path may decline a table (None: the parser reads it), never read one differently: on
every table of the corpus and on fuzzed tables, a table it reads gives exactly the parser's
records, and a table the parser refuses is declined. Fixed seed, bounded examples (seconds)."""

from __future__ import annotations

import base64
import re
from datetime import datetime

import pandas as pd
import pytest
from factories import dossier, raw_envelope
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

import contract.xml_reader as xml_reader
from contract.export import table_document
from contract.limits import Limits
from contract.xml_reader import _parse_table, read_envelope
from contract.xml_tables import read_tables

LIMITS = Limits(workers=1, max_depth=32)
FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _parser_reading(loai: str, payload: bytes):
    """The parser's records for a table, or the error it gives."""
    try:
        return _parse_table(loai, payload, LIMITS)
    except (ValueError, etree.XMLSyntaxError) as e:
        return e


def _tables_of(envelope: bytes) -> list[tuple[str, bytes]]:
    return [
        (loai.decode(), base64.b64decode(text))
        for loai, text in re.findall(
            rb"<LOAIHOSO>(XML\d)</LOAIHOSO><NOIDUNGFILE>([^<]*)</NOIDUNGFILE>", envelope
        )
    ]


def _corpus() -> list[tuple[str, bytes]]:
    tables = _tables_of(raw_envelope([dossier(f"C{i}", n_drugs=i, n_services=3) for i in range(4)]))
    tables += _tables_of(raw_envelope([dossier("E1", HO_TEN="A & B <C>", LY_DO_VV="x" * 5000)]))
    # Pretty-printed (whitespace between elements), no declaration, single quotes, no encoding.
    for loai, doc in list(tables[:6]):
        root = etree.fromstring(doc)
        tables.append((loai, etree.tostring(root, pretty_print=True, encoding="utf-8")))
        tables.append((loai, etree.tostring(root, xml_declaration=True, encoding="UTF-8")))
        plain = etree.tostring(root, encoding="utf-8")
        tables.append((loai, b"<?xml version='1.0'?>\n" + plain + b"\n\n"))
    tables.append(
        ("XML2", b"<CHITIEU_CHITIET_THUOC><DSACH_CHI_TIET_THUOC/></CHITIEU_CHITIET_THUOC>")
    )
    tables.append(
        ("XML2", b"<CHITIEU_CHITIET_THUOC><DSACH_CHI_TIET_THUOC><CHI_TIET_THUOC>"
         b"</CHI_TIET_THUOC></DSACH_CHI_TIET_THUOC></CHITIEU_CHITIET_THUOC>")
    )  # fmt: skip
    return tables


def _export_corpus() -> list[tuple[str, bytes]]:
    """Tables as contract.export writes them (what the benchmarks and the simulator produce)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import numpy as np
    from envelopes import _claim, _drug, _service  # type: ignore[import-not-found]

    rng = np.random.default_rng(3)
    c = _claim(1, rng)
    at = datetime(2025, 3, 1, 10)
    return [
        ("XML1", table_document("XML1", [c])),
        ("XML2", table_document("XML2", [_drug(c["claim_id"], j, at) for j in range(1, 4)])),
        ("XML3", table_document("XML3", [_service(c["claim_id"], j, at) for j in range(1, 3)])),
    ]


CORPUS = _corpus() + _export_corpus()


def test_the_fast_path_reads_the_corpus_as_the_parser_does():
    taken = 0
    for loai, doc in CORPUS:
        fast = read_tables(loai, [doc])[0]
        expected = _parser_reading(loai, doc)
        assert not isinstance(expected, Exception), (loai, doc[:200], expected)
        if fast is not None:
            taken += 1
            assert fast == expected, (loai, doc[:200])
    # It does take the ordinary tables (not a test of a path that never runs): all but the one
    # holding entity references (&amp;).
    assert taken == len(CORPUS) - 1, taken
    # Many tables read together give what each gives alone.
    for loai in ("XML1", "XML2", "XML3"):
        docs = [d for lo, d in CORPUS if lo == loai]
        assert read_tables(loai, docs) == [read_tables(loai, [d])[0] for d in docs]


def test_odd_tables_are_declined_and_read_by_the_parser():
    good = CORPUS[0][1]
    assert read_tables("XML1", [good])[0] is not None
    odd = {
        "entity": good.replace(b"<MA_LK>", b"<MA_LK>&#65;", 1),
        "cdata": good.replace(b"<MA_LK>", b"<MA_LK><![CDATA[x]]>", 1),
        "comment": good.replace(b"<MA_LK>", b"<MA_LK><!-- c -->", 1),
        "pi": good.replace(b"<MA_LK>", b"<MA_LK><?p x?>", 1),
        "carriage return": good.replace(b"<MA_LK>", b"<MA_LK>\r\n", 1),
        "attribute": good.replace(b"<MA_LK>", b'<MA_LK a="1">', 1),
        "namespace": good.replace(b"<TONG_HOP>", b'<TONG_HOP xmlns="urn:x">', 1),
        "nested": good.replace(b"<MA_LK>", b"<MA_LK><X>1</X>", 1),
        "duplicate": good.replace(b"<MA_LK>", b"<STT>1</STT><MA_LK>", 1),
        "wrong root": good.replace(b"TONG_HOP>", b"TONG>"),
        "mismatched": good.replace(b"</MA_LK>", b"</MA_LX>", 1),
        "text in record": good.replace(b"<MA_LK>", b"x<MA_LK>", 1),
        "control": good.replace(b"<MA_LK>", b"<MA_LK>\x01", 1),
        "not utf-8": good.replace(b"<MA_LK>", b"<MA_LK>\xff", 1),
        "U+FFFE": good.replace(b"<MA_LK>", "<MA_LK>\ufffe".encode(), 1),
        "latin-1": good.replace(b'encoding="utf-8"', b'encoding="iso-8859-1"', 1),
        "dtd": good.replace(b"?>", b"?><!DOCTYPE TONG_HOP>", 1),
        "gt in text": good.replace(b"<MA_LK>", b"<MA_LK>]]>", 1),
        "trailing": good + b"<X/>",
    }
    for why, doc in odd.items():
        assert doc != good, why
        assert read_tables("XML1", [good, doc, good]) == [
            read_tables("XML1", [good])[0],
            None,
            read_tables("XML1", [good])[0],
        ], why


SNIPPETS = [
    b"&amp;", b"&#x41;", b"&e;", b"<!--c-->", b"<?p?>", b"<![CDATA[x]]>", b"\r", b"\r\n", b" ",
    b"\n", b"\t", b"<X/>", b"<X>y</X>", b"</X>", b"<", b">", b"/", b"]]>", b"\x00", b"\x7f",
    b"\xc2\x85", b"\xef\xbf\xbe", b"\xed\xa0\x80", b"\xff", b' a="1"', b" xmlns='u'", b"a:",
    b"<MA_LK>1</MA_LK>", b"<CHI_TIET_THUOC>", b"</CHI_TIET_THUOC>", b"<DSACH_CHI_TIET_THUOC/>",
    "ễ".encode(), b"x" * 70,
]  # fmt: skip


@st.composite
def mutated_table(draw):
    loai, doc = draw(st.sampled_from(CORPUS))
    data = bytearray(doc)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["insert", "flip", "delete", "duplicate"]))
        at = draw(st.integers(0, len(data)))
        if kind == "insert":
            data[at:at] = draw(st.sampled_from(SNIPPETS))
        elif kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:  # a whole field (or any element) again, next to itself
            m = list(re.finditer(rb"<([A-Z_]+)>[^<]*</\1>", bytes(data)))
            if m:
                f = m[draw(st.integers(0, len(m) - 1))]
                data[f.end() : f.end()] = f.group(0)
    return loai, bytes(data)


@FUZZ
@given(mutated_table())
def test_a_fuzzed_table_is_read_as_the_parser_reads_it_or_declined(table):
    loai, doc = table
    expected = _parser_reading(loai, doc)
    fast = read_tables(loai, [doc])[0]
    if isinstance(expected, Exception):
        assert fast is None, (doc, expected)
    elif fast is not None:
        assert fast == expected, doc
    # Beside good tables, in one scan: the same answer, and the good ones unharmed.
    (_, good), *_ = [t for t in CORPUS if t[0] == loai]
    both = read_tables(loai, [good, doc, good])
    assert both == [read_tables(loai, [good])[0], fast, read_tables(loai, [good])[0]]


# -- the envelope reader: the fast path on and off ------------------------------------------


def _dossiers(data: bytes, fast: bool, ahead: int = 256):
    """The dossiers read from DATA and the error that ended the reading (type, message)."""
    out, error = [], None
    with pytest.MonkeyPatch.context() as m:
        m.setattr(xml_reader, "READ_AHEAD", ahead)
        if not fast:
            m.setattr(xml_reader, "read_tables", lambda loai, p: [None] * len(p))
        try:
            for d in read_envelope(data, LIMITS):
                out.append(d)
        except Exception as e:
            error = (type(e), str(e))
    return out, error


ENVELOPE = raw_envelope(
    [dossier(f"G{i}", n_drugs=1 + i % 3) for i in range(7)]
    + [{"XML1": [dossier("H")["XML1"][0]], "XML2": "not base64!", "XML9": "AAAA"}]
)


@st.composite
def mutated_envelope(draw):
    data = bytearray(ENVELOPE)
    kind = draw(st.sampled_from(["table", "truncate", "flip"]))
    if kind == "table":  # one table replaced by a fuzzed one
        spans = [m.span(1) for m in re.finditer(rb"<NOIDUNGFILE>([^<]*)<", ENVELOPE)]
        a, b = spans[draw(st.integers(0, len(spans) - 1))]
        _, doc = draw(mutated_table())
        data[a:b] = base64.b64encode(doc)
    elif kind == "truncate":
        del data[draw(st.integers(len(data) // 3, len(data) - 1)) :]
    else:
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data)


@pytest.mark.parametrize("ahead", [1, 3, 256])
def test_the_envelope_reader_with_and_without_the_fast_path(ahead):
    cut = ENVELOPE[: len(ENVELOPE) * 2 // 3]
    for data in (ENVELOPE, cut):
        fast = _dossiers(data, True, ahead)
        assert fast == _dossiers(data, False, ahead)
        assert fast[0], "no dossier read"
    assert _dossiers(ENVELOPE, True, ahead)[1] is None
    dossiers, error = _dossiers(cut, True, ahead)
    assert error is not None and error[0] is etree.XMLSyntaxError
    assert 0 < len(dossiers) < 8  # the dossiers before the cut, then the error


@settings(FUZZ, max_examples=60)
@given(mutated_envelope())
def test_a_fuzzed_envelope_reads_the_same_with_and_without_the_fast_path(data):
    assert _dossiers(data, True, ahead=3) == _dossiers(data, False)


def test_an_unreadable_table_is_withheld_from_the_rejection_with_its_size():
    """Read with the others (read ahead), a table that fails shows its size, never its text."""
    broken = base64.b64encode(b'<?xml version="1.0"?><TONG_HOP><MA_LK>SECRET</MA_LK>').decode()
    data = raw_envelope([dossier("A"), {"XML1": broken}, dossier("B")])
    for fast in (True, False):
        dossiers, error = _dossiers(data, fast, ahead=3)
        assert error is None
        (table, fld, value, message), *_ = dossiers[1].errors
        assert (table, fld, value) == (
            "XML1",
            "NOIDUNGFILE",
            f"({len(broken):,} characters, not shown)",
        )
        assert message.startswith("XML1: ") and "SECRET" not in message
        assert [d.records["XML1"][0][1][0] for d in (dossiers[0], dossiers[2])] == ["A", "B"]


def test_scans_in_parts_and_big_tables_give_the_same_records(monkeypatch):
    """Bounded memory: tables scanned in parts, a table over the size bound left to the parser."""
    import contract.xml_tables as xml_tables

    docs = [d for lo, d in CORPUS if lo == "XML3"]
    whole = read_tables("XML3", docs)
    monkeypatch.setattr(xml_tables, "_MAX_SCAN", 3000)  # a few tables a part
    assert read_tables("XML3", docs) == whole
    monkeypatch.setattr(xml_tables, "_MAX_TABLE", 3000)
    parts = read_tables("XML3", docs)
    assert [p for p, d in zip(parts, docs, strict=True) if len(d) > 3000] == [None] * sum(
        len(d) > 3000 for d in docs
    )
    assert [p for p in parts if p is not None] == [
        w for w, d in zip(whole, docs, strict=True) if len(d) <= 3000
    ]


def test_a_self_closing_field_has_no_value_as_the_parser_reads_it():
    """<F/> in a pretty-printed table: no text (the whitespace after it belongs to no field)."""
    for loai, doc in [(lo, d) for lo, d in CORPUS if b"\n" in d][:6]:
        root = etree.fromstring(doc)
        leaves = [e for e in root.iter() if len(e) == 0 and (e.text or "").strip()]
        for e in leaves[1:3]:
            e.text = None  # serialised as <F/>
        table = etree.tostring(root, pretty_print=True, encoding="utf-8")
        assert b"/>" in table
        fast = read_tables(loai, [table])[0]
        assert fast is not None and fast == _parser_reading(loai, table), loai


def test_columnar_takes_the_fast_records_from_arrow_as_from_tuples():
    # Records of the fast path carry their texts as a Texts on the scan's Arrow array, and
    # columnar takes whole columns from it: the frame must be the one the same records give as
    # tuples, with parser records (tuples) between them, two scans (arrays), several shapes and
    # empty texts (rows out of order across the parts: the frame keeps the rows' order).
    docs = [d for lo, d in CORPUS if lo == "XML3"]
    scan_a = [r for recs in read_tables("XML3", docs) if recs for r in recs]
    scan_b = [r for recs in read_tables("XML3", docs[::-1]) if recs for r in recs]
    parsed = _parse_table("XML3", docs[0], LIMITS)
    short = parsed[0][0][:3], tuple(parsed[0][1])[:3]
    mixed = scan_a[:3] + parsed + [short] + scan_b + scan_a[3:] + [short] + scan_b[:2]
    assert {type(t).__name__ for _, t in mixed} == {"Texts", "tuple"}
    assert any(None in tuple(t) for _, t in scan_a)  # an empty field: no text
    rows = [
        (tags, texts, f"g{i % 4}", "f.xml", f"HOSO {i}") for i, (tags, texts) in enumerate(mixed)
    ]
    as_tuples = [(r[0], tuple(r[1]), *r[2:]) for r in rows]
    got = xml_reader.columnar(rows)
    pd.testing.assert_frame_equal(got, xml_reader.columnar(as_tuples))
    assert list(got["_record"]) == [r[4] for r in rows] and len(got) == len(rows)
    # a Texts reads as its tuple
    tags, texts = scan_a[0]
    t = tuple(texts)
    assert texts == t and t == texts and texts[-1] == t[-1] and texts[1:3] == t[1:3]
    assert len(texts) == len(tags) and dict(zip(tags, texts, strict=True))["MA_LK"] == t[0]
