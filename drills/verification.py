"""What a virtual drill verifies: the steady-state probes (before the first fault, every minute
while faults are on, after the drill) and, at the end, the scenario's guarantees — the
hypothesis and the verdict of Chaos Toolkit's experiment shape."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from drills import journal as jr
from drills.checks import CheckOutcome
from drills.clock import VirtualClock, format_duration
from drills.probes import PROBES
from drills.record import DrillRecord
from drills.scenario import Scenario

log = logging.getLogger(__name__)

MINUTE = 60.0
DEFAULT_WINDOW_S = 300.0
"""The before / after window of a scenario that declares no steady-state probe."""


class DrillAborted(Exception):
    """Steady state before the first fault was not met."""


class SteadyStateWatch:
    """The scenario's probes on the record. ``open_frame(since)`` returns the decisions of the
    minute not closed yet (a before-window may end mid-minute)."""

    def __init__(
        self,
        scenario: Scenario,
        record: DrillRecord,
        clock: VirtualClock,
        events: jr.EventLog,
        open_frame: Callable[[float], pd.DataFrame | None],
    ) -> None:
        self.specs = scenario.steady_state
        self.duration = scenario.duration
        self.record = record
        self.clock = clock
        self.events = events
        self.open_frame = open_frame
        self.steady = jr.SteadyState.empty()
        self.during_samples: dict[int, list[tuple[float, float | None, bool]]] = {}

    @property
    def widest(self) -> float:
        return max((s.window for s in self.specs), default=DEFAULT_WINDOW_S)

    def _probe(self, i: int, at: float, start: float) -> tuple[float | None, bool]:
        spec = self.specs[i]
        value = PROBES[spec.probe](spec.parsed_params).measure(self.record, start, at)
        return value, spec.tolerance.ok(value)

    def _result(self, i: int, at: float, start: float) -> jr.ProbeResult:
        spec = self.specs[i]
        value, ok = self._probe(i, at, start)
        return jr.ProbeResult(
            probe=spec.probe,
            window=format_duration(spec.window),
            tolerance=spec.tolerance.to_dict(),
            value=value,
            ok=ok,
            params=spec.params,
            at=self.clock.iso(at),
        )

    def _checked(self, kind: str, at: float, results: list[jr.ProbeResult]) -> bool:
        met = all(r.ok for r in results)
        probes = {r.probe: {"value": r.value, "ok": r.ok} for r in results}
        self.events.add(kind, at, met=met, probes=probes)
        return met

    def before(self, at: float) -> None:
        """Probe the window before the first fault; ``DrillAborted`` when not steady."""
        self.record.before_window = (max(0.0, at - self.widest), at)
        if not self.specs:
            return
        frames = self.record.minute_frames
        open_minute = self.open_frame(len(frames) * MINUTE)
        if open_minute is not None:
            frames.append(open_minute)
        try:
            results = [
                self._result(i, at, max(0.0, at - spec.window)) for i, spec in enumerate(self.specs)
            ]
        finally:
            if open_minute is not None:
                del frames[-1]
        self.steady.before = results
        if not self._checked("steady_state_before", at, results):
            bad = [f"{r.probe}={r.value} (tolerance {r.tolerance})" for r in results if not r.ok]
            raise DrillAborted("steady state before the first fault not met: " + "; ".join(bad))

    def sample(self, at: float) -> None:
        """One minute's probes while a fault is on."""
        for i, spec in enumerate(self.specs):
            value, ok = self._probe(i, at, max(0.0, at - spec.window))
            self.during_samples.setdefault(i, []).append((at, value, ok))

    def after(self) -> None:
        d = self.duration
        self.record.after_window = (d - self.widest, d)
        if not self.specs:
            return
        self.steady.after = [
            self._result(i, d, d - spec.window) for i, spec in enumerate(self.specs)
        ]
        self._checked("steady_state_after", d, self.steady.after)

    @property
    def deviated(self) -> bool:
        """Steady state not restored after the drill."""
        return any(not r.ok for r in self.steady.after)

    def summarise_during(self) -> None:
        out = []
        for i, spec in enumerate(self.specs):
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
                    worst=worst,
                    window=format_duration(spec.window),
                    tolerance=tol.to_dict(),
                    first_violation=self.clock.iso(violations[0]) if violations else None,
                )
            )
        self.steady.during = out


def evaluate_guarantees(
    scenario: Scenario, record: DrillRecord, status: str
) -> list[jr.GuaranteeResult]:
    """Each guarantee's check on the record; ``error`` when the drill did not complete or the
    check raised (one broken check does not hide the others)."""
    out = []
    for g in scenario.guarantees:
        check = g.build()
        verdict = "error"
        if status != "completed":
            outcome = _not_evaluated(check, f"not evaluated: the drill {status}")
        else:
            try:
                outcome = check.evaluate(record)
                verdict = "passed" if outcome.passed else "failed"
            except Exception as exc:  # noqa: BLE001
                log.exception("check %s raised", g.check)
                outcome = _not_evaluated(check, f"check raised {type(exc).__name__}: {exc}")
        out.append(
            jr.GuaranteeResult(
                **jr.detail_of(g, "id", "check", "params", "weight", "title"),
                expected=g.expect,
                **jr.detail_of(outcome, "expected_text", "actual", "actual_text", "evidence"),
                verdict=verdict,
            )
        )
    return out


def resilience_score(guarantees: list[jr.GuaranteeResult]) -> float:
    """Weighted share of the guarantees that passed (0 when none is weighted)."""
    total = sum(g.weight for g in guarantees)
    return sum(g.weight for g in guarantees if g.verdict == "passed") / total if total else 0.0


def _not_evaluated(check: Any, why: str) -> CheckOutcome:
    return CheckOutcome(False, f"{check.name}: {check.summary}", {}, why)
