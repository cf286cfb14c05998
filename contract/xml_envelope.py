"""A GIAMDINHHS envelope read by the compiled scan (contract.envelope_kernel) where it can be:
the file in buffers of CHUNK bytes, each scanned for the dossiers complete in it, whose tables
are decoded (base64) here, as contract.xml_reader._gather decodes those lxml finds.

The scan takes the envelopes XML 130 exports are made of: an XML declaration (version 1.0,
UTF-8), then elements without attributes or namespace prefixes, whitespace between them and
texts without references or CDATA. Where a file leaves that subset (or a dossier outgrows
MAX_BUFFER), the scan stops after the dossiers complete before that point and the hardened lxml
reader reads on from there (Resumed); where the file breaks, or its reading fails, lxml reads it
again from its start, skipping those dossiers: a file is read exactly as lxml alone reads it,
and the refusals and their messages are lxml's.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from contract.limits import Limits
from contract.schema import XML_LAYOUT

SCAN = True  # False: envelopes are read by lxml only (tests compare the two)
CHUNK = 16 * 1024**2
MAX_BUFFER = 256 * 1024**2  # a dossier (with what is left of the buffer before it) past this: lxml
LIBXML2_MAX_DEPTH = 256  # deeper is refused by libxml2 without huge_tree, whatever max_depth says
_HEAD = 512  # the first buffer holds at least this much (or the whole file): the declaration
_DOSSIERS, _FILES = 1 << 13, 1 << 15  # dossiers and FILEHOSO one scan call hands back at most
_DECL = re.compile(
    rb"<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(['\"])1\.0\1"
    rb"(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(['\"])(?i:utf-8)\2)?"
    rb"(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(['\"])(?:yes|no)\3)?[ \t\r\n]*\?>"
)


# A dossier's FILEHOSO in document order, each a slot: ("skip", loai), ("error", (table, field,
# value, error)), ("records", loai, records), or ("bytes", loai, decoded table, NOIDUNGFILE or
# its size) waiting to be read with the tables of the dossiers around it.
@dataclass
class Gathered:
    number: int
    slots: list[tuple]
    pending_bytes: int = 0


def withheld(size: int) -> str:
    """What a rejection shows of a NOIDUNGFILE that could not be read: its size, never its text
    (base64 of a table with names, card and ID numbers)."""
    return f"({size:,} characters, not shown)" if size else ""


def decode_text(text: str, limits: Limits, compiled: bool) -> bytes:
    """A NOIDUNGFILE's text (stripped) -> the table it carries; ValueError if it carries none."""
    if len(text) > limits.max_table_bytes * 4 // 3 + 4:
        raise ValueError(f"NOIDUNGFILE larger than {limits.max_table_bytes:,} bytes")
    if text.startswith("<"):  # plain XML as text or CDATA
        return text.encode("utf-8")
    if compiled and text.isascii():  # strict base64 in one compiled pass (else as below)
        from contract import xml_kernels as xk

        ok, out = xk.b64decode(np.frombuffer(text.encode("ascii"), np.uint8), xk.B64_TABLE)
        if ok:
            return out.tobytes()
    try:
        return base64.b64decode(text, validate=True)  # the usual case: no line breaks
    except (binascii.Error, ValueError):
        pass
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"NOIDUNGFILE is neither base64 nor XML ({e})") from None


# Where the scan stopped: the dossiers it yielded, the file offset it stopped at (None: reading
# failed), the names of the elements open there (outermost first) and whether the root had ended.
Stop = tuple[int, int | None, list[bytes], bool]


def gather(read: Callable[[int], bytes], limits: Limits) -> Generator[Gathered, None, Stop | None]:
    """Yield the dossiers of the file READ gives, in order, as xml_reader._gather makes them.
    Returns None when the file was read to its end, else where the scan stopped: the caller has
    lxml read on from there (Resumed), or the whole file, skipping the dossiers yielded."""
    from contract import envelope_kernel as ek
    from contract import xml_kernels as xk

    depth = min(limits.max_depth, LIBXML2_MAX_DEPTH)
    names = np.zeros((limits.max_depth, xk.MAX_TAG), np.uint8)
    lens = np.zeros(limits.max_depth, np.int64)
    state = np.zeros(2, np.int64)
    dos_end = np.empty(_DOSSIERS, np.int64)
    files = np.empty((_FILES, 5), np.int64)
    number, carry, first, consumed = 0, b"", True, 0  # (consumed: the file offset of buf)
    loai_of: dict[bytes, str] = {}
    while True:
        try:
            data = read(CHUNK)
        except Exception:  # (a corrupt gzip stream, a zip bomb: lxml meets it and says so)
            return number, None, [], False
        final = not data
        buf = carry + data if carry else data
        pos = 0
        if first and not final and len(buf) < _HEAD:  # (the declaration read whole first)
            carry = buf
            continue
        if first:
            first = False
            if buf.startswith(b"<?xml"):
                m = _DECL.match(buf)
                if m is None:
                    return number, 0, [], False
                pos = m.end()
        arr = np.frombuffer(buf, np.uint8)
        while True:
            code, pos, nd = ek.scan_envelope(
                arr, pos, final, names, lens, state, depth, dos_end, files
            )
            f0 = 0
            rows = files[: dos_end[nd - 1]].tolist() if nd else []
            for f1 in dos_end[:nd].tolist():
                number += 1
                yield _gathered(number, rows[f0:f1], buf, arr, limits, loai_of)
                f0 = f1
            if code != ek.FULL or nd == 0:  # (FULL with none: one dossier fills the arrays)
                break
        if code == ek.DONE:
            return None
        carry = buf[pos:]
        consumed += pos
        if code != ek.MORE or len(carry) > MAX_BUFFER:
            opened = [names[k, : lens[k]].tobytes() for k in range(int(state[0]))]
            return number, consumed, opened, bool(state[1] == 2)


class Resumed:
    """The rest of a file from OFFSET as lxml reads it: after an XML declaration and the start
    tags of the elements open there (OPENED), or an empty root if it had ENDED, so the parser
    stands where it would stand had it read the file to that point (the scan took only plain
    elements and texts before it: no attributes, namespaces, entities or DTD that the part left
    out could have declared)."""

    def __init__(self, fh, offset: int, opened: list[bytes], ended: bool = False) -> None:
        tags = [b"<GIAMDINHHS/>"] if ended else [b"<" + name + b">" for name in opened]
        self._head = b'<?xml version="1.0" encoding="utf-8"?>' + b"".join(tags)
        self._fh = fh
        if getattr(fh, "seekable", lambda: False)():
            fh.seek(offset)
        else:  # (a gzip stream: inflated again up to there)
            while offset > 0:
                got = len(fh.read(min(offset, CHUNK)))
                if got == 0:
                    break
                offset -= got

    def read(self, n: int = -1) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        return self._fh.read(n)


def _gathered(
    number: int, rows: list, buf: bytes, arr: np.ndarray, limits: Limits, loai_of: dict
) -> Gathered:
    from contract import xml_kernels as xk

    g = Gathered(number, [])
    limit = limits.max_table_bytes * 4 // 3 + 4
    for la, lb, ca, cb, non_ascii in rows:
        raw = buf[la:lb]
        loai = loai_of.get(raw)
        if loai is None:
            loai = raw.decode("utf-8").strip().upper()
            if len(loai_of) < 1_000:
                loai_of[raw] = loai
        if loai not in XML_LAYOUT:
            g.slots.append(("skip", loai or "(none)"))
            continue
        if ca < 0:
            g.slots.append(("error", (loai, "NOIDUNGFILE", "", "missing NOIDUNGFILE")))
            continue
        payload, size = None, cb - ca
        if not non_ascii and size <= limit:  # the usual case: strict base64, compiled
            ok, out = xk.b64decode(arr[ca:cb], xk.B64_TABLE)
            if ok:
                payload = out.tobytes()
        if payload is None:  # everything else exactly as the lxml reader decodes it
            text = buf[ca:cb].decode("utf-8").strip()
            size = len(text)
            try:
                payload = decode_text(text, limits, compiled=True)
            except ValueError as e:
                g.slots.append(("error", (loai, "NOIDUNGFILE", withheld(size), f"{loai}: {e}")))
                continue
        g.slots.append(("bytes", loai, payload, size))
        g.pending_bytes += len(payload)
    return g
