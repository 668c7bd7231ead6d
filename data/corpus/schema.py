"""What a corpus row is: limits, columns, the accepted and quarantine schemas, reason codes,
and the record a reader hands to validation (with how a bad value may be shown).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pyarrow as pa

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
LEVEL_SET = frozenset(lvl.value for lvl in LEVELS)
DOMAIN_SET = frozenset(d.value for d in DOMAINS)

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


def to_numpy(arr: pa.Array) -> np.ndarray:
    """An Arrow array as numpy, copying when it must (nulls, strings)."""
    return arr.to_numpy(zero_copy_only=False)


class CorpusError(Exception):
    """The file as a whole cannot be used; the message names the file and what to fix."""


@dataclass(slots=True)
class Reject:
    row_number: int
    query_id: str | None
    reason: Reason
    detail: str
    text: str | None


@dataclass(slots=True)
class Chunk:
    row_number: np.ndarray  # int64, 1-based
    columns: dict[str, pa.Array]  # only the columns the file has
    rejects: list[Reject] = field(default_factory=list)


def safe_text(value: Any) -> str | None:
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


def short_value(value: Any, limit: int = 40, shape: re.Pattern[str] | None = None) -> str:
    """The value for a quarantine detail; when ``shape`` is given and the value does not fit
    it (it may be query text in the wrong column), only its length."""
    s = safe_text(value) or ""
    if shape is not None and not shape.fullmatch(s):
        return f"({len(s):,} characters)"
    return repr(s if len(s) <= limit else s[:limit] + "...")


TS_SHAPE = re.compile(r"[0-9TtZz:+\-./ ]{1,40}")
LABEL_SHAPE = re.compile(r"[\w-]{1,32}")


def is_valid_utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
