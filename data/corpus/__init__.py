"""Load a query corpus, validate every row, quarantine the bad ones, and stream the rest by day.

Why this shape: a pilot replays a week of traffic one UTC day at a time, and the corpus may be
bigger than memory and not sorted by day. So one pass reads the file in record batches, checks
each row once, writes accepted rows into a day-partitioned parquet dataset under a work dir
(``accepted/day=YYYY-MM-DD/part-N.parquet``) and bad rows into a quarantine parquet file; after
that, ``iter_days`` reads one day at a time. Memory is bounded by a batch during the pass and by
one day afterwards; the only whole-file state is 16 bytes per accepted query id (a 64-bit hash
and its row number) for duplicate detection.

Row rules (first failing rule wins; each bad row becomes one quarantine row, never dropped):
``invalid_encoding`` (any column not valid UTF-8 / a lone surrogate), ``malformed_row`` (the
record cannot be split into fields or a JSON value has an impossible type), ``missing_query_id``,
``invalid_value`` (a NUL character or over 512 characters in ``query_id``, ``tenant`` or
``served_model``: the telemetry store could not hold it), ``missing_text``, ``empty_text``
(whitespace only), ``text_too_long`` (> 100,000 characters; a physical line over 2 MiB is
skipped without being held whole), ``unparseable_ts``, ``invalid_label``, ``duplicate_query_id``
(the first accepted occurrence wins; a row whose id was seen only on a quarantined row is
accepted).

Runaway CSV quotes: a record spanning several lines whose later lines look like records of
this file (the header's field count and a timestamp in ``ts``) is an unmatched ``"``: its first
line is quarantined (``malformed_row``, with the line number) and the following lines are read
again as records, so one stray quote never swallows the rest of the file. A record over
``RECORD_LIMIT`` characters is quarantined the same way.

Row numbers are 1-based data rows: parquet row index + 1; CSV record number after the header
(a record may span lines; blank lines are not records); JSONL line number (blank lines are
skipped but keep their number). In CSV an empty field is a missing value.

Whole-file problems (not found, unreadable, unknown extension, missing required column, a
column of an impossible type) raise ``CorpusError`` naming the file and the column. Column
names are shown only when they look like names: a headerless CSV's first row is query text.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import shutil
import tempfile
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from router.decision import DOMAINS, LEVELS

TEXT_LIMIT = 100_000  # characters
ID_LIMIT = 512  # characters in query_id / tenant / served_model (a PostgreSQL key must fit a page)
# A physical line over LINE_LIMIT_BYTES cannot hold an acceptable row (100k characters are at most
# 1.2 MB even as JSON surrogate-pair escapes): it is skipped in 1 MiB reads, never held whole.
LINE_LIMIT_BYTES = 2 * 1024 * 1024
RECORD_LIMIT = 4 * TEXT_LIMIT  # characters in one CSV record (all its lines)
BATCH_ROWS = 65_536
DEFAULT_TENANT = "default"
REQUIRED_COLUMNS: tuple[str, ...] = ("query_id", "ts", "text")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "tenant",
    "user_id",
    "expected_level",
    "expected_domain",
    "served_model",
)
STRING_COLUMNS: tuple[str, ...] = ("query_id", "text", *OPTIONAL_COLUMNS)
FORMATS: tuple[str, ...] = ("parquet", "csv", "jsonl")
EXTENSIONS: dict[str, str] = {  # file name ending -> format
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson.gz": "jsonl",
}
US_PER_DAY = 86_400_000_000
_MIN_EPOCH_S = 0  # 1970-01-01
_MAX_EPOCH_S = 7_258_118_400  # 2200-01-01: larger numbers are usually milliseconds
# Seconds beyond this overflow int64 microseconds (garbage that could land in range): refused.
_MAX_ABS_EPOCH_S = 1e12
_LEVEL_SET = frozenset(lvl.value for lvl in LEVELS)
_DOMAIN_SET = frozenset(d.value for d in DOMAINS)

TS_TYPE = pa.timestamp("us", tz="UTC")
ACCEPTED_SCHEMA = pa.schema(
    [
        pa.field("query_id", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("tenant", pa.string(), nullable=False),
        pa.field("user_hash", pa.string()),
        pa.field("expected_level", pa.string()),
        pa.field("expected_domain", pa.string()),
        pa.field("served_model", pa.string()),
        pa.field("row_number", pa.int64(), nullable=False),
    ]
)
# The quarantine file is an output of the run, so it never holds query text: the row number
# finds the row in the corpus, and a hash and a length identify the text. No user_id either.
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("row_number", pa.int64(), nullable=False),
        pa.field("query_id", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("text_hash", pa.string()),
        pa.field("text_chars", pa.int64()),
    ]
)


class Reason(StrEnum):
    """Why a row was quarantined; the value is the stable code stored in the quarantine file."""

    INVALID_ENCODING = "invalid_encoding"
    MALFORMED_ROW = "malformed_row"
    MISSING_QUERY_ID = "missing_query_id"
    INVALID_VALUE = "invalid_value"
    MISSING_TEXT = "missing_text"
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LONG = "text_too_long"
    UNPARSEABLE_TS = "unparseable_ts"
    INVALID_LABEL = "invalid_label"
    DUPLICATE_QUERY_ID = "duplicate_query_id"


REASONS: tuple[Reason, ...] = tuple(Reason)


class CorpusError(Exception):
    """The file as a whole cannot be used; the message names the file and what to fix."""


# --------------------------------------------------------------------------------------------
# Reading: each reader yields chunks of rows whose strings are valid UTF-8, plus the rows it
# rejected itself (bad encoding, malformed records).
# --------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Reject:
    row_number: int
    query_id: str | None
    reason: Reason
    detail: str
    text: str | None


@dataclass(slots=True)
class _Chunk:
    row_number: np.ndarray  # int64, 1-based
    columns: dict[str, pa.Array]  # only the columns the file has
    rejects: list[_Reject] = field(default_factory=list)


def _safe(value: Any) -> str | None:
    """A printable, valid-UTF-8 rendering of a value that may hold lone surrogates."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    s = value if isinstance(value, str) else str(value)
    try:  # bytes smuggled in by surrogateescape (CSV, JSONL): show the original bytes
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a real lone surrogate, e.g. a JSON "\\ud800" escape
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


def _short(value: Any, limit: int = 40, shape: re.Pattern[str] | None = None) -> str:
    """The value for a quarantine detail; when ``shape`` is given and the value does not fit
    it (it may be query text in the wrong column), only its length."""
    s = _safe(value) or ""
    if shape is not None and not shape.fullmatch(s):
        return f"({len(s):,} characters)"
    return repr(s if len(s) <= limit else s[:limit] + "...")


_TS_SHAPE = re.compile(r"[0-9TtZz:+\-./ ]{1,40}")
_LABEL_SHAPE = re.compile(r"[\w-]{1,32}")


def _is_valid_utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _strings_from_python(values: list[Any]) -> tuple[pa.Array, np.ndarray]:
    """An Arrow string column from Python values, and a mask of values that were not valid
    Unicode (nulled in the column)."""
    try:
        return pa.array(values, pa.string()), np.zeros(len(values), dtype=bool)
    except (UnicodeEncodeError, pa.ArrowInvalid, pa.ArrowTypeError):
        bad = np.array([isinstance(v, str) and not _is_valid_utf8(v) for v in values])
        clean = [None if b else v for v, b in zip(values, bad, strict=True)]
        return pa.array(clean, pa.string()), bad


def _strings_from_arrow(arr: pa.Array, path: Path, name: str) -> tuple[pa.Array, np.ndarray]:
    """A valid-UTF-8 string column from a parquet column, and a mask of invalid values."""
    typ = arr.type
    if pa.types.is_dictionary(typ):
        arr = arr.dictionary_decode()
        typ = arr.type
    n = len(arr)
    if pa.types.is_integer(typ) and name != "text":
        return pc.cast(arr, pa.string()), np.zeros(n, dtype=bool)
    if pa.types.is_null(typ):
        return pa.nulls(n, pa.string()), np.zeros(n, dtype=bool)
    if not (
        pa.types.is_string(typ)
        or pa.types.is_large_string(typ)
        or pa.types.is_binary(typ)
        or pa.types.is_large_binary(typ)
    ):
        raise CorpusError(f"{path}: column {name!r} has type {typ}; expected a string column")
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        try:
            arr.validate(full=True)
            return pc.cast(arr, pa.string()), np.zeros(n, dtype=bool)
        except pa.ArrowInvalid:
            pass
    raw = pc.cast(arr, pa.large_binary())
    values = raw.to_pylist()
    bad = np.zeros(n, dtype=bool)
    for i, b in enumerate(values):
        if b is not None:
            try:
                b.decode("utf-8")
            except UnicodeDecodeError:
                bad[i] = True
    if bad.any():
        raw = pc.if_else(pa.array(bad), pa.nulls(n, pa.large_binary()), raw)
    return pc.cast(raw, pa.string()), bad


def _encoding_rejects(
    row_numbers: np.ndarray,
    bad_by_column: dict[str, np.ndarray],
    raw_query_id: Callable[[int], Any],
    raw_text: Callable[[int], Any],
) -> tuple[np.ndarray, list[_Reject]]:
    """Rows with any invalid-encoding column: a keep-mask and their quarantine rows."""
    n = row_numbers.size
    any_bad = np.zeros(n, dtype=bool)
    for bad in bad_by_column.values():
        any_bad |= bad
    rejects = []
    for i in np.flatnonzero(any_bad):
        cols = [c for c, bad in bad_by_column.items() if bad[i]]
        rejects.append(
            _Reject(
                int(row_numbers[i]),
                _safe(raw_query_id(i)),
                Reason.INVALID_ENCODING,
                f"column(s) {', '.join(cols)} not valid UTF-8 (invalid bytes or a lone "
                "surrogate); shown with backslash escapes",
                _safe(raw_text(i)),
            )
        )
    return ~any_bad, rejects


def _take(columns: dict[str, pa.Array], keep: np.ndarray) -> dict[str, pa.Array]:
    if keep.all():
        return columns
    mask = pa.array(keep)
    return {name: arr.filter(mask) for name, arr in columns.items()}


def _open_binary(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")  # noqa: SIM115


def _read_parquet(path: Path, batch_rows: int) -> Iterator[_Chunk]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(f"cannot read {path} as parquet: {exc}") from exc
    names = pf.schema_arrow.names
    _check_required(path, names)
    wanted = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in names]
    first = 1
    try:
        for batch in pf.iter_batches(batch_size=batch_rows, columns=wanted):
            n = batch.num_rows
            rows = np.arange(first, first + n, dtype=np.int64)
            first += n
            columns: dict[str, pa.Array] = {}
            bad_by_col: dict[str, np.ndarray] = {}
            raw: dict[str, pa.Array] = {}
            for name in wanted:
                arr = batch.column(name)
                if name == "ts" and not (
                    pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
                ):
                    columns[name] = arr
                    continue
                columns[name], bad = _strings_from_arrow(arr, path, name)
                if bad.any():
                    bad_by_col[name] = bad
                    raw[name] = arr
            rejects: list[_Reject] = []
            if bad_by_col:

                def raw_value(name: str, i: int, raw=raw, columns=columns) -> Any:
                    if name in raw:
                        return pc.cast(raw[name], pa.large_binary())[i].as_py()
                    return columns[name][i].as_py()

                keep, rejects = _encoding_rejects(
                    rows,
                    bad_by_col,
                    lambda i: raw_value("query_id", i),
                    lambda i: raw_value("text", i),
                )
                columns, rows = _take(columns, keep), rows[keep]
            yield _Chunk(rows, columns, rejects)
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(f"cannot read {path} as parquet (near data row {first}): {exc}") from exc


_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def describe_columns(names: Iterable[Any]) -> str:
    """Column names for an error message, only when every one looks like a name.

    A headerless CSV's "header" is its first row of query text, so otherwise the message gives
    the count and the positions that are not names, never the values.
    """
    present = [str(c) for c in names]
    if not present:
        return "no columns"
    odd = [i for i, c in enumerate(present, 1) if not _COLUMN_NAME.fullmatch(c.strip())]
    if not odd:
        return f"found columns: {', '.join(repr(c) for c in present)}"
    where = ", ".join(str(i) for i in odd[:10]) + (", ..." if len(odd) > 10 else "")
    return (
        f"found {len(present)} column(s); value(s) at position(s) {where} do not look like "
        "column names (not shown: is the header row missing?)"
    )


def _check_required(path: Path, names: Iterable[str]) -> None:
    present = list(names)
    for col in REQUIRED_COLUMNS:
        if col not in present:
            raise CorpusError(
                f"{path}: required column {col!r} is missing; {describe_columns(present)}; "
                f"required: {', '.join(REQUIRED_COLUMNS)}"
            )


def _python_chunk(
    path: Path,
    rows: list[int],
    data: dict[str, list[Any]],
    rejects: list[_Reject],
) -> _Chunk:
    """Build a chunk from Python column lists (CSV, JSONL), catching invalid Unicode."""
    row_numbers = np.array(rows, dtype=np.int64)
    columns: dict[str, pa.Array] = {}
    bad_by_col: dict[str, np.ndarray] = {}
    for name, values in data.items():
        if name == "ts":
            columns[name] = _ts_from_python(values)
            continue
        columns[name], bad = _strings_from_python(values)
        if bad.any():
            bad_by_col[name] = bad
    if bad_by_col:
        keep, enc = _encoding_rejects(
            row_numbers,
            bad_by_col,
            lambda i: data["query_id"][i],
            lambda i: data["text"][i],
        )
        columns, row_numbers = _take(columns, keep), row_numbers[keep]
        rejects = sorted([*rejects, *enc], key=lambda r: r.row_number)
    return _Chunk(row_numbers, columns, rejects)


def _ts_from_python(values: list[Any]) -> pa.Array:
    """All numbers -> float64 (epoch seconds); otherwise strings (numbers as their text)."""
    if values and all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values
    ):
        return pa.array(values, pa.float64())
    out = [v if v is None or isinstance(v, str) else repr(v) for v in values]
    return _strings_from_python(out)[0]


class _OverlongLine(Exception):
    """A physical line over ``LINE_LIMIT_BYTES``; it was skipped, not read whole."""

    def __init__(self, line_no: int, size: int) -> None:
        super().__init__(line_no, size)
        self.line_no, self.size = line_no, size


class _RecordTooLong(Exception):
    """One CSV record passed ``RECORD_LIMIT`` characters."""


def bounded_lines(
    raw: io.BufferedIOBase, limit: int = LINE_LIMIT_BYTES, *, universal: bool = False
) -> Iterator[bytes | int]:
    """Physical lines as bytes; a line over ``limit`` bytes is dropped as it is read (1 MiB at
    a time) and its size (an int) is yielded instead, so memory stays bounded per line.
    ``universal``: a bare ``\\r`` also ends a line (old Mac CSV), as in Python's text mode."""
    if not universal:
        while True:
            line = raw.readline(limit + 1)
            if not line:
                return
            if len(line) <= limit or line.endswith(b"\n"):
                yield line
                continue
            size = len(line)
            while True:
                piece = raw.readline(1 << 20)
                size += len(piece)
                if not piece or piece.endswith(b"\n"):
                    break
            yield size
    buf = b""
    skipped = 0  # bytes of an over-long line read so far (and dropped)
    eof = False
    while not eof:
        chunk = raw.read(1 << 20)
        eof = not chunk
        lines = (buf + chunk).splitlines(keepends=True)  # bytes: only \n, \r\n and \r
        # The last piece may be cut mid-line, or be the \r of a \r\n split across reads.
        buf = b"" if eof or not lines or lines[-1].endswith(b"\n") else lines.pop()
        for line in lines:
            if skipped or len(line) > limit:
                yield skipped + len(line)
                skipped = 0
            else:
                yield line
        if len(buf) > limit:
            skipped += len(buf)
            buf = b""
    if skipped:
        yield skipped


class _CsvLines:
    """The physical lines csv.reader parses, with the current record's lines kept (at most
    ``RECORD_LIMIT`` characters) so a runaway quoted field can be re-read line by line."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self._src = bounded_lines(raw, universal=True)
        self._pending: deque[tuple[int, str]] = deque()
        self.held: list[tuple[int, str]] = []
        self._held_chars = 0
        self.line_no = 0  # the last physical line read from the file

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        if self._pending:
            n, text = self._pending.popleft()
        else:
            item = next(self._src)
            self.line_no = n = self.line_no + 1
            if item.__class__ is int:
                raise _OverlongLine(n, item)  # type: ignore[arg-type]
            text = item.decode("utf-8", "surrogateescape")  # type: ignore[union-attr]
            if n == 1:
                text = text.removeprefix("\ufeff")
        self.held.append((n, text))
        self._held_chars += len(text)
        if self._held_chars > RECORD_LIMIT:
            raise _RecordTooLong
        return text

    def start_record(self) -> None:
        self.held, self._held_chars = [], 0

    @property
    def first_line(self) -> int:
        return self.held[0][0] if self.held else self.line_no + 1

    def reread_after_first(self) -> None:
        """Read the current record's lines after its first again, as new records."""
        self._pending.extendleft(reversed(self.held[1:]))
        self.start_record()


_TS_LIKE = re.compile(r"\s*(\d{4}-\d{2}-\d{2}|[+-]?\d{9,11}(\.\d+)?\s*$)")


def _read_csv(path: Path, batch_rows: int) -> Iterator[_Chunk]:
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    try:
        raw = _open_binary(path)
    except OSError as exc:
        raise CorpusError(f"cannot open {path}: {exc}") from exc
    with raw:
        lines = _CsvLines(raw)
        reader = csv.reader(lines)
        try:
            header = next(reader)
        except StopIteration:
            raise CorpusError(f"{path}: the file is empty; expected a CSV header row") from None
        except (_OverlongLine, _RecordTooLong):
            raise CorpusError(
                f"{path}: the first record is over {RECORD_LIMIT:,} characters; expected a CSV "
                "header row"
            ) from None
        except (csv.Error, OSError, EOFError) as exc:
            raise CorpusError(f"cannot read {path} as CSV: {exc}") from exc
        header = [h.strip() for h in header]
        _check_required(path, header)
        for name in set(header):
            if header.count(name) > 1 and name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS):
                raise CorpusError(f"{path}: column {name!r} appears more than once in the header")
        wanted = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in header]
        index = {c: header.index(c) for c in wanted}
        width = len(header)
        ts_at = index["ts"]

        def looks_like_record(line: str) -> bool:
            if line.count(",") < width - 1:  # cheap: most text lines have fewer commas
                return False
            try:
                fields = next(csv.reader([line]))
            except (csv.Error, StopIteration):
                return False
            return len(fields) == width and bool(_TS_LIKE.match(fields[ts_at]))

        rows: list[int] = []
        data: dict[str, list[Any]] = {c: [] for c in wanted}
        rejects: list[_Reject] = []
        record = 0
        errors_in_a_row = 0

        def reject(reason: Reason, detail: str, qid: Any = None, text: Any = None) -> None:
            nonlocal record
            record += 1
            rejects.append(_Reject(record, qid, reason, detail, text))

        while True:
            lines.start_record()
            try:
                fields = next(reader)
            except StopIteration:
                break
            except _OverlongLine as exc:
                reject(
                    Reason.TEXT_TOO_LONG,
                    f"line {exc.line_no} has {exc.size:,} bytes (limit {LINE_LIMIT_BYTES:,}); "
                    "skipped without reading it whole",
                )
                continue
            except _RecordTooLong:
                first = lines.first_line
                runaway = any(looks_like_record(t) for _, t in lines.held[1:])
                lines.reread_after_first()
                reject(
                    Reason.MALFORMED_ROW if runaway else Reason.TEXT_TOO_LONG,
                    f"the record starting at line {first} runs over {RECORD_LIMIT:,} characters"
                    + (" (an unmatched '\"'?)" if runaway else "")
                    + "; its later lines are read again as records",
                )
                continue
            except csv.Error as exc:
                errors_in_a_row += 1
                if errors_in_a_row > 1000:
                    raise CorpusError(
                        f"cannot read {path} as CSV: 1000 consecutive unparseable records "
                        f"(last near line {lines.line_no}): {exc}"
                    ) from exc
                reject(
                    Reason.MALFORMED_ROW,
                    f"CSV record could not be parsed (near line {lines.line_no}): {exc}",
                )
                continue
            except (OSError, EOFError) as exc:
                raise CorpusError(f"cannot read {path} (near line {lines.line_no}): {exc}") from exc
            errors_in_a_row = 0
            if not fields:
                continue
            held = lines.held
            if len(held) > 1 and any(looks_like_record(t) for _, t in held[1:]):
                first, last = held[0][0], held[-1][0]
                lines.reread_after_first()
                reject(
                    Reason.MALFORMED_ROW,
                    f"a quoted field opened on line {first} runs to line {last} over lines that "
                    "look like records (an unmatched '\"'?); line "
                    f"{first} is quarantined and the next lines are read again as records",
                )
                continue
            end_line = held[-1][0] if held else lines.line_no
            if len(fields) != width:
                reject(
                    Reason.MALFORMED_ROW,
                    f"expected {width} fields as in the header, found {len(fields)} "
                    f"(ends at line {end_line})",
                    _safe(fields[index["query_id"]]) if index["query_id"] < len(fields) else None,
                    # The raw record is kept only when it cannot hold a user id.
                    None if "user_id" in index else _safe(",".join(fields)),
                )
                continue
            record += 1
            rows.append(record)
            for c, i in index.items():
                v = fields[i]
                data[c].append(v if v != "" else None)
            if len(rows) >= batch_rows:
                yield _python_chunk(path, rows, data, rejects)
                rows, data, rejects = [], {c: [] for c in wanted}, []
        if rows or rejects:
            yield _python_chunk(path, rows, data, rejects)


# JSON value types each column may hold; anything else is a malformed row.
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "query_id": (str, int),
    "ts": (str, int, float),
    "text": (str,),
    "tenant": (str, int),
    "user_id": (str, int),
    "expected_level": (str,),
    "expected_domain": (str,),
    "served_model": (str,),
}


_JSON_NAMES: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}


def _allowed(types: tuple[type, ...]) -> str:
    if float in types:
        return "a string or a number"
    return "a string or an integer" if int in types else "a string"


def _read_jsonl(path: Path, batch_rows: int) -> Iterator[_Chunk]:
    try:
        raw = _open_binary(path)
    except OSError as exc:
        raise CorpusError(f"cannot open {path}: {exc}") from exc
    wanted = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    seen_keys: set[str] = set()
    checked = False
    rows: list[int] = []
    objs: list[dict] = []
    rejects: list[_Reject] = []

    def flush() -> _Chunk:
        nonlocal checked
        present = [c for c in wanted if c in seen_keys]
        if objs and not checked:
            _check_required(path, sorted(seen_keys))
            checked = True
        data = {c: [o.get(c) for o in objs] for c in present}
        for c in ("query_id", "tenant", "user_id"):  # the columns that may hold JSON numbers
            if c in data:
                data[c] = [v if v is None or isinstance(v, str) else str(v) for v in data[c]]
        for c in REQUIRED_COLUMNS:
            data.setdefault(c, [None] * len(objs))
        return _python_chunk(path, rows, data, rejects)

    malformed = 0
    with raw:
        line_no = 0
        try:
            for line in bounded_lines(raw):
                line_no += 1
                if isinstance(line, int):
                    malformed += 1
                    rejects.append(
                        _Reject(
                            line_no,
                            None,
                            Reason.TEXT_TOO_LONG,
                            f"line has {line:,} bytes (limit {LINE_LIMIT_BYTES:,}); skipped "
                            "without reading it whole",
                            None,
                        )
                    )
                    continue
                if line.startswith(b"\xef\xbb\xbf") and line_no == 1:
                    line = line[3:]
                if not line.strip():
                    continue
                text = line.decode("utf-8", "surrogateescape")
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    malformed += 1
                    rejects.append(
                        _Reject(
                            line_no,
                            None,
                            Reason.MALFORMED_ROW,
                            f"not valid JSON: {exc.msg} at column {exc.colno}",
                            _raw_line_if_no_user(text),
                        )
                    )
                    continue
                except (RecursionError, ValueError) as exc:  # nested 100k deep; huge integers
                    malformed += 1
                    why = "nested too deeply" if isinstance(exc, RecursionError) else "a number"
                    rejects.append(
                        _Reject(
                            line_no,
                            None,
                            Reason.MALFORMED_ROW,
                            f"not usable JSON: {why} beyond what the loader reads",
                            None,
                        )
                    )
                    continue
                problem = _json_problem(obj)
                if problem:
                    malformed += 1
                    qid = obj.get("query_id") if isinstance(obj, dict) else None
                    rejects.append(
                        _Reject(
                            line_no,
                            _safe(qid) if isinstance(qid, str | int) else None,
                            Reason.MALFORMED_ROW,
                            problem,
                            obj.get("text")
                            if isinstance(obj, dict)
                            else _raw_line_if_no_user(text),
                        )
                    )
                    continue
                seen_keys.update(obj.keys())
                rows.append(line_no)
                objs.append(obj)
                if len(rows) >= batch_rows:
                    yield flush()
                    rows, objs, rejects = [], [], []
        except (OSError, EOFError) as exc:
            raise CorpusError(f"cannot read {path} (near line {line_no}): {exc}") from exc
        if rows or rejects:
            yield flush()
        if not checked:
            if line_no == 0:
                raise CorpusError(f"{path}: the file is empty; expected one JSON object per line")
            if not seen_keys and malformed:
                raise CorpusError(
                    f"{path}: none of its {malformed:,} non-blank lines is a JSON object; "
                    "expected JSONL (one JSON object per line)"
                )
            _check_required(path, sorted(seen_keys))


def _raw_line_if_no_user(line: str) -> str | None:
    """A malformed line is kept in quarantine only when it cannot hold a raw user id."""
    return None if "user_id" in line else _safe(line.rstrip("\r\n"))


def _json_problem(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return (
            f"a JSON {_JSON_NAMES.get(type(obj), 'value')}, expected an object with "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )
    for name, types in _JSON_TYPES.items():
        v = obj.get(name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, types):
            return f"{name} is a JSON {_JSON_NAMES[type(v)]}; expected {_allowed(types)}"
        if isinstance(v, float) and not math.isfinite(v):
            return f"{name} is not a finite number"
    return None


_READERS: dict[str, Callable[[Path, int], Iterator[_Chunk]]] = {
    "parquet": _read_parquet,
    "csv": _read_csv,
    "jsonl": _read_jsonl,
}


def format_of(path: str | Path) -> str | None:
    """The format a file name's ending names (``.csv.gz`` is CSV), or None."""
    name = Path(path).name.lower()
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return EXTENSIONS[ext]
    return None


def detect_format(path: str | Path, format: str | None = None) -> str:
    """The corpus format: ``format`` when given, else from the extension."""
    p = Path(path)
    if format is not None:
        fmt = format.lower()
        if fmt not in FORMATS:
            raise CorpusError(f"{p}: unknown format {format!r}; valid: {', '.join(FORMATS)}")
        return fmt
    fmt = format_of(p)
    if fmt is not None:
        return fmt
    raise CorpusError(
        f"cannot tell the format of {p} from its extension {p.suffix or '(none)'!r}; use one "
        f"of {', '.join(EXTENSIONS)} or pass format= ({', '.join(FORMATS)})"
    )


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
def _np(arr: pa.Array) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False)


def parse_ts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds since the epoch (int64) and a validity mask.

    Accepts timestamps (naive ones are UTC), dates, epoch-second numbers, and strings holding
    ISO-8601 (any offset; naive is UTC) or epoch seconds. Values outside 1970..2199 are
    invalid: an epoch in milliseconds is the usual culprit.
    """
    n = len(arr)
    typ = arr.type
    zeros = np.zeros(n, dtype=np.int64)
    if pa.types.is_dictionary(typ):
        arr, typ = arr.dictionary_decode(), arr.type.value_type
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        if pa.types.is_date(typ):
            arr = pc.cast(arr, pa.timestamp("s"))
        us = pc.cast(arr, pa.timestamp("us", tz=arr.type.tz), safe=False)
        values = _np(pc.cast(us, pa.int64()).fill_null(0)).astype(np.int64)
        valid = ~_np(us.is_null()).astype(bool)
    elif pa.types.is_integer(typ) or pa.types.is_floating(typ):
        secs = _np(pc.cast(arr, pa.float64()).fill_null(np.nan)).astype(np.float64)
        valid = np.isfinite(secs) & (np.abs(secs) < _MAX_ABS_EPOCH_S)
        values = np.round(np.where(valid, secs, 0) * 1e6).astype(np.int64)
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        values, valid = _parse_ts_strings(arr)
    else:
        return zeros, np.zeros(n, dtype=bool)
    lo, hi = _MIN_EPOCH_S * 10**6, _MAX_EPOCH_S * 10**6
    valid &= (values >= lo) & (values < hi)
    return np.where(valid, values, 0), valid


def _parse_ts_strings(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    s = pc.utf8_trim_whitespace(arr)
    n = len(s)
    values = np.zeros(n, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    numeric = _np(pc.match_substring_regex(s, r"^[+-]?\d+(\.\d+)?$").fill_null(False)).astype(bool)
    if numeric.any():
        idx = np.flatnonzero(numeric)
        secs = _np(pc.cast(s.filter(pa.array(numeric)), pa.float64())).astype(np.float64)
        ok = np.isfinite(secs) & (np.abs(secs) < _MAX_ABS_EPOCH_S)
        values[idx] = np.where(ok, np.round(np.where(ok, secs, 0) * 1e6), 0).astype(np.int64)
        valid[idx] = ok
    rest = ~numeric & ~_np(s.is_null()).astype(bool)
    if rest.any():
        idx = np.flatnonzero(rest)
        texts = pd.Series(_np(s.filter(pa.array(rest))), dtype=object)
        parsed = pd.to_datetime(texts, format="ISO8601", utc=True, errors="coerce")
        ok = ~parsed.isna().to_numpy()
        as_arrow = pc.cast(pa.Array.from_pandas(parsed), TS_TYPE, safe=False)
        us = _np(pc.cast(as_arrow, pa.int64()).fill_null(0)).astype(np.int64)
        values[idx] = np.where(ok, us, 0)
        valid[idx] = ok
    return values, valid


@dataclass(slots=True)
class _SeenIds:
    """Accepted query ids as sorted 64-bit hashes with their row numbers: 16 bytes per id.

    A 64-bit collision (probability ~n^2 / 2^65: 3e-8 for a million ids) would quarantine a
    unique row as a duplicate; that row would still be in the quarantine file, never lost.
    """

    runs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Row number of the accepted id with each hash, or 0."""
        found = np.zeros(hashes.size, dtype=np.int64)
        for keys, rows in self.runs:
            pos = np.searchsorted(keys, hashes)
            pos_c = np.minimum(pos, keys.size - 1)
            hit = (pos < keys.size) & (keys[pos_c] == hashes) & (found == 0)
            found[hit] = rows[pos_c[hit]]
        return found

    def add(self, hashes: np.ndarray, rows: np.ndarray) -> None:
        if hashes.size == 0:
            return
        order = np.argsort(hashes, kind="stable")
        self.runs.append((hashes[order], rows[order]))
        # Merge runs of similar size (a binary counter): O(log n) runs, O(n log n) total work.
        while len(self.runs) > 1 and self.runs[-2][0].size <= 2 * self.runs[-1][0].size:
            (k2, r2), (k1, r1) = self.runs.pop(), self.runs.pop()
            self.runs.append(_merge_sorted(k1, r1, k2, r2))


def _merge_sorted(
    k1: np.ndarray, r1: np.ndarray, k2: np.ndarray, r2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Merge two sorted runs without a full re-sort (less temporary memory than argsort)."""
    at = np.searchsorted(k1, k2, side="right") + np.arange(k2.size)
    from_first = np.ones(k1.size + k2.size, dtype=bool)
    from_first[at] = False
    keys = np.empty(k1.size + k2.size, dtype=k1.dtype)
    rows = np.empty(k1.size + k2.size, dtype=r1.dtype)
    keys[at], rows[at] = k2, r2
    keys[from_first], rows[from_first] = k1, r1
    return keys, rows


def _hash_ids(ids: pa.Array) -> np.ndarray:
    import pandas as pd

    return pd.util.hash_array(_np(ids).astype(object), categorize=False)


@dataclass(slots=True)
class _Validator:
    hash_key: bytes | None
    seen: _SeenIds = field(default_factory=_SeenIds)

    def check(self, chunk: _Chunk) -> tuple[pa.Table, list[_Reject]]:
        """Accepted rows (ACCEPTED_SCHEMA) and quarantine rows for one chunk."""
        cols = chunk.columns
        rows = chunk.row_number
        n = rows.size
        rejects = list(chunk.rejects)
        if n == 0:
            return ACCEPTED_SCHEMA.empty_table(), rejects
        qid = cols["query_id"]
        text = cols["text"]
        ts_us, ts_ok = parse_ts(cols["ts"])
        text_len = _np(pc.utf8_length(text).fill_null(0)).astype(np.int64)
        missing_qid = _np(pc.equal(pc.utf8_trim_whitespace(qid), "").fill_null(True)).astype(bool)
        missing_text = _np(text.is_null()).astype(bool)
        empty_text = _np(pc.equal(pc.utf8_trim_whitespace(text), "").fill_null(False)).astype(bool)
        level, level_bad = _labels(cols.get("expected_level"), n, upper=True, allowed=_LEVEL_SET)
        domain, domain_bad = _labels(
            cols.get("expected_domain"), n, upper=False, allowed=_DOMAIN_SET
        )
        value_problems = _value_problems(cols, n)
        invalid_value = np.zeros(n, dtype=bool)
        for mask in value_problems.values():
            invalid_value |= mask
        checks = [
            (Reason.MISSING_QUERY_ID, missing_qid),
            (Reason.INVALID_VALUE, invalid_value),
            (Reason.MISSING_TEXT, missing_text),
            (Reason.EMPTY_TEXT, empty_text),
            (Reason.TEXT_TOO_LONG, text_len > TEXT_LIMIT),
            (Reason.UNPARSEABLE_TS, ~ts_ok),
            (Reason.INVALID_LABEL, level_bad | domain_bad),
        ]
        code = np.select([m for _, m in checks], list(range(1, len(checks) + 1)), default=0)
        # Duplicates among rows that pass every other rule, in row order.
        ok_idx = np.flatnonzero(code == 0)
        dup_of = np.zeros(n, dtype=np.int64)
        if ok_idx.size:
            hashes = _hash_ids(qid.take(pa.array(ok_idx)))
            earlier = self.seen.lookup(hashes)
            _uniq, first = np.unique(hashes, return_index=True)
            is_first = np.zeros(ok_idx.size, dtype=bool)
            is_first[first] = True
            # Within the chunk, later copies point at the first copy's row.
            first_row = dict(zip(hashes[first].tolist(), rows[ok_idx[first]].tolist(), strict=True))
            within = ~is_first & (earlier == 0)
            earlier[within] = [first_row[h] for h in hashes[within].tolist()]
            dup_of[ok_idx] = earlier
            new = earlier == 0
            self.seen.add(hashes[new], rows[ok_idx[new]])
        code = np.where((code == 0) & (dup_of > 0), len(checks) + 1, code)
        reasons = [None, *(r for r, _ in checks), Reason.DUPLICATE_QUERY_ID]

        bad_idx = np.flatnonzero(code > 0)
        if bad_idx.size:
            take = pa.array(bad_idx)
            b_qid = qid.take(take).to_pylist()
            b_text = text.take(take).to_pylist()
            b_ts = cols["ts"].take(take).to_pylist()
            b_level = (
                cols["expected_level"].take(take).to_pylist() if "expected_level" in cols else None
            )
            b_dom = (
                cols["expected_domain"].take(take).to_pylist()
                if "expected_domain" in cols
                else None
            )
            for j, i in enumerate(bad_idx):
                reason = reasons[code[i]]
                if reason is Reason.INVALID_VALUE:
                    detail = "; ".join(what for what, m in value_problems.items() if m[i])
                    rejects.append(_Reject(int(rows[i]), None, reason, detail, b_text[j]))
                    continue
                detail = _detail(
                    reason,
                    ts=b_ts[j],
                    length=int(text_len[i]),
                    level=(b_level[j] if b_level is not None and level_bad[i] else None),
                    domain=(b_dom[j] if b_dom is not None and domain_bad[i] else None),
                    dup_of=int(dup_of[i]),
                )
                rejects.append(_Reject(int(rows[i]), b_qid[j], reason, detail, b_text[j]))
        rejects.sort(key=lambda r: r.row_number)

        good = pa.array(code == 0)
        user_id, served = cols.get("user_id"), cols.get("served_model")
        accepted_rows = rows[code == 0]
        accepted = {
            "query_id": qid.filter(good),
            "ts": pa.array(ts_us[code == 0], pa.int64()).cast(TS_TYPE),
            "text": text.filter(good),
            "tenant": _tenant(cols.get("tenant"), n).filter(good),
            "user_hash": (
                pa.nulls(len(accepted_rows), pa.string())
                if user_id is None
                else self._user_hash(user_id.filter(good))
            ),
            "expected_level": level.filter(good),
            "expected_domain": domain.filter(good),
            "served_model": (pa.nulls(n, pa.string()) if served is None else served).filter(good),
            "row_number": pa.array(accepted_rows, pa.int64()),
        }
        return pa.table(accepted, schema=ACCEPTED_SCHEMA), rejects

    def _user_hash(self, user_id: pa.Array) -> pa.Array:
        """Keyed hash of accepted rows' user ids; the raw id never leaves this function."""
        from router.privacy import hash_text

        values = user_id.to_pylist()
        memo = {u: hash_text(u, self.hash_key) for u in set(values) if u is not None}
        return pa.array([None if u is None else memo[u] for u in values], pa.string())


def check_single_row(query_id: str, text: Any) -> tuple[Reason, str] | None:
    """The loader's row rules for one row outside a corpus file (``route --file``): the same
    limits, reason codes and wording; ``None`` when the row is fine. Never quotes the text."""
    if (isinstance(query_id, str) and not _is_valid_utf8(query_id)) or (
        isinstance(text, str) and not _is_valid_utf8(text)
    ):
        return Reason.INVALID_ENCODING, "not valid UTF-8 (invalid bytes or a lone surrogate)"
    if not query_id.strip():
        return Reason.MISSING_QUERY_ID, _detail(Reason.MISSING_QUERY_ID, **_NO_DETAIL)
    problems = _value_problems({"query_id": pa.array([query_id], pa.string())}, 1)
    if problems:
        return Reason.INVALID_VALUE, "; ".join(problems)
    if not isinstance(text, str):
        return Reason.MISSING_TEXT, "text is missing or not a string"
    if not text.strip():
        return Reason.EMPTY_TEXT, _detail(Reason.EMPTY_TEXT, **_NO_DETAIL)
    if len(text) > TEXT_LIMIT:
        return Reason.TEXT_TOO_LONG, _detail(
            Reason.TEXT_TOO_LONG, **{**_NO_DETAIL, "length": len(text)}
        )
    return None


_NO_DETAIL: dict[str, Any] = {"ts": None, "length": 0, "level": None, "domain": None, "dup_of": 0}


def _value_problems(cols: dict[str, pa.Array], n: int) -> dict[str, np.ndarray]:
    """Per problem, the rows whose stored columns the telemetry store would refuse (a NUL:
    PostgreSQL text cannot hold U+0000) or could not index (an id over ``ID_LIMIT``)."""
    out: dict[str, np.ndarray] = {}
    for name in ("query_id", "tenant", "served_model"):
        arr = cols.get(name)
        if arr is None:
            continue
        nul = _np(pc.match_substring(arr, "\x00").fill_null(False)).astype(bool)
        if nul.any():
            out[f"{name} contains a NUL character (U+0000)"] = nul
        long = _np(pc.greater(pc.utf8_length(arr), ID_LIMIT).fill_null(False)).astype(bool)
        if long.any():
            out[f"{name} is over {ID_LIMIT} characters"] = long
    return out


def _tenant(arr: pa.Array | None, n: int) -> pa.Array:
    if arr is None:
        return pa.array([DEFAULT_TENANT] * n, pa.string())
    trimmed = pc.utf8_trim_whitespace(arr)
    blank = pc.or_kleene(pc.is_null(trimmed), pc.equal(trimmed, ""))
    return pc.if_else(blank, DEFAULT_TENANT, trimmed)


def _labels(
    arr: pa.Array | None, n: int, *, upper: bool, allowed: frozenset[str]
) -> tuple[pa.Array, np.ndarray]:
    """Normalised labels (case-insensitive, trimmed; blank means unlabelled) and a bad mask."""
    if arr is None:
        return pa.nulls(n, pa.string()), np.zeros(n, dtype=bool)
    norm = pc.utf8_trim_whitespace(arr)
    norm = pc.utf8_upper(norm) if upper else pc.utf8_lower(norm)
    blank = pc.or_kleene(pc.is_null(norm), pc.equal(norm, ""))
    norm = pc.if_else(blank, pa.scalar(None, pa.string()), norm)
    known = pc.is_in(norm, value_set=pa.array(sorted(allowed), pa.string()))
    bad = _np(pc.and_not(pc.invert(blank), known).fill_null(False)).astype(bool)
    return norm, bad


def _detail(reason: Reason, *, ts: Any, length: int, level: Any, domain: Any, dup_of: int) -> str:
    """A human reason; never contains query text."""
    if reason is Reason.MISSING_QUERY_ID:
        return "query_id is missing or blank"
    if reason is Reason.MISSING_TEXT:
        return "text is missing (null or an empty CSV field)"
    if reason is Reason.EMPTY_TEXT:
        return "text is empty or whitespace only"
    if reason is Reason.TEXT_TOO_LONG:
        return f"text has {length:,} characters; the limit is {TEXT_LIMIT:,}"
    if reason is Reason.UNPARSEABLE_TS:
        if ts is None:
            return "ts is missing"
        return f"ts {_short(ts, shape=_TS_SHAPE)} is not an ISO-8601 timestamp or epoch seconds between 1970 and 2199"
    if reason is Reason.INVALID_LABEL:
        parts = []
        if level is not None:
            parts.append(
                f"expected_level {_short(level, shape=_LABEL_SHAPE)} is not one of {', '.join(sorted(_LEVEL_SET))}"
            )
        if domain is not None:
            parts.append(
                f"expected_domain {_short(domain, shape=_LABEL_SHAPE)} is not one of {', '.join(sorted(_DOMAIN_SET))}"
            )
        return "; ".join(parts)
    if reason is Reason.DUPLICATE_QUERY_ID:
        return f"query_id already accepted at row {dup_of}"
    return reason.value


# --------------------------------------------------------------------------------------------
# Summary and prepared corpus
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorpusSummary:
    """What one validation pass found. ``accepted + quarantined == total_rows`` always."""

    path: str
    format: str
    total_rows: int
    accepted: int
    quarantined: int
    reasons: dict[str, int]  # every reason code, zero included
    rows_per_day: dict[date, int]  # accepted rows per UTC day, whole file
    first_ts: datetime | None
    last_ts: datetime | None
    window: tuple[date, date] | None  # selected days, inclusive
    in_window: int  # accepted rows inside the window
    quarantine_path: str | None
    columns: tuple[str, ...] = ()

    @property
    def days(self) -> list[date]:
        """Days with accepted rows, whole file."""
        return sorted(self.rows_per_day)

    @property
    def labelled(self) -> bool:
        return "expected_level" in self.columns or "expected_domain" in self.columns

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (dates and timestamps as ISO-8601)."""
        return {
            "path": self.path,
            "format": self.format,
            "total_rows": self.total_rows,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "reasons": dict(self.reasons),
            "rows_per_day": {d.isoformat(): c for d, c in sorted(self.rows_per_day.items())},
            "first_ts": _iso(self.first_ts),
            "last_ts": _iso(self.last_ts),
            "window": [d.isoformat() for d in self.window] if self.window else None,
            "in_window": self.in_window,
            "quarantine_path": self.quarantine_path,
            "columns": list(self.columns),
        }

    def to_rich(self) -> Any:
        """A rich renderable: overview, quarantine reasons, rows per day."""
        from rich.console import Group
        from rich.table import Table

        overview = Table(title=f"Corpus {self.path} ({self.format})", show_header=False)
        overview.add_column("field", style="bold")
        overview.add_column("value", justify="right")
        overview.add_row("rows", f"{self.total_rows:,}")
        overview.add_row("accepted", f"[green]{self.accepted:,}[/green]")
        style = "red" if self.quarantined else "green"
        overview.add_row("quarantined", f"[{style}]{self.quarantined:,}[/{style}]")
        overview.add_row("first ts", _iso(self.first_ts) or "-")
        overview.add_row("last ts", _iso(self.last_ts) or "-")
        overview.add_row("days with rows", str(len(self.rows_per_day)))
        if self.window:
            overview.add_row(
                "window",
                f"{self.window[0]} .. {self.window[1]} ({self.in_window:,} rows)",
            )
        if self.quarantine_path:
            overview.add_row("quarantine file", self.quarantine_path)

        reasons = Table(title="Quarantine by reason")
        reasons.add_column("reason")
        reasons.add_column("rows", justify="right")
        for reason, count in self.reasons.items():
            reasons.add_row(reason, f"{count:,}", style=None if count else "dim")

        per_day = Table(title="Accepted rows per UTC day")
        per_day.add_column("day")
        per_day.add_column("weekday")
        per_day.add_column("rows", justify="right")
        for d, c in sorted(self.rows_per_day.items()):
            in_win = self.window is None or self.window[0] <= d <= self.window[1]
            per_day.add_row(
                d.isoformat(), d.strftime("%a"), f"{c:,}", style=None if in_win else "dim"
            )
        return Group(overview, reasons, per_day)

    def __rich__(self) -> Any:
        return self.to_rich()


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _day_dir(parts: Path, d: date) -> Path:
    return parts / f"day={d.isoformat()}"


@dataclass
class PreparedCorpus:
    """A validated corpus, partitioned by UTC day under ``work_dir``; iterate with iter_days."""

    summary: CorpusSummary
    work_dir: Path
    quarantine_path: Path
    days: tuple[date, ...]  # days inside the window that have rows, in order
    _parts: Path
    _cleanup: Any = None

    def read_day(self, day: date) -> pa.Table:
        """One day's accepted rows, sorted by (ts, row_number)."""
        d_dir = _day_dir(self._parts, day)
        files = sorted(d_dir.glob("*.parquet")) if d_dir.exists() else []
        if not files:
            return ACCEPTED_SCHEMA.empty_table()
        table = pa.concat_tables([pq.read_table(f, schema=ACCEPTED_SCHEMA) for f in files])
        return table.sort_by([("ts", "ascending"), ("row_number", "ascending")])

    def iter_days(self) -> Iterator[tuple[date, pa.Table]]:
        """(day, accepted rows) for each day of the window that has rows; one day in memory."""
        for d in self.days:
            yield d, self.read_day(d)

    def close(self) -> None:
        """Remove the work dir if this object created it (a temporary directory)."""
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> PreparedCorpus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _to_day(value: date | str | None, what: str) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CorpusError(f"{what} {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _window(
    days_present: list[date], start: date | None, days: int | None
) -> tuple[date, date] | None:
    """Inclusive window. ``days`` alone means the last ``days`` calendar days up to the last
    day with rows; ``start`` alone runs to the last day with rows."""
    if days is not None and days < 1:
        raise CorpusError(f"days must be at least 1, got {days}")
    try:
        return _window_dates(days_present, start, days)
    except OverflowError:  # --days 10000000, --start 9999-12-31
        raise CorpusError(
            f"the window (start {start or 'the data'}, {days:,} days) falls outside years 1-9999; "
            "use fewer days or an earlier start"
        ) from None


def _window_dates(
    days_present: list[date], start: date | None, days: int | None
) -> tuple[date, date] | None:
    if not days_present:
        if start is None:
            return None
        return start, start + timedelta(days=(days or 1) - 1)
    first, last = days_present[0], days_present[-1]
    if start is None and days is None:
        return first, last
    if start is None:
        return last - timedelta(days=days - 1), last
    if days is None:
        return start, max(start, last)
    return start, start + timedelta(days=days - 1)


def check_columns(path: str | Path, *, format: str | None = None) -> str:
    """A cheap early check of what ``load_corpus`` would refuse as a whole file (not found,
    unknown format, unreadable, a required column missing), reading the header and at most
    one record; returns the format. ``CorpusError`` messages never carry row text. JSONL is
    checked for readability only: its columns are the keys of a whole batch."""
    src = Path(path)
    fmt = detect_format(src, format)
    if not src.is_file():
        raise CorpusError(f"corpus file not found: {src}")
    try:
        if fmt != "jsonl":
            next(iter(_READERS[fmt](src, 1)), None)
    except (OSError, EOFError) as exc:
        raise CorpusError(f"cannot read {src}: {exc}") from None
    return fmt


def load_corpus(
    path: str | Path,
    *,
    format: str | None = None,
    quarantine_path: str | Path | None = None,
    work_dir: str | Path | None = None,
    start: date | str | None = None,
    days: int | None = None,
    hash_key: bytes | None = None,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int], None] | None = None,
    remove_work_dir: bool | None = None,
) -> PreparedCorpus:
    """Validate ``path`` in one streaming pass and partition accepted rows by UTC day.

    Bad rows go to ``quarantine_path`` (default ``<work_dir>/quarantine.parquet``; the file is
    always written, empty when nothing was quarantined). ``work_dir/accepted`` is replaced; with
    no ``work_dir`` a temporary directory is used and removed by ``close()``. ``start``/``days``
    select the days ``iter_days`` yields (see ``_window``). ``hash_key`` keys the user-id hash;
    by default the ``AMAIMA_TELEMETRY_HASH_KEY`` environment variable. ``progress`` is called
    with the number of rows read so far. ``remove_work_dir`` (default: only for a temporary
    one) deletes ``work_dir`` on ``close()``, on failure and at garbage collection: the day
    partitions hold query text and must not outlive the run.
    """
    src = Path(path)
    fmt = detect_format(src, format)
    if not src.exists():
        raise CorpusError(f"corpus file not found: {src}")
    if not src.is_file():
        raise CorpusError(f"corpus path is not a file: {src}")
    start_d = _to_day(start, "start")

    temporary = work_dir is None if remove_work_dir is None else remove_work_dir
    if work_dir is None:
        wd = Path(tempfile.mkdtemp(prefix="amaima-corpus-"))
    else:
        wd = Path(work_dir)
        wd.mkdir(parents=True, exist_ok=True)
    parts = wd / "accepted"
    try:
        if parts.exists():
            shutil.rmtree(parts)
        parts.mkdir(parents=True)
        q_path = Path(quarantine_path) if quarantine_path is not None else wd / "quarantine.parquet"
        q_path.parent.mkdir(parents=True, exist_ok=True)
        summary = _validate_file(
            src, fmt, parts, q_path, start_d, days, hash_key, batch_rows, progress
        )
    except BaseException:
        if temporary:
            shutil.rmtree(wd, ignore_errors=True)
        raise
    window = summary.window
    in_window = tuple(d for d in summary.days if window is not None and window[0] <= d <= window[1])
    corpus = PreparedCorpus(summary, wd, q_path, in_window, parts)
    if temporary:  # removed on close(), or when the object is garbage-collected
        corpus._cleanup = weakref.finalize(corpus, shutil.rmtree, str(wd), ignore_errors=True)
    return corpus


def _validate_file(
    src: Path,
    fmt: str,
    parts: Path,
    q_path: Path,
    start: date | None,
    days: int | None,
    hash_key: bytes | None,
    batch_rows: int,
    progress: Callable[[int], None] | None,
) -> CorpusSummary:
    """The single streaming pass: read, validate, write day partitions and quarantine rows."""
    validator: _Validator | None = None
    rows_per_day: dict[int, int] = {}
    reasons = dict.fromkeys((r.value for r in REASONS), 0)
    accepted = quarantined = 0
    first_us: int | None = None
    last_us: int | None = None
    columns: tuple[str, ...] = ()
    tmp_q = q_path.with_name(f".{q_path.name}.{uuid.uuid4().hex[:8]}.tmp")
    writer = pq.ParquetWriter(tmp_q, QUARANTINE_SCHEMA, compression="zstd")
    try:
        for part_no, chunk in enumerate(_READERS[fmt](src, batch_rows)):
            columns = (*columns, *(c for c in chunk.columns if c not in columns))
            if validator is None:
                key = hash_key
                if key is None:
                    from router.privacy import hash_key_from_env

                    key = hash_key_from_env(warn="user_id" in chunk.columns)
                validator = _Validator(key)
            table, rejects = validator.check(chunk)
            if rejects:
                writer.write_table(_quarantine_table(rejects, validator.hash_key))
                quarantined += len(rejects)
                for r in rejects:
                    reasons[r.reason.value] += 1
            if table.num_rows:
                accepted += table.num_rows
                us = _np(pc.cast(table.column("ts"), pa.int64()))
                first_us = int(us.min()) if first_us is None else min(first_us, int(us.min()))
                last_us = int(us.max()) if last_us is None else max(last_us, int(us.max()))
                day_no = us // US_PER_DAY
                for d in np.unique(day_no):
                    mask = day_no == d
                    day = date(1970, 1, 1) + timedelta(days=int(d))
                    out = _day_dir(parts, day)
                    out.mkdir(exist_ok=True)
                    pq.write_table(
                        table.filter(pa.array(mask)),
                        out / f"part-{part_no:06d}.parquet",
                        compression="zstd",
                    )
                    rows_per_day[int(d)] = rows_per_day.get(int(d), 0) + int(mask.sum())
            if progress is not None:
                progress(accepted + quarantined)
    except BaseException:
        writer.close()
        tmp_q.unlink(missing_ok=True)
        raise
    writer.close()
    tmp_q.replace(q_path)

    per_day = {date(1970, 1, 1) + timedelta(days=d): c for d, c in sorted(rows_per_day.items())}
    window = _window(sorted(per_day), start, days)
    in_window = sum(
        c for d, c in per_day.items() if window is not None and window[0] <= d <= window[1]
    )

    def ts(us: int | None) -> datetime | None:
        return None if us is None else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)

    return CorpusSummary(
        path=str(src),
        format=fmt,
        total_rows=accepted + quarantined,
        accepted=accepted,
        quarantined=quarantined,
        reasons=reasons,
        rows_per_day=per_day,
        first_ts=ts(first_us),
        last_ts=ts(last_us),
        window=window,
        in_window=in_window,
        quarantine_path=str(q_path),
        columns=columns,
    )


# A malformed or mis-encoded row's fields may be misaligned (a stray quote, a broken line):
# its "query_id" is kept only when it looks like an id, never when it may be query text.
_ID_SHAPE = re.compile(r"[\w.:@/+#=-]{1,128}")
_MISALIGNED = (Reason.MALFORMED_ROW, Reason.INVALID_ENCODING)


def _quarantine_id(r: _Reject) -> str | None:
    qid = _safe(r.query_id)
    if qid is not None and r.reason in _MISALIGNED and not _ID_SHAPE.fullmatch(qid):
        return None
    return qid


def _quarantine_table(rejects: list[_Reject], key: bytes | None) -> pa.Table:
    from router.privacy import hash_text

    texts = [
        None if r.text is None else (r.text if isinstance(r.text, str) else _safe(r.text))
        for r in rejects
    ]
    return pa.table(
        {
            "row_number": pa.array([r.row_number for r in rejects], pa.int64()),
            "query_id": pa.array([_quarantine_id(r) for r in rejects], pa.string()),
            "reason": pa.array([r.reason.value for r in rejects], pa.string()),
            "detail": pa.array([r.detail for r in rejects], pa.string()),
            "text_hash": pa.array(
                [None if t is None else hash_text(t, key) for t in texts], pa.string()
            ),
            "text_chars": pa.array([None if t is None else len(t) for t in texts], pa.int64()),
        },
        schema=QUARANTINE_SCHEMA,
    )


def validate_corpus(path: str | Path, **kwargs: Any) -> CorpusSummary:
    """Validate only: the summary; day partitions are discarded, and so is the quarantine file
    unless ``quarantine_path`` is given (then ``summary.quarantine_path`` is None)."""
    kwargs.setdefault("work_dir", None)
    keep_quarantine = kwargs.get("quarantine_path") is not None or kwargs["work_dir"] is not None
    with load_corpus(path, **kwargs) as corpus:
        summary = corpus.summary
    return summary if keep_quarantine else replace(summary, quarantine_path=None)


def iter_days(path: str | Path, **kwargs: Any) -> Iterator[tuple[date, pa.Table]]:
    """Validate ``path`` and yield (day, accepted rows) per UTC day; see ``load_corpus``."""
    with load_corpus(path, **kwargs) as corpus:
        yield from corpus.iter_days()


def read_quarantine(path: str | Path) -> pa.Table:
    """The quarantine file as written by ``load_corpus``."""
    return pq.read_table(path, schema=QUARANTINE_SCHEMA)


__all__ = [
    "ACCEPTED_SCHEMA",
    "QUARANTINE_SCHEMA",
    "REASONS",
    "TEXT_LIMIT",
    "CorpusError",
    "CorpusSummary",
    "PreparedCorpus",
    "Reason",
    "bounded_lines",
    "check_columns",
    "check_single_row",
    "detect_format",
    "iter_days",
    "load_corpus",
    "parse_ts",
    "read_quarantine",
    "validate_corpus",
]
