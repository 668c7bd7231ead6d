"""Back-test rules over a recorded pilot: when each would have fired, the values it saw, and a
suggested threshold where the rule is slack."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from telemetry.alerts.engine import _assign_frames, evaluate
from telemetry.alerts.rules import AlertRule, format_duration

# ----------------------------------------------------------------------------- back-test

BACKTEST_COLUMNS: tuple[str, ...] = (
    "rule",
    "metric",
    "condition",
    "severity",
    "window",
    "for",
    "evaluated",
    "note",
    "buckets",
    "observations",
    "firings",
    "first_firing",
    "last_firing",
    "firing_time",
    "firing_share",
    "firings_per_week",
    "noisy",
    "slack",
    "closest",
    "suggested_threshold",
    "min",
    "median",
    "p95",
    "max",
)


def effective_values(rule: AlertRule, frame: pd.DataFrame) -> np.ndarray:
    """The values the engine compares for ``rule`` on ``frame`` (NaN under ``min_queries``)."""
    values = frame[rule.metric].to_numpy(dtype=float, na_value=np.nan).copy()
    if rule.min_queries:
        q = frame["queries"].to_numpy(dtype=float, na_value=np.nan) if "queries" in frame else None
        mask = np.ones(len(values), bool) if q is None else ~(q >= rule.min_queries)
        values[mask] = np.nan
    return values


def _sig3(x: float) -> float:
    return float(f"{x:.3g}") if math.isfinite(x) else x


def suggest_threshold(
    rule: AlertRule, values: np.ndarray, *, quantile: float = 0.99, margin: float = 0.1
) -> float:
    """A threshold the observed data would (almost) never cross: the ``quantile`` of the values
    plus ``margin`` of its magnitude for '>' rules, the ``1 - quantile`` minus the margin for '<'
    rules; NaN for '==' / '!=' and without data. Rounded to 3 significant digits."""
    v = values[~np.isnan(values)]
    if not len(v) or rule.comparator in ("==", "!="):
        return math.nan
    if rule.comparator in (">", ">="):
        q = float(np.quantile(v, quantile))
        return _sig3(q + margin * abs(q))
    q = float(np.quantile(v, 1 - quantile))
    return _sig3(q - margin * abs(q))


def is_slack(rule: AlertRule, values: np.ndarray, *, margin: float = 0.2) -> bool:
    """True when no observation came within ``margin`` (relative to ``|threshold|``) of the
    threshold on the firing side: for '>' / '>=' ``max < threshold - margin*|threshold|``, for
    '<' / '<=' ``min > threshold + margin*|threshold|``. Never for '==' / '!=' or without data;
    never for a ``> 0`` guard on a count (its band has zero width and counts are >= 0)."""
    v = values[~np.isnan(values)]
    if not len(v) or rule.comparator in ("==", "!="):
        return False
    band = margin * abs(rule.threshold)
    if rule.comparator in (">", ">="):
        return bool(v.max() < rule.threshold - band)
    return bool(v.min() > rule.threshold + band)


def backtest(
    rules: Sequence[AlertRule],
    metrics: pd.DataFrame | Mapping[Any, pd.DataFrame],
    *,
    noisy_per_week: int = 3,
    context: str = "pilot",
    slack_margin: float = 0.2,
    suggest_quantile: float = 0.99,
    suggest_margin: float = 0.1,
    strict_window: bool = True,
) -> pd.DataFrame:
    """One row per rule: how often and how long it would have fired on this data, whether it is
    ``noisy`` (more than ``noisy_per_week`` firings per 7 days of data, pro rata for shorter
    data), ``slack`` (see ``is_slack``), a suggested threshold (see ``suggest_threshold``) and
    the observed distribution. The span of data is ``buckets * window`` (empty buckets count)."""
    rules = list(rules)
    result = evaluate(rules, metrics, context=context, strict_window=strict_window)
    frames, _ = _assign_frames(rules, metrics, context, strict_window)
    rows = []
    for rule in rules:
        base: dict[str, Any] = {
            "rule": rule.name,
            "metric": rule.metric,
            "condition": rule.condition,
            "severity": rule.severity,
            "window": format_duration(rule.window_for(context)) if rule.applies(context) else "",
            "for": format_duration(rule.for_duration(context)) if rule.applies(context) else "",
        }
        if rule.name not in frames:
            rows.append({**base, "evaluated": False, "note": result.skipped.get(rule.name, "")})
            continue
        frame = frames[rule.name]
        values = effective_values(rule, frame)
        seen = values[~np.isnan(values)]
        fs = result.firings_for(rule.name)
        start, last, step, n = result.spans.get(
            rule.name, (None, None, rule.window_for(context), 0)
        )
        span = step * n
        until = last + step if last is not None else None
        firing_time = sum((f.duration(until) for f in fs), pd.Timedelta(0))
        per_week = len(fs) / (span / pd.Timedelta(days=7)) if n else math.nan
        closest = math.nan
        if len(seen) and rule.comparator in (">", ">="):
            closest = float(seen.max())
        elif len(seen) and rule.comparator in ("<", "<="):
            closest = float(seen.min())
        rows.append(
            {
                **base,
                "evaluated": True,
                "note": "" if len(seen) else "no data",
                "buckets": n,
                "observations": int(len(seen)),
                "firings": len(fs),
                "first_firing": fs[0].fired_at if fs else pd.NaT,
                "last_firing": fs[-1].fired_at if fs else pd.NaT,
                "firing_time": firing_time,
                "firing_share": firing_time / span if n else math.nan,
                "firings_per_week": per_week,
                "noisy": bool(n and per_week > noisy_per_week),
                "slack": is_slack(rule, values, margin=slack_margin),
                "closest": closest,
                "suggested_threshold": suggest_threshold(
                    rule, values, quantile=suggest_quantile, margin=suggest_margin
                ),
                "min": float(seen.min()) if len(seen) else math.nan,
                "median": float(np.median(seen)) if len(seen) else math.nan,
                "p95": float(np.quantile(seen, 0.95)) if len(seen) else math.nan,
                "max": float(seen.max()) if len(seen) else math.nan,
            }
        )
    out = pd.DataFrame(rows, columns=list(BACKTEST_COLUMNS))
    for col in ("evaluated", "noisy", "slack"):
        out[col] = out[col].fillna(False).astype(bool)
    for col in ("buckets", "observations", "firings"):
        out[col] = out[col].fillna(0).astype("int64")
    return out.set_index("rule")
