"""Telemetry errors, the error kinds a failed write is reported under, and real faults for drills.

A failed write is reported by *kind* (``locked``, ``read_only``, ...) and exception class only:
database exception text can carry bound parameters, so it never reaches a log or a result.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa


class TelemetryError(Exception):
    """Base of every error the telemetry store raises on purpose."""


class TelemetrySchemaError(TelemetryError, ValueError):
    """The table handed to the store is not a schema-1.0.0 decision table."""


class StoreVersionError(TelemetryError):
    """The database was created by another version of the store: refuse rather than corrupt it."""


class StoreUnavailableError(TelemetryError):
    """A read or a run-metadata call could not reach the database (writes spool instead)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class UnknownRunError(TelemetryError, LookupError):
    """No run and no decisions under this run id."""


class SpoolError(TelemetryError):
    """The local spool itself failed: the batch could be neither stored nor kept."""


# Error kinds, most specific first: (kind, substrings of the driver message, lower case).
_MESSAGE_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("locked", ("database is locked", "database table is locked", "lock timeout")),
    ("read_only", ("readonly database", "read-only", "read only")),
    ("disk_full", ("database or disk is full", "no space left", "disk full")),
    (
        "connection_refused",
        ("connection refused", "could not connect", "connection failed", "server closed"),
    ),
    ("unavailable", ("unable to open database", "does not exist", "no such file")),
    ("timeout", ("timeout", "timed out", "canceling statement")),
    ("corrupt", ("malformed", "not a database", "file is encrypted")),
)

#: Kinds worth a quick retry before spooling; the others will not heal in milliseconds.
TRANSIENT_KINDS: frozenset[str] = frozenset(
    {"locked", "connection_refused", "timeout", "operational", "interface"}
)


#: Kinds meaning "the database works but rejects these rows": a drain sets such a batch aside.
POISON_KINDS: frozenset[str] = frozenset({"integrity", "invalid_data"})


def classify_error(exc: BaseException) -> str:
    """Map a database exception to a short, data-free kind for logs, results and drills."""
    if isinstance(exc, StoreVersionError):
        return "version_mismatch"
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).lower()
    for kind, needles in _MESSAGE_KINDS:
        if any(n in text for n in needles):
            return kind
    if isinstance(exc, sa.exc.InterfaceError):
        return "interface"
    if isinstance(exc, sa.exc.OperationalError | sqlite3.OperationalError):
        return "operational"
    if isinstance(exc, sa.exc.IntegrityError):
        return "integrity"
    if isinstance(exc, sa.exc.DataError) or type(orig).__name__ == "DataError":
        return "invalid_data"
    if isinstance(exc, OSError):
        return "os_error"
    return "database"


#: Fault kinds a drill can ask for, with the driver message each real failure carries.
FAULT_MESSAGES: dict[str, str] = {
    "locked": "database is locked",
    "read_only": "attempt to write a readonly database",
    "disk_full": "database or disk is full",
    "connection_refused": "connection failed: Connection refused",
    "timeout": "canceling statement due to statement timeout",
}


def make_store_fault(kind: str) -> sa.exc.OperationalError:
    """A real ``sqlalchemy.exc.OperationalError`` of the given kind, for a ``write_failure_hook``.

    It is the exception type a real outage raises, so a drill exercises the same except-branch,
    retry and spool path as production.
    """
    if kind not in FAULT_MESSAGES:
        raise ValueError(f"unknown store fault kind {kind!r}; valid: {', '.join(FAULT_MESSAGES)}")
    return sa.exc.OperationalError(
        "INSERT INTO decision_telemetry", None, sqlite3.OperationalError(FAULT_MESSAGES[kind])
    )
