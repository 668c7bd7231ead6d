"""Where the telemetry store is and how to connect to it: the default URL and spool location,
URL checks (SQLite or PostgreSQL through psycopg 3), the password-free form every message uses,
the database identity spools are keyed by, and the engine with each dialect's connection settings
(timeouts, keepalives, SQLite's WAL pragmas).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from telemetry.errors import TelemetryError

ENV_URL = "AMAIMA_TELEMETRY_URL"
HARNESS_DIR = ".harness"
DEFAULT_DB_NAME = "telemetry.db"
SUPPORTED_DIALECTS = ("sqlite", "postgresql")

try:  # psycopg raises its own errors from the raw COPY cursor (not wrapped by SQLAlchemy).
    import psycopg as _psycopg

    DB_ERRORS: tuple[type[BaseException], ...] = (
        sa.exc.SQLAlchemyError,
        sqlite3.Error,
        _psycopg.Error,
        OSError,
    )
except ImportError:  # pragma: no cover - psycopg is a declared dependency
    DB_ERRORS = (sa.exc.SQLAlchemyError, sqlite3.Error, OSError)
"""What a database failure can raise: caught, classified and spooled, never shown as text."""


def spool_root() -> Path:
    """Where per-database spool folders live by default: ``<cwd>/.harness/spool``."""
    return Path.cwd().resolve() / HARNESS_DIR / "spool"


def default_url(cwd: str | Path | None = None) -> str:
    """``$AMAIMA_TELEMETRY_URL`` or the SQLite file ``<cwd>/.harness/telemetry.db``."""
    env = os.environ.get(ENV_URL, "").strip()
    if env:
        return env
    return f"sqlite:///{Path(cwd or Path.cwd()).resolve() / HARNESS_DIR / DEFAULT_DB_NAME}"


def safe_url(url: str | sa.URL) -> str:
    """The URL as it may appear in logs and messages: password hidden."""
    try:
        parsed = sa.make_url(url) if isinstance(url, str) else url
    except sa.exc.ArgumentError:
        return "<unparseable URL>"
    return parsed.render_as_string(hide_password=True)


def parse_url(url: str) -> sa.URL:
    """Parse and check a store URL; plain ``postgresql://`` means the psycopg 3 driver."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise TelemetryError(
            f"telemetry URL {safe_url(url)} is not a database URL; expected "
            "sqlite:///path/to/telemetry.db or postgresql+psycopg://user@host:5432/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_DIALECTS:
        raise TelemetryError(
            f"telemetry URL {safe_url(parsed)} uses {backend!r}; supported: "
            "sqlite:///path.db or postgresql+psycopg://user@host:5432/db"
        )
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif parsed.get_driver_name() != "psycopg":
            raise TelemetryError(
                f"telemetry URL {safe_url(parsed)} uses driver {parsed.get_driver_name()!r}; "
                "the store needs psycopg 3: postgresql+psycopg://user@host:5432/db"
            )
    return parsed


def database_identity(url: str | sa.URL) -> str:
    """The database a URL points at, whatever its spelling: driver, password, query options
    (timeouts, sslmode, application name) and host case are dropped; the default port and an
    explicit ``search_path`` (a different schema is a different store) are kept. SQLite: the
    resolved file path. Spools are keyed by this, so another spelling finds the same spool."""
    parsed = sa.make_url(url) if isinstance(url, str) else url
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        db = parsed.database or ""
        if db and db != ":memory:" and not db.startswith("file:"):
            db = str(Path(db).expanduser().resolve())
        return f"sqlite:///{db}"
    host = (parsed.host or "localhost").lower()
    port = parsed.port or 5432
    ident = f"{backend}://{parsed.username or ''}@{host}:{port}/{parsed.database or ''}"
    options = parsed.query.get("options")
    for opt in [options] if isinstance(options, str) else list(options or ()):
        flat = opt.replace("-c ", "-c").replace("%3D", "=")
        for part in flat.split():
            if part.startswith("-csearch_path="):
                ident += f"?search_path={part.split('=', 1)[1]}"
    return ident


def create_store_engine(
    parsed: sa.URL,
    *,
    connect_timeout_s: float,
    lock_timeout_s: float,
    statement_timeout_s: float,
) -> sa.Engine:
    """An engine whose every connection is bounded: SQLite waits ``lock_timeout_s`` for a lock;
    PostgreSQL bounds connecting, statements and lock waits, and drops a peer that stops
    answering instead of waiting on it."""
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"timeout": lock_timeout_s})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = sa.create_engine(
        parsed,
        connect_args={
            "connect_timeout": max(1, round(connect_timeout_s)),
            # A peer that stops acknowledging (network black hole) is dropped, not
            # waited on; keepalives find an idle dead connection.
            "tcp_user_timeout": int(max(connect_timeout_s, 1) * 4 * 1000),
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        },
        pool_pre_ping=True,
    )
    sa.event.listen(
        engine,
        "connect",
        _postgres_timeouts(int(statement_timeout_s * 1000), int(lock_timeout_s * 1000)),
    )
    return engine


def _postgres_timeouts(statement_ms: int, lock_ms: int) -> Callable[[Any, object], None]:
    """A connect hook bounding every statement and lock wait server-side (a session setting,
    so it also holds for the raw COPY cursor, and it leaves any ``options=`` in the URL alone)."""

    def hook(dbapi_conn: Any, _record: object) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET statement_timeout = {int(statement_ms)}")
            cur.execute(f"SET lock_timeout = {int(lock_ms)}")
        dbapi_conn.commit()

    return hook


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    """WAL lets readers run beside the writer; NORMAL sync is durable at WAL checkpoints and
    several times faster than FULL. A read-only or broken file refuses the pragma: the write that
    follows then fails with the real error, which is the one worth reporting."""
    cursor = dbapi_conn.cursor()
    try:
        for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"):
            with contextlib.suppress(sqlite3.DatabaseError):
                cursor.execute(pragma)
    finally:
        cursor.close()
