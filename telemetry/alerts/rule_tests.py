"""promtool-style rule unit tests (``alert_tests/*.yaml``), run through the same engine."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from telemetry.alerts.engine import AlertEngine
from telemetry.alerts.rules import (
    DEFAULT_RULES_PATH,
    AlertRule,
    AlertRulesError,
    Context,
    _load_yaml,
    format_duration,
    known_metric,
    load_rules,
    parse_duration,
)

# ----------------------------------------------------------------------------- rule unit tests

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_UNSIGNED = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_EXPAND = re.compile(rf"^({_NUM})([-+])({_UNSIGNED})x(\d+)$")
_REPEAT = re.compile(rf"^({_NUM})x(\d+)$")
_MISSING = re.compile(r"^_x(\d+)$")

DEFAULT_TESTS_DIR = Path(__file__).parent.parent / "alert_tests"

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

    _known = field_validator("metric")(staticmethod(known_metric))


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
