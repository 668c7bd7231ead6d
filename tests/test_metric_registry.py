"""The metric registry is the one place a metric is defined: every metric the alert rules, the
readiness criteria and the drill probes name is declared there, and a metric's pandas form and
its SQL form give the same number on the same rows (run on a real SQLite database)."""

from __future__ import annotations

import dataclasses
import math
import re
import sqlite3
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pytest

from router.decision import DECISION_COLUMNS
from telemetry.metric_registry import (
    METRICS,
    HasReasonCode,
    Metric,
    has_reason_code,
)

SQL_METRICS = [
    m for m in METRICS.values() if m.kind == "bucket" and m.agg not in (None, "drop_vs_day_before")
]


# ----------------------------------------------------------------------------- coverage


def missing_from_registry(names: Iterable[str]) -> list[str]:
    return sorted({n for n in names if n not in METRICS})


def referenced_metrics() -> dict[str, set[str]]:
    """Every metric name the harness's data and plug-ins reference, by where it is referenced."""
    from drills.probes import DRILL_METRICS, PROBES
    from telemetry.alerts import load_rules
    from telemetry.readiness import load_criteria

    return {
        "alert_rules.yaml": {r.metric for r in load_rules()},
        "readiness.yaml": {c.measure for c in load_criteria()},
        "drill probes": {cls.metric_name() for cls in PROBES.values()},
        "drill metrics": set(DRILL_METRICS),
    }


def test_every_referenced_metric_is_declared_in_the_registry():
    refs = referenced_metrics()
    assert all(refs.values()), refs  # each source really names metrics
    for source, names in refs.items():
        assert missing_from_registry(names) == [], source


def test_the_coverage_check_names_an_undeclared_metric():
    assert missing_from_registry(["error_rate", "error_rate_p99", "queries"]) == ["error_rate_p99"]


def test_compute_metrics_columns_are_the_registry_bucket_and_event_metrics():
    from telemetry.metrics import KNOWN_METRICS

    declared = {m.name for m in METRICS.values() if m.kind in ("bucket", "event")}
    assert set(KNOWN_METRICS) == declared


def test_every_series_a_promql_form_reads_is_exposed_by_the_service():
    from live.metrics import METRIC_NAMES
    from telemetry.metric_registry import promql

    read = set()
    for m in METRICS.values():
        if m.promql is not None:
            read |= set(re.findall(r"amaima_[a-z_]+", promql(m.name, "1m")))
    exposed = set(METRIC_NAMES)
    base = {re.sub(r"_(bucket|sum|count)$", "", s) for s in read}
    assert read and {s for s in base if s not in exposed and s + "_total" not in exposed} == set()


def latency_thresholds_between_bucket_bounds(rules, bounds) -> list[str]:
    """Rules on a histogram quantile whose threshold is not a bucket bound of the histogram."""
    from telemetry.metric_registry import promql

    out = []
    for r in rules:
        form = promql(r.metric, "1m")
        if form and "histogram_quantile" in form and r.threshold not in bounds:
            out.append(f"{r.name}: {r.threshold:g}")
    return out


def test_every_latency_alert_threshold_is_a_histogram_bucket_bound():
    """histogram_quantile interpolates inside a bucket: a threshold between two bounds makes the
    alert read an interpolated value instead of counting what lies above the threshold."""
    from live.metrics import LATENCY_BUCKETS_MS
    from telemetry.alerts import load_rules
    from telemetry.metric_registry import promql

    rules = load_rules()
    assert any("histogram_quantile" in (promql(r.metric, "1m") or "") for r in rules)
    assert latency_thresholds_between_bucket_bounds(rules, LATENCY_BUCKETS_MS) == []
    # the check can fail: without the 160 ms bound, the early warning is named
    without = tuple(b for b in LATENCY_BUCKETS_MS if b != 160)
    assert latency_thresholds_between_bucket_bounds(rules, without) == [
        "latency_regression_early_warning: 160"
    ]


# ----------------------------------------------------------------------------- pandas == SQL


def decisions(n: int = 60, seed: int = 3) -> pd.DataFrame:
    """Complete schema rows, varied so every filter of every metric selects some rows and
    leaves out others (outcomes, tiers, levels, domains, known and unknown costs, codes)."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    executed = i % 3 != 1
    served = np.array(["ok", "error", "timeout", "rejected", "fallback"])[i % 5]
    outcome = np.where(executed, served, "not_executed")
    codes = np.array(
        [
            "LEVEL_FROM_RULES",
            "LEVEL_FROM_RULES,EXECUTION_MODE_INVALID",
            "EXECUTION_MODE_INVALID",
            "EXECUTION_MODE_INVALID_LEGACY",  # contains the code but is not it
            "FALLBACK_SAME_TIER,LEVEL_FROM_RULES",
        ]
    )[i % 5]
    df = pd.DataFrame({c: None for c in DECISION_COLUMNS}, index=i)
    df = df.assign(
        ts=pd.Timestamp("2026-03-02 10:00", tz="UTC") + pd.to_timedelta(i, "s"),
        complexity_level=np.array(["TRIVIAL", "SIMPLE", "COMPLEX", "EXPERT"])[i % 4],
        borderline=i % 5 == 0,
        upscaled=i % 7 == 0,
        domain=np.array(["general", "coding", "math"])[i % 3],
        model_tier=np.array(["tiny", "small", "medium", "large"])[(i // 2) % 4],
        confidence_overall=rng.uniform(0.5, 1, n),
        reason_codes=codes,
        latency_estimate_ms=rng.uniform(50, 3000, n),
        cost_estimate_usd=rng.uniform(0.0005, 0.01, n),
        simulated=i % 4 != 0,
        outcome=outcome,
        actual_latency_ms=np.where(
            outcome == "rejected", 0.0, np.where(executed, rng.uniform(100, 8000, n), np.nan)
        ),
        actual_cost_usd=np.where(executed & (i % 2 == 0), rng.uniform(0.001, 0.02, n), np.nan),
    )
    return df


class _PercentileCont:
    """PostgreSQL's percentile_cont (linear interpolation), which SQLite does not have."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.p = 0.5

    def step(self, value: float | None, p: float) -> None:
        self.p = p
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        return float(np.percentile(self.values, self.p * 100)) if self.values else None


@pytest.fixture
def sqlite_decisions() -> Iterable[tuple[pd.DataFrame, sqlite3.Connection]]:
    df = decisions()
    conn = sqlite3.connect(":memory:")
    conn.create_aggregate("percentile_cont", 2, _PercentileCont)
    table = df.drop(columns=["ts"]).astype(object).where(df.notna(), None)
    for col in ("borderline", "upscaled", "simulated"):
        table[col] = df[col].astype(int)
    table.to_sql("decisions", conn, index=False)
    yield df, conn
    conn.close()


def sql_value(m: Metric, conn: sqlite3.Connection) -> float | None:
    expr = m.sql(dialect="sqlite")
    if m.agg == "p95_worst_tier":
        query = f"SELECT max(p) FROM (SELECT {expr} AS p FROM decisions GROUP BY model_tier)"
    else:
        query = f"SELECT {expr} FROM decisions"
    return conn.execute(query).fetchone()[0]


def disagreements(metrics: Iterable[Metric], df, conn) -> list[str]:
    out = []
    for m in metrics:
        want = m.compute(df)
        got = sql_value(m, conn)
        same = got is None if math.isnan(want) else got is not None and math.isclose(got, want)
        if not same:
            out.append(f"{m.name}: pandas {want}, SQL {got}")
    return out


def test_every_metric_with_sql_gives_the_pandas_number_on_sqlite(sqlite_decisions):
    df, conn = sqlite_decisions
    assert len(SQL_METRICS) >= 20
    assert disagreements(SQL_METRICS, df, conn) == []
    # the frame exercises the filters: no metric is trivially empty or all-rows
    exact = sum("EXECUTION_MODE_INVALID" in c.split(",") for c in df["reason_codes"])
    assert 0 < METRICS["misconfigured_toggle_count"].compute(df) == exact
    for rate in ("error_rate", "fallback_rate", "executed_rate", "borderline_rate"):
        assert 0 < METRICS[rate].compute(df) < 1, rate


def test_the_comparison_catches_a_sql_form_that_drifted(sqlite_decisions):
    """The old Grafana SQL matched the reason code as a substring; pandas splits the codes."""

    class SubstringCode(HasReasonCode):
        def sql(self, tiers):
            return f"reason_codes LIKE '%{self.code}%'"

    metric = METRICS["misconfigured_toggle_count"]
    drifted = dataclasses.replace(metric, rows=SubstringCode(metric.rows.code))
    df, conn = sqlite_decisions
    exact = sum(metric.rows.code in c.split(",") for c in df["reason_codes"])
    substring = sum(metric.rows.code in c for c in df["reason_codes"])
    assert exact < substring
    assert disagreements([drifted], df, conn) == [
        f"misconfigured_toggle_count: pandas {float(exact)}, SQL {substring}"
    ]


def test_compute_metrics_holds_the_registry_value_of_every_bucket_metric():
    from telemetry.metrics import compute_metrics

    df = decisions()
    row = compute_metrics(df, "1D").iloc[0]
    for m in SQL_METRICS:
        want = m.compute(df)
        assert (math.isnan(row[m.name]) and math.isnan(want)) or row[m.name] == pytest.approx(
            want
        ), m.name


def test_an_empty_window_is_no_data_for_rates_and_zero_for_counts():
    none_executed = decisions().assign(outcome="not_executed")
    assert math.isnan(METRICS["error_rate"].compute(none_executed))
    assert math.isnan(METRICS["error_rate"].compute(none_executed.iloc[:0]))
    assert METRICS["executed"].compute(none_executed) == 0


def test_reason_codes_match_exactly_on_the_separator():
    codes = pd.Series(["A,EXECUTION_MODE_INVALID", "EXECUTION_MODE_INVALID_LEGACY", None, "B"])
    want = [True, False, False, False]
    assert has_reason_code(codes, "EXECUTION_MODE_INVALID").tolist() == want
    assert has_reason_code(codes.astype("category"), "EXECUTION_MODE_INVALID").tolist() == want
    assert has_reason_code(list(codes), "EXECUTION_MODE_INVALID").tolist() == want


def test_readiness_measures_are_their_registry_metric_over_the_week():
    """The week-long go / no-go numbers are the registry's metrics over all of the week's rows."""
    from telemetry.pilot_evidence import readiness_measures

    df = decisions()
    tiers = ["tiny", "small"]
    measured = readiness_measures(df, [], {}, [], None, tiers)
    checked = [m for m in METRICS.values() if m.basis] + [METRICS["borderline_rate"]]
    for m in checked:
        basis = METRICS[m.basis or m.name]
        assert measured[m.name].value == pytest.approx(basis.compute(df, tiers)), m.name
        assert measured[m.name].n == np.count_nonzero(~np.isnan(basis.row_values(df, tiers)))
    assert measured["latency_p95_interactive_ms"].n < len(df)  # only the interactive tiers


def test_drill_probes_over_decisions_are_their_registry_metric():
    """A probe, an alert and the pilot report mean the same number by the same name; an empty
    window is no data (None) for a rate and 0 for a count, never a made-up 0 % error rate."""
    from drills.probes import PROBES, LatencyParams, MetricProbe
    from drills.record import DrillRecord

    df = decisions().assign(offset_s=lambda d: np.arange(len(d), dtype=float))
    record = DrillRecord(start=pd.Timestamp("2026-03-02", tz="UTC"), duration_s=600, model_tiers={})
    record.minute_frames = [df]
    probes = {n: cls for n, cls in PROBES.items() if issubclass(cls, MetricProbe)}
    assert {"error_rate", "cost_per_query_usd", "misconfigured_decisions"} <= set(probes)
    for cls in probes.values():
        value = cls(cls.Params()).measure(record, 0, 600)
        assert value == pytest.approx(METRICS[cls.metric_name()].compute(df)), cls.name
    interactive = PROBES["latency_p95_ms"](LatencyParams(interactive=True)).measure(record, 0, 600)
    assert interactive == METRICS["actual_latency_p95_interactive_ms"].compute(df)

    record.minute_frames = [df.assign(outcome="not_executed")]
    record._frame_cache = None
    no_params = PROBES["error_rate"].Params()
    assert PROBES["error_rate"](no_params).measure(record, 0, 600) is None
    assert PROBES["misconfigured_decisions"](no_params).measure(record, 900, 960) == 0.0
