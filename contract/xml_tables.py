"""The decoded XML 130 tables of many dossiers read at once, with array operations (numpy,
pyarrow) instead of a parse tree walked field by field in Python.

The fast path takes a strict subset of XML: an optional ``<?xml version="1.0"
encoding="utf-8"?>`` declaration, then elements with plain ASCII names and no attributes laid out
exactly as XML_LAYOUT says (root / list / record / leaf fields), field texts without entity or
character references, CDATA, comments, processing instructions, carriage returns or control
characters, and only XML whitespace between elements. Everything the subset admits is well-formed
XML whose lxml reading (contract.xml_reader._parse_table) gives the same records; a table outside
the subset (anything odd, malformed or hostile) is handed back as unread, and the caller reads it
with the hardened lxml parser, which produces the records or the exact error as before. So the
subset decides only which path reads a table, never what a table means.

Once a process has loaded the compiled kernels (contract.xml_kernels; ingest does for large
inputs) the same subset is read by one compiled pass over the bytes instead of the array scan;
tests/contract/test_xml_compiled.py holds the two (and the parser) to the same records.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contract.schema import XML_LAYOUT

# One raw record: its field names in document order and their texts (as in xml_reader; here the
# texts are a Texts, which reads as the tuple of them).
Rec = tuple[tuple[str, ...], Sequence[str | None]]


class Texts(Sequence):
    """The texts of one record read here: a window [start, stop) on the Arrow array of the field
    texts of a scan (null: no text), read as the tuple of them (equal to it, iterated, indexed).
    xml_reader.columnar takes whole columns of such records from the array with Arrow kernels,
    so the texts of the fast path never become Python strings on the way to validation."""

    __slots__ = ("start", "stop", "values")

    def __init__(self, values: pa.StringArray, start: int, stop: int):
        self.values, self.start, self.stop = values, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[str | None]:
        return iter(self.values.slice(self.start, self.stop - self.start).to_pylist())

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return tuple(self)[i]
        n = self.stop - self.start
        if not -n <= i < n:
            raise IndexError(i)
        return self.values[self.start + i % n].as_py()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (tuple, Texts)):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(tuple(self))


_DECL = re.compile(
    rb"<\?xml[ \t\n]+version=([\"'])1\.0\1"
    rb"(?:[ \t\n]+encoding=([\"'])(?i:utf-8)\2)?"
    rb"(?:[ \t\n]+standalone=([\"'])(?:yes|no)\3)?[ \t\n]*\?>[ \t\n]*"
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_WS = b" \t\n"
# Bytes that send a table to the full parser wherever they appear: references (&), CDATA,
# comments and DTDs (<!), PIs (<?) after the prolog, U+FFFE and U+FFFF (not XML characters).
_OUTSIDE = (b"&", b"<!", b"<?", b"\xef\xbf\xbe", b"\xef\xbf\xbf")
_LT, _GT, _BANG, _QUESTION = ord("<"), ord(">"), ord("!"), ord("?")
OPEN, CLOSE, EMPTY = 0, 1, 2
_MAX_TAG, _MAX_TEXT = 1_000, 1_000_000  # far inside libxml2's limits (50,000 and 10 MB)
# Memory: the arrays of a scan take about 20 bytes a tag (5 a byte of the densest table; the
# compiled kernel's 24 bytes a '<' plus ~2.5 MB of name and shape tables), so the tables are
# scanned in parts of at most 16 MB, and a table over 4 MB goes to the parser.
_MAX_SCAN, _MAX_TABLE = 16 * 1024**2, 4 * 1024**2


def _body(payload: bytes) -> bytes | None:
    """The table after its XML declaration, if the fast path can take it at first sight."""
    m = _DECL.match(payload)
    body = payload[m.end() :] if m else payload
    body = body.rstrip(_WS)
    if body[:1] != b"<" or body[-1:] != b">" or body[1:2] in (b"/", b"!", b"?", b""):
        return None
    return body


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _outside(body: bytes) -> bool:
    return any(s in body for s in _OUTSIDE)


def read_tables(loai: str, payloads: list[bytes]) -> list[list[Rec] | None]:
    """The records of each decoded table of type LOAI, or None for a table the fast path does
    not take (the caller reads it with the full parser)."""
    out: list[list[Rec] | None] = [None] * len(payloads)
    todo: list[tuple[int, bytes]] = []
    for i, p in enumerate(payloads):
        b = _body(p) if len(p) <= _MAX_TABLE else None
        if b is not None:
            todo.append((i, b))
    while todo:
        size, part = 0, 0  # scanned in parts of at most _MAX_SCAN bytes (int32 offsets)
        while part < len(todo) and (part == 0 or size + len(todo[part][1]) <= _MAX_SCAN):
            size += len(todo[part][1])
            part += 1
        scan, todo = todo[:part], todo[part:]
        if _compiled():  # one compiled pass (contract.xml_kernels)
            _scan_compiled(loai, [b for _, b in scan], out, [i for i, _ in scan])
            continue
        while scan:
            bad = _scan(loai, [b for _, b in scan], out, [i for i, _ in scan])
            if not bad:
                break
            scan = [t for k, t in enumerate(scan) if k not in bad]
    return out


# The compiled kernel (contract.xml_kernels) reads the tables once this process has loaded it
# (xml_reader.load_compiled: ingest does for large inputs; loading numba costs ~1.7 CPU-s once);
# otherwise the array scan below. Both read exactly the same subset into the same records.
COMPILED: bool | None = None  # None: as loaded; True/False: always / never (tests)
LOADED = False  # set by xml_reader.load_compiled once the kernels work in this process


def _compiled() -> bool:
    if COMPILED is not None:
        return COMPILED
    return LOADED


def _scan_compiled(loai: str, bodies: list[bytes], out: list, index: list[int]) -> None:
    """Read BODIES into OUT[INDEX[k]] with the compiled kernel; a body outside the subset is
    left None (the caller's parser reads it)."""
    from contract import xml_kernels as xk

    lengths = np.fromiter((len(b) for b in bodies), np.int64, len(bodies))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    joined = b"".join(bodies)
    if len(joined) >= 2**31 - 1:  # beyond int32 offsets (one huge table): the parser reads it
        return
    buf = np.frombuffer(joined, np.uint8)
    ok, f_a, f_b, _, r_start, r_table, r_shape, n_pos, n_len, s_off, s_seq = xk.scan_tables(
        buf, starts, ends, _layout(loai), 1 if XML_LAYOUT[loai][2] is None else 3
    )
    offsets, data, valid = xk.gather_texts(buf, f_a, f_b)
    nulls = int(len(valid) - np.count_nonzero(valid))
    values = pa.StringArray.from_buffers(
        len(valid),
        pa.py_buffer(offsets),
        pa.py_buffer(data),
        pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None,
        nulls,
    )
    names = [
        joined[p : p + n].decode("ascii")
        for p, n in zip(n_pos.tolist(), n_len.tolist(), strict=True)
    ]
    off = s_off.tolist()
    shapes = [tuple(names[j] for j in s_seq[a:b].tolist()) for a, b in itertools.pairwise(off)]
    bounds = r_start.tolist()
    recs = [
        (shapes[sh], Texts(values, a, b))
        for sh, a, b in zip(r_shape.tolist(), bounds[:-1], bounds[1:], strict=True)
    ]
    counts = np.bincount(r_table, minlength=len(bodies)).tolist()
    r = 0
    for k, (good, count) in enumerate(zip(ok.tolist(), counts, strict=True)):
        if good:
            out[index[k]] = recs[r : r + count]
        r += count


def _layout(loai: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    names = [n.encode() if n else b"" for n in XML_LAYOUT[loai]]
    return tuple(np.frombuffer(n, np.uint8).copy() for n in names)  # type: ignore[return-value]


def _tables_of(positions: np.ndarray, starts: np.ndarray) -> set[int]:
    return set(np.unique(np.searchsorted(starts, positions, side="right") - 1).tolist())


@dataclass
class _Tokens:
    """The tags of the scanned tables in document order, and the texts between them."""

    lt: np.ndarray  # position of each tag's '<' in the joined bytes
    gt: np.ndarray  # and of its '>'
    segs: pa.StringArray  # segment 2i: tag i; 2i+1: the text between tag i and tag i+1
    kind: np.ndarray  # OPEN, CLOSE or EMPTY
    name: np.ndarray  # index into names
    names: list[str]
    tid: np.ndarray  # the table of each tag


def _scan(loai: str, bodies: list[bytes], out: list, index: list[int]) -> set[int]:
    """Read BODIES into OUT[INDEX[k]]; or return the positions k of the bodies outside the
    subset (nothing is written then: the caller scans again without them)."""
    lengths = np.fromiter((len(b) for b in bodies), np.int64, len(bodies))
    starts = np.zeros(len(bodies), np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    buf = b"".join(bodies)
    if len(buf) >= 2**31 - 1:  # beyond int32 offsets (one huge table): the parser reads it
        return set(range(len(bodies)))
    t = _tokenize(bodies, buf, starts)
    if isinstance(t, set):
        return t
    level, bad = _check_layout(t, loai, starts)
    if bad:
        return bad
    fd = 1 if XML_LAYOUT[loai][2] is None else 3  # the level of the fields; records one up
    recs = _records(t, level, fd)
    if isinstance(recs, set):
        return recs
    r = 0
    for k, count in enumerate(np.bincount(recs[1], minlength=len(bodies)).tolist()):
        out[index[k]] = recs[0][r : r + count]
        r += count
    return set()


def _tokenize(bodies: list[bytes], buf: bytes, starts: np.ndarray) -> _Tokens | set[int]:
    """Tags and texts of the joined tables, or the tables outside the subset at the byte level."""
    arr = np.frombuffer(buf, np.uint8)
    ef = np.flatnonzero(arr[:-2] == 0xEF)  # U+FFFE, U+FFFF: EF BF BE, EF BF BF
    if buf.find(b"&") >= 0 or (len(ef) and (arr[ef + 1] == 0xBF).any()):
        bad = {k for k, b in enumerate(bodies) if _outside(b)}
        if bad:
            return bad
    ctrl = np.flatnonzero(arr < 0x20)
    if len(ctrl):
        ctrl = ctrl[(arr[ctrl] != 0x09) & (arr[ctrl] != 0x0A)]
        if len(ctrl):
            return _tables_of(ctrl, starts)
    lt = np.flatnonzero(arr == _LT)
    gt = np.flatnonzero(arr == _GT)
    # Tags and texts alternate: every '<' is closed by the next '>' before another '<' opens
    # (no '>' in a text, no '<' in a tag).
    n_lt = np.diff(np.searchsorted(lt, np.append(starts, len(buf))))
    n_gt = np.diff(np.searchsorted(gt, np.append(starts, len(buf))))
    if not np.array_equal(n_lt, n_gt):
        return set(np.flatnonzero(n_lt != n_gt).tolist())
    odd = np.flatnonzero((arr[lt + 1] == _BANG) | (arr[lt + 1] == _QUESTION))  # <! <?
    if len(odd):
        return _tables_of(lt[odd], starts)
    wrong = np.flatnonzero(lt > gt)
    if len(wrong) == 0:
        wrong = np.flatnonzero(gt[:-1] > lt[1:])
    if len(wrong):
        return _tables_of(lt[wrong], starts)
    n = len(lt)
    offsets = np.empty(2 * n + 1, np.int32)
    offsets[0:-1:2] = lt
    offsets[1::2] = gt + 1
    offsets[-1] = len(buf)
    segs = pa.StringArray.from_buffers(2 * n, pa.py_buffer(offsets), pa.py_buffer(buf))
    try:
        segs.validate(full=True)  # UTF-8
    except pa.ArrowInvalid:
        return {k for k, b in enumerate(bodies) if not _utf8(b)}
    # The distinct tags (a few hundred) are looked at in Python, each once.
    coded = pc.dictionary_encode(pc.take(segs, pa.array(np.arange(0, 2 * n, 2))))
    uniq = coded.dictionary.to_pylist()
    kinds = np.empty(len(uniq), np.int8)
    names: list[str] = []
    name_ids = np.empty(len(uniq), np.int32)
    ids: dict[str, int] = {}
    bad_tags = []
    for u, tag in enumerate(uniq):
        if tag.startswith("</"):
            kinds[u], name = CLOSE, tag[2:-1]
        elif tag.endswith("/>"):
            kinds[u], name = EMPTY, tag[1:-2]
        else:
            kinds[u], name = OPEN, tag[1:-1]
        if not _NAME.fullmatch(name):
            bad_tags.append(u)
        name_ids[u] = ids.setdefault(name, len(ids))
        if len(names) < len(ids):
            names.append(name)
    codes = coded.indices.to_numpy()
    if bad_tags:
        return _tables_of(lt[np.isin(codes, bad_tags)], starts)
    tid = np.searchsorted(starts, lt, side="right") - 1
    return _Tokens(lt, gt, segs, kinds[codes], name_ids[codes], names, tid)


def _check_layout(t: _Tokens, loai: str, starts: np.ndarray) -> tuple[np.ndarray, set[int]]:
    """The level of each tag (the root's is 0), and the tables not laid out as LOAI's layout."""
    kind, name, tid, n = t.kind, t.name, t.tid, len(t.lt)
    first = np.searchsorted(t.lt, starts)
    last = np.append(first[1:], n) - 1
    delta = np.where(kind == OPEN, 1, np.where(kind == CLOSE, -1, 0)).astype(np.int64)
    before = np.cumsum(delta) - delta
    level = before - before[first][tid] - (kind == CLOSE)
    root, lst, rec = XML_LAYOUT[loai]
    struct = [root] if rec is None else [root, lst, rec]
    fd = len(struct)  # the level of the fields
    ids = {s: i for i, s in enumerate(t.names)}
    ok = (level >= 0) & (level <= fd)
    for k, s in enumerate(struct):  # structure: open and close, with the layout's names
        at = level == k  # (an empty list of lines, <DSACH_CHI_TIET_THUOC/>, is no record)
        ok &= ~at | (((kind != EMPTY) | (k == 1)) & (name == ids.get(s, -1)))
    at_field = level == fd
    # A field's open tag is followed by its own close tag: nothing nests inside a field.
    opened = np.flatnonzero(at_field & (kind == OPEN))
    closed = np.flatnonzero(at_field & (kind == CLOSE))
    ok[opened[opened + 1 >= n]] = False
    o = opened[opened + 1 < n]
    ok[o[~(at_field[o + 1] & (kind[o + 1] == CLOSE) & (name[o + 1] == name[o]))]] = False
    ok[closed[closed < 1]] = False
    c = closed[closed >= 1]
    ok[c[~(at_field[c - 1] & (kind[c - 1] == OPEN))]] = False
    # Each table: its root opens first and closes last, and nothing else is at level 0.
    ok[first[(kind[first] != OPEN) | (level[first] != 0)]] = False
    ok[last[(kind[last] != CLOSE) | (level[last] != 0)]] = False
    # Within the parser's own limits on names and texts (long ones go to the parser).
    seg_len = np.append(t.lt[1:] - t.gt[:-1] - 1, 0)  # (the joined bytes end with a '>')
    ok &= (t.gt - t.lt <= _MAX_TAG) & (seg_len <= _MAX_TEXT)
    roots = np.bincount(tid[level == 0], minlength=len(starts))
    bad = set(np.flatnonzero(roots != 2).tolist())
    if not ok.all():
        bad |= set(tid[~ok].tolist())
    if bad:
        return level, bad
    # Texts between tags that are not a field's: XML whitespace only.
    gaps = np.flatnonzero((seg_len > 0) & ~(at_field & (kind == OPEN)))
    if len(gaps):
        trimmed = pc.utf8_trim(pc.take(t.segs, pa.array(2 * gaps + 1)), characters=" \t\n")
        full = np.flatnonzero(pc.binary_length(trimmed).to_numpy(zero_copy_only=False) > 0)
        if len(full):
            return level, set(tid[gaps[full]].tolist())
    return level, set()


def _records(t: _Tokens, level: np.ndarray, fd: int) -> tuple[list[Rec], np.ndarray] | set[int]:
    """The records (and the table of each), or the tables with a field twice in one record."""
    fields = np.flatnonzero((level == fd) & (t.kind != CLOSE))
    starts_rec = (level == fd - 1) & (t.kind == OPEN)
    rec_id = np.cumsum(starts_rec) - 1
    f_rec = rec_id[fields]
    f_name = t.name[fields]
    texts = pc.take(t.segs, pa.array(2 * fields + 1))
    # a self-closing field (<F/>) has no text, as lxml reads it: the segment after it is the
    # whitespace before the next tag, not its value
    empty = pa.array(t.kind[fields] == EMPTY)
    none = pc.or_(pc.equal(pc.binary_length(texts), 0), empty)
    values = pc.if_else(none, None, texts)  # kept in Arrow: records are windows on it (Texts)
    # Records of the same field names share one tuple of names (found from their bytes).
    bounds = np.searchsorted(f_rec, np.arange(rec_id[-1] + 2)).tolist()
    sigs = f_name.astype(np.int32).tobytes()
    shapes: dict[bytes, tuple[str, ...]] = {}
    recs: list[Rec] = []
    names = t.names
    for a, b in itertools.pairwise(bounds):
        sig = sigs[4 * a : 4 * b]
        shape = shapes.get(sig)
        if shape is None:
            shape = shapes[sig] = tuple(names[j] for j in f_name[a:b].tolist())
        recs.append((shape, Texts(values, a, b)))
    rec_tid = t.tid[starts_rec]
    if any(len(set(shape)) < len(shape) for shape in shapes.values()):
        # A field twice in one record: the parser says which.
        return {int(rec_tid[r]) for r, (sh, _) in enumerate(recs) if len(set(sh)) < len(sh)}
    return recs, rec_tid
