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
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AfterValidator,
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

from drills.clock import format_duration
from drills.faults import FAULTS, ROLLBACKS, Target
from drills.probes import CHECKS, DRILL_METRICS, PROBES
from drills.registry import Registry
from router.durations import Duration
from router.yaml_safe import YamlModelError, load_yaml_file, read_problem, validate_model

SCENARIO_DIR = Path(__file__).with_name("scenarios")
MAX_DURATION_S = 24 * 3600.0


def _registered(name: str, registry: Mapping[str, Any], what: str) -> str:
    """A scenario may only name what a registry holds; the error lists what it does hold."""
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; registered: {', '.join(registry)}")
    return name


def _plugin_name(registry: Registry[Any]) -> Any:
    """A str field naming a registered plug-in (checked when loaded, listed in the JSON Schema
    when it is generated, so a plug-in added with ``.add`` is valid in both)."""
    return Annotated[
        str,
        AfterValidator(lambda v: _registered(v, registry, registry.what)),
        Field(json_schema_extra=lambda schema: schema.update(enum=list(registry))),
    ]


class ScenarioError(ValueError):
    """A scenario cannot be run; ``problems`` has one line per finding (file: field: what)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _matching(regex: str, words: str) -> Any:
    """A str that must match ``regex``; the error says the rule in words, the JSON Schema keeps
    the pattern. ('[0-9a-z]', not '[a-z0-9]': rich would read '[a-z0-9]' as a style tag.)"""
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(f"{value!r} does not match the pattern {regex} ({words})")
        return value

    return Annotated[str, AfterValidator(check), Field(json_schema_extra={"pattern": regex})]


ScenarioName = _matching(
    r"^[0-9a-z][0-9a-z-]*$", "lowercase letters, digits and '-', starting with a letter or digit"
)
GuaranteeId = _matching(
    r"^[0-9a-z][0-9a-z_-]*$",
    "lowercase letters, digits, '-' and '_', starting with a letter or digit",
)


def _toggle_value(value: Any) -> Any:
    """YAML reads an unquoted ``true`` as a boolean; the environment variable would hold the
    string 'true', so that is what the drill sets."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


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

    min: float | None = Field(default=None, description="the value is at least this")
    max: float | None = Field(default=None, description="the value is at most this")
    range: tuple[float, float] | None = Field(
        default=None, description="[low, high]: the value lies between them (both included)"
    )
    equals: float | None = Field(default=None, description="the value is exactly this")

    @model_validator(mode="after")
    def _some(self) -> Tolerance:
        if all(v is None for v in (self.min, self.max, self.range, self.equals)):
            raise ValueError("give at least one of min, max, range, equals")
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError(f"range {list(self.range)}: the low end is above the high end")
        return self

    def ok(self, value: float | None) -> bool:
        return self.distance(value) == 0

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
        parts = [
            f"{symbol} {bound:g}"
            for symbol, bound in (("==", self.equals), (">=", self.min), ("<=", self.max))
            if bound is not None
        ]
        if self.range is not None:
            parts.append(f"in [{self.range[0]:g}, {self.range[1]:g}]")
        return " and ".join(parts)


class _PluginSpec(_Spec):
    """A scenario entry that names a registered plug-in (``key``) and configures it: each part
    (``params``, a check's ``expect``) is validated against that plug-in's own model, so an
    error names the valid keys for exactly that fault, probe, check or rollback."""

    registry: ClassVar[Registry[Any]]
    key: ClassVar[str]
    parts: ClassVar[dict[str, tuple[str, str]]] = {"params": ("Params", "params")}
    """Field -> (model attribute on the plug-in class, what the error calls it)."""
    _parsed: dict[str, BaseModel] = PrivateAttr(default_factory=dict)

    @classmethod
    def _part(cls, name: str, field: str, data: dict) -> BaseModel:
        attr, label = cls.parts[field]
        return _validate_params(label, name, getattr(cls.registry[name], attr), data)

    @field_validator("params", "expect", check_fields=False)
    @classmethod
    def _check_part(cls, v: dict, info: ValidationInfo) -> dict:
        name = info.data.get(cls.key)  # absent when the name itself was refused
        if name in cls.registry:
            cls._part(name, info.field_name, v)
        return v

    @model_validator(mode="after")
    def _parse_parts(self) -> _PluginSpec:
        name = getattr(self, self.key)
        self._parsed = {f: self._part(name, f, getattr(self, f)) for f in self.parts}
        return self

    @property
    def parsed_params(self) -> BaseModel:
        return self._parsed["params"]


PARAMS_HELP = "the plug-in's own parameters (see docs/scenarios.md for each one)"


class ProbeSpec(_PluginSpec):
    """A steady-state probe: measured before the first fault and again at the end."""

    registry = PROBES
    key = "probe"
    probe: _plugin_name(PROBES) = Field(description="a registered probe")
    window: Duration = Field(default=300.0, description="how much time each measurement reads")
    tolerance: Tolerance = Field(description="what the value must be for the system to be steady")
    params: dict[str, Any] = Field(default_factory=dict, description=PARAMS_HELP)

    @field_validator("window")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("window must be a positive duration, e.g. 5m")
        return v


class TargetSpec(_Spec):
    """Which upstream calls a fault hits: one model, one tier, or (empty) every model."""

    model: str | None = Field(default=None, description="a model in the router catalog")
    tier: str | None = Field(default=None, description="a tier in the router catalog")

    def to_target(self) -> Target:
        return Target(self.model, self.tier)


class FaultSpec(_PluginSpec):
    """A fault switched on at ``at`` and off after ``duration`` (or by a rollback)."""

    registry = FAULTS
    key = "type"
    type: _plugin_name(FAULTS) = Field(description="a registered fault type")
    target: TargetSpec | None = Field(
        default=None, description="upstream faults only: the model or tier it hits (default all)"
    )
    at: Duration = Field(default=0.0, description="when it starts (virtual time from the start)")
    duration: Duration | None = Field(
        default=None, description="how long it lasts; omitted: until a rollback clears it"
    )
    params: dict[str, Any] = Field(default_factory=dict, description=PARAMS_HELP)
    probability: float = Field(
        default=1.0, gt=0, le=1, description="share of eligible calls or writes it affects"
    )

    @field_validator("duration")
    @classmethod
    def _positive(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError(
                "duration must be positive (omit it: the fault lasts until a rollback)"
            )
        return v

    @model_validator(mode="after")
    def _target_fits(self) -> FaultSpec:
        cls = FAULTS[self.type]
        if self.target is not None and not cls.takes_target:
            raise ValueError(
                f"target: {self.type} acts on the {cls.boundary} boundary, not on a model; "
                "remove target"
            )
        return self


class ToggleChange(_Spec):
    """The execution toggle set to ``value`` at ``at``: an operator's change, valid or not."""

    at: Duration = Field(description="when (virtual time from the start)")
    value: ToggleValue = Field(description="the toggle text, exactly as an operator would set it")


class TrafficSpec(_Spec):
    """The queries the drill sends, on the virtual clock."""

    qps: float = Field(gt=0, le=1000, description="queries per virtual second")
    seed: int = Field(default=7, description="seeds the generated texts, arrivals and faults")
    corpus: str | None = Field(
        default=None,
        description="a corpus file (parquet, csv, jsonl; relative to the scenario) whose "
        "accepted texts are replayed; default: generated texts",
    )
    arrivals: Literal["uniform", "poisson"] = Field(
        default="uniform", description="evenly spaced, or a Poisson process at qps"
    )


class GuaranteeSpec(_PluginSpec):
    """A promise checked after the drill: a registered check with its params and expectation."""

    registry = CHECKS
    key = "check"
    parts = {"params": ("Params", "params"), "expect": ("Expect", "expect keys")}
    id: GuaranteeId = Field(description="unique in the scenario; JUnit's testcase")
    check: _plugin_name(CHECKS) = Field(description="a registered check")
    title: str | None = Field(default=None, description="the promise in words, for the reports")
    params: dict[str, Any] = Field(default_factory=dict, description=PARAMS_HELP)
    expect: dict[str, Any] = Field(
        default_factory=dict, description="the check's expectation (its keys per check)"
    )
    weight: float = Field(default=1.0, gt=0, description="its share of the resilience score")

    def build(self) -> Any:
        return CHECKS[self.check](self._parsed["params"], self._parsed["expect"])


class RollbackSpec(_PluginSpec):
    """What undoes the faults: at ``at``, or at the end of the drill (and always on an error)."""

    registry = ROLLBACKS
    key = "type"
    type: _plugin_name(ROLLBACKS) = Field(description="a registered rollback")
    at: Duration | None = Field(
        default=None, description="when (virtual time); omitted: at the end of the drill"
    )
    params: dict[str, Any] = Field(default_factory=dict, description=PARAMS_HELP)

    def build(self) -> Any:
        return ROLLBACKS[self.type](self.parsed_params)


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
    """A fire drill: traffic, faults on a virtual clock, steady-state probes, guarantees and
    rollbacks (``load_scenario`` reads a file, ``json_schema`` describes one)."""

    name: ScenarioName = Field(description="the drill's id: journals, reports, JUnit")
    title: str = Field(min_length=1, description="one line for people")
    description: str = Field(default="", description="what is drilled and why")
    tags: list[str] = Field(default_factory=list, description="free labels")
    failure_mode: str | None = Field(
        default=None,
        description="the failure mode this drill is evidence for: an id in "
        "reports/failure_modes.yaml (the Failure Modes page lists the drill under it)",
    )
    execution_mode: ToggleValue = Field(
        default="execution-enabled", description="the execution toggle when the drill starts"
    )
    toggle_changes: list[ToggleChange] = Field(
        default_factory=list, description="toggle changes during the drill, in time order"
    )
    duration: Duration = Field(description="virtual length: whole minutes, 1m to 24h")
    traffic: TrafficSpec = Field(description="the queries sent")
    tick: Duration = Field(default=30.0, description="probe and alert step; divides a minute")
    semantic: bool = Field(
        default=False, description="hybrid router (loads MiniLM); default rule-only"
    )
    router: dict[str, Any] = Field(
        default_factory=dict,
        description="overrides merged into the packaged router config (catalog, thresholds, ...)",
    )
    alert_rules: list[dict[str, Any]] = Field(
        default_factory=list,
        description="extra alert rules (telemetry/alert_rules.yaml format, drill metrics allowed)",
    )
    steady_state: list[ProbeSpec] = Field(
        default_factory=list, description="probes that must hold before the faults and after"
    )
    faults: list[FaultSpec] = Field(default_factory=list, description="what goes wrong, when")
    guarantees: list[GuaranteeSpec] = Field(min_length=1, description="what must still hold")
    rollbacks: list[RollbackSpec] = Field(
        default_factory=lambda: [RollbackSpec(type="clear_faults")],
        description="what undoes the faults; default: clear_faults at the end",
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
        problems += self._check_failure_mode()
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

    def _check_failure_mode(self) -> list[str]:
        if self.failure_mode is None:
            return []
        from reports.failure_modes import failure_mode_problem

        problem = failure_mode_problem(self.name, self.failure_mode)
        return [] if problem is None else [f"field 'failure_mode': {problem}"]

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
    """Validate an already-loaded scenario document (messages: ``router.yaml_safe``'s)."""
    bad = non_finite_paths(data) if isinstance(data, Mapping) else []
    if bad:
        raise ScenarioError(
            [f"{source}: field '{p}': not a finite number (.nan/.inf are refused)" for p in bad]
        )
    try:
        return validate_model(data, Scenario, source)
    except YamlModelError as exc:
        raise ScenarioError(exc.problems) from None


def load_scenario(ref: str | Path) -> Scenario:
    """Read and validate a scenario (a built-in name or a path)."""
    path = resolve_scenario(ref)
    try:
        data = load_yaml_file(path)  # strict UTF-8, duplicate keys refused
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError([read_problem(path, exc)]) from None
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


# ----------------------------------------------------------------------------- JSON Schema

SCHEMA_ID = "https://amaima.invalid/schemas/drill-scenario.json"


def json_schema() -> dict[str, Any]:
    """The scenario file's JSON Schema, generated from these models and the plug-in registries:
    each entry that names a fault, probe, check or rollback gets that plug-in's own ``params``
    (and a check's ``expect``) schema, so an editor can complete and check them. Semantic rules
    the schema cannot say (timeline overlaps, catalog models, alert-rule references) are left
    to ``harness drill validate``."""
    schema = Scenario.model_json_schema()
    defs = schema.setdefault("$defs", {})
    for spec in (FaultSpec, ProbeSpec, GuaranteeSpec, RollbackSpec):
        branches = []
        for name, plugin in spec.registry.items():
            then: dict[str, Any] = {}
            for part, (attr, _label) in spec.parts.items():
                model = getattr(plugin, attr)
                part_schema = model.model_json_schema(ref_template="#/$defs/{model}")
                defs.update(part_schema.pop("$defs", {}))
                part_schema["title"] = f"{name} {part}"
                if "description" not in part_schema and getattr(plugin, "summary", None):
                    part_schema["description"] = plugin.summary
                then[part] = part_schema
            branches.append(
                {
                    "if": {"properties": {spec.key: {"const": name}}, "required": [spec.key]},
                    "then": {"properties": then},
                }
            )
        defs[spec.__name__]["allOf"] = branches
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }
