"""Asynchronous, batched telemetry for the service: requests never wait for the database.

Request threads ``put`` decision tables on a queue; one writer thread concatenates what has
arrived (up to ``flush_rows``, or every ``flush_interval_s``) and calls
``TelemetryStore.write``, which spools a batch the database refuses, exactly as the pilot's
writes do. While the spool holds rows the writer tries a ``drain`` every ``drain_every_s``.
A stalled store stalls only this thread: deciding goes on, the queue grows and is visible in
``/metrics`` and ``/v1/health``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import pyarrow as pa

log = logging.getLogger(__name__)


@dataclass
class WriterStatus:
    last_write_ok: bool | None = None
    last_error_kind: str | None = None
    last_error_type: str | None = None
    last_write_at: float | None = None
    written_rows: int = 0
    spooled_rows: int = 0
    write_failures: int = 0


class TelemetryWriter:
    def __init__(
        self,
        store,
        *,
        metrics=None,
        flush_interval_s: float = 0.2,
        flush_rows: int = 5000,
        drain_every_s: float = 2.0,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.flush_interval_s = flush_interval_s
        self.flush_rows = flush_rows
        self.drain_every_s = drain_every_s
        self.status = WriterStatus()
        self._q: queue.Queue[pa.Table | None] = queue.Queue()
        self._queued_rows = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_drain = 0.0
        self._idle = threading.Event()
        self._idle.set()

    @property
    def queued_rows(self) -> int:
        with self._lock:
            return self._queued_rows

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="telemetry-writer", daemon=True)
            self._thread.start()

    def put(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        with self._lock:
            self._queued_rows += table.num_rows
            self._idle.clear()
        self._q.put(table)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything queued so far has been written or spooled."""
        return self._idle.wait(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._thread is None:
            return
        self._q.put(None)
        self._thread.join(timeout_s)
        self._thread = None

    # --- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._q.get(timeout=self.flush_interval_s)
            except queue.Empty:
                self._maybe_drain()
                continue
            batch: list[pa.Table] = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
            rows = sum(t.num_rows for t in batch)
            deadline = time.monotonic() + self.flush_interval_s
            while not stopping and rows < self.flush_rows:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    nxt = self._q.get(timeout=left)
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
                rows += nxt.num_rows
            if batch:
                self._write(pa.concat_tables(batch), rows)
            self._maybe_drain()

    def _write(self, table: pa.Table, rows: int) -> None:
        st = self.status
        try:
            result = self.store.write(table)
        except Exception as exc:  # noqa: BLE001 - store and spool both failed; keep serving
            st.last_write_ok = False
            st.last_error_type = type(exc).__name__
            st.last_error_kind = "spool_failed"
            st.write_failures += 1
            if self.metrics:
                self.metrics.write_failures.inc()
            log.error("telemetry batch of %d rows lost: %s", rows, type(exc).__name__)
        else:
            failed = result.attempts - (0 if result.spooled else 1)
            st.write_failures += failed
            st.last_write_ok = not result.spooled
            st.last_error_kind = result.error_kind
            st.last_error_type = result.error_type
            st.written_rows += result.written + result.duplicates
            st.spooled_rows += result.spooled
            if self.metrics:
                if failed:
                    self.metrics.write_failures.inc(failed)
                if result.spooled:
                    self.metrics.spooled.inc(result.spooled)
                self.metrics.written.inc(result.written)
        st.last_write_at = time.time()
        with self._lock:
            self._queued_rows -= rows
            if self._queued_rows <= 0 and self._q.empty():
                self._idle.set()

    def _maybe_drain(self) -> None:
        now = time.monotonic()
        if now - self._last_drain < self.drain_every_s:
            return
        self._last_drain = now
        try:
            if not self.store.spool.pending():
                return
            result = self.store.drain()
        except Exception as exc:  # noqa: BLE001
            log.warning("telemetry drain failed: %s", type(exc).__name__)
            return
        if result.rows_written and self.metrics:
            self.metrics.written.inc(result.rows_written)
        if result.error_kind:
            self.status.write_failures += 1
            if self.metrics:
                self.metrics.write_failures.inc()
        elif result.rows_written:
            self.status.last_write_ok = True
            self.status.last_error_kind = None
