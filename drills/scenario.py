"""Drill scenarios: the YAML schema, checked once at the edge (Chaos Toolkit's loader shape).

Everything a drill does is in its scenario file: traffic, the toggle value, faults with their
virtual times, steady-state probes, guarantees and rollbacks, plus optional extra alert rules and
router config overrides. :func:`load_scenario` validates all of it — structure, registered fault /
probe / check / rollback names and their params, model and tier targets against the router
catalog, alert-rule references, and the timeline (a steady-state window must not overlap a
fault) — and raises :class:`ScenarioError` naming the file, the field and what would be valid.
The runner trusts a loaded :class:`Scenario`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from drills.clock import format_duration, parse_duration
from drills.faults import FAULTS, ROLLBACKS, Target
from drills.probes import CHECKS, DRILL_METRICS, PROBES
from router.yaml_safe import NotUtf8Error, load_yaml_file

SCENARIO_DIR = Path(__file__).with_name("scenarios")
MAX_DURATION_S = 24 * 3600.0


def _registered(name: str, registry: Mapping[str, Any], what: str) -> str:
    """A scenario may only name what a registry holds; the error lists what it does hold."""
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; registered: {', '.join(registry)}")
    return name


class ScenarioError(ValueError):
    """A scenario cannot be run; ``problems`` has one line per finding (file: field: what)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _duration(value: Any) -> float:
    return parse_duration(value)


def _toggle_value(value: Any) -> Any:
    """YAML reads an unquoted ``true`` as a boolean; the environment variable would hold the
    string 'true', so that is what the drill sets."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


Duration = Annotated[float, BeforeValidator(_duration)]
ToggleValue = Annotated[str | None, BeforeValidator(_toggle_value)]


class _Spec(BaseModel):
    # allow_inf_nan=False: a `.nan` tolerance or qps compares false with everything.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def non_finite_paths(data: Any, path: tuple[str, ...] = ()) -> list[str]:
    """Dotted paths of every NaN/inf float in a loaded document (YAML `.nan`, `.inf`)."""
    if isinstance(data, float):
        return [] if math.isfinite(data) else [".".join(path) or "(top level)"]
    if isinstance(data, Mapping):
        return [p for k, v in data.items() for p in non_finite_paths(v, (*path, str(k)))]
    if isinstance(data, list | tuple):
        return [p for i, v in enumerate(data) for p in non_finite_paths(v, (*path, str(i)))]
    return []


def _params_error(kind: str, name: str, exc: ValidationError, model: type[BaseModel]) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown parameter"
        elif err["type"] == "missing":
            msg = "required"
        parts.append(f"{loc}: {msg}" if loc else msg)
    valid = ", ".join(model.model_fields) or "(none)"
    return f"{'; '.join(parts)} (valid {kind} for {name}: {valid})"


def _validate_params(kind: str, name: str, model: type[BaseModel], data: dict) -> BaseModel:
    try:
        parsed = model.model_validate(data or {})
    except ValidationError as exc:
        raise ValueError(_params_error(kind, name, exc, model)) from None
    bad = non_finite_paths(parsed.model_dump())  # e.g. the string "nan" coerced to a float
    if bad:
        raise ValueError(
            f"{', '.join(bad)}: not a finite number (valid {kind} for {name}: "
            f"{', '.join(model.model_fields) or '(none)'})"
        )
    return parsed


class Tolerance(_Spec):
    """What a steady-state probe's value must be: min / max / range / equals."""

    min: float | None = None
    max: float | None = None
    range: tuple[float, float] | None = None
    equals: float | None = None

    @model_validator(mode="after")
    def _some(self) -> Tolerance:
        if all(v is None for v in (self.min, self.max, self.range, self.equals)):
            raise ValueError("give at least one of min, max, range, equals")
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError(f"range {list(self.range)}: the low end is above the high end")
        return self

    def ok(self, value: float | None) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if self.equals is not None and value != self.equals:
            return False
        if self.min is not None and value < self.min:
            return False
        if self.max is not None and value > self.max:
            return False
        return self.range is None or self.range[0] <= value <= self.range[1]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, mode="json")

    def distance(self, value: float | None) -> float:
        """How far ``value`` is outside the tolerance (0 inside; inf for no data)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return math.inf
        d = 0.0
        if self.equals is not None:
            d = max(d, abs(value - self.equals))
        if self.min is not None:
            d = max(d, self.min - value)
        if self.max is not None:
            d = max(d, value - self.max)
        if self.range is not None:
            d = max(d, self.range[0] - value, value - self.range[1])
        return d

    def describe(self) -> str:
        parts = []
        if self.equals is not None:
            parts.append(f"== {self.equals:g}")
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.range is not None:
            parts.append(f"in [{self.range[0]:g}, {self.range[1]:g}]")
        return " and ".join(parts)


class ProbeSpec(_Spec):
    probe: str
    window: Duration = 300.0
    tolerance: Tolerance
    params: dict[str, Any] = Field(default_factory=dict)
    _parsed: BaseModel | None = PrivateAttr(default=None)

    @field_validator("probe")
    @classmethod
    def _known(cls, v: str) -> str:
        return _registered(v, PROBES, "probe")

    @field_validator("window")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("window must be a positive duration, e.g. 5m")
        return v

    @field_validator("params")
    @classmethod
    def _check_params(cls, v: dict, info: ValidationInfo) -> dict:
        probe = info.data.get("probe")
        if probe in PROBES:
            _validate_params("params", probe, PROBES[probe].Params, v)
        return v

    @model_validator(mode="after")
    def _params(self) -> ProbeSpec:
        model = PROBES[self.probe].Params
        self._parsed = _validate_params("params", self.probe, model, self.params)
        return self

    @property
    def parsed_params(self) -> BaseModel:
        assert self._parsed is not None
        return self._parsed


class TargetSpec(_Spec):
    model: str | None = None
    tier: str | None = None

    def to_target(self) -> Target:
        return Target(self.model, self.tier)


class FaultSpec(_Spec):
    type: str
    target: TargetSpec | None = None
    at: Duration = 0.0
    duration: Duration | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    probability: float = Field(default=1.0, gt=0, le=1)
    _parsed: BaseModel | None = PrivateAttr(default=None)

    @field_validator("type")
    @classmethod
    def _known(cls, v: str) -> str:
        return _registered(v, FAULTS, "fault type")

    @field_validator("duration")
    @classmethod
    def _positive(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError(
                "duration must be positive (omit it: the fault lasts until a rollback)"
            )
        return v

    @field_validator("params")
    @classmethod
    def _check_params(cls, v: dict, info: ValidationInfo) -> dict:
        kind = info.data.get("type")
        if kind in FAULTS:
            _validate_params("params", kind, FAULTS[kind].Params, v)
        return v

    @model_validator(mode="after")
    def _params(self) -> FaultSpec:
        cls = FAULTS[self.type]
        self._parsed = _validate_params("params", self.type, cls.Params, self.params)
        if self.target is not None and not cls.takes_target:
            raise ValueError(
                f"target: {self.type} acts on the {cls.boundary} boundary, not on a model; "
                "remove target"
            )
        return self

    @property
    def parsed_params(self) -> BaseModel:
        assert self._parsed is not None
        return self._parsed


class ToggleChange(_Spec):
    at: Duration
    value: ToggleValue


class TrafficSpec(_Spec):
    qps: float = Field(gt=0, le=1000)
    seed: int = 7
    corpus: str | None = None
    """A corpus file (parquet, csv, jsonl) whose accepted texts are replayed; default generated."""
    arrivals: Literal["uniform", "poisson"] = "uniform"


class GuaranteeSpec(_Spec):
    id: str = Field(pattern=r"^[0-9a-z][0-9a-z_-]*$")
    check: str
    title: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    expect: dict[str, Any] = Field(default_factory=dict)
    weight: float = Field(default=1.0, gt=0)
    _params: BaseModel | None = PrivateAttr(default=None)
    _expect: BaseModel | None = PrivateAttr(default=None)

    @field_validator("check")
    @classmethod
    def _known(cls, v: str) -> str:
        return _registered(v, CHECKS, "check")

    @field_validator("params", "expect")
    @classmethod
    def _check_parts(cls, v: dict, info: ValidationInfo) -> dict:
        check = info.data.get("check")
        if check in CHECKS:
            cls_ = CHECKS[check]
            if info.field_name == "params":
                _validate_params("params", check, cls_.Params, v)
            else:
                _validate_params("expect keys", check, cls_.Expect, v)
        return v

    @model_validator(mode="after")
    def _parts(self) -> GuaranteeSpec:
        cls = CHECKS[self.check]
        self._params = _validate_params("params", self.check, cls.Params, self.params)
        self._expect = _validate_params("expect keys", self.check, cls.Expect, self.expect)
        return self

    def build(self) -> Any:
        assert self._params is not None and self._expect is not None
        return CHECKS[self.check](self._params, self._expect)


class RollbackSpec(_Spec):
    type: str
    at: Duration | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    _parsed: BaseModel | None = PrivateAttr(default=None)

    @field_validator("type")
    @classmethod
    def _known(cls, v: str) -> str:
        return _registered(v, ROLLBACKS, "rollback")

    @field_validator("params")
    @classmethod
    def _check_params(cls, v: dict, info: ValidationInfo) -> dict:
        kind = info.data.get("type")
        if kind in ROLLBACKS:
            _validate_params("params", kind, ROLLBACKS[kind].Params, v)
        return v

    @model_validator(mode="after")
    def _params(self) -> RollbackSpec:
        self._parsed = _validate_params(
            "params", self.type, ROLLBACKS[self.type].Params, self.params
        )
        return self

    def build(self) -> Any:
        assert self._parsed is not None
        return ROLLBACKS[self.type](self._parsed)


@dataclass(frozen=True)
class PlannedWindow:
    """When a fault (or a toggle misconfiguration) is planned to be on."""

    index: int
    type: str
    boundary: str
    target: Target
    params: BaseModel
    probability: float
    start_s: float
    end_s: float | None
    """Planned end: its own duration or the first rollback that clears it; None = drill end."""
    source: Literal["fault", "toggle_change"]


def _deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@lru_cache(maxsize=1)
def _default_router_raw() -> dict:
    from router.config import default_config_path

    return load_yaml_file(default_config_path())


def _drill_rule_class() -> type:
    """AlertRule that also accepts the drill's own per-minute metrics (``DRILL_METRICS``)."""
    from telemetry.alerts import AlertRule
    from telemetry.metrics import KNOWN_METRICS

    class DrillAlertRule(AlertRule):
        @field_validator("metric")
        @classmethod
        def _known_metric(cls, v: str) -> str:
            if v not in KNOWN_METRICS and v not in DRILL_METRICS:
                raise ValueError(
                    f"unknown metric {v!r}; known metrics: {', '.join(KNOWN_METRICS)}; "
                    f"drill metrics: {', '.join(DRILL_METRICS)}"
                )
            return v

    return DrillAlertRule


class Scenario(_Spec):
    # '[0-9a-z]', not '[a-z0-9]': rich would read '[a-z0-9]' as a style tag and print '^*$'.
    name: str = Field(pattern=r"^[0-9a-z][0-9a-z-]*$")
    title: str = Field(min_length=1)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    execution_mode: ToggleValue = "execution-enabled"
    toggle_changes: list[ToggleChange] = Field(default_factory=list)
    duration: Duration
    traffic: TrafficSpec
    tick: Duration = 30.0
    semantic: bool = False
    router: dict[str, Any] = Field(default_factory=dict)
    alert_rules: list[dict[str, Any]] = Field(default_factory=list)
    steady_state: list[ProbeSpec] = Field(default_factory=list)
    faults: list[FaultSpec] = Field(default_factory=list)
    guarantees: list[GuaranteeSpec] = Field(min_length=1)
    rollbacks: list[RollbackSpec] = Field(
        default_factory=lambda: [RollbackSpec(type="clear_faults")]
    )

    _router_config: Any = PrivateAttr(default=None)
    _rules: list[Any] = PrivateAttr(default_factory=list)
    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        problems: list[str] = []
        problems += self._check_router()
        problems += self._check_timeline()
        problems += self._check_rules()
        ids = [g.id for g in self.guarantees]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            problems.append(f"field 'guarantees': duplicate id(s) {dupes}; ids must be unique")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # --- validation parts -------------------------------------------------------------------
    def _check_router(self) -> list[str]:
        from router.config import RouterConfig

        raw = _deep_merge(_default_router_raw(), self.router) if self.router else None
        try:
            if raw is None:
                from router.config import load_config

                config = load_config()
            else:
                config = RouterConfig.model_validate(raw)
        except ValidationError as exc:
            return [
                f"field 'router.{'.'.join(str(x) for x in e['loc'])}': {e['msg']}"
                for e in exc.errors()
            ]
        self._router_config = config
        models = {m.name: m.tier for m in config.models}
        tiers = sorted(set(models.values()))
        problems = []
        for i, f in enumerate(self.faults):
            t = f.target
            if t is None:
                continue
            if t.model is not None and t.model not in models:
                problems.append(
                    f"field 'faults[{i}].target.model': unknown model {t.model!r}; "
                    f"models: {', '.join(models)}"
                )
            if t.tier is not None and t.tier not in tiers:
                problems.append(
                    f"field 'faults[{i}].target.tier': unknown tier {t.tier!r}; tiers: "
                    f"{', '.join(tiers)}"
                )
        for i, g in enumerate(self.guarantees):
            for key in ("model", "tier"):
                value = g.params.get(key)
                valid = models if key == "model" else tiers
                if isinstance(value, str) and value not in valid:
                    problems.append(
                        f"field 'guarantees[{i}].params.{key}': unknown {key} {value!r}; "
                        f"valid: {', '.join(valid)}"
                    )
        return problems

    def _check_timeline(self) -> list[str]:
        problems = []
        d = self.duration
        if d <= 0 or d > MAX_DURATION_S or d % 60:
            problems.append(
                f"field 'duration': {format_duration(d)} must be whole minutes between 1m and "
                "24h (metrics and alerts run on minute buckets)"
            )
            return problems
        if self.tick <= 0 or 60 % self.tick:
            problems.append(
                f"field 'tick': {format_duration(self.tick)} must divide a minute "
                "(1s, 2s, 5s, 10s, 15s, 20s, 30s or 1m)"
            )
        for i, f in enumerate(self.faults):
            if f.at >= d:
                problems.append(
                    f"field 'faults[{i}].at': {format_duration(f.at)} is not before the end of "
                    f"the drill ({format_duration(d)})"
                )
            elif f.duration is not None and f.at + f.duration > d:
                problems.append(
                    f"field 'faults[{i}].duration': the fault would end at "
                    f"{format_duration(f.at + f.duration)}, after the drill ends "
                    f"({format_duration(d)})"
                )
        last = -1.0
        for i, c in enumerate(self.toggle_changes):
            if c.at >= d:
                problems.append(
                    f"field 'toggle_changes[{i}].at': {format_duration(c.at)} is not before the "
                    f"end of the drill ({format_duration(d)})"
                )
            if c.at <= last:
                problems.append(
                    f"field 'toggle_changes[{i}].at': changes must be in increasing time order"
                )
            last = c.at
        for i, r in enumerate(self.rollbacks):
            if r.at is not None and r.at > d:
                problems.append(
                    f"field 'rollbacks[{i}].at': {format_duration(r.at)} is after the end of the "
                    f"drill ({format_duration(d)})"
                )
        if problems:
            return problems
        windows = self.timeline()
        if windows:
            first = min(w.start_s for w in windows)
            last_end = max(d if w.end_s is None else w.end_s for w in windows)
            for i, p in enumerate(self.steady_state):
                if p.window > first:
                    problems.append(
                        f"field 'steady_state[{i}].window': {format_duration(p.window)} is longer "
                        f"than the time before the first fault ({format_duration(first)}); start "
                        "the first fault later or shorten the window"
                    )
                elif d - p.window < last_end:
                    problems.append(
                        f"field 'steady_state[{i}].window': the after-window "
                        f"({format_duration(d - p.window)}–{format_duration(d)}) overlaps a fault "
                        f"that lasts until {format_duration(last_end)}; give faults a duration or "
                        "a rollback 'at', or lengthen the drill"
                    )
        return problems

    def _check_rules(self) -> list[str]:
        from telemetry.alerts import AlertRulesError, load_rules

        problems = []
        try:
            shipped = load_rules()
        except AlertRulesError as exc:
            return [f"field 'alert_rules': the shipped rules are invalid: {exc}"]
        shipped_names = {r.name for r in shipped}
        rule_cls = _drill_rule_class()
        inline = []
        for i, raw in enumerate(self.alert_rules):
            name = raw.get("name") if isinstance(raw, dict) else None
            if name in shipped_names:
                problems.append(
                    f"field 'alert_rules[{i}].name': {name!r} is a shipped rule "
                    "(telemetry/alert_rules.yaml); give the scenario's rule its own name"
                )
                continue
            try:
                inline.append(rule_cls.model_validate(raw))
            except ValidationError as exc:
                for e in exc.errors():
                    loc = ".".join(str(x) for x in e["loc"]).replace("for_", "for")
                    msg = e["msg"].removeprefix("Value error, ")
                    if e["type"] == "extra_forbidden":
                        msg = "unknown field; valid fields: " + ", ".join(
                            "for" if f == "for_" else f for f in rule_cls.model_fields
                        )
                    problems.append(f"field 'alert_rules[{i}].{loc}': {msg}")
        names = [r.name for r in inline]
        if len(names) != len(set(names)):
            problems.append("field 'alert_rules': rule names must be unique")
        if problems:
            return problems
        self._rules = inline
        known = {r.name for r in shipped if r.applies("drill")} | set(names)
        for i, g in enumerate(self.guarantees):
            key = CHECKS[g.check].rule_param
            if key is None:
                continue
            rule = g.params.get(key)
            if rule not in known:
                problems.append(
                    f"field 'guarantees[{i}].params.{key}': unknown alert rule {rule!r}; rules in "
                    f"the drill context: {', '.join(sorted(known))}"
                )
        return problems

    # --- derived --------------------------------------------------------------------------
    @property
    def router_config(self) -> Any:
        """The validated router config (the packaged default with ``router:`` overrides)."""
        return self._router_config

    @property
    def inline_rules(self) -> list[Any]:
        return list(self._rules)

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def queries(self) -> int:
        return int(round(self.traffic.qps * self.duration))

    def scenario_hash(self) -> str:
        """16 hex of the validated content: equal scenarios hash equal whatever the YAML layout."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def timeline(self) -> list[PlannedWindow]:
        """Every planned fault window, toggle misconfigurations included, in start order."""
        out: list[PlannedWindow] = []
        clears = [(r.at, r.params.get("types")) for r in self.rollbacks if r.type == "clear_faults"]
        restores = [r.at for r in self.rollbacks if r.type == "restore_toggle"]

        def first_after(start: float, times: list[float | None]) -> float | None:
            later = [t for t in times if t is not None and t >= start]
            return min(later) if later else None

        for i, f in enumerate(self.faults):
            end = None if f.duration is None else f.at + f.duration
            times = [t for t, types in clears if types is None or f.type in types]
            if f.type == "toggle":
                times += restores
            by_rollback = first_after(f.at, times)
            if by_rollback is not None and (end is None or by_rollback < end):
                end = by_rollback
            cls = FAULTS[f.type]
            out.append(
                PlannedWindow(
                    i,
                    f.type,
                    cls.boundary,
                    f.target.to_target() if f.target else Target(),
                    f.parsed_params,
                    f.probability,
                    f.at,
                    end,
                    "fault",
                )
            )
        toggle_cls = FAULTS["toggle"]
        changes = self.toggle_changes
        for j, c in enumerate(changes):
            if c.value == self.execution_mode:
                continue
            end = changes[j + 1].at if j + 1 < len(changes) else None
            by_rollback = first_after(c.at, [t for t, _ in clears] + restores)
            if by_rollback is not None and (end is None or by_rollback < end):
                end = by_rollback
            out.append(
                PlannedWindow(
                    len(self.faults) + j,
                    "toggle",
                    toggle_cls.boundary,
                    Target(),
                    toggle_cls.Params.model_validate({"value": c.value}),
                    1.0,
                    c.at,
                    end,
                    "toggle_change",
                )
            )
        return sorted(out, key=lambda w: (w.start_s, w.index))

    def plan(self) -> list[tuple[float, str, str]]:
        """(offset_s, kind, text) for a dry run: what will happen when, without traffic."""
        d = self.duration
        rows: list[tuple[float, str, str]] = [
            (
                0.0,
                "drill_started",
                f"traffic {self.traffic.qps:g} qps ({self.queries} queries, seed "
                f"{self.traffic.seed}, {'corpus ' + self.traffic.corpus if self.traffic.corpus else 'generated'}); "
                f"toggle {self.execution_mode!r}; router {'hybrid' if self.semantic else 'rule-only'}",
            )
        ]
        windows = self.timeline()
        first = min((w.start_s for w in windows), default=d)
        before_at = (
            first if windows else min(d, max((p.window for p in self.steady_state), default=0))
        )
        for p in self.steady_state:
            rows.append(
                (
                    before_at,
                    "steady_state_before",
                    f"probe {p.probe} over {format_duration(max(0.0, before_at - p.window))}–"
                    f"{format_duration(before_at)}, tolerance {p.tolerance.describe()} "
                    "(not met: abort)",
                )
            )
        for w in windows:
            inj = FAULTS[w.type](w.index, w.params, target=w.target, probability=w.probability)
            prob = f", probability {w.probability:g}" if w.probability < 1 else ""
            rows.append((w.start_s, "fault_on", inj.describe() + prob))
            if w.end_s is not None:
                rows.append((w.end_s, "fault_off", inj.describe()))
        for c in self.toggle_changes:
            rows.append((c.at, "toggle_changed", f"toggle set to {c.value!r}"))
        for r in self.rollbacks:
            detail = ", ".join(f"{k}={v}" for k, v in r.params.items())
            rows.append(
                (
                    d if r.at is None else r.at,
                    "rollback",
                    r.type + (f" ({detail})" if detail else ""),
                )
            )
        rows.append((d, "drain", "drain the telemetry spool"))
        for p in self.steady_state:
            rows.append(
                (
                    d,
                    "steady_state_after",
                    f"probe {p.probe} over {format_duration(d - p.window)}–{format_duration(d)}, "
                    f"tolerance {p.tolerance.describe()} (not met: deviated)",
                )
            )
        order = {
            "drill_started": 0,
            "fault_off": 1,
            "steady_state_before": 2,
            "rollback": 3,
            "fault_on": 4,
            "toggle_changed": 5,
            "drain": 6,
            "steady_state_after": 7,
        }
        return sorted(rows, key=lambda r: (r[0], order.get(r[1], 9)))


# ----------------------------------------------------------------------------- loading


def _loc_text(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _fields_at(loc: tuple) -> list[str] | None:
    """Valid field names of the model that holds ``loc[-1]`` (for 'unknown field' messages)."""
    model: Any = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        info = model.model_fields.get(part)
        if info is None:
            return None
        model = _unwrap(info.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return None


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is None:
            return tp
        args = [a for a in get_args(tp) if a is not type(None)]
        if origin is Annotated:
            tp = args[0]
        elif args:
            tp = next(
                (a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), args[0]
            )
        else:
            return tp


_PATTERN_WORDS = {
    r"^[0-9a-z][0-9a-z-]*$": "lowercase letters, digits and '-', starting with a letter or digit",
    r"^[0-9a-z][0-9a-z_-]*$": "lowercase letters, digits, '-' and '_', starting with a letter or digit",
}


def format_errors(exc: ValidationError, source: str) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            valid = _fields_at(loc)
            msg = "unknown field" + (f"; valid fields: {', '.join(valid)}" if valid else "")
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "string_pattern_mismatch":
            pattern = (err.get("ctx") or {}).get("pattern", "")
            msg = f"{err['input']!r} does not match the pattern {pattern} ({_PATTERN_WORDS.get(pattern, 'see the docs')})"
        if not loc:
            problems += [f"{source}: {line}" for line in msg.splitlines()]
        else:
            problems.append(f"{source}: field '{_loc_text(loc)}': {msg}")
    return problems


def builtin_scenarios() -> dict[str, Path]:
    """Built-in scenario name -> file."""
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.yaml"))}


def resolve_scenario(ref: str | Path) -> Path:
    """A built-in name or a path to a scenario file."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ScenarioError([f"{path}: scenario file not found"])
        return path
    builtins = builtin_scenarios()
    if str(ref) in builtins:
        return builtins[str(ref)]
    raise ScenarioError(
        [f"{ref}: no such scenario; built-ins: {', '.join(builtins)} (or give a path to a .yaml)"]
    )


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate an already-loaded scenario document."""
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}: expected a mapping with name, title, duration, ..."])
    bad = non_finite_paths(data)
    if bad:
        raise ScenarioError(
            [f"{source}: field '{p}': not a finite number (.nan/.inf are refused)" for p in bad]
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_errors(exc, source)) from None


def load_scenario(ref: str | Path) -> Scenario:
    """Read and validate a scenario (a built-in name or a path)."""
    path = resolve_scenario(ref)
    try:
        data = load_yaml_file(path)  # strict UTF-8, duplicate keys refused
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except NotUtf8Error as exc:
        raise ScenarioError([str(exc)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ScenarioError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    scenario = parse_scenario(data, str(path))
    scenario._source = path
    if scenario.traffic.corpus is not None:
        corpus = Path(scenario.traffic.corpus)
        if not corpus.is_absolute() and not corpus.exists():
            corpus = path.parent / corpus
        if not corpus.is_file():
            raise ScenarioError(
                [f"{path}: field 'traffic.corpus': file not found: {scenario.traffic.corpus}"]
            )
        from data.corpus import CorpusError, check_columns

        try:  # a headerless or unreadable corpus is a scenario error now, not a traceback later
            check_columns(corpus)
        except CorpusError as exc:
            raise ScenarioError([f"{path}: field 'traffic.corpus': {exc}"]) from None
        scenario.traffic.corpus = str(corpus)
    return scenario
