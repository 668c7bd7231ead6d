"""Exports of the rules: Grafana provisioning (SQL over ``decision_telemetry``) and Prometheus
alerting rules (PromQL over the live service's metrics) with promtool tests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from telemetry.alerts.rule_tests import DEFAULT_TESTS_DIR, _expected_labels, _test_files, _TestFile
from telemetry.alerts.rules import (
    AlertRule,
    _load_yaml,
    format_duration,
    load_rules,
    parse_duration,
)
from telemetry.metric_registry import INTERACTIVE_TIERS, METRICS, PROM_DECISIONS, promql  # noqa: F401
from telemetry.metrics import EVENT_COLUMNS

# ----------------------------------------------------------------------------- Grafana export

DEFAULT_DATASOURCE_UID = "amaima-postgres"
DECISION_TABLE = "decision_telemetry"
EVENTS_TABLE = "telemetry_events"

_GRAFANA_EVALUATOR = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "==": "eq", "!=": "ne"}
_EVENT_KINDS = {column: kind for kind, column in EVENT_COLUMNS.items()}


def _sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def metric_sql(
    metric: str,
    window: pd.Timedelta,
    *,
    min_queries: int = 0,
    interactive_tiers: Sequence[str] = INTERACTIVE_TIERS,
    table: str = DECISION_TABLE,
    events_table: str = EVENTS_TABLE,
) -> str:
    """``SELECT now() AS time, <metric> AS value`` over the last ``window`` (PostgreSQL)."""
    secs = int(pd.Timedelta(window).total_seconds())
    since = f"now() - interval '{secs} seconds'"
    if metric in _EVENT_KINDS:
        return (
            f"SELECT now() AS time, coalesce(sum(value), 0) AS value FROM {events_table} "
            f"WHERE kind = {_sql_literal(_EVENT_KINDS[metric])} AND ts > {since}"
        )
    m = METRICS.get(metric)
    if m is None or m.kind != "bucket":
        raise ValueError(f"no SQL for metric {metric!r}")
    if m.agg == "p95_worst_tier":
        return (
            f"SELECT now() AS time, max(p) AS value FROM (SELECT {m.sql(interactive_tiers)} AS p "
            f"FROM {table} WHERE ts > {since} GROUP BY model_tier) AS per_tier"
        )
    if m.agg == "drop_vs_day_before":
        before = f"now() - interval '{secs + 86400} seconds'"
        return (
            "SELECT now() AS time, 100.0 * (prev.m - cur.m) / NULLIF(prev.m, 0) AS value FROM "
            f"(SELECT avg(confidence_overall) AS m FROM {table} WHERE ts > {since}) AS cur, "
            f"(SELECT avg(confidence_overall) AS m FROM {table} "
            f"WHERE ts > {before} AND ts <= {since}) AS prev"
        )
    expr = m.sql(interactive_tiers)
    if min_queries:
        expr = f"CASE WHEN count(*) >= {int(min_queries)} THEN {expr} END"
    return f"SELECT now() AS time, {expr} AS value FROM {table} WHERE ts > {since}"


def _grafana_uid(name: str) -> str:
    uid = f"amaima-{name}".replace("_", "-")
    if len(uid) <= 40:
        return uid
    return uid[:31] + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]


def grafana_provisioning(
    rules: Sequence[AlertRule],
    *,
    context: str = "pilot",
    datasource_uid: str = DEFAULT_DATASOURCE_UID,
    folder: str = "AMAIMA",
    org_id: int = 1,
    interactive_tiers: Sequence[str] = INTERACTIVE_TIERS,
    events_table: str = EVENTS_TABLE,
) -> dict[str, Any]:
    """Grafana file-provisioning document (``apiVersion: 1``, ``groups``) for the rules that apply
    to ``context``: per rule a PostgreSQL query (A), a reduce-last (B) and a threshold (C).
    No data counts as OK, matching the engine's "NaN is condition false"."""
    expr_ds = {"type": "__expr__", "uid": "__expr__"}
    groups: dict[pd.Timedelta, list[dict[str, Any]]] = {}
    for rule in rules:
        if not exportable(rule, context):
            continue
        window = rule.window_for(context)
        lookback = window + pd.Timedelta(days=1 if rule.metric == "confidence_drop_pct" else 0)
        sql = metric_sql(
            rule.metric,
            window,
            min_queries=rule.min_queries,
            interactive_tiers=interactive_tiers,
            events_table=events_table,
        )
        groups.setdefault(window, []).append(
            {
                "uid": _grafana_uid(rule.name),
                "title": rule.name,
                "condition": "C",
                "data": [
                    {
                        "refId": "A",
                        "relativeTimeRange": {"from": int(lookback.total_seconds()), "to": 0},
                        "datasourceUid": datasource_uid,
                        "model": {
                            "refId": "A",
                            "datasource": {
                                "type": "grafana-postgresql-datasource",
                                "uid": datasource_uid,
                            },
                            "editorMode": "code",
                            "format": "table",
                            "rawQuery": True,
                            "rawSql": sql,
                            "intervalMs": 1000,
                            "maxDataPoints": 43200,
                        },
                    },
                    {
                        "refId": "B",
                        "relativeTimeRange": {"from": 0, "to": 0},
                        "datasourceUid": "__expr__",
                        "model": {
                            "refId": "B",
                            "datasource": expr_ds,
                            "type": "reduce",
                            "expression": "A",
                            "reducer": "last",
                            "settings": {"mode": "dropNN"},
                        },
                    },
                    {
                        "refId": "C",
                        "relativeTimeRange": {"from": 0, "to": 0},
                        "datasourceUid": "__expr__",
                        "model": {
                            "refId": "C",
                            "datasource": expr_ds,
                            "type": "threshold",
                            "expression": "B",
                            "conditions": [
                                {
                                    "evaluator": {
                                        "type": _GRAFANA_EVALUATOR[rule.comparator],
                                        "params": [rule.threshold],
                                    }
                                }
                            ],
                        },
                    },
                ],
                "noDataState": "OK",
                "execErrState": "Error",
                "for": format_duration(rule.for_duration(context)),
                "isPaused": False,
                "labels": {"severity": rule.severity, "source": "amaima-harness"},
                "annotations": {
                    "summary": rule.summary,
                    "description": (
                        f"{rule.condition} over the last {format_duration(window)}"
                        + (f" (at least {rule.min_queries} queries)" if rule.min_queries else "")
                    ),
                },
            }
        )
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": org_id,
                "name": f"amaima-{context}-{format_duration(window)}",
                "folder": folder,
                "interval": "1m" if window <= pd.Timedelta(hours=1) else "5m",
                "rules": group_rules,
            }
            for window, group_rules in sorted(groups.items())
        ],
    }


class _PlainDumper(yaml.SafeDumper):
    """No anchors/aliases: provisioning files are read and diffed by people."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def exportable(rule: AlertRule, context: str) -> bool:
    """Rules Grafana can evaluate from decision_telemetry. Event metrics (telemetry write
    failures, spooled rows) are not: when writes fail they are counted in the harness's spool,
    not in the database that is failing. Watch those with `harness telemetry status`."""
    return rule.applies(context) and rule.metric not in _EVENT_KINDS


def export_grafana(
    path: str | Path, rules: Sequence[AlertRule] | None = None, **options: Any
) -> Path:
    """Write ``grafana_provisioning(...)`` as YAML (drop it in provisioning/alerting/)."""
    rules = load_rules() if rules is None else rules
    doc = grafana_provisioning(rules, **options)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Generated by `harness alerts export --grafana` from the AMAIMA alert rules.\n"
        "# Grafana alert-rule file provisioning (apiVersion 1); datasource: PostgreSQL with the\n"
        f"# {DECISION_TABLE} table.\n"
    )
    skipped = [
        r.name
        for r in rules
        if r.applies(options.get("context", "pilot"))
        and not exportable(r, options.get("context", "pilot"))
    ]
    if skipped:
        header += (
            f"# Not exported: {', '.join(skipped)} -- its signal is counted in the harness's local\n"
            "# spool while the database is failing; watch `harness telemetry status` instead.\n"
        )
    body = yaml.dump(doc, Dumper=_PlainDumper, sort_keys=False, width=1000)
    path.write_text(header + body, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- Prometheus export
#
# The live service (`harness serve`) exposes counters and histograms (live/metrics.py). Each rule
# metric becomes a *recording rule* ``amaima:<metric>:<window>`` over those series, with the same
# definition as ``telemetry.metrics`` (shares of executed rows, p95 of rows that reached a model,
# worst tier, interactive tiers); each rule becomes an *alerting rule* over its recorded series,
# with ``min_queries`` as ``and on() amaima:queries:<window> >= N``. The promtool-style tests are
# exported with their input series renamed to the recorded series, so the real
# ``promtool test rules`` checks the same expectations as ``harness alerts test``.


def prometheus_series(metric: str, window: timedelta | pd.Timedelta) -> str:
    """The recorded series name of a rule metric at a window (``amaima:error_rate:1m``)."""
    return f"amaima:{metric}:{format_duration(window)}"


def prometheus_expr(
    metric: str,
    window: timedelta | pd.Timedelta,
    interactive_tiers: Sequence[str] = INTERACTIVE_TIERS,
) -> str | None:
    """PromQL for one rule metric over the service's series, or None if it has no PromQL form
    (the median: no exact form over counters). Declared in ``telemetry.metric_registry``."""
    return promql(metric, format_duration(window), interactive_tiers)


def prometheus_rules(
    rules: Sequence[AlertRule] | None = None,
    *,
    context: str = "drill",
    interactive_tiers: Sequence[str] = INTERACTIVE_TIERS,
) -> tuple[dict[str, Any], list[str]]:
    """(Prometheus rules document, names of rules not exported with the reason)."""
    rules = load_rules() if rules is None else rules
    recording: dict[str, str] = {}
    alerting = []
    skipped = []
    for r in rules:
        if not r.applies(context):
            skipped.append(f"{r.name} (not in the {context} context)")
            continue
        w = r.window_for(context)
        expr = prometheus_expr(r.metric, w, interactive_tiers)
        if expr is None:
            skipped.append(f"{r.name} ({r.metric} has no PromQL form over the service's counters)")
            continue
        series = prometheus_series(r.metric, w)
        recording[series] = expr
        cond = f"{series} {r.comparator} {r.threshold:g}"
        if r.min_queries:
            q = prometheus_series("queries", w)
            recording[q] = prometheus_expr("queries", w)
            cond = f"{cond} and on() {q} >= {r.min_queries}"
        alerting.append(
            {
                "alert": r.name,
                "expr": cond,
                "for": format_duration(r.for_duration(context)),
                "labels": {"severity": r.severity, "metric": r.metric, "context": context},
                "annotations": {"summary": r.summary},
            }
        )
    doc = {
        "groups": [
            {
                "name": f"amaima-recording-{context}",
                "rules": [{"record": k, "expr": v} for k, v in sorted(recording.items())],
            },
            {"name": f"amaima-alerts-{context}", "rules": alerting},
        ]
    }
    return doc, skipped


def _promtool_tests(
    rules: Sequence[AlertRule], context: str, rule_file: str, tests_path: Path | None
) -> dict[str, dict[str, Any]]:
    """The packaged rule tests of ``context`` as promtool test files, one per evaluation
    interval (promtool has one per file): {interval: document}."""
    by_name = {r.name: r for r in rules}
    files: dict[str, dict[str, Any]] = {}
    for file in _test_files(tests_path or DEFAULT_TESTS_DIR):
        spec = _TestFile.model_validate(_load_yaml(file))
        for t in spec.tests:
            if (t.context or spec.context) != context:
                continue
            interval = parse_duration(t.evaluation_interval or spec.evaluation_interval)
            windows = {
                by_name[c.alertname].metric: by_name[c.alertname].window_for(context)
                for c in t.alert_rule_test
                if c.alertname in by_name and by_name[c.alertname].applies(context)
            }
            default_w = next(iter(windows.values()), interval)
            series = [
                {
                    "series": prometheus_series(s.metric, windows.get(s.metric, default_w)),
                    "values": str(s.values),
                }
                for s in t.input_series
            ]
            cases = []
            for c in t.alert_rule_test:
                rule = by_name.get(c.alertname)
                if rule is None:
                    continue  # a rule this export leaves out (said so in the rules file)
                exp = []
                for e in c.exp_alerts:
                    labels, ann = _expected_labels(e)
                    labels.pop("alertname", None)
                    labels = {
                        "severity": rule.severity, "metric": rule.metric, "context": context,
                        **labels,
                    }  # fmt: skip
                    ann = {"summary": rule.summary, **ann}
                    exp.append({"exp_labels": labels, "exp_annotations": ann})
                cases.append(
                    {
                        "eval_time": format_duration(parse_duration(c.eval_time)),
                        "alertname": c.alertname,
                        "exp_alerts": exp,
                    }
                )
            if not cases:
                continue
            key = format_duration(interval)
            doc = files.setdefault(
                key, {"rule_files": [rule_file], "evaluation_interval": key, "tests": []}
            )
            doc["tests"].append(
                {"name": t.name, "interval": key, "input_series": series, "alert_rule_test": cases}
            )
    return files


def export_prometheus(
    path: str | Path,
    rules: Sequence[AlertRule] | None = None,
    *,
    context: str = "drill",
    tests: bool = True,
    tests_path: str | Path | None = None,
) -> tuple[Path, list[Path], list[str]]:
    """Write the Prometheus rules file and (``tests``) promtool test files next to it
    (``<stem>_test[_<interval>].yml``). Returns (rules path, test paths, skipped rules)."""
    rules = load_rules() if rules is None else list(rules)
    doc, skipped = prometheus_rules(rules, context=context)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Generated by `harness alerts export --prometheus` from the AMAIMA alert rules\n"
        f"# (context {context}). PromQL over the metrics of `harness serve` (/metrics): recording\n"
        "# rules amaima:<metric>:<window> follow telemetry/metrics.py; alerting rules compare them.\n"
    )
    if skipped:
        header += "# Not exported: " + "; ".join(skipped) + ".\n"
    body = yaml.dump(doc, Dumper=_PlainDumper, sort_keys=False, width=1000)
    path.write_text(header + body, encoding="utf-8")
    written: list[Path] = []
    if tests:
        exported = [
            r
            for r in rules
            if r.applies(context) and prometheus_expr(r.metric, r.window_for(context)) is not None
        ]
        files = _promtool_tests(
            exported, context, path.name, Path(tests_path) if tests_path else None
        )
        for i, (interval, tdoc) in enumerate(sorted(files.items())):
            name = f"{path.stem}_test{'' if i == 0 else '_' + interval}.yml"
            tp = path.with_name(name)
            tp.write_text(
                "# promtool test rules "
                + name
                + " -- generated from telemetry/alert_tests\n"
                + yaml.dump(tdoc, Dumper=_PlainDumper, sort_keys=False, width=1000),
                encoding="utf-8",
            )
            written.append(tp)
    return path, written, skipped
