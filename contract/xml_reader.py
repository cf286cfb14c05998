"""The hardened XML 130 reader: GIAMDINHHS envelopes streamed (lxml iterparse, a bounded number
of dossiers in memory at a time) through a parser with no DTDs, no entities and no network, within
limits on size, depth and field length; raw records to columnar frames. The decoded tables of the
dossiers read ahead are read together by contract.xml_tables where they fall in its strict subset
of XML, the others by the lxml parser here. Validation is ingest's (contract.ingest).
"""

from __future__ import annotations

import functools
import gzip
import io
import logging
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from contract import xml_envelope, xml_tables
from contract.limits import Limits
from contract.schema import XML_LAYOUT
from contract.validate import GROUP, INTERNAL, RECORD, SOURCE
from contract.xml_envelope import Gathered, decode_text, withheld
from contract.xml_tables import Texts, read_tables

log = logging.getLogger("claimradar.contract")

# One raw record: its field names in document order and their texts.
Rec = tuple[tuple[str, ...], Sequence[str | None]]  # a tuple, or a Texts (xml_tables)


class HostileInput(ValueError):
    """A file refused before or while parsing (DTD, entities, size, depth, not XML)."""


_PROLOG_ITEM = re.compile(rb"\s*(<\?.*?\?>|<!--.*?-->)", re.S)


def check_prolog(data: bytes, what: str) -> None:
    """Refuse anything before the root element but an XML declaration, PIs and comments.

    DTDs are how billion-laughs and external-entity (XXE) attacks get in, and no XML 130 file
    needs one, so a DOCTYPE anywhere in the prolog refuses the document outright.
    """
    pos = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    while True:
        m = _PROLOG_ITEM.match(data, pos)
        if not m:
            break
        pos = m.end()
    rest = data[pos:].lstrip()
    if rest.startswith(b"<!DOCTYPE") or rest.startswith(b"<!ENTITY"):
        raise HostileInput(f"{what} declares a DTD (<!DOCTYPE>); DTDs and entities are not allowed")
    if len(data) >= 65_536 and (not rest or rest[:2] in (b"<!", b"<?")):
        raise HostileInput(f"{what} has no root element in its first 64 KiB")
    if not rest:
        raise HostileInput(f"{what} is empty or has no root element")
    if not rest.startswith(b"<") or rest[1:2] in (b"!", b"?", b""):
        raise HostileInput(f"{what} is not XML (it does not start with an element)")


@functools.cache
def _parser() -> etree.XMLParser:
    # One parser per process, reused (creating one costs more than parsing a small table).
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        recover=False,
    )


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1] if "}" in tag else tag


@dataclass
class Dossier:
    """One HOSO: the raw records of its tables, keyed by XML table name."""

    number: int
    records: dict[str, list[Rec]]
    errors: list[tuple[str, str, str, str]]  # (table, field, value, error) that reject it whole
    skipped: list[str]


@functools.cache
def _kernels():  # (imported when first used: loading numba costs about a CPU second)
    from contract import xml_kernels

    return xml_kernels


def load_compiled() -> bool:
    """Load the compiled kernels now (ingest does before forking its workers, which then share
    the loaded code) and use them from here on; False (and the array scan as before) where they
    cannot be loaded (numba missing or broken, no writable cache directory)."""
    if xml_tables.LOADED:
        return True
    try:
        k = _kernels()
        ok, out = k.b64decode(np.frombuffer(b"QQ==", np.uint8), k.B64_TABLE)
        table = b"<TONG_HOP><MA_LK>1</MA_LK></TONG_HOP>"
        got: list = [None]
        xml_tables._scan_compiled("XML1", [table], got, [0])
        envelope = b"<GIAMDINHHS><HOSO><FILEHOSO><LOAIHOSO>XML1</LOAIHOSO><NOIDUNGFILE>QQ=="
        envelope += b"</NOIDUNGFILE></FILEHOSO></HOSO></GIAMDINHHS>"
        scan = xml_envelope.gather(io.BytesIO(envelope).read, Limits())
        dossier = next(scan)
        if not (
            ok
            and out.tobytes() == b"A"
            and got[0]
            and got[0][0][0] == ("MA_LK",)
            and dossier.slots == [("bytes", "XML1", b"A", 4)]
            and next(scan, None) is None
        ):
            raise RuntimeError("the compiled XML reader gave a wrong answer on its self-test")
    except Exception as e:
        log.warning("compiled XML reader not used: %s", e)
        return False
    xml_tables.LOADED = True
    return True


# Inputs of at least this many bytes are read by the compiled kernels (contract.xml_kernels):
# ingest loads them first (load_compiled). Loading numba costs ~1.7 CPU-s once a process, which
# the kernels save back after ~15,000 typical claims of CPU (~0.11 ms each) and ~25,000 of wall
# on two workers (the load is serial, before the fork); smaller inputs, and requests to the
# scoring API, read as before unless the process has loaded them.
COMPILED_MIN_INPUT = 256 * 1024**2


def _compiled() -> bool:
    return xml_tables._compiled()


def _decode_table(
    node: etree._Element, limits: Limits, compiled: bool = False
) -> bytes | etree._Element:
    children = [c for c in node if isinstance(c.tag, str)]
    if children:  # plain XML placed inside NOIDUNGFILE
        return children[0]
    return decode_text((node.text or "").strip(), limits, compiled)


_NESTED_XML1 = etree.XPath("count(*/*)")
_NESTED_LINES = etree.XPath("count(*/*/*/*)")


def _parse_table(loai: str, payload: bytes | etree._Element, limits: Limits) -> list[Rec]:
    if isinstance(payload, bytes):
        check_prolog(payload[:65_536], f"the {loai} document")
        root = etree.fromstring(payload, _parser())
    else:
        root = payload
    root_tag, list_tag, rec_tag = XML_LAYOUT[loai]
    if _local(root.tag) != root_tag:
        raise ValueError(f"root element is {_local(root.tag)}, expected {root_tag}")
    namespaced = "}" in root.tag
    if rec_tag is None:
        records = [root]
        nested = _NESTED_XML1(root) if not namespaced else 0
    elif not namespaced:
        records = root.findall(f"{list_tag}/{rec_tag}")
        nested = _NESTED_LINES(root)
    else:
        records = [e for e in root.iter() if _local(e.tag) == rec_tag]
        nested = 0
    if nested:
        raise ValueError("a field holds nested elements")
    out: list[Rec] = []
    for rec in records:
        if namespaced:  # rare: strip namespaces field by field
            pairs = [(_local(c.tag), c.text) for c in rec if isinstance(c.tag, str)]
        else:  # comments and PIs were removed by the parser: children are elements
            pairs = [(c.tag, c.text) for c in rec]
        tags, texts = zip(*pairs, strict=True) if pairs else ((), ())
        if len(set(tags)) != len(tags):
            dup = next(t for t in tags if tags.count(t) > 1)
            raise ValueError(f"field {dup} appears twice in one record")
        out.append((tags, texts))
    return out


# Dossiers read ahead so that their tables are read together (contract.xml_tables): at most
# this many, or this many bytes of decoded tables.
READ_AHEAD = 256
READ_AHEAD_BYTES = 16 * 1024**2


def read_envelope(source: Path | bytes, limits: Limits) -> Iterator[Dossier]:
    """Yield the dossiers of one GIAMDINHHS file (a path, or the bytes of one); raise HostileInput
    / etree.XMLSyntaxError where the file stops being acceptable (dossiers before that point were
    yielded)."""
    ahead: list[Gathered] = []
    ahead_bytes = 0
    try:
        for g in gather_envelope(source, limits):
            ahead.append(g)
            ahead_bytes += g.pending_bytes
            if len(ahead) >= READ_AHEAD or ahead_bytes >= READ_AHEAD_BYTES:
                yield from finish_dossiers(ahead, limits)
                ahead, ahead_bytes = [], 0
    except Exception:
        # The file stops being acceptable here: the dossiers complete before this point first.
        yield from finish_dossiers(ahead, limits)
        raise
    yield from finish_dossiers(ahead, limits)


def gather_envelope(source: Path | bytes, limits: Limits) -> Iterator[Gathered]:
    """read_envelope's first half: each dossier of the file with its tables decoded (base64)
    but not yet read (finish_dossiers reads those of many dossiers, of one file or several,
    together); raise where the file stops being acceptable, as read_envelope."""
    size = len(source) if isinstance(source, bytes) else source.stat().st_size
    if size > limits.max_file_bytes:
        raise HostileInput(f"file is {size:,} bytes, over the limit of {limits.max_file_bytes:,}")
    with _open(source, limits) as fh:
        check_prolog(fh.read(65_536), "the file")
    compiled = _compiled()
    skip = 0  # dossiers the compiled scan read (lxml reads the file for the others)
    if compiled and xml_envelope.SCAN:
        with _open(source, limits) as fh:
            stop = yield from xml_envelope.gather(fh.read, limits)
        if stop is None:
            return
        skip, offset, opened, ended = stop
        log.debug("envelope outside the compiled scan after %d dossiers: lxml reads on", skip)
        if offset is not None and (opened or ended):  # in or after the root: lxml reads on
            try:
                with _open(source, limits) as fh:
                    rest = xml_envelope.Resumed(fh, offset, opened, ended)
                    for g in _lxml_gather(rest, limits, compiled, skip, 0):
                        skip = g.number
                        yield g
                return
            except Exception:  # (where and why the file breaks: lxml says, from its start)
                pass
        log.debug("envelope read by lxml from its start, the first %d dossiers skipped", skip)
    if isinstance(source, Path) and not is_gzip(source):
        yield from _lxml_gather(str(source), limits, compiled, 0, skip)  # (libxml2 reads it)
        return
    with _open(source, limits) as stream:
        yield from _lxml_gather(stream, limits, compiled, 0, skip)


def _lxml_gather(
    stream: object, limits: Limits, compiled: bool, number: int, skip: int
) -> Iterator[Gathered]:
    """The dossiers lxml's iterparse finds in STREAM, numbered on from NUMBER, those up to SKIP
    (counted from the file's start) left out."""
    depth = 0
    context = etree.iterparse(
        stream,
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        for event, elem in context:
            if event == "start":
                depth += 1
                if depth > limits.max_depth:
                    raise HostileInput(f"elements nested deeper than {limits.max_depth}")
                if depth == 1 and _local(elem.tag) != "GIAMDINHHS":
                    raise HostileInput(f"root element is {_local(elem.tag)}, expected GIAMDINHHS")
                continue
            depth -= 1
            if _local(elem.tag) != "HOSO":
                continue
            number += 1
            g = _gather(elem, number, limits, compiled) if number > skip else None
            # Free what has been read: the dossier and the siblings before it.
            elem.clear()
            parent = elem.getparent()
            if parent is not None:
                while elem.getprevious() is not None:
                    del parent[0]
            if g is not None:
                yield g
    finally:
        del context


def _open(source: Path | bytes, limits: Limits) -> io.BufferedIOBase | _Inflated:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    if is_gzip(source):
        return _Inflated(source, limits.max_file_bytes)
    return source.open("rb")


def is_gzip(path: Path) -> bool:
    """An envelope sent gzip-compressed (NAME.xml.gz)."""
    return path.name.lower().endswith(".xml.gz")


class _Inflated:
    """A gzip-compressed envelope read inflated, at most LIMIT bytes of it (the limit a plain
    file has: max_file_bytes), so a small file that inflates without end (a zip bomb) is refused
    when it passes the limit rather than read to its end. A corrupt or truncated stream is refused
    with what went wrong; the dossiers before it were read, as in a truncated plain file. (lxml
    is handed this reader, not the path: libxml2 inflates a gzip path itself, unbounded.)"""

    def __init__(self, path: Path, limit: int) -> None:
        self._fh = gzip.open(path, "rb")  # noqa: SIM115 (open for the parse; close() ends it)
        self._limit = limit
        self._read = 0

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._fh.read(n if n is not None and n >= 0 else self._limit + 1)
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise HostileInput(f"the gzip stream is corrupt or truncated ({e})") from None
        self._read += len(data)
        if self._read > self._limit:
            raise HostileInput(
                f"file inflates to more than the limit of {self._limit:,} bytes (gzip)"
            )
        return data

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> _Inflated:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def inflated_size(path: Path) -> int:
    """About how many bytes an envelope holds once read (a gzip file's trailer gives its size
    modulo 4 GiB; at least the compressed size): the size work is planned by, not a limit."""
    size = path.stat().st_size
    if not is_gzip(path) or size < 18:
        return size
    with path.open("rb") as fh:
        fh.seek(-4, io.SEEK_END)
        return max(size, int.from_bytes(fh.read(4), "little"))


def _gather(elem: etree._Element, number: int, limits: Limits, compiled: bool) -> Gathered:
    """A dossier's tables, decoded (base64) but not yet read."""
    g = Gathered(number, [])
    for fh in elem:
        if _local(fh.tag) != "FILEHOSO":
            continue
        loai_el = content = None
        for c in fh:
            name = _local(c.tag)
            if name == "LOAIHOSO":
                loai_el = c
            elif name == "NOIDUNGFILE":
                content = c
        loai = (loai_el.text or "").strip().upper() if loai_el is not None else ""
        if loai not in XML_LAYOUT:
            g.slots.append(("skip", loai or "(none)"))
            continue
        if content is None:
            g.slots.append(("error", (loai, "NOIDUNGFILE", "", "missing NOIDUNGFILE")))
            continue
        try:
            payload = _decode_table(content, limits, compiled)
            if isinstance(payload, bytes):  # (the withheld text: only if it cannot be read)
                g.slots.append(("bytes", loai, payload, content))
                g.pending_bytes += len(payload)
            else:
                g.slots.append(("records", loai, _parse_table(loai, payload, limits)))
        except (ValueError, etree.XMLSyntaxError) as e:
            g.slots.append(("error", (loai, "NOIDUNGFILE", _withheld(content), f"{loai}: {e}")))
    return g


def finish_dossiers(gathered: list[Gathered], limits: Limits) -> Iterator[Dossier]:
    """Read the waiting tables of these dossiers together, type by type (the fast path, or the
    lxml parser for a table outside it), and yield the dossiers."""
    waiting: dict[str, list[tuple[Gathered, int]]] = {}
    for g in gathered:
        for i, slot in enumerate(g.slots):
            if slot[0] == "bytes":
                waiting.setdefault(slot[1], []).append((g, i))
    for loai, where in waiting.items():
        payloads = [g.slots[i][2] for g, i in where]
        for (g, i), recs, payload in zip(where, read_tables(loai, payloads), payloads, strict=True):
            if recs is None:  # outside the fast path: the hardened parser reads it
                try:
                    recs = _parse_table(loai, payload, limits)
                except (ValueError, etree.XMLSyntaxError) as e:
                    withheld = _withheld(g.slots[i][3])
                    g.slots[i] = ("error", (loai, "NOIDUNGFILE", withheld, f"{loai}: {e}"))
                    continue
            g.slots[i] = ("records", loai, recs)
    for g in gathered:
        yield _dossier(g)


def _dossier(g: Gathered) -> Dossier:
    records: dict[str, list] = {}
    errors: list[tuple[str, str, str, str]] = []
    skipped: list[str] = []
    for slot in g.slots:
        if slot[0] == "skip":
            skipped.append(slot[1])
        elif slot[0] == "error":
            errors.append(slot[1])
        else:
            records.setdefault(slot[1], []).extend(slot[2])
    if "XML1" not in records and not errors:
        errors.append(("XML1", "LOAIHOSO", "", "dossier has no XML1 claim summary"))
    if len(records.get("XML1", [])) > 1:
        errors.append(("XML1", "TONG_HOP", "", "dossier has more than one XML1 claim summary"))
    return Dossier(g.number, records, errors, skipped)


def _withheld(content: etree._Element | int) -> str:
    """A NOIDUNGFILE's size as a rejection shows it (the compiled scan keeps the size only)."""
    return withheld(content if isinstance(content, int) else len((content.text or "").strip()))


def file_error_message(e: Exception) -> str:
    if isinstance(e, etree.XMLSyntaxError):
        return (
            f"malformed or truncated XML: {e.msg}; "
            "dossiers complete before this point were read, the rest of the file was not"
        )
    return f"file refused: {e}"


def columnar(rows: list, group_suffix: Sequence[str] | None = None) -> pd.DataFrame:
    """Raw records -> one string frame. Records of the same shape (same field names in the same
    order, the usual case) are transposed together, which keeps per-field Python work out; those
    the fast path read (their texts a Texts on one Arrow array) are taken from that array with
    one Arrow take per field, their texts never made Python strings. GROUP_SUFFIX: a text per
    row appended to its GROUP (gather_units: the unit of each row)."""
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype="str") for c in INTERNAL})
    # One pass over the rows, keyed by the identity of their names and arrays (records of one
    # scan share both): no tuple of names hashed per row.
    by_id: dict[tuple[int, bool], tuple[tuple, bool, list[int], list[int]]] = {}
    block_of: dict[int, int] = {}
    arrays: list[pa.Array] = []
    last_tags = last_values = part = None
    b = 0
    for i, r in enumerate(rows):
        texts = r[1]
        fast = type(texts) is Texts
        if fast and r[0] is last_tags and texts.values is last_values:  # (as the row before)
            part[2].append(i)  # type: ignore[index]
            part[3].append(b)  # type: ignore[index]
            part[3].append(texts.start)  # type: ignore[index]
            continue
        key = (id(r[0]), fast)
        part = by_id.get(key)
        if part is None:
            part = by_id[key] = (r[0], fast, [], [])
        part[2].append(i)
        last_tags = last_values = None
        if fast:
            b = block_of.get(id(texts.values))
            if b is None:
                b = block_of[id(texts.values)] = len(arrays)
                arrays.append(texts.values)
            part[3].append(b)
            part[3].append(texts.start)
            last_tags, last_values = r[0], texts.values
    # Equal names of distinct tuples: one part, in the order of their first row.
    shapes: dict[tuple, tuple[list[int], list[int]]] = {}
    for tags, fast, idx, where in by_id.values():
        got = shapes.setdefault((tags, fast), ([], []))
        got[0].extend(idx)
        got[1].extend(where)
    # The arrays of the scans these records come from (many small files: one each) as one:
    # a record's texts are then a window on it, at its scan's offset.
    values = None
    if arrays:
        if len(arrays) > 1 and sum(a.nbytes for a in arrays) >= 2**31 - 1:  # past int32 offsets
            arrays = [a.cast(pa.large_string()) for a in arrays]
        values = arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)
        offset = np.cumsum([0, *(len(a) for a in arrays)])
    suffix = pa.array(group_suffix, pa.string()) if group_suffix is not None else None
    parts = []
    for (tags, fast), (idx, where) in shapes.items():
        cols: dict[str, pa.Array] = {}
        if tags and fast:
            pairs = np.asarray(where, np.int64).reshape(-1, 2)
            at = offset[pairs[:, 0]] + pairs[:, 1]
            for j, tag in enumerate(tags):
                cols[tag] = values.take(pa.array(at + j))  # type: ignore[union-attr]
        elif tags:
            for tag, texts in zip(tags, zip(*(rows[i][1] for i in idx), strict=True), strict=True):
                cols[tag] = pa.array(texts, pa.string())
        group = pa.array([rows[i][2] for i in idx], pa.string())
        if suffix is not None:
            group = pc.binary_join_element_wise(group, suffix.take(pa.array(idx)), "")
        cols[GROUP] = group
        cols[SOURCE] = pa.array([rows[i][3] for i in idx], pa.string())
        cols[RECORD] = pa.array([rows[i][4] for i in idx], pa.string())
        cols["_pos"] = pa.array(idx, pa.int64())
        parts.append(pa.table(cols))
    table = pa.concat_tables(parts, promote_options="default") if len(parts) > 1 else parts[0]
    df = table.to_pandas()
    if not (np.diff(df["_pos"].to_numpy()) > 0).all():  # (parts, or merged ones: row order)
        df = df.sort_values("_pos", kind="stable").reset_index(drop=True)
    return df.drop(columns="_pos")


def envelope_files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    return sorted(
        p for p in src.rglob("*") if p.is_file() and (p.suffix.lower() == ".xml" or is_gzip(p))
    )
