"""Alert rules as data, one state machine to evaluate them, and what is built on it.

Rules live in ``alert_rules.yaml`` (promtool-like) and are validated by pydantic: a bad file
fails with the file, the rule, the field and what would be valid. Every consumer goes through
``AlertEngine.observe`` — drills call it once per closed minute on the virtual clock, and
``evaluate`` / ``backtest`` / ``run_rule_tests`` replay a metrics frame through it — so the drill,
the pilot back-test and the rule unit tests can never disagree about when an alert fired.

State machine, per rule, per observation ``(ts, value)``:

- the condition is ``value <comparator> threshold``; a NaN or missing value, or a bucket with
  fewer than ``min_queries`` queries, counts as *condition false* (a gap never fires an alert and
  resolves a firing one: the metric frame keeps gaps visible, the rule stays quiet on them);
- condition true while inactive -> *pending* from ``ts`` (``active_since``);
- pending and ``ts - active_since >= for`` -> *firing* (a ``fired`` event at ``ts``; with
  ``for: 0m`` that is the same observation);
- condition false -> *inactive*; if it was firing, a ``resolved`` event at ``ts``.

Timestamps are whatever the caller observes at. ``compute_metrics`` labels buckets by their
start, so in a back-test a firing "starts" at the start of its first bad bucket; a drill that
observes each minute when it closes gets detection times that include the bucket width.

Windows: a rule's ``window`` is the bucket width its metric is computed at, per context
(``pilot`` = hourly/daily back-tests, ``drill`` = minute buckets). The engine does not resample;
``evaluate`` skips (and reports) a rule whose window differs from the frame's step, and
``metrics_for_rules`` computes one frame per window a rule set needs.
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from router import durations
from telemetry.metrics import (
    EVENT_COLUMNS,
    INTERACTIVE_TIERS,
    KNOWN_METRICS,
    MISCONFIGURED_CODE,
    compute_metrics,
)

DEFAULT_RULES_PATH = Path(__file__).with_name("alert_rules.yaml")
DEFAULT_TESTS_DIR = Path(__file__).with_name("alert_tests")

Context = Literal["pilot", "drill"]
CONTEXTS: tuple[str, ...] = ("pilot", "drill")
Comparator = Literal[">", ">=", "<", "<=", "==", "!="]
Severity = Literal["info", "warning", "critical"]
State = Literal["inactive", "pending", "firing"]

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class AlertRulesError(ValueError):
    """A rules or rule-test file is wrong; ``problems`` lists every finding, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# ----------------------------------------------------------------------------- durations


def parse_duration(text: str | int | float | timedelta) -> pd.Timedelta:
    """The harness's one duration grammar (``router.durations``) as a ``pd.Timedelta``, so one
    string means the same in a rule, a rule test, a scenario fault and a postmortem."""
    return pd.Timedelta(seconds=durations.parse_duration(text))


format_duration = durations.format_duration
"""Inverse of ``parse_duration`` ('1h30m'), Prometheus-valid, for tables and the exports."""


# ----------------------------------------------------------------------------- rules


def _per_context(value: Any) -> dict[str, pd.Timedelta]:
    """One duration for every context, or a ``{context: duration}`` mapping."""
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in CONTEXTS]
        if unknown:
            raise ValueError(f"unknown context(s) {unknown}; valid: {', '.join(CONTEXTS)}")
        return {k: parse_duration(v) for k, v in value.items()}
    d = parse_duration(value)
    return {c: d for c in CONTEXTS}


class AlertRule(BaseModel):
    """One alert rule. ``window`` and ``for`` are one duration or a per-context mapping
    (``{pilot: 1h, drill: 1m}``); ``applies_to`` defaults to the contexts ``window`` names."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    metric: str
    comparator: Comparator
    threshold: float
    window: dict[Context, timedelta]
    for_: dict[Context, timedelta] = Field(default=timedelta(0), alias="for", validate_default=True)
    applies_to: tuple[Context, ...]
    min_queries: int = Field(default=0, ge=0)
    severity: Severity
    summary: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _default_contexts(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "applies_to" not in data:
            window = data.get("window")
            contexts = list(window) if isinstance(window, Mapping) else list(CONTEXTS)
            data = {**data, "applies_to": contexts}
        return data

    @field_validator("window", "for_", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> dict[str, pd.Timedelta]:
        return _per_context(v)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in KNOWN_METRICS:
            raise ValueError(f"unknown metric {v!r}; known metrics: {', '.join(KNOWN_METRICS)}")
        return v

    @field_validator("threshold")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("threshold must be a finite number")
        return v

    @model_validator(mode="after")
    def _complete(self) -> AlertRule:
        if not self.applies_to:
            raise ValueError("field 'applies_to': give at least one of pilot, drill")
        for ctx in self.applies_to:
            if ctx not in self.window:
                raise ValueError(f"field 'window': no window for context {ctx!r} (in applies_to)")
            if ctx not in self.for_:
                raise ValueError(f"field 'for': no duration for context {ctx!r} (in applies_to)")
            if self.window[ctx] <= timedelta(0):
                raise ValueError(f"field 'window': must be positive for context {ctx!r}")
        return self

    def applies(self, context: str) -> bool:
        return context in self.applies_to

    def window_for(self, context: str) -> pd.Timedelta:
        return pd.Timedelta(self.window[context])

    def for_duration(self, context: str) -> pd.Timedelta:
        return pd.Timedelta(self.for_[context])

    def holds(self, value: float) -> bool:
        """The condition; NaN is false whatever the comparator (``!=`` included)."""
        return not math.isnan(value) and COMPARATORS[self.comparator](value, self.threshold)

    @property
    def condition(self) -> str:
        return f"{self.metric} {self.comparator} {self.threshold:g}"


_RULE_FIELDS = (
    "name, metric, comparator, threshold, window, for, applies_to, min_queries, severity, summary"
)


def _pydantic_problems(exc: ValidationError, prefix: str) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]).replace("for_", "for")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown field; valid fields: {_RULE_FIELDS}"
        elif err["type"] == "missing":
            msg = "required field is missing"
        where = f"field '{loc}': " if loc else ""
        out.append(f"{prefix}: {where}{msg}")
    return out


def parse_rules(data: Any, source: str = "<rules>") -> list[AlertRule]:
    """Validate an already-loaded rules document (``{"rules": [...]}``)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
        raise AlertRulesError([f"{source}: expected a mapping with a 'rules:' list at the top"])
    extra = [k for k in data if k != "rules"]
    problems = [f"{source}: unknown top-level key(s) {extra}; valid: rules"] if extra else []
    rules: list[AlertRule] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["rules"], start=1):
        name = raw.get("name") if isinstance(raw, Mapping) else None
        prefix = f"{source}: rule {name!r}" if name else f"{source}: rule #{i}"
        if not isinstance(raw, Mapping):
            problems.append(f"{prefix}: expected a mapping with fields {_RULE_FIELDS}")
            continue
        try:
            rule = AlertRule.model_validate(raw)
        except ValidationError as exc:
            problems += _pydantic_problems(exc, prefix)
            continue
        if rule.name in seen:
            problems.append(f"{prefix}: field 'name': duplicate rule name; names must be unique")
        seen.add(rule.name)
        rules.append(rule)
    if problems:
        raise AlertRulesError(problems)
    return rules


def _load_yaml(path: Path) -> Any:
    """The one strict loader (router.yaml_safe): duplicate keys and non-UTF-8 are refused."""
    from router.yaml_safe import load_yaml_file

    try:
        return load_yaml_file(path)
    except FileNotFoundError:
        raise AlertRulesError([f"{path}: file not found"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise AlertRulesError([f"{where}: not valid YAML: {problem}"]) from None


def load_rules(path: str | Path | None = None) -> list[AlertRule]:
    """Read and validate a rules file (default: the packaged ``alert_rules.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_RULES_PATH
    return parse_rules(_load_yaml(path), source=str(path))


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


# ----------------------------------------------------------------------------- back-test

BACKTEST_COLUMNS: tuple[str, ...] = (
    "rule",
    "metric",
    "condition",
    "severity",
    "window",
    "for",
    "evaluated",
    "note",
    "buckets",
    "observations",
    "firings",
    "first_firing",
    "last_firing",
    "firing_time",
    "firing_share",
    "firings_per_week",
    "noisy",
    "slack",
    "closest",
    "suggested_threshold",
    "min",
    "median",
    "p95",
    "max",
)


def effective_values(rule: AlertRule, frame: pd.DataFrame) -> np.ndarray:
    """The values the engine compares for ``rule`` on ``frame`` (NaN under ``min_queries``)."""
    values = frame[rule.metric].to_numpy(dtype=float, na_value=np.nan).copy()
    if rule.min_queries:
        q = frame["queries"].to_numpy(dtype=float, na_value=np.nan) if "queries" in frame else None
        mask = np.ones(len(values), bool) if q is None else ~(q >= rule.min_queries)
        values[mask] = np.nan
    return values


def _sig3(x: float) -> float:
    return float(f"{x:.3g}") if math.isfinite(x) else x


def suggest_threshold(
    rule: AlertRule, values: np.ndarray, *, quantile: float = 0.99, margin: float = 0.1
) -> float:
    """A threshold the observed data would (almost) never cross: the ``quantile`` of the values
    plus ``margin`` of its magnitude for '>' rules, the ``1 - quantile`` minus the margin for '<'
    rules; NaN for '==' / '!=' and without data. Rounded to 3 significant digits."""
    v = values[~np.isnan(values)]
    if not len(v) or rule.comparator in ("==", "!="):
        return math.nan
    if rule.comparator in (">", ">="):
        q = float(np.quantile(v, quantile))
        return _sig3(q + margin * abs(q))
    q = float(np.quantile(v, 1 - quantile))
    return _sig3(q - margin * abs(q))


def is_slack(rule: AlertRule, values: np.ndarray, *, margin: float = 0.2) -> bool:
    """True when no observation came within ``margin`` (relative to ``|threshold|``) of the
    threshold on the firing side: for '>' / '>=' ``max < threshold - margin*|threshold|``, for
    '<' / '<=' ``min > threshold + margin*|threshold|``. Never for '==' / '!=' or without data;
    never for a ``> 0`` guard on a count (its band has zero width and counts are >= 0)."""
    v = values[~np.isnan(values)]
    if not len(v) or rule.comparator in ("==", "!="):
        return False
    band = margin * abs(rule.threshold)
    if rule.comparator in (">", ">="):
        return bool(v.max() < rule.threshold - band)
    return bool(v.min() > rule.threshold + band)


def backtest(
    rules: Sequence[AlertRule],
    metrics: pd.DataFrame | Mapping[Any, pd.DataFrame],
    *,
    noisy_per_week: int = 3,
    context: str = "pilot",
    slack_margin: float = 0.2,
    suggest_quantile: float = 0.99,
    suggest_margin: float = 0.1,
    strict_window: bool = True,
) -> pd.DataFrame:
    """One row per rule: how often and how long it would have fired on this data, whether it is
    ``noisy`` (more than ``noisy_per_week`` firings per 7 days of data, pro rata for shorter
    data), ``slack`` (see ``is_slack``), a suggested threshold (see ``suggest_threshold``) and
    the observed distribution. The span of data is ``buckets * window`` (empty buckets count)."""
    rules = list(rules)
    result = evaluate(rules, metrics, context=context, strict_window=strict_window)
    frames, _ = _assign_frames(rules, metrics, context, strict_window)
    rows = []
    for rule in rules:
        base: dict[str, Any] = {
            "rule": rule.name,
            "metric": rule.metric,
            "condition": rule.condition,
            "severity": rule.severity,
            "window": format_duration(rule.window_for(context)) if rule.applies(context) else "",
            "for": format_duration(rule.for_duration(context)) if rule.applies(context) else "",
        }
        if rule.name not in frames:
            rows.append({**base, "evaluated": False, "note": result.skipped.get(rule.name, "")})
            continue
        frame = frames[rule.name]
        values = effective_values(rule, frame)
        seen = values[~np.isnan(values)]
        fs = result.firings_for(rule.name)
        start, last, step, n = result.spans.get(
            rule.name, (None, None, rule.window_for(context), 0)
        )
        span = step * n
        until = last + step if last is not None else None
        firing_time = sum((f.duration(until) for f in fs), pd.Timedelta(0))
        per_week = len(fs) / (span / pd.Timedelta(days=7)) if n else math.nan
        closest = math.nan
        if len(seen) and rule.comparator in (">", ">="):
            closest = float(seen.max())
        elif len(seen) and rule.comparator in ("<", "<="):
            closest = float(seen.min())
        rows.append(
            {
                **base,
                "evaluated": True,
                "note": "" if len(seen) else "no data",
                "buckets": n,
                "observations": int(len(seen)),
                "firings": len(fs),
                "first_firing": fs[0].fired_at if fs else pd.NaT,
                "last_firing": fs[-1].fired_at if fs else pd.NaT,
                "firing_time": firing_time,
                "firing_share": firing_time / span if n else math.nan,
                "firings_per_week": per_week,
                "noisy": bool(n and per_week > noisy_per_week),
                "slack": is_slack(rule, values, margin=slack_margin),
                "closest": closest,
                "suggested_threshold": suggest_threshold(
                    rule, values, quantile=suggest_quantile, margin=suggest_margin
                ),
                "min": float(seen.min()) if len(seen) else math.nan,
                "median": float(np.median(seen)) if len(seen) else math.nan,
                "p95": float(np.quantile(seen, 0.95)) if len(seen) else math.nan,
                "max": float(seen.max()) if len(seen) else math.nan,
            }
        )
    out = pd.DataFrame(rows, columns=list(BACKTEST_COLUMNS))
    for col in ("evaluated", "noisy", "slack"):
        out[col] = out[col].fillna(False).astype(bool)
    for col in ("buckets", "observations", "firings"):
        out[col] = out[col].fillna(0).astype("int64")
    return out.set_index("rule")


# ----------------------------------------------------------------------------- rule unit tests

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_UNSIGNED = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_EXPAND = re.compile(rf"^({_NUM})([-+])({_UNSIGNED})x(\d+)$")
_REPEAT = re.compile(rf"^({_NUM})x(\d+)$")
_MISSING = re.compile(r"^_x(\d+)$")

TEST_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def expand_series(values: str) -> list[float]:
    """promtool's expanding notation: '1 2 _ 4', 'a+bxN' / 'a-bxN' (a, then N steps of b),
    'axN' (a, N+1 times), '_' and '_xN' (missing values -> NaN)."""
    out: list[float] = []
    for tok in str(values).split():
        if tok == "_":
            out.append(math.nan)
        elif m := _MISSING.match(tok):
            out += [math.nan] * int(m[1])
        elif m := _EXPAND.match(tok):
            a, b = float(m[1]), float(m[3]) * (1 if m[2] == "+" else -1)
            out += [a + i * b for i in range(int(m[4]) + 1)]
        elif m := _REPEAT.match(tok):
            out += [float(m[1])] * (int(m[2]) + 1)
        elif re.fullmatch(_NUM, tok):
            out.append(float(tok))
        else:
            raise ValueError(
                f"bad value token {tok!r}; use numbers, '_', '_xN', 'a+bxN', 'a-bxN' or 'axN'"
            )
    return out


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _InputSeries(_Strict):
    metric: str
    values: str | int | float

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in KNOWN_METRICS:
            raise ValueError(f"unknown metric {v!r}; known metrics: {', '.join(KNOWN_METRICS)}")
        return v


class _AlertRuleTest(_Strict):
    eval_time: str | int
    alertname: str
    exp_alerts: list[dict[str, Any]] = Field(default_factory=list)


class _TestCase(_Strict):
    name: str
    context: Context | None = None
    evaluation_interval: str | None = None
    input_series: list[_InputSeries]
    alert_rule_test: list[_AlertRuleTest]


class _TestFile(_Strict):
    rule_files: list[str] | None = None
    evaluation_interval: str = "1m"
    context: Context = "pilot"
    tests: list[_TestCase]


@dataclass(frozen=True, slots=True)
class RuleTestCase:
    """One ``alert_rule_test`` entry's verdict."""

    file: str
    test: str
    alertname: str
    eval_time: str
    context: str
    expect_firing: bool
    passed: bool
    expected: str
    actual: str

    @property
    def message(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return f"{verdict}: expected {self.expected} at {self.eval_time}; got {self.actual}"


@dataclass
class RuleTestReport:
    cases: list[RuleTestCase]

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def failures(self) -> list[RuleTestCase]:
        return [c for c in self.cases if not c.passed]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "file": c.file,
                    "test": c.test,
                    "alertname": c.alertname,
                    "eval_time": c.eval_time,
                    "context": c.context,
                    "passed": c.passed,
                    "message": c.message,
                }
                for c in self.cases
            ]
        )


def _expected_labels(item: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    if set(item) <= {"exp_labels", "exp_annotations"}:
        return (
            {k: str(v) for k, v in (item.get("exp_labels") or {}).items()},
            {k: str(v) for k, v in (item.get("exp_annotations") or {}).items()},
        )
    return {k: str(v) for k, v in item.items()}, {}


def _fmt_labels(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in labels.items()) + "}"


def _run_case(
    rules: list[AlertRule],
    series: dict[str, list[float]],
    interval: pd.Timedelta,
    context: str,
    spec: _AlertRuleTest,
    file: str,
    test: str,
) -> RuleTestCase:
    eval_time = parse_duration(spec.eval_time)
    shown = format_duration(eval_time)
    expected = [_expected_labels(e) for e in spec.exp_alerts]
    expect_firing = bool(expected)
    exp_text = (
        "not firing"
        if not expected
        else " and ".join(f"firing with {_fmt_labels(lab)}" for lab, _ in expected)
    )

    def verdict(passed: bool, actual: str) -> RuleTestCase:
        return RuleTestCase(
            file, test, spec.alertname, shown, context, expect_firing, passed, exp_text, actual
        )

    rule = next((r for r in rules if r.name == spec.alertname), None)
    if rule is None:
        return verdict(False, f"no rule named {spec.alertname!r} in the rule files")
    if not rule.applies(context):
        return verdict(False, f"rule does not apply to context {context!r} ({rule.applies_to})")
    engine = AlertEngine([rule], context)
    steps = int(eval_time // interval) + 1
    for i in range(steps):
        row = {m: (vals[i] if i < len(vals) else math.nan) for m, vals in series.items()}
        engine.observe(TEST_EPOCH + i * interval, row)
    st = engine.status(rule.name)
    value = "no value" if math.isnan(st.value) else f"value {st.value:g}"
    if st.state == "firing":
        labels = {
            "alertname": rule.name,
            "severity": rule.severity,
            "metric": rule.metric,
            "context": context,
        }
        annotations = {"summary": rule.summary}
        since = format_duration(st.fired_at - TEST_EPOCH)
        actual = f"firing since {since} with {_fmt_labels(labels)} ({value})"
        if len(expected) > 1:
            return verdict(False, actual + "; a rule yields at most one alert")
        if not expected:
            return verdict(False, actual)
        exp_labels, exp_ann = expected[0]
        ok = all(labels.get(k) == v for k, v in exp_labels.items()) and all(
            annotations.get(k) == v for k, v in exp_ann.items()
        )
        return verdict(ok, actual)
    if st.state == "pending":
        since = format_duration(st.active_since - TEST_EPOCH)
        actual = f"not firing (pending since {since}, {value})"
    else:
        actual = f"not firing (inactive, {value})"
    return verdict(not expected, actual)


def _test_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        if not files:
            raise AlertRulesError([f"{path}: no *.yaml rule-test files in this directory"])
        return files
    return [path]


def run_rule_tests(path: str | Path | None = None) -> RuleTestReport:
    """Run promtool-style rule tests from a file or a directory of files (default: the packaged
    ``alert_tests/``). A malformed test file raises ``AlertRulesError`` naming file and field."""
    cases: list[RuleTestCase] = []
    for file in _test_files(Path(path) if path is not None else DEFAULT_TESTS_DIR):
        cases += _run_test_file(file)
    return RuleTestReport(cases)


def _run_test_file(file: Path) -> list[RuleTestCase]:
    data = _load_yaml(file)
    try:
        spec = _TestFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(f"{file}: field '{loc}': {err['msg'].removeprefix('Value error, ')}")
        raise AlertRulesError(problems) from None
    rule_paths = (
        [(file.parent / p).resolve() for p in spec.rule_files]
        if spec.rule_files
        else [DEFAULT_RULES_PATH]
    )
    rules: list[AlertRule] = []
    for rp in rule_paths:
        rules += load_rules(rp)
    names = [r.name for r in rules]
    if len(names) != len(set(names)):
        raise AlertRulesError([f"{file}: rule_files define the same rule name more than once"])
    cases = []
    for t in spec.tests:
        prefix = f"{file}: test {t.name!r}"
        try:
            interval = parse_duration(t.evaluation_interval or spec.evaluation_interval)
            if interval <= pd.Timedelta(0):
                raise ValueError("evaluation_interval must be positive")
            series = {}
            for s in t.input_series:
                if s.metric in series:
                    raise ValueError(f"series {s.metric!r} given twice")
                try:
                    series[s.metric] = expand_series(str(s.values))
                except ValueError as exc:
                    raise ValueError(f"series {s.metric!r}: {exc}") from None
            for case in t.alert_rule_test:
                parse_duration(case.eval_time)
        except ValueError as exc:
            raise AlertRulesError([f"{prefix}: {exc}"]) from None
        context = t.context or spec.context
        cases += [
            _run_case(rules, series, interval, context, case, str(file), t.name)
            for case in t.alert_rule_test
        ]
    return cases


# ----------------------------------------------------------------------------- Grafana export

DEFAULT_DATASOURCE_UID = "amaima-postgres"
DECISION_TABLE = "decision_telemetry"
EVENTS_TABLE = "telemetry_events"

_GRAFANA_EVALUATOR = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "==": "eq", "!=": "ne"}
_EXECUTED = "outcome <> 'not_executed'"
_CALLED = "outcome IN ('ok', 'fallback', 'error', 'timeout') AND actual_latency_ms IS NOT NULL"
_EVENT_KINDS = {column: kind for kind, column in EVENT_COLUMNS.items()}


def _share(predicate: str, where: str | None = None) -> str:
    expr = f"avg(CASE WHEN {predicate} THEN 1.0 ELSE 0.0 END)"
    return f"{expr} FILTER (WHERE {where})" if where else expr


def _sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _decision_aggregate(metric: str, tiers: Sequence[str]) -> str:
    """PostgreSQL aggregate over ``decision_telemetry`` matching ``compute_metrics``."""
    tier_list = ", ".join(_sql_literal(t) for t in tiers)
    exprs = {
        "queries": "count(*)",
        "executed": f"count(*) FILTER (WHERE {_EXECUTED})",
        "borderline_rate": _share("borderline"),
        "upscale_rate": _share("upscaled"),
        "confidence_mean": "avg(confidence_overall)",
        "confidence_median": "percentile_cont(0.5) WITHIN GROUP (ORDER BY confidence_overall)",
        "latency_estimate_p95_ms": (
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_estimate_ms) "
            f"FILTER (WHERE model_tier IN ({tier_list}))"
        ),
        "actual_latency_p95_ms": (
            f"percentile_cont(0.95) WITHIN GROUP (ORDER BY actual_latency_ms) FILTER (WHERE {_CALLED})"
        ),
        "actual_latency_p95_interactive_ms": (
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY actual_latency_ms) "
            f"FILTER (WHERE {_CALLED} AND model_tier IN ({tier_list}))"
        ),
        "cost_per_query_usd": (
            f"avg(CASE WHEN {_EXECUTED} AND actual_cost_usd IS NOT NULL "
            "THEN actual_cost_usd ELSE cost_estimate_usd END)"
        ),
        "error_rate": _share("outcome IN ('error', 'timeout', 'rejected')", _EXECUTED),
        "rejected_rate": _share("outcome = 'rejected'", _EXECUTED),
        "fallback_rate": _share("outcome = 'fallback'", _EXECUTED),
        "executed_rate": _share(_EXECUTED),
        "misconfigured_toggle_count": (
            f"count(*) FILTER (WHERE reason_codes LIKE '%{MISCONFIGURED_CODE}%')"
        ),
        "upstream_calls": "count(*) FILTER (WHERE NOT simulated)",
    }
    if metric in exprs:
        return exprs[metric]
    if metric.startswith("level_"):
        return _share(f"complexity_level = {_sql_literal(metric.removeprefix('level_'))}")
    if metric.startswith("domain_"):
        return _share(f"domain = {_sql_literal(metric.removeprefix('domain_'))}")
    raise ValueError(f"no SQL for metric {metric!r}")


def metric_sql(
    metric: str,
    window: pd.Timedelta,
    *,
    min_queries: int = 0,
    interactive_tiers: Sequence[str] = INTERACTIVE_TIERS,
    table: str = DECISION_TABLE,
    events_table: str = EVENTS_TABLE,
) -> str:
    """``SELECT now() AS time, <metric> AS value`` over the last ``window`` (PostgreSQL)."""
    secs = int(pd.Timedelta(window).total_seconds())
    since = f"now() - interval '{secs} seconds'"
    if metric in _EVENT_KINDS:
        return (
            f"SELECT now() AS time, coalesce(sum(value), 0) AS value FROM {events_table} "
            f"WHERE kind = {_sql_literal(_EVENT_KINDS[metric])} AND ts > {since}"
        )
    if metric == "actual_latency_p95_worst_tier_ms":
        return (
            "SELECT now() AS time, max(p) AS value FROM "
            "(SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY actual_latency_ms) AS p "
            f"FROM {table} WHERE ts > {since} AND {_CALLED} GROUP BY model_tier) AS per_tier"
        )
    if metric == "confidence_drop_pct":
        before = f"now() - interval '{secs + 86400} seconds'"
        return (
            "SELECT now() AS time, 100.0 * (prev.m - cur.m) / NULLIF(prev.m, 0) AS value FROM "
            f"(SELECT avg(confidence_overall) AS m FROM {table} WHERE ts > {since}) AS cur, "
            f"(SELECT avg(confidence_overall) AS m FROM {table} "
            f"WHERE ts > {before} AND ts <= {since}) AS prev"
        )
    expr = _decision_aggregate(metric, interactive_tiers)
    if min_queries:
        expr = f"CASE WHEN count(*) >= {int(min_queries)} THEN {expr} END"
    return f"SELECT now() AS time, {expr} AS value FROM {table} WHERE ts > {since}"


def _grafana_uid(name: str) -> str:
    uid = f"amaima-{name}".replace("_", "-")
    if len(uid) <= 40:
        return uid
    return uid[:31] + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]


def grafana_provisioning(
    rules: Sequence[AlertRule],
    *,
    context: str = "pilot",
    datasource_uid: str = DEFAULT_DATASOURCE_UID,
    folder: str = "AMAIMA",
    org_id: int = 1,
    interactive_tiers: Sequence[str] = INTERACTIVE_TIERS,
    events_table: str = EVENTS_TABLE,
) -> dict[str, Any]:
    """Grafana file-provisioning document (``apiVersion: 1``, ``groups``) for the rules that apply
    to ``context``: per rule a PostgreSQL query (A), a reduce-last (B) and a threshold (C).
    No data counts as OK, matching the engine's "NaN is condition false"."""
    expr_ds = {"type": "__expr__", "uid": "__expr__"}
    groups: dict[pd.Timedelta, list[dict[str, Any]]] = {}
    for rule in rules:
        if not exportable(rule, context):
            continue
        window = rule.window_for(context)
        lookback = window + pd.Timedelta(days=1 if rule.metric == "confidence_drop_pct" else 0)
        sql = metric_sql(
            rule.metric,
            window,
            min_queries=rule.min_queries,
            interactive_tiers=interactive_tiers,
            events_table=events_table,
        )
        groups.setdefault(window, []).append(
            {
                "uid": _grafana_uid(rule.name),
                "title": rule.name,
                "condition": "C",
                "data": [
                    {
                        "refId": "A",
                        "relativeTimeRange": {"from": int(lookback.total_seconds()), "to": 0},
                        "datasourceUid": datasource_uid,
                        "model": {
                            "refId": "A",
                            "datasource": {
                                "type": "grafana-postgresql-datasource",
                                "uid": datasource_uid,
                            },
                            "editorMode": "code",
                            "format": "table",
                            "rawQuery": True,
                            "rawSql": sql,
                            "intervalMs": 1000,
                            "maxDataPoints": 43200,
                        },
                    },
                    {
                        "refId": "B",
                        "relativeTimeRange": {"from": 0, "to": 0},
                        "datasourceUid": "__expr__",
                        "model": {
                            "refId": "B",
                            "datasource": expr_ds,
                            "type": "reduce",
                            "expression": "A",
                            "reducer": "last",
                            "settings": {"mode": "dropNN"},
                        },
                    },
                    {
                        "refId": "C",
                        "relativeTimeRange": {"from": 0, "to": 0},
                        "datasourceUid": "__expr__",
                        "model": {
                            "refId": "C",
                            "datasource": expr_ds,
                            "type": "threshold",
                            "expression": "B",
                            "conditions": [
                                {
                                    "evaluator": {
                                        "type": _GRAFANA_EVALUATOR[rule.comparator],
                                        "params": [rule.threshold],
                                    }
                                }
                            ],
                        },
                    },
                ],
                "noDataState": "OK",
                "execErrState": "Error",
                "for": format_duration(rule.for_duration(context)),
                "isPaused": False,
                "labels": {"severity": rule.severity, "source": "amaima-harness"},
                "annotations": {
                    "summary": rule.summary,
                    "description": (
                        f"{rule.condition} over the last {format_duration(window)}"
                        + (f" (at least {rule.min_queries} queries)" if rule.min_queries else "")
                    ),
                },
            }
        )
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": org_id,
                "name": f"amaima-{context}-{format_duration(window)}",
                "folder": folder,
                "interval": "1m" if window <= pd.Timedelta(hours=1) else "5m",
                "rules": group_rules,
            }
            for window, group_rules in sorted(groups.items())
        ],
    }


class _PlainDumper(yaml.SafeDumper):
    """No anchors/aliases: provisioning files are read and diffed by people."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def exportable(rule: AlertRule, context: str) -> bool:
    """Rules Grafana can evaluate from decision_telemetry. Event metrics (telemetry write
    failures, spooled rows) are not: when writes fail they are counted in the harness's spool,
    not in the database that is failing. Watch those with `harness telemetry status`."""
    return rule.applies(context) and rule.metric not in _EVENT_KINDS


def export_grafana(
    path: str | Path, rules: Sequence[AlertRule] | None = None, **options: Any
) -> Path:
    """Write ``grafana_provisioning(...)`` as YAML (drop it in provisioning/alerting/)."""
    rules = load_rules() if rules is None else rules
    doc = grafana_provisioning(rules, **options)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Generated by `harness alerts export --grafana` from the AMAIMA alert rules.\n"
        "# Grafana alert-rule file provisioning (apiVersion 1); datasource: PostgreSQL with the\n"
        f"# {DECISION_TABLE} table.\n"
    )
    skipped = [
        r.name
        for r in rules
        if r.applies(options.get("context", "pilot"))
        and not exportable(r, options.get("context", "pilot"))
    ]
    if skipped:
        header += (
            f"# Not exported: {', '.join(skipped)} -- its signal is counted in the harness's local\n"
            "# spool while the database is failing; watch `harness telemetry status` instead.\n"
        )
    body = yaml.dump(doc, Dumper=_PlainDumper, sort_keys=False, width=1000)
    path.write_text(header + body, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- Prometheus export
#
# The live service (`harness serve`) exposes counters and histograms (live/metrics.py). Each rule
# metric becomes a *recording rule* ``amaima:<metric>:<window>`` over those series, with the same
# definition as ``telemetry.metrics`` (shares of executed rows, p95 of rows that reached a model,
# worst tier, interactive tiers); each rule becomes an *alerting rule* over its recorded series,
# with ``min_queries`` as ``and on() amaima:queries:<window> >= N``. The promtool-style tests are
# exported with their input series renamed to the recorded series, so the real
# ``promtool test rules`` checks the same expectations as ``harness alerts test``.

PROM_DECISIONS = "amaima_decisions_total"
_PROM_ERRORS = 'outcome=~"error|timeout|rejected"'
_PROM_EXECUTED = 'outcome!="not_executed"'


def prometheus_series(metric: str, window: timedelta | pd.Timedelta) -> str:
    """The recorded series name of a rule metric at a window (``amaima:error_rate:1m``)."""
    return f"amaima:{metric}:{format_duration(window)}"


def prometheus_expr(
    metric: str,
    window: timedelta | pd.Timedelta,
    interactive_tiers: Sequence[str] = INTERACTIVE_TIERS,
) -> str | None:
    """PromQL for one rule metric over the service's series, or None if it has no PromQL form."""
    w = format_duration(window)

    def inc(name: str, sel: str = "", by: str = "") -> str:
        sel = "{" + sel + "}" if sel else ""
        return f"sum{f' by ({by})' if by else ''}(increase({name}{sel}[{w}]))"

    def share(num_sel: str, den_sel: str = "") -> str:
        return f"{inc(PROM_DECISIONS, num_sel)} / {inc(PROM_DECISIONS, den_sel)}"

    tiers = 'tier=~"' + "|".join(interactive_tiers) + '"'

    def p95(hist: str, sel: str = "", by: str = "le") -> str:
        return f"histogram_quantile(0.95, {inc(hist + '_bucket', sel, by)})"

    conf = f"{inc('amaima_decision_confidence_sum')} / {inc('amaima_decision_confidence_count')}"
    exprs = {
        "queries": inc(PROM_DECISIONS),
        "executed": inc(PROM_DECISIONS, _PROM_EXECUTED),
        "error_rate": share(_PROM_ERRORS, _PROM_EXECUTED),
        "rejected_rate": share('outcome="rejected"', _PROM_EXECUTED),
        "fallback_rate": share('outcome="fallback"', _PROM_EXECUTED),
        "executed_rate": share(_PROM_EXECUTED),
        "borderline_rate": f"{inc('amaima_borderline_decisions_total')} / {inc(PROM_DECISIONS)}",
        "upscale_rate": f"{inc('amaima_upscaled_decisions_total')} / {inc(PROM_DECISIONS)}",
        "confidence_mean": conf,
        "confidence_drop_pct": (
            f"100 * (1 - ({conf}) / (sum(increase(amaima_decision_confidence_sum[1d] offset {w}))"
            f" / sum(increase(amaima_decision_confidence_count[1d] offset {w}))))"
        ),
        "latency_estimate_p95_ms": p95("amaima_latency_estimate_ms", tiers),
        "actual_latency_p95_ms": p95("amaima_actual_latency_ms"),
        "actual_latency_p95_worst_tier_ms": f"max({p95('amaima_actual_latency_ms', by='le, tier')})",
        "actual_latency_p95_interactive_ms": p95("amaima_actual_latency_ms", tiers),
        "cost_per_query_usd": f"{inc('amaima_query_cost_usd_total')} / {inc(PROM_DECISIONS)}",
        "misconfigured_toggle_count": inc("amaima_misconfigured_decisions_total"),
        "upstream_calls": inc("amaima_upstream_calls_total"),
        "telemetry_write_failures": inc("amaima_telemetry_write_failures_total"),
        "spooled_rows": inc("amaima_telemetry_spooled_rows_total"),
    }
    if metric in exprs:
        return exprs[metric]
    for prefix, label in (("level_", "level"), ("domain_", "domain")):
        if metric.startswith(prefix):
            return share(f'{label}="{metric[len(prefix) :]}"')
    return None  # the median (confidence_median) has no exact PromQL form over counters


def prometheus_rules(
    rules: Sequence[AlertRule] | None = None,
    *,
    context: str = "drill",
    interactive_tiers: Sequence[str] = INTERACTIVE_TIERS,
) -> tuple[dict[str, Any], list[str]]:
    """(Prometheus rules document, names of rules not exported with the reason)."""
    rules = load_rules() if rules is None else rules
    recording: dict[str, str] = {}
    alerting = []
    skipped = []
    for r in rules:
        if not r.applies(context):
            skipped.append(f"{r.name} (not in the {context} context)")
            continue
        w = r.window_for(context)
        expr = prometheus_expr(r.metric, w, interactive_tiers)
        if expr is None:
            skipped.append(f"{r.name} ({r.metric} has no PromQL form over the service's counters)")
            continue
        series = prometheus_series(r.metric, w)
        recording[series] = expr
        cond = f"{series} {r.comparator} {r.threshold:g}"
        if r.min_queries:
            q = prometheus_series("queries", w)
            recording[q] = prometheus_expr("queries", w)
            cond = f"{cond} and on() {q} >= {r.min_queries}"
        alerting.append(
            {
                "alert": r.name,
                "expr": cond,
                "for": format_duration(r.for_duration(context)),
                "labels": {"severity": r.severity, "metric": r.metric, "context": context},
                "annotations": {"summary": r.summary},
            }
        )
    doc = {
        "groups": [
            {
                "name": f"amaima-recording-{context}",
                "rules": [{"record": k, "expr": v} for k, v in sorted(recording.items())],
            },
            {"name": f"amaima-alerts-{context}", "rules": alerting},
        ]
    }
    return doc, skipped


def _promtool_tests(
    rules: Sequence[AlertRule], context: str, rule_file: str, tests_path: Path | None
) -> dict[str, dict[str, Any]]:
    """The packaged rule tests of ``context`` as promtool test files, one per evaluation
    interval (promtool has one per file): {interval: document}."""
    by_name = {r.name: r for r in rules}
    files: dict[str, dict[str, Any]] = {}
    for file in _test_files(tests_path or DEFAULT_TESTS_DIR):
        spec = _TestFile.model_validate(_load_yaml(file))
        for t in spec.tests:
            if (t.context or spec.context) != context:
                continue
            interval = parse_duration(t.evaluation_interval or spec.evaluation_interval)
            windows = {
                by_name[c.alertname].metric: by_name[c.alertname].window_for(context)
                for c in t.alert_rule_test
                if c.alertname in by_name and by_name[c.alertname].applies(context)
            }
            default_w = next(iter(windows.values()), interval)
            series = [
                {
                    "series": prometheus_series(s.metric, windows.get(s.metric, default_w)),
                    "values": str(s.values),
                }
                for s in t.input_series
            ]
            cases = []
            for c in t.alert_rule_test:
                rule = by_name.get(c.alertname)
                if rule is None:
                    continue  # a rule this export leaves out (said so in the rules file)
                exp = []
                for e in c.exp_alerts:
                    labels, ann = _expected_labels(e)
                    labels.pop("alertname", None)
                    labels = {
                        "severity": rule.severity, "metric": rule.metric, "context": context,
                        **labels,
                    }  # fmt: skip
                    ann = {"summary": rule.summary, **ann}
                    exp.append({"exp_labels": labels, "exp_annotations": ann})
                cases.append(
                    {
                        "eval_time": format_duration(parse_duration(c.eval_time)),
                        "alertname": c.alertname,
                        "exp_alerts": exp,
                    }
                )
            if not cases:
                continue
            key = format_duration(interval)
            doc = files.setdefault(
                key, {"rule_files": [rule_file], "evaluation_interval": key, "tests": []}
            )
            doc["tests"].append(
                {"name": t.name, "interval": key, "input_series": series, "alert_rule_test": cases}
            )
    return files


def export_prometheus(
    path: str | Path,
    rules: Sequence[AlertRule] | None = None,
    *,
    context: str = "drill",
    tests: bool = True,
    tests_path: str | Path | None = None,
) -> tuple[Path, list[Path], list[str]]:
    """Write the Prometheus rules file and (``tests``) promtool test files next to it
    (``<stem>_test[_<interval>].yml``). Returns (rules path, test paths, skipped rules)."""
    rules = load_rules() if rules is None else list(rules)
    doc, skipped = prometheus_rules(rules, context=context)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Generated by `harness alerts export --prometheus` from the AMAIMA alert rules\n"
        f"# (context {context}). PromQL over the metrics of `harness serve` (/metrics): recording\n"
        "# rules amaima:<metric>:<window> follow telemetry/metrics.py; alerting rules compare them.\n"
    )
    if skipped:
        header += "# Not exported: " + "; ".join(skipped) + ".\n"
    body = yaml.dump(doc, Dumper=_PlainDumper, sort_keys=False, width=1000)
    path.write_text(header + body, encoding="utf-8")
    written: list[Path] = []
    if tests:
        exported = [
            r
            for r in rules
            if r.applies(context) and prometheus_expr(r.metric, r.window_for(context)) is not None
        ]
        files = _promtool_tests(
            exported, context, path.name, Path(tests_path) if tests_path else None
        )
        for i, (interval, tdoc) in enumerate(sorted(files.items())):
            name = f"{path.stem}_test{'' if i == 0 else '_' + interval}.yml"
            tp = path.with_name(name)
            tp.write_text(
                "# promtool test rules "
                + name
                + " -- generated from telemetry/alert_tests\n"
                + yaml.dump(tdoc, Dumper=_PlainDumper, sort_keys=False, width=1000),
                encoding="utf-8",
            )
            written.append(tp)
    return path, written, skipped
