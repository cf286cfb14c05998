"""Envelope files read into batches of whole dossiers (contract.batch.Pending), what ingest
validates: a file of many dossiers streamed in batches of chunk_claims, runs of small files (most
facilities send a dossier or a few per file) read a few at a time, the tables of the dossiers of
several files read together (contract.xml_reader.finish_dossiers). The batches of a file are those
of reading it alone; a refused file ends with a batch carrying its error."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from contract.batch import EnvelopeBatch, Pending
from contract.limits import Limits
from contract.xml_reader import (
    READ_AHEAD_BYTES,
    Dossier,
    Gathered,
    HostileInput,
    file_error_message,
    finish_dossiers,
    gather_envelope,
    read_envelope,
)


@dataclass
class Taken:
    """A batch of one envelope file before validation, and what its result gets besides."""

    pending: Pending
    skipped: Counter | None = None  # the file's skipped tables, on its last batch
    file_error: tuple[str, str] | None = None  # (file, message) where the file was refused

    @property
    def claims(self) -> int:
        return self.pending.claims


def file_batches(path: Path, limits: Limits) -> Iterator[Taken]:
    """The batches of one envelope file (chunk_claims dossiers each), streamed; a refused file
    ends with a batch of the dossiers read before the error, carrying the error."""
    yield from _batches(path.name, read_envelope(path, limits), limits)


def _batches(
    name: str,
    dossiers: Iterator[Dossier],
    limits: Limits,
    error: tuple[str, str] | None = None,
) -> Iterator[Taken]:
    """The dossiers of file NAME in batches of chunk_claims; its last batch carries its skipped
    tables and its error (raised while reading, or ERROR: found before)."""
    batch = EnvelopeBatch()
    skipped: Counter = Counter()
    try:
        for d in dossiers:
            batch.add(name, d)
            skipped.update(d.skipped)
            if batch.claims >= limits.chunk_claims:
                yield Taken(batch.take_rows())
    except (HostileInput, etree.XMLSyntaxError, OSError) as e:
        yield Taken(batch.take_rows(), skipped, (name, file_error_message(e)))
        return
    yield Taken(batch.take_rows(), skipped, error)


# Files up to this size are read a few at a time: their dossiers gathered file by file
# (gather_envelope) and the tables of up to chunk_claims dossiers of several files read together
# (finish_dossiers), not a scan per file.
SMALL_FILE_BYTES = 1024**2


@dataclass
class _Small:
    """A small file's dossiers, tables decoded but not read, and the error that ended it."""

    name: str
    gathered: list[Gathered]
    error: tuple[str, str] | None

    @property
    def pending_bytes(self) -> int:
        return sum(g.pending_bytes for g in self.gathered)


def _gathered(path: Path, limits: Limits) -> _Small:
    gathered: list[Gathered] = []
    try:
        for g in gather_envelope(path, limits):
            gathered.append(g)
    except (HostileInput, etree.XMLSyntaxError, OSError) as e:
        return _Small(path.name, gathered, (path.name, file_error_message(e)))
    return _Small(path.name, gathered, None)


def _read_smalls(smalls: list[_Small], limits: Limits) -> Iterator[Taken]:
    """The batches of these small files, as file_batches gives each: their tables read
    together."""
    dossiers = list(finish_dossiers([g for s in smalls for g in s.gathered], limits))
    at = 0
    for s in smalls:
        mine = dossiers[at : at + len(s.gathered)]
        at += len(s.gathered)
        yield from _batches(s.name, iter(mine), limits, s.error)


def job_batches(paths: list[Path], limits: Limits) -> Iterator[Taken]:
    """The batches of these files in order: larger files streamed one by one (file_batches), runs
    of small files read together (_read_smalls)."""
    smalls: list[_Small] = []
    dossiers = size = 0
    for path in paths:
        if _size(path) > SMALL_FILE_BYTES:
            yield from _read_smalls(smalls, limits)
            smalls, dossiers, size = [], 0, 0
            yield from file_batches(path, limits)
            continue
        s = _gathered(path, limits)
        smalls.append(s)
        dossiers += len(s.gathered)
        size += s.pending_bytes
        if dossiers >= limits.chunk_claims or size >= READ_AHEAD_BYTES:
            yield from _read_smalls(smalls, limits)
            smalls, dossiers, size = [], 0, 0
    yield from _read_smalls(smalls, limits)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # (gone since it was listed: file_batches reports it as the file's error)
        return SMALL_FILE_BYTES + 1
