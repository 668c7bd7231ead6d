"""`harness pilot ...`: run a decision-only pilot week; rebuild its report from stored telemetry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.commands.common import console, fail

app = typer.Typer(
    help="Decision-only pilot weeks: replay a corpus, get a go / no-go report.",
    no_args_is_help=True,
)

EXIT_GO, EXIT_ERROR, EXIT_NO_GO = 0, 1, 2


@app.command("run")
def run(
    corpus: Annotated[Path, typer.Option("--corpus", help="Corpus file (.parquet, .csv, .jsonl).")],
    days: Annotated[int, typer.Option("--days", min=1, help="Days to replay.")] = 7,
    start: Annotated[
        str | None,
        typer.Option("--start", help="First day (YYYY-MM-DD); default: the last DAYS days."),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Router config YAML.")] = None,
    compare_config: Annotated[
        Path | None,
        typer.Option("--compare-config", help="Candidate config for a shadow comparison."),
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Telemetry URL (default SQLite file).")
    ] = None,
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
) -> None:
    """Replay DAYS days of CORPUS in decision-only mode. Exit 0 on go, 2 on no-go, 1 on error."""
    # Whole-input problems are reported before a Prefect server starts, without a traceback.
    from data.corpus import CorpusError, detect_format
    from flows.progress import rich_progress
    from router.config import ConfigError

    try:
        detect_format(corpus, fmt)
    except CorpusError as exc:
        fail(str(exc), EXIT_ERROR)
    if not corpus.is_file():
        fail(f"corpus file not found: {corpus}", EXIT_ERROR)
    for label, path in (("config", config), ("compare config", compare_config)):
        if path is not None:
            try:
                from router.config import load_config

                load_config(path)
            except ConfigError as exc:
                fail(f"{label}: {exc}", EXIT_ERROR)
    try:
        from flows.pilot import pilot_week

        with rich_progress(console):
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
            )
    except (CorpusError, ConfigError, ValueError, FileNotFoundError) as exc:
        fail(str(exc), EXIT_ERROR)
    _print_outcome(outcome)
    raise typer.Exit(EXIT_GO if outcome["verdict"] == "go" else EXIT_NO_GO)


@app.command("report")
def report(
    run_id: Annotated[str, typer.Argument(help="The pilot run id.")],
    out: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("reports/out"),
    db: Annotated[str | None, typer.Option("--db", help="Telemetry URL.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Router config YAML.")] = None,
) -> None:
    """Rebuild a pilot's report from its stored telemetry and run record."""
    from flows.pilot_report import rebuild_pilot_report

    try:
        outcome = rebuild_pilot_report(
            run_id, out=out, db=db, config=str(config) if config else None
        )
    except (LookupError, ValueError) as exc:
        fail(str(exc), EXIT_ERROR)
    _print_outcome(outcome)


def _print_outcome(outcome: dict) -> None:
    from rich.table import Table

    verdict = outcome["verdict"]
    colour = "green" if verdict == "go" else "red"
    t = Table("criterion", "threshold", "measured", "result", title=f"Pilot {outcome['run_id']}")
    for c in outcome["criteria"]:
        res = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "[dim]n/a[/dim]"}[
            c["passed"]
        ]
        t.add_row(c["description"], c["threshold"], c["measured"], res)
    console.print(t)
    console.print(f"verdict: [bold {colour}]{verdict.upper()}[/bold {colour}]")
    console.print(f"report: {outcome['report_html']}")
