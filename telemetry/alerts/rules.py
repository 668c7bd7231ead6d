"""Alert rules as data: the schema (``AlertRule``), durations per context, and loading
``alert_rules.yaml`` with every problem named (file, rule, field, valid values)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from router import durations
from router.yaml_safe import load_yaml_file, read_problem, validation_problems
from telemetry.metrics import KNOWN_METRICS

DEFAULT_RULES_PATH = Path(__file__).parent.parent / "alert_rules.yaml"

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


def known_metric(name: str) -> str:
    """``name`` if ``compute_metrics`` produces it; else the error a rule or rule test shows."""
    if name not in KNOWN_METRICS:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(KNOWN_METRICS)}")
    return name


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
        return known_metric(v)

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
            problems += validation_problems(exc, prefix, AlertRule)
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
    try:
        return load_yaml_file(path)
    except (OSError, yaml.YAMLError) as exc:
        raise AlertRulesError([read_problem(path, exc)]) from None


def load_rules(path: str | Path | None = None) -> list[AlertRule]:
    """Read and validate a rules file (default: the packaged ``alert_rules.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_RULES_PATH
    return parse_rules(_load_yaml(path), source=str(path))
