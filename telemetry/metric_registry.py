"""Every metric the harness computes, declared once: name, description, unit, the pandas form
over a frame of decisions, and the SQL (Grafana) and PromQL (Prometheus) forms where exported.

Why: the same number used to be written out in the pilot metrics, the Grafana SQL, the drill
probes, the pilot evidence and the live exposition, and the copies disagreed (an empty window
was 0.0 in one place and NaN in another; a reason code was a substring in one and a list item
in another). Here a per-bucket metric is a *row filter* (which decisions count), a *row value*
and an *aggregate*; the filter and the value are small expressions that render both as numpy
over a frame and as SQL, so the pandas and SQL forms cannot drift apart (a test runs both on
real SQLite).

Kinds:
- ``bucket``: a column of ``telemetry.metrics.compute_metrics`` (alert rules read them);
- ``event``: a per-bucket sum of an event kind (``telemetry_events``), not a decision column;
- ``drill``: extra per-minute metrics the drill computes; inline scenario rules may use them;
- ``probe``: what a drill probe measures that is not a decision aggregate (queries, spool);
- ``readiness``: a go / no-go measure (``readiness.yaml``) that is not a bucket metric; ``basis``
  names the bucket metric whose value over the whole week is its point estimate, if any. A
  measure with a bucket metric's name (``borderline_rate``) is that metric over the week.

Adding a metric: one ``Metric`` below; ``compute_metrics``, the alert rules' vocabulary, the
Grafana and Prometheus exports pick it up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from router.decision import (  # noqa: F401 - has_reason_code is part of this module's interface
    DOMAINS,
    LEVELS,
    REASON_SEPARATOR,
    Outcome,
    ReasonCode,
    has_reason_code,
)

# ----------------------------------------------------------------------------- shared constants

INTERACTIVE_TIERS: tuple[str, ...] = ("tiny", "small", "medium")
"""Default interactive tiers (the router config's ``routing.interactive_tiers`` overrides)."""
ERROR_OUTCOMES: tuple[str, ...] = (Outcome.ERROR, Outcome.TIMEOUT, Outcome.REJECTED)
CALLED_OUTCOMES: tuple[str, ...] = (Outcome.OK, Outcome.FALLBACK, Outcome.ERROR, Outcome.TIMEOUT)
"""Outcomes of rows that reached a model, so their actual latency is a model's latency."""
MISCONFIGURED_CODE = ReasonCode.EXECUTION_MODE_INVALID.code
FALLBACK_CODE = ReasonCode.FALLBACK_SAME_TIER.code


def _isin(s: pd.Series, values: Sequence[str]) -> np.ndarray:
    """``s`` is one of ``values`` (as text); categoricals are checked per category."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        hit = np.append(s.cat.categories.astype("str").isin(values), False)
        return hit[s.cat.codes.to_numpy()]
    return s.astype("str").isin(values).to_numpy(bool)


def format_value(value: float | None, unit: str = "", *, missing: str = "no data") -> str:
    """A metric value as people read it, by its unit (``pct`` is a share shown in per cent;
    ``usd``/``$`` five decimals; no unit: an integer, or four significant digits)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    if unit == "pct":
        return f"{value * 100:.2f} %"
    if unit == "pct_points":
        return f"{value:.2f} pts"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "count":
        return f"{value:.0f}"
    if unit in ("usd", "$"):
        return f"${value:.5f}"
    if unit == "ratio":
        return f"{value:.3f}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    return f"{int(value)}"


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# ----------------------------------------------------------------------------- row expressions


class Expr:
    """A per-row value with a numpy form (over a decisions frame) and a SQL form."""

    def values(self, df: pd.DataFrame, tiers: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def sql(self, tiers: Sequence[str]) -> str:
        raise NotImplementedError


class Pred(Expr):
    """A row condition; as a value it is 1.0 / 0.0 (a share when averaged)."""

    def mask(self, df: pd.DataFrame, tiers: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def values(self, df, tiers):  # noqa: D102
        return self.mask(df, tiers).astype(float)


@dataclass(frozen=True)
class Column(Expr):
    name: str

    def values(self, df, tiers):  # noqa: D102
        return pd.to_numeric(df[self.name], errors="coerce").to_numpy(float)

    def sql(self, tiers):  # noqa: D102
        return self.name


@dataclass(frozen=True)
class When(Expr):
    """``then`` where ``cond`` holds, else ``otherwise``."""

    cond: Pred
    then: Expr
    otherwise: Expr

    def values(self, df, tiers):  # noqa: D102
        c = self.cond.mask(df, tiers)
        return np.where(c, self.then.values(df, tiers), self.otherwise.values(df, tiers))

    def sql(self, tiers):  # noqa: D102
        return (
            f"CASE WHEN {self.cond.sql(tiers)} THEN {self.then.sql(tiers)} "
            f"ELSE {self.otherwise.sql(tiers)} END"
        )


@dataclass(frozen=True)
class All(Pred):
    def mask(self, df, tiers):  # noqa: D102
        return np.ones(len(df), dtype=bool)

    def sql(self, tiers):  # noqa: D102
        return "TRUE"


@dataclass(frozen=True)
class Flag(Pred):
    """A boolean column."""

    name: str

    def mask(self, df, tiers):  # noqa: D102
        return df[self.name].to_numpy(bool)

    def sql(self, tiers):  # noqa: D102
        return self.name


@dataclass(frozen=True)
class IsIn(Pred):
    """``column`` is one of ``values`` (None: the interactive tiers of the caller)."""

    column: str
    values_: tuple[str, ...] | None

    def _wanted(self, tiers: Sequence[str]) -> tuple[str, ...]:
        return tuple(tiers) if self.values_ is None else self.values_

    def mask(self, df, tiers):  # noqa: D102
        return _isin(df[self.column], self._wanted(tiers))

    def sql(self, tiers):  # noqa: D102
        wanted = self._wanted(tiers)
        if len(wanted) == 1:
            return f"{self.column} = {_lit(wanted[0])}"
        return f"{self.column} IN ({', '.join(_lit(v) for v in wanted)})"


@dataclass(frozen=True)
class Not(Pred):
    of: Pred

    def mask(self, df, tiers):  # noqa: D102
        return ~self.of.mask(df, tiers)

    def sql(self, tiers):  # noqa: D102
        inner = self.of
        if isinstance(inner, IsIn) and len(inner._wanted(tiers)) == 1:
            return f"{inner.column} <> {_lit(inner._wanted(tiers)[0])}"
        return f"NOT {inner.sql(tiers)}"


@dataclass(frozen=True)
class And(Pred):
    parts: tuple[Pred, ...]

    def mask(self, df, tiers):  # noqa: D102
        out = np.ones(len(df), dtype=bool)
        for p in self.parts:
            out &= p.mask(df, tiers)
        return out

    def sql(self, tiers):  # noqa: D102
        return " AND ".join(p.sql(tiers) for p in self.parts)


@dataclass(frozen=True)
class NotNull(Pred):
    column: str

    def mask(self, df, tiers):  # noqa: D102
        return ~np.isnan(Column(self.column).values(df, tiers))

    def sql(self, tiers):  # noqa: D102
        return f"{self.column} IS NOT NULL"


@dataclass(frozen=True)
class HasReasonCode(Pred):
    code: str

    def mask(self, df, tiers):  # noqa: D102
        return has_reason_code(df["reason_codes"], self.code)

    def sql(self, tiers):  # noqa: D102
        sep = _lit(REASON_SEPARATOR)
        return f"({sep} || reason_codes || {sep}) LIKE {_lit(f'%{REASON_SEPARATOR}{self.code}{REASON_SEPARATOR}%')}"


ALL = All()
EXECUTED = Not(IsIn("outcome", (Outcome.NOT_EXECUTED.value,)))
CALLED = And(
    (IsIn("outcome", tuple(str(o) for o in CALLED_OUTCOMES)), NotNull("actual_latency_ms"))
)
INTERACTIVE = IsIn("model_tier", None)

# ----------------------------------------------------------------------------- PromQL helpers

PROM_DECISIONS = "amaima_decisions_total"
"""The live service's decision counter (``live/metrics.py``); most PromQL forms read it."""
_PROM_EXECUTED = 'outcome!="not_executed"'


@dataclass(frozen=True)
class Prom:
    """What a PromQL form is rendered for: the window text (``1m``) and the interactive tiers."""

    window: str
    tiers: tuple[str, ...]

    def inc(self, name: str, sel: str = "", by: str = "") -> str:
        sel = "{" + sel + "}" if sel else ""
        return f"sum{f' by ({by})' if by else ''}(increase({name}{sel}[{self.window}]))"

    def share(self, num_sel: str, den_sel: str = "") -> str:
        return f"{self.inc(PROM_DECISIONS, num_sel)} / {self.inc(PROM_DECISIONS, den_sel)}"

    def p95(self, hist: str, sel: str = "", by: str = "le") -> str:
        return f"histogram_quantile(0.95, {self.inc(hist + '_bucket', sel, by)})"

    @property
    def tier_sel(self) -> str:
        return 'tier=~"' + "|".join(self.tiers) + '"'

    @property
    def confidence(self) -> str:
        return (
            f"{self.inc('amaima_decision_confidence_sum')} / "
            f"{self.inc('amaima_decision_confidence_count')}"
        )


# ----------------------------------------------------------------------------- the metric

Kind = Literal["bucket", "event", "drill", "probe", "readiness"]
Agg = Literal["count", "sum", "mean", "median", "p95", "p95_worst_tier", "drop_vs_day_before"]
Unit = Literal["count", "ratio", "ms", "usd", "pct_points"]


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    unit: Unit
    kind: Kind = "bucket"
    agg: Agg | None = None
    value: Expr | None = None
    """Per-row value (None: the row counts as 1)."""
    rows: Pred = ALL
    """Which decisions the aggregate covers; others are NaN for it."""
    promql: Callable[[Prom], str] | None = None
    event_kind: str | None = None
    """``kind == "event"``: the event kind summed per bucket."""
    basis: str | None = None
    """``kind == "readiness"``: the bucket metric that is its point value over a whole week."""

    @property
    def count_like(self) -> bool:
        """Empty buckets hold 0, not NaN (it counts things)."""
        return self.agg in ("count", "sum") or self.kind == "event"

    def row_values(self, df: pd.DataFrame, tiers: Sequence[str]) -> np.ndarray:
        """The per-row input of the aggregate: the value where ``rows`` holds, else NaN."""
        v = np.ones(len(df)) if self.value is None else self.value.values(df, tiers)
        if isinstance(self.rows, All):
            return v
        return np.where(self.rows.mask(df, tiers), v, np.nan)

    def compute(self, df: pd.DataFrame, tiers: Sequence[str] = INTERACTIVE_TIERS) -> float:
        """The metric over one window of decisions (one bucket); NaN when it has no data."""
        if self.agg is None or self.agg == "drop_vs_day_before":
            raise ValueError(f"metric {self.name!r} has no value over a single window")
        v = self.row_values(df, tiers)
        present = v[~np.isnan(v)]
        if self.agg == "count":
            return float(present.size)
        if self.agg == "sum":
            return float(present.sum())
        if present.size == 0:
            return float("nan")
        if self.agg == "mean":
            return float(present.mean())
        if self.agg == "median":
            return float(np.median(present))
        if self.agg == "p95":
            return float(np.percentile(present, 95))
        tier = df["model_tier"].astype("str").to_numpy()
        keep = ~np.isnan(v)
        per = pd.Series(v[keep]).groupby(tier[keep]).quantile(0.95)
        return float(per.max())

    def sql(self, tiers: Sequence[str] = INTERACTIVE_TIERS, dialect: str = "postgresql") -> str:
        """The SQL aggregate over the decision table (PostgreSQL; ``sqlite`` spells the
        percentile ``percentile_cont(x, p)``). ``p95_worst_tier`` is this aggregate grouped by
        ``model_tier``, then the max; ``drop_vs_day_before`` has a statement of its own."""
        if self.kind != "bucket" or self.agg is None or self.agg == "drop_vs_day_before":
            raise ValueError(f"no SQL aggregate for metric {self.name!r}")
        where = None if isinstance(self.rows, All) else self.rows.sql(tiers)
        value = "1" if self.value is None else self.value.sql(tiers)
        if isinstance(self.value, Pred):
            value = f"CASE WHEN {value} THEN 1.0 ELSE 0.0 END"
        if self.agg == "count":
            expr = "count(*)"
        elif self.agg in ("sum", "mean"):
            expr = f"{'sum' if self.agg == 'sum' else 'avg'}({value})"
        else:
            p = 0.5 if self.agg == "median" else 0.95
            expr = (
                f"percentile_cont({value}, {p})"
                if dialect == "sqlite"
                else f"percentile_cont({p}) WITHIN GROUP (ORDER BY {value})"
            )
        return f"{expr} FILTER (WHERE {where})" if where else expr


# The declarations below are a table: one metric per entry, kept compact on purpose.
# fmt: off
def _share(name: str, description: str, pred: Pred, rows: Pred = ALL, **kw) -> Metric:
    return Metric(name, description, "ratio", agg="mean", value=pred, rows=rows, **kw)


def _count(name: str, description: str, rows: Pred, prom: Callable[[Prom], str] | None,
           kind: Kind = "bucket") -> Metric:
    return Metric(name, description, "count", kind=kind, agg="count", rows=rows, promql=prom)


def _inc(series: str) -> Callable[[Prom], str]:
    return lambda q: q.inc(series)


def _per_decision(series: str) -> Callable[[Prom], str]:
    return lambda q: f"{q.inc(series)} / {q.inc(PROM_DECISIONS)}"


def _outcome(*outcomes: str) -> Pred:
    return IsIn("outcome", tuple(str(o) for o in outcomes))


_CONFIDENCE = Column("confidence_overall")
_ACTUAL_LATENCY = Column("actual_latency_ms")

_DECISIONS: tuple[Metric, ...] = (
    _count("queries", "decisions in the bucket", ALL, _inc(PROM_DECISIONS)),
    _count("executed", "decisions whose execution was attempted (outcome != not_executed)",
           EXECUTED, lambda q: q.inc(PROM_DECISIONS, _PROM_EXECUTED)),
    _share("borderline_rate", "share of decisions in the borderline band", Flag("borderline"),
           promql=_per_decision("amaima_borderline_decisions_total")),
    _share("upscale_rate", "share of decisions upscaled one tier", Flag("upscaled"),
           promql=_per_decision("amaima_upscaled_decisions_total")),
    Metric("confidence_mean", "mean confidence_overall", "ratio", agg="mean", value=_CONFIDENCE,
           promql=lambda q: q.confidence),
    Metric("confidence_median", "median confidence_overall (no PromQL form over counters)",
           "ratio", agg="median", value=_CONFIDENCE),
    Metric("confidence_drop_pct",
           "100 * (baseline - confidence_mean) / baseline, baseline = the query-weighted mean "
           "over the 24 h of buckets before this one; positive means confidence fell",
           "pct_points", agg="drop_vs_day_before", value=_CONFIDENCE,
           promql=lambda q: (
               f"100 * (1 - ({q.confidence}) / (sum(increase(amaima_decision_confidence_sum[1d] "
               f"offset {q.window})) / sum(increase(amaima_decision_confidence_count[1d] "
               f"offset {q.window}))))")),
    Metric("latency_estimate_p95_ms",
           "p95 of the router's latency estimate on the interactive tiers", "ms", agg="p95",
           value=Column("latency_estimate_ms"), rows=INTERACTIVE,
           promql=lambda q: q.p95("amaima_latency_estimate_ms", q.tier_sel)),
    Metric("actual_latency_p95_ms", "p95 actual latency of decisions that reached a model",
           "ms", agg="p95", value=_ACTUAL_LATENCY, rows=CALLED,
           promql=lambda q: q.p95("amaima_actual_latency_ms")),
    Metric("actual_latency_p95_worst_tier_ms",
           "the largest per-model_tier p95 actual latency of decisions that reached a model",
           "ms", agg="p95_worst_tier", value=_ACTUAL_LATENCY, rows=CALLED,
           promql=lambda q: f"max({q.p95('amaima_actual_latency_ms', by='le, tier')})"),
    Metric("actual_latency_p95_interactive_ms",
           "p95 actual latency of calls that reached an interactive-tier model (the 200 ms SLA)",
           "ms", agg="p95", value=_ACTUAL_LATENCY, rows=And((CALLED, INTERACTIVE)),
           promql=lambda q: q.p95("amaima_actual_latency_ms", q.tier_sel)),
    Metric("cost_per_query_usd",
           "mean cost per decision (actual where executed, else the router's estimate)",
           "usd", agg="mean",
           value=When(And((EXECUTED, NotNull("actual_cost_usd"))), Column("actual_cost_usd"),
                      Column("cost_estimate_usd")),
           promql=_per_decision("amaima_query_cost_usd_total")),
    _share("error_rate", "share of executed decisions that ended in error, timeout or rejection",
           _outcome(*ERROR_OUTCOMES), EXECUTED,
           promql=lambda q: q.share(f'outcome=~"{"|".join(ERROR_OUTCOMES)}"', _PROM_EXECUTED)),
    _share("rejected_rate", "share of executed decisions rejected (no healthy model)",
           _outcome(Outcome.REJECTED), EXECUTED,
           promql=lambda q: q.share('outcome="rejected"', _PROM_EXECUTED)),
    _share("fallback_rate", "share of executed decisions served by a same-tier fallback",
           _outcome(Outcome.FALLBACK), EXECUTED,
           promql=lambda q: q.share('outcome="fallback"', _PROM_EXECUTED)),
    _share("executed_rate", "share of decisions whose execution was attempted", EXECUTED,
           promql=lambda q: q.share(_PROM_EXECUTED)),
    _count("misconfigured_toggle_count",
           f"decisions carrying {MISCONFIGURED_CODE} (toggle failed closed)",
           HasReasonCode(MISCONFIGURED_CODE), _inc("amaima_misconfigured_decisions_total")),
    _count("upstream_calls", "decisions that involved a real model endpoint (simulated == False)",
           Not(Flag("simulated")), _inc("amaima_upstream_calls_total")),
)


def _mix(prefix: str, column: str, label: str, values: Iterable[str]) -> tuple[Metric, ...]:
    return tuple(
        _share(f"{prefix}_{v}", f"share of decisions with {column} {v}", IsIn(column, (v,)),
               promql=lambda q, v=v: q.share(f'{label}="{v}"'))
        for v in values
    )


LEVEL_METRICS = _mix("level", "complexity_level", "level", [lvl.value for lvl in LEVELS])
DOMAIN_METRICS = _mix("domain", "domain", "domain", [d.value for d in DOMAINS])

EVENT_METRICS: tuple[Metric, ...] = (
    Metric("telemetry_write_failures", "failed telemetry write attempts", "count", kind="event",
           event_kind="telemetry_write_failure",
           promql=_inc("amaima_telemetry_write_failures_total")),
    Metric("spooled_rows", "decisions written to the local spool", "count", kind="event",
           event_kind="spooled_rows", promql=_inc("amaima_telemetry_spooled_rows_total")),
)

DRILL_ONLY: tuple[Metric, ...] = (
    _count("fallback_count", "decisions served by a same-tier fallback",
           _outcome(Outcome.FALLBACK), None, kind="drill"),
)

PROBE_ONLY: tuple[Metric, ...] = (
    Metric("decision_availability",
           "decisions / queries: every query gets a decision whatever execution does", "ratio",
           kind="probe"),
    Metric("upstream_calls_sent", "calls actually sent to a model (retries included)", "count",
           kind="probe"),
    Metric("spool_rows", "telemetry rows waiting in the local spool now", "count", kind="probe"),
    Metric("open_breakers", "circuit breakers open now", "count", kind="probe"),
)

READINESS: tuple[Metric, ...] = (
    Metric("quality_pass_rate", "share of days whose data-quality suite passed", "ratio",
           kind="readiness"),
    Metric("determinism_rate", "share of re-routed decisions that match the stored ones",
           "ratio", kind="readiness"),
    Metric("max_confidence_drop_pct", "largest day-over-day drop in mean confidence (bootstrap)",
           "pct_points", kind="readiness"),
    Metric("median_confidence", "median confidence over the week (order-statistic interval)",
           "ratio", kind="readiness", basis="confidence_median"),
    Metric("latency_p95_interactive_ms",
           "p95 latency estimate on the interactive tiers over the week", "ms",
           kind="readiness", basis="latency_estimate_p95_ms"),
    Metric("downgrade_rate", "share of labelled queries routed below their labelled level",
           "ratio", kind="readiness"),
    Metric("noisy_rule_count", "alert rules flagged noisy in the back-test", "count",
           kind="readiness"),
)
# fmt: on


class MetricRegistry(dict[str, Metric]):
    """``{name: Metric}``; a name declared twice is refused."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        super().__init__()
        for m in metrics:
            if m.name in self:
                raise ValueError(f"metric {m.name!r} is declared twice")
            self[m.name] = m

    def of_kind(self, *kinds: Kind) -> tuple[Metric, ...]:
        return tuple(m for m in self.values() if m.kind in kinds)


METRICS = MetricRegistry(
    (
        *_DECISIONS,
        *LEVEL_METRICS,
        *DOMAIN_METRICS,
        *EVENT_METRICS,
        *DRILL_ONLY,
        *PROBE_ONLY,
        *READINESS,
    )
)


def promql(name: str, window: str, tiers: Sequence[str] = INTERACTIVE_TIERS) -> str | None:
    """The PromQL form of a metric at a window (``1m``), or None if it has none."""
    m = METRICS.get(name)
    return None if m is None or m.promql is None else m.promql(Prom(window, tuple(tiers)))
