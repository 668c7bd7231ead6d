"""The one state machine (``AlertEngine``) every consumer goes through, and ``evaluate`` /
``metrics_for_rules`` that replay a metrics frame through it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from telemetry.alerts.rules import CONTEXTS, AlertRule, State, format_duration, parse_duration
from telemetry.metrics import INTERACTIVE_TIERS, compute_metrics

# ----------------------------------------------------------------------------- engine


def _as_float(x: Any, metric: str) -> float:
    if x is None or x is pd.NA or x is pd.NaT:
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        raise ValueError(f"metric {metric!r}: value {x!r} is not a number") from None


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        raise ValueError(f"timestamp {t} must be tz-aware (UTC)")
    return t.tz_convert("UTC")


def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A state change worth recording: the drill journal and the pilot report list these."""

    rule: str
    kind: Literal["fired", "resolved"]
    ts: pd.Timestamp
    value: float
    severity: str
    metric: str
    comparator: str
    threshold: float
    summary: str
    active_since: pd.Timestamp
    fired_at: pd.Timestamp

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "ts": _iso(self.ts),
            "value": None if math.isnan(self.value) else self.value,
            "severity": self.severity,
            "metric": self.metric,
            "comparator": self.comparator,
            "threshold": self.threshold,
            "summary": self.summary,
            "active_since": _iso(self.active_since),
            "fired_at": _iso(self.fired_at),
        }


@dataclass(frozen=True, slots=True)
class Firing:
    """One firing interval ``[fired_at, resolved_at)``; ``resolved_at`` is None while open."""

    rule: str
    severity: str
    active_since: pd.Timestamp
    fired_at: pd.Timestamp
    resolved_at: pd.Timestamp | None
    peak_value: float

    def duration(self, until: pd.Timestamp | None = None) -> pd.Timedelta:
        end = self.resolved_at if self.resolved_at is not None else until
        if end is None:
            raise ValueError(f"firing of {self.rule!r} is still open: pass `until`")
        return end - self.fired_at


@dataclass(frozen=True, slots=True)
class RuleStatus:
    rule: str
    state: State
    active_since: pd.Timestamp | None
    fired_at: pd.Timestamp | None
    value: float


@dataclass
class _Tracker:
    rule: AlertRule
    hold_for: pd.Timedelta
    state: State = "inactive"
    active_since: pd.Timestamp | None = None
    fired_at: pd.Timestamp | None = None
    peak: float = math.nan
    value: float = math.nan
    closed: list[Firing] = field(default_factory=list)

    def _worse(self, v: float) -> float:
        if math.isnan(self.peak):
            return v
        if self.rule.comparator in (">", ">="):
            return max(self.peak, v)
        if self.rule.comparator in ("<", "<="):
            return min(self.peak, v)
        return v

    def _event(self, kind: Literal["fired", "resolved"], ts: pd.Timestamp) -> AlertEvent:
        assert self.active_since is not None and self.fired_at is not None
        r = self.rule
        return AlertEvent(
            r.name,
            kind,
            ts,
            self.value,
            r.severity,
            r.metric,
            r.comparator,
            r.threshold,
            r.summary,
            self.active_since,
            self.fired_at,
        )

    def step(self, ts: pd.Timestamp, value: float) -> AlertEvent | None:
        self.value = value
        if self.rule.holds(value):
            if self.state == "inactive":
                self.state, self.active_since, self.peak = "pending", ts, value
            else:
                self.peak = self._worse(value)
            if self.state == "pending" and ts - self.active_since >= self.hold_for:
                self.state, self.fired_at = "firing", ts
                return self._event("fired", ts)
            return None
        event = None
        if self.state == "firing":
            event = self._event("resolved", ts)
            self.closed.append(
                Firing(
                    self.rule.name,
                    self.rule.severity,
                    self.active_since,
                    self.fired_at,
                    ts,
                    self.peak,
                )
            )
        self.state, self.active_since, self.fired_at, self.peak = "inactive", None, None, math.nan
        return event

    def open_firing(self) -> Firing | None:
        if self.state != "firing":
            return None
        r = self.rule
        return Firing(r.name, r.severity, self.active_since, self.fired_at, None, self.peak)


class AlertEngine:
    """Incremental evaluator: feed one metrics row per observation, in time order.

    Rules that do not apply to ``context`` are left out (listed in ``ignored``)."""

    def __init__(self, rules: Iterable[AlertRule], context: str = "pilot") -> None:
        if context not in CONTEXTS:
            raise ValueError(f"context {context!r}; valid: {list(CONTEXTS)}")
        self.context = context
        rules = list(rules)
        names = [r.name for r in rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate rule name(s) {dupes}; names must be unique")
        self.rules = [r for r in rules if r.applies(context)]
        self.ignored = [r.name for r in rules if not r.applies(context)]
        self._trackers = {r.name: _Tracker(r, r.for_duration(context)) for r in self.rules}
        self.events: list[AlertEvent] = []
        self.last_ts: pd.Timestamp | None = None

    def observe(self, ts: Any, metrics_row: Mapping[str, Any]) -> list[AlertEvent]:
        """Advance every rule to ``ts``; returns the 'fired' and 'resolved' events at ``ts``."""
        ts = _utc(ts)
        if self.last_ts is not None and ts <= self.last_ts:
            raise ValueError(f"observation at {ts} is not after the previous one at {self.last_ts}")
        self.last_ts = ts
        queries = _as_float(metrics_row.get("queries"), "queries")
        out = []
        for tracker in self._trackers.values():
            rule = tracker.rule
            value = _as_float(metrics_row.get(rule.metric), rule.metric)
            if rule.min_queries and not queries >= rule.min_queries:
                value = math.nan
            event = tracker.step(ts, value)
            if event is not None:
                out.append(event)
        self.events.extend(out)
        return out

    def status(self, name: str) -> RuleStatus:
        t = self._trackers.get(name)
        if t is None:
            raise KeyError(f"no rule {name!r} in context {self.context!r}")
        return RuleStatus(name, t.state, t.active_since, t.fired_at, t.value)

    def firing(self) -> list[str]:
        return [n for n, t in self._trackers.items() if t.state == "firing"]

    def pending(self) -> list[str]:
        return [n for n, t in self._trackers.items() if t.state == "pending"]

    def firings(self) -> list[Firing]:
        """Every firing so far, closed ones and (``resolved_at=None``) the open ones."""
        out = [f for t in self._trackers.values() for f in t.closed]
        out += [f for t in self._trackers.values() if (f := t.open_firing()) is not None]
        return sorted(out, key=lambda f: (f.fired_at, f.rule))


# ----------------------------------------------------------------------------- batch


def _to_step(key: Any) -> pd.Timedelta:
    if isinstance(key, str):
        try:
            return parse_duration(key)
        except ValueError:
            return pd.Timedelta(key)
    return pd.Timedelta(key)


def frame_step(frame: pd.DataFrame) -> pd.Timedelta | None:
    """The bucket width of a metrics frame: ``attrs['freq']`` (set by ``compute_metrics``),
    else the smallest gap between index labels, else None for a single row."""
    if "freq" in frame.attrs:
        return _to_step(frame.attrs["freq"])
    if len(frame.index) >= 2:
        return pd.Series(frame.index).diff().min()
    return None


def _check_frame(frame: pd.DataFrame) -> None:
    idx = frame.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None:
        raise ValueError("metrics frame must have a tz-aware DatetimeIndex (bucket starts, UTC)")
    if not idx.is_monotonic_increasing or not idx.is_unique:
        raise ValueError("metrics frame index must be strictly increasing (one row per bucket)")


def _assign_frames(
    rules: Sequence[AlertRule],
    metrics: pd.DataFrame | Mapping[Any, pd.DataFrame],
    context: str,
    strict_window: bool,
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    frames: dict[str, pd.DataFrame] = {}
    skipped: dict[str, str] = {}
    by_step = {_to_step(k): v for k, v in metrics.items()} if isinstance(metrics, Mapping) else None
    for rule in rules:
        if not rule.applies(context):
            skipped[rule.name] = f"not for context {context!r} (applies_to: {rule.applies_to})"
            continue
        window = rule.window_for(context)
        if by_step is not None:
            frame = by_step.get(window)
            if frame is None:
                have = ", ".join(format_duration(s) for s in by_step) or "none"
                skipped[rule.name] = f"no metrics at window {format_duration(window)} (have {have})"
                continue
        else:
            frame = metrics
            step = frame_step(frame)
            if strict_window and step is not None and step != window:
                skipped[rule.name] = (
                    f"window {format_duration(window)} but metrics are at "
                    f"{format_duration(step)}: use metrics_for_rules() or compute_metrics(freq=...)"
                )
                continue
        if rule.metric not in frame.columns:
            skipped[rule.name] = f"metric column {rule.metric!r} missing from the metrics frame"
            continue
        frames[rule.name] = frame
    return frames, skipped


@dataclass
class AlertEvaluation:
    """What a replay of a metrics frame through the engine produced."""

    context: str
    rules: list[AlertRule]
    firings: list[Firing]
    events: list[AlertEvent]
    skipped: dict[str, str]
    spans: dict[str, tuple[pd.Timestamp, pd.Timestamp, pd.Timedelta, int]]

    def firings_for(self, name: str) -> list[Firing]:
        return [f for f in self.firings if f.rule == name]

    def fired(self, name: str) -> bool:
        return bool(self.firings_for(name))

    def first_firing(self, name: str) -> pd.Timestamp | None:
        fs = self.firings_for(name)
        return fs[0].fired_at if fs else None

    def to_frame(self) -> pd.DataFrame:
        cols = ["rule", "severity", "active_since", "fired_at", "resolved_at", "peak_value"]
        return pd.DataFrame([{c: getattr(f, c) for c in cols} for f in self.firings], columns=cols)


def _replay(
    rules: list[AlertRule], frame: pd.DataFrame, context: str
) -> tuple[AlertEngine, pd.Timestamp | None]:
    _check_frame(frame)
    engine = AlertEngine(rules, context)
    cols = sorted({r.metric for r in rules} | ({"queries"} & set(frame.columns)))
    arrays = {c: frame[c].to_numpy(dtype=float, na_value=np.nan) for c in cols}
    for i, ts in enumerate(frame.index):
        engine.observe(ts, {c: a[i] for c, a in arrays.items()})
    return engine, (frame.index[-1] if len(frame.index) else None)


def evaluate(
    rules: Sequence[AlertRule],
    metrics: pd.DataFrame | Mapping[Any, pd.DataFrame],
    *,
    context: str = "pilot",
    strict_window: bool = True,
) -> AlertEvaluation:
    """Replay metrics (one frame, or ``{window: frame}`` from ``metrics_for_rules``) through
    ``AlertEngine`` and collect firing intervals. Rules that cannot be evaluated honestly (other
    context, window mismatch, metric column missing) are listed in ``skipped`` with the reason."""
    rules = list(rules)
    frames, skipped = _assign_frames(rules, metrics, context, strict_window)
    groups: dict[int, tuple[pd.DataFrame, list[AlertRule]]] = {}
    for rule in rules:
        if rule.name in frames:
            frame = frames[rule.name]
            groups.setdefault(id(frame), (frame, []))[1].append(rule)
    firings: list[Firing] = []
    events: list[AlertEvent] = []
    spans = {}
    order = {r.name: i for i, r in enumerate(rules)}
    for frame, group in groups.values():
        engine, _ = _replay(group, frame, context)
        firings += engine.firings()
        events += engine.events
        step = frame_step(frame)
        for rule in group:
            if len(frame.index):
                spans[rule.name] = (
                    frame.index[0],
                    frame.index[-1],
                    step if step is not None else rule.window_for(context),
                    len(frame.index),
                )
    firings.sort(key=lambda f: (f.fired_at, order[f.rule]))
    events.sort(key=lambda e: (e.ts, order[e.rule]))
    evaluated = [r for r in rules if r.name in frames]
    return AlertEvaluation(context, evaluated, firings, events, skipped, spans)


def metrics_for_rules(
    df: pd.DataFrame,
    rules: Sequence[AlertRule],
    *,
    context: str = "pilot",
    events: pd.DataFrame | None = None,
    interactive_tiers: Iterable[str] = INTERACTIVE_TIERS,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> dict[pd.Timedelta, pd.DataFrame]:
    """One ``compute_metrics`` frame per distinct window the rules use in ``context``."""
    windows = sorted({r.window_for(context) for r in rules if r.applies(context)})
    tiers = tuple(interactive_tiers)
    return {
        w: compute_metrics(df, w, events, interactive_tiers=tiers, start=start, end=end)
        for w in windows
    }
