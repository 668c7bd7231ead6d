"""Steady-state probes: each measures one number over a window of virtual time (decision
availability over the last 5 minutes, p95 latency, rows waiting in the spool) from a
:class:`~drills.record.DrillRecord`. The runner probes before the first fault, every virtual
minute during the drill and after the rollbacks; the scenario's tolerance says whether the number
is the steady state. A probe over decisions reads its metric from ``telemetry.metric_registry``,
so a probe, an alert and the pilot report mean the same thing by "error rate".

Adding a probe is adding a class and a line in ``PROBES``. The guarantee checks live in
``drills.checks``; the names this module used to hold stay importable from it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from importlib import import_module
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel

from drills.record import (  # noqa: F401 - re-exported: drills.probes was their home
    AlertRecord,
    BreakerRecord,
    DrillRecord,
    FaultSelector,
    FaultWindow,
    ParamsModel,
    StoreFacts,
)
from drills.registry import Registry
from telemetry.metric_registry import (  # noqa: F401 - outcome sets re-exported for drills.runner
    CALLED_OUTCOMES,
    ERROR_OUTCOMES,
    INTERACTIVE_TIERS,
    METRICS,
    MISCONFIGURED_CODE,
)


def p95(values: np.ndarray | pd.Series) -> float | None:
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return None
    return float(np.percentile(arr, 95))


def metric_value(metric: str, df: pd.DataFrame, tiers: Iterable[str]) -> float | None:
    """A registry metric over these decisions: None (no data) where it is NaN or there are no
    decisions, except a count, which is 0 over no decisions."""
    m = METRICS[metric]
    if not len(df):
        return 0.0 if m.count_like else None
    v = m.compute(df, tuple(tiers))
    return None if math.isnan(v) else v


# ----------------------------------------------------------------------------- probes


class Probe(ABC):
    """One steady-state measurement over ``[start_s, end_s)``; None means no data."""

    name: ClassVar[str]
    metric: ClassVar[str] = ""
    """The ``telemetry.metric_registry`` entry it measures (default: its own name)."""
    summary: ClassVar[str]
    unit: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = ParamsModel
    point_in_time: ClassVar[bool] = False

    @classmethod
    def metric_name(cls) -> str:
        return cls.metric or cls.name

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A probe without a summary of its own is described by its registry metric."""
        super().__init_subclass__(**kwargs)
        if "summary" not in cls.__dict__ and "name" in cls.__dict__:
            cls.summary = METRICS[cls.metric_name()].description

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    @abstractmethod
    def measure(self, record: DrillRecord, start_s: float, end_s: float) -> float | None: ...


class MetricProbe(Probe):
    """A registry metric over the decisions of the window (see ``metric_value``)."""

    def measure(self, record, start_s, end_s):  # noqa: D102
        return metric_value(
            self.metric_name(), record.frame(start_s, end_s), record.interactive_tiers
        )


class DecisionAvailabilityProbe(Probe):
    name = "decision_availability"

    def measure(self, record, start_s, end_s):  # noqa: D102
        queries = record.queries(start_s, end_s)
        if queries == 0:
            return None
        return len(record.frame(start_s, end_s)) / queries


class ErrorRateProbe(MetricProbe):
    """None (no data) when nothing was executed, as ``telemetry.metrics`` has NaN."""

    name = "error_rate"


class LatencyParams(ParamsModel):
    tier: str | None = None
    interactive: bool = False


class LatencyP95Probe(MetricProbe):
    name = "latency_p95_ms"
    metric = "actual_latency_p95_ms"
    """``interactive: true`` measures ``actual_latency_p95_interactive_ms``."""
    summary = "p95 actual latency of calls that reached a model (tier / interactive tiers)"
    unit = "ms"
    Params = LatencyParams

    def _scoped(self, record: DrillRecord, start_s: float, end_s: float):
        df = record.frame(start_s, end_s)
        p: LatencyParams = self.params  # type: ignore[assignment]
        if p.tier is not None:
            df = df[df["model_tier"] == p.tier]
        return df, ("actual_latency_p95_interactive_ms" if p.interactive else self.metric)

    def measure(self, record, start_s, end_s):  # noqa: D102
        df, metric = self._scoped(record, start_s, end_s)
        return metric_value(metric, df, record.interactive_tiers)

    def samples(self, record: DrillRecord, start_s: float, end_s: float) -> np.ndarray:
        """The latencies (ms) the p95 is taken over, for a test of how sure it is."""
        df, metric = self._scoped(record, start_s, end_s)
        v = METRICS[metric].row_values(df, record.interactive_tiers)
        return v[~np.isnan(v)]


class CostPerQueryProbe(MetricProbe):
    name = "cost_per_query_usd"
    unit = "$"


class UpstreamCallsProbe(Probe):
    """Not the bucket metric ``upstream_calls`` (decisions not simulated): calls sent, retries
    included (registry: ``upstream_calls_sent``)."""

    name = "upstream_calls"
    metric = "upstream_calls_sent"

    def measure(self, record, start_s, end_s):  # noqa: D102
        return float(record.upstream_calls(start_s, end_s))


class MisconfiguredProbe(MetricProbe):
    name = "misconfigured_decisions"
    metric = "misconfigured_toggle_count"


class SpoolRowsProbe(Probe):
    name = "spool_rows"
    point_in_time = True

    def measure(self, record, start_s, end_s):  # noqa: D102
        return float(record.spool_rows_now())


class OpenBreakersProbe(Probe):
    name = "open_breakers"
    point_in_time = True

    def measure(self, record, start_s, end_s):  # noqa: D102
        return float(len(record.open_breakers_now()))


PROBES: Registry[Probe] = Registry(
    "probe",
    "name",
    (
        DecisionAvailabilityProbe,
        ErrorRateProbe,
        LatencyP95Probe,
        CostPerQueryProbe,
        UpstreamCallsProbe,
        MisconfiguredProbe,
        SpoolRowsProbe,
        OpenBreakersProbe,
    ),
)


# ----------------------------------------------------------------------------- drill metrics

_DRILL_METRICS = ("actual_latency_p95_interactive_ms", *(m.name for m in METRICS.of_kind("drill")))
DRILL_METRICS: dict[str, str] = {name: METRICS[name].description for name in _DRILL_METRICS}
"""Per-minute metrics the drill computes on top of ``telemetry.metrics.compute_metrics``;
a scenario's inline alert rules may use them."""


def drill_metrics(df: pd.DataFrame, interactive_tiers: Iterable[str]) -> dict[str, float]:
    tiers = tuple(interactive_tiers)
    return {name: METRICS[name].compute(df, tiers) for name in _DRILL_METRICS}


_MOVED_TO_CHECKS = ("CHECKS", "Bounds", "Check", "CheckOutcome", "check", "extra_cost")


def __getattr__(name: str) -> Any:
    """``drills.probes.CHECKS`` and friends still work (the checks moved to ``drills.checks``,
    which imports this module, so they are looked up on first use rather than at import)."""
    if name in _MOVED_TO_CHECKS:
        return getattr(import_module("drills.checks"), name)
    raise AttributeError(f"module 'drills.probes' has no attribute {name!r}")
