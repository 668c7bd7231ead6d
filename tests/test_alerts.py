"""Alert rules, the engine, back-test, promtool-style rule tests and the Grafana export."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from telemetry.alerts import (
    DEFAULT_RULES_PATH,
    AlertEngine,
    AlertRule,
    AlertRulesError,
    backtest,
    evaluate,
    expand_series,
    grafana_provisioning,
    load_rules,
    metric_sql,
    metrics_for_rules,
    parse_duration,
    run_rule_tests,
)
from telemetry.metrics import KNOWN_METRICS, compute_metrics

T0 = pd.Timestamp("2026-03-02", tz="UTC")
HOUR = pd.Timedelta(hours=1)


def rule(**over) -> AlertRule:
    spec = {
        "name": "x_high",
        "metric": "error_rate",
        "comparator": ">",
        "threshold": 0.5,
        "window": "1h",
        "for": "0m",
        "severity": "warning",
        "summary": "x",
    }
    spec.update(over)
    return AlertRule.model_validate(spec)


def hourly(values, metric: str = "error_rate", **other) -> pd.DataFrame:
    idx = pd.date_range(T0, periods=len(values), freq="1h", name="bucket")
    return pd.DataFrame({metric: values, **other}, index=idx, dtype=float)


# ----------------------------------------------------------------------------- shipped rules


def test_shipped_rule_tests_all_pass():
    report = run_rule_tests()
    assert report.cases, "no rule tests found in telemetry/alert_tests/"
    assert report.passed, "\n".join(f"{c.test}: {c.message}" for c in report.failures)


def test_every_shipped_rule_has_a_firing_and_a_quiet_case():
    report = run_rule_tests()
    for r in load_rules():
        cases = [c for c in report.cases if c.alertname == r.name and c.passed]
        assert any(c.expect_firing for c in cases), f"{r.name}: no case where it fires"
        assert any(not c.expect_firing for c in cases), f"{r.name}: no case where it stays quiet"


def test_shipped_rules_carry_the_thresholds_from_the_seed():
    rules = {r.name: r for r in load_rules()}
    assert {
        "borderline_rate_high",
        "upscale_rate_high",
        "confidence_mean_low",
        "confidence_drop_day_over_day",
        "latency_estimate_p95_high",
        "execution_p95_latency_high",
        "latency_regression_early_warning",
        "cost_per_query_high",
        "error_rate_high",
        "telemetry_write_failures",
        "misconfigured_toggle",
    } <= set(rules)
    assert rules["confidence_mean_low"].condition == "confidence_mean < 0.85"
    assert rules["confidence_drop_day_over_day"].condition == "confidence_drop_pct > 5"
    assert rules["latency_estimate_p95_high"].condition == "latency_estimate_p95_ms > 200"
    assert rules["misconfigured_toggle"].severity == "critical"
    assert rules["misconfigured_toggle"].for_duration("drill") == pd.Timedelta(0)
    # a spike on one tier pages on that tier's p95; a creep warns on the interactive p95 before
    # it reaches the 200 ms SLA
    assert rules["execution_p95_latency_high"].metric == "actual_latency_p95_worst_tier_ms"
    assert rules["latency_regression_early_warning"].metric == "actual_latency_p95_interactive_ms"
    assert rules["latency_regression_early_warning"].threshold < 200
    assert rules["fallback_rate_high"].condition == "fallback_rate > 0.05"


def test_a_plus_4s_large_tier_spike_is_detected_within_two_minutes_of_onset():
    """The drill's guarantee on metrics computed from decisions, shaped like the execution plane
    behaves: 20 qps, 8 % on the large tier, +4 s on it from minute 5. The breakers then open, so
    most large-tier queries are rejected without a call (0 ms) and only a few trial calls per
    minute are slow. The overall p95 hardly moves; the worst tier's p95 does."""
    rng = np.random.default_rng(7)
    n = 20 * 60 * 10
    ts = T0 + pd.to_timedelta(np.sort(rng.integers(0, 600 * 10**6, n)), unit="us")
    large = rng.random(n) < 0.08
    # catalog-shaped: small tier p50 60 ms / p95 ~120 ms, large tier p50 280 ms
    latency = np.where(
        large, rng.lognormal(np.log(280), 0.4, n), rng.lognormal(np.log(60), 0.42, n)
    )
    spiked = large & (ts >= T0 + pd.Timedelta(minutes=5))
    trial_call = rng.random(n) < 0.06
    outcome = np.where(spiked & ~trial_call, "rejected", "ok")
    latency = np.where(
        spiked, np.where(trial_call, latency + rng.normal(4000, 500, n), 0.0), latency
    )
    df = pd.DataFrame(
        {
            "ts": ts,
            "complexity_level": "MODERATE",
            "borderline": False,
            "upscaled": False,
            "domain": "general",
            "model_tier": np.where(large, "large", "small"),
            "confidence_overall": 0.9,
            "reason_codes": "EXECUTION_ENABLED",
            "latency_estimate_ms": 150.0,
            "cost_estimate_usd": 0.002,
            "simulated": True,
            "outcome": outcome,
            "actual_latency_ms": latency,
            "actual_cost_usd": 0.002,
        }
    )
    m = compute_metrics(df, "1min")
    onset = T0 + pd.Timedelta(minutes=5)
    engine = AlertEngine(load_rules(), context="drill")
    fired: dict[str, pd.Timestamp] = {}
    for bucket, row in m.iterrows():
        closes = bucket + pd.Timedelta(minutes=1)  # a drill observes a minute when it closes
        for event in engine.observe(closes, row.to_dict()):
            fired.setdefault(event.rule, event.ts)
    assert fired["execution_p95_latency_high"] - onset <= pd.Timedelta(minutes=2)
    assert all(ts > onset for ts in fired.values())  # quiet before the fault
    assert "latency_regression_early_warning" not in fired
    assert m["actual_latency_p95_ms"].max() < 1500


# ----------------------------------------------------------------------------- engine


def test_for_duration_keeps_the_alert_pending_before_it_fires():
    engine = AlertEngine([rule(**{"for": "2h"})])
    assert engine.observe(T0, {"error_rate": 0.9}) == []
    assert engine.status("x_high").state == "pending"
    assert engine.observe(T0 + HOUR, {"error_rate": 0.9}) == []
    assert engine.firing() == [] and engine.pending() == ["x_high"]
    (event,) = engine.observe(T0 + 2 * HOUR, {"error_rate": 0.7})
    assert event.kind == "fired" and event.ts == T0 + 2 * HOUR and event.active_since == T0
    assert engine.firing() == ["x_high"]


def test_condition_clearing_resolves_and_closes_the_firing_interval():
    engine = AlertEngine([rule()])
    engine.observe(T0, {"error_rate": 0.9})
    engine.observe(T0 + HOUR, {"error_rate": 0.95})
    (event,) = engine.observe(T0 + 2 * HOUR, {"error_rate": 0.1})
    assert event.kind == "resolved" and event.fired_at == T0
    (firing,) = engine.firings()
    assert (firing.fired_at, firing.resolved_at, firing.peak_value) == (T0, T0 + 2 * HOUR, 0.95)
    assert firing.duration() == 2 * HOUR
    assert event.to_dict()["ts"] == "2026-03-02T02:00:00Z"


def test_nan_is_condition_false_it_resolves_and_restarts_pending():
    engine = AlertEngine([rule(**{"for": "1h"})])
    engine.observe(T0, {"error_rate": 0.9})
    engine.observe(T0 + HOUR, {"error_rate": 0.9})
    assert engine.firing() == ["x_high"]
    (event,) = engine.observe(T0 + 2 * HOUR, {"error_rate": math.nan})
    assert event.kind == "resolved"
    engine.observe(T0 + 3 * HOUR, {"error_rate": 0.9})
    engine.observe(T0 + 4 * HOUR, {})  # a missing metric is NaN too
    engine.observe(T0 + 5 * HOUR, {"error_rate": 0.9})
    assert engine.status("x_high").state == "pending"
    assert engine.status("x_high").active_since == T0 + 5 * HOUR


def test_nan_never_satisfies_not_equal():
    engine = AlertEngine([rule(comparator="!=", threshold=0)])
    assert engine.observe(T0, {"error_rate": None}) == []
    assert engine.status("x_high").state == "inactive"


def test_min_queries_turns_thin_buckets_into_no_data():
    engine = AlertEngine([rule(min_queries=50)])
    assert engine.observe(T0, {"error_rate": 0.9, "queries": 10}) == []
    assert [e.kind for e in engine.observe(T0 + HOUR, {"error_rate": 0.9, "queries": 80})] == [
        "fired"
    ]


def test_observations_must_move_forward_in_aware_time():
    engine = AlertEngine([rule()])
    engine.observe(T0, {"error_rate": 0})
    with pytest.raises(ValueError, match="not after the previous one"):
        engine.observe(T0, {"error_rate": 0})
    with pytest.raises(ValueError, match="tz-aware"):
        engine.observe(pd.Timestamp("2026-03-03"), {"error_rate": 0})


def test_engine_per_context_uses_that_contexts_for_and_ignores_other_rules():
    rules = [
        rule(name="both", **{"for": {"pilot": "2h", "drill": "0m"}}),
        rule(name="pilot_only", window={"pilot": "1d"}),
    ]
    drill = AlertEngine(rules, context="drill")
    assert [r.name for r in drill.rules] == ["both"] and drill.ignored == ["pilot_only"]
    assert [e.rule for e in drill.observe(T0, {"error_rate": 0.9})] == ["both"]


# ----------------------------------------------------------------------------- batch == incremental


def reference_firing(values, threshold, hold_steps):
    """Oracle: firing at i iff the condition held at every step of the last hold_steps + 1."""
    out = []
    for i in range(len(values)):
        window = values[max(0, i - hold_steps) : i + 1]
        out.append(i >= hold_steps and all(not math.isnan(v) and v > threshold for v in window))
    return out


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.floats(0, 1, allow_nan=False), st.just(math.nan)), min_size=1, max_size=60
    ),
    threshold=st.floats(0.05, 0.95),
    hold_steps=st.integers(0, 4),
)
def test_batch_evaluation_equals_the_incremental_engine_and_the_oracle(
    values, threshold, hold_steps
):
    r = rule(threshold=threshold, **{"for": f"{hold_steps}h"})
    metrics = hourly(values)
    batch = evaluate([r], metrics)

    engine = AlertEngine([r])
    firing_states = []
    for ts, v in zip(metrics.index, values, strict=True):
        engine.observe(ts, {"error_rate": v})
        firing_states.append(engine.status("x_high").state == "firing")

    assert [e.to_dict() for e in batch.events] == [e.to_dict() for e in engine.events]
    assert batch.firings == engine.firings()
    assert firing_states == reference_firing(values, threshold, hold_steps)


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_reports_intervals_and_skips_rules_whose_window_does_not_match():
    rules = [rule(), rule(name="daily", window="1d")]
    result = evaluate(rules, hourly([0.1, 0.9, 0.9, 0.2, 0.8]))
    assert [(f.fired_at, f.resolved_at) for f in result.firings_for("x_high")] == [
        (T0 + HOUR, T0 + 3 * HOUR),
        (T0 + 4 * HOUR, None),
    ]
    assert result.first_firing("x_high") == T0 + HOUR
    assert "daily" in result.skipped and "window 1d" in result.skipped["daily"]
    assert list(result.to_frame()["rule"]) == ["x_high", "x_high"]


def test_metrics_for_rules_evaluates_each_rule_at_its_own_window():
    rows = []
    for day, conf in enumerate([0.9, 0.9, 0.8]):  # day 3 drops 11 %
        for h in range(0, 24, 2):
            rows.append({"ts": T0 + pd.Timedelta(days=day, hours=h), "confidence_overall": conf})
    df = pd.DataFrame(rows).assign(
        complexity_level="SIMPLE",
        borderline=False,
        upscaled=False,
        domain="general",
        model_tier="small",
        reason_codes="",
        latency_estimate_ms=100.0,
        cost_estimate_usd=0.001,
        simulated=True,
        outcome="not_executed",
        actual_latency_ms=np.nan,
        actual_cost_usd=np.nan,
    )
    rules = load_rules()
    frames = metrics_for_rules(df, rules, context="pilot")
    assert sorted(frames) == [pd.Timedelta(hours=1), pd.Timedelta(days=1)]
    result = evaluate(rules, frames, context="pilot")
    assert result.skipped == {}
    assert result.first_firing("confidence_drop_day_over_day") == T0 + pd.Timedelta(days=2)
    assert not result.fired("misconfigured_toggle")


# ----------------------------------------------------------------------------- backtest


def test_backtest_flags_noisy_and_slack_rules_and_suggests_thresholds():
    rng = np.random.default_rng(0)
    n = 24 * 7
    spiky = np.where(np.arange(n) % 24 == 12, 0.6, rng.uniform(0.0, 0.2, n))  # 7 spikes a week
    calm = rng.uniform(0.0, 0.1, n)
    busy = 0.5 + calm
    metrics = hourly(
        spiky, fallback_rate=calm, executed_rate=busy, confidence_mean=0.95 + calm / 10
    )
    rules = [
        rule(name="spiky_high", metric="error_rate", threshold=0.5),
        rule(name="calm_high", metric="fallback_rate", threshold=0.5),
        rule(name="idle_low", metric="executed_rate", comparator="<", threshold=0.1),
        rule(name="confidence_low", metric="confidence_mean", comparator="<", threshold=0.85),
    ]
    bt = backtest(rules, metrics, noisy_per_week=3)
    assert bt.loc["spiky_high", "firings"] == 7 and bt.loc["spiky_high", "noisy"]
    assert bt.loc["spiky_high", "firing_time"] == 7 * HOUR
    assert bt.loc["spiky_high", "first_firing"] == T0 + 12 * HOUR
    assert not bt.loc["spiky_high", "slack"]
    assert bt.loc["calm_high", "slack"] and not bt.loc["calm_high", "noisy"]
    assert bt.loc["idle_low", "slack"] and bt.loc["idle_low", "firings"] == 0
    # 0.95 is within 20 % of 0.85: close enough to count, so not slack
    assert not bt.loc["confidence_low", "slack"] and bt.loc["confidence_low", "closest"] > 0.85

    q99 = np.quantile(spiky, 0.99)
    assert bt.loc["spiky_high", "suggested_threshold"] == pytest.approx(q99 * 1.1, rel=1e-2)
    assert bt.loc["spiky_high", "max"] == pytest.approx(spiky.max())
    q01 = np.quantile(busy, 0.01)
    assert bt.loc["idle_low", "suggested_threshold"] == pytest.approx(q01 * 0.9, rel=1e-2)

    tuned = rule(name="spiky_high", threshold=bt.loc["spiky_high", "suggested_threshold"])
    assert backtest([tuned], metrics).loc["spiky_high", "firings"] == 0


def test_backtest_lists_rules_it_could_not_evaluate_with_the_reason():
    bt = backtest([rule(name="daily", window="1d")], hourly([0.1, 0.2]))
    assert not bt.loc["daily", "evaluated"] and "window 1d" in bt.loc["daily", "note"]


# ----------------------------------------------------------------------------- rules file


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_bad_rules_file_names_file_rule_field_and_valid_values(tmp_path):
    path = write(
        tmp_path,
        """
rules:
  - {name: a, metric: error_rate, comparator: "=>", threshold: 1, window: 1h,
     severity: warning, summary: s}
  - {name: b, metric: eror_rate, comparator: ">", threshold: 1, window: 1h,
     severity: warning, summary: s}
  - {name: c, metric: error_rate, comparator: ">", threshold: 1, window: 1 hour,
     severity: page, summary: s}
""",
    )
    with pytest.raises(AlertRulesError) as info:
        load_rules(path)
    msg = str(info.value)
    assert f"{path}: rule 'a': field 'comparator'" in msg and "'>', '>='" in msg
    assert "rule 'b': field 'metric': unknown metric 'eror_rate'; known metrics:" in msg
    assert "error_rate" in msg.split("rule 'b'")[1]
    assert "rule 'c': field 'window': '1 hour' is not a duration; use e.g." in msg
    assert "rule 'c': field 'severity'" in msg and "'critical'" in msg
    assert len(info.value.problems) == 4


def test_rules_file_structure_and_yaml_errors_are_located(tmp_path):
    with pytest.raises(AlertRulesError, match=r"rules.yaml:3: not valid YAML"):
        load_rules(write(tmp_path, "rules:\n  - name: a\n   bad: [\n"))
    with pytest.raises(AlertRulesError, match="expected a mapping with a 'rules:' list"):
        load_rules(write(tmp_path, "- name: a\n"))
    dup = "rules:\n" + 2 * (
        "  - {name: a, metric: error_rate, comparator: '>', threshold: 1, window: 1h,"
        " severity: info, summary: s}\n"
    )
    with pytest.raises(AlertRulesError, match="duplicate rule name"):
        load_rules(write(tmp_path, dup))
    with pytest.raises(AlertRulesError, match="field 'for': no duration for context 'drill'"):
        rule_spec = "{pilot: 1h, drill: 1m}"
        load_rules(
            write(
                tmp_path,
                "rules:\n  - {name: a, metric: error_rate, comparator: '>', threshold: 1,"
                f" window: {rule_spec}, for: {{pilot: 1h}}, severity: info, summary: s}}\n",
            )
        )


def test_durations_read_like_prometheus():
    assert parse_duration("1h30m") == pd.Timedelta(minutes=90)
    assert parse_duration("0") == pd.Timedelta(0)
    assert parse_duration("1d") == pd.Timedelta(days=1)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("1 hour")


# ----------------------------------------------------------------------------- rule tests


def test_expanding_series_notation():
    assert expand_series("0 0 3 0") == [0, 0, 3, 0]
    assert expand_series("-2+4x3") == [-2, 2, 6, 10]
    assert expand_series("1-2x4") == [1, -1, -3, -5, -7]
    assert expand_series("1x3") == [1, 1, 1, 1]
    vals = expand_series("1 _ _x2 0.5")
    assert vals[0] == 1 and all(math.isnan(v) for v in vals[1:4]) and vals[4] == 0.5
    with pytest.raises(ValueError, match="bad value token 'abc'"):
        expand_series("1 abc")


def test_a_wrong_expectation_fails_with_what_was_expected_and_what_happened(tmp_path):
    path = write(
        tmp_path,
        f"""
rule_files: [{DEFAULT_RULES_PATH}]
context: drill
tests:
  - name: wrong on purpose
    input_series:
      - {{metric: misconfigured_toggle_count, values: "0 0 3"}}
    alert_rule_test:
      - {{eval_time: 2m, alertname: misconfigured_toggle, exp_alerts: []}}
      - {{eval_time: 1m, alertname: misconfigured_toggle, exp_alerts: [{{severity: critical}}]}}
      - {{eval_time: 2m, alertname: misconfigured_toggle, exp_alerts: [{{severity: warning}}]}}
      - {{eval_time: 2m, alertname: no_such_rule, exp_alerts: []}}
""",
        "wrong_test.yaml",
    )
    report = run_rule_tests(path)
    assert not report.passed and len(report.failures) == 4
    first, second, third, fourth = (c.message for c in report.cases)
    assert "expected not firing at 2m; got firing since 2m" in first
    assert "expected firing with {severity=critical} at 1m; got not firing" in second
    assert "severity=critical" in third and "expected firing with {severity=warning}" in third
    assert "no rule named 'no_such_rule'" in fourth


def test_rule_test_files_resolve_rule_files_relative_to_themselves(tmp_path):
    (tmp_path / "rules").mkdir()
    write(
        tmp_path / "rules",
        "rules:\n  - {name: lots, metric: queries, comparator: '>=', threshold: 100,"
        " window: 1m, severity: info, summary: busy}\n",
    )
    path = write(
        tmp_path,
        """
rule_files: [rules/rules.yaml]
tests:
  - name: busy
    input_series: [{metric: queries, values: "50+50x3"}]
    alert_rule_test:
      - {eval_time: 0m, alertname: lots, exp_alerts: []}
      - {eval_time: 1m, alertname: lots, exp_alerts: [{exp_annotations: {summary: busy}}]}
""",
        "t.yaml",
    )
    assert run_rule_tests(path).passed


def test_malformed_rule_test_file_names_file_test_and_series(tmp_path):
    path = write(
        tmp_path,
        """
tests:
  - name: typo
    input_series: [{metric: error_rate, values: "1 2 x"}]
    alert_rule_test: [{eval_time: 1m, alertname: error_rate_high}]
""",
        "bad_test.yaml",
    )
    with pytest.raises(AlertRulesError, match=r"bad_test.yaml: test 'typo': series 'error_rate'"):
        run_rule_tests(path)
    path = write(
        tmp_path,
        "tests:\n  - name: t\n    input_series: [{metric: nope, values: '1'}]\n"
        "    alert_rule_test: []\n",
        "bad_metric.yaml",
    )
    with pytest.raises(AlertRulesError, match="unknown metric 'nope'"):
        run_rule_tests(path)


# ----------------------------------------------------------------------------- Grafana


def test_grafana_export_is_provisioning_yaml_with_one_rule_per_exportable_rule(tmp_path):
    from telemetry.alerts import export_grafana, exportable

    rules = load_rules()
    path = export_grafana(tmp_path / "alerting" / "amaima.yaml", rules)
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == 1
    exported = [r for g in doc["groups"] for r in g["rules"]]
    assert sorted(r["title"] for r in exported) == sorted(
        r.name for r in rules if exportable(r, "pilot")
    )
    # The write-failure signal lives in the spool while the database fails: not exported, said so.
    assert "telemetry_write_failures" not in {r["title"] for r in exported}
    assert "Not exported: telemetry_write_failures" in path.read_text()
    assert len({r["uid"] for r in exported}) == len(exported)
    by_name = {r.name: r for r in rules}
    for g in doc["groups"]:
        assert g["folder"] and g["interval"] and g["orgId"] == 1
    for r in exported:
        src = by_name[r["title"]]
        assert len(r["uid"]) <= 40 and r["condition"] == "C"
        query, reduce_, threshold = r["data"]
        sql = query["model"]["rawSql"]
        assert "decision_telemetry" in sql and sql.startswith("SELECT now() AS time,")
        assert query["relativeTimeRange"]["from"] >= src.window_for("pilot").total_seconds()
        assert reduce_["model"]["type"] == "reduce" and reduce_["datasourceUid"] == "__expr__"
        evaluator = threshold["model"]["conditions"][0]["evaluator"]
        assert evaluator["params"] == [src.threshold]
        assert evaluator["type"] == {">": "gt", "<": "lt"}[src.comparator]
        assert parse_duration(r["for"]) == src.for_duration("pilot")
        assert r["labels"]["severity"] == src.severity
        assert r["annotations"]["summary"] == src.summary


def test_grafana_export_for_drills_leaves_out_pilot_only_rules():
    doc = grafana_provisioning(load_rules(), context="drill")
    titles = {r["title"] for g in doc["groups"] for r in g["rules"]}
    assert "confidence_drop_day_over_day" not in titles and "misconfigured_toggle" in titles


def decision_rows(ts: pd.Timestamp, n: int, seed: int) -> pd.DataFrame:
    """Complete schema-1.0.0 rows, varied enough to exercise every metric."""
    from router.decision import DECISION_COLUMNS

    rng = np.random.default_rng(seed)
    i = np.arange(n)
    executed = i % 3 == 0
    known_cost = executed & (i % 2 == 1)
    outcome = np.where(
        executed,
        np.array(["ok", "error", "timeout", "rejected", "fallback"])[i % 5],
        "not_executed",
    )
    df = pd.DataFrame(
        {
            "decision_id": [f"d{k}" for k in i],
            "run_id": "r",
            "query_id": [f"q{k}" for k in i],
            "query_hash": "0" * 64,
            "ts": pd.Series([ts] * n).dt.tz_convert("UTC"),
            "tenant": "t",
            "complexity_level": np.array(["TRIVIAL", "SIMPLE", "COMPLEX", "EXPERT"])[i % 4],
            "complexity_score": 0.5,
            "borderline": i % 5 == 0,
            "upscaled": i % 7 == 0,
            "domain": np.array(["general", "coding", "math"])[i % 3],
            "domain_confidence": 0.9,
            "model": "m",
            "model_tier": np.array(["tiny", "small", "medium", "large"])[i % 4],
            "execution_style": "streaming",
            "confidence_complexity": 0.9,
            "confidence_model_fit": 0.9,
            "confidence_execution_fit": 0.9,
            "confidence_overall": rng.uniform(0.5, 1, n),
            "reason_codes": np.where(i == 4, "EXECUTION_MODE_INVALID", "LEVEL_FROM_RULES"),
            "latency_estimate_ms": rng.uniform(50, 3000, n),
            "cost_estimate_usd": rng.uniform(0.0005, 0.01, n),
            "tokens_estimate": 100,
            "execution_mode": "execution-enabled",
            "execution_mode_active": True,
            "simulated": ~known_cost,
            "outcome": outcome,
            "actual_latency_ms": np.where(
                outcome == "rejected", 0.0, np.where(executed, rng.uniform(100, 8000, n), np.nan)
            ),
            "actual_cost_usd": np.where(known_cost, rng.uniform(0.001, 0.02, n), np.nan),
            "error_code": None,
            "privacy_required": False,
            "router_version": "1",
            "config_hash": "c",
            "decision_schema_version": "1.0.0",
        }
    )
    return df[list(DECISION_COLUMNS)]


SQL_METRICS = [
    m
    for m in KNOWN_METRICS
    if m not in ("confidence_drop_pct", "telemetry_write_failures", "spooled_rows")
]


@pytest.mark.postgres
def test_grafana_sql_computes_the_same_numbers_as_compute_metrics(postgres_url):
    """Runs every metric's SQL on the real PostgreSQL over rows also fed to compute_metrics."""
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        db_now = conn.execute(sa.text("select now()")).scalar_one()
    ts = pd.Timestamp(db_now).tz_convert("UTC") - pd.Timedelta(seconds=30)
    df = decision_rows(ts, 40, seed=11)
    from telemetry.schema import decision_telemetry  # the store's own table: SQL meets real types

    records = df.astype(object).where(df.notna(), None).to_dict("records")
    with engine.begin() as conn:
        decision_telemetry.create(conn)
        conn.execute(decision_telemetry.insert(), records)
    expected = compute_metrics(df, "1D").iloc[0]
    try:
        with engine.connect() as conn:
            for metric in SQL_METRICS:
                sql = metric_sql(metric, pd.Timedelta(hours=1))
                got = conn.execute(sa.text(sql)).mappings().one()["value"]
                want = expected[metric]
                if math.isnan(want):
                    assert got is None, metric
                else:
                    assert float(got) == pytest.approx(want), metric

            # day-over-day drop: the same rows again 24 h earlier, with confidence 0.1 higher
            earlier = decision_rows(ts - pd.Timedelta(hours=24), 40, seed=11)
            earlier["decision_id"] = "e" + earlier["decision_id"]
            earlier["confidence_overall"] += 0.1
            rows = earlier.astype(object).where(earlier.notna(), None).to_dict("records")
            conn.execute(decision_telemetry.insert(), rows)
            sql = metric_sql("confidence_drop_pct", pd.Timedelta(hours=1))
            got = conn.execute(sa.text(sql)).mappings().one()["value"]
            base = earlier.confidence_overall.mean()
            want = 100 * (base - df.confidence_overall.mean()) / base
            assert float(got) == pytest.approx(want)
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- CLI


def test_cli_test_list_and_export(tmp_path):
    from flows.commands.alerts import app

    runner = CliRunner()
    env = {"COLUMNS": "250"}
    ok = runner.invoke(app, ["test"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "0 failed" in ok.output
    bad = write(
        tmp_path,
        "tests:\n  - name: t\n    input_series: [{metric: queries, values: '1'}]\n"
        "    alert_rule_test: [{eval_time: 0m, alertname: misconfigured_toggle,"
        " exp_alerts: [{severity: critical}]}]\n",
        "fails.yaml",
    )
    failed = runner.invoke(app, ["test", str(bad)], env=env)
    assert failed.exit_code == 2 and "1 failed" in failed.output  # a failed check
    listed = runner.invoke(app, ["list", "--context", "drill"], env=env)
    assert listed.exit_code == 0 and "misconfigured_toggle" in listed.output
    out = tmp_path / "grafana.yaml"
    exported = runner.invoke(app, ["export", "--grafana", str(out)])
    assert exported.exit_code == 0 and yaml.safe_load(out.read_text())["apiVersion"] == 1
    broken = write(tmp_path, "rules: [{name: a}]\n", "broken.yaml")
    refused = runner.invoke(app, ["list", "--rules", str(broken)], env=env)
    assert refused.exit_code == 1 and "field 'metric'" in refused.output  # invalid input
