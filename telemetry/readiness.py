"""The verdict a pilot lead signs: criteria are data (readiness.yaml), measurements come from the
pilot with their sample size and 95 % interval, and each criterion gets a status.

- ``pass``: the interval lies on the good side of the threshold;
- ``fail``: it lies on the bad side (or a required measurement is missing: fail closed);
- ``inconclusive``: it straddles the threshold, or ``n`` is below the criterion's
  ``min_samples``, or the measurement itself says it has no data (an alert rule never judged);
- ``not_applicable``: an optional criterion without data (e.g. labels on an unlabelled corpus).

Verdict: ``go`` when every critical criterion passes (optional ones may be not applicable),
``no-go`` when any critical criterion fails, otherwise ``inconclusive``. Advisory criteria are
shown but never decide.
"""

from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from telemetry.exit_codes import VERDICT_EXIT, ExitCode  # noqa: F401 - the verdict's exit codes
from telemetry.metric_registry import format_value as format_number
from telemetry.stats import queries_to_settle

COMPARATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
STATUSES = ("pass", "fail", "inconclusive", "not_applicable")
VERDICTS = ("go", "no-go", "inconclusive")


class ReadinessError(ValueError):
    """A criteria file that cannot be used; names the file and the field."""


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str = Field(min_length=1)
    description: str
    measure: str
    comparator: Literal[">=", "<=", ">", "<"]
    threshold: float
    unit: Literal["pct", "pct_points", "ratio", "ms", "count"] = "ratio"
    optional: bool = False
    severity: Literal["critical", "advisory"] = "critical"
    min_samples: int = Field(default=1, ge=0)
    """Below this sample size the criterion is inconclusive, whatever the value says."""


class CriteriaFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    criteria: list[Criterion] = Field(min_length=1)


@dataclass(frozen=True)
class Measurement:
    """What the pilot measured for one criterion.

    ``exact``: no sampling uncertainty about the outcome (a census, or a zero-tolerance check
    where one observed failure is proof): the value is compared directly. Otherwise the
    interval decides. ``no_data``: why the measurement cannot be judged (inconclusive).
    """

    value: float | None
    n: int
    ci_low: float | None = None
    ci_high: float | None = None
    method: str = "census"
    exact: bool = False
    no_data: str | None = None


@dataclass(frozen=True)
class CriterionResult:
    id: str
    description: str
    severity: str
    threshold: str
    threshold_value: float
    comparator: str
    unit: str
    measured: str
    value: float | None
    n: int
    ci_low: float | None
    ci_high: float | None
    method: str
    status: str
    reason: str
    more_queries: int | None
    """Roughly how many more queries would settle an inconclusive criterion (None: unknown)."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    label: str
    criteria: list[CriterionResult]
    reason: str

    @property
    def go(self) -> bool:
        return self.label == "go"

    @property
    def exit_code(self) -> int:
        return int(VERDICT_EXIT[self.label])


def default_criteria_path() -> Path:
    return Path(str(resources.files("telemetry") / "readiness.yaml"))


def load_criteria(path: str | Path | None = None) -> list[Criterion]:
    """The criteria file (default: the packaged ``readiness.yaml``), strictly read and validated;
    a ``ReadinessError`` names the file and each field at fault."""
    from router.yaml_safe import YamlModelError, load_yaml_model

    p = Path(path) if path else default_criteria_path()
    try:
        return load_yaml_model(p, CriteriaFile).criteria
    except YamlModelError as exc:
        raise ReadinessError(
            "invalid readiness criteria:\n" + "\n".join(f"  - {line}" for line in exc.problems)
        ) from None


def format_value(value: float | None, unit: str) -> str:
    """A criterion's value or threshold in its unit; "not measured" when there is none."""
    return format_number(value, unit, missing="not measured")


def _missing(v: float | None) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def judge(c: Criterion, m: Measurement | None, total_queries: int = 0) -> CriterionResult:
    """One criterion's status from its measurement (see the module docstring)."""
    threshold = f"{c.comparator} {format_value(c.threshold, c.unit)}"

    def result(status: str, reason: str, more: int | None = None) -> CriterionResult:
        value = None if m is None or _missing(m.value) else float(m.value)
        measured = format_value(value, c.unit)
        if value is None:
            measured = "not applicable" if status == "not_applicable" else "not measured"
        return CriterionResult(
            id=c.id,
            description=c.description,
            severity=c.severity,
            threshold=threshold,
            threshold_value=c.threshold,
            comparator=c.comparator,
            unit=c.unit,
            measured=measured,
            value=value,
            n=0 if m is None else int(m.n),
            ci_low=None if m is None or _missing(m.ci_low) else float(m.ci_low),
            ci_high=None if m is None or _missing(m.ci_high) else float(m.ci_high),
            method="" if m is None else m.method,
            status=status,
            reason=reason,
            more_queries=more,
        )

    if m is None or _missing(m.value):
        if c.optional:
            return result("not_applicable", "no data for this optional criterion")
        why = m.no_data if m is not None and m.no_data else "not measured"
        return result("fail", f"{why}: a required criterion without a measurement fails closed")
    if m.no_data:
        return result("inconclusive", m.no_data)
    ok = COMPARATORS[c.comparator]
    value = float(m.value)
    if m.exact or _missing(m.ci_low) or _missing(m.ci_high):
        if not ok(value, c.threshold):
            return result("fail", "the measured value is on the wrong side of the threshold")
        if m.n < c.min_samples:
            return result(
                "inconclusive",
                f"n = {m.n:,} is below the {c.min_samples:,} samples this criterion needs",
                _scale(c.min_samples - m.n, m.n, total_queries),
            )
        return result("pass", "the measured value meets the threshold")
    lo, hi = float(m.ci_low), float(m.ci_high)
    if m.n < c.min_samples:
        return result(
            "inconclusive",
            f"n = {m.n:,} is below the {c.min_samples:,} samples this criterion needs",
            _scale(c.min_samples - m.n, m.n, total_queries),
        )
    good_all = ok(lo, c.threshold) and ok(hi, c.threshold)
    bad_all = not ok(lo, c.threshold) and not ok(hi, c.threshold)
    if good_all:
        return result("pass", "the whole 95 % interval meets the threshold")
    if bad_all:
        return result("fail", "the whole 95 % interval misses the threshold")
    need = queries_to_settle(value, lo, hi, c.threshold, m.n)
    more = None if need is None else _scale(max(need - m.n, 1), m.n, total_queries)
    return result("inconclusive", "the 95 % interval straddles the threshold", more)


def _scale(samples: int, n: int, total_queries: int) -> int:
    """Samples of a criterion (e.g. labelled or interactive queries) as corpus queries."""
    if total_queries and n:
        return int(math.ceil(samples * total_queries / n))
    return int(samples)


def evaluate(
    measurements: dict[str, Measurement | None],
    criteria: list[Criterion] | None = None,
    total_queries: int = 0,
) -> Verdict:
    """Judge every criterion, then the verdict from the critical ones."""
    crit = criteria if criteria is not None else load_criteria()
    results = [judge(c, measurements.get(c.measure), total_queries) for c in crit]
    critical = [r for r in results if r.severity == "critical"]
    failed = [r for r in critical if r.status == "fail"]
    open_ = [r for r in critical if r.status == "inconclusive"]
    if failed:
        label = "no-go"
        reason = f"{len(failed)} critical criteria failed: " + ", ".join(r.id for r in failed)
    elif open_:
        label = "inconclusive"
        parts = []
        for r in open_:
            more = f" (about {r.more_queries:,} more queries)" if r.more_queries else ""
            parts.append(f"{r.id}: {r.reason}{more}")
        reason = "no critical criterion failed, but some are not settled: " + "; ".join(parts)
    else:
        label = "go"
        reason = "every critical criterion passed"
    return Verdict(label=label, criteria=results, reason=reason)
