"""Run a drill: traffic through the real router, execution plane and telemetry store on a
virtual clock, with faults switched on and off at their scenario times.

One run, in virtual time (Chaos Toolkit's experiment shape):

1. steady state *before*: the probes over the window just before the first fault; a drill whose
   system is not steady to begin with is ``aborted`` (its result would prove nothing);
2. traffic in segments (``tick``, split at every fault / toggle / rollback time): one
   ``route_batch`` per segment, every decision through ``ExecutionPlane.execute`` with the clock
   at the query's arrival, one telemetry write per segment under the drill's own run id;
3. at each virtual minute: metrics (``telemetry.metrics.compute_metrics``) into the same
   ``AlertEngine`` the pilot back-test uses, steady-state probes while faults are on, a drain
   attempt when the spool holds rows;
4. rollbacks at their times, and *always* at the end — also after an exception (try/finally);
5. final drain, steady state *after* (``deviated`` when not met), guarantee checks, journal.

The decision plane never waits for execution or the store: a query's decision is made at its
arrival whatever the models or the database do, which ``decision_availability`` measures.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from drills import journal as jr
from drills.clock import VirtualClock, format_duration, iso, parse_start
from drills.faults import (
    FAULTS,
    FaultBoundaries,
    FaultInjector,
    FaultyUpstream,
    StoreFaultHook,
    ToggleFault,
)
from drills.probes import (
    CALLED_OUTCOMES,
    ERROR_OUTCOMES,
    MISCONFIGURED_CODE,
    PROBES,
    AlertRecord,
    BreakerRecord,
    CheckOutcome,
    DrillRecord,
    FaultWindow,
    drill_metrics,
    extra_cost,
    p95,
)
from drills.scenario import Scenario, load_scenario

log = logging.getLogger(__name__)

MINUTE = 60.0


class DrillAborted(Exception):
    """Steady state before the first fault was not met."""


@dataclass
class DrillResult:
    journal: jr.Journal
    journal_path: Path

    @property
    def passed(self) -> bool:
        return self.journal.passed

    @property
    def exit_code(self) -> int:
        """0 every guarantee held; 2 a guarantee failed or the drill aborted; 1 an error."""
        if self.journal.status in ("failed", "interrupted"):
            return 1
        return 0 if self.passed else 2

    def summary(self) -> dict[str, Any]:
        j = self.journal
        return {
            "run_id": j.run_id,
            "name": j.name,
            "status": j.status,
            "passed": self.passed,
            "resilience_score": j.resilience_score,
            "guarantees_passed": sum(g.verdict == "passed" for g in j.guarantees),
            "guarantees": len(j.guarantees),
            "journal_path": str(self.journal_path),
            "wall_seconds": j.wall_seconds,
            "exit_code": self.exit_code,
        }


def new_run_id(name: str, start: datetime | None = None) -> str:
    """``drill-<name>-<wall-clock UTC>-<random>``: every run of a scenario starts at the same
    virtual time, so the id carries when it actually ran (``start`` is kept for callers)."""
    now = datetime.now(UTC)
    return f"drill-{name}-{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


def run_scenario(
    scenario: Scenario | str | Path,
    *,
    db: str | None = None,
    out: str | Path = "reports/out",
    semantic: bool | None = None,
    start: str | datetime | None = None,
    qps: float | None = None,
    run_id: str | None = None,
    spool_dir: str | Path | None = None,
    progress: Callable[[float, float], None] | None = None,
    on_minute: Callable[[int], None] | None = None,
) -> DrillResult:
    """Run one drill and write its journal to ``<out>/drills/<run_id>/journal.json``.

    ``scenario``: a loaded scenario, a built-in name or a path. ``db``: telemetry store URL
    (default ``$AMAIMA_TELEMETRY_URL`` or ``.harness/telemetry.db``). ``semantic``: override the
    scenario's router mode (default rule-only, no model load). ``qps``: override the traffic rate
    (tests run built-ins lighter). ``on_minute``: called after each virtual minute (tests inject
    a failure mid-drill with it). Returns the result; raises only for setup errors (bad scenario,
    unusable store URL) — an error during the drill becomes status ``failed`` in the journal.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    drill = _Drill(
        scenario,
        db=db,
        out=Path(out),
        semantic=scenario.semantic if semantic is None else semantic,
        start=parse_start(start),
        qps=qps,
        run_id=run_id,
        spool_dir=spool_dir,
        progress=progress,
        on_minute=on_minute,
    )
    return drill.run()


@dataclass
class _Routed:
    """Decisions routed ahead of execution, aligned by position."""

    decisions: list[Any]
    texts: list[str]
    offsets: np.ndarray
    routed_model: np.ndarray
    routed_tier: np.ndarray


class _Drill:
    """One drill's state. Implements ``faults.RollbackTarget``."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        db: str | None,
        out: Path,
        semantic: bool,
        start: datetime,
        qps: float | None,
        run_id: str | None,
        spool_dir: str | Path | None,
        progress: Callable[[float, float], None] | None,
        on_minute: Callable[[int], None] | None,
    ) -> None:
        from drills.traffic import build_traffic
        from router.engine import Router
        from router.execution import ExecutionPlane
        from router.upstream import SimulatedUpstream
        from telemetry.alerts import AlertEngine, load_rules
        from telemetry.store import TelemetryStore

        self.wall_start = time.perf_counter()
        self.scenario = scenario
        self.out = out
        self.semantic = semantic
        self.clock = VirtualClock(start)
        self.duration = scenario.duration
        self.qps = qps if qps is not None else scenario.traffic.qps
        self.run_id = run_id or new_run_id(scenario.name, start)
        self.progress = progress
        self.on_minute = on_minute
        self.config = scenario.router_config
        self.events: list[jr.Event] = []
        self.rollback_records: list[jr.RollbackRecord] = []

        t = scenario.traffic
        self.traffic = build_traffic(
            self.qps, self.duration, seed=t.seed, corpus=t.corpus, arrivals=t.arrivals
        )
        self.toggle_base = scenario.execution_mode
        self.router = Router(self.config, semantic=semantic, hash_key="env")
        self.router.set_toggle(self.toggle_base)
        self.toggle_now = self.toggle_base

        inner = SimulatedUpstream(self.config, seed=self.config.execution.upstream.seed)
        self.upstream = FaultyUpstream(inner, self.clock.monotonic, seed=t.seed)
        self.plane = ExecutionPlane(
            self.config, self.upstream, now=self.clock.monotonic, on_breaker_event=self._on_breaker
        )
        self.store_hook = StoreFaultHook()
        self.spool_dir = (
            Path(spool_dir)
            if spool_dir
            else (Path(".harness") / "spool" / "drills" / self.run_id).resolve()
        )
        _ensure_sqlite_dir(db)
        self.store = TelemetryStore(
            db,
            spool_dir=self.spool_dir,
            retries=1,
            retry_delay_s=0.0,
            write_failure_hook=self.store_hook,
        )
        self.boundaries = FaultBoundaries(self.upstream, self.store_hook)

        rules = [*load_rules(), *scenario.inline_rules]
        self.engine = AlertEngine(rules, context="drill")
        tiers = {m.name: m.tier for m in self.config.models}
        self.record = DrillRecord(
            start=self.clock.start,
            duration_s=self.duration,
            model_tiers=tiers,
            interactive_tiers=tuple(self.config.routing.interactive_tiers),
            arrivals=self.traffic.offsets,
            spool_rows_now=self.store.spool.rows_pending,
            open_breakers_now=lambda: [
                m for m, s in self.plane.breaker_states().items() if s == "open"
            ],
            rules={r.name: r.condition for r in self.engine.rules},
        )
        self.windows: dict[int, FaultWindow] = {}
        self.injectors: dict[int, FaultInjector] = {}
        self.planned = scenario.timeline()
        for w in self.planned:
            inj = FAULTS[w.type](
                w.index, w.params, target=w.target, probability=w.probability, seed=t.seed
            )
            self.injectors[w.index] = inj
            self.boundaries.add(inj)
        self.pending_rollbacks = list(enumerate(scenario.rollbacks))
        self.first_fault_s = min((w.start_s for w in self.planned), default=None)
        self.own_end = self._own_ends()
        self.segment_frames: list[tuple[float, float, pa.Table]] = []
        self.buffer: _Routed | None = None
        self.routed_until = 0.0
        self.route_splits = sorted(
            {w.start_s for w in self.planned if w.type == "toggle"}
            | {e for i, e in self.own_end.items() if e is not None}
            | {r.at for r in scenario.rollbacks if r.at is not None}
        )
        self.minute_counters: Counter[str] = Counter()
        self.first_error_seen = False
        self.unrouted = 0
        self.steady = jr.SteadyState.empty()
        self.during_samples: dict[int, list[tuple[float, float | None, bool]]] = {}
        self.failures_total = 0
        self._open_flushed = 0

    def _own_ends(self) -> dict[int, float | None]:
        """When each window ends by itself (its duration, or the next toggle change)."""
        out: dict[int, float | None] = {}
        changes = self.scenario.toggle_changes
        n_faults = len(self.scenario.faults)
        for w in self.planned:
            if w.source == "fault":
                f = self.scenario.faults[w.index]
                out[w.index] = None if f.duration is None else f.at + f.duration
            else:
                j = w.index - n_faults
                out[w.index] = changes[j + 1].at if j + 1 < len(changes) else None
        return out

    # --- events ---------------------------------------------------------------------------
    def _event(self, kind: str, offset_s: float | None = None, **detail: Any) -> None:
        off = self.clock.offset_s if offset_s is None else offset_s
        self.events.append(
            jr.Event(ts=self.clock.iso(off), offset_s=round(off, 3), kind=kind, detail=detail)
        )

    def _on_breaker(self, event: Any) -> None:
        model = event.model
        self.record.breakers.append(
            BreakerRecord(
                offset_s=float(event.ts),
                model=model,
                tier=self.record.model_tiers.get(model, "?"),
                old=event.old.value,
                new=event.new.value,
                reason=event.reason,
                calls=self.upstream.calls[model],
            )
        )
        self._event(
            f"breaker_{event.new.value}",
            float(event.ts),
            model=model,
            tier=self.record.model_tiers.get(model, "?"),
            old=event.old.value,
            reason=event.reason,
        )

    # --- faults and the toggle ----------------------------------------------------------------
    def _fault_on(self, index: int) -> None:
        inj = self.injectors[index]
        now = self.clock.offset_s
        self.boundaries.activate(inj, now)
        w = next(p for p in self.planned if p.index == index)
        window = FaultWindow(
            index=index,
            type=inj.type,
            boundary=inj.boundary,
            target=inj.target.to_dict(),
            params=inj.params.model_dump(mode="json"),
            probability=inj.probability,
            start_s=now,
            description=inj.describe(),
            calls_at_start=dict(self.upstream.calls),
        )
        self.windows[index] = window
        self.record.faults.append(window)
        self._event(
            "fault_on",
            type=inj.type,
            index=index,
            boundary=inj.boundary,
            target=window.target,
            params=window.params,
            description=window.description,
            source=w.source,
        )

    def _fault_off(self, inj: FaultInjector, ended_by: str) -> None:
        window = self.windows.get(inj.index)
        if window is None or window.end_s is not None:
            return
        self.boundaries.deactivate(inj)
        window.end_s = self.clock.offset_s
        window.ended_by = ended_by
        window.calls_at_end = dict(self.upstream.calls)
        window.injected = inj.injected
        self._event(
            "fault_off",
            type=inj.type,
            index=inj.index,
            ended_by=ended_by,
            description=window.description,
            injected=inj.injected,
        )

    def _apply_toggle(self) -> None:
        override, value = self.boundaries.toggle_override()
        desired = value if override else self.toggle_base
        if desired == self.toggle_now:
            return
        old = self.toggle_now
        state = self.router.set_toggle(desired)
        self.toggle_now = desired
        self._event(
            "toggle_changed",
            value=desired,
            previous=old,
            effective_mode=state.mode.value,
            invalid=state.invalid,
        )

    # --- RollbackTarget -------------------------------------------------------------------------
    def clear_faults(self, types: list[str] | None) -> str:
        cleared = [f for f in self.boundaries.active() if types is None or f.type in types]
        for f in cleared:
            self._fault_off(f, "rollback clear_faults")
        self._apply_toggle()
        if not cleared:
            return "no fault was active"
        return "switched off: " + "; ".join(f.describe() for f in cleared)

    def restore_toggle(self, value: str | None, use_baseline: bool) -> str:
        for f in self.boundaries.active():
            if isinstance(f, ToggleFault):
                self._fault_off(f, "rollback restore_toggle")
        self.toggle_base = self.scenario.execution_mode if use_baseline else value
        self._apply_toggle()
        return f"toggle is {self.toggle_now!r}"

    def drain_spool(self) -> str:
        result = self._drain(reason="rollback")
        if result is None:
            return "spool empty"
        return (
            f"drained {result.rows_written} rows from {result.files_drained} file(s); "
            f"{result.files_remaining} file(s) remain"
            + (f" (store error {result.error_kind})" if result.error_kind else "")
        )

    def _run_rollback(self, i: int, spec: Any, note: str = "") -> None:
        try:
            detail = spec.build().run(self)
            ok = True
        except Exception as exc:  # noqa: BLE001 - a failed rollback is recorded, the rest still run
            detail = f"{type(exc).__name__}: {str(exc)[:300]}"
            ok = False
            log.error("rollback %s failed: %s", spec.type, detail)
        if note:
            detail = f"{note}: {detail}"
        off = self.clock.offset_s
        self.rollback_records.append(
            jr.RollbackRecord(
                type=spec.type, ts=self.clock.iso(off), ok=ok, detail=detail, offset_s=round(off, 3)
            )
        )
        self._event("rollback", type=spec.type, index=i, ok=ok, detail=detail)

    # --- boundary processing -------------------------------------------------------------------
    def _boundaries_at(self, t: float) -> None:
        """Everything scheduled at ``t``: faults ending, rollbacks, faults starting, toggle."""
        for w in self.planned:
            inj = self.injectors[w.index]
            own_end = self.own_end.get(w.index)
            if inj.active and own_end is not None and own_end <= t:
                self._fault_off(
                    inj, "next toggle change" if w.source == "toggle_change" else "duration"
                )
        due = [(i, r) for i, r in self.pending_rollbacks if r.at is not None and r.at <= t]
        for i, r in due:
            self.pending_rollbacks.remove((i, r))
            self._run_rollback(i, r)
        for w in self.planned:
            if w.start_s == t and w.index not in self.windows:
                self._fault_on(w.index)
        self._apply_toggle()

    # --- traffic ------------------------------------------------------------------------------
    def _route(self, t0: float, t1: float) -> None:
        """Route every query arriving in ``[t0, t1)`` in one batch (the toggle cannot change
        inside it); execution happens later, query by query, at each arrival time."""
        from router.engine import BatchInputError

        offsets = self.traffic.offsets
        lo = int(np.searchsorted(offsets, t0, "left"))
        hi = int(np.searchsorted(offsets, t1, "left"))
        self.routed_until = t1
        if hi <= lo:
            self.buffer = None
            return
        texts = self.traffic.texts(lo, hi)
        start_us = int(self.clock.start.timestamp() * 1_000_000)
        ts = pa.array(
            start_us + np.round(offsets[lo:hi] * 1_000_000).astype(np.int64),
            pa.timestamp("us", tz="UTC"),
        )
        keep = np.arange(lo, hi)
        try:
            routed = self.router.route_batch(
                texts,
                query_ids=[self.traffic.query_id(i) for i in range(lo, hi)],
                ts=ts,
                run_id=self.run_id,
                tenants=self.traffic.tenants(lo, hi),
            )
        except BatchInputError as exc:
            routed = exc.table
            bad = {e.index for e in exc.errors}
            keep = np.array([lo + i for i in range(hi - lo) if i not in bad], dtype=np.int64)
            self.unrouted += len(bad)
            log.warning("%d queries could not be routed: %s", len(bad), exc)
        ids = routed.column("decision_id").to_pylist()
        qids = routed.column("query_id").to_pylist()
        self.upstream.call_keys = dict(zip(ids, qids, strict=True))
        self.buffer = _Routed(
            decisions=_to_decisions(routed),
            texts=[texts[i - lo] for i in keep],
            offsets=offsets[keep],
            routed_model=routed.column("model").to_numpy(zero_copy_only=False),
            routed_tier=routed.column("model_tier").to_numpy(zero_copy_only=False),
        )

    def _segment(self, t0: float, t1: float) -> None:
        from router.decision import decisions_to_table

        if t0 >= self.routed_until:
            self._route(t0, self._next_route_split(t0))
        calls_before = self.upstream.total_calls
        buf = self.buffer
        table = None
        if buf is not None:
            lo = int(np.searchsorted(buf.offsets, t0, "left"))
            hi = int(np.searchsorted(buf.offsets, t1, "left"))
            if hi > lo:
                executed = []
                for k in range(lo, hi):
                    self.clock.set(float(buf.offsets[k]))
                    executed.append(self.plane.execute(buf.decisions[k], buf.texts[k]))
                table = decisions_to_table(executed)
                extra = (
                    table.append_column("offset_s", pa.array(buf.offsets[lo:hi], pa.float64()))
                    .append_column("routed_model", pa.array(buf.routed_model[lo:hi], pa.string()))
                    .append_column("routed_tier", pa.array(buf.routed_tier[lo:hi], pa.string()))
                )
                self.segment_frames.append((t0, t1, extra))
                self._note_first_error(extra)
        self.clock.set(t1)
        calls = self.upstream.total_calls - calls_before
        self.record.segment_calls.append((t0, t1, calls))
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
        self._event(
            "first_error",
            float(row["offset_s"]),
            decision_id=row["decision_id"],
            outcome=row["outcome"],
            error_code=row["error_code"],
            model=row["model"],
        )

    def _write(self, table: pa.Table) -> None:
        result = self.store.write(table)
        failed_attempts = result.attempts - (0 if result.spooled else 1)
        self.minute_counters["telemetry_write_failures"] += failed_attempts
        self.failures_total += failed_attempts
        if result.spooled:
            self.minute_counters["spooled_rows"] += result.spooled
            self.record.store.spooled_rows_total += result.spooled
            self.record.store.spool_events += 1
            self._event(
                "spool",
                rows=result.spooled,
                error_kind=result.error_kind,
                error_type=result.error_type,
                attempts=result.attempts,
                file=result.spool_file.name if result.spool_file else None,
            )

    def _drain(self, reason: str) -> Any:
        if not self.store.spool.pending():
            return None
        result = self.store.drain()
        if result.error_kind:
            self.minute_counters["telemetry_write_failures"] += 1
            self.failures_total += 1
        self.record.store.drained_rows += result.rows_written
        self._event(
            "drain",
            reason=reason,
            rows_written=result.rows_written,
            duplicates=result.duplicates,
            files_drained=result.files_drained,
            files_remaining=result.files_remaining,
            rows_remaining=result.rows_remaining,
            error_kind=result.error_kind,
        )
        return result

    # --- minutes --------------------------------------------------------------------------------
    def _minute_frame(self, m0: float, m1: float) -> pd.DataFrame:
        parts = [f for s, e, f in self.segment_frames if s >= m0 and e <= m1]
        if not parts:
            return self._empty_frame()
        return pa.concat_tables(parts).to_pandas()

    def _empty_frame(self) -> pd.DataFrame:
        from router.decision import DECISION_ARROW_SCHEMA

        df = DECISION_ARROW_SCHEMA.empty_table().to_pandas()
        for c in ("offset_s", "routed_model", "routed_tier"):
            df[c] = pd.Series(dtype=float if c == "offset_s" else object)
        return df

    def _close_minute(self, m0: float, m1: float) -> None:
        from telemetry.metrics import compute_metrics

        frame = self._minute_frame(m0, m1)
        self.record.minute_frames.append(frame)
        bucket = pd.Timestamp(self.clock.at(m0))
        c = self.minute_counters
        metrics = compute_metrics(
            frame,
            "1min",
            interactive_tiers=self.record.interactive_tiers,
            start=bucket,
            end=pd.Timestamp(self.clock.at(m1)),
        )
        row = metrics.iloc[0].to_dict() if len(metrics) else {}
        # the event metrics are per-bucket sums (compute_metrics' ``events``): set them directly
        row["telemetry_write_failures"] = float(c["telemetry_write_failures"])
        row["spooled_rows"] = float(c["spooled_rows"])
        row.update(drill_metrics(frame, self.record.interactive_tiers))
        for event in self.engine.observe(pd.Timestamp(self.clock.at(m1)), row):
            value = None if math.isnan(event.value) else float(event.value)
            self.record.alerts.append(
                AlertRecord(event.rule, event.kind, m1, value, event.severity, event.summary)
            )
            self._event(
                f"alert_{event.kind}",
                m1,
                rule=event.rule,
                severity=event.severity,
                value=value,
                condition=f"{event.metric} {event.comparator} {event.threshold:g}",
                summary=event.summary,
            )
        outcomes = frame["outcome"].value_counts() if len(frame) else pd.Series(dtype=int)
        queries = self.record.queries(m0, m1)
        out = {
            "ts": self.clock.iso(m0),
            "offset_s": m0,
            "queries": queries,
            "decisions": len(frame),
            "executed": int(len(frame) - outcomes.get("not_executed", 0)),
            "not_executed": int(outcomes.get("not_executed", 0)),
            "ok": int(outcomes.get("ok", 0)),
            "fallback": int(outcomes.get("fallback", 0)),
            "rejected": int(outcomes.get("rejected", 0)),
            "errors": int(outcomes.get("error", 0) + outcomes.get("timeout", 0)),
            "error_rate": row.get("error_rate"),
            "fallback_rate": row.get("fallback_rate"),
            "rejected_rate": row.get("rejected_rate"),
            "actual_latency_p95_ms": row.get("actual_latency_p95_ms"),
            "actual_latency_p95_worst_tier_ms": row.get("actual_latency_p95_worst_tier_ms"),
            "actual_latency_p95_interactive_ms": row.get("actual_latency_p95_interactive_ms"),
            "cost_per_query_usd": row.get("cost_per_query_usd"),
            "cost_usd": float(pd.to_numeric(frame["actual_cost_usd"], errors="coerce").sum())
            if len(frame)
            else 0.0,
            "telemetry_write_failures": int(c["telemetry_write_failures"]),
            "spooled_rows": int(c["spooled_rows"]),
            "upstream_calls": int(c["upstream_calls"]),
            "misconfigured_toggle_count": int(row.get("misconfigured_toggle_count", 0) or 0),
            "open_breakers": len(self.record.open_breakers_now()),
            "alerts_firing": sorted(self.engine.firing()),
        }
        self.record.metrics.append({k: _num(v) for k, v in out.items()})
        self.minute_counters = Counter()
        if any(w.start_s < m1 and (w.end_s is None or w.end_s > m0) for w in self.record.faults):
            self._probe_during(m1)
        self._drain(reason="periodic")
        self.record.upstream_calls_by_model = dict(self.upstream.calls)

    # --- steady state ---------------------------------------------------------------------------
    def _probe(self, i: int, at: float, start: float) -> tuple[float | None, bool]:
        spec = self.scenario.steady_state[i]
        probe = PROBES[spec.probe](spec.parsed_params)
        value = probe.measure(self.record, start, at)
        return value, spec.tolerance.ok(value)

    def _probe_result(self, i: int, at: float, start: float) -> jr.ProbeResult:
        spec = self.scenario.steady_state[i]
        value, ok = self._probe(i, at, start)
        return jr.ProbeResult(
            probe=spec.probe,
            window=format_duration(spec.window),
            tolerance=spec.tolerance.to_dict(),
            value=_num(value),
            ok=ok,
            params=spec.params,
            at=self.clock.iso(at),
        )

    def _flush_frames(self) -> None:
        """Make decisions of the open minute visible to probes (before-window may end mid-minute)."""
        closed = len(self.record.minute_frames)
        open_parts = [f for s, _, f in self.segment_frames if s >= closed * MINUTE]
        if open_parts:
            self.record.minute_frames.append(pa.concat_tables(open_parts).to_pandas())
        self._open_flushed = 1 if open_parts else 0

    def _unflush_frames(self) -> None:
        n = self._open_flushed
        if n:
            del self.record.minute_frames[-n:]
        self._open_flushed = 0

    def _steady_before(self, at: float) -> None:
        widest = max((s.window for s in self.scenario.steady_state), default=300.0)
        self.record.before_window = (max(0.0, at - widest), at)
        if not self.scenario.steady_state:
            return
        self._flush_frames()
        try:
            results = [
                self._probe_result(i, at, max(0.0, at - spec.window))
                for i, spec in enumerate(self.scenario.steady_state)
            ]
        finally:
            self._unflush_frames()
        self.steady.before = results
        met = all(r.ok for r in results)
        self._event(
            "steady_state_before",
            at,
            met=met,
            probes={r.probe: {"value": r.value, "ok": r.ok} for r in results},
        )
        if not met:
            bad = [f"{r.probe}={r.value} (tolerance {r.tolerance})" for r in results if not r.ok]
            raise DrillAborted("steady state before the first fault not met: " + "; ".join(bad))

    def _probe_during(self, at: float) -> None:
        for i, spec in enumerate(self.scenario.steady_state):
            start = max(0.0, at - spec.window)
            value, ok = self._probe(i, at, start)
            self.during_samples.setdefault(i, []).append((at, value, ok))

    def _steady_after(self) -> None:
        d = self.duration
        widest = max((s.window for s in self.scenario.steady_state), default=300.0)
        self.record.after_window = (d - widest, d)
        if not self.scenario.steady_state:
            return
        self.steady.after = [
            self._probe_result(i, d, d - spec.window)
            for i, spec in enumerate(self.scenario.steady_state)
        ]
        met = all(r.ok for r in self.steady.after)
        self._event(
            "steady_state_after",
            d,
            met=met,
            probes={r.probe: {"value": r.value, "ok": r.ok} for r in self.steady.after},
        )

    def _during_summaries(self) -> list[jr.ProbeSummary]:
        out = []
        for i, spec in enumerate(self.scenario.steady_state):
            samples = self.during_samples.get(i, [])
            values = [v for _, v, _ in samples if v is not None]
            tol = spec.tolerance
            if not values:
                worst = None
            elif any(tol.distance(v) > 0 for v in values):
                worst = max(values, key=tol.distance)
            elif tol.max is not None:
                worst = max(values)
            else:
                worst = min(values)
            violations = [at for at, _, ok in samples if not ok]
            out.append(
                jr.ProbeSummary(
                    probe=spec.probe,
                    ok=not violations,
                    samples=len(samples),
                    violations=len(violations),
                    worst=_num(worst),
                    window=format_duration(spec.window),
                    tolerance=tol.to_dict(),
                    first_violation=self.clock.iso(violations[0]) if violations else None,
                )
            )
        return out

    # --- the run -------------------------------------------------------------------------------
    def _timeline(self) -> list[float]:
        d = self.duration
        tick = self.scenario.tick
        points = {round(k * tick, 6) for k in range(int(d // tick) + 1)}
        points |= {w.start_s for w in self.planned}
        points |= {w.end_s for w in self.planned if w.end_s is not None}
        points |= {r.at for r in self.scenario.rollbacks if r.at is not None}
        if self.first_fault_s is not None:
            points.add(self.first_fault_s)
        return sorted(p for p in points if 0 <= p <= d)

    def _main(self) -> None:
        points = self._timeline()
        before_at = self.first_fault_s
        if before_at is None:
            before_at = min(
                self.duration, max((s.window for s in self.scenario.steady_state), default=300.0)
            )
        before_done = False
        minute_index = 0
        for t0, t1 in zip(points, points[1:], strict=False):
            if not before_done and t0 >= before_at:
                self._steady_before(t0)
                before_done = True
            self._boundaries_at(t0)
            self._segment(t0, t1)
            if t1 % MINUTE == 0:
                self._close_minute(t1 - MINUTE, t1)
                minute_index += 1
                if self.progress is not None:
                    self.progress(t1, self.duration)
                if self.on_minute is not None:
                    self.on_minute(minute_index)
        if not before_done:
            self._steady_before(self.duration)

    def run(self) -> DrillResult:
        status, error = "completed", None
        try:
            self.store.start_run(
                self.run_id,
                "drill",
                {
                    "scenario": self.scenario.name,
                    "scenario_hash": self.scenario.scenario_hash(),
                    "qps": self.qps,
                    "seed": self.scenario.traffic.seed,
                    "semantic": self.semantic,
                    "execution_mode": self.scenario.execution_mode,
                },
                self.config.config_hash,
                started_at=self.clock.start,
            )
        except Exception as exc:  # noqa: BLE001 - run metadata is not worth losing the drill
            log.warning("could not record the run in the store (%s); decisions spool", exc)
        self._event(
            "drill_started",
            0.0,
            scenario=self.scenario.name,
            run_id=self.run_id,
            qps=self.qps,
            queries=len(self.traffic),
            execution_mode=self.scenario.execution_mode,
            router="hybrid" if self.semantic else "rule-only",
        )
        try:
            self._main()
        except DrillAborted as exc:
            status, error = "aborted", str(exc)
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted (KeyboardInterrupt)"
        except Exception as exc:  # noqa: BLE001 - recorded in the journal, rollbacks still run
            status, error = "failed", f"{type(exc).__name__}: {str(exc)[:500]}"
            log.exception("drill %s failed", self.run_id)
        finally:
            self._finish_rollbacks(status)
        return self._conclude(status, error)

    def _finish_rollbacks(self, status: str) -> None:
        """Rollbacks always run: the scheduled ones not run yet, then a safety clear and drain."""
        pending, self.pending_rollbacks = self.pending_rollbacks, []
        for i, r in pending:
            self._run_rollback(i, r, "" if status == "completed" else f"after {status}")
        if self.boundaries.active():
            from drills.scenario import RollbackSpec

            self._run_rollback(-1, RollbackSpec(type="clear_faults"), f"end of drill ({status})")
        try:
            self._drain(reason="final")
        except Exception as exc:  # noqa: BLE001
            log.error("final drain failed: %s", type(exc).__name__)

    def _conclude(self, status: str, error: str | None) -> DrillResult:
        if status == "completed":
            self._steady_after()
        for w in self.record.faults:
            if w.end_s is None:
                w.end_s = self.clock.offset_s
                w.ended_by = w.ended_by or "end of drill"
        self.record.upstream_calls_by_model = dict(self.upstream.calls)
        self.record.billed_usd = self.upstream.billed_usd
        self._store_facts()
        guarantees = self._guarantees(status)
        total_w = sum(g.weight for g in guarantees)
        score = (
            sum(g.weight for g in guarantees if g.verdict == "passed") / total_w if total_w else 0.0
        )
        deviated = any(not r.ok for r in self.steady.after)
        self.steady.during = self._during_summaries()
        self._event("drill_finished", self.clock.offset_s, status=status, resilience_score=score)
        journal = self._journal(status, error, guarantees, score, deviated)
        path = jr.write_journal(journal, self.out)
        try:
            self.store.finish_run(
                self.run_id,
                status,
                {
                    "decisions": journal.impact.decisions,
                    "telemetry_rows": journal.impact.telemetry_rows,
                    "guarantees_passed": sum(g.verdict == "passed" for g in guarantees),
                    "guarantees": len(guarantees),
                    "resilience_score": score,
                    "journal": str(path),
                },
                finished_at=self.clock.at(
                    self.duration if status == "completed" else self.clock.offset_s
                ),
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("could not close the run in the store: %s", exc)
        self.store.close()
        if not self.store.spool.pending():
            with contextlib.suppress(OSError):  # removes the folder only when it is empty
                self.spool_dir.rmdir()
        return DrillResult(journal, path)

    def _store_facts(self) -> None:
        s = self.record.store
        s.write_failures = self.failures_total
        try:
            stored = self.store.read_arrow(
                run_id=self.run_id, columns=["decision_id", "actual_cost_usd"]
            )
            ids = stored.column("decision_id").to_pylist()
            s.telemetry_rows = len(ids)
            stored_set = set(ids)
            s.distinct_ids = len(stored_set)
            mine = set(self.record.frame()["decision_id"].tolist())
            missing = mine - stored_set
            s.missing_ids = len(missing)
            s.missing_sample = sorted(missing)[:5]
            s.unexpected_ids = len(stored_set - mine)
            cost = pa.compute.sum(stored.column("actual_cost_usd")).as_py()
            s.stored_cost_usd = float(cost or 0.0)
        except Exception as exc:  # noqa: BLE001 - the completeness check reports it
            s.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        s.spool_files_pending = len(self.store.spool.pending())
        s.spool_rows_pending = self.store.spool.rows_pending()

    def _guarantees(self, status: str) -> list[jr.GuaranteeResult]:
        out = []
        for g in self.scenario.guarantees:
            check = g.build()
            if status != "completed":
                outcome = CheckOutcome(
                    False,
                    _expected_text(check),
                    {},
                    f"not evaluated: the drill {status}",
                )
                verdict = "error"
            else:
                try:
                    outcome = check.evaluate(self.record)
                    verdict = "passed" if outcome.passed else "failed"
                except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
                    log.exception("check %s raised", g.check)
                    outcome = CheckOutcome(
                        False,
                        _expected_text(check),
                        {},
                        f"check raised {type(exc).__name__}: {exc}",
                    )
                    verdict = "error"
            out.append(
                jr.GuaranteeResult(
                    id=g.id,
                    check=g.check,
                    params=g.params,
                    expected=g.expect,
                    expected_text=outcome.expected_text,
                    actual=outcome.actual,
                    actual_text=outcome.actual_text,
                    verdict=verdict,
                    weight=g.weight,
                    evidence=jr._json_safe(outcome.evidence),
                    title=g.title,
                )
            )
        return out

    # --- journal ------------------------------------------------------------------------------
    def _journal(
        self,
        status: str,
        error: str | None,
        guarantees: list[jr.GuaranteeResult],
        score: float,
        deviated: bool,
    ) -> jr.Journal:
        rec = self.record
        df = rec.frame()
        outcomes = df["outcome"].value_counts() if len(df) else pd.Series(dtype=int)
        before_w = rec.before_window
        after_w = rec.after_window

        def lat(frame: pd.DataFrame) -> float | None:
            called = frame[frame["outcome"].isin(CALLED_OUTCOMES)] if len(frame) else frame
            return p95(called["actual_latency_ms"]) if len(called) else None

        extra, _, _ = extra_cost(rec) if rec.faults else (0.0, None, None)
        impact = jr.Impact(
            queries=len(self.traffic),
            decisions=len(df),
            executed=int(len(df) - outcomes.get("not_executed", 0)),
            errors=int(outcomes.get("error", 0) + outcomes.get("timeout", 0)),
            rejected=int(outcomes.get("rejected", 0)),
            fallbacks=int(outcomes.get("fallback", 0)),
            extra_cost_usd=round(extra, 6),
            latency_p95_ms_before=_num(lat(rec.frame(*before_w))) if before_w else None,
            latency_p95_ms_during=_num(lat(rec.during(rec.faults))) if rec.faults else None,
            latency_p95_ms_after=_num(lat(rec.frame(*after_w))) if after_w else None,
            telemetry_rows=rec.store.telemetry_rows,
            spooled_rows=rec.store.spooled_rows_total,
            upstream_calls=self.upstream.total_calls,
            not_executed=int(outcomes.get("not_executed", 0)),
            misconfigured_decisions=int(
                df["reason_codes"].astype(str).str.contains(MISCONFIGURED_CODE, regex=False).sum()
            )
            if len(df)
            else 0,
            cost_usd=round(float(pd.to_numeric(df["actual_cost_usd"], errors="coerce").sum()), 6)
            if len(df)
            else 0.0,
            unanswered_queries=max(0, rec.queries() - len(df)),
        )
        preferred = [
            g.params.get("rule")
            for g in self.scenario.guarantees
            if g.check in ("alert_fired", "detected_before_sla")
        ]
        events = sorted(self.events, key=lambda e: e.offset_s)
        firings = [
            {
                "rule": f.rule,
                "severity": f.severity,
                "fired_at": iso(f.fired_at.to_pydatetime()),
                "resolved_at": None
                if f.resolved_at is None
                else iso(f.resolved_at.to_pydatetime()),
                "peak_value": _num(f.peak_value),
                "condition": rec.rules.get(f.rule),
            }
            for f in self.engine.firings()
        ]
        t = self.scenario.traffic
        return jr.Journal(
            run_id=self.run_id,
            name=self.scenario.name,
            title=self.scenario.title,
            failure_mode=getattr(self.scenario, "failure_mode", None),
            description=self.scenario.description,
            tags=list(self.scenario.tags),
            scenario_file=_rel(self.scenario.source),
            scenario_hash=self.scenario.scenario_hash(),
            started_at=self.clock.iso(0.0),
            ended_at=self.clock.iso(self.clock.offset_s),
            wall_seconds=round(time.perf_counter() - self.wall_start, 3),
            execution_mode=self.scenario.execution_mode,
            traffic=jr.Traffic(
                qps=self.qps, seed=t.seed, queries=len(self.traffic), source=self.traffic.source
            ),
            status=status,
            deviated=deviated,
            resilience_score=round(score, 4),
            steady_state=self.steady,
            faults=[
                jr.FaultRecord(
                    type=w.type,
                    target=w.target,
                    params=w.params,
                    start=rec.ts(w.start_s),
                    end=None if w.end_s is None else rec.ts(w.end_s),
                    probability=w.probability,
                    index=w.index,
                    boundary=w.boundary,
                    description=w.description,
                    ended_by=w.ended_by,
                    injected=w.injected or self.injectors[w.index].injected,
                )
                for w in rec.faults
            ],
            events=events,
            metrics=rec.metrics,
            impact=impact,
            detection=jr.detection(rec, preferred),
            mitigation=jr.mitigation(rec, events, impact),
            guarantees=guarantees,
            rollbacks=self.rollback_records,
            telemetry=jr.TelemetryInfo(
                db=self.store.safe_url,
                run_id=self.run_id,
                rows=rec.store.telemetry_rows,
                spool_dir=str(self.spool_dir),
            ),
            error=error,
            router={
                "mode": "hybrid" if self.semantic else "rule-only",
                "config_hash": self.config.config_hash,
                "router_version": self.config.router_version,
                "fallback": self.config.execution.fallback,
                "overrides": self.scenario.router,
            },
            alerts=firings,
            breakers=self.plane.breaker_states(),
            timeline_markers=jr.outage_markers(rec),
            mode="virtual",
            created_at=None,
        )


def _ensure_sqlite_dir(url: str | None) -> None:
    """A drill against a new SQLite file: create its folder (setup, not a fault to measure)."""
    if not url or not url.startswith("sqlite:///"):
        return
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _to_decisions(table: pa.Table) -> list[Any]:
    """``router.decision.table_to_decisions`` without a dict per row (positional, column-wise):
    the drill converts 36,000 rows per run, so the difference is a second."""
    from router.decision import DECISION_COLUMNS, Decision

    columns = [table.column(name).to_pylist() for name in DECISION_COLUMNS]
    return [Decision(*row) for row in zip(*columns, strict=True)]


def _expected_text(check: Any) -> str:
    return f"{check.name}: {check.summary}"


def _num(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _rel(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
