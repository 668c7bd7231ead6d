"""`harness pilot ...`: run a decision-only pilot week, re-render or recompute its report,
calibrate thresholds from its stored scores, compare two runs.

Exit codes (telemetry.exit_codes.ExitCode): 0 go / ok, 1 error, 2 no-go, 3 inconclusive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.commands.common import (
    DbOption,
    JsonOption,
    console,
    err_console,
    fail,
    quiet_prefect_tracebacks,
)
from telemetry.exit_codes import VERDICT_EXIT, ExitCode

app = typer.Typer(
    help="Decision-only pilot weeks: replay a corpus, get a go / no-go / inconclusive verdict.",
    no_args_is_help=True,
)

STATUS_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow", "not_applicable": "dim"}
VERDICT_STYLE = {"go": "green", "no-go": "red", "inconclusive": "yellow"}


@app.command("run")
def run(
    corpus: Annotated[Path, typer.Option("--corpus", help="Corpus file (.parquet, .csv, .jsonl).")],
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="Days to replay.")] = 7,
    start: Annotated[
        str | None,
        typer.Option("--start", help="First day (YYYY-MM-DD); default: the last DAYS days."),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Router config YAML.")] = None,
    compare_config: Annotated[
        Path | None,
        typer.Option("--compare-config", help="Candidate config for a shadow comparison."),
    ] = None,
    db: DbOption = None,
    out: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("reports/out"),
    rule_only: Annotated[
        bool, typer.Option("--rule-only", help="Rule-only router (no MiniLM).")
    ] = False,
    series: Annotated[
        str, typer.Option("--series", help="Run-id prefix of this pilot series.")
    ] = "pilot",
    fmt: Annotated[
        str | None, typer.Option("--format", help="Force parquet, csv or jsonl.")
    ] = None,
    as_json: JsonOption = False,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="Route and write on Dask: local[:N] worker processes here, or tcp://HOST:PORT "
            "(an existing scheduler; needs a PostgreSQL --db).",
        ),
    ] = None,
    shard_rows: Annotated[
        int,
        typer.Option("--shard-rows", min=100, help="Rows per day × shard partition (--cluster)."),
    ] = 20_000,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="Shadow a deployed router: replay against URL's POST /v1/simulate instead of "
            "routing in process.",
        ),
    ] = None,
) -> None:
    """Replay DAYS days of CORPUS in decision-only mode. Exit 0 go, 2 no-go, 3 inconclusive,
    1 error."""
    # Whole-input problems are reported before a Prefect server starts, without a traceback.
    from data.corpus import CorpusError, detect_format
    from flows.progress import rich_progress
    from flows.staging import RunBusyError
    from live.shadow import ShadowTargetError
    from router.config import ConfigError
    from telemetry.errors import TelemetryError as HarnessTelemetryError
    from telemetry.run_identity import RunIdentityError, check_series

    try:
        check_series(series)
    except RunIdentityError as exc:
        fail(str(exc), ExitCode.ERROR)
    if start is not None:
        from datetime import date

        try:
            date.fromisoformat(start)
        except ValueError:
            fail(f"--start {start!r} is not a date (YYYY-MM-DD)", ExitCode.ERROR)
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file; give a folder for the reports", ExitCode.ERROR)
    try:
        detect_format(corpus, fmt)
    except CorpusError as exc:
        fail(str(exc), ExitCode.ERROR)
    if not corpus.is_file():
        fail(f"corpus file not found: {corpus}", ExitCode.ERROR)
    for label, path in (("config", config), ("compare config", compare_config)):
        if path is not None:
            try:
                from router.config import load_config

                load_config(path)
            except ConfigError as exc:
                fail(f"{label}: {exc}", ExitCode.ERROR)
    try:
        from flows import interrupt
        from flows.pilot import pilot_week

        interrupt.install()
        with rich_progress(err_console if as_json else console), quiet_prefect_tracebacks():
            outcome = pilot_week(
                corpus=str(corpus),
                start=start,
                days=days,
                config=str(config) if config else None,
                compare_config=str(compare_config) if compare_config else None,
                db=db,
                out=str(out),
                series=series,
                semantic=False if rule_only else None,
                format=fmt,
                target=target,
                cluster=cluster,
                shard_rows=shard_rows,
            )
    except (
        CorpusError,
        ConfigError,
        ValueError,
        OSError,
        RunBusyError,
        HarnessTelemetryError,
        ShadowTargetError,
    ) as exc:
        fail(str(exc), ExitCode.ERROR)
    _finish(outcome, as_json)


@app.command("report")
def report(
    run_id: Annotated[str, typer.Argument(help="The pilot run id.")],
    out: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("reports/out"),
    db: DbOption = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Router config YAML (with --recompute).")
    ] = None,
    recompute: Annotated[
        bool,
        typer.Option(
            "--recompute",
            help="Recompute from stored telemetry and print every difference from the stored "
            "evidence (default: re-render the stored evidence as the run decided it).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Re-render a pilot's report from the evidence stored with the run (same verdict)."""
    from flows.pilot_report import recompute_pilot_report, rerender_pilot_report
    from telemetry.errors import StoreUnavailableError

    try:
        if recompute:
            outcome, diffs = recompute_pilot_report(
                run_id, out=out, db=db, config=str(config) if config else None
            )
            outcome["differences"] = diffs
            target = err_console if as_json else console
            if diffs:
                target.print(f"[yellow]{len(diffs)} differences from the stored evidence:[/yellow]")
                for d in diffs:
                    target.print(f"  - {d}", markup=False)
            else:
                target.print("recomputed evidence matches the stored evidence")
        else:
            outcome = rerender_pilot_report(run_id, out=out, db=db)
    except (LookupError, ValueError, StoreUnavailableError) as exc:  # evidence errors: ValueError
        fail(str(exc), ExitCode.ERROR)
    _finish(outcome, as_json)


@app.command("calibrate")
def calibrate(
    run_id: Annotated[str, typer.Argument(help="The pilot run whose stored scores to sweep.")],
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the candidate router config (YAML).")
    ] = Path("candidate.yaml"),
    db: DbOption = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="The run's router config (default config).")
    ] = None,
    reports_out: Annotated[
        Path, typer.Option("--reports", help="Report folder for the calibration page.")
    ] = Path("reports/out"),
    as_json: JsonOption = False,
) -> None:
    """Sweep level thresholds and borderline band on RUN_ID's stored scores; write the cheapest
    config that meets every critical criterion. Exit 0 when written, 2 when none meets them."""
    import json

    from flows.calibrate import CalibrationError, run_calibration

    if out.exists() and out.is_dir():
        fail(f"--out {out} is a folder; give a file name such as candidate.yaml", ExitCode.ERROR)
    try:
        result, page = run_calibration(
            run_id, out=out, db=db, config=str(config) if config else None, reports_out=reports_out
        )
    except CalibrationError as exc:
        fail(str(exc), ExitCode.ERROR)
    target = err_console if as_json else console
    for name, p in (("current", result["current"]), ("proposed", result["proposed"])):
        if p is None:
            continue
        target.print(f"{name}:", markup=False)
        target.print(f"  thresholds {p['thresholds'][1:]}, band {p['band']}", markup=False)
        down = "" if p["downgrade_rate"] is None else f", downgrade {p['downgrade_rate']:.2%}"
        target.print(f"  borderline {p['borderline_rate']:.2%}{down}", markup=False)
        target.print(f"  estimated cost ${p['cost_usd']:,.4f}", markup=False)
    target.print(result["message"], markup=False)
    if result["proposed"]:
        target.print(f"candidate config: {out}", markup=False, soft_wrap=True)
    target.print(f"calibration page: {page}", markup=False, soft_wrap=True)
    if as_json:
        print(
            json.dumps(
                {
                    **result,
                    "points": len(result["points"]),
                    "candidate": str(out) if result["proposed"] else None,
                    "page": str(page),
                }
            )
        )
    raise typer.Exit(ExitCode.GO if result["proposed"] else ExitCode.NO_GO)


@app.command("compare")
def compare(
    run_a: Annotated[str, typer.Argument(help="The baseline run (e.g. last week).")],
    run_b: Annotated[str, typer.Argument(help="The run to judge against it.")],
    db: DbOption = None,
    out: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("reports/out"),
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0.0, max=10.0, help="Relative effect size ignored.")
    ] = 0.10,
    min_points: Annotated[
        int, typer.Option("--min-points", min=2, help="Judged hours a metric needs.")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """Judge RUN_B against RUN_A per metric (Mann–Whitney on hourly series, effect-size
    tolerance, critical veto). Exit 0 pass, 2 fail, 3 marginal or no data, 1 error."""
    import json

    from flows.calibrate import compare_stored_runs
    from telemetry.errors import StoreUnavailableError

    try:
        result, page = compare_stored_runs(
            run_a, run_b, db=db, out=out, tolerance=tolerance, min_points=min_points
        )
    except (LookupError, ValueError, StoreUnavailableError) as exc:
        fail(str(exc), ExitCode.ERROR)
    target = err_console if as_json else console
    for m in result["metrics"]:
        flag = " (harmful)" if m["harmful"] else ""
        target.print(f"  {m['metric']:<26} {m['result']:<7}{flag}", markup=False)
    target.print(f"{result['result'].upper()}: {result['summary']}", markup=False, soft_wrap=True)
    target.print(f"report: {page}", markup=False, soft_wrap=True)
    if as_json:
        print(json.dumps({**result, "report_html": str(page)}))
    raise typer.Exit(
        {"pass": ExitCode.OK, "fail": ExitCode.NO_GO}.get(result["result"], ExitCode.INCONCLUSIVE)
    )


def _finish(outcome: dict, as_json: bool) -> None:
    import json

    if as_json:
        _print_outcome(outcome, err_console)
        print(json.dumps(outcome, default=str))
    else:
        _print_outcome(outcome, console)
    raise typer.Exit(VERDICT_EXIT.get(outcome["verdict"], ExitCode.INCONCLUSIVE))


def _fmt_interval(c: dict) -> str:
    from telemetry.readiness import format_value

    if c.get("ci_low") is None or c.get("ci_high") is None:
        return "-"
    unit = c.get("unit", "ratio")
    return f"{format_value(c['ci_low'], unit)} .. {format_value(c['ci_high'], unit)}"


def _print_outcome(outcome: dict, target) -> None:
    """Criteria as one block per criterion: reads at 80 columns, ids never cut."""
    verdict = outcome["verdict"]
    target.print(f"Pilot {outcome['run_id']}", markup=False, soft_wrap=True)
    for c in outcome["criteria"]:
        st = c["status"]
        target.print(
            f"  [{STATUS_STYLE[st]}]{st.upper():<14}[/{STATUS_STYLE[st]}] {c['id']} ({c['severity']})"
        )
        target.print(f"      measured {c['measured']}, n={c['n']:,}", markup=False)
        target.print(f"      95% CI {_fmt_interval(c)}, threshold {c['threshold']}", markup=False)
        if st == "inconclusive":
            more = (
                f"; ~{c['more_queries']:,} more queries would settle it"
                if c.get("more_queries")
                else ""
            )
            target.print(f"      {c['reason']}{more}", markup=False, soft_wrap=False)
    cmp_ = outcome.get("comparison")
    if cmp_:
        f = cmp_["flips"]
        target.print(
            f"Candidate {cmp_['candidate_config_hash'][:12]}: verdict "
            f"{cmp_['candidate']['verdict'].upper()}; {cmp_['mismatched']:,} of "
            f"{cmp_['queries']:,} decisions changed: {f['downgrades']:,} downgrades (risk), "
            f"{f['upgrades']:,} upgrades",
            markup=False,
        )
        for d in cmp_["config_diff"][:10]:
            target.print(f"  config {d['path']}: {d['baseline']} -> {d['candidate']}", markup=False)
        for t in cmp_["paired_tests"]:
            target.print(f"  {t['metric']}: {t['conclusion']}", markup=False)
    style = VERDICT_STYLE.get(verdict, "yellow")
    target.print(f"verdict: [bold {style}]{verdict.upper()}[/bold {style}]")
    if outcome.get("verdict_reason"):
        target.print(f"  {outcome['verdict_reason']}", markup=False)
    target.print(f"report: {outcome['report_html']}", markup=False, soft_wrap=True)
