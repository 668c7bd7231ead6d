"""Durable local spool: decision batches the database refused, kept as parquet until drained.

Each batch is one file, written under a temporary name, fsynced and atomically renamed, so a crash
leaves either a complete file or an ignorable ``.partial`` — never half a batch that looks whole.
File names start with a nanosecond timestamp, so ``pending()`` returns batches in arrival order.
A file is removed only by ``remove()``, which the store calls after the rows are committed.

Each spool folder also records its target (``TARGET.json``: the password-free URL and the
normalised database identity), so ``telemetry status`` can list every spool with the database
its rows are waiting for, and a drain finds them whatever spelling of the URL it was given.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from router.decision import DECISION_ARROW_SCHEMA
from telemetry.errors import SpoolError

SPOOL_SUFFIX = ".parquet"
PARTIAL_SUFFIX = ".partial"
CORRUPT_DIR = "corrupt"
TARGET_FILE = "TARGET.json"


def _fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable (POSIX; a no-op where directories can't open)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Spool:
    """A directory of pending decision batches (one parquet file per batch)."""

    def __init__(self, directory: str | Path, target: dict[str, str] | None = None) -> None:
        self.directory = Path(directory)
        self._target = target

    def target(self) -> dict[str, str]:
        """``{"url": ..., "identity": ...}`` of the database this spool waits for: its
        ``TARGET.json``, else the URL in the oldest batch's metadata, else ``{}``."""
        with contextlib.suppress(OSError, ValueError):
            data = json.loads((self.directory / TARGET_FILE).read_text(encoding="utf-8"))
            if isinstance(data, dict):
                return {str(k): str(v) for k, v in data.items()}
        for path in self.pending()[:1]:
            with contextlib.suppress(OSError, pa.ArrowException):
                meta = pq.read_schema(path).metadata or {}
                url = meta.get(b"harness.store_url")
                if url:
                    return {"url": url.decode("utf-8", "replace")}
        return {}

    def __repr__(self) -> str:
        return f"Spool({str(self.directory)!r})"

    def put(self, table: pa.Table, *, metadata: dict[str, str] | None = None) -> Path:
        """Write one batch durably and return its path. Raises ``SpoolError`` if it cannot."""
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
        final = self.directory / f"{name}{SPOOL_SUFFIX}"
        partial = self.directory / f"{name}{PARTIAL_SUFFIX}"
        schema_meta = dict(table.schema.metadata or {})
        schema_meta.update({k.encode(): v.encode() for k, v in (metadata or {}).items()})
        table = table.replace_schema_metadata(schema_meta)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            target_file = self.directory / TARGET_FILE
            if self._target and not target_file.exists():
                target_file.write_text(json.dumps(self._target, sort_keys=True), encoding="utf-8")
            with open(partial, "wb") as fh:
                pq.write_table(table, fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(partial, final)
            _fsync_dir(self.directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise SpoolError(
                f"could not spool {table.num_rows} decision rows to {self.directory}: "
                f"{type(exc).__name__} ({exc.strerror or 'I/O error'}); the batch is still with "
                f"the caller — free space or fix permissions on {self.directory}"
            ) from exc
        return final

    def pending(self) -> list[Path]:
        """Complete batch files, oldest first (``.partial`` leftovers of a crash are ignored)."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.name.endswith(SPOOL_SUFFIX))

    def rows_pending(self) -> int:
        """Rows waiting in the spool, read from parquet footers (no data is loaded)."""
        total = 0
        for path in self.pending():
            with contextlib.suppress(OSError, pa.ArrowInvalid):
                total += pq.read_metadata(path).num_rows
        return total

    def read(self, path: str | Path) -> pa.Table:
        """One batch, conformed to the decision schema. Raises ``pa.ArrowInvalid`` if corrupt."""
        table = pq.read_table(path)
        return table.select(list(DECISION_ARROW_SCHEMA.names)).cast(DECISION_ARROW_SCHEMA)

    def remove(self, path: str | Path) -> None:
        """Delete a batch after its rows are committed; already gone (a parallel drain) is fine.

        A read-only spool raises ``SpoolError``: the rows are stored, and a later drain skips
        them as duplicates once the folder is writable again."""
        try:
            Path(path).unlink(missing_ok=True)
        except OSError as exc:
            raise SpoolError(
                f"stored the rows of {Path(path).name} but could not remove it from "
                f"{self.directory} ({exc.strerror or type(exc).__name__}); fix permissions on "
                "the spool folder (a later drain counts those rows as already stored)"
            ) from None
        _fsync_dir(self.directory)

    def quarantine(self, path: str | Path) -> Path:
        """Move an unreadable batch aside (``corrupt/``) so drains go on; it is kept, not deleted."""
        path = Path(path)
        target_dir = self.directory / CORRUPT_DIR
        target = target_dir / path.name
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        except OSError as exc:
            raise SpoolError(
                f"could not move the unreadable batch {path.name} aside into {target_dir} "
                f"({exc.strerror or type(exc).__name__}); fix permissions on {self.directory}"
            ) from None
        _fsync_dir(self.directory)
        return target


def list_spools(root: str | Path) -> list[Spool]:
    """Every spool folder directly under ``root`` (those holding batches or a TARGET.json)."""
    base = Path(root)
    if not base.is_dir():
        return []
    found = []
    for d in sorted(base.iterdir()):
        spool = Spool(d)
        if d.is_dir() and ((d / TARGET_FILE).is_file() or spool.pending()):
            found.append(spool)
    return found
