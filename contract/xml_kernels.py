"""Compiled (numba) kernels of the XML reading: the decoded tables of many dossiers tokenized,
checked and cut into records in one pass over their bytes, and strict base64.

Imported only where large inputs are read (contract.xml_reader.load_compiled: ingest of 256 MB
or more, before it forks its workers): importing numba and loading the compiled code costs about
1.7 CPU seconds once per process, and the machine code is cached beside this file (numba's
``cache=True``) so it is compiled (~10 CPU-s) only on a first run.

The subset of XML taken is the one contract.xml_tables documents (the array scan): plain ASCII
names without attributes laid out as XML_LAYOUT says, texts without references, CDATA, comments,
PIs, carriage returns or control characters, valid UTF-8 without U+FFFE/U+FFFF, XML whitespace
between elements, no field twice in a record. A table outside it is marked not ok and left to the
hardened parser; its partial output is rolled back.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_LT, _GT, _SLASH = 60, 62, 47
MAX_TAG, MAX_TEXT = 1_000, 1_000_000  # (as xml_tables: far inside libxml2's limits)
_NAME_SLOTS = 1 << 16  # distinct names of a scan (more: the tables past that go to the parser)
_SHAPE_SLOTS = 1 << 14  # distinct record shapes of a scan


_TEXT_CLASS = np.zeros(256, np.uint8)  # 1: an ASCII byte a text may hold, 2: '<' (it ends), 3:
_TEXT_CLASS[32:128] = 1  # the first byte of a character of 2-4 bytes, 0: outside the subset
_TEXT_CLASS[[9, 10]] = 1
_TEXT_CLASS[[38, 62]] = 0  # & >
_TEXT_CLASS[60] = 2
_TEXT_CLASS[128:] = 3


@njit(cache=True, nogil=True)
def _wide(buf, i, e):
    """The length of the UTF-8 character of 2-4 bytes at buf[i], 0 if it is not one or not an
    XML character (surrogates, overlong forms, U+FFFE, U+FFFF, beyond U+10FFFF)."""
    c = buf[i]
    if c < 0xC2:
        return 0
    if c < 0xE0:
        return 2 if i + 1 < e and (buf[i + 1] & 0xC0) == 0x80 else 0
    if c < 0xF0:
        if i + 2 >= e:
            return 0
        c1, c2 = buf[i + 1], buf[i + 2]
        lo = 0xA0 if c == 0xE0 else 0x80
        hi = 0x9F if c == 0xED else 0xBF
        if c1 < lo or c1 > hi or (c2 & 0xC0) != 0x80:
            return 0
        if c == 0xEF and c1 == 0xBF and (c2 == 0xBE or c2 == 0xBF):
            return 0
        return 3
    if c < 0xF5:
        if i + 3 >= e:
            return 0
        c1 = buf[i + 1]
        lo = 0x90 if c == 0xF0 else 0x80
        hi = 0x8F if c == 0xF4 else 0xBF
        if c1 < lo or c1 > hi or (buf[i + 2] & 0xC0) != 0x80 or (buf[i + 3] & 0xC0) != 0x80:
            return 0
        return 4
    return 0


@njit(cache=True, nogil=True)
def _text_end(buf, i, e):
    """The end of the text starting at buf[i] (the next '<', or E); -1 if it holds a byte the
    subset does not take: '>', '&', a control but tab and line feed, invalid UTF-8, U+FFFE/F."""
    while i < e:
        k = _TEXT_CLASS[buf[i]]
        if k == 1:  # (the usual byte, in a tight loop)
            i += 1
            while i < e and _TEXT_CLASS[buf[i]] == 1:
                i += 1
        elif k == 2:
            return i
        elif k == 3:
            w = _wide(buf, i, e)
            if w == 0:
                return -1
            i += w
        else:
            return -1
    return i


_NAME_CHAR = np.zeros(256, np.uint8)  # 1: may start a name, 2: may follow
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_":
    _NAME_CHAR[_c] = 3
for _c in b"0123456789.-":
    _NAME_CHAR[_c] = 2


@njit(cache=True, nogil=True)
def _name_ok(buf, a, b):
    """[A-Za-z_][A-Za-z0-9_.-]*"""
    if b <= a or not _NAME_CHAR[buf[a]] & 1:
        return False
    for i in range(a + 1, b):  # noqa: SIM110  (a loop numba compiles)
        if not _NAME_CHAR[buf[i]]:
            return False
    return True


@njit(cache=True, nogil=True)
def _same(buf, a, b, c, d):
    if b - a != d - c:
        return False
    for k in range(b - a):  # noqa: SIM110
        if buf[a + k] != buf[c + k]:
            return False
    return True


@njit(cache=True, nogil=True)
def _is(buf, a, b, want):
    if b - a != len(want):
        return False
    for k in range(b - a):  # noqa: SIM110
        if buf[a + k] != want[k]:
            return False
    return True


@njit(cache=True, nogil=True)
def _intern(buf, a, b, slots, pos, length, count):
    """The id of name buf[a:b] (a new one if unseen; -1 when the table of names is full)."""
    h = np.uint32(2166136261)
    for i in range(a, b):
        h = (h ^ np.uint32(buf[i])) * np.uint32(16777619)
    mask = len(slots) - 1
    k = int(h) & mask
    while True:
        j = slots[k]
        if j < 0:
            n = count[0]
            if n >= len(pos):
                return -1
            slots[k] = n
            pos[n], length[n] = a, b - a
            count[0] = n + 1
            return n
        if _same(buf, a, b, pos[j], pos[j] + length[j]):
            return j
        k = (k + 1) & mask


@njit(cache=True, nogil=True)
def _shape(f_name, a, b, slots, off, seq, count):
    """The id of the record shape f_name[a:b] (its field names in order); -1: table full."""
    h = np.uint32(2166136261)
    for i in range(a, b):
        h = (h ^ np.uint32(f_name[i] + 1)) * np.uint32(16777619)
    h = (h ^ np.uint32(b - a)) * np.uint32(16777619)
    mask = len(slots) - 1
    k = int(h) & mask
    while True:
        j = slots[k]
        if j < 0:
            n = count[0]
            if n + 1 >= len(off) or off[n] + (b - a) > len(seq):
                return -1
            slots[k] = n
            seq[off[n] : off[n] + (b - a)] = f_name[a:b]
            off[n + 1] = off[n] + (b - a)
            count[0] = n + 1
            return n
        if off[j + 1] - off[j] == b - a:
            same = True
            for i in range(b - a):
                if seq[off[j] + i] != f_name[a + i]:
                    same = False
                    break
            if same:
                return j
        k = (k + 1) & mask


@njit(cache=True, nogil=True)
def _tag(buf, i, e):
    """The tag opening at buf[i] ('<'): (end: the position of its '>', kind 0 open / 1 close /
    2 empty, name start, name end); end -1 if it is not a plain tag of the subset (<NAME>,
    </NAME> or <NAME/>, NAME as _name_ok takes, at most MAX_TAG bytes)."""
    j, kind = i + 1, 0
    if j < e and buf[j] == _SLASH:
        j, kind = j + 1, 1
    a = j
    if j >= e or not _NAME_CHAR[buf[j]] & 1:
        return -1, 0, 0, 0
    j += 1
    while j < e and _NAME_CHAR[buf[j]]:
        j += 1
    b = j
    if kind == 0 and j < e and buf[j] == _SLASH:
        j, kind = j + 1, 2
    if j >= e or buf[j] != _GT or j - i > MAX_TAG:
        return -1, 0, 0, 0
    return j, kind, a, b


@njit(cache=True, nogil=True)
def _blank(buf, a, b):
    for i in range(a, b):
        c = buf[i]
        if c != 32 and c != 9 and c != 10:
            return False
    return True


@njit(cache=True, nogil=True)
def _table(buf, s, e, t, layout, fd, st):
    """Read one table buf[s:e] into the scan state ST; False if it is outside the subset."""
    (f_a, f_b, f_name, r_start, r_table, r_shape, counts, names, shapes, seen, guess) = st
    n_slots, n_pos, n_len, n_count = names
    s_slots, s_off, s_seq, s_count = shapes
    depth, top, i = 0, 0, s
    field, field_a, field_b, text_a = -1, 0, 0, 0
    rec = -1
    while i < e:
        if buf[i] != _LT:
            return False
        j, kind, a, b = _tag(buf, i, e)
        if j < 0:
            return False
        nxt = _text_end(buf, j + 1, e)  # (tags hold name characters only: checked there)
        if nxt < 0 or nxt - j - 1 > MAX_TEXT:
            return False
        level = depth if kind != 1 else depth - 1
        if kind == 0:
            depth += 1
        elif kind == 1:
            depth -= 1
        if level < 0 or level > fd:
            return False
        if field >= 0:  # a field opened: this must be its close
            if kind != 1 or level != fd or not _same(buf, a, b, field_a, field_b):
                return False
            nf = counts[0]
            f_name[nf] = field
            f_a[nf], f_b[nf] = (text_a, i) if i > text_a else (-1, -1)
            counts[0] = nf + 1
            field = -1
        elif level == fd:
            if kind == 1:
                return False
            p = counts[0] - r_start[rec]  # (the name at this place in the record before)
            k = guess[p] if p < len(guess) else -1
            if k < 0 or not _same(buf, a, b, n_pos[k], n_pos[k] + n_len[k]):
                k = _intern(buf, a, b, n_slots, n_pos, n_len, n_count)
                if p < len(guess):
                    guess[p] = k
            if k < 0 or seen[k] == counts[2]:  # (a name twice in one record)
                return False
            seen[k] = counts[2]
            if kind == 0:
                field, field_a, field_b, text_a = k, a, b, j + 1
            else:
                nf = counts[0]
                f_name[nf], f_a[nf], f_b[nf] = k, -1, -1
                counts[0] = nf + 1
        else:
            want = layout[level]
            if not _is(buf, a, b, want) or (kind == 2 and level != 1):
                return False
            if level == 0:
                top += 1
                if top > 2:
                    return False
            if level == fd - 1 and kind == 0:  # a record opens
                rec = counts[1]
                r_start[rec], r_table[rec] = counts[0], t
                counts[1] = rec + 1
                counts[2] += 1  # (the stamp of names seen in this record: never reused)
            elif level == fd - 1 and kind == 1:  # and closes: its shape
                sh = _shape(f_name, r_start[rec], counts[0], s_slots, s_off, s_seq, s_count)
                if sh < 0:
                    return False
                r_shape[rec] = sh
        if field < 0 and not _blank(buf, j + 1, nxt):
            return False
        i = nxt
    return top == 2 and depth == 0


@njit(cache=True, nogil=True)
def scan_tables(buf, starts, ends, layout, fd):
    """Read the tables buf[starts[k]:ends[k]] of one type (LAYOUT: its root, list and record
    names as byte arrays; FD: the level of its fields). Returns (ok per table, per field: text
    start and end (-1: no text) and name id, per record: its first field, table and shape id,
    the names (positions and lengths in buf), the shapes (offsets into a sequence of name ids),
    and the counts of fields, records, names and shapes)."""
    n_lt = 0
    for i in range(len(buf)):
        if buf[i] == _LT:
            n_lt += 1
    cap = n_lt + 1
    f_a = np.empty(cap, np.int32)
    f_b = np.empty(cap, np.int32)
    f_name = np.empty(cap, np.int32)
    r_start = np.empty(cap + 1, np.int32)
    r_table = np.empty(cap, np.int32)
    r_shape = np.empty(cap, np.int32)
    counts = np.zeros(3, np.int64)  # fields, records, records ever opened (stamps)
    names = (
        np.full(2 * _NAME_SLOTS, -1, np.int32),
        np.empty(_NAME_SLOTS, np.int64),
        np.empty(_NAME_SLOTS, np.int64),
        np.zeros(1, np.int64),
    )
    s_off = np.zeros(_SHAPE_SLOTS + 1, np.int64)
    shapes = (np.full(2 * _SHAPE_SLOTS, -1, np.int32), s_off, np.empty(cap, np.int32),
              np.zeros(1, np.int64))  # fmt: skip
    seen = np.full(_NAME_SLOTS, -1, np.int64)
    guess = np.full(1024, -1, np.int32)  # the name id last met at each place in a record
    st = (f_a, f_b, f_name, r_start, r_table, r_shape, counts, names, shapes, seen, guess)
    ok = np.zeros(len(starts), np.bool_)
    for t in range(len(starts)):
        nf, nr = counts[0], counts[1]
        ok[t] = _table(buf, starts[t], ends[t], t, layout, fd, st)
        if not ok[t]:  # roll back what it wrote
            counts[0], counts[1] = nf, nr
    nf, nr = counts[0], counts[1]
    r_start[nr] = nf
    return (ok, f_a[:nf], f_b[:nf], f_name[:nf], r_start[: nr + 1], r_table[:nr], r_shape[:nr],
            names[1][: names[3][0]], names[2][: names[3][0]], s_off[: shapes[3][0] + 1],
            shapes[2])  # fmt: skip


@njit(cache=True, nogil=True)
def gather_texts(buf, f_a, f_b):
    """The field texts as the buffers of an Arrow string array: offsets, bytes, validity."""
    n = len(f_a)
    offsets = np.empty(n + 1, np.int32)
    valid = np.empty(n, np.bool_)
    total = 0
    for k in range(n):
        offsets[k] = total
        if f_a[k] >= 0:
            total += f_b[k] - f_a[k]
    offsets[n] = total
    data = np.empty(total, np.uint8)
    for k in range(n):
        a = f_a[k]
        valid[k] = a >= 0
        if a >= 0:
            data[offsets[k] : offsets[k + 1]] = buf[a : f_b[k]]
    return offsets, data, valid


_B64 = np.full(256, 255, np.uint8)
for _k, _c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"):
    _B64[_c] = _k


@njit(cache=True, nogil=True)
def b64decode(src, table):
    """Strict base64 (the alphabet only, length a multiple of 4, at most two '=' at the end):
    (True, the bytes), or (False, empty) for anything else, which the caller decodes as before."""
    n = len(src)
    empty = np.empty(0, np.uint8)
    if n % 4:
        return False, empty
    pad = 0
    if n and src[n - 1] == 61:
        pad = 2 if src[n - 2] == 61 else 1
    out = np.empty(n // 4 * 3 - pad, np.uint8)
    full = n // 4 - (1 if pad else 0)  # whole quads; a padded last one after them
    bad = 0
    for q in range(full):
        i, o = 4 * q, 3 * q
        a, b, c, d = table[src[i]], table[src[i + 1]], table[src[i + 2]], table[src[i + 3]]
        bad |= a | b | c | d  # (255 marks a byte outside the alphabet)
        v = (np.uint32(a) << 18) | (np.uint32(b) << 12) | (np.uint32(c) << 6) | np.uint32(d)
        out[o] = (v >> 16) & 0xFF
        out[o + 1] = (v >> 8) & 0xFF
        out[o + 2] = v & 0xFF
    if bad & 0x80:
        return False, empty
    if pad:
        i, o = 4 * full, 3 * full
        a, b = table[src[i]], table[src[i + 1]]
        c = table[src[i + 2]] if pad == 1 else 0
        if (a | b | c) & 0x80:
            return False, empty
        v = (np.uint32(a) << 18) | (np.uint32(b) << 12) | (np.uint32(c) << 6)
        out[o] = (v >> 16) & 0xFF
        if pad == 1:
            out[o + 1] = (v >> 8) & 0xFF
    return True, out


B64_TABLE = _B64
