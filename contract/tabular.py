"""The tabular input format: a folder of xml1/xml2/xml3 (and facilities, labels) tables as Parquet
or CSV with XML 130 column names, read and cut into batches of whole claims for ingest."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from contract.fast_check import arrow_text
from contract.limits import Limits
from contract.schema import CLAIMS, DRUG_LINES, SERVICE_LINES, Table
from contract.validate import GROUP, RECORD, SOURCE, ContractError, as_text


def is_tabular(src: Path) -> bool:
    return src.is_dir() and table_source(src, "xml1") is not None


def table_source(folder: Path, stem: str) -> Path | None:
    for cand in (folder / f"{stem}.parquet", folder / f"{stem}.csv", folder / stem):
        if cand.exists():
            return cand
    return None


def read_tabular_file(path: Path, table: Table) -> pd.DataFrame:
    """One table of the tabular input format, checked for its required columns."""
    if path.suffix == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    else:
        df = pd.read_parquet(path)
    df.columns = [str(c).strip().upper() for c in df.columns]
    _check_columns(list(df.columns), path, table)
    return df


# Buckets of chunk_claims claims per batch: the input is cut by claim-key hash into buckets of
# about chunk_claims claims, and SPILL_BATCHES consecutive buckets make a batch (a partition,
# spilled to Arrow IPC files while the input is read); one batch at a time is held in memory and
# validated whole (the fixed cost of validating a batch is paid once per 50,000 claims).
SPILL_BATCHES = 25
READ_ROWS = 65_536  # rows per record batch read from a table
# Rows of a table held back across its partitions before the largest are written, as pieces of
# READ_ROWS: each piece read is cut into one slice per partition, so writing every slice at once
# made the writes grow as pieces x partitions (n^2: at 4M claims, 80 partitions, 28,320 record
# batches of ~800 rows; the kernel's time for them grew 7.6x from 1M to 4M while the user time
# grew 4.1x, docs/benchmarks.md). Held back, a partition's rows are written about
# SPILL_BUFFER_PIECES x READ_ROWS / 2 / partitions at a time (one record batch each), in the order
# they were read.
SPILL_BUFFER_PIECES = 8
# ... and at most this many bytes of them (wide rows: 524,288 claims of 66 columns are ~360 MB,
# which with tables spilled side by side by the workers took ingest past 2 GB at 1M claims).
SPILL_BUFFER_BYTES = 160 * 2**20


def _check_columns(names: list[str], path: Path, table: Table) -> None:
    present = {str(c).strip().upper() for c in names}
    missing = [
        f.xml for f in table.required if f.xml not in present and not present & set(f.aliases)
    ]
    if missing:
        raise ContractError(
            f"{path.name}: missing required column(s) {', '.join(missing)} "
            f"for table {table.name} ({table.xml_table or 'tabular input'})"
        )


def _file_schema(path: Path) -> pa.Schema:
    """The columns of a table file (CSV: its header, every column text)."""
    if path.suffix == ".csv":
        names = pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns
        return pa.schema([pa.field(str(c), pa.large_string()) for c in names])
    if path.is_dir():  # a folder of parquet files (a dataset)
        return ds.dataset(path, format="parquet").schema
    return pq.ParquetFile(path).schema_arrow


def _read_pieces(path: Path) -> Iterator[pa.Table]:
    """A table file as Arrow pieces of READ_ROWS rows, in file order (CSV values as text)."""
    if path.suffix == ".csv":
        reader = pd.read_csv(
            path, dtype=str, keep_default_na=False, encoding="utf-8-sig", chunksize=READ_ROWS
        )
        schema = None
        for chunk in reader:
            t = pa.Table.from_pandas(chunk, preserve_index=False)
            schema = schema or t.schema
            yield t.cast(schema)
        return
    if path.is_dir():
        data = ds.dataset(path, format="parquet")
        try:
            for rb in data.scanner(batch_size=READ_ROWS).to_batches():  # in file order
                yield pa.Table.from_batches([rb], schema=data.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
            raise _type_mismatch(path, data, e) from None
        return
    f = pq.ParquetFile(path)
    for rb in f.iter_batches(batch_size=READ_ROWS):
        yield pa.Table.from_batches([rb], schema=f.schema_arrow)


def _type_mismatch(path: Path, data: ds.FileSystemDataset, err: Exception) -> ContractError:
    """The file and column of a folder of parquet files whose column types differ."""
    first = data.files[0]
    for f in data.files[1:]:
        schema = pq.read_schema(f)
        for field in schema:
            i = data.schema.get_field_index(field.name)
            if i >= 0 and data.schema.field(i).type != field.type:
                return ContractError(
                    f"{path.name}/{Path(f).name}: column {field.name} is {field.type} there but "
                    f"{data.schema.field(i).type} in {Path(first).name} (the files of a table "
                    "must give each column the same type)"
                )
    return ContractError(f"{path.name}: its parquet files cannot be read as one table ({err})")


def _used(names: list[str], table: Table) -> list[int]:
    """The columns of a table the contract reads (its fields and their aliases): the others,
    personal or not, are never spilled."""
    known = table.by_xml()
    return [i for i, c in enumerate(names) if str(c).strip().upper() in known]


def _rows(path: Path) -> int:
    if path.suffix == ".csv":
        return sum(len(t) for t in _read_pieces(path))
    if path.is_dir():
        return ds.dataset(path, format="parquet").count_rows()
    return pq.ParquetFile(path).metadata.num_rows


MISSING_KEY = "(missing MA_LK)"


def _groups(piece: pa.Table) -> pd.Series:
    """The GROUP of each row: its MA_LK as text (as read_tabular_file's frame gives it)."""
    names = [str(c).strip().upper() for c in piece.column_names]
    if "MA_LK" not in names:
        return pd.Series([MISSING_KEY] * len(piece), dtype="str")
    col = piece.column(names.index("MA_LK")).to_pandas()
    return as_text(col).fillna(MISSING_KEY)


def key_groups(piece: pa.Table) -> pa.Array:
    """_groups as one large_string array; a text MA_LK column in Arrow's kernels (the same ones
    pandas' "str" strip and comparison run: ~10x quicker than the round trip through pandas,
    tests/contract/test_ingest_ordered.py holds them equal)."""
    names = [str(c).strip().upper() for c in piece.column_names]
    if "MA_LK" in names:
        col = piece.column(names.index("MA_LK"))
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            x = pc.utf8_trim_whitespace(col.combine_chunks())
            x = pc.if_else(pc.equal(x, ""), pa.scalar(None, x.type), x)
            return x.fill_null(MISSING_KEY).cast(pa.large_string())
    return arrow_text(_groups(piece))


def _bucket(groups: pa.Array, k: int) -> np.ndarray:
    """hash(MA_LK) % k per row: pandas' hash_array of the keys as text, each distinct key hashed
    once (dictionary_encode) and spread back to its rows (the values pd.util.hash_array gives on
    every row; tests/contract/test_ingest_streaming.py checks it)."""
    enc = pc.dictionary_encode(groups)
    keys = enc.dictionary.to_numpy(zero_copy_only=False)  # str objects, the distinct keys only
    h = (pd.util.hash_array(keys, categorize=False) % k).astype(np.int64)
    return h[enc.indices.to_numpy(zero_copy_only=False)]


class _Spill:
    """Arrow pieces of one table sorted into partitions: IPC files on disk, or (one partition)
    kept in memory. A partition's file is deleted once taken, unless ``keep`` (Spark: a retried
    task takes its partition again; the caller removes the folder).

    The files are uncompressed unless ``compression`` names an Arrow IPC codec
    (Limits.spill_compression: lz4 wrote a third of the bytes but was ~25% of ingest's CPU).
    One IPC file per partition is open while a table is read: at national scale (thousands of
    partitions) the process's open-files limit (``ulimit -n``) must exceed the partition count,
    or chunk_claims be raised."""

    def __init__(
        self,
        folder: Path | None,
        name: str,
        parts: int,
        keep: bool = False,
        compression: str | None = None,
    ):
        self.folder, self.name, self.parts, self.keep = folder, name, parts, keep
        self.compression = compression
        self.pieces: list[list[pa.Table]] = [[] for _ in range(parts)]
        self.writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}
        self.written: set[int] = set()
        # slices held back per partition (SPILL_BUFFER_PIECES), and how many rows in all
        self.held: dict[int, list[pa.Table]] = {}
        self.held_rows: dict[int, int] = {}
        self.held_bytes: dict[int, int] = {}
        self.holding = self.holding_bytes = 0
        self.budget = SPILL_BUFFER_PIECES * READ_ROWS

    def add(self, part: int, t: pa.Table) -> None:
        if self.folder is None:
            self.pieces[part].append(t)
            return
        self.held.setdefault(part, []).append(t)
        self.held_rows[part] = self.held_rows.get(part, 0) + t.num_rows
        self.held_bytes[part] = self.held_bytes.get(part, 0) + t.nbytes
        self.holding += t.num_rows
        self.holding_bytes += t.nbytes
        if self.holding > self.budget or self.holding_bytes > SPILL_BUFFER_BYTES:
            # the largest out until half of each budget is held
            for q in sorted(self.held_rows, key=self.held_rows.__getitem__, reverse=True):
                self._write(q)
                if (
                    self.holding <= self.budget // 2
                    and self.holding_bytes <= SPILL_BUFFER_BYTES // 2
                ):
                    break

    def _write(self, part: int) -> None:
        """A partition's held slices written as one record batch."""
        t = pa.concat_tables(self.held.pop(part)).combine_chunks()
        self.holding -= self.held_rows.pop(part)
        self.holding_bytes -= self.held_bytes.pop(part)
        if part not in self.writers:
            opts = pa.ipc.IpcWriteOptions(compression=self.compression)
            path = self.folder / f"{self.name}-{part}.arrow"
            self.writers[part] = pa.ipc.new_file(path, t.schema, options=opts)
        self.writers[part].write_table(t)

    def close(self) -> None:
        try:
            for q in sorted(self.held):
                self._write(q)
        except BaseException:
            self.abort()
            raise
        try:
            for w in self.writers.values():
                w.close()
        finally:
            self.written = set(self.writers)
            self.writers = {}  # closed: the spill can be pickled into another process

    def abort(self) -> None:
        """Close every writer after an error, keeping that error (not a later one of closing)."""
        self.held, self.held_rows, self.held_bytes = {}, {}, {}
        self.holding = self.holding_bytes = 0
        for w in self.writers.values():
            with contextlib.suppress(Exception):  # the error being raised is the one to report
                w.close()
        self.writers = {}

    def take(self, part: int, schema: pa.Schema) -> pa.Table:
        if self.folder is None:
            pieces, self.pieces[part] = self.pieces[part], []
            return pa.concat_tables(pieces) if pieces else schema.empty_table()
        if part not in self.written:
            return schema.empty_table()
        path = self.folder / f"{self.name}-{part}.arrow"
        with pa.memory_map(str(path)) as mm:
            t = pa.ipc.open_file(mm).read_all()
        if not self.keep:
            path.unlink(missing_ok=True)
        return t


@dataclass
class Spilled:
    """A tabular input cut into partitions of whole claims (see tabular_batches)."""

    sources: dict[str, tuple[Path, Table]]
    spills: dict[str, _Spill]
    schemas: dict[str, pa.Schema]
    parts: int
    n_claims: int
    ordered: bool = False  # partitions of consecutive claims (contract.ordered_input)

    def batch(self, q: int) -> tuple[dict[str, pd.DataFrame], int, int]:
        return _partition_batch(self.spills, self.schemas, self.sources, q, self.n_claims)

    @property
    def folder(self) -> Path | None:
        """The spill's folder (None: held in memory)."""
        return next(iter(self.spills.values())).folder

    def drop(self, q: int) -> None:
        """Partition q's spilled files removed (a spill kept for taking again is done with)."""
        for spill in self.spills.values():
            if spill.folder is not None:
                (spill.folder / f"{spill.name}-{q}.arrow").unlink(missing_ok=True)


def tabular_sources(src: Path) -> dict[str, tuple[Path, Table]]:
    """The claim, drug-line and service-line tables of SRC (file, table), checked for their
    required columns; the claims table must be there."""
    sources: dict[str, tuple[Path, Table]] = {}
    for stem, table in (("xml1", CLAIMS), ("xml2", DRUG_LINES), ("xml3", SERVICE_LINES)):
        p = table_source(src, stem)
        if p is None:
            if stem == "xml1":
                raise ContractError(f"{src}: no xml1.parquet or xml1.csv (the claim summaries)")
            continue
        _check_columns(_file_schema(p).names, p, table)
        sources[table.name] = (p, table)
    return sources


def spill_tabular(
    src: Path,
    limits: Limits,
    folder: Path | None,
    keep: bool = False,
    map_tables: Callable | None = None,
) -> Spilled:
    """Read the tables of SRC in record batches and spill their rows to partitions by claim key
    (Arrow IPC files in FOLDER; kept in memory when there is one partition and no folder). Only
    the columns the contract reads are spilled. ``keep``: a partition can be taken again (Spark
    task retries); FOLDER is then the caller's to remove. ``map_tables``: how the three tables'
    spills are run, e.g. a process pool's ``map`` (they are independent; needs FOLDER)."""
    sources = tabular_sources(src)
    n_claims = _rows(sources["claims"][0])
    k = max(1, -(-n_claims // limits.chunk_claims))
    parts = -(-k // SPILL_BATCHES)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    jobs = [
        (name, p, table, folder, parts, keep, limits.spill_compression, k)
        for name, (p, table) in sources.items()
    ]
    if map_tables is not None:  # the largest first: two workers end about together
        jobs.sort(key=lambda job: _cells(job[1]), reverse=True)
    done = list((map_tables or map)(_spill_one, jobs))
    by_name = {job[0]: result for job, result in zip(jobs, done, strict=True)}
    spills = {name: by_name[name][0] for name in sources}  # in the tables' order
    schemas = {name: by_name[name][1] for name in sources}
    return Spilled(sources, spills, schemas, parts, n_claims)


def _cells(path: Path) -> int:
    """About how much work a table's spill is: rows x columns of a parquet file (its metadata),
    else its size in bytes."""
    if path.suffix == ".parquet" and path.is_file():
        meta = pq.ParquetFile(path).metadata
        return meta.num_rows * meta.num_columns
    if path.is_dir():
        return sum(f.stat().st_size for f in path.iterdir())
    return path.stat().st_size


def _spill_one(job: tuple) -> tuple[_Spill, pa.Schema]:
    """One table spilled (spill_tabular); its spill closed and the schema of its spilled rows."""
    name, p, table, folder, parts, keep, compression, k = job
    spill = _Spill(folder, name, parts, keep, compression)
    schemas: dict[str, pa.Schema] = {}
    try:
        _spill_table(p, table, spill, schemas, name, k)
    except BaseException:
        spill.abort()
        raise
    spill.close()
    if name not in schemas:  # an empty table: its columns, no rows
        schemas[name] = spilled_schema(p, table)
    return spill, schemas[name]


def prepared_pieces(p: Path, table: Table) -> Iterator[tuple[pa.Table, pa.Array]]:
    """The pieces of a table file as spilled: the columns the contract reads, RECORD (the row's
    number; CSV: its line number in the file) and GROUP (its MA_LK as text); and that GROUP."""
    record = 2 if p.suffix == ".csv" else 0
    for piece in _read_pieces(p):
        groups = key_groups(piece)
        n = len(piece)
        piece = (
            piece.select(_used(piece.column_names, table))
            .append_column(RECORD, pa.array(np.arange(record, record + n)))
            .append_column(GROUP, groups)
        )
        record += n
        yield piece, groups


def spilled_schema(p: Path, table: Table) -> pa.Schema:
    """The schema of a table's spilled rows (prepared_pieces) from its file's columns."""
    schema = _file_schema(p)
    return (
        pa.schema([schema.field(i) for i in _used(schema.names, table)])
        .append(pa.field(RECORD, pa.int64()))
        .append(pa.field(GROUP, pa.large_string()))
    )


def _spill_table(p: Path, table: Table, spill: _Spill, schemas: dict, name: str, k: int) -> None:
    parts = spill.parts
    for piece, groups in prepared_pieces(p, table):
        schemas[name] = piece.schema
        if parts == 1:
            spill.add(0, piece)
            continue
        part = _bucket(groups, k) * parts // k
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(parts + 1))
        piece = piece.take(order)
        for q in np.flatnonzero(np.diff(bounds)):
            spill.add(int(q), piece.slice(bounds[q], bounds[q + 1] - bounds[q]))


def tabular_batches(
    src: Path, limits: Limits, spill_dir: Path | None = None
) -> Iterator[tuple[dict[str, pd.DataFrame], int, int]]:
    """Batches of whole claims (every row of a MA_LK in the same batch), in bounded memory.

    Rows go to bucket ``hash(MA_LK) % k`` (k = claims / chunk_claims), and bucket b to batch
    ``b * parts // k`` (SPILL_BATCHES buckets per batch). The tables are read in record batches
    and their rows spilled to their batch's Arrow IPC file (in memory when there is one batch);
    one batch at a time is read back, in file order. Memory is a batch's size, not the input's.

    The spill holds personal data in clear (the columns the contract hashes): it goes to a private
    (0700) temporary folder, never the dataset folder, under ``spill_dir`` (default: the system
    temporary folder) and is removed when the batches end (or the generator is closed).
    """
    with spilled_input(src, limits, spill_dir) as spilled:
        for q in range(spilled.parts):
            yield spilled.batch(q)


@contextlib.contextmanager
def spilled_input(
    src: Path,
    limits: Limits,
    spill_dir: Path | None = None,
    keep: bool = False,
    map_tables: Callable | None = None,
    parts: int | None = None,
) -> Iterator[Spilled]:
    """SRC spilled into partitions of whole claims (spill_tabular) inside a private (0700)
    temporary folder under ``spill_dir``, removed when the block ends; one partition is kept in
    memory instead (no folder) when the input makes only one. ``keep``: a partition can be taken
    again until dropped (Spilled.drop). ``map_tables``: as spill_tabular's, used only with more
    than one partition. ``parts``: partitions(src, limits) when the caller has it (a CSV input is
    read to count its rows)."""
    with spill_folder(spill_dir) as tmp:
        folder = tmp if (partitions(src, limits) if parts is None else parts) > 1 else None
        yield spill_tabular(src, limits, folder, keep, map_tables if folder else None)


@contextlib.contextmanager
def spill_folder(spill_dir: Path | None = None) -> Iterator[Path]:
    """A private (0700) temporary folder for a spill under ``spill_dir`` (default: the system
    temporary folder; never the dataset: the spill holds personal data), removed at the end."""
    with tempfile.TemporaryDirectory(prefix="claimradar-spill-", dir=spill_dir) as tmp:
        yield Path(tmp)


def partitions(src: Path, limits: Limits) -> int:
    """How many partitions (batches of whole claims) spill_tabular cuts SRC into."""
    k = max(1, -(-_rows_of_claims(src) // limits.chunk_claims))
    return -(-k // SPILL_BATCHES)


def _rows_of_claims(src: Path) -> int:
    p = table_source(src, "xml1")
    if p is None:
        raise ContractError(f"{src}: no xml1.parquet or xml1.csv (the claim summaries)")
    return _rows(p)


def _partition_batch(spills, schemas, sources, q, n_claims):
    """Partition q as one batch: its rows read back, in file order."""
    batch: dict[str, pd.DataFrame] = {}
    for name, spill in spills.items():
        t = spill.take(q, schemas[name])
        df = t.to_pandas()
        del t
        df.columns = [c if c in (RECORD, GROUP) else str(c).strip().upper() for c in df.columns]
        df[SOURCE] = sources[name][0].name
        df = df[[c for c in df.columns if c not in (RECORD, GROUP)] + [RECORD, GROUP]]
        if len(df):
            df[GROUP] = df[GROUP].astype("str")
        batch[name] = df
        del df
    return batch, len(batch["claims"]), n_claims
