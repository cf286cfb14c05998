"""The compiled scan of envelopes (contract.envelope_kernel, contract.xml_envelope) against the
hardened lxml reader it stands in for: every envelope reads to the same dossiers, the same
per-table errors and the same refusal (type and message) with the scan on as with lxml alone,
however the file is cut into buffers; what the scan does not take is handed to lxml from the
dossier it stopped at. Fixed seed, bounded examples."""

from __future__ import annotations

import base64
import logging
import re

import pytest
from factories import dossier, raw_envelope
from hypothesis import given
from hypothesis import strategies as st
from test_xml_fast_path import ENVELOPE, FUZZ, LIMITS, _dossiers, mutated_envelope

import contract.xml_envelope as xml_envelope
import contract.xml_reader as xml_reader
import contract.xml_tables as xml_tables
from contract.limits import Limits


@pytest.fixture(autouse=True)
def _compiled(monkeypatch):
    monkeypatch.setattr(xml_tables, "COMPILED", True)


def _both(data: bytes, chunk: int = 1 << 24, ahead: int = 3):
    """(the scan's reading, lxml's reading), each the dossiers and the error that ended it."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(xml_envelope, "CHUNK", chunk)
        scanned = _dossiers(data, True, ahead)
        m.setattr(xml_envelope, "SCAN", False)
        return scanned, _dossiers(data, True, ahead)


def _said(data: bytes, caplog, what: str, chunk: int = 1 << 24) -> int | None:
    """The dossier count the reader logged WHAT with (None: not logged)."""
    caplog.clear()
    with pytest.MonkeyPatch.context() as m, caplog.at_level(logging.DEBUG, "claimradar.contract"):
        m.setattr(xml_envelope, "CHUNK", chunk)
        _dossiers(data, True)
    said = [r for r in caplog.records if what in r.getMessage()]
    return said[0].args[0] if said else None


def _lxml_reads_from(data: bytes, caplog, chunk: int = 1 << 24) -> int | None:
    """The dossier count after which lxml took the file over (None: the scan read it all)."""
    return _said(data, caplog, "outside the compiled scan", chunk)


GOOD = [dossier(f"K{i}", n_drugs=1 + i % 3) for i in range(5)]
PLAIN = raw_envelope(GOOD)
B64 = base64.b64encode(b'<?xml version="1.0"?><TONG_HOP><MA_LK>Z</MA_LK></TONG_HOP>').decode()


def _edit(old: bytes, new: bytes, count: int = 1) -> bytes:
    assert old in PLAIN
    return PLAIN.replace(old, new, count)


def _xml3_contents(new: list[bytes]) -> bytes:
    """PLAIN with the NOIDUNGFILE of its first XML3 tables replaced by NEW, in order."""
    parts = re.split(rb"(<LOAIHOSO>XML3</LOAIHOSO><NOIDUNGFILE>[^<]*</NOIDUNGFILE>)", PLAIN)
    k = 0
    for i in range(1, len(parts), 2):
        if k < len(new):
            parts[i] = b"<LOAIHOSO>XML3</LOAIHOSO>" + new[k]
            k += 1
    assert k == len(new)
    return b"".join(parts)


# Envelopes the scan reads whole, and what each exercises
INSIDE = {
    "plain": PLAIN,
    "pretty, CRLF between elements": PLAIN.replace(b"><", b">\r\n  <").replace(
        b"<LOAIHOSO>\r\n  <", b"<LOAIHOSO><"
    ),
    "declaration in single quotes, standalone": PLAIN.replace(
        b'<?xml version="1.0" encoding="utf-8"?>',
        b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>",
    ),
    "no declaration": PLAIN.split(b"?>", 1)[1],
    "loai lower case, padded": _edit(b"<LOAIHOSO>XML2<", b"<LOAIHOSO> xml2\n<"),
    "loai unknown, empty, missing": _edit(b"<LOAIHOSO>XML3<", b"<LOAIHOSO>XML99<")
    .replace(b"<LOAIHOSO>XML3<", b"<LOAIHOSO><", 1)
    .replace(b"<LOAIHOSO>XML3</LOAIHOSO>", b"", 1),
    "a LOAIHOSO twice (the last counts)": _edit(
        b"<LOAIHOSO>XML2</LOAIHOSO>", b"<LOAIHOSO>XML9</LOAIHOSO><LOAIHOSO>XML2</LOAIHOSO>"
    ),
    "NOIDUNGFILE missing, empty, self-closed": _xml3_contents(
        [b"", b"<NOIDUNGFILE/>", b"<NOIDUNGFILE></NOIDUNGFILE>"]
    ),
    "base64 wrapped in lines, padded with spaces": _edit(
        b"<NOIDUNGFILE>", b"<NOIDUNGFILE>\n  ", 3
    ).replace(b"AAAA", b"AA\nAA"),
    "not base64, non-ASCII text": _edit(b"<NOIDUNGFILE>", b"<NOIDUNGFILE>kh\xc3\xb4ng ", 2),
    "an empty HOSO, an empty FILEHOSO, other elements": _edit(
        b"<HOSO>", b"<HOSO/><HOSO><GHICHU>x</GHICHU><FILEHOSO/><FILEHOSO><Y/></FILEHOSO>", 2
    ),
    "a FILEHOSO deeper than the HOSO's child": _edit(
        b"<HOSO>",
        b"<HOSO><GOI><FILEHOSO><LOAIHOSO>XML1</LOAIHOSO><NOIDUNGFILE>"
        + B64.encode()
        + b"</NOIDUNGFILE></FILEHOSO></GOI>",
    ),
    "a HOSO outside DANHSACHHOSO": _edit(
        b"<CHUKYDONVI>",
        b"<HOSO><FILEHOSO><LOAIHOSO>XML1</LOAIHOSO><NOIDUNGFILE>"
        + B64.encode()
        + b"</NOIDUNGFILE></FILEHOSO></HOSO><CHUKYDONVI>",
    ),
    "the root self-closed": b'<?xml version="1.0"?><GIAMDINHHS/>',
}
# Envelopes the scan hands to lxml, and after how many dossiers
OUTSIDE = {
    "an attribute on the root": (_edit(b"<GIAMDINHHS>", b'<GIAMDINHHS xmlns="urn:x">'), 0),
    "a BOM": (b"\xef\xbb\xbf" + PLAIN, 0),
    "another encoding": (PLAIN.replace(b"utf-8", b"windows-1258", 1), 0),
    "a comment in the third dossier": (
        _edit(b"<HOSO>", b"<HOSO>", 1)
        .replace(b"<HOSO><FILEHOSO>", b"<HOSO><!-- x --><FILEHOSO>")
        .replace(b"<!-- x -->", b"", 2),
        2,
    ),
    "a signature after the dossiers": (
        _edit(
            b"<CHUKYDONVI></CHUKYDONVI>",
            b'<CHUKYDONVI><ds:Signature xmlns:ds="urn:s">AA</ds:Signature></CHUKYDONVI>',
        ),
        5,
    ),
    "an entity in a LOAIHOSO": (_edit(b"<LOAIHOSO>XML1<", b"<LOAIHOSO>XML&#49;<"), 0),
    "CR inside a NOIDUNGFILE": (
        _edit(b"<NOIDUNGFILE>", b"<NOIDUNGFILE>\r\n", 2).replace(
            b"<NOIDUNGFILE>\r\n", b"<NOIDUNGFILE>", 1
        ),
        0,
    ),
    "a HOSO in a HOSO": (
        # (the seventh FILEHOSO: the first of the third dossier)
        _edit(b"<FILEHOSO>", b"<HOSO></HOSO><FILEHOSO>", 7).replace(b"<HOSO></HOSO>", b"", 6),
        2,
    ),
    "an element inside NOIDUNGFILE": (
        _edit(b"<NOIDUNGFILE>", b"<NOIDUNGFILE><TONG_HOP/>", 4).replace(
            b"<NOIDUNGFILE><TONG_HOP/>", b"<NOIDUNGFILE>", 3
        ),
        1,
    ),
    "a mismatched end tag": (
        _edit(b"</HOSO>", b"</HOSX>", 4).replace(b"</HOSX>", b"</HOSO>", 3),
        3,
    ),
    "an end tag longer than its start": (
        _edit(b"</FILEHOSO>", b"</FILEHOSOS>", 4).replace(b"</FILEHOSOS>", b"</FILEHOSO>", 3),
        1,
    ),
    "a comment after the root": (PLAIN + b"<!-- signed -->\n", 5),
    "a second root": (PLAIN + b"<GIAMDINHHS/>", 5),
    "text after the root": (PLAIN + b" x", 5),
    "truncated": (PLAIN[: len(PLAIN) * 3 // 4], None),
    "nested past the depth limit": (
        _edit(b"<CHUKYDONVI></CHUKYDONVI>", b"<A>" * 40 + b"</A>" * 40),
        5,
    ),
}


@pytest.mark.parametrize("name", sorted(INSIDE))
def test_envelopes_inside_the_scan_read_as_lxml_reads_them(name, caplog):
    data = INSIDE[name]
    scanned, parsed = _both(data)
    assert scanned == parsed
    assert _lxml_reads_from(data, caplog) is None, "the scan handed it to lxml"


@pytest.mark.parametrize("name", sorted(OUTSIDE))
def test_envelopes_outside_the_scan_go_to_lxml_from_where_it_stopped(name, caplog):
    data, after = OUTSIDE[name]
    scanned, parsed = _both(data)
    assert scanned == parsed
    at = _lxml_reads_from(data, caplog)
    assert at is not None, "the scan took what it should hand over"
    if after is not None:
        assert at == after


def test_the_fixtures_say_what_they_are_meant_to():
    """Guards on the cases above: the outside ones still hold dossiers or errors worth comparing."""
    (dossiers, error), _ = _both(INSIDE["plain"])
    assert len(dossiers) == 5 and error is None
    (dossiers, error), _ = _both(OUTSIDE["a signature after the dossiers"][0])
    assert len(dossiers) == 5 and error is None
    (dossiers, error), _ = _both(OUTSIDE["a mismatched end tag"][0])
    assert len(dossiers) == 3 and error is not None
    (dossiers, error), _ = _both(INSIDE["NOIDUNGFILE missing, empty, self-closed"])
    assert any(d.errors for d in dossiers)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1000])
def test_any_cut_into_buffers_reads_the_same(chunk, caplog):
    """Every tag, text and (at 1-3 bytes) every character of 2-4 bytes cut by a buffer's end:
    the scan reads on from its last safe point in the next buffer, never handing over."""
    for data in (
        PLAIN,
        INSIDE["not base64, non-ASCII text"],
        INSIDE["pretty, CRLF between elements"],
    ):
        assert _both(data, chunk)[0] == _both(data)[1]
        assert _lxml_reads_from(data, caplog, chunk) is None


def _read(data: bytes, limits):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(xml_reader, "READ_AHEAD", 3)
        out = []
        try:
            out.extend(xml_reader.read_envelope(data, limits))
        except Exception as e:
            return out, (type(e), str(e))
        return out, None


def test_libxml2s_own_limits_hold_where_lxml_reads_on():
    """A text node lxml would refuse as too long (over 10 MB without huge_tree) split by a comment
    where the scan stops, and nesting deeper than libxml2's 256 under a max_depth above it: the
    same refusal with the scan as without (review: each read 3 dossiers where lxml refuses)."""
    long_text = b"<GHICHU>" + b"a" * 4_000_000 + b"<!--c-->" + b"b" * 6_500_000 + b"</GHICHU>"
    deep = b"<A>" * 254 + b"</A>" * 254
    for data, limits in (
        (_edit(b"<HOSO>", long_text + b"<HOSO>"), LIMITS),
        (_edit(b"<HOSO>", deep + b"<HOSO>"), Limits(workers=1, max_depth=300)),
    ):
        with pytest.MonkeyPatch.context() as m:
            scanned = _read(data, limits)
            m.setattr(xml_envelope, "SCAN", False)
            parsed = _read(data, limits)
        assert parsed[1] is not None and not parsed[0]  # (what lxml alone does)
        assert scanned == parsed


def test_every_truncation_reads_as_lxml_reads_it():
    for end in range(0, len(ENVELOPE), 97):
        data = ENVELOPE[:end]
        if not data.strip():
            continue
        for chunk in (64, 1 << 24):
            scanned, parsed = _both(data, chunk)
            assert scanned == parsed, end


@FUZZ
@given(mutated_envelope(), st.sampled_from([5, 300, 1 << 24]))
def test_a_fuzzed_envelope_reads_the_same_scanned_or_not(data, chunk):
    scanned, parsed = _both(data, chunk)
    assert scanned == parsed


def test_lxml_reads_on_from_where_the_scan_stopped_and_again_only_for_a_break(caplog):
    """A file that leaves the subset but is well-formed (a signature, a comment) costs lxml the
    rest of the file only; a file that breaks is read again from its start, so the refusal and
    its line and column are those of the whole file."""
    again = "read by lxml from its start"
    for name in (
        "a signature after the dossiers",
        "a comment in the third dossier",
        "a comment after the root",
    ):
        assert _said(OUTSIDE[name][0], caplog, again) is None, name
    for name in ("a mismatched end tag", "text after the root", "a second root"):
        assert _said(OUTSIDE[name][0], caplog, again) is not None, name
    lines = OUTSIDE["a mismatched end tag"][0].replace(b"><", b">\n<")
    scanned, parsed = _both(lines)
    assert scanned == parsed and "line 1" not in parsed[1][1]  # (the whole file's line)


def test_a_gzip_envelope_is_read_on_where_the_scan_stopped(tmp_path, caplog):
    import gzip

    from contract.xml_reader import read_envelope

    data = OUTSIDE["a comment in the third dossier"][0]
    (tmp_path / "a.xml.gz").write_bytes(gzip.compress(data))
    (tmp_path / "a.xml").write_bytes(data)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(xml_envelope, "CHUNK", 100)  # (inflated again, piece by piece, to the offset)
        got = [list(read_envelope(tmp_path / n, LIMITS)) for n in ("a.xml.gz", "a.xml")]
    assert got[0] == got[1] == _both(data)[1][0]
    assert len(got[0]) == 5
