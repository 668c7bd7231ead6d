"""Per-bucket metrics over decision telemetry: the numbers alert rules, back-tests and reports read.

One frame, one row per time bucket, so the pilot back-test (hourly or daily buckets over a week)
and the incident drills (minute buckets on a virtual clock) share a single definition of every
rate and percentile. Buckets are aligned to the Unix epoch (``ts.floor(freq)``) and labelled by
their start; a bucket's value is only known once the bucket has closed.

Definitions (each declared once in ``telemetry.metric_registry``, with its SQL and PromQL forms):

- ``executed`` rows: ``outcome != "not_executed"`` (an attempt reached the execution plane,
  whatever came of it). ``error_rate`` (error, timeout or rejected), ``rejected_rate`` and
  ``fallback_rate`` are shares of *executed* rows, so they are NaN in a decision-only bucket.
- Actual-latency percentiles cover rows that reached a model: ``outcome`` ok, fallback, error
  or timeout. A ``rejected`` row never called one (its latency is 0), and counting it would make
  latency look better exactly when the circuit breakers open.
- ``actual_latency_p95_worst_tier_ms``: the largest per-``model_tier`` p95 of those rows. A
  slow tier is visible here even when it is a few per cent of traffic, or when its breakers
  have opened and only the half-open trial calls still reach it (a +4 s spike on the large tier
  leaves the overall p95 nearly flat).
- ``actual_latency_p95_interactive_ms``: the same p95 over the interactive tiers only — what
  the 200 ms SLA is about, and where a slow creep shows first.
- ``executed_rate``, ``borderline_rate``, ``upscale_rate`` and the ``level_*`` / ``domain_*``
  mix are shares of all rows in the bucket.
- Percentiles use linear interpolation (PostgreSQL ``percentile_cont``).
- ``cost_per_query_usd``: mean of ``actual_cost_usd`` where executed and known, else of
  ``cost_estimate_usd``.
- ``misconfigured_toggle_count``: rows whose ``reason_codes`` hold ``EXECUTION_MODE_INVALID``;
  ``upstream_calls``: rows with ``simulated == False`` (a real model endpoint was involved).
- ``confidence_drop_pct``: ``100 * (baseline - confidence_mean) / baseline`` where ``baseline`` is
  the query-weighted mean of ``confidence_overall`` over the ``ceil(24 h / freq)`` buckets just
  before this one (the previous day for daily buckets, the previous 24 h for hourly or minute
  buckets, the previous bucket for buckets longer than a day). Positive means confidence fell.
  NaN until the bucket grid holds a full look-back window, and when either side has no rows.
- Empty buckets inside the range are present with ``queries == 0``, counts 0 and NaN rates, so
  gaps stay visible to the alert engine (which treats NaN as "condition false").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from telemetry.metric_registry import (
    CALLED_OUTCOMES,
    DOMAIN_METRICS,
    ERROR_OUTCOMES,
    EVENT_METRICS,
    INTERACTIVE_TIERS,
    LEVEL_METRICS,
    METRICS,
    MISCONFIGURED_CODE,
    Metric,
)

__all__ = [
    "CALLED_OUTCOMES",
    "ERROR_OUTCOMES",
    "INTERACTIVE_TIERS",
    "MISCONFIGURED_CODE",
    "compute_metrics",
    "daily_summary",
]

# Event kinds (rows of the optional ``events`` frame) whose per-bucket sum gets a fixed column
# name; any other kind that is a valid identifier becomes a column of its own name.
EVENT_COLUMNS: dict[str, str] = {m.event_kind: m.name for m in EVENT_METRICS if m.event_kind}

REQUIRED_COLUMNS: tuple[str, ...] = (
    "ts",
    "complexity_level",
    "borderline",
    "upscaled",
    "domain",
    "model_tier",
    "confidence_overall",
    "reason_codes",
    "latency_estimate_ms",
    "cost_estimate_usd",
    "simulated",
    "outcome",
    "actual_latency_ms",
    "actual_cost_usd",
)

LEVEL_COLUMNS: tuple[str, ...] = tuple(m.name for m in LEVEL_METRICS)
DOMAIN_COLUMNS: tuple[str, ...] = tuple(m.name for m in DOMAIN_METRICS)
_MIX = (*LEVEL_COLUMNS, *DOMAIN_COLUMNS)

BASE_METRICS: tuple[str, ...] = tuple(
    m.name for m in METRICS.of_kind("bucket") if m.name not in _MIX
)
_BUCKET: tuple[Metric, ...] = METRICS.of_kind("bucket")

# Columns whose empty-bucket value is 0 (they count things), not NaN.
COUNT_COLUMNS: tuple[str, ...] = tuple(m.name for m in (*_BUCKET, *EVENT_METRICS) if m.count_like)

# Every column ``compute_metrics`` always returns, in order: the alert rules' metric vocabulary.
KNOWN_METRICS: tuple[str, ...] = (
    *BASE_METRICS,
    *LEVEL_COLUMNS,
    *DOMAIN_COLUMNS,
    *EVENT_COLUMNS.values(),
)

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_DAY = pd.Timedelta(days=1)


def as_step(freq: str | pd.Timedelta) -> pd.Timedelta:
    """A fixed bucket width; calendar frequencies (month, business day) are refused because a
    bucket must have one length for rates and the 24 h look-back to mean the same thing."""
    try:
        step = pd.Timedelta(freq)
    except (ValueError, TypeError):
        raise ValueError(
            f"freq {freq!r} is not a fixed duration; use e.g. '1min', '5min', '1h' or '1D'"
        ) from None
    if step <= pd.Timedelta(0):
        raise ValueError(f"freq {freq!r} must be a positive duration")
    return step


def _utc_ts(values: pd.Series, what: str) -> pd.Series:
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        raise ValueError(
            f"{what}: column 'ts' must be tz-aware UTC datetimes; got dtype {values.dtype}"
        )
    return values.dt.tz_convert("UTC")


def _bucket_index(starts: Iterable[pd.Timestamp], step: pd.Timedelta) -> pd.DatetimeIndex:
    starts = [s for s in starts if s is not None and not pd.isna(s)]
    if not starts:
        return pd.DatetimeIndex([], tz="UTC", name="bucket")
    first, last = min(starts), max(starts)
    return pd.date_range(first, last, freq=step, name="bucket")


def _floor(ts: pd.Timestamp | None, step: pd.Timedelta) -> pd.Timestamp | None:
    if ts is None:
        return None
    ts = pd.Timestamp(ts)
    if ts.tzinfo is None:
        raise ValueError(f"start/end {ts} must be tz-aware (UTC)")
    return ts.tz_convert("UTC").floor(step)


def _empty_frame(index: pd.DatetimeIndex, extra: Iterable[str] = ()) -> pd.DataFrame:
    cols = list(dict.fromkeys([*KNOWN_METRICS, *extra]))
    out = pd.DataFrame(index=index, columns=cols, dtype="float64")
    for c in cols:
        if c in COUNT_COLUMNS:
            out[c] = 0
    return out


def _event_columns(events: pd.DataFrame, step: pd.Timedelta) -> pd.DataFrame:
    missing = [c for c in ("ts", "kind", "value") if c not in events.columns]
    if missing:
        raise ValueError(f"events: missing column(s) {missing}; expected columns ts, kind, value")
    ts = _utc_ts(events["ts"], "events")
    kinds = events["kind"].astype("str")
    names = kinds.map(lambda k: EVENT_COLUMNS.get(k, k))
    bad = ~names.map(lambda n: bool(_IDENT.match(n)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"events row {row}: kind {kinds.iloc[row]!r} is not a usable metric name; "
            f"use lower_snake_case, e.g. {', '.join(EVENT_COLUMNS)}"
        )
    values = pd.to_numeric(events["value"], errors="coerce")
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise ValueError(f"events row {row}: value {events['value'].iloc[row]!r} is not a number")
    frame = pd.DataFrame({"bucket": ts.dt.floor(step), "name": names, "value": values})
    return frame.pivot_table(index="bucket", columns="name", values="value", aggfunc="sum")


def compute_metrics(
    df: pd.DataFrame,
    freq: str | pd.Timedelta = "1h",
    events: pd.DataFrame | None = None,
    *,
    interactive_tiers: Iterable[str] = INTERACTIVE_TIERS,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Metrics per bucket of width ``freq`` (index: bucket start, tz-aware UTC, name 'bucket').

    The bucket range runs from the earliest to the latest timestamp in ``df`` and ``events``,
    widened to the buckets covering ``[start, end)`` when given (a drill passes its own window so
    that minutes with no telemetry at all still appear). Rows are never filtered out here. ``result.attrs["freq"]`` holds the step as a
    string so the alert engine can check rule windows against it.
    """
    step = as_step(freq)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"decision telemetry frame is missing column(s) {missing}; "
            f"expected the schema-1.0.0 columns (router.decision.DECISION_COLUMNS)"
        )
    tiers = tuple(interactive_tiers)
    ts = _utc_ts(df["ts"], "decision telemetry")
    bucket = ts.dt.floor(step)

    ev = _event_columns(events, step) if events is not None and len(events) else None
    bounds = [
        _floor(start, step),
        None if end is None else _floor(pd.Timestamp(end) - pd.Timedelta(1, "ns"), step),
    ]
    if len(df):
        bounds += [bucket.min(), bucket.max()]
    if ev is not None and len(ev):
        bounds += [ev.index.min(), ev.index.max()]
    index = _bucket_index(bounds, step)
    extra_events = [] if ev is None else [c for c in ev.columns if c not in KNOWN_METRICS]

    if not len(df):
        out = _empty_frame(index, extra_events)
    else:
        out = _aggregate(df, bucket, tiers).reindex(index)
    out.index.name = "bucket"
    out = _fill_counts(out)
    out = _add_confidence_drop(out, step)
    if ev is not None:
        ev = ev.reindex(index).fillna(0.0)
        for col in ev.columns:
            out[col] = ev[col].to_numpy()
    for col in EVENT_COLUMNS.values():
        if col not in out.columns:
            out[col] = 0.0
    ordered = list(dict.fromkeys([*KNOWN_METRICS, *extra_events]))
    out = out[ordered + [c for c in out.columns if c not in ordered and not c.startswith("_")]]
    out.attrs["freq"] = str(step)
    return out


def _aggregate(df: pd.DataFrame, bucket: pd.Series, tiers: tuple[str, ...]) -> pd.DataFrame:
    """Every bucket metric of the registry: its per-row values, aggregated per bucket."""
    work = pd.DataFrame({"bucket": bucket.array})
    by_agg: dict[str, list[str]] = {}
    for m in _BUCKET:
        if m.agg == "drop_vs_day_before":
            continue
        work[m.name] = m.row_values(df, tiers)
        by_agg.setdefault(m.agg, []).append(m.name)
    work["_conf_sum"] = df["confidence_overall"].to_numpy(float)
    g = work.groupby("bucket", sort=True)
    named = {
        name: (name, agg)
        for agg in ("count", "sum", "mean", "median")
        for name in by_agg.get(agg, ())
    }
    out = g.agg(_conf_sum=("_conf_sum", "sum"), **named)
    for name in by_agg.get("p95", ()):
        out[name] = g[name].quantile(0.95)
    tier = df["model_tier"].astype("str").to_numpy()
    for name in by_agg.get("p95_worst_tier", ()):
        per_tier = (
            pd.DataFrame({"bucket": work["bucket"].array, "tier": tier, "v": work[name].to_numpy()})
            .groupby(["bucket", "tier"])["v"]
            .quantile(0.95)
        )
        out[name] = per_tier.groupby(level="bucket").max()
    return out


def _fill_counts(out: pd.DataFrame) -> pd.DataFrame:
    for col in (m.name for m in _BUCKET if m.count_like):
        out[col] = out[col].fillna(0).astype("int64")
    if "_conf_sum" not in out.columns:
        out["_conf_sum"] = 0.0
    out["_conf_sum"] = out["_conf_sum"].fillna(0.0)
    return out


def _add_confidence_drop(out: pd.DataFrame, step: pd.Timedelta) -> pd.DataFrame:
    n = max(1, math.ceil(_DAY / step))
    prev_sum = out["_conf_sum"].rolling(n, min_periods=n).sum().shift(1)
    prev_cnt = out["queries"].astype(float).rolling(n, min_periods=n).sum().shift(1)
    baseline = prev_sum / prev_cnt.where(prev_cnt > 0)
    out["confidence_drop_pct"] = 100.0 * (baseline - out["confidence_mean"]) / baseline
    return out.drop(columns="_conf_sum")


def daily_summary(
    df: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    interactive_tiers: Iterable[str] = INTERACTIVE_TIERS,
) -> pd.DataFrame:
    """One row per UTC day: the pilot report's go / no-go table and the day-over-day drop rule
    read exactly these numbers."""
    out = compute_metrics(df, "1D", events, interactive_tiers=interactive_tiers)
    out.index.name = "day"
    return out
