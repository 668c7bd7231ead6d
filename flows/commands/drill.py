"""`harness drill ...`: list the built-in fire drills, run one, run the suite; check scenario
files (``validate``) and print their JSON Schema (``schema``).

``run`` and ``suite`` call the drill runner in-process by default: a drill takes a few seconds,
and Prefect's temporary API server would add 11–20 s of start-up to every command (measured on
the 2-core dev box; see the drill engine notes). ``--prefect`` runs the same work through the
``drill`` / ``drill-suite`` flows instead (instant when ``PREFECT_API_URL`` points at a running
server). Exit codes: 0 every guarantee held, 2 a guarantee failed (or the drill aborted because
the system was not steady to begin with), 1 an error. ``validate`` exits 1 for an invalid file:
bad input is an error, never a no-go.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from flows.commands.common import (
    DbOption,
    JsonOption,
    err_console,
    fail,
    quiet_injected_faults,
)
from flows.commands.tables import print_records, print_wrapped
from telemetry.exit_codes import ExitCode

# People's output: this command group's own console, because with --json it is pointed at stderr
# for the command (stdout carries one JSON document) and must not move the shared one.
console = Console(highlight=False)

app = typer.Typer(
    help="Incident fire drills: faults on a virtual clock, guarantees checked, journal written.",
    no_args_is_help=True,
)

# Everything wraps at the terminal width (80 columns in CI logs); paths and ids are moved to the
# next line whole, never split (print_wrapped), so they can be copied.

JunitOption = Annotated[
    Path | None,
    typer.Option("--junit", help="Also write JUnit XML: one testcase per guarantee."),
]
OutOption = Annotated[
    Path, typer.Option("--out", help="Report root: journals go to <out>/drills/<run_id>/.")
]


def _positive(value: float | None, option: str) -> float | None:
    """A rate of 0 or less is a usage error (exit 64), said before anything starts."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"{value:g} is not > 0", param_hint=option)
    return value


QpsOption = Annotated[
    float | None,
    typer.Option(
        "--qps",
        help="Override the scenario's queries per second.",
        show_default=False,
        callback=lambda v: _positive(v, "--qps"),
    ),
]
PrefectOption = Annotated[
    bool,
    typer.Option(
        "--prefect",
        help="Run through the Prefect flow (a temporary API server starts unless "
        "PREFECT_API_URL is set: +11-20 s).",
    ),
]

VERDICT_STYLE = {"passed": "green", "failed": "red", "error": "yellow"}


@app.command("list")
def list_drills() -> None:
    """The built-in scenarios: name, title, faults and guarantees."""
    from drills.scenario import ScenarioError, builtin_scenarios, load_scenario

    rows = []
    for name in builtin_scenarios():
        try:
            sc = load_scenario(name)
        except ScenarioError as exc:
            rows.append([name, f"invalid: {exc.problems[0]}", "", ""])
            continue
        faults = [
            f"{w.type}" + (f" ({w.target.describe()})" if w.target.to_dict() else "")
            for w in sc.timeline()
        ]
        rows.append(
            [
                sc.name,
                sc.title,
                ", ".join(dict.fromkeys(faults)) or "-",
                ", ".join(g.id for g in sc.guarantees),
            ]
        )
    print_records(console, "built-in drills", ("name", "title", "faults", "guarantees"), rows)


@app.command("validate")
def validate(
    files: Annotated[
        list[str],
        typer.Argument(help="Scenario files (or built-in names) to check.", show_default=False),
    ],
    as_json: JsonOption = False,
) -> None:
    """Check scenario files without running them: one line per file, then what is wrong.
    Exit 0 when every file is valid, 1 when one is not."""
    from drills.scenario import ScenarioError, load_scenario

    results = []
    for ref in files:
        try:
            sc = load_scenario(ref)
        except ScenarioError as exc:
            results.append({"file": ref, "valid": False, "problems": exc.problems})
            continue
        results.append(
            {
                "file": ref,
                "valid": True,
                "name": sc.name,
                "scenario_hash": sc.scenario_hash(),
                "failure_mode": sc.failure_mode,
                "faults": len(sc.timeline()),
                "guarantees": len(sc.guarantees),
                "problems": [],
            }
        )
    _to_stderr(as_json)
    _print_validation(results)
    valid = all(r["valid"] for r in results)
    if as_json:
        import json

        console.file = None
        print(json.dumps({"valid": valid, "files": results}))
    raise typer.Exit(ExitCode.OK if valid else ExitCode.ERROR)


def _print_validation(results: list[dict]) -> None:
    for r in results:
        if r["valid"]:
            print_wrapped(
                console,
                Text.assemble(
                    ("ok", "green"),
                    f" {r['file']}: {r['name']}, {r['faults']} fault(s), "
                    f"{r['guarantees']} guarantee(s)"
                    + (f", failure mode {r['failure_mode']}" if r["failure_mode"] else ""),
                ),
                0,
            )
            continue
        n = len(r["problems"])
        print_wrapped(
            console, Text.assemble(("invalid", "red"), f" {r['file']}: {n} problem(s)"), 0
        )
        for line in r["problems"]:
            print_wrapped(console, Text(line), 2)


@app.command("schema")
def schema(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write to this file instead of stdout.", show_default=False),
    ] = None,
    markdown: Annotated[
        bool,
        typer.Option("--markdown", help="The scenario reference (docs/scenarios.md) instead."),
    ] = False,
) -> None:
    """Print the scenario JSON Schema, generated from the scenario models and the registered
    faults, probes, checks and rollbacks (one JSON document)."""
    from drills.docs import render_markdown, render_schema

    text = render_markdown() if markdown else render_schema()
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print_wrapped(err_console, Text(f"wrote {out}"), 0)


@app.command("run")
def run(
    scenario: Annotated[str, typer.Argument(help="A built-in name (see `drill list`) or a path.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and print the plan; send no traffic.")
    ] = False,
    db: DbOption = None,
    out: OutOption = Path("reports/out"),
    semantic: Annotated[
        bool, typer.Option("--semantic", help="Hybrid router (loads MiniLM); default rule-only.")
    ] = False,
    start: Annotated[
        str | None,
        typer.Option("--start", help="Virtual start time (ISO-8601 UTC).", show_default=False),
    ] = None,
    qps: QpsOption = None,
    prefect: PrefectOption = False,
    no_reports: Annotated[
        bool, typer.Option("--no-reports", help="Write the journal only, no postmortem.")
    ] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Real processes over HTTP in wall time: upstream-sim, a fault proxy and "
            "`harness serve` (or --target); the scenario timeline is scaled to <= 4 min.",
        ),
    ] = False,
    target: Annotated[
        str | None,
        typer.Option(
            "--target", help="--live against a running service (its base URL).", show_default=False
        ),
    ] = None,
    proxy_admin: Annotated[
        str | None,
        typer.Option(
            "--proxy-admin",
            help="With --target: admin URL of the fault proxy in front of its upstream.",
            show_default=False,
        ),
    ] = None,
    time_scale: Annotated[
        float | None,
        typer.Option(
            "--time-scale",
            help="--live: virtual seconds per wall second (default: duration / 4 min).",
            show_default=False,
            callback=lambda v: _positive(v, "--time-scale"),
        ),
    ] = None,
    evaluator: Annotated[
        str,
        typer.Option(
            "--evaluator",
            help="--live: who evaluates the alert rules: prometheus (a real Prometheus scrapes "
            "the service), harness (the project's engine), auto (prometheus when on PATH).",
        ),
    ] = "auto",
    junit: JunitOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run one drill; print expected vs actual for every guarantee and the journal path."""
    from drills.scenario import ScenarioError, load_scenario

    try:
        sc = load_scenario(scenario)
    except ScenarioError as exc:
        print_wrapped(err_console, Text.assemble(("error:", "red"), " invalid scenario:"), 0)
        for problem in exc.problems:  # wrapped at the terminal width, the file path whole
            print_wrapped(err_console, Text(problem), 2)
        raise typer.Exit(ExitCode.ERROR) from None
    if dry_run:
        _print_plan(sc, qps)
        return
    if target is not None and not live:
        fail("--target needs --live")
    _to_stderr(as_json)
    if live:
        result = _run_live(sc, out, target, proxy_admin, time_scale, qps, db, evaluator)
        _print_result(result.journal.to_dict(), result.journal_path)
        if not no_reports:
            _reports(result, out, site=True)
        _ci_outputs([result.journal.to_dict()], [result.summary()], junit, as_json)
        raise typer.Exit(result.exit_code)
    if prefect:
        from drills.journal import read_journal
        from flows.drill import run_drill

        with quiet_injected_faults():
            summary = run_drill(
                scenario, db=db, out=str(out), semantic=semantic, start=start, qps=qps
            )
        journal = read_journal(summary["journal_path"])
        _print_result(journal, summary["journal_path"])
        if summary.get("postmortem"):
            print_wrapped(console, Text(f"postmortem: {summary['postmortem']}"), 0)
        _ci_outputs([journal], [summary], junit, as_json)
        raise typer.Exit(summary["exit_code"])
    result = _run_with_progress(sc, db, out, semantic, start, qps)
    _print_result(result.journal.to_dict(), result.journal_path)
    if not no_reports:
        _reports(result, out, site=True)
    _ci_outputs([result.journal.to_dict()], [result.summary()], junit, as_json)
    raise typer.Exit(result.exit_code)


@app.command("suite")
def suite(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Drills to run (default: every built-in).", show_default=False),
    ] = None,
    db: DbOption = None,
    out: OutOption = Path("reports/out"),
    qps: QpsOption = None,
    prefect: PrefectOption = False,
    junit: JunitOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the built-in drills one after another; then the Failure Modes page and the index.
    Exit 0 when every guarantee held, 2 when one did not, 1 when a drill could not run."""
    from drills.scenario import ScenarioError, builtin_scenarios, load_scenario

    names = list(names) if names else list(builtin_scenarios())
    _to_stderr(as_json)
    if prefect:
        from flows.drill import drill_suite

        with quiet_injected_faults():
            result = drill_suite(names, db=db, out=str(out), qps=qps)
        rows = result["drills"]
    else:
        rows = []
        for name in names:
            try:
                sc = load_scenario(name)
            except ScenarioError as exc:
                err_console.print(f"[red]invalid scenario[/red] {name}: {exc}")
                rows.append({"name": name, "status": "error", "passed": False, "exit_code": 1})
                continue
            res = _run_with_progress(sc, db, out, False, None, qps)
            _reports(res, out, site=False)
            rows.append(res.summary())
        _site(out)
    print_records(
        console,
        "drill suite",
        ("drill", "status", "guarantees", "score", "wall s", "journal"),
        [
            [
                r.get("name", "?"),
                Text(str(r.get("status")), style="green" if r.get("passed") else "red"),
                f"{r.get('guarantees_passed', '-')}/{r.get('guarantees', '-')}",
                f"{r['resilience_score']:.2f}" if "resilience_score" in r else "-",
                f"{r['wall_seconds']:.1f}" if "wall_seconds" in r else "-",
                str(r.get("journal_path", r.get("error", ""))),
            ]
            for r in rows
        ],
    )
    from drills.journal import read_journal

    journals = []
    for r in rows:
        if r.get("journal_path"):
            journals.append(read_journal(r["journal_path"]))
        else:  # could not run: an error case of its own
            journals.append(
                {
                    "name": r.get("name", "?"),
                    "status": "error",
                    "guarantees": [],
                    "error": r.get("error", "invalid scenario"),
                }
            )
    _ci_outputs(journals, rows, junit, as_json)
    codes = [r.get("exit_code", 1) for r in rows]
    worst = (ExitCode.ERROR, ExitCode.FAILED_CHECK)
    raise typer.Exit(next((c for c in worst if c in codes), ExitCode.OK))


# ----------------------------------------------------------------------------- helpers


def _to_stderr(as_json: bool) -> None:
    """With --json, stdout carries one JSON document: the people's output goes to stderr."""
    if as_json:
        console.file = sys.stderr


def _ci_outputs(journals: list[dict], summaries: list[dict], junit: Path | None, as_json: bool):
    """JUnit XML (one testsuite per drill) and the JSON summary on stdout."""
    if junit is not None:
        from reports.junit import drill_cases, write_junit

        write_junit(junit, {f"drill {j['name']}": drill_cases(j) for j in journals})
        print_wrapped(console, Text(f"JUnit: {junit}"), 0)
    if as_json:
        import json

        doc = {
            "passed": all(s.get("passed") for s in summaries),
            "drills": [
                {
                    **s,
                    "guarantees_detail": [
                        {k: g.get(k) for k in ("id", "verdict", "expected_text", "actual_text")}
                        for g in j.get("guarantees", [])
                    ],
                }
                for s, j in zip(summaries, journals, strict=True)
            ],
        }
        console.file = None  # back to stdout (the default) for whatever runs next in-process
        print(json.dumps(doc, default=str))


def _run_with_progress(
    sc: Any, db: str | None, out: Path, semantic: bool, start: str | None, qps: float | None
) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from drills.runner import run_scenario
    from telemetry.errors import TelemetryError

    minutes = int(sc.duration // 60)
    with (
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} virtual min"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as progress,
        quiet_injected_faults(),
    ):
        task = progress.add_task(f"drill {sc.name}", total=minutes)
        try:
            return run_scenario(
                sc,
                db=db,
                out=out,
                semantic=True if semantic else None,
                start=start,
                qps=qps,
                progress=lambda done, total: progress.update(task, completed=done / 60),
            )
        except (TelemetryError, ValueError) as exc:
            fail(str(exc))


def _run_live(sc, out, target, proxy_admin, time_scale, qps, db, evaluator="auto") -> Any:
    from live.drill import LiveDrillError, default_scale, run_live
    from live.procs import ProcessStartError

    scale = time_scale or default_scale(sc.duration)
    err_console.print(
        f"live drill {sc.name}: {sc.duration / scale:.0f} s wall (time scale {scale:g}), "
        + (f"target {target}" if target else "starting upstream-sim, fault proxy and serve")
    )
    try:
        return run_live(
            sc,
            out=out,
            time_scale=scale,
            qps=qps,
            target=target,
            proxy_admin=proxy_admin,
            db=db,
            evaluator=evaluator,
        )
    except (LiveDrillError, ProcessStartError, ValueError) as exc:
        fail(str(exc))


def _print_plan(sc: Any, qps: float | None) -> None:
    from drills.clock import format_duration

    rate = qps or sc.traffic.qps
    console.print(
        f"[bold]{sc.name}[/bold] — {sc.title}\n"
        f"{format_duration(sc.duration)} virtual at {rate:g} qps "
        f"({int(round(rate * sc.duration)):,} queries), toggle {sc.execution_mode!r}, "
        f"scenario hash {sc.scenario_hash()}  [dim](dry run: no traffic sent)[/dim]"
    )
    plan = Table(title="plan (virtual time)")
    plan.add_column("at", justify="right", no_wrap=True)
    plan.add_column("what", no_wrap=True)
    plan.add_column("detail", overflow="fold")
    for offset, kind, text in sc.plan():
        plan.add_row(f"+{format_duration(offset)}", kind, text)
    console.print(plan)
    rules = {r.name: r.condition for r in sc.inline_rules}
    if rules:
        console.print("scenario alert rules: " + "; ".join(f"{k} ({v})" for k, v in rules.items()))
    print_records(
        console,
        "guarantees",
        ("id", "check", "params", "expect", "weight"),
        [
            [spec.id, spec.check, _kv(spec.params), _kv(spec.expect), f"{spec.weight:g}"]
            for spec in sc.guarantees
        ],
    )


def _kv(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "-"


def _print_result(j: dict, journal_path: Any) -> None:
    """Expected vs actual for every guarantee, from the journal (the same for both paths)."""
    table = Table(title=f"drill {j['name']} — {j['title']}")
    table.add_column("guarantee", no_wrap=True)
    table.add_column("expected", overflow="fold")
    table.add_column("actual", overflow="fold")
    table.add_column("verdict", no_wrap=True)
    for g in j["guarantees"]:
        style = VERDICT_STYLE.get(g["verdict"], "")
        table.add_row(g["id"], g["expected_text"], g["actual_text"], f"[{style}]{g['verdict']}[/]")
    console.print(table)
    held = sum(g["verdict"] == "passed" for g in j["guarantees"])
    passed = j["status"] == "completed" and held == len(j["guarantees"])
    impact = j["impact"]
    console.print(
        f"[{'green' if passed else 'red'}]{j['status']}[/]: {held}/{len(j['guarantees'])} "
        f"guarantees held, resilience score {j['resilience_score']:.2f}"
        + (", steady state NOT restored (deviated)" if j["deviated"] else "")
        + f"; {impact['decisions']:,} decisions, {impact['telemetry_rows']:,} telemetry rows; "
        f"{j['wall_seconds']:.1f} s wall for {j['started_at']} → {j['ended_at']} virtual"
    )
    if j.get("error"):
        console.print(f"[red]error:[/red] {j['error']}")
    det, mit = j["detection"], j["mitigation"]
    if det.get("alert"):
        console.print(
            f"detection: {det['alert']} at {det['fired_at']} "
            f"({det['time_to_detect_s']:.0f} s after the fault)"
        )
    if mit.get("how"):
        console.print(f"mitigation: {mit['how']} ({mit['time_to_mitigate_s']:.1f} s)")
    print_wrapped(console, Text(f"journal: {journal_path}"), 0)


def _reports(result: Any, out: Path, *, site: bool) -> None:
    from reports.drill_pages import build_postmortem_page

    try:
        page = build_postmortem_page(result.journal_path, out)
    except Exception as exc:  # noqa: BLE001 - the journal is written; a report bug is reported
        err_console.print(f"[yellow]postmortem not built:[/yellow] {type(exc).__name__}: {exc}")
        return
    if page:
        print_wrapped(console, Text(f"postmortem: {page}"), 0)
    if site:
        _site(out)


def _site(out: Path) -> None:
    from reports.drill_pages import build_drill_site

    try:
        built = build_drill_site(out)
    except Exception as exc:  # noqa: BLE001
        err_console.print(f"[yellow]site not rebuilt:[/yellow] {type(exc).__name__}: {exc}")
        return
    for page in built:
        print_wrapped(console, Text(f"report: {page}"), 0)
