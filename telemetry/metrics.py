"""Per-bucket metrics over decision telemetry: the numbers alert rules, back-tests and reports read.

One frame, one row per time bucket, so the pilot back-test (hourly or daily buckets over a week)
and the incident drills (minute buckets on a virtual clock) share a single definition of every
rate and percentile. Buckets are aligned to the Unix epoch (``ts.floor(freq)``) and labelled by
their start; a bucket's value is only known once the bucket has closed.

Definitions (the alert rules and the Grafana SQL in ``telemetry.alerts`` follow them):

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

from router.decision import DOMAINS, LEVELS, Outcome, ReasonCode

INTERACTIVE_TIERS: tuple[str, ...] = ("tiny", "small", "medium")

ERROR_OUTCOMES: tuple[str, ...] = (Outcome.ERROR, Outcome.TIMEOUT, Outcome.REJECTED)
# Outcomes of rows that reached a model, so their actual latency is a model's latency.
CALLED_OUTCOMES: tuple[str, ...] = (Outcome.OK, Outcome.FALLBACK, Outcome.ERROR, Outcome.TIMEOUT)

MISCONFIGURED_CODE = ReasonCode.EXECUTION_MODE_INVALID.code

# Event kinds (rows of the optional ``events`` frame) whose per-bucket sum gets a fixed column
# name; any other kind that is a valid identifier becomes a column of its own name.
EVENT_COLUMNS: dict[str, str] = {
    "telemetry_write_failure": "telemetry_write_failures",
    "spooled_rows": "spooled_rows",
}

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

LEVEL_COLUMNS: tuple[str, ...] = tuple(f"level_{lvl.value}" for lvl in LEVELS)
DOMAIN_COLUMNS: tuple[str, ...] = tuple(f"domain_{d.value}" for d in DOMAINS)

# Columns whose empty-bucket value is 0 (they count things), not NaN.
COUNT_COLUMNS: tuple[str, ...] = (
    "queries",
    "executed",
    "misconfigured_toggle_count",
    "upstream_calls",
    *EVENT_COLUMNS.values(),
)

BASE_METRICS: tuple[str, ...] = (
    "queries",
    "executed",
    "borderline_rate",
    "upscale_rate",
    "confidence_mean",
    "confidence_median",
    "confidence_drop_pct",
    "latency_estimate_p95_ms",
    "actual_latency_p95_ms",
    "actual_latency_p95_worst_tier_ms",
    "actual_latency_p95_interactive_ms",
    "cost_per_query_usd",
    "error_rate",
    "rejected_rate",
    "fallback_rate",
    "executed_rate",
    "misconfigured_toggle_count",
    "upstream_calls",
)

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
    outcome = df["outcome"].astype("str")
    executed = (outcome != Outcome.NOT_EXECUTED).to_numpy()
    called = outcome.isin(CALLED_OUTCOMES).to_numpy()
    nan = np.nan
    actual_latency = pd.to_numeric(df["actual_latency_ms"], errors="coerce").to_numpy(float)
    actual_cost = pd.to_numeric(df["actual_cost_usd"], errors="coerce").to_numpy(float)
    tier = df["model_tier"].astype("str")
    interactive = tier.isin(tiers).to_numpy()
    use_actual_cost = executed & ~np.isnan(actual_cost)
    conf = df["confidence_overall"].to_numpy(float)

    def share_of_executed(mask: np.ndarray) -> np.ndarray:
        return np.where(executed, mask.astype(float), nan)

    work = pd.DataFrame(
        {
            "bucket": bucket.array,
            "conf": conf,
            "borderline": df["borderline"].to_numpy(bool).astype(float),
            "upscaled": df["upscaled"].to_numpy(bool).astype(float),
            "executed": executed.astype(float),
            "error": share_of_executed(outcome.isin(ERROR_OUTCOMES).to_numpy()),
            "rejected": share_of_executed((outcome == Outcome.REJECTED).to_numpy()),
            "fallback": share_of_executed((outcome == Outcome.FALLBACK).to_numpy()),
            "lat_est": np.where(interactive, df["latency_estimate_ms"].to_numpy(float), nan),
            "lat_act": np.where(called, actual_latency, nan),
            "lat_act_int": np.where(called & interactive, actual_latency, nan),
            "cost": np.where(use_actual_cost, actual_cost, df["cost_estimate_usd"].to_numpy(float)),
            "misconf": df["reason_codes"]
            .astype("str")
            .str.contains(MISCONFIGURED_CODE, regex=False)
            .to_numpy(float),
            "upstream": (~df["simulated"].to_numpy(bool)).astype(float),
        }
    )
    g = work.groupby("bucket", sort=True)
    out = g.agg(
        queries=("conf", "size"),
        executed=("executed", "sum"),
        borderline_rate=("borderline", "mean"),
        upscale_rate=("upscaled", "mean"),
        confidence_mean=("conf", "mean"),
        _conf_sum=("conf", "sum"),
        confidence_median=("conf", "median"),
        cost_per_query_usd=("cost", "mean"),
        error_rate=("error", "mean"),
        rejected_rate=("rejected", "mean"),
        fallback_rate=("fallback", "mean"),
        executed_rate=("executed", "mean"),
        misconfigured_toggle_count=("misconf", "sum"),
        upstream_calls=("upstream", "sum"),
    )
    out["latency_estimate_p95_ms"] = g["lat_est"].quantile(0.95)
    out["actual_latency_p95_ms"] = g["lat_act"].quantile(0.95)
    out["actual_latency_p95_interactive_ms"] = g["lat_act_int"].quantile(0.95)
    per_tier = (
        pd.DataFrame(
            {
                "bucket": work["bucket"].array,
                "tier": tier.to_numpy(),
                "v": work["lat_act"].to_numpy(),
            }
        )
        .groupby(["bucket", "tier"])["v"]
        .quantile(0.95)
    )
    out["actual_latency_p95_worst_tier_ms"] = per_tier.groupby(level="bucket").max()

    for column, values, names in (
        ("level", df["complexity_level"], [lvl.value for lvl in LEVELS]),
        ("domain", df["domain"], [d.value for d in DOMAINS]),
    ):
        counts = (
            pd.DataFrame({"bucket": work["bucket"].array, "v": values.astype("str").to_numpy()})
            .groupby(["bucket", "v"])
            .size()
            .unstack(fill_value=0)
            .reindex(columns=names, fill_value=0)
        )
        shares = counts.div(out["queries"], axis=0)
        for name in names:
            out[f"{column}_{name}"] = shares[name]
    return out


def _fill_counts(out: pd.DataFrame) -> pd.DataFrame:
    for col in ("queries", "executed", "misconfigured_toggle_count", "upstream_calls"):
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
