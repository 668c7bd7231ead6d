"""The fault schedule of one virtual drill: faults and toggle misconfigurations switched on and
off at their scenario times, rollbacks at theirs (and always at the end), each change recorded
as an event and a fault window. Implements ``faults.RollbackTarget`` for the rollbacks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from drills import journal as jr
from drills.clock import VirtualClock
from drills.faults import FAULTS, FaultInjector, ToggleFault
from drills.record import FaultWindow
from drills.scenario import RollbackSpec, Scenario
from drills.wiring import DrillSystem

log = logging.getLogger(__name__)


class FaultSchedule:
    """What is switched on when; ``drain`` empties the spool (the ``drain_spool`` rollback)."""

    def __init__(
        self,
        scenario: Scenario,
        system: DrillSystem,
        clock: VirtualClock,
        events: jr.EventLog,
        drain: Callable[[str], Any],
    ) -> None:
        self.scenario = scenario
        self.system = system
        self.clock = clock
        self.events = events
        self.drain = drain
        self.rollback_records: list[jr.RollbackRecord] = []
        self.windows: dict[int, FaultWindow] = {}
        self.injectors: dict[int, FaultInjector] = {}
        self.planned = scenario.timeline()
        seed = scenario.traffic.seed
        for w in self.planned:
            inj = FAULTS[w.type](
                w.index, w.params, target=w.target, probability=w.probability, seed=seed
            )
            self.injectors[w.index] = inj
            system.boundaries.add(inj)
        self.pending_rollbacks = list(enumerate(scenario.rollbacks))
        self.first_fault_s = min((w.start_s for w in self.planned), default=None)
        self.own_end = self._own_ends()
        self.route_splits = sorted(
            {w.start_s for w in self.planned if w.type == "toggle"}
            | {e for e in self.own_end.values() if e is not None}
            | {r.at for r in scenario.rollbacks if r.at is not None}
        )
        """Times the toggle may change: routing batches must not span them."""
        self.toggle_base = scenario.execution_mode
        self.toggle_now = self.toggle_base

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

    def points(self) -> list[float]:
        """Every time something is scheduled, plus every tick: the drill's segment bounds."""
        d = self.scenario.duration
        tick = self.scenario.tick
        points = {round(k * tick, 6) for k in range(int(d // tick) + 1)}
        points |= {w.start_s for w in self.planned}
        points |= {w.end_s for w in self.planned if w.end_s is not None}
        points |= {r.at for r in self.scenario.rollbacks if r.at is not None}
        if self.first_fault_s is not None:
            points.add(self.first_fault_s)
        return sorted(p for p in points if 0 <= p <= d)

    # --- faults and the toggle ----------------------------------------------------------------
    def fault_on(self, index: int) -> None:
        inj = self.injectors[index]
        now = self.clock.offset_s
        system = self.system
        system.boundaries.activate(inj, now)
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
            calls_at_start=dict(system.upstream.calls),
        )
        self.windows[index] = window
        system.record.faults.append(window)
        self.events.add(
            "fault_on",
            **jr.detail_of(window, "type", "index", "boundary", "target", "params", "description"),
            source=w.source,
        )

    def fault_off(self, inj: FaultInjector, ended_by: str) -> None:
        window = self.windows.get(inj.index)
        if window is None or window.end_s is not None:
            return
        self.system.boundaries.deactivate(inj)
        window.end_s = self.clock.offset_s
        window.ended_by = ended_by
        window.calls_at_end = dict(self.system.upstream.calls)
        window.injected = inj.injected
        self.events.add(
            "fault_off",
            type=inj.type,
            index=inj.index,
            ended_by=ended_by,
            description=window.description,
            injected=inj.injected,
        )

    def apply_toggle(self) -> None:
        override, value = self.system.boundaries.toggle_override()
        desired = value if override else self.toggle_base
        if desired == self.toggle_now:
            return
        old = self.toggle_now
        state = self.system.router.set_toggle(desired)
        self.toggle_now = desired
        self.events.add(
            "toggle_changed",
            value=desired,
            previous=old,
            effective_mode=state.mode.value,
            invalid=state.invalid,
        )

    def at(self, t: float) -> None:
        """Everything scheduled at ``t``: faults ending, rollbacks, faults starting, toggle."""
        for w in self.planned:
            inj = self.injectors[w.index]
            own_end = self.own_end.get(w.index)
            if inj.active and own_end is not None and own_end <= t:
                self.fault_off(
                    inj, "next toggle change" if w.source == "toggle_change" else "duration"
                )
        due = [(i, r) for i, r in self.pending_rollbacks if r.at is not None and r.at <= t]
        for i, r in due:
            self.pending_rollbacks.remove((i, r))
            self.run_rollback(i, r)
        for w in self.planned:
            if w.start_s == t and w.index not in self.windows:
                self.fault_on(w.index)
        self.apply_toggle()

    # --- RollbackTarget -------------------------------------------------------------------------
    def clear_faults(self, types: list[str] | None) -> str:
        active = self.system.boundaries.active()
        cleared = [f for f in active if types is None or f.type in types]
        for f in cleared:
            self.fault_off(f, "rollback clear_faults")
        self.apply_toggle()
        if not cleared:
            return "no fault was active"
        return "switched off: " + "; ".join(f.describe() for f in cleared)

    def restore_toggle(self, value: str | None, use_baseline: bool) -> str:
        for f in self.system.boundaries.active():
            if isinstance(f, ToggleFault):
                self.fault_off(f, "rollback restore_toggle")
        self.toggle_base = self.scenario.execution_mode if use_baseline else value
        self.apply_toggle()
        return f"toggle is {self.toggle_now!r}"

    def drain_spool(self) -> str:
        result = self.drain("rollback")
        if result is None:
            return "spool empty"
        return (
            f"drained {result.rows_written} rows from {result.files_drained} file(s); "
            f"{result.files_remaining} file(s) remain"
            + (f" (store error {result.error_kind})" if result.error_kind else "")
        )

    def run_rollback(self, i: int, spec: Any, note: str = "") -> None:
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
        self.events.add("rollback", type=spec.type, index=i, ok=ok, detail=detail)

    def finish(self, status: str) -> None:
        """Rollbacks always run: the scheduled ones not run yet, then a safety clear."""
        pending, self.pending_rollbacks = self.pending_rollbacks, []
        for i, r in pending:
            self.run_rollback(i, r, "" if status == "completed" else f"after {status}")
        if self.system.boundaries.active():
            self.run_rollback(-1, RollbackSpec(type="clear_faults"), f"end of drill ({status})")

    def close_windows(self) -> None:
        """Windows still open at the end end with the drill."""
        for w in self.system.record.faults:
            if w.end_s is None:
                w.end_s = self.clock.offset_s
                w.ended_by = w.ended_by or "end of drill"

    def fault_records(self) -> list[jr.FaultRecord]:
        rec = self.system.record
        return [
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
        ]
