"""The compiled reader (contract.xml_kernels: the decoded tables tokenized, checked and cut into
records in one pass; strict base64) against the array scan it replaces on large inputs and the
hardened parser both stand in for.

The fast-path tests of test_xml_fast_path run again here with the compiled kernel forced on;
beside them, the compiled kernel must give exactly what the array scan gives (the same records,
the same tables declined) on the corpus and on fuzzed tables, and its base64 exactly what
base64.b64decode(validate=True) gives, declining what that refuses."""

from __future__ import annotations

import base64
import binascii

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_readers import (  # noqa: F401  (the hardening, again with the compiled reader)
    test_a_mutated_dossier_is_rejected_and_the_others_are_kept,
    test_a_mutated_envelope_never_raises,
)
from test_ingest import (  # noqa: F401
    test_hostile_files_are_refused_and_good_files_still_ingest,
    test_plain_xml_and_cdata_inside_noidungfile,
    test_size_and_field_limits,
)
from test_ingest_gzip import (  # noqa: F401  (gzip envelopes, through the compiled scan)
    corpora,
    test_a_gzip_file_that_inflates_past_the_limit_is_refused_there,
    test_corrupt_or_misnamed_compression_is_refused_and_the_rest_read,
    test_gzip_envelopes_read_as_the_plain_files,
)
from test_xml_fast_path import (  # noqa: F401  (run again here, with the compiled kernel)
    CORPUS,
    ENVELOPE,
    FUZZ,
    LIMITS,
    _dossiers,
    mutated_envelope,
    mutated_table,
    test_a_fuzzed_envelope_reads_the_same_with_and_without_the_fast_path,
    test_a_fuzzed_table_is_read_as_the_parser_reads_it_or_declined,
    test_a_self_closing_field_has_no_value_as_the_parser_reads_it,
    test_an_unreadable_table_is_withheld_from_the_rejection_with_its_size,
    test_columnar_takes_the_fast_records_from_arrow_as_from_tuples,
    test_odd_tables_are_declined_and_read_by_the_parser,
    test_scans_in_parts_and_big_tables_give_the_same_records,
    test_the_envelope_reader_with_and_without_the_fast_path,
    test_the_fast_path_reads_the_corpus_as_the_parser_does,
)

import contract.xml_reader as xml_reader
import contract.xml_tables as xml_tables
from contract.xml_tables import read_tables


@pytest.fixture(autouse=True)
def _compiled(monkeypatch):
    monkeypatch.setattr(xml_tables, "COMPILED", True)


def _both(loai: str, docs: list[bytes]):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(xml_tables, "COMPILED", False)
        scanned = read_tables(loai, docs)
    return read_tables(loai, docs), scanned


def _plain(tables):
    """Records as plain tuples (a Texts compares by its texts; this also shows them)."""
    return [None if t is None else [(tags, tuple(texts)) for tags, texts in t] for t in tables]


def test_the_compiled_kernel_reads_the_corpus_as_the_array_scan():
    for loai in ("XML1", "XML2", "XML3"):
        docs = [d for lo, d in CORPUS if lo == loai]
        compiled, scanned = _both(loai, docs)
        assert _plain(compiled) == _plain(scanned), loai
        assert sum(t is not None for t in compiled) >= len(docs) - 1  # it does take them
        for doc, one in zip(docs, compiled, strict=True):  # each alone, as among the others
            assert _plain(read_tables(loai, [doc])) == _plain([one])


@FUZZ
@given(mutated_table())
def test_a_fuzzed_table_is_read_by_the_compiled_kernel_as_by_the_array_scan(table):
    loai, doc = table
    (_, good), *_ = [t for t in CORPUS if t[0] == loai]
    compiled, scanned = _both(loai, [good, doc, good])
    assert _plain(compiled) == _plain(scanned), doc


@pytest.mark.parametrize("ahead", [1, 3, 256])
def test_an_envelope_reads_the_same_compiled_or_not(ahead, monkeypatch):
    cut = ENVELOPE[: len(ENVELOPE) * 2 // 3]
    for data in (ENVELOPE, cut):
        compiled = _dossiers(data, True, ahead)
        monkeypatch.setattr(xml_tables, "COMPILED", False)
        assert compiled == _dossiers(data, True, ahead)
        monkeypatch.setattr(xml_tables, "COMPILED", True)


@FUZZ
@given(mutated_envelope())
def test_a_fuzzed_envelope_reads_the_same_compiled_or_not(data):
    compiled = _dossiers(data, True, ahead=3)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(xml_tables, "COMPILED", False)
        assert compiled == _dossiers(data, True, ahead=3)


def _python_b64(text: str):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _compiled_b64(text: str):
    k = xml_reader._kernels()
    ok, out = k.b64decode(np.frombuffer(text.encode("ascii"), np.uint8), k.B64_TABLE)
    return out.tobytes() if ok else None


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
        st.text("ABCQRSxyz019+/=", max_size=14),
        st.binary(max_size=12)
        .map(lambda b: base64.b64encode(b).decode())
        .flatmap(lambda s: st.integers(0, len(s)).map(lambda i: s[:i] + "=" + s[i:])),
    )
)
def test_compiled_base64_decodes_as_python_or_declines(text):
    """Declined (None) is fine: the caller then decodes as before. What it decodes is Python's
    answer, and what Python refuses it declines; canonical base64 it always decodes."""
    compiled = _compiled_b64(text)
    if compiled is not None:
        assert compiled == _python_b64(text), text
    python = _python_b64(text)
    if python is not None and base64.b64encode(python).decode() == text:
        assert compiled is not None, text


def test_compiled_base64_edges():
    for text in ["", "QQ==", "QUI=", "QUJD", "QR==", "Q===", "====", "QQ==QQ==", "QU JD", "0000="]:
        got = _compiled_b64(text)
        assert got is None or got == _python_b64(text), text
    assert [_compiled_b64(t) for t in ("", "QQ==", "QUI=", "QUJD", "QR==")] == [
        b"", b"A", b"AB", b"ABC", b"A"]  # fmt: skip
    assert [_compiled_b64(t) for t in ("QQ=", "Q===", "====", "QQ==QQ==", "QU JD", "0000=")] == [
        None] * 6  # fmt: skip


def test_ingest_loads_the_compiled_reader_for_large_inputs_only(tmp_path, monkeypatch):
    """Automatic choice (COMPILED None): the compiled kernels read once loaded; ingest loads
    them for inputs of COMPILED_MIN_INPUT bytes or more (a smaller input, or a request, does
    not pay for loading numba)."""
    from factories import dossier, raw_envelope

    from contract.ingest import ingest
    from contract.limits import Limits

    src = tmp_path / "in"
    src.mkdir()
    (src / "a.xml").write_bytes(raw_envelope([dossier(f"L{i}", n_drugs=2) for i in range(5)]))
    loads, scans = [], []
    real = xml_tables._scan_compiled
    monkeypatch.setattr(xml_tables, "COMPILED", None)
    monkeypatch.setattr(xml_reader, "load_compiled", lambda: loads.append(1))
    monkeypatch.setattr(xml_tables, "_scan_compiled", lambda *a: scans.append(1) or real(*a))
    size = (src / "a.xml").stat().st_size
    for threshold, loaded in ((size + 1, False), (size, True)):
        monkeypatch.setattr(xml_reader, "COMPILED_MIN_INPUT", threshold)
        loads.clear()
        ingest(src, tmp_path / f"out{threshold}", limits=Limits(workers=1), linkage_key="k")
        assert loads == ([1] if loaded else []), threshold
    # once loaded in the process, the kernels read whatever comes
    monkeypatch.setattr(xml_tables, "LOADED", True)
    scans.clear()
    docs = [d for lo, d in CORPUS if lo == "XML3"]
    assert _plain(read_tables("XML3", docs[:1])) != [None] and scans == [1]
    monkeypatch.setattr(xml_tables, "LOADED", False)
    scans.clear()
    assert _plain(read_tables("XML3", docs[:1])) != [None] and scans == []


def test_a_reader_that_cannot_load_the_kernels_reads_as_before(monkeypatch):
    """numba missing or unable to cache: load_compiled says so, and the array scan reads."""
    monkeypatch.setattr(xml_tables, "COMPILED", None)
    monkeypatch.setattr(xml_tables, "LOADED", False)

    def broken():
        raise RuntimeError("cannot cache function: no locator available")

    monkeypatch.setattr(xml_reader, "_kernels", broken)
    assert xml_reader.load_compiled() is False and not xml_tables._compiled()
    monkeypatch.undo()
    monkeypatch.setattr(xml_tables, "LOADED", False)
    assert xml_reader.load_compiled() is True and xml_tables._compiled()


def _edge_tables() -> list[tuple[str, bytes]]:
    x1 = b'<?xml version="1.0" encoding="utf-8"?><TONG_HOP>%s</TONG_HOP>'
    x2 = b"<CHITIEU_CHITIET_THUOC>%s</CHITIEU_CHITIET_THUOC>"
    rec = b"<DSACH_CHI_TIET_THUOC><CHI_TIET_THUOC>%s</CHI_TIET_THUOC></DSACH_CHI_TIET_THUOC>"
    fields = [
        b"<MA_LK></MA_LK>",  # empty: no text
        b"<MA_LK/>",
        b"<MA_LK> </MA_LK>",  # whitespace is a text
        b"<MA_LK>\t\n</MA_LK>",
        "<MA_LK>Nguyễn 𝔘 \x7f \u0085</MA_LK>".encode(),  # 2-, 3-, 4-byte UTF-8, DEL, C1
        b"<MA_LK>a</MA_LK><A.b-1>2</A.b-1><_x/>",
        b"<MA_LK>" + b"y" * 1_000_000 + b"</MA_LK>",  # the longest text taken
        b"<MA_LK>" + b"y" * 1_000_001 + b"</MA_LK>",
        b"<" + b"F" * 998 + b">1</" + b"F" * 998 + b">",  # the longest tag taken
        b"<" + b"F" * 999 + b">1</" + b"F" * 999 + b">",
        b"",  # a record without fields
        b"\n  <MA_LK>1</MA_LK>\n",
        b"<MA_LK>1</MA_LK><MA_LK>2</MA_LK>",  # twice: the parser refuses
        b"<MA_LK>1</MA_LK >",
        b"<MA_LK>1</ma_lk>",
        "<MÃ>1</MÃ>".encode(),
    ]
    out = [("XML1", x1 % f) for f in fields]
    out += [("XML2", x2 % (rec % f)) for f in fields]
    out += [
        ("XML2", x2 % (rec % b"<A>1</A>" + rec % b"<A>2</A><B/>")),  # two lists
        ("XML2", x2 % b"<DSACH_CHI_TIET_THUOC></DSACH_CHI_TIET_THUOC>"),
        ("XML2", x2 % b"<DSACH_CHI_TIET_THUOC><CHI_TIET_THUOC/></DSACH_CHI_TIET_THUOC>"),
        ("XML2", x2 % b"<DSACH_CHI_TIET_THUOC/><DSACH_CHI_TIET_THUOC/>"),
        ("XML1", b"<TONG_HOP/>"),
        ("XML1", b"<TONG_HOP></TONG_HOP>"),
    ]
    return out


def test_edge_tables_read_by_the_compiled_kernel_as_by_the_parser_and_the_array_scan():
    from test_xml_fast_path import _parser_reading

    taken = 0
    for loai, doc in _edge_tables():
        compiled, scanned = _both(loai, [doc])
        assert _plain(compiled) == _plain(scanned), doc[:120]
        expected = _parser_reading(loai, doc)
        if isinstance(expected, Exception):
            assert compiled == [None], doc[:120]
        elif compiled[0] is not None:
            taken += 1
            assert _plain(compiled) == _plain([expected]), doc[:120]
    assert taken >= 20, taken


def test_ingest_of_the_small_files_corpus_is_the_same_compiled_or_not(tmp_path, monkeypatch):
    """The whole ingest (envelopes, base64, tables, records to columns, checks, decisions,
    rejection report) over the small-files corpus (duplicates within and across files, hostile,
    truncated and non-XML files, 4210 names, files of many dossiers): the compiled reader gives
    the dataset, rejection report and counts the array scan and the Python base64 give."""
    from test_ingest_small_files import _corpus, _ingest, _same

    import contract.file_batches as file_batches
    from contract.limits import Limits

    src = tmp_path / "in"
    _corpus(src)
    runs = {}
    for compiled in (False, True):
        monkeypatch.setattr(xml_tables, "COMPILED", compiled)
        for small in (file_batches.SMALL_FILE_BYTES, 0):  # read together, and each alone
            monkeypatch.setattr(file_batches, "SMALL_FILE_BYTES", small)
            out = tmp_path / f"out-{compiled}-{small}"
            runs[compiled, small] = _ingest(src, out, Limits(workers=1, chunk_claims=2_000))
    for small in (file_batches.SMALL_FILE_BYTES, 0):
        _same(runs[True, small], runs[False, small])
    assert runs[True, 0][0].written["claims"] > 0 and runs[True, 0][0].rejected["claims"] > 0


def test_columnar_keeps_row_order_when_equal_shapes_of_two_scans_interleave():
    """Records of one shape from two scans (two tuples of equal names), interleaved: one part
    of the frame, rows in their order."""
    docs = [d for lo, d in CORPUS if lo == "XML1"][:3]
    a = [r for recs in read_tables("XML1", docs) if recs for r in recs]
    b = [r for recs in read_tables("XML1", docs) if recs for r in recs]
    assert a[0][0] == b[0][0] and a[0][0] is not b[0][0]
    mixed = [a[0], b[1], a[2], b[0]]
    rows = [(tags, texts, f"g{i}", "f.xml", f"HOSO {i}") for i, (tags, texts) in enumerate(mixed)]
    got = xml_reader.columnar(rows)
    assert list(got["_record"]) == [f"HOSO {i}" for i in range(4)]
    assert list(got["MA_LK"]) == [t[0] for _, t in mixed]
