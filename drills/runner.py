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

This module runs the loop; each concept is its own module: ``wiring`` (the real parts on the
virtual clock), ``schedule`` (faults, toggle, rollbacks), ``segments`` (traffic through the
system and the store), ``minutes`` (per-minute metrics and alerts), ``verification`` (probes
and guarantees) and ``journal`` (the record written at the end).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drills import journal as jr
from drills.clock import VirtualClock, parse_start
from drills.minutes import MinuteMetrics
from drills.record import BreakerRecord
from drills.scenario import Scenario, load_scenario
from drills.schedule import FaultSchedule
from drills.segments import MINUTE, TrafficPlayer
from drills.verification import (
    DEFAULT_WINDOW_S,
    DrillAborted,
    SteadyStateWatch,
    evaluate_guarantees,
    resilience_score,
)
from drills.wiring import wire
from telemetry.exit_codes import ExitCode

log = logging.getLogger(__name__)

__all__ = ["DrillAborted", "DrillResult", "new_run_id", "run_scenario"]


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
            return ExitCode.ERROR
        return ExitCode.OK if self.passed else ExitCode.FAILED_CHECK

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


class _Drill:
    """One drill: the parts wired together and the loop over virtual time."""

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
        self.events = jr.EventLog(self.clock.iso, lambda: self.clock.offset_s)
        self.system = wire(
            scenario,
            clock=self.clock,
            qps=self.qps,
            semantic=semantic,
            run_id=self.run_id,
            db=db,
            spool_dir=spool_dir,
            on_breaker=self._on_breaker,
        )
        self.record = self.system.record
        self.schedule = FaultSchedule(
            scenario, self.system, self.clock, self.events, drain=lambda why: self.player.drain(why)
        )
        self.player = TrafficPlayer(
            self.system,
            self.clock,
            self.events,
            run_id=self.run_id,
            duration=self.duration,
            route_splits=self.schedule.route_splits,
        )
        self.minutes = MinuteMetrics(self.record, self.system.engine, self.clock, self.events)
        self.watch = SteadyStateWatch(
            scenario, self.record, self.clock, self.events, self.player.open_frame
        )

    def _on_breaker(self, event: Any) -> None:
        tier = self.record.model_tiers.get(event.model, "?")
        self.record.breakers.append(
            BreakerRecord(
                offset_s=float(event.ts),
                model=event.model,
                tier=tier,
                old=event.old.value,
                new=event.new.value,
                reason=event.reason,
                calls=self.system.upstream.calls[event.model],
            )
        )
        self.events.add(
            f"breaker_{event.new.value}",
            float(event.ts),
            model=event.model,
            tier=tier,
            old=event.old.value,
            reason=event.reason,
        )

    # --- the run -------------------------------------------------------------------------------
    def _close_minute(self, m0: float, m1: float) -> None:
        self.minutes.close(m0, m1, self.player.minute_frame(m0, m1), self.player.take_counters())
        if any(w.start_s < m1 and (w.end_s is None or w.end_s > m0) for w in self.record.faults):
            self.watch.sample(m1)
        self.player.drain("periodic")
        self.record.upstream_calls_by_model = dict(self.system.upstream.calls)

    def _main(self) -> None:
        points = self.schedule.points()
        before_at = self.schedule.first_fault_s
        if before_at is None:
            before_at = min(
                self.duration,
                max((s.window for s in self.scenario.steady_state), default=DEFAULT_WINDOW_S),
            )
        before_done = False
        minute_index = 0
        for t0, t1 in zip(points, points[1:], strict=False):
            if not before_done and t0 >= before_at:
                self.watch.before(t0)
                before_done = True
            self.schedule.at(t0)
            self.player.segment(t0, t1)
            if t1 % MINUTE == 0:
                self._close_minute(t1 - MINUTE, t1)
                minute_index += 1
                if self.progress is not None:
                    self.progress(t1, self.duration)
                if self.on_minute is not None:
                    self.on_minute(minute_index)
        if not before_done:
            self.watch.before(self.duration)

    def run(self) -> DrillResult:
        status, error = "completed", None
        store = self.system.store
        try:
            store.start_run(
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
                self.system.config.config_hash,
                started_at=self.clock.start,
            )
        except Exception as exc:  # noqa: BLE001 - run metadata is not worth losing the drill
            log.warning("could not record the run in the store (%s); decisions spool", exc)
        self.events.add(
            "drill_started",
            0.0,
            scenario=self.scenario.name,
            run_id=self.run_id,
            qps=self.qps,
            queries=len(self.system.traffic),
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
            self.schedule.finish(status)
            try:
                self.player.drain("final")
            except Exception as exc:  # noqa: BLE001
                log.error("final drain failed: %s", type(exc).__name__)
        return self._conclude(status, error)

    def _conclude(self, status: str, error: str | None) -> DrillResult:
        if status == "completed":
            self.watch.after()
        self.schedule.close_windows()
        upstream = self.system.upstream
        self.record.upstream_calls_by_model = dict(upstream.calls)
        self.record.billed_usd = upstream.billed_usd
        self.player.store_facts()
        guarantees = evaluate_guarantees(self.scenario, self.record, status)
        score = resilience_score(guarantees)
        self.watch.summarise_during()
        self.events.add(
            "drill_finished", self.clock.offset_s, status=status, resilience_score=score
        )
        journal = self._journal(status, error, guarantees, score)
        path = jr.write_journal(journal, self.out)
        store = self.system.store
        try:
            store.finish_run(
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
        store.close()
        if not store.spool.pending():
            with contextlib.suppress(OSError):  # removes the folder only when it is empty
                self.system.spool_dir.rmdir()
        return DrillResult(journal, path)

    def _journal(
        self, status: str, error: str | None, guarantees: list[jr.GuaranteeResult], score: float
    ) -> jr.Journal:
        rec = self.record
        sc = self.scenario
        system = self.system
        impact = jr.impact(
            rec, queries=len(system.traffic), upstream_calls=system.upstream.total_calls
        )
        events = self.events.in_order()
        config = system.config
        return jr.Journal(
            run_id=self.run_id,
            mode="virtual",
            name=sc.name,
            title=sc.title,
            description=sc.description,
            tags=list(sc.tags),
            failure_mode=getattr(sc, "failure_mode", None),
            scenario_file=_rel(sc.source),
            scenario_hash=sc.scenario_hash(),
            execution_mode=sc.execution_mode,
            created_at=None,
            started_at=self.clock.iso(0.0),
            ended_at=self.clock.iso(self.clock.offset_s),
            wall_seconds=round(time.perf_counter() - self.wall_start, 3),
            traffic=jr.Traffic(
                qps=self.qps,
                seed=sc.traffic.seed,
                queries=len(system.traffic),
                source=system.traffic.source,
            ),
            router={
                "mode": "hybrid" if self.semantic else "rule-only",
                "config_hash": config.config_hash,
                "router_version": config.router_version,
                "fallback": config.execution.fallback,
                "overrides": sc.router,
            },
            status=status,
            error=error,
            deviated=self.watch.deviated,
            resilience_score=round(score, 4),
            steady_state=self.watch.steady,
            faults=self.schedule.fault_records(),
            events=events,
            metrics=rec.metrics,
            impact=impact,
            detection=jr.detection(rec, sc.guarantees),
            mitigation=jr.mitigation(rec, events, impact),
            timeline_markers=jr.outage_markers(rec),
            alerts=jr.engine_firings(system.engine.firings(), rec),
            breakers=system.plane.breaker_states(),
            guarantees=guarantees,
            rollbacks=self.schedule.rollback_records,
            telemetry=jr.TelemetryInfo(
                db=system.store.safe_url,
                run_id=self.run_id,
                rows=rec.store.telemetry_rows,
                spool_dir=str(system.spool_dir),
            ),
        )


def _rel(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
