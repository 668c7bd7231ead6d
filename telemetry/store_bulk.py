"""Bulk movement of decision tables between Arrow and the database, per dialect.

Writes: SQLite takes one ``executemany`` per chunk with the chunk's constant columns inlined as
literals; PostgreSQL takes a CSV ``COPY`` into a temporary table and one ``INSERT ... SELECT ...
ON CONFLICT DO NOTHING``. Reads: SQLite tuples from the raw cursor become columns; PostgreSQL
streams ``COPY (query) TO STDOUT`` CSV into Arrow's reader. Both skip SQLAlchemy's per-row
processing, which would dominate the cost (see ``benchmarks/bench_telemetry.py``).
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from router.decision import DECISION_ARROW_SCHEMA, DECISION_COLUMNS
from telemetry.schema import decision_telemetry

LOAD_TABLE = "_telemetry_load"
"""PostgreSQL's temporary table a COPY fills before the idempotent insert."""


def insert_sqlite(conn: sa.Connection, table: pa.Table, chunk_rows: int) -> int:
    """executemany of single-row statements in one transaction.

    Binding parameters is most of the cost, so each chunk's constant columns (run id,
    versions, config hash, ...: usually a third of the row) are written into the statement as
    literals and only the varying ones are bound. Each statement binds at most 34 variables,
    far below SQLite's limit whatever the batch size; chunks only bound the tuples in memory.
    """
    cursor = conn.connection.driver_connection.cursor()
    written = 0
    try:
        for chunk in table.to_batches(max_chunksize=chunk_rows):
            literals = {
                name: lit
                for name in DECISION_COLUMNS[1:]  # decision_id always varies: keep it bound
                if (lit := _sqlite_constant_literal(chunk.column(name))) is not None
            }
            stmt = (
                sqlite_dialect.insert(decision_telemetry)
                .values(
                    {
                        name: sa.literal_column(literals[name])
                        if name in literals
                        else sa.bindparam(name)
                        for name in DECISION_COLUMNS
                    }
                )
                .on_conflict_do_nothing(index_elements=["decision_id"])
            )
            compiled = stmt.compile(dialect=conn.dialect)
            cols = [_sqlite_values(chunk.column(name)) for name in compiled.positiontup or ()]
            cursor.executemany(str(compiled), zip(*cols, strict=True))
            written += max(cursor.rowcount, 0)
    finally:
        cursor.close()
    return written


def insert_postgres(conn: sa.Connection, table: pa.Table, chunk_rows: int) -> int:
    """CSV COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING."""
    col_list = ", ".join(DECISION_COLUMNS)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {LOAD_TABLE} (LIKE {decision_telemetry.name}) ON COMMIT DROP"
    )
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        with cur.copy(f"COPY {LOAD_TABLE} ({col_list}) FROM STDIN (FORMAT csv)") as copy:
            for chunk in table.to_batches(max_chunksize=chunk_rows):
                buf = io.BytesIO()
                pa_csv.write_csv(chunk, buf, options)
                copy.write(buf.getbuffer())
    load = sa.table(LOAD_TABLE, *(sa.column(c) for c in DECISION_COLUMNS))
    stmt = (
        pg_dialect.insert(decision_telemetry)
        .from_select(list(DECISION_COLUMNS), sa.select(*load.c))
        .on_conflict_do_nothing(index_elements=["decision_id"])
    )
    return conn.execute(stmt, execution_options={"preserve_rowcount": True}).rowcount


def _sqlite_constant_literal(values: pa.Array) -> str | None:
    """A SQL literal when every value of this chunk is the same non-null string, bool or int.

    Strings are quoted the SQLite way (the only escape is a doubled single quote; backslashes
    mean nothing), and strings holding NUL are left to binding.
    """
    if len(values) == 0 or values.null_count:
        return None
    kind = values.type
    if not (pa.types.is_string(kind) or pa.types.is_boolean(kind) or pa.types.is_integer(kind)):
        return None
    first = values[0]
    if not pc.all(pc.equal(values, first)).as_py():
        return None
    value = first.as_py()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if "\x00" in value:
        return None
    return "'" + value.replace("'", "''") + "'"


def _sqlite_values(values: pa.Array) -> list[Any]:
    """Python values as sqlite3 binds them fastest: timestamps as epoch microseconds (the
    stored form) and bools as 0/1 ints (sqlite3 binds exact ints directly but looks up an
    adapter for every bool, ~25 % slower)."""
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.int64())
    elif pa.types.is_boolean(values.type):
        values = values.cast(pa.int8())
    return values.to_pylist()


def read_schema(columns: Sequence[str]) -> pa.Schema:
    """The record schema narrowed to ``columns``, keeping its version metadata."""
    return pa.schema(
        [DECISION_ARROW_SCHEMA.field(c) for c in columns], metadata=DECISION_ARROW_SCHEMA.metadata
    )


def sqlite_batches(
    raw: sqlite3.Connection, sql: str, params: list[Any], schema: pa.Schema, batch_rows: int
) -> Iterator[pa.Table]:
    cursor = raw.cursor()
    try:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(batch_rows):
            arrays = []
            for field, values in zip(schema, zip(*rows, strict=True), strict=True):
                if pa.types.is_timestamp(field.type):
                    arr = pa.array(values, pa.int64()).cast(field.type)
                elif pa.types.is_boolean(field.type):
                    arr = pa.array(values, pa.int8()).cast(pa.bool_())
                else:
                    arr = pa.array(values, field.type)
                arrays.append(arr)
            yield pa.Table.from_arrays(arrays, schema=schema)
    finally:
        cursor.close()


class _CopyStream(io.RawIOBase):
    """A read-only file over a psycopg COPY TO STDOUT, for Arrow's streaming CSV reader."""

    def __init__(self, copy: Any) -> None:
        self._copy = copy
        self._buf = memoryview(b"")
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        """Fill ``target`` as far as the stream allows: psycopg hands out one row per ``read()``,
        and Arrow asks for whole blocks, so short reads would cost one Python call per row."""
        view = memoryview(target).cast("B")
        filled = 0
        while filled < len(view):
            if not self._buf:
                chunk = self._copy.read()
                if not chunk:
                    break
                self._buf = memoryview(chunk)
            n = min(len(view) - filled, len(self._buf))
            view[filled : filled + n] = self._buf[:n]
            self._buf = self._buf[n:]
            filled += n
        self.bytes_read += filled
        return filled


def postgres_batches(
    raw: Any, sql: str, params: Mapping[str, Any], schema: pa.Schema, batch_rows: int
) -> Iterator[pa.Table]:
    """Stream ``COPY (query) TO STDOUT`` CSV into Arrow. PostgreSQL writes NULL as an unquoted
    empty field and an empty string as ``""``: the convert options keep the two apart."""
    read_types = {f.name: pa.int64() if pa.types.is_timestamp(f.type) else f.type for f in schema}
    convert = pa_csv.ConvertOptions(
        column_types=read_types,
        null_values=[""],  # never "NULL"/"NaN"/"N/A": those are real strings (or float NaN)
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )
    # ~400 bytes per decision row: a block of this size holds about ``batch_rows`` rows.
    read = pa_csv.ReadOptions(
        column_names=schema.names, use_threads=False, block_size=max(1 << 16, batch_rows * 400)
    )
    with raw.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
        stream = _CopyStream(copy)
        try:
            reader = pa_csv.open_csv(stream, read_options=read, convert_options=convert)
        except pa.ArrowInvalid:
            if stream.bytes_read == 0:  # no rows: Arrow calls an empty CSV invalid
                return
            raise
        for batch in reader:
            table = pa.Table.from_batches([batch])
            for i, f in enumerate(schema):
                if pa.types.is_timestamp(f.type):
                    table = table.set_column(i, f, table.column(i).cast(f.type))
            yield table.cast(schema)
