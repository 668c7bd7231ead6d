"""The go / no-go verdict: criteria are data (readiness.yaml), measures come from the pilot.

A criterion without a measurement fails, so a broken stage can never produce a "go".
"""

from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

COMPARATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


class ReadinessError(ValueError):
    """A criteria file that cannot be used; names the file and the field."""


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    description: str
    measure: str
    comparator: Literal[">=", "<=", ">", "<"]
    threshold: float
    unit: Literal["pct", "pct_points", "ratio", "ms", "count"] = "ratio"
    optional: bool = False


class CriteriaFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    criteria: list[Criterion] = Field(min_length=1)


@dataclass(frozen=True)
class CriterionResult:
    id: str
    description: str
    threshold: str
    measured: str
    value: float | None
    passed: bool | None
    """None when not applicable (optional criterion without a measurement)."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    go: bool
    criteria: list[CriterionResult]

    @property
    def label(self) -> str:
        return "go" if self.go else "no-go"


def default_criteria_path() -> Path:
    return Path(str(resources.files("telemetry") / "readiness.yaml"))


def load_criteria(path: str | Path | None = None) -> list[Criterion]:
    p = Path(path) if path else default_criteria_path()
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReadinessError(f"readiness criteria not found: {p}") from None
    except yaml.YAMLError as exc:
        raise ReadinessError(f"readiness criteria {p} is not valid YAML: {exc}") from None
    try:
        return CriteriaFile.model_validate(raw).criteria
    except ValidationError as exc:
        lines = [f"invalid readiness criteria {p}:"]
        for err in exc.errors():
            lines.append(f"  - {'.'.join(str(x) for x in err['loc'])}: {err['msg']}")
        raise ReadinessError("\n".join(lines)) from None


def format_value(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    if unit == "pct":
        return f"{value * 100:.2f} %"
    if unit == "pct_points":
        return f"{value:.2f} %"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "count":
        return f"{value:.0f}"
    return f"{value:.3f}"


def evaluate(measures: dict[str, float | None], criteria: list[Criterion] | None = None) -> Verdict:
    """Compare each measure with its threshold; go only if every applicable criterion passes."""
    results = []
    for c in criteria if criteria is not None else load_criteria():
        value = measures.get(c.measure)
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        threshold = f"{c.comparator} {format_value(c.threshold, c.unit)}"
        if missing:
            passed = None if c.optional else False
            measured = "not applicable" if c.optional else "not measured"
            results.append(CriterionResult(c.id, c.description, threshold, measured, None, passed))
            continue
        passed = bool(COMPARATORS[c.comparator](float(value), c.threshold))
        results.append(
            CriterionResult(
                c.id,
                c.description,
                threshold,
                format_value(float(value), c.unit),
                float(value),
                passed,
            )
        )
    return Verdict(go=all(r.passed is not False for r in results), criteria=results)
