"""Turn a pilot week's telemetry into the evidence document the reports render (evidence.json).

Pure functions over pandas frames, so the report can be rebuilt from stored telemetry
(`harness pilot report RUN_ID`) exactly as the flow built it. The document's contract is
``telemetry.evidence_model.PilotEvidence`` (docs/evidence.md); ``write_evidence`` validates
through it, so nothing is written that a reader would refuse.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from router.config import RouterConfig
from router.decision import LEVELS
from telemetry import stats
from telemetry.evidence_model import EVIDENCE_VERSION, parse_evidence
from telemetry.metric_registry import METRICS
from telemetry.readiness import Measurement, Verdict

# Columns the pilot keeps per decision for week-level analysis (small: no ids but query_id).
SLIM_COLUMNS = (
    "query_id",
    "query_hash",
    "ts",
    "tenant",
    "complexity_level",
    "borderline",
    "upscaled",
    "domain",
    "model",
    "model_tier",
    "confidence_overall",
    "reason_codes",
    "latency_estimate_ms",
    "cost_estimate_usd",
    "tokens_estimate",
    "outcome",
    "simulated",
    "actual_latency_ms",
    "actual_cost_usd",
    "execution_mode",
)
CATEGORICAL = (
    "tenant",
    "complexity_level",
    "domain",
    "model",
    "model_tier",
    "reason_codes",
    "outcome",
    "execution_mode",
)
HIST_BINS = 20
HIST_STEP = 0.05  # the observed range is widened to multiples of this, so edges read well


def iso(ts: Any) -> str | None:
    if ts is None or (isinstance(ts, float) and math.isnan(ts)) or ts is pd.NaT:
        return None
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def slim(table_or_frame) -> pd.DataFrame:
    """The analysis columns of a decision table, with low-cardinality strings as categoricals."""
    df = table_or_frame if isinstance(table_or_frame, pd.DataFrame) else table_or_frame.to_pandas()
    df = df[list(SLIM_COLUMNS)].copy()
    for c in CATEGORICAL:
        df[c] = df[c].astype("category")
    return df


def json_safe(value: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, timestamps -> ISO strings (recursively)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, pd.Timestamp | datetime):
        return iso(value)
    if isinstance(value, pd.Timedelta):
        from telemetry.alerts import format_duration

        return None if pd.isna(value) else format_duration(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def metric_records(frame: pd.DataFrame) -> list[dict]:
    out = frame.reset_index().rename(columns={frame.index.name or "index": "bucket"})
    return json_safe(out.to_dict(orient="records"))


def mix(df: pd.DataFrame, column: str) -> list[dict]:
    """Counts per UTC day and value of ``column`` (routing mix by level, model or domain)."""
    day = df["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d")
    counts = df.groupby([day, df[column].astype(str)], observed=True).size()
    return [
        {"day": d, column if column != "complexity_level" else "level": v, "count": int(n)}
        for (d, v), n in counts.items()
    ]


def histogram_edges(values: np.ndarray) -> list[float]:
    """HIST_BINS equal bins over the observed range (widened to HIST_STEP multiples, within
    [0, 1]): confidences cluster high, and 0-1 bins spent most of the chart on zeros."""
    v = values[~np.isnan(values)] if len(values) else values
    lo = float(np.floor(v.min() / HIST_STEP) * HIST_STEP) if len(v) else 0.0
    hi = float(min(1.0, np.ceil(v.max() / HIST_STEP) * HIST_STEP)) if len(v) else 1.0
    if hi <= lo:
        lo, hi = max(0.0, hi - HIST_STEP), max(hi, HIST_STEP)
    return [float(round(x, 4)) for x in np.linspace(max(0.0, lo), hi, HIST_BINS + 1)]


def confidence_histogram(df: pd.DataFrame) -> dict:
    day = df["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d")
    edges = histogram_edges(df["confidence_overall"].to_numpy(dtype=float))
    per_day = {}
    for d, conf in df.groupby(day)["confidence_overall"]:
        counts, _ = np.histogram(conf.to_numpy(), bins=edges)
        per_day[str(d)] = counts.tolist()
    return {"edges": edges, "per_day": per_day}


def baseline_model(config: RouterConfig) -> str:
    """The all-largest baseline: the model the router uses for EXPERT queries."""
    return config.routing.level_models[LEVELS[-1].value]


def cost_section(df: pd.DataFrame, config: RouterConfig, served_usd_per_day: dict | None) -> dict:
    """Router cost per day against sending every query to the largest model."""
    base = config.model(baseline_model(config))
    exp = config.routing.expected_output_tokens
    levels = [lv.value for lv in LEVELS]
    rank = df["complexity_level"].astype(str).map({n: i for i, n in enumerate(levels)})
    rank = np.minimum(rank.to_numpy() + df["upscaled"].to_numpy().astype(int), len(levels) - 1)
    out_tok = np.array([exp[levels[r]] for r in rank], dtype=float)
    caps = df["model"].astype(str).map({m.name: m.max_output_tokens for m in config.models})
    out_tok = np.minimum(out_tok, caps.to_numpy(dtype=float))
    in_tok = np.maximum(df["tokens_estimate"].to_numpy(dtype=float) - out_tok, 0)
    # The baseline answers with the same number of output tokens the routed model would.
    baseline = in_tok / 1000 * base.price_per_1k_input + out_tok / 1000 * base.price_per_1k_output
    day = df["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d")
    frame = pd.DataFrame(
        {"day": day, "router": df["cost_estimate_usd"].to_numpy(), "base": baseline}
    )
    per = frame.groupby("day").sum()
    rows = [
        {
            "day": d,
            "router_usd": float(r.router),
            "all_largest_usd": float(r.base),
            "served_usd": None if not served_usd_per_day else served_usd_per_day.get(d),
        }
        for d, r in per.iterrows()
    ]
    total_served = None if not served_usd_per_day else float(sum(served_usd_per_day.values()))
    return {
        "per_day": rows,
        "total_router_usd": float(frame["router"].sum()),
        "total_all_largest_usd": float(frame["base"].sum()),
        "total_served_usd": total_served,
        "baseline_model": base.name,
    }


def basis_sample(measure: str, df: pd.DataFrame, interactive_tiers: list[str]) -> np.ndarray:
    """The rows a readiness measure is judged on: the per-row values of the bucket metric it is
    the week-long form of (``Metric.basis``, or the metric of the same name), NaN dropped."""
    m = METRICS[measure]
    values = METRICS[m.basis or measure].row_values(df, tuple(interactive_tiers))
    return values[~np.isnan(values)]


def readiness_measures(
    df: pd.DataFrame,
    quality: list[dict],
    determinism: dict,
    backtest_rows: list[dict],
    labelled: dict | None,
    interactive_tiers: list[str],
) -> dict[str, Measurement | None]:
    """What each go / no-go criterion is judged on: value, sample size, 95 % interval, method.
    A measure's sample is the per-row input of its metric in ``telemetry.metric_registry``."""
    lat = basis_sample("latency_p95_interactive_ms", df, interactive_tiers)
    days = df["ts"].dt.tz_convert("UTC").dt.floor("D")
    conf = basis_sample("median_confidence", df, interactive_tiers)
    day_means = [g.to_numpy(dtype=float) for _, g in df.groupby(days)["confidence_overall"]]
    out: dict[str, Measurement | None] = {}
    if quality:
        ok = sum(bool(q["success"]) for q in quality)
        out["quality_pass_rate"] = Measurement(
            ok / len(quality), len(quality), method="census (every stored decision)", exact=True
        )
    else:
        out["quality_pass_rate"] = None
    sample = int(determinism.get("sample") or 0)
    if sample:
        w = stats.wilson(int(determinism["matched"]), sample)
        out["determinism_rate"] = Measurement(
            w.value,
            sample,
            w.ci_low,
            w.ci_high,
            method="zero tolerance: one mismatch fails (Wilson interval shown)",
            exact=True,
        )
    else:
        out["determinism_rate"] = None
    if len(df):
        flags = basis_sample("borderline_rate", df, interactive_tiers)
        w = stats.wilson(int(flags.sum()), len(flags))
        out["borderline_rate"] = Measurement(w.value, w.n, w.ci_low, w.ci_high, w.method)
        q = stats.quantile_interval(conf, 0.5)
        out["median_confidence"] = Measurement(q.value, q.n, q.ci_low, q.ci_high, q.method)
        d = stats.bootstrap_max_drop(day_means)
        out["max_confidence_drop_pct"] = Measurement(
            d.value,
            d.n,
            d.ci_low,
            d.ci_high,
            d.method,
            no_data=None if len(day_means) >= 2 else "one day of data: no day-over-day drop",
        )
    else:
        out["borderline_rate"] = out["median_confidence"] = None
        out["max_confidence_drop_pct"] = None
    if len(lat):
        q = stats.quantile_interval(lat, 0.95)
        out["latency_p95_interactive_ms"] = Measurement(q.value, q.n, q.ci_low, q.ci_high, q.method)
    else:
        out["latency_p95_interactive_ms"] = None
    level_rows = int((labelled or {}).get("level_rows") or 0)
    if labelled and level_rows and labelled.get("downgrades") is not None:
        w = stats.wilson(int(labelled["downgrades"]), level_rows)
        out["downgrade_rate"] = Measurement(w.value, w.n, w.ci_low, w.ci_high, w.method)
    else:
        out["downgrade_rate"] = None
    judged = [r for r in backtest_rows if r.get("evaluated")]
    silent = [r["rule"] for r in judged if r.get("note") == "no data"]
    noisy = sum(1 for r in judged if r.get("noisy"))
    out["noisy_rule_count"] = Measurement(
        float(noisy),
        len(judged) - len(silent),
        method="count of rules back-tested on this week",
        exact=True,
        no_data=(
            f"{len(silent)} alert rules never had a judgeable bucket ({', '.join(silent)}): "
            "their noise is unknown"
        )
        if silent and not noisy
        else None,
    )
    return out


def alert_thresholds(rules) -> dict:
    """Thresholds the report draws as lines, taken from the rule file (one source of truth)."""
    by_metric = {r.metric: r.threshold for r in rules}
    return {
        "borderline_rate": by_metric.get("borderline_rate", 0.15),
        "upscale_rate": by_metric.get("upscale_rate", 0.10),
        "confidence_median": by_metric.get("confidence_mean", 0.85),
        "confidence_drop_pct": by_metric.get("confidence_drop_pct", 5.0),
        "latency_p95_ms": by_metric.get("latency_estimate_p95_ms", 200.0),
    }


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def backtest_rows(rules, bt: pd.DataFrame) -> list[dict]:
    """Back-test results in the evidence vocabulary (one row per rule, in rule-file order)."""
    by_name = {r.name: r for r in rules}
    rows = []
    for name, r in bt.iterrows():
        rule = by_name[name]
        rows.append(
            {
                "rule": name,
                "metric": rule.metric,
                "comparator": rule.comparator,
                "threshold": rule.threshold,
                "severity": rule.severity,
                "window": r.get("window"),
                "for": r.get("for"),
                "evaluated": bool(r.get("evaluated")),
                "note": r.get("note"),
                "firings": int(r.get("firings", 0)),
                "firings_per_week": r.get("firings_per_week"),
                "first_fired": r.get("first_firing"),
                "last_fired": r.get("last_firing"),
                "firing_time": r.get("firing_time"),
                "noisy": bool(r.get("noisy")),
                "slack": bool(r.get("slack")),
                "suggested_threshold": r.get("suggested_threshold"),
                "observed_min": r.get("min"),
                "observed_median": r.get("median"),
                "observed_p95": r.get("p95"),
                "observed_max": r.get("max"),
            }
        )
    return json_safe(rows)


@dataclass
class Assessment:
    """One config's readiness on one week: what the verdict is judged on, and the verdict."""

    frames: dict
    backtest: list[dict]
    labelled: dict | None
    measurements: dict[str, Measurement | None]
    verdict: Verdict

    def criteria(self) -> list[dict]:
        return [c.to_dict() for c in self.verdict.criteria]


def assess(
    df: pd.DataFrame,
    config: RouterConfig,
    *,
    quality: list[dict],
    determinism: dict,
    labels: pd.DataFrame | None,
    inherited: dict[str, Measurement | None] | None = None,
) -> Assessment:
    """Metrics frames, alert back-test, labelled evaluation, measurements and verdict.

    ``inherited``: measurements taken over from another assessment (a shadow candidate's data
    quality and determinism are those of the baseline run: same code, decisions not stored)."""
    from telemetry.alerts import backtest, load_rules, metrics_for_rules
    from telemetry.labels import evaluate_labels
    from telemetry.readiness import evaluate as readiness

    tiers = config.routing.interactive_tiers
    rules = load_rules()
    # The rules' windows are 1h and 1d: the frames they need are the report's frames too.
    frames = metrics_for_rules(df, rules, context="pilot", interactive_tiers=tiers)
    bt_rows = backtest_rows(rules, backtest(rules, frames, context="pilot"))
    labelled = None
    if labels is not None:
        res = evaluate_labels(df, labels, config)
        labelled = None if res is None else res.to_dict()
    measurements = readiness_measures(df, quality, determinism, bt_rows, labelled, tiers)
    if inherited:
        measurements.update(inherited)
    verdict = readiness(measurements, total_queries=len(df))
    return Assessment(frames, bt_rows, labelled, measurements, verdict)


def _categorical(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for c in CATEGORICAL:
        if c in df:
            df[c] = df[c].astype("category")
    return df


def build_comparison(
    df: pd.DataFrame,
    cand: pd.DataFrame,
    config: RouterConfig,
    candidate_config: RouterConfig,
    base: Assessment,
    labels: pd.DataFrame | None,
) -> dict:
    """The decision-grade comparison: config diff, flips, transitions, paired tests, changed
    decisions and the candidate's own criteria and verdict."""
    from dataclasses import replace

    from telemetry.comparison import compare_decisions, config_diff

    inherited = {}
    for key in ("quality_pass_rate", "determinism_rate"):
        m = base.measurements.get(key)
        inherited[key] = (
            None
            if m is None
            else replace(
                m, method=f"{m.method}; inherited from the baseline run (same router code)"
            )
        )
    cand = _categorical(cand)
    cand_assessment = assess(
        cand, candidate_config, quality=[], determinism={}, labels=labels, inherited=inherited
    )
    result = compare_decisions(df, cand, candidate_config.config_hash, labels).to_dict()
    result["config_diff"] = config_diff(config, candidate_config)
    result["candidate"] = {
        "config_hash": candidate_config.config_hash,
        "verdict": cand_assessment.verdict.label,
        "verdict_reason": cand_assessment.verdict.reason,
        "criteria": cand_assessment.criteria(),
        "labelled": cand_assessment.labelled,
    }
    return json_safe(result)


def build_evidence(
    df: pd.DataFrame,
    config: RouterConfig,
    *,
    run_id: str,
    corpus: dict,
    window: tuple[date, date],
    semantic: bool,
    corpus_summary: dict,
    telemetry_info: dict,
    quality: list[dict],
    determinism: dict,
    labels: pd.DataFrame | None,
    warnings: list[str],
    candidate: tuple[pd.DataFrame, RouterConfig] | None = None,
    identity: dict | None = None,
    execution: dict | None = None,
) -> dict:
    """Metrics, alert back-test, labelled evaluation, comparison and the verdict, as one
    JSON-ready document (the contract the pilot report renders and the store keeps)."""
    from telemetry.alerts import evaluate, load_rules
    from telemetry.metrics import compute_metrics

    df = _categorical(df)
    tiers = config.routing.interactive_tiers
    a = assess(df, config, quality=quality, determinism=determinism, labels=labels)
    frames = a.frames
    hour, day = pd.Timedelta(hours=1), pd.Timedelta(days=1)
    hourly = frames[hour] if hour in frames else compute_metrics(df, hour, interactive_tiers=tiers)
    daily = frames[day] if day in frames else compute_metrics(df, day, interactive_tiers=tiers)
    rules = load_rules()
    firings = evaluate(rules, frames, context="pilot").firings
    comparison = None
    if candidate is not None:
        comparison = build_comparison(df, candidate[0], config, candidate[1], a, labels)
    evidence = {
        "kind": "pilot",
        "evidence_version": EVIDENCE_VERSION,
        "run_id": run_id,
        "created_at": now_iso(),
        "identity": identity or None,
        "execution": {
            "engine": "local",
            **dict.fromkeys(("workers", "partitions", "address", "shard_rows")),
            **(execution or {}),
        },
        "corpus": corpus,
        "window": {
            "start": window[0].isoformat(),
            "end": window[1].isoformat(),
            "days": (window[1] - window[0]).days + 1,
        },
        "router": {
            "config_hash": config.config_hash,
            "router_version": config.router_version,
            "semantic": semantic,
            "decision_schema_version": "1.0.0",
        },
        "verdict": a.verdict.label,
        "verdict_reason": a.verdict.reason,
        "criteria": a.criteria(),
        "corpus_summary": corpus_summary,
        "telemetry": telemetry_info,
        "metrics_hourly": metric_records(hourly),
        "metrics_daily": metric_records(daily),
        "routing_mix": mix(df, "complexity_level"),
        "model_mix": mix(df, "model"),
        "domain_mix": mix(df, "domain"),
        "confidence_histogram": confidence_histogram(df),
        "thresholds": alert_thresholds(rules),
        "cost": cost_section(df, config, None),
        "alerts": {
            "backtest": a.backtest,
            "firings": [
                {
                    "rule": f.rule,
                    "severity": f.severity,
                    "start": iso(f.fired_at),
                    "end": iso(f.resolved_at),
                }
                for f in firings
            ],
        },
        "quality": quality,
        "determinism": determinism,
        "comparison": comparison,
        "labelled": a.labelled,
        "warnings": warnings,
        "timings": {},
    }
    return json_safe(evidence)


EVIDENCE_NAME = "evidence.json"
"""The evidence file in a run's report folder (the writer owns the name; readers import it)."""


def write_evidence(evidence: dict, run_dir: Path) -> Path:
    """Validate against the contract (``ValidationError`` naming each bad key), then write
    <run_dir>/evidence.json atomically."""
    parse_evidence(evidence)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / EVIDENCE_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(evidence, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


CHANGED_CSV = "changed_decisions.csv"


def write_changed_decisions(
    df: pd.DataFrame, candidate: tuple[pd.DataFrame, RouterConfig] | None, run_dir: Path
) -> Path | None:
    """All changed decisions of a shadow comparison as CSV beside the report (ids and hashes)."""
    from telemetry.comparison import changed_decisions

    if candidate is None:
        return None
    path = run_dir / CHANGED_CSV
    tmp = path.with_suffix(".csv.tmp")
    changed_decisions(df, candidate[0]).to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path
