"""Guarantee checks: each decides one promise after the drill from a
:class:`~drills.record.DrillRecord`, and says exactly what was expected, what happened and why
(``expected_text`` / ``actual_text`` / ``evidence``), so a failing drill reads like a bug report
rather than a red cross.

A check is a function ``(record, params, expect) -> CheckOutcome`` registered with ``@check``
(its name, summary, ``Params`` and ``Expect`` models); ``CHECKS`` maps names to ``Check``
classes, which the scenario schema validates against and the runner instantiates.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, model_validator

from drills.clock import format_duration
from drills.probes import LatencyP95Probe, LatencyParams
from drills.record import DrillRecord, FaultSelector, FaultWindow, ParamsModel
from drills.registry import Registry
from router.decision import Outcome, ReasonCode
from router.durations import Duration
from telemetry import stats
from telemetry.metric_registry import EXECUTED, FALLBACK_CODE, has_reason_code
from telemetry.metric_registry import format_value as _fmt


def _executed(df: pd.DataFrame) -> pd.DataFrame:
    return df[EXECUTED.mask(df, ())]


def _has_code(df: pd.DataFrame, code: str) -> np.ndarray:
    return has_reason_code(df["reason_codes"], code)


def _clean(x: Any) -> Any:
    """JSON-safe numbers: numpy scalars to Python, NaN to None."""
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


class Bounds(ParamsModel):
    """``min`` / ``max`` / ``equals`` bounds a check's expect block may use."""

    min: float | None = None
    max: float | None = None
    equals: float | None = None

    def holds(self, value: float | None) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if self.equals is not None and value != self.equals:
            return False
        if self.min is not None and value < self.min:
            return False
        return self.max is None or value <= self.max

    def describe(self) -> str:
        parts = []
        if self.equals is not None:
            parts.append(f"exactly {_fmt(self.equals)}")
        if self.min is not None:
            parts.append(f"at least {_fmt(self.min)}")
        if self.max is not None:
            parts.append(f"at most {_fmt(self.max)}")
        return " and ".join(parts) or "any value"


class _BoundsExpect(Bounds):
    @model_validator(mode="after")
    def _some(self) -> _BoundsExpect:
        if self.min is None and self.max is None and self.equals is None:
            raise ValueError("give at least one of min, max, equals")
        return self


# ----------------------------------------------------------------------------- the check shape


@dataclass
class CheckOutcome:
    passed: bool
    expected_text: str
    actual: dict[str, Any]
    actual_text: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.actual = {k: _clean(v) for k, v in self.actual.items()}


class Check(ABC):
    """One guarantee. ``evaluate`` never raises for a plain failure; it explains it."""

    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = ParamsModel
    Expect: ClassVar[type[BaseModel]] = ParamsModel
    rule_param: ClassVar[str | None] = None
    """Name of the param holding an alert-rule name (validated against the drill's rules)."""

    def __init__(self, params: BaseModel, expect: BaseModel) -> None:
        self.params = params
        self.expect = expect

    @abstractmethod
    def evaluate(self, record: DrillRecord) -> CheckOutcome: ...


CHECKS: Registry[Check] = Registry("check", "name")
"""Checks by name, in the order they are declared below; add one with ``@check`` (or
``CHECKS.add`` for a ``Check`` subclass, see ``drills.registry``)."""

Evaluate = Callable[[DrillRecord, Any, Any], CheckOutcome]


def check(
    name: str,
    *,
    params: type[BaseModel] = ParamsModel,
    expect: type[BaseModel] = ParamsModel,
    rule_param: str | None = None,
) -> Callable[[Evaluate], Evaluate]:
    """Register ``evaluate(record, params, expect)`` as the check ``name``: a ``Check`` class
    with these attributes goes into ``CHECKS`` (its summary is the docstring, on one line);
    the function itself is returned unchanged."""

    def register(evaluate: Evaluate) -> Evaluate:
        summary = " ".join((evaluate.__doc__ or "").split())
        cls_name = "".join(part.title() for part in name.split("_")) + "Check"
        attrs = {
            "__doc__": summary,
            "__module__": evaluate.__module__,
            "name": name,
            "summary": summary,
            "Params": params,
            "Expect": expect,
            "rule_param": rule_param,
            "evaluate": lambda self, record: evaluate(record, self.params, self.expect),
        }
        CHECKS.add(type(cls_name, (Check,), attrs))
        return evaluate

    return register


# ----------------------------------------------------------------------------- the checks


class _During(ParamsModel):
    during: Literal["all", "faults"] = "all"


def _scope(record: DrillRecord, during: str) -> tuple[pd.DataFrame, int, str]:
    """(decisions, queries, label) for the whole drill or the fault windows."""
    if during == "faults":
        windows = record.faults
        df = record.during(windows)
        queries = sum(record.queries(w.start_s, record.end_of(w)) for w in windows)
        return df, queries, "during the faults"
    return record.frame(), record.queries(), "over the whole drill"


class _MinShare(ParamsModel):
    min: float = Field(default=1.0, ge=0, le=1)


@check("decision_availability", params=_During, expect=_MinShare)
def decision_availability_check(record: DrillRecord, p: _During, e: _MinShare) -> CheckOutcome:
    """every query got a decision (decisions / queries >= min)"""
    df, queries, label = _scope(record, p.during)
    decisions = df["decision_id"].nunique()
    ratio = decisions / queries if queries else 1.0
    minimum = e.min
    return CheckOutcome(
        ratio >= minimum,
        f"decisions / queries >= {minimum:g} {label}",
        {"decisions": decisions, "queries": queries, "ratio": ratio},
        f"{decisions} decisions for {queries} queries ({ratio:.4%})",
        {"unanswered_queries": queries - decisions},
    )


class _RuleFault(ParamsModel):
    rule: str
    fault: FaultSelector | None = None
    each: bool = False


class _Within(ParamsModel):
    within: Duration


def _first_fired(record: DrillRecord, rule: str, since_s: float) -> tuple[float | None, bool]:
    """(offset of the first firing after ``since_s``, already firing at ``since_s``).

    An alert observed at ``since_s`` itself closed a bucket that ended there, so it reflects the
    time before: it counts as already firing, not as a detection."""
    firing_at_start = False
    for a in record.alerts:
        if a.rule != rule:
            continue
        if a.offset_s <= since_s:
            firing_at_start = a.kind == "fired"
            continue
        if firing_at_start:
            return since_s, True
        if a.kind == "fired":
            return a.offset_s, False
    return (since_s, True) if firing_at_start else (None, False)


@check("alert_fired", params=_RuleFault, expect=_Within, rule_param="rule")
def alert_fired_check(record: DrillRecord, p: _RuleFault, e: _Within) -> CheckOutcome:
    """an alert rule fires within a time of the fault starting (each fault, optionally)"""
    within = e.within
    windows = record.windows(p.fault)
    what = p.fault.describe() if p.fault else "fault"
    expected = f"alert {p.rule} fires within {format_duration(within)} of " + (
        f"each {what} starting" if p.each else f"the first {what} starting"
    )
    if not windows:
        fired, _ = _first_fired(record, p.rule, 0.0)
        return CheckOutcome(
            False,
            expected,
            {"fired_after_s": None, "faults": 0},
            "no matching fault was injected"
            + (f"; the alert fired at {record.ts(fired)}" if fired is not None else ""),
            {"rule": p.rule, "condition": record.rules.get(p.rule)},
        )
    targets = windows if p.each else windows[:1]
    results = []
    for w in targets:
        fired, already = _first_fired(record, p.rule, w.start_s)
        delay = None if fired is None else fired - w.start_s
        results.append(
            {
                "fault_index": w.index,
                "fault_type": w.type,
                "fault_start": record.ts(w.start_s),
                "fired_at": None if fired is None else record.ts(fired),
                "fired_after_s": delay,
                "already_firing": already,
                "ok": delay is not None and delay <= within,
            }
        )
    passed = all(r["ok"] for r in results)
    delays = [r["fired_after_s"] for r in results if r["fired_after_s"] is not None]
    worst = max(delays) if len(delays) == len(results) else None
    if len(results) == 1:
        r = results[0]
        actual_text = (
            f"did not fire (fault started {r['fault_start']})"
            if r["fired_after_s"] is None
            else f"fired {r['fired_after_s']:.0f} s after the fault started ({r['fired_at']})"
            + (" — it was already firing" if r["already_firing"] else "")
        )
    else:
        missed = [r for r in results if not r["ok"]]
        actual_text = f"{len(results) - len(missed)} of {len(results)} faults detected in time"
        if worst is not None:
            actual_text += f"; slowest detection {worst:.0f} s"
        if missed:
            actual_text += "; missed: " + ", ".join(
                f"#{r['fault_index']} at {r['fault_start']}"
                + (
                    f" (fired after {r['fired_after_s']:.0f} s)"
                    if r["fired_after_s"] is not None
                    else " (never fired)"
                )
                for r in missed
            )
    return CheckOutcome(
        passed,
        expected,
        {"fired_after_s": worst, "detections": len(delays), "faults": len(results)},
        actual_text,
        {"rule": p.rule, "condition": record.rules.get(p.rule), "faults": results},
    )


class _RuleDuring(ParamsModel):
    rule: str
    during: Literal["all", "faults"] = "all"


@check("alert_not_fired", params=_RuleDuring, rule_param="rule")
def alert_not_fired_check(record: DrillRecord, p: _RuleDuring, e: ParamsModel) -> CheckOutcome:
    """an alert rule never fires (a false page is a failure too)"""
    fired = [a for a in record.alerts if a.rule == p.rule and a.kind == "fired"]
    if p.during == "faults":
        fired = [
            a
            for a in fired
            if any(w.start_s <= a.offset_s <= record.end_of(w) + 60 for w in record.faults)
        ]
    return CheckOutcome(
        not fired,
        f"alert {p.rule} does not fire" + (" during the faults" if p.during == "faults" else ""),
        {"firings": len(fired)},
        "never fired"
        if not fired
        else f"fired {len(fired)} time(s), first at {record.ts(fired[0].offset_s)}",
        {"rule": p.rule, "fired_at": [record.ts(a.offset_s) for a in fired]},
    )


class _BreakerParams(ParamsModel):
    model: str | None = None
    tier: str | None = None
    fault: FaultSelector | None = None


class _BreakerExpect(ParamsModel):
    within_calls: int | None = Field(default=None, ge=1)
    within: Duration | None = None

    @model_validator(mode="after")
    def _some(self) -> _BreakerExpect:
        if self.within_calls is None and self.within is None:
            raise ValueError("give within_calls (calls to the model) and/or within (a duration)")
        return self


def _breaker_models(
    record: DrillRecord, p: _BreakerParams, window: FaultWindow | None
) -> list[str]:
    """The target's models that were called while the fault was on (a model nobody calls
    cannot trip its breaker, so it is not held to the guarantee)."""
    if p.model is not None:
        return [p.model]
    models = [m for m, t in record.model_tiers.items() if p.tier is None or t == p.tier]
    if window is None:
        return [m for m in models if record.upstream_calls_by_model.get(m, 0) > 0]
    end = window.calls_at_end if window.calls_at_end is not None else record.upstream_calls_by_model
    return [m for m in models if end.get(m, 0) - window.calls_at_start.get(m, 0) > 0]


@check("breaker_opened", params=_BreakerParams, expect=_BreakerExpect)
def breaker_opened_check(record: DrillRecord, p: _BreakerParams, e: _BreakerExpect) -> CheckOutcome:
    """the circuit breaker of the target opens within N calls and/or a time"""
    windows = record.windows(p.fault) or record.faults
    window = windows[0] if windows else None
    start = window.start_s if window else 0.0
    calls_at_start = window.calls_at_start if window else {}
    models = _breaker_models(record, p, window)
    bound = []
    if e.within_calls is not None:
        bound.append(f"{e.within_calls} calls")
    if e.within is not None:
        bound.append(format_duration(e.within))
    who = p.model or (f"tier {p.tier}" if p.tier else "the target")
    expected = f"breaker of {who} opens within {' and '.join(bound)} of the fault starting"
    rows = []
    for m in models:
        opened = next(
            (
                b
                for b in record.breakers
                if b.model == m and b.new == "open" and b.offset_s >= start
            ),
            None,
        )
        if opened is None:
            rows.append({"model": m, "opened_at": None, "calls": None, "after_s": None})
            continue
        calls = opened.calls - calls_at_start.get(m, 0)
        after = opened.offset_s - start
        ok = (e.within_calls is None or calls <= e.within_calls) and (
            e.within is None or after <= e.within
        )
        rows.append(
            {
                "model": m,
                "opened_at": record.ts(opened.offset_s),
                "calls": calls,
                "after_s": round(after, 3),
                "reason": opened.reason,
                "ok": ok,
            }
        )
    passed = bool(rows) and all(r.get("ok") for r in rows)
    if not rows:
        text = f"no model of {who} received calls during the fault"
    else:
        text = "; ".join(
            f"{r['model']} opened after {r['calls']} calls, {r['after_s']:.1f} s"
            if r["opened_at"]
            else f"{r['model']} never opened"
            for r in rows
        )
    worst_calls = max((r["calls"] for r in rows if r["calls"] is not None), default=None)
    return CheckOutcome(
        passed,
        expected,
        {"models": len(rows), "max_calls": worst_calls},
        text,
        {"breakers": rows},
    )


@check("breaker_recovers", params=_BreakerParams, expect=_Within)
def breaker_recovers_check(record: DrillRecord, p: _BreakerParams, e: _Within) -> CheckOutcome:
    """breakers of the target let traffic through again (closed, or half-open awaiting trial
    calls) within a time of the fault ending"""
    within = e.within
    windows = record.windows(p.fault) or record.faults
    end = max((record.end_of(w) for w in windows), default=0.0)
    who = p.model or (f"tier {p.tier}" if p.tier else "every model")
    expected = (
        f"breakers of {who} no longer open within {format_duration(within)} of the fault ending"
    )
    models = sorted(
        {
            b.model
            for b in record.breakers
            if (p.model is None or b.model == p.model) and (p.tier is None or b.tier == p.tier)
        }
    )
    rows = []
    for m in models:
        events = [b for b in record.breakers if b.model == m]
        last_open = max((b.offset_s for b in events if b.new == "open"), default=None)
        state = events[-1].new
        left = next(
            (
                b.offset_s
                for b in events
                if last_open is not None and b.offset_s >= last_open and b.new != "open"
            ),
            None,
        )
        after = None if left is None else max(0.0, left - end)
        ok = state != "open" and (after is None or after <= within)
        rows.append(
            {
                "model": m,
                "state_at_end": state,
                "recovered_at": None if left is None else record.ts(left),
                "after_s": None if after is None else round(after, 3),
                "ok": ok,
            }
        )
    passed = all(r["ok"] for r in rows)
    text = (
        "no breaker changed state"
        if not rows
        else "; ".join(
            f"{r['model']} {r['state_at_end']} at the end, out of open {r['after_s']:.0f} s "
            "after the fault ended"
            if r["after_s"] is not None
            else f"{r['model']} is {r['state_at_end']} at the end"
            for r in rows
        )
    )
    worst = max((r["after_s"] for r in rows if r["after_s"] is not None), default=None)
    return CheckOutcome(
        passed,
        expected,
        {"recovered_after_s": worst, "models": len(rows)},
        text,
        {"fault_end": record.ts(end), "breakers": rows},
    )


@check("no_silent_downgrade")
def no_silent_downgrade_check(record: DrillRecord, p: ParamsModel, e: ParamsModel) -> CheckOutcome:
    """no decision served by another tier than routed; every fallback says FALLBACK_SAME_TIER"""
    df = _executed(record.frame())
    served_tier = df["model"].map(record.model_tiers)
    other_tier = df[served_tier != df["routed_tier"]]
    switched = df[df["model"] != df["routed_model"]]
    unmarked = switched[~_has_code(switched, FALLBACK_CODE)] if len(switched) else switched
    passed = other_tier.empty and unmarked.empty
    fallbacks = int((df["outcome"] == "fallback").sum())
    sample = pd.concat([other_tier, unmarked]).head(5)
    return CheckOutcome(
        passed,
        "every executed decision is served by a model of the routed tier, and every one "
        f"served by another model than routed carries {FALLBACK_CODE}",
        {
            "downgrades": len(other_tier),
            "unmarked_switches": len(unmarked),
            "fallbacks": fallbacks,
        },
        f"{len(switched)} decisions served by another model than routed "
        f"({fallbacks} fallbacks), {len(other_tier)} by another tier, "
        f"{len(unmarked)} without {FALLBACK_CODE}",
        {
            "executed": len(df),
            "offending_decisions": [
                {
                    "decision_id": r.decision_id,
                    "routed": r.routed_model,
                    "served": r.model,
                    "outcome": r.outcome,
                }
                for r in sample.itertuples()
            ],
        },
    )


class _RejectedExpect(ParamsModel):
    min_rejected: int = Field(default=0, ge=0)


@check("rejected_retryable", expect=_RejectedExpect)
def rejected_retryable_check(
    record: DrillRecord, p: ParamsModel, e: _RejectedExpect
) -> CheckOutcome:
    """rejected decisions carry UPSTREAM_UNAVAILABLE and a unique decision_id to retry with"""
    df = record.frame()
    rej = df[df["outcome"] == Outcome.REJECTED.value]
    bad_code = rej[rej["error_code"] != "UPSTREAM_UNAVAILABLE"]
    no_id = rej[rej["decision_id"].isna() | (rej["decision_id"].astype(str) == "")]
    dup = int(rej["decision_id"].duplicated().sum())
    minimum = e.min_rejected
    passed = bad_code.empty and no_id.empty and dup == 0 and len(rej) >= minimum
    exp = "every rejected decision has error_code UPSTREAM_UNAVAILABLE and its own decision_id"
    if minimum:
        exp += f"; at least {minimum} rejected"
    return CheckOutcome(
        passed,
        exp,
        {"rejected": len(rej), "wrong_code": len(bad_code), "no_id": len(no_id), "dup": dup},
        f"{len(rej)} rejected; {len(bad_code)} with another error code, {len(no_id)} without "
        f"a decision_id, {dup} duplicate ids",
        {"sample_decision_ids": rej["decision_id"].head(3).tolist()},
    )


@check("telemetry_completeness", expect=_MinShare)
def telemetry_completeness_check(record: DrillRecord, p: ParamsModel, e: _MinShare) -> CheckOutcome:
    """rows in the store for the run == decisions, no duplicates, spool empty after drain"""
    s = record.store
    decisions = int(record.frame()["decision_id"].nunique())
    ratio = (decisions - s.missing_ids) / decisions if decisions else 1.0
    minimum = e.min
    dups = s.telemetry_rows - s.distinct_ids
    passed = (
        s.error is None
        and ratio >= minimum
        and s.unexpected_ids == 0
        and dups == 0
        and s.spool_rows_pending == 0
    )
    text = (
        f"{s.telemetry_rows} rows stored for {decisions} decisions: {s.missing_ids} missing, "
        f"{s.unexpected_ids} unexpected, {dups} duplicated; spool holds "
        f"{s.spool_rows_pending} rows after the final drain "
        f"({s.spooled_rows_total} rows were spooled during the drill)"
    )
    if s.error:
        text = f"could not read the store: {s.error}; " + text
    return CheckOutcome(
        passed,
        f"every decision stored exactly once (ratio >= {minimum:g}), spool empty after drain",
        {
            "rows": s.telemetry_rows,
            "decisions": decisions,
            "missing": s.missing_ids,
            "duplicates": dups,
            "spool_rows": s.spool_rows_pending,
            "ratio": ratio,
        },
        text,
        {
            "missing_sample": s.missing_sample,
            "spooled_rows_total": s.spooled_rows_total,
            "drained_rows": s.drained_rows,
            "write_failures": s.write_failures,
        },
    )


@check("upstream_calls", params=_During, expect=_BoundsExpect)
def upstream_calls_check(record: DrillRecord, p: _During, e: _BoundsExpect) -> CheckOutcome:
    """calls sent to models (equals / max / min), e.g. zero under a misconfigured toggle"""
    during = p.during
    if during == "faults":
        calls = sum(record.upstream_calls(w.start_s, record.end_of(w)) for w in record.faults)
        label = "during the faults"
    else:
        calls = record.upstream_calls()
        label = "over the whole drill"
    df, _, _ = _scope(record, during)
    executed = int((~df["simulated"].astype(bool)).sum()) if len(df) else 0
    bounds = e
    return CheckOutcome(
        bounds.holds(calls),
        f"upstream calls {label}: {bounds.describe()}",
        {"calls": calls, "executed_decisions": executed},
        f"{calls} calls sent upstream {label} ({executed} decisions not simulated)",
        {"calls_by_model": dict(record.upstream_calls_by_model)},
    )


@check("all_simulated", params=_During)
def all_simulated_check(record: DrillRecord, p: _During, e: ParamsModel) -> CheckOutcome:
    """every decision simulated, not executed, execution_mode_active false"""
    df, _, label = _scope(record, p.during)
    bad = df[
        ~df["simulated"].astype(bool)
        | df["execution_mode_active"].astype(bool)
        | (df["outcome"] != Outcome.NOT_EXECUTED.value)
    ]
    return CheckOutcome(
        bad.empty,
        f"every decision {label} is simulated and not executed",
        {"decisions": len(df), "executed": len(bad)},
        f"{len(df) - len(bad)} of {len(df)} decisions simulated; {len(bad)} executed",
        {"executed_sample": bad["decision_id"].head(5).tolist()},
    )


class _RecoverExpect(ParamsModel):
    within_pct: float | None = Field(default=None, gt=0)
    within_ms: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some(self) -> _RecoverExpect:
        if self.within_pct is None and self.within_ms is None:
            raise ValueError("give within_pct and/or within_ms")
        return self


@check("latency_recovers", params=LatencyParams, expect=_RecoverExpect)
def latency_recovers_check(
    record: DrillRecord, p: LatencyParams, e: _RecoverExpect
) -> CheckOutcome:
    """p95 latency after the rollback is within X of the p95 before the first fault (or above it
    by less than sampling noise: an exact binomial test on the calls above the limit)"""
    probe = LatencyP95Probe(p)
    before_w = record.before_window or (0.0, record.faults[0].start_s if record.faults else 0)
    after_w = record.after_window or (record.duration_s - 300, record.duration_s)
    before = probe.measure(record, *before_w)
    after = probe.measure(record, *after_w)
    limit = math.inf
    if before is not None:
        if e.within_pct is not None:
            limit = min(limit, before * (1 + e.within_pct / 100))
        if e.within_ms is not None:
            limit = min(limit, before + e.within_ms)
    # A p95 over a few dozen calls (a live drill at 15x) moves +-20 % between two windows of the
    # same traffic; "not recovered" needs evidence that the p95 itself is above the limit.
    test = stats.quantile_above(probe.samples(record, *after_w), limit, 0.95)
    within = after is not None and after <= limit
    passed = before is not None and after is not None and (within or not test.exceeds())
    bound = " or ".join(
        b
        for b in (
            f"+{e.within_pct:g} %" if e.within_pct is not None else "",
            f"+{e.within_ms:g} ms" if e.within_ms is not None else "",
        )
        if b
    )
    scope = f"tier {p.tier}" if p.tier else ("interactive tiers" if p.interactive else "all")
    actual_text = (
        f"p95 {_fmt(before, 'ms')} before ({record.ts(before_w[0])}–{record.ts(before_w[1])}),"
        f" {_fmt(after, 'ms')} after ({record.ts(after_w[0])}–{record.ts(after_w[1])})"
    )
    if after is not None and before is not None and not within:
        verdict = "above it: the p95 is" if test.exceeds() else "within noise: not shown to be"
        actual_text += f"; limit {_fmt(limit, 'ms')}, {test.describe()}, {verdict} above it"
    return CheckOutcome(
        passed,
        f"p95 latency ({scope}) after the rollback within {bound} of before the fault"
        " (an exact binomial test at 95 % decides a point estimate above the limit)",
        {
            "before_ms": before,
            "after_ms": after,
            "limit_ms": None if limit == math.inf else limit,
            "after_calls": test.n,
            "after_calls_above_limit": test.above,
            "p_value": test.p_value,
        },
        actual_text,
        {"before_window": list(before_w), "after_window": list(after_w)},
    )


class _SlaParams(ParamsModel):
    rule: str
    metric: str = "actual_latency_p95_interactive_ms"
    threshold: float = 200.0


class _LeadExpect(ParamsModel):
    min_lead: Duration = 0.0
    within: Duration | None = None
    """Optional: the warning must also come within this time of the fault starting (a warning
    long after the fault began is noise, not detection)."""


@check("detected_before_sla", params=_SlaParams, expect=_LeadExpect, rule_param="rule")
def detected_before_sla_check(record: DrillRecord, p: _SlaParams, e: _LeadExpect) -> CheckOutcome:
    """an early-warning alert fires before the first minute in which the SLA is breached"""
    lead_min = e.min_lead
    within = e.within
    start = record.faults[0].start_s if record.faults else 0.0
    fired, already = _first_fired(record, p.rule, start)
    breach = next(
        (
            m
            for m in record.metrics
            if m.get(p.metric) is not None
            and not (isinstance(m[p.metric], float) and math.isnan(m[p.metric]))
            and m[p.metric] > p.threshold
        ),
        None,
    )
    breach_s = None if breach is None else breach["offset_s"]
    expected = (
        f"alert {p.rule} fires (after the fault starts) "
        + (
            f"at least {format_duration(lead_min)} before"
            if lead_min > 0
            else "no later than the start of"
        )
        + f" the first minute with {p.metric} > {p.threshold:g}"
        + (f", within {format_duration(within)} of the fault starting" if within else "")
    )
    if already:
        return CheckOutcome(
            False,
            expected,
            {"lead_s": None},
            f"the early warning was already firing when the fault started "
            f"({record.ts(start)}): it is noise at this threshold, not detection",
            {"rule": p.rule},
        )
    if fired is None:
        text = "the early warning never fired"
        if breach_s is not None:
            text += f"; the SLA was breached in the minute starting {record.ts(breach_s)}"
        return CheckOutcome(
            False, expected, {"lead_s": None}, text, {"breach_at": breach and breach["ts"]}
        )
    if within is not None and fired - start > within:
        return CheckOutcome(
            False,
            expected,
            {"lead_s": None, "fired_after_s": fired - start},
            f"the early warning fired only {fired - start:.0f} s after the fault started "
            f"({record.ts(fired)})",
            {"rule": p.rule, "breach_at": None if breach_s is None else record.ts(breach_s)},
        )
    if breach_s is None:
        lead = record.duration_s - fired
        text = (
            f"fired at {record.ts(fired)}; the SLA was never breached during the drill "
            f"(lead >= {lead:.0f} s)"
        )
        return CheckOutcome(
            True,
            expected,
            {"lead_s": lead, "breached": False},
            text,
            {"fired_at": record.ts(fired)},
        )
    lead = breach_s - fired
    value = breach[p.metric]
    return CheckOutcome(
        lead >= lead_min,
        expected,
        {"lead_s": lead, "breached": True},
        f"fired at {record.ts(fired)}; first breaching minute starts {record.ts(breach_s)} "
        f"({p.metric} {value:.0f}): lead {lead:.0f} s",
        {"fired_at": record.ts(fired), "breach_at": record.ts(breach_s), "breach_value": value},
    )


class _CodeParams(ParamsModel):
    code: str
    fault: FaultSelector | None = None
    each: bool = True
    only_during_faults: bool = False

    @model_validator(mode="after")
    def _known(self) -> _CodeParams:
        try:
            ReasonCode.parse(self.code)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return self


@check("reason_code", params=_CodeParams, expect=_Within)
def reason_code_check(record: DrillRecord, p: _CodeParams, e: _Within) -> CheckOutcome:
    """decisions carry a reason code within a time of each fault starting"""
    within = e.within
    windows = record.windows(p.fault)
    targets = windows if p.each else windows[:1]
    df = record.frame()
    coded = df[_has_code(df, p.code)] if len(df) else df
    rows = []
    for w in targets:
        inside = coded[(coded["offset_s"] >= w.start_s) & (coded["offset_s"] < record.end_of(w))]
        first = float(inside["offset_s"].min()) if len(inside) else None
        delay = None if first is None else first - w.start_s
        rows.append(
            {
                "fault_index": w.index,
                "fault_start": record.ts(w.start_s),
                "first_at": None if first is None else record.ts(first),
                "after_s": delay,
                "decisions": len(inside),
                "ok": delay is not None and delay <= within,
            }
        )
    outside = 0
    if p.only_during_faults and len(coded):
        in_any = np.zeros(len(coded), dtype=bool)
        off = coded["offset_s"].to_numpy(float)
        for w in record.faults:
            in_any |= (off >= w.start_s) & (off < record.end_of(w))
        outside = int((~in_any).sum())
    passed = bool(rows) and all(r["ok"] for r in rows) and outside == 0
    worst = max((r["after_s"] for r in rows if r["after_s"] is not None), default=None)
    text = (
        "no matching fault was injected"
        if not rows
        else f"{sum(r['ok'] for r in rows)} of {len(rows)} faults marked in time"
        + (f" (slowest {worst:.1f} s)" if worst is not None else "")
        + f"; {len(coded)} decisions carry {p.code}"
        + (f", {outside} outside any fault" if p.only_during_faults else "")
    )
    return CheckOutcome(
        passed,
        f"decisions carry {p.code} within {format_duration(within)} of "
        + ("each fault starting" if p.each else "the fault starting")
        + (", and never outside a fault" if p.only_during_faults else ""),
        {"after_s": worst, "coded": len(coded), "outside": outside},
        text,
        {"faults": rows},
    )


class _OutcomeParams(_During):
    outcome: Literal["ok", "fallback", "error", "timeout", "rejected", "not_executed", "errors"]


@check("outcome_count", params=_OutcomeParams, expect=_BoundsExpect)
def outcome_count_check(record: DrillRecord, p: _OutcomeParams, e: _BoundsExpect) -> CheckOutcome:
    """how many decisions ended with an outcome ('errors' = error or timeout)"""
    df, _, label = _scope(record, p.during)
    wanted = ("error", "timeout") if p.outcome == "errors" else (p.outcome,)
    n = int(df["outcome"].isin(wanted).sum()) if len(df) else 0
    bounds = e
    return CheckOutcome(
        bounds.holds(n),
        f"decisions with outcome {p.outcome} {label}: {bounds.describe()}",
        {"count": n},
        f"{n} decisions with outcome {p.outcome} {label}",
        {"outcomes": df["outcome"].value_counts().to_dict() if len(df) else {}},
    )


class _CostTolerance(ParamsModel):
    tolerance_usd: float = Field(default=1e-6, ge=0)


@check("cost_accounted", expect=_CostTolerance)
def cost_accounted_check(record: DrillRecord, p: ParamsModel, e: _CostTolerance) -> CheckOutcome:
    """every dollar billed by the models is in telemetry (store sum == billed sum)"""
    stored = record.store.stored_cost_usd
    billed = record.billed_usd
    tol = e.tolerance_usd
    # rounding: the plane rounds each decision's cost to 8 decimals
    slack = tol + 1e-8 * max(1, len(record.frame()))
    diff = abs(stored - billed)
    return CheckOutcome(
        diff <= slack and record.store.error is None,
        f"sum of actual_cost_usd in the store equals the billed total (+- ${slack:.2g})",
        {"stored_usd": stored, "billed_usd": billed, "diff_usd": diff},
        f"store ${stored:.4f}, billed ${billed:.4f} (difference ${diff:.2g})",
        {},
    )


class _ExtraCostParams(ParamsModel):
    per_query: bool = False


@check("extra_cost", params=_ExtraCostParams, expect=_BoundsExpect)
def extra_cost_check(record: DrillRecord, p: _ExtraCostParams, e: _BoundsExpect) -> CheckOutcome:
    """extra spend during the faults against the pre-fault cost per query (min / max)"""
    extra, baseline, during = extra_cost(record)
    bounds = e
    return CheckOutcome(
        bounds.holds(extra),
        f"extra spend (billed USD) during the faults: {bounds.describe()}",
        {"extra_cost_usd": extra, "baseline_per_query": baseline, "during_per_query": during},
        f"${extra:.4f} extra: {_fmt(during, '$')} per query during the faults against "
        f"{_fmt(baseline, '$')} before",
        {},
    )


def extra_cost(record: DrillRecord) -> tuple[float, float | None, float | None]:
    """(extra USD billed during the faults, billed USD per query before the first fault, billed
    USD per query during the faults). Billed means actual cost: a decision-only query costs 0."""
    if not record.faults:
        return 0.0, None, None
    start = record.faults[0].start_s
    pre = record.frame(0.0, start) if start > 0 else record.frame(0, 0)
    before = (
        float(pd.to_numeric(pre["actual_cost_usd"], errors="coerce").fillna(0.0).mean())
        if len(pre)
        else None
    )
    df = record.during(record.faults)
    if df.empty or before is None:
        return 0.0, before, None
    cost = pd.to_numeric(df["actual_cost_usd"], errors="coerce").fillna(0.0)
    during = float(cost.mean())
    return float(cost.sum() - before * len(df)), before, during


@check("spool_used", expect=_BoundsExpect)
def spool_used_check(record: DrillRecord, p: ParamsModel, e: _BoundsExpect) -> CheckOutcome:
    """rows went through the local spool during the drill (the outage path really ran)"""
    n = record.store.spooled_rows_total
    bounds = e
    return CheckOutcome(
        bounds.holds(n),
        f"rows spooled during the drill: {bounds.describe()}",
        {"spooled_rows": n, "spool_events": record.store.spool_events},
        f"{n} rows spooled in {record.store.spool_events} batches; "
        f"{record.store.drained_rows} drained back",
        {"write_failures": record.store.write_failures},
    )
