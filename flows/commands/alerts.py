"""`harness alerts ...`: list the alert rules, run their promtool-style unit tests, export them to
Grafana. ``telemetry.alerts`` (pandas, pydantic) is imported inside the commands so that
``harness --help`` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.commands.common import console, fail
from flows.commands.tables import print_records
from telemetry.exit_codes import ExitCode

app = typer.Typer(
    help="Alert rules: list them, run their unit tests, export them to Grafana.",
    no_args_is_help=True,
)

RulesOption = Annotated[
    Path | None,
    typer.Option("--rules", help="Rules file (default: the packaged telemetry/alert_rules.yaml)."),
]
ContextOption = Annotated[
    str,
    typer.Option("--context", help="pilot (hourly/daily buckets) or drill (minute buckets)."),
]


def _check_context(context: str) -> None:
    if context not in ("pilot", "drill"):
        raise typer.BadParameter(f"{context!r}; valid: pilot, drill", param_hint="--context")


@app.command("list")
def list_rules(rules: RulesOption = None, context: ContextOption = "pilot") -> None:
    """Print the alert rules as they apply in one context."""
    from telemetry.alerts import AlertRulesError, format_duration, load_rules

    _check_context(context)
    try:
        loaded = load_rules(rules)
    except AlertRulesError as exc:
        fail(str(exc))
    rows = []
    for r in loaded:
        if not r.applies(context):
            rows.append([r.name, r.condition, "-", "-", "-", r.severity, f"(not in {context})"])
            continue
        rows.append(
            [
                r.name,
                r.condition,
                format_duration(r.window_for(context)),
                format_duration(r.for_duration(context)),
                str(r.min_queries or ""),
                r.severity,
                r.summary,
            ]
        )
    print_records(
        console,
        f"alert rules ({context})",
        ["name", "condition", "window", "for", "min queries", "severity", "summary"],
        rows,
    )


@app.command("test")
def test_rules(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Rule-test YAML files or directories (default: the packaged tests)."),
    ] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write the results as JUnit XML here.")
    ] = None,
) -> None:
    """Run promtool-style alert rule tests; exit 0 when all pass, 2 when one fails, 1 on an
    invalid file."""
    from telemetry.alerts import AlertRulesError, RuleTestReport, run_rule_tests

    report = RuleTestReport([])
    try:
        for p in paths or [None]:
            report.cases += run_rule_tests(p).cases
    except AlertRulesError as exc:
        fail(str(exc))
    print_records(
        console,
        "alert rule tests",
        ["test", "result", "alert", "at", "context", "expected", "got"],
        [
            [
                c.test,
                "pass" if c.passed else "FAIL",
                c.alertname,
                c.eval_time,
                c.context,
                c.expected,
                c.actual,
            ]
            for c in report.cases
        ],
    )
    if junit is not None:
        from reports.junit import JUnitCase, write_junit

        write_junit(
            junit,
            {
                "alert rule tests": [
                    JUnitCase(
                        name=f"{c.test}: {c.alertname} at {c.eval_time} ({c.context})",
                        classname=f"alerts.{Path(c.file).stem}",
                        failure=None if c.passed else f"expected {c.expected}, got {c.actual}",
                    )
                    for c in report.cases
                ]
            },
        )
        console.print(f"JUnit: {junit}", markup=False, soft_wrap=True)
    failed = len(report.failures)
    console.print(f"{len(report.cases) - failed} passed, {failed} failed")
    raise typer.Exit(ExitCode.OK if report.passed else ExitCode.FAILED_CHECK)


@app.command("export")
def export(
    grafana: Annotated[
        Path | None,
        typer.Option("--grafana", help="Write Grafana alert-rule provisioning YAML to this file."),
    ] = None,
    prometheus: Annotated[
        Path | None,
        typer.Option(
            "--prometheus",
            help="Write Prometheus rules (PromQL over `harness serve` /metrics) to this file, and "
            "the rule tests as promtool test files next to it.",
        ),
    ] = None,
    rules: RulesOption = None,
    context: Annotated[
        str | None,
        typer.Option(
            "--context",
            help="pilot (hourly/daily) or drill (minute windows). Default: pilot for Grafana, "
            "drill for Prometheus.",
            show_default=False,
        ),
    ] = None,
    datasource_uid: Annotated[
        str, typer.Option("--datasource-uid", help="UID of the PostgreSQL datasource in Grafana.")
    ] = "amaima-postgres",
    folder: Annotated[str, typer.Option("--folder", help="Grafana folder title.")] = "AMAIMA",
) -> None:
    """Export the rules as Grafana provisioning (SQL over decision_telemetry) and/or Prometheus
    alerting rules (PromQL over the service's metrics) with promtool tests."""
    from telemetry.alerts import (
        AlertRulesError,
        export_grafana,
        export_prometheus,
        exportable,
        load_rules,
    )

    if grafana is None and prometheus is None:
        from flows.commands.common import fail

        fail("give --grafana FILE and/or --prometheus FILE")
    if context is not None:
        _check_context(context)
    try:
        loaded = load_rules(rules)
    except AlertRulesError as exc:
        fail(str(exc))
    if grafana is not None:
        ctx = context or "pilot"
        path = export_grafana(
            grafana, loaded, context=ctx, datasource_uid=datasource_uid, folder=folder
        )
        n = sum(exportable(r, ctx) for r in loaded)
        console.print(f"wrote {n} Grafana alert rules ({ctx}) to {path}")
        skipped = [r.name for r in loaded if r.applies(ctx) and not exportable(r, ctx)]
        if skipped:
            console.print(
                f"not exported: {', '.join(skipped)} (counted in the local spool while the "
                "database fails; watch `harness telemetry status`)"
            )
    if prometheus is not None:
        ctx = context or "drill"
        try:
            path, tests, skipped = export_prometheus(prometheus, loaded, context=ctx)
        except (OSError, AlertRulesError) as exc:
            fail(str(exc))
        n = len(loaded) - len(skipped)
        console.print(f"wrote {n} Prometheus alerting rules ({ctx}) to {path}")
        for t in tests:
            console.print(f"promtool tests: {t}  (run: promtool test rules {t})")
        if skipped:
            console.print("not exported: " + "; ".join(skipped))
