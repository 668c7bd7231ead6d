"""Traffic through the system under drill, one segment of virtual time at a time: routed in
batches that never span a toggle change, executed query by query at each arrival time, written
to the telemetry store (spooled when it fails, drained when it answers)."""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from drills import journal as jr
from drills.clock import VirtualClock
from drills.wiring import DrillSystem
from telemetry.metric_registry import ERROR_OUTCOMES

log = logging.getLogger(__name__)

MINUTE = 60.0


@dataclass
class _Routed:
    """Decisions routed ahead of execution, aligned by position."""

    decisions: list[Any]
    texts: list[str]
    offsets: np.ndarray
    routed_model: np.ndarray
    routed_tier: np.ndarray


@dataclass
class TrafficPlayer:
    """Plays the scenario's traffic; keeps each segment's executed decisions for the minutes.
    ``route_splits``: times the toggle may change (a routing batch never spans one)."""

    system: DrillSystem
    clock: VirtualClock
    events: jr.EventLog
    run_id: str
    duration: float
    route_splits: list[float]
    segment_frames: list[tuple[float, float, pa.Table]] = field(default_factory=list)
    buffer: _Routed | None = None
    routed_until: float = 0.0
    minute_counters: Counter[str] = field(default_factory=Counter)
    """Event metrics of the open minute: write failures, spooled rows, upstream calls."""
    first_error_seen: bool = False
    unrouted: int = 0
    failures_total: int = 0

    # --- routing and execution ----------------------------------------------------------------
    def _route(self, t0: float, t1: float) -> None:
        """Route every query arriving in ``[t0, t1)`` in one batch (the toggle cannot change
        inside it); execution happens later, query by query, at each arrival time."""
        from router.engine import BatchInputError

        traffic = self.system.traffic
        offsets = traffic.offsets
        lo = int(np.searchsorted(offsets, t0, "left"))
        hi = int(np.searchsorted(offsets, t1, "left"))
        self.routed_until = t1
        if hi <= lo:
            self.buffer = None
            return
        texts = traffic.texts(lo, hi)
        start_us = int(self.clock.start.timestamp() * 1_000_000)
        ts = pa.array(
            start_us + np.round(offsets[lo:hi] * 1_000_000).astype(np.int64),
            pa.timestamp("us", tz="UTC"),
        )
        keep = np.arange(lo, hi)
        try:
            routed = self.system.router.route_batch(
                texts,
                query_ids=[traffic.query_id(i) for i in range(lo, hi)],
                ts=ts,
                run_id=self.run_id,
                tenants=traffic.tenants(lo, hi),
            )
        except BatchInputError as exc:
            routed = exc.table
            bad = {e.index for e in exc.errors}
            keep = np.array([lo + i for i in range(hi - lo) if i not in bad], dtype=np.int64)
            self.unrouted += len(bad)
            log.warning("%d queries could not be routed: %s", len(bad), exc)
        ids = routed.column("decision_id").to_pylist()
        qids = routed.column("query_id").to_pylist()
        self.system.upstream.call_keys = dict(zip(ids, qids, strict=True))
        self.buffer = _Routed(
            decisions=_to_decisions(routed),
            texts=[texts[i - lo] for i in keep],
            offsets=offsets[keep],
            routed_model=routed.column("model").to_numpy(zero_copy_only=False),
            routed_tier=routed.column("model_tier").to_numpy(zero_copy_only=False),
        )

    def segment(self, t0: float, t1: float) -> None:
        """Execute the queries arriving in ``[t0, t1)`` and write their decisions."""
        from router.decision import decisions_to_table

        if t0 >= self.routed_until:
            self._route(t0, self._next_route_split(t0))
        upstream = self.system.upstream
        calls_before = upstream.total_calls
        buf = self.buffer
        table = None
        if buf is not None:
            lo = int(np.searchsorted(buf.offsets, t0, "left"))
            hi = int(np.searchsorted(buf.offsets, t1, "left"))
            if hi > lo:
                executed = []
                for k in range(lo, hi):
                    self.clock.set(float(buf.offsets[k]))
                    executed.append(self.system.plane.execute(buf.decisions[k], buf.texts[k]))
                table = decisions_to_table(executed)
                extra = (
                    table.append_column("offset_s", pa.array(buf.offsets[lo:hi], pa.float64()))
                    .append_column("routed_model", pa.array(buf.routed_model[lo:hi], pa.string()))
                    .append_column("routed_tier", pa.array(buf.routed_tier[lo:hi], pa.string()))
                )
                self.segment_frames.append((t0, t1, extra))
                self._note_first_error(extra)
        self.clock.set(t1)
        calls = upstream.total_calls - calls_before
        self.system.record.segment_calls.append((t0, t1, calls))
        self.minute_counters["upstream_calls"] += calls
        if table is not None:
            self._write(table)

    def _next_route_split(self, t: float) -> float:
        """The next time the toggle may change (or the minute ends): routing must split there."""
        nxt = (math.floor(t / MINUTE) + 1) * MINUTE
        for p in self.route_splits:
            if p > t:
                return min(nxt, p)
        return min(nxt, self.duration)

    def _note_first_error(self, table: pa.Table) -> None:
        if self.first_error_seen:
            return
        outcomes = table.column("outcome").to_pylist()
        k = next((i for i, o in enumerate(outcomes) if o in ERROR_OUTCOMES), None)
        if k is None:
            return
        row = table.slice(k, 1).to_pylist()[0]
        self.first_error_seen = True
        self.events.add(
            "first_error",
            float(row["offset_s"]),
            decision_id=row["decision_id"],
            outcome=row["outcome"],
            error_code=row["error_code"],
            model=row["model"],
        )

    # --- the telemetry store --------------------------------------------------------------------
    def _write(self, table: pa.Table) -> None:
        result = self.system.store.write(table)
        failed_attempts = result.attempts - (0 if result.spooled else 1)
        self.minute_counters["telemetry_write_failures"] += failed_attempts
        self.failures_total += failed_attempts
        if result.spooled:
            store_facts = self.system.record.store
            self.minute_counters["spooled_rows"] += result.spooled
            store_facts.spooled_rows_total += result.spooled
            store_facts.spool_events += 1
            self.events.add(
                "spool",
                rows=result.spooled,
                error_kind=result.error_kind,
                error_type=result.error_type,
                attempts=result.attempts,
                file=result.spool_file.name if result.spool_file else None,
            )

    def drain(self, reason: str) -> Any:
        """Drain the spool into the store when it holds rows; the result, or None."""
        store = self.system.store
        if not store.spool.pending():
            return None
        result = store.drain()
        if result.error_kind:
            self.minute_counters["telemetry_write_failures"] += 1
            self.failures_total += 1
        self.system.record.store.drained_rows += result.rows_written
        self.events.add(
            "drain",
            reason=reason,
            **jr.detail_of(
                result,
                "rows_written",
                "duplicates",
                "files_drained",
                "files_remaining",
                "rows_remaining",
                "error_kind",
            ),
        )
        return result

    def store_facts(self) -> None:
        """What reached the store, against what the drill decided (the completeness check)."""
        store = self.system.store
        rec = self.system.record
        s = rec.store
        s.write_failures = self.failures_total
        try:
            stored = store.read_arrow(
                run_id=self.run_id, columns=["decision_id", "actual_cost_usd"]
            )
            ids = stored.column("decision_id").to_pylist()
            s.telemetry_rows = len(ids)
            stored_set = set(ids)
            s.distinct_ids = len(stored_set)
            mine = set(rec.frame()["decision_id"].tolist())
            missing = mine - stored_set
            s.missing_ids = len(missing)
            s.missing_sample = sorted(missing)[:5]
            s.unexpected_ids = len(stored_set - mine)
            cost = pa.compute.sum(stored.column("actual_cost_usd")).as_py()
            s.stored_cost_usd = float(cost or 0.0)
        except Exception as exc:  # noqa: BLE001 - the completeness check reports it
            s.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        s.spool_files_pending = len(store.spool.pending())
        s.spool_rows_pending = store.spool.rows_pending()

    # --- frames for the minutes and the probes --------------------------------------------------
    def minute_frame(self, m0: float, m1: float) -> pd.DataFrame:
        """Executed decisions of the segments inside ``[m0, m1]``."""
        parts = [f for s, e, f in self.segment_frames if s >= m0 and e <= m1]
        if not parts:
            return _empty_frame()
        return pa.concat_tables(parts).to_pandas()

    def open_frame(self, since: float) -> pd.DataFrame | None:
        """Executed decisions of the segments from ``since`` on (a minute not closed yet)."""
        parts = [f for s, _, f in self.segment_frames if s >= since]
        return pa.concat_tables(parts).to_pandas() if parts else None

    def take_counters(self) -> Counter[str]:
        """The open minute's event counters, starting the next minute at zero."""
        counters, self.minute_counters = self.minute_counters, Counter()
        return counters


def _empty_frame() -> pd.DataFrame:
    from router.decision import DECISION_ARROW_SCHEMA

    df = DECISION_ARROW_SCHEMA.empty_table().to_pandas()
    for c in ("offset_s", "routed_model", "routed_tier"):
        df[c] = pd.Series(dtype=float if c == "offset_s" else object)
    return df


def _to_decisions(table: pa.Table) -> list[Any]:
    """``router.decision.table_to_decisions`` without a dict per row (positional, column-wise):
    the drill converts 36,000 rows per run, so the difference is a second."""
    from router.decision import DECISION_COLUMNS, Decision

    columns = [table.column(name).to_pylist() for name in DECISION_COLUMNS]
    return [Decision(*row) for row in zip(*columns, strict=True)]
