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

The package, one concept a module: ``schema`` (limits, columns, schemas, reason codes),
``readers`` (parquet, CSV, JSONL; format detection), ``timestamps`` (``parse_ts``),
``validation`` (the row rules), ``summary`` (``CorpusSummary`` and its renderings) and ``load``
(the streaming pass, day partitions, quarantine file). Import from ``data.corpus``.
"""

from data.corpus.load import (
    PreparedCorpus,
    check_columns,
    iter_days,
    load_corpus,
    read_quarantine,
    validate_corpus,
)
from data.corpus.readers import bounded_lines, describe_columns, detect_format, format_of
from data.corpus.schema import (
    ACCEPTED_SCHEMA,
    BATCH_ROWS,
    DEFAULT_TENANT,
    EXTENSIONS,
    FORMATS,
    ID_LIMIT,
    LINE_LIMIT_BYTES,
    OPTIONAL_COLUMNS,
    QUARANTINE_SCHEMA,
    REASONS,
    RECORD_LIMIT,
    REQUIRED_COLUMNS,
    STRING_COLUMNS,
    TEXT_LIMIT,
    TS_TYPE,
    US_PER_DAY,
    CorpusError,
    Reason,
)
from data.corpus.summary import CorpusSummary
from data.corpus.timestamps import parse_ts
from data.corpus.validation import check_single_row

__all__ = [
    "ACCEPTED_SCHEMA",
    "BATCH_ROWS",
    "DEFAULT_TENANT",
    "EXTENSIONS",
    "FORMATS",
    "ID_LIMIT",
    "LINE_LIMIT_BYTES",
    "OPTIONAL_COLUMNS",
    "QUARANTINE_SCHEMA",
    "REASONS",
    "RECORD_LIMIT",
    "REQUIRED_COLUMNS",
    "STRING_COLUMNS",
    "TEXT_LIMIT",
    "TS_TYPE",
    "US_PER_DAY",
    "CorpusError",
    "CorpusSummary",
    "PreparedCorpus",
    "Reason",
    "bounded_lines",
    "check_columns",
    "check_single_row",
    "describe_columns",
    "detect_format",
    "format_of",
    "iter_days",
    "load_corpus",
    "parse_ts",
    "read_quarantine",
    "validate_corpus",
]
