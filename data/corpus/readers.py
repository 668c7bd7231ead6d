"""The three readers (parquet, CSV, JSONL) and format detection.

Each reader yields chunks of rows whose strings are valid UTF-8, plus the rows it rejected
itself (bad encoding, malformed records); memory is bounded by a chunk.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data.corpus.schema import (
    EXTENSIONS,
    FORMATS,
    LINE_LIMIT_BYTES,
    OPTIONAL_COLUMNS,
    RECORD_LIMIT,
    REQUIRED_COLUMNS,
    Chunk,
    CorpusError,
    Reason,
    Reject,
    is_valid_utf8,
    safe_text,
)


def _strings_from_python(values: list[Any]) -> tuple[pa.Array, np.ndarray]:
    """An Arrow string column from Python values, and a mask of values that were not valid
    Unicode (nulled in the column)."""
    try:
        return pa.array(values, pa.string()), np.zeros(len(values), dtype=bool)
    except (UnicodeEncodeError, pa.ArrowInvalid, pa.ArrowTypeError):
        bad = np.array([isinstance(v, str) and not is_valid_utf8(v) for v in values])
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
) -> tuple[np.ndarray, list[Reject]]:
    """Rows with any invalid-encoding column: a keep-mask and their quarantine rows."""
    n = row_numbers.size
    any_bad = np.zeros(n, dtype=bool)
    for bad in bad_by_column.values():
        any_bad |= bad
    rejects = []
    for i in np.flatnonzero(any_bad):
        cols = [c for c, bad in bad_by_column.items() if bad[i]]
        rejects.append(
            Reject(
                int(row_numbers[i]),
                safe_text(raw_query_id(i)),
                Reason.INVALID_ENCODING,
                f"column(s) {', '.join(cols)} not valid UTF-8 (invalid bytes or a lone "
                "surrogate); shown with backslash escapes",
                safe_text(raw_text(i)),
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


def _read_parquet(path: Path, batch_rows: int) -> Iterator[Chunk]:
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
            rejects: list[Reject] = []
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
            yield Chunk(rows, columns, rejects)
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
    rejects: list[Reject],
) -> Chunk:
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
    return Chunk(row_numbers, columns, rejects)


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


def _read_csv(path: Path, batch_rows: int) -> Iterator[Chunk]:
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
        rejects: list[Reject] = []
        record = 0
        errors_in_a_row = 0

        def reject(reason: Reason, detail: str, qid: Any = None, text: Any = None) -> None:
            nonlocal record
            record += 1
            rejects.append(Reject(record, qid, reason, detail, text))

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
                    safe_text(fields[index["query_id"]])
                    if index["query_id"] < len(fields)
                    else None,
                    # The raw record is kept only when it cannot hold a user id.
                    None if "user_id" in index else safe_text(",".join(fields)),
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


def _read_jsonl(path: Path, batch_rows: int) -> Iterator[Chunk]:
    try:
        raw = _open_binary(path)
    except OSError as exc:
        raise CorpusError(f"cannot open {path}: {exc}") from exc
    wanted = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    seen_keys: set[str] = set()
    checked = False
    rows: list[int] = []
    objs: list[dict] = []
    rejects: list[Reject] = []

    def flush() -> Chunk:
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
                        Reject(
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
                        Reject(
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
                        Reject(
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
                        Reject(
                            line_no,
                            safe_text(qid) if isinstance(qid, str | int) else None,
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
    return None if "user_id" in line else safe_text(line.rstrip("\r\n"))


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


READERS: dict[str, Callable[[Path, int], Iterator[Chunk]]] = {
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
