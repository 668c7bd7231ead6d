"""Alert rules as data, one state machine to evaluate them, and what is built on it.

Rules live in ``alert_rules.yaml`` (promtool-like) and are validated by pydantic: a bad file
fails with the file, the rule, the field and what would be valid. Every consumer goes through
``AlertEngine.observe`` — drills call it once per closed minute on the virtual clock, and
``evaluate`` / ``backtest`` / ``run_rule_tests`` replay a metrics frame through it — so the drill,
the pilot back-test and the rule unit tests can never disagree about when an alert fired.

State machine, per rule, per observation ``(ts, value)``:

- the condition is ``value <comparator> threshold``; a NaN or missing value, or a bucket with
  fewer than ``min_queries`` queries, counts as *condition false* (a gap never fires an alert and
  resolves a firing one: the metric frame keeps gaps visible, the rule stays quiet on them);
- condition true while inactive -> *pending* from ``ts`` (``active_since``);
- pending and ``ts - active_since >= for`` -> *firing* (a ``fired`` event at ``ts``; with
  ``for: 0m`` that is the same observation);
- condition false -> *inactive*; if it was firing, a ``resolved`` event at ``ts``.

Timestamps are whatever the caller observes at. ``compute_metrics`` labels buckets by their
start, so in a back-test a firing "starts" at the start of its first bad bucket; a drill that
observes each minute when it closes gets detection times that include the bucket width.

Windows: a rule's ``window`` is the bucket width its metric is computed at, per context
(``pilot`` = hourly/daily back-tests, ``drill`` = minute buckets). The engine does not resample;
``evaluate`` skips (and reports) a rule whose window differs from the frame's step, and
``metrics_for_rules`` computes one frame per window a rule set needs.

Modules, one concept each: ``rules`` (schema, durations, loading), ``engine`` (the state machine
and frame replay), ``backtest``, ``rule_tests`` (promtool-style unit tests) and ``exports``
(Grafana and Prometheus). Every public name is re-exported here, so ``from telemetry.alerts
import X`` is the one import the rest of the harness uses.
"""

from telemetry.alerts.backtest import (
    BACKTEST_COLUMNS,
    backtest,
    effective_values,
    is_slack,
    suggest_threshold,
)
from telemetry.alerts.engine import (
    AlertEngine,
    AlertEvaluation,
    AlertEvent,
    Firing,
    RuleStatus,
    evaluate,
    frame_step,
    metrics_for_rules,
)
from telemetry.alerts.exports import (
    DECISION_TABLE,
    DEFAULT_DATASOURCE_UID,
    EVENTS_TABLE,
    PROM_DECISIONS,
    export_grafana,
    export_prometheus,
    exportable,
    grafana_provisioning,
    metric_sql,
    prometheus_expr,
    prometheus_rules,
    prometheus_series,
)
from telemetry.alerts.rule_tests import (
    DEFAULT_TESTS_DIR,
    TEST_EPOCH,
    RuleTestCase,
    RuleTestReport,
    expand_series,
    run_rule_tests,
)
from telemetry.alerts.rules import (
    COMPARATORS,
    CONTEXTS,
    DEFAULT_RULES_PATH,
    AlertRule,
    AlertRulesError,
    Comparator,
    Context,
    Severity,
    State,
    format_duration,
    load_rules,
    parse_duration,
    parse_rules,
)

__all__ = [
    "AlertEngine",
    "AlertEvaluation",
    "AlertEvent",
    "AlertRule",
    "AlertRulesError",
    "BACKTEST_COLUMNS",
    "COMPARATORS",
    "CONTEXTS",
    "Comparator",
    "Context",
    "DECISION_TABLE",
    "DEFAULT_DATASOURCE_UID",
    "DEFAULT_RULES_PATH",
    "DEFAULT_TESTS_DIR",
    "EVENTS_TABLE",
    "Firing",
    "PROM_DECISIONS",
    "RuleStatus",
    "RuleTestCase",
    "RuleTestReport",
    "Severity",
    "State",
    "TEST_EPOCH",
    "backtest",
    "effective_values",
    "evaluate",
    "expand_series",
    "export_grafana",
    "export_prometheus",
    "exportable",
    "format_duration",
    "frame_step",
    "grafana_provisioning",
    "is_slack",
    "load_rules",
    "metric_sql",
    "metrics_for_rules",
    "parse_duration",
    "parse_rules",
    "prometheus_expr",
    "prometheus_rules",
    "prometheus_series",
    "run_rule_tests",
    "suggest_threshold",
]
