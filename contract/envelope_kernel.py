"""The compiled (numba) scan of a GIAMDINHHS envelope: the dossiers (HOSO) of a buffer of the
file found in one pass over its bytes, with the positions of each FILEHOSO's LOAIHOSO and
NOIDUNGFILE texts, the whole buffer checked as well-formed XML on the way.

It takes a strict subset of XML and stops where the buffer leaves it; contract.xml_envelope
then hands the file to the hardened lxml parser (which reads it as before, from the dossier the
scan stopped at: it counts the ones before). The subset: the envelope as contract.xml_envelope
documents (plain ASCII names without attributes or prefixes; texts without references, CDATA,
'>' or control characters other than tab, line feed and, in texts nothing reads, carriage return;
valid UTF-8 without U+FFFE/U+FFFF; no comments, PIs or DTD after the XML declaration), elements
at most MAX_DEPTH deep, each text under MAX_TEXT bytes, no HOSO inside a HOSO and no element
inside a LOAIHOSO or NOIDUNGFILE. Within it, what the scan gives is what lxml's iterparse gives
contract.xml_reader._gather (tests/contract/test_xml_envelope.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from contract.xml_kernels import MAX_TAG, _is, _wide
from contract.xml_kernels import _tag as _plain_tag

# Results of scan_envelope
DONE, MORE, OUTSIDE, FULL = 0, 1, 2, 3
MAX_TEXT = 4_000_000  # one text node; libxml2 refuses more than 10,000,000 without huge_tree
NON_ASCII, HAS_CR, NOT_BLANK = 1, 2, 4
_LT, _GT = 60, 62

# The class of each byte in a text: 0 outside the subset ('&', '>', controls but tab, line feed
# and carriage return), 1 other printable ASCII, 2 space, tab or line feed, 3 carriage return,
# 4 '<' (the text ends), 5 the first byte of a character of two to four bytes
_CLASS = np.zeros(256, np.uint8)
_CLASS[33:128] = 1
_CLASS[[32, 9, 10]] = 2
_CLASS[13] = 3
_CLASS[60] = 4
_CLASS[[38, 62]] = 0
_CLASS[128:] = 5

ROOT = np.frombuffer(b"GIAMDINHHS", np.uint8).copy()
HOSO = np.frombuffer(b"HOSO", np.uint8).copy()
FILEHOSO = np.frombuffer(b"FILEHOSO", np.uint8).copy()
LOAIHOSO = np.frombuffer(b"LOAIHOSO", np.uint8).copy()
NOIDUNGFILE = np.frombuffer(b"NOIDUNGFILE", np.uint8).copy()


@njit(cache=True, nogil=True)
def _text(buf, i, e):
    """The text from buf[i]: (end: the next '<' or E, the position of the first byte outside the
    subset or -1, flags NON_ASCII | HAS_CR | NOT_BLANK)."""
    flags = 0
    while i < e:
        k = _CLASS[buf[i]]
        if k == 1:  # (base64: the bulk of an envelope, in a tight loop)
            flags |= NOT_BLANK
            i += 1
            while i < e and _CLASS[buf[i]] == 1:
                i += 1
        elif k == 2:
            i += 1
        elif k == 4:
            return i, -1, flags
        elif k == 3:
            flags |= HAS_CR
            i += 1
        elif k == 5:
            w = _wide(buf, i, e)
            if w == 0:
                return i, i, flags
            flags |= NON_ASCII | NOT_BLANK
            i += w
        else:
            return i, i, flags
    return i, -1, flags


@njit(cache=True, nogil=True)
def _tag(buf, i, e, final):
    """xml_kernels._tag (the same tags of the subset), with end -2 where the buffer ends before
    the tag could: no '>' after buf[i] yet, within MAX_TAG bytes, and more bytes to come."""
    j, kind, a, b = _plain_tag(buf, i, e)
    if j == -1 and not final and e - i <= MAX_TAG:
        for k in range(i + 1, e):
            if buf[k] == _GT:
                return -1, 0, 0, 0
        return -2, 0, 0, 0
    return j, kind, a, b


@njit(cache=True, nogil=True)
def _trim(buf, a, b):
    while a < b and (buf[a] == 32 or buf[a] == 9 or buf[a] == 10):
        a += 1
    while b > a and (buf[b - 1] == 32 or buf[b - 1] == 9 or buf[b - 1] == 10):
        b -= 1
    return a, b


@njit(cache=True, nogil=True)
def _closes(buf, a, b, name, n):
    """True if the end tag named buf[a:b] closes the element named name[:n]."""
    if b - a != n:
        return False
    for k in range(n):  # noqa: SIM110  (a loop numba compiles)
        if buf[a + k] != name[k]:
            return False
    return True


@njit(cache=True, nogil=True)
def scan_envelope(buf, pos, final, names, lens, st, max_depth, dos_end, files):
    """Scan buf[pos:] (FINAL: the file ends with it) from the state ST ([depth, 0 before the
    root / 1 in it / 2 after it]) and the open elements' names (NAMES, LENS). Each dossier
    complete in the buffer ends a run of rows of FILES (loai start, loai end, content start,
    content end (-1: no NOIDUNGFILE), content flags), DOS_END[k] the end of dossier k's run.
    Returns (DONE | MORE | OUTSIDE | FULL, safe, dossiers): the scan stopped with the file read
    to its end, or needing more bytes, or where the subset ends, or with DOS_END or FILES full;
    SAFE is where the next scan starts (outside any dossier; ST and the names then hold the
    state there) and DOSSIERS the number complete before it."""
    e = len(buf)
    depth, root = st[0], st[1]
    safe, nd, nf = pos, 0, 0  # (FILES rows past DOS_END[nd - 1] belong to an open dossier)
    hoso = fh = -1  # the levels (the root's is 1) of the open HOSO and FILEHOSO
    cap = 0  # the open child of the FILEHOSO whose text is kept: 1 LOAIHOSO, 2 NOIDUNGFILE
    la = lb = ca = cb = cf = 0
    i = pos
    while True:
        if i >= e:
            if final:
                return (DONE if root == 2 else OUTSIDE), safe, nd
            break
        if buf[i] != _LT:
            end, bad, flags = _text(buf, i, e)
            if bad >= 0:
                if not final and bad >= e - 3:  # (a character cut by the buffer's end)
                    break
                return OUTSIDE, safe, nd
            if end - i > MAX_TEXT or (root != 1 and flags & NOT_BLANK):
                return OUTSIDE, safe, nd
            if end == e and not final:
                break
            if cap:
                if flags & HAS_CR:  # (lxml gives it as a line feed)
                    return OUTSIDE, safe, nd
                a, b = _trim(buf, i, end)
                if cap == 1:
                    la, lb = a, b
                else:
                    ca, cb, cf = a, b, flags & NON_ASCII
            i = end
        else:
            j, kind, a, b = _tag(buf, i, e, final)
            if j == -2:
                break
            if j < 0:
                return OUTSIDE, safe, nd
            level = depth + 1  # of the element a start tag opens
            if kind != 1:
                if root == 2 or level > max_depth or cap:
                    return OUTSIDE, safe, nd
                if root == 0:
                    if not _is(buf, a, b, ROOT):
                        return OUTSIDE, safe, nd
                    root = 1
                if _is(buf, a, b, HOSO):
                    if hoso >= 0:
                        return OUTSIDE, safe, nd
                    if nd >= len(dos_end):
                        return FULL, safe, nd
                    hoso = level
                elif hoso >= 0 and level == hoso + 1 and _is(buf, a, b, FILEHOSO):
                    fh, la, lb, ca, cb, cf = level, 0, 0, -1, -1, 0
                elif fh >= 0 and level == fh + 1:
                    if _is(buf, a, b, LOAIHOSO):
                        cap, la, lb = 1, j + 1, j + 1
                    elif _is(buf, a, b, NOIDUNGFILE):
                        cap, ca, cb, cf = 2, j + 1, j + 1, 0
                if kind == 0:
                    names[depth, : b - a] = buf[a:b]
                    lens[depth] = b - a
                    depth = level
            else:
                if depth == 0 or not _closes(buf, a, b, names[depth - 1], lens[depth - 1]):
                    return OUTSIDE, safe, nd
                level = depth
                depth -= 1
            if kind != 0:  # an element ends at LEVEL
                if cap and level == fh + 1:
                    cap = 0
                elif level == fh:
                    if nf >= len(files):
                        return FULL, safe, nd
                    files[nf, 0], files[nf, 1], files[nf, 2] = la, lb, ca
                    files[nf, 3], files[nf, 4] = cb, cf
                    nf += 1
                    fh = -1
                elif level == hoso:
                    dos_end[nd] = nf
                    nd += 1
                    hoso = -1
                if level == 1:
                    root = 2
            i = j + 1
            if hoso < 0:  # (after a tag only: a text node lxml reads on from is read whole)
                safe = i
                st[0], st[1] = depth, root
    return MORE, safe, nd
