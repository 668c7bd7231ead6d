"""The telemetry store: bulk, idempotent decision writes that never lose a decision.

Writes are ``INSERT ... ON CONFLICT (decision_id) DO NOTHING`` on SQLite and PostgreSQL, so a rerun
or a drained spool never stores a decision twice. A write the database refuses (down, locked,
read-only, disk full) is retried briefly and then kept in a local parquet spool; ``drain()`` writes
it back later. The caller carries on either way and learns what happened from ``WriteResult``.

Speed: SQLite takes one ``executemany`` in one transaction (WAL, ``synchronous=NORMAL``);
PostgreSQL takes a CSV ``COPY`` into a temporary table and one ``INSERT ... SELECT ... ON CONFLICT
DO NOTHING`` (see ``benchmarks/bench_telemetry.py``).

This module holds the store's policy (write, retry, spool, drain, read, prune, export); beside it
``store_engine`` (URLs, identity, connection settings), ``store_bulk`` (Arrow in and out per
dialect) and ``store_runs`` (the run log). Import everything from here.

Fault injection for drills: set ``store.write_failure_hook`` to a callable returning an exception
or ``None``. It is consulted before every decision-write attempt (``write`` and ``drain``, each
retry included); a returned exception is raised inside the attempt and takes exactly the path a
real database error takes (classification, retry, spool). ``telemetry.errors.make_store_fault``
builds real ``OperationalError`` instances of a chosen kind. Run metadata calls
(``start_run``/``finish_run``) are not hooked.

The store never sees query text and never logs database exception text (it can hold bound
parameters): failures are logged by kind, exception class and password-free URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from router.decision import DECISION_ARROW_SCHEMA, DECISION_COLUMNS, TS_TYPE
from telemetry.errors import (
    POISON_KINDS,
    TRANSIENT_KINDS,
    SpoolError,
    StoreUnavailableError,
    StoreVersionError,
    TelemetrySchemaError,
    UnknownRunError,
    classify_error,
)
from telemetry.schema import (
    META_VERSION_KEY,
    STORE_SCHEMA_VERSION,
    SUPPORTED_DECISION_VERSIONS,
    decision_telemetry,
    harness_meta,
    metadata,
    require_aware,
    to_epoch_us,
)
from telemetry.spool import Spool, list_spools
from telemetry.store_bulk import (
    insert_postgres,
    insert_sqlite,
    postgres_batches,
    read_schema,
    sqlite_batches,
)
from telemetry.store_engine import (
    DB_ERRORS,
    DEFAULT_DB_NAME,
    ENV_URL,
    HARNESS_DIR,
    SUPPORTED_DIALECTS,
    create_store_engine,
    database_identity,
    default_url,
    parse_url,
    safe_url,
    spool_root,
)
from telemetry.store_runs import RUN_STATUSES, RunLog, RunRecord

__all__ = [
    "DEFAULT_DB_NAME",
    "ENV_SPOOL_DIR",
    "ENV_URL",
    "HARNESS_DIR",
    "RUN_STATUSES",
    "SUPPORTED_DIALECTS",
    "DrainResult",
    "RunRecord",
    "TelemetryStore",
    "WriteFaultPolicy",
    "WriteResult",
    "conform_decisions",
    "database_identity",
    "default_url",
    "safe_url",
    "spool_root",
]

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

ENV_SPOOL_DIR = "AMAIMA_TELEMETRY_SPOOL_DIR"


class WriteFaultPolicy(Protocol):
    """Consulted before each decision-write attempt; return an exception to make it fail."""

    def __call__(self) -> Exception | None: ...


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What happened to one batch. Always ``written + duplicates + spooled == rows``."""

    rows: int
    written: int
    duplicates: int
    spooled: int
    attempts: int
    error_kind: str | None = None
    error_type: str | None = None
    spool_file: Path | None = None

    @property
    def ok(self) -> bool:
        """True when the batch is in the database (nothing waiting in the spool)."""
        return self.spooled == 0


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What one drain moved from the spool into the database, and what is still waiting."""

    files_drained: int
    rows_written: int
    duplicates: int
    files_remaining: int
    rows_remaining: int
    error_kind: str | None = None
    error_type: str | None = None
    corrupt_files: tuple[Path, ...] = ()

    @property
    def complete(self) -> bool:
        return self.files_remaining == 0


def conform_decisions(table: pa.Table | pa.RecordBatch) -> pa.Table:
    """Check and cast a batch to the schema-1.0.0 decision table, or say exactly what is wrong."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise TelemetrySchemaError(
            f"expected a pyarrow.Table of decisions, got {type(table).__name__}"
        )
    names = set(table.column_names)
    missing = [c for c in DECISION_COLUMNS if c not in names]
    extra = sorted(names - set(DECISION_COLUMNS))
    if missing or extra:
        raise TelemetrySchemaError(
            f"decision table columns do not match schema 1.0.0: missing {missing or 'none'}, "
            f"unexpected {extra or 'none'}; valid columns are router.decision.DECISION_COLUMNS"
        )
    if len(set(table.column_names)) != len(table.column_names):
        raise TelemetrySchemaError("decision table has duplicate column names")
    ts_type = table.schema.field("ts").type
    if pa.types.is_timestamp(ts_type) and ts_type.tz is None:
        raise TelemetrySchemaError(
            f"column 'ts' is {ts_type} without a time zone; expected {TS_TYPE} (tz-aware UTC)"
        )
    arrays = []
    for field in DECISION_ARROW_SCHEMA:
        col = table.column(field.name)
        if col.type != field.type:
            try:
                col = col.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise TelemetrySchemaError(
                    f"column {field.name!r} has type {col.type}, not castable to {field.type}: "
                    f"{exc}"
                ) from None
        if not field.nullable and col.null_count:
            raise TelemetrySchemaError(
                f"column {field.name!r} has {col.null_count} null value(s); it is required"
            )
        if pa.types.is_string(field.type) and pc.any(pc.match_substring(col, "\x00")).as_py():
            row = pc.index(pc.fill_null(pc.match_substring(col, "\x00"), False), True).as_py()
            raise TelemetrySchemaError(
                f"column {field.name!r} row {row} contains a NUL character, which PostgreSQL "
                "text cannot store; strip it before writing"
            )
        arrays.append(col)
    out = pa.Table.from_arrays(arrays, schema=DECISION_ARROW_SCHEMA)
    if out.num_rows:
        versions = set(pc.unique(out.column("decision_schema_version")).to_pylist())
        bad = sorted(versions - SUPPORTED_DECISION_VERSIONS)
        if bad:
            raise TelemetrySchemaError(
                f"column 'decision_schema_version' has {bad}; this store holds "
                f"{sorted(SUPPORTED_DECISION_VERSIONS)}"
            )
    return out


class TelemetryStore(RunLog):
    """Decision telemetry on a SQLite file or PostgreSQL, with a local spool when it is down.

    ``url``: a SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://user@host/db``,
    optionally ``?options=-csearch_path%3D<schema>``); default ``$AMAIMA_TELEMETRY_URL`` or
    ``sqlite:///<cwd>/.harness/telemetry.db``. ``spool_dir``: where refused batches wait; default
    ``$AMAIMA_TELEMETRY_SPOOL_DIR`` or ``<cwd>/.harness/spool/<dialect>-<hash of URL>`` (one spool
    per database, so a drain can never push one database's decisions into another).

    Construction tries the database once: a database of another store version raises
    ``StoreVersionError``; an unreachable one is only logged (writes spool until it is back).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        spool_dir: str | Path | None = None,
        retries: int = 1,
        retry_delay_s: float = 0.05,
        connect_timeout_s: float = 3.0,
        lock_timeout_s: float = 2.0,
        statement_timeout_s: float = 60.0,
        stall_cooldown_s: float = 30.0,
        chunk_rows: int = 50_000,
        write_failure_hook: WriteFaultPolicy | Callable[[], Exception | None] | None = None,
    ) -> None:
        if retries < 0 or retry_delay_s < 0 or chunk_rows < 1:
            raise ValueError("retries and retry_delay_s must be >= 0 and chunk_rows >= 1")
        using_default = url is None
        parsed = parse_url(default_url() if using_default else url)
        #: The URL without its password: the only form the store ever shows or logs.
        self.safe_url = safe_url(parsed)
        self.url = self.safe_url
        self.dialect = parsed.get_backend_name()
        #: The normalised database identity (see ``database_identity``): what spools are keyed by.
        self.identity = database_identity(parsed)
        if using_default and self.dialect == "sqlite" and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)

        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.chunk_rows = chunk_rows
        self.write_failure_hook = write_failure_hook
        self.spool = Spool(
            self._spool_dir(spool_dir), target={"url": self.safe_url, "identity": self.identity}
        )
        #: After a real timeout (a stalled server), writes go straight to the spool until this
        #: monotonic time: one stall costs one connect timeout, not one per batch.
        self.stall_cooldown_s = stall_cooldown_s
        self._stalled_until = 0.0
        self._stall_error: BaseException | None = None

        self.engine = create_store_engine(
            parsed,
            connect_timeout_s=connect_timeout_s,
            lock_timeout_s=lock_timeout_s,
            statement_timeout_s=statement_timeout_s,
        )
        self._ready = False
        self._lock = threading.Lock()
        try:
            self._ensure_ready()
        except StoreVersionError:
            self.engine.dispose()
            raise
        except DB_ERRORS as exc:
            self._note_stall(exc)
            log.warning(
                "telemetry store %s not reachable at start (kind=%s, %s); writes will spool "
                "until it is back",
                self.safe_url,
                classify_error(exc),
                type(exc).__name__,
            )

    def __repr__(self) -> str:
        return f"TelemetryStore({self.safe_url!r}, spool={str(self.spool.directory)!r})"

    def __enter__(self) -> TelemetryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled connections (the store can still be used; it reconnects)."""
        self.engine.dispose()

    # ------------------------------------------------------------------ setup

    def _spool_dir(self, spool_dir: str | Path | None) -> Path:
        if spool_dir is not None:
            return Path(spool_dir)
        env = os.environ.get(ENV_SPOOL_DIR, "").strip()
        if env:
            return Path(env)
        slug = hashlib.sha256(self.identity.encode()).hexdigest()[:12]
        return spool_root() / f"{self.dialect}-{slug}"

    def spools(self) -> list[tuple[Spool, str, bool]]:
        """Every spool beside this store's: (spool, its target URL, waits for this database).

        This store's own spool comes first, even when empty. The others are looked for only
        under the default spool root (an explicit ``spool_dir`` is the one spool)."""
        out: list[tuple[Spool, str, bool]] = [(self.spool, self.safe_url, True)]
        root = spool_root()
        if self.spool.directory.parent.resolve() != root:
            return out
        for other in list_spools(root):
            if other.directory.resolve() == self.spool.directory.resolve():
                continue
            target = other.target()
            url = target.get("url", "unknown (no TARGET.json, no batch metadata)")
            try:
                ident = target.get("identity") or database_identity(target["url"])
            except (KeyError, sa.exc.ArgumentError):
                ident = ""
            out.append((other, url, ident == self.identity))
        return out

    def _ensure_ready(self) -> None:
        """Create the tables on first contact, or refuse a database of another store version."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            with self.engine.begin() as conn:
                insp = sa.inspect(conn)
                found = None
                if insp.has_table(harness_meta.name):
                    found = conn.execute(
                        sa.select(harness_meta.c.value).where(
                            harness_meta.c.key == META_VERSION_KEY
                        )
                    ).scalar()
                elif insp.has_table(decision_telemetry.name):
                    found = "unknown (no harness_meta table)"
                if found is not None and found != STORE_SCHEMA_VERSION:
                    raise StoreVersionError(
                        f"telemetry database {self.safe_url} has store schema version {found}; "
                        f"this harness uses version {STORE_SCHEMA_VERSION}. Point "
                        f"{ENV_URL} (or --db) at a database of version {STORE_SCHEMA_VERSION}, "
                        "or migrate/export this one with the harness that created it."
                    )
                metadata.create_all(conn, checkfirst=True)
                if found is None:
                    conn.execute(
                        self._dialect_insert(harness_meta)
                        .values(key=META_VERSION_KEY, value=STORE_SCHEMA_VERSION)
                        .on_conflict_do_nothing(index_elements=["key"])
                    )
            self._ready = True

    def _dialect_insert(self, table: sa.Table) -> Any:
        mod = sqlite_dialect if self.dialect == "sqlite" else pg_dialect
        return mod.insert(table)

    # ------------------------------------------------------------------ writes

    def write(self, table: pa.Table | pa.RecordBatch) -> WriteResult:
        """Store a batch of decisions idempotently; spool it if the database refuses.

        Raises ``TelemetrySchemaError`` for a malformed batch (retrying cannot fix it) and
        ``SpoolError`` only if the database *and* the local spool both fail.
        """
        table = conform_decisions(table)
        n = table.num_rows
        if n == 0:
            return WriteResult(rows=0, written=0, duplicates=0, spooled=0, attempts=0)
        stalled = time.monotonic() < self._stalled_until
        if stalled:  # the server stalled moments ago: do not wait on it again for every batch
            written, attempts, exc = 0, 0, self._stall_error
        else:
            written, attempts, exc = self._write_with_retries(table)
        if exc is None:
            return WriteResult(
                rows=n, written=written, duplicates=n - written, spooled=0, attempts=attempts
            )
        kind = classify_error(exc)
        try:
            path = self.spool.put(
                table,
                metadata={"harness.store_url": self.safe_url, "harness.error_kind": kind},
            )
        except SpoolError as spool_exc:
            raise SpoolError(
                f"telemetry write to {self.safe_url} failed (kind={kind}, {type(exc).__name__}) "
                f"and {spool_exc}"
            ) from spool_exc
        log.log(
            logging.INFO if stalled else logging.WARNING,
            "telemetry write to %s failed (kind=%s, %s) after %d attempt(s); %d rows spooled to %s"
            + (" (store stalled: retrying after the cool-down)" if stalled else ""),
            self.safe_url,
            kind,
            type(exc).__name__,
            attempts,
            n,
            path.name,
        )
        return WriteResult(
            rows=n,
            written=0,
            duplicates=0,
            spooled=n,
            attempts=attempts,
            error_kind=kind,
            error_type=type(exc).__name__,
            spool_file=path,
        )

    def _write_with_retries(self, table: pa.Table) -> tuple[int, int, Exception | None]:
        """(rows written, attempts, last error or None). Only database-type errors are caught."""
        attempts = 0
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            attempts += 1
            injected = self.write_failure_hook() if self.write_failure_hook else None
            try:
                if injected is not None:
                    raise injected
                return self._write_once(table), attempts, None
            except StoreVersionError as exc:
                return 0, attempts, exc
            except Exception as exc:
                if exc is not injected and not isinstance(exc, DB_ERRORS):
                    raise
                last = exc
                if exc is not injected and self._note_stall(exc):
                    break  # a stalled server: retrying would only wait the timeout again
                if classify_error(exc) not in TRANSIENT_KINDS:
                    break
                if attempt < self.retries and self.retry_delay_s:
                    time.sleep(self.retry_delay_s * (attempt + 1))
        return 0, attempts, last

    def _note_stall(self, exc: BaseException) -> bool:
        """Start the stall cool-down if a real database error is a timeout; True if so."""
        if classify_error(exc) != "timeout" or not self.stall_cooldown_s:
            return False
        self._stall_error = exc
        self._stalled_until = time.monotonic() + self.stall_cooldown_s
        return True

    def _write_once(self, table: pa.Table) -> int:
        self._ensure_ready()
        with self.engine.begin() as conn:
            if self.dialect == "sqlite":
                return insert_sqlite(conn, table, self.chunk_rows)
            return insert_postgres(conn, table, self.chunk_rows)

    def drain(self) -> DrainResult:
        """Write spooled batches back, oldest first; a file is deleted only after its commit.

        Stops at the first batch the database refuses (it is still down); that batch and the ones
        after it stay in the spool for the next drain. Unreadable files, and batches a working
        database rejects as invalid data, are moved to ``corrupt/`` inside the spool and
        reported, never deleted.
        """
        drained = written = duplicates = 0
        corrupt: list[Path] = []
        error: Exception | None = None
        # This store's spool, then older spools of the same database under another URL spelling.
        pending = [
            (spool, path) for spool, _url, mine in self.spools() if mine for path in spool.pending()
        ]
        for spool, path in pending:
            try:
                table = conform_decisions(spool.read(path))
            except FileNotFoundError:
                continue  # a parallel drain took it
            except (OSError, pa.ArrowException, TelemetrySchemaError, KeyError):
                corrupt.append(spool.quarantine(path))
                log.error("spool file %s is unreadable; moved to %s", path.name, corrupt[-1])
                continue
            n, _, exc = self._write_with_retries(table)
            if exc is not None and classify_error(exc) in POISON_KINDS:
                # The database is up but refuses these rows: retrying cannot help, and waiting
                # would block every batch behind this one. Keep it aside for a person.
                corrupt.append(spool.quarantine(path))
                log.error(
                    "spool file %s refused by %s (kind=%s, %s); moved to %s",
                    path.name,
                    self.safe_url,
                    classify_error(exc),
                    type(exc).__name__,
                    corrupt[-1],
                )
                continue
            if exc is not None:
                error = exc
                log.warning(
                    "telemetry drain into %s stopped (kind=%s, %s); %s kept",
                    self.safe_url,
                    classify_error(exc),
                    type(exc).__name__,
                    path.name,
                )
                break
            spool.remove(path)
            drained += 1
            written += n
            duplicates += table.num_rows - n
        mine = [spool for spool, _url, same in self.spools() if same]
        remaining = [p for spool in mine for p in spool.pending()]
        return DrainResult(
            files_drained=drained,
            rows_written=written,
            duplicates=duplicates,
            files_remaining=len(remaining),
            rows_remaining=sum(spool.rows_pending() for spool in mine) if remaining else 0,
            error_kind=classify_error(error) if error is not None else None,
            error_type=type(error).__name__ if error is not None else None,
            corrupt_files=tuple(corrupt),
        )

    # ------------------------------------------------------------------ reads

    @contextlib.contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sa.Connection]:
        """A connection for reads and run metadata; database errors become StoreUnavailableError."""
        try:
            self._ensure_ready()
            with self.engine.begin() if write else self.engine.connect() as conn:
                yield conn
        except StoreVersionError:
            raise
        except DB_ERRORS as exc:
            kind = classify_error(exc)
            raise StoreUnavailableError(
                f"telemetry database {self.safe_url} unavailable (kind={kind}, "
                f"{type(exc).__name__})",
                kind,
            ) from None

    def _where(
        self, run_id: str | None, start: datetime | None, end: datetime | None
    ) -> list[sa.ColumnElement[bool]]:
        """Filters bound as plain driver values (no SQLAlchemy type processing), because reads
        run the compiled SQL on the raw driver cursor: on SQLite ``ts`` is compared as the
        stored integer microseconds."""
        start = require_aware(start, "start")
        end = require_aware(end, "end")
        ts: sa.ColumnElement[Any] = decision_telemetry.c.ts
        if self.dialect == "sqlite":
            ts = sa.type_coerce(ts, sa.BigInteger())
            start = to_epoch_us(start) if start else None
            end = to_epoch_us(end) if end else None
        clauses: list[sa.ColumnElement[bool]] = []
        if run_id is not None:
            clauses.append(sa.type_coerce(decision_telemetry.c.run_id, sa.String()) == run_id)
        if start is not None:
            clauses.append(ts >= sa.literal(start, type_=ts.type))
        if end is not None:
            clauses.append(ts < sa.literal(end, type_=ts.type))
        return clauses

    def iter_arrow(
        self,
        run_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        columns: Sequence[str] | None = None,
        *,
        batch_rows: int = 100_000,
    ) -> Iterator[pa.Table]:
        """Decisions in ``[start, end)`` as Arrow tables of bounded size, ordered by
        (ts, decision_id), so memory stays bounded however large the window.

        Fast paths: PostgreSQL streams ``COPY (SELECT ...) TO STDOUT`` CSV into Arrow's CSV
        reader; SQLite reads tuples from the raw cursor and builds columns. Both skip per-row
        SQLAlchemy processing, which would dominate the cost.
        """
        cols = list(columns) if columns is not None else list(DECISION_COLUMNS)
        unknown = [c for c in cols if c not in DECISION_COLUMNS]
        if unknown or not cols:
            raise TelemetrySchemaError(
                f"unknown column(s) {unknown or '(none given)'}; valid: {', '.join(DECISION_COLUMNS)}"
            )
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
        schema = read_schema(cols)
        selected: list[sa.ColumnElement[Any]] = []
        for c in cols:
            col: sa.ColumnElement[Any] = decision_telemetry.c[c]
            if c == "ts":
                if self.dialect == "sqlite":
                    col = sa.type_coerce(col, sa.BigInteger())
                else:  # exact integer microseconds: no time-zone text to parse
                    col = sa.cast(sa.extract("epoch", col) * 1_000_000, sa.BigInteger)
            selected.append(sa.type_coerce(col, col.type).label(c))
        stmt = (
            sa.select(*selected)
            .where(*self._where(run_id, start, end))
            .order_by(decision_telemetry.c.ts, decision_telemetry.c.decision_id)
        )
        with self._connect() as conn:
            compiled = stmt.compile(dialect=conn.dialect)
            raw = conn.connection.driver_connection
            if self.dialect == "sqlite":
                params = [compiled.params[name] for name in compiled.positiontup or ()]
                yield from sqlite_batches(raw, str(compiled), params, schema, batch_rows)
            else:
                yield from postgres_batches(raw, str(compiled), compiled.params, schema, batch_rows)

    def read_arrow(
        self,
        run_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """Decisions of a run and/or time window ``[start, end)``, typed like the record schema."""
        parts = list(self.iter_arrow(run_id, start, end, columns))
        if not parts:
            return read_schema(list(columns or DECISION_COLUMNS)).empty_table()
        return pa.concat_tables(parts)

    def read(
        self,
        run_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """``read_arrow`` as a pandas DataFrame (``ts`` is ``datetime64[us, UTC]``)."""
        return self.read_arrow(run_id, start, end, columns).to_pandas()

    def count(self, run_id: str | None = None) -> int:
        """Stored decisions, all or of one run (spooled ones are not counted: see ``spool``)."""
        stmt = sa.select(sa.func.count()).select_from(decision_telemetry)
        if run_id is not None:
            stmt = stmt.where(decision_telemetry.c.run_id == run_id)
        with self._connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def prune(self, retention_days: int = 90, now: datetime | None = None) -> int:
        """Delete decisions with ``ts`` older than ``now - retention_days``; returns rows deleted.

        Only decision rows are pruned; run records are kept as the index of what happened.
        """
        if isinstance(retention_days, bool) or not isinstance(retention_days, int):
            raise TypeError(f"retention_days must be an int, got {type(retention_days).__name__}")
        if retention_days < 0:
            raise ValueError(f"retention_days must be >= 0, got {retention_days}")
        now = require_aware(now, "now") or datetime.now(UTC)
        try:
            cutoff = now - timedelta(days=retention_days)
        except OverflowError:  # --days 100000000: the window reaches before year 1, keep all
            cutoff = datetime.min.replace(tzinfo=UTC)
        stmt = sa.delete(decision_telemetry).where(decision_telemetry.c.ts < cutoff)
        with self._connect(write=True) as conn:
            deleted = conn.execute(stmt).rowcount
        log.info("pruned %d decision rows older than %s from %s", deleted, cutoff, self.safe_url)
        return deleted

    def export_parquet(self, run_id: str, path: str | Path) -> int:
        """Write one run's decisions to a parquet file (atomically); returns the row count.

        Raises ``UnknownRunError`` when neither a run record nor any decision has this id.
        """
        if self.get_run(run_id) is None and self.count(run_id) == 0:
            known = self._known_run_ids(limit=10)
            raise UnknownRunError(
                f"no run {run_id!r} in {self.safe_url}; known runs: "
                f"{', '.join(known) if known else '(none)'} (see `harness telemetry runs`)"
            )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        rows = 0
        try:
            with pq.ParquetWriter(partial, DECISION_ARROW_SCHEMA, compression="zstd") as writer:
                for part in self.iter_arrow(run_id=run_id):
                    writer.write_table(part)
                    rows += part.num_rows
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return rows
