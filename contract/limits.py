"""The limits of reading claims: file and table sizes, nesting depth and field length (the
hardening), and the batch size and worker count of ingest. The caller passes its own."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 4 * 1024**3
    max_depth: int = 32
    max_field_chars: int = 65_536
    max_table_bytes: int = 64 * 1024**2
    chunk_claims: int = 2_000
    workers: int = 2
    # Codec of the tabular spill's Arrow IPC files: None (uncompressed: the temporary disk is
    # about the input's size in Arrow, ~2.7 GB per million claims, and the spill costs the least
    # CPU), or "lz4" / "zstd" (about a third of the disk for ~25% more ingest CPU).
    spill_compression: str | None = None
    # A tabular input already in claim order is cut into partitions as it is read, with no spill
    # (contract.ordered_input); False: every tabular input is spilled by claim-key hash.
    ordered_input: bool = True
