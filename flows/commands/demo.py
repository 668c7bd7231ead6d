"""`harness demo`: the whole job on the embedded default, from nothing to a report site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.commands.common import console, fail, quiet_injected_faults


def demo(
    n: Annotated[int, typer.Option("--n", help="Queries in the sample week.")] = 50_000,
    out: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("reports/out"),
    corpus: Annotated[Path, typer.Option("--corpus", help="Sample corpus file.")] = Path(
        "data/sample.parquet"
    ),
    rule_only: Annotated[bool, typer.Option("--rule-only", help="Skip the MiniLM scorer.")] = False,
    drills: Annotated[
        bool, typer.Option("--drills/--no-drills", help="Run the drill suite.")
    ] = True,
) -> None:
    """Generate a sample week, run a decision-only pilot on it (SQLite), calibrate, compare the
    candidate in shadow, run the candidate's week, run the drill suite, and print where the
    reports are (about 5-8 minutes on 2 cores with the MiniLM scorer, 2 with --rule-only)."""
    from data.generate import generate_corpus, write_corpus
    from flows.progress import rich_progress

    if not corpus.exists():
        with console.status(f"generating a sample week of {n:,} queries -> {corpus}"):
            write_corpus(
                generate_corpus(n, seed=42, days=7, start="2026-11-16", bad_rows=0.005), corpus
            )
    console.print(f"[bold]1. pilot week[/bold] on {corpus} (decision-only, SQLite telemetry)")

    def week(what: str, **kwargs) -> dict:
        """One pilot week of the demo corpus; any failure is reported plainly."""
        from flows.pilot import pilot_week

        try:
            with rich_progress(console):
                return pilot_week(
                    corpus=str(corpus),
                    days=7,
                    out=str(out),
                    series="demo",
                    semantic=False if rule_only else None,
                    **kwargs,
                )
        except Exception as exc:  # noqa: BLE001 - a demo reports any failure plainly
            fail(f"{what} failed: {type(exc).__name__}: {exc}")

    outcome = week("pilot")
    console.print(
        f"   verdict [bold]{outcome['verdict'].upper()}[/bold]: {outcome['verdict_reason']}"
    )
    console.print(f"   report: {outcome['report_html']}", markup=False, soft_wrap=True)

    # 2-4. The pilot lead's loop: calibrate on the stored scores, compare the candidate in
    # shadow on the same week, read its verdict.
    from flows.calibrate import run_calibration

    candidate = out / "demo-candidate.yaml"
    console.print(
        f"[bold]2. calibrate[/bold] thresholds and band on {outcome['run_id']}'s stored scores",
        soft_wrap=True,
    )
    try:
        cal, cal_page = run_calibration(
            outcome["run_id"], out=candidate, db=None, config=None, reports_out=out
        )
    except Exception as exc:  # noqa: BLE001
        fail(f"calibration failed: {type(exc).__name__}: {exc}")
    console.print(f"   {cal['message']}", markup=False)
    console.print(f"   page: {cal_page}", markup=False, soft_wrap=True)
    if cal["proposed"] is not None:
        console.print("[bold]3. shadow comparison[/bold] of the candidate on the same week")
        cmp_outcome = week("comparison", compare_config=str(candidate))
        c = cmp_outcome["comparison"]
        console.print(
            f"   candidate verdict [bold]{c['candidate']['verdict'].upper()}[/bold]; "
            f"{c['flips']['downgrades']:,} downgrades, {c['flips']['upgrades']:,} upgrades of "
            f"{c['queries']:,} decisions"
        )
        console.print(f"   report: {cmp_outcome['report_html']}", markup=False, soft_wrap=True)
        console.print("[bold]4. the candidate's own pilot week[/bold]")
        final = week("candidate pilot", config=str(candidate))
        console.print(
            f"   verdict [bold]{final['verdict'].upper()}[/bold]: {final['verdict_reason']}"
        )

    if drills:
        console.print(
            "[bold]5. drill suite[/bold] (virtual clock, execution-enabled against a simulated upstream)"
        )
        try:
            from flows.drill import drill_suite

            with rich_progress(console), quiet_injected_faults():
                suite = drill_suite(out=str(out))
        except Exception as exc:  # noqa: BLE001
            fail(f"drill suite failed: {type(exc).__name__}: {exc}")
        for row in suite["drills"]:
            held = f"{row.get('guarantees_passed', 0)}/{row.get('guarantees', 0)} guarantees held"
            mark = "[green]PASS[/green]" if row.get("passed") else "[red]FAIL[/red]"
            console.print(f"   {mark} {row['name']}: {row.get('status')}, {held}")
        if not suite["passed"]:
            console.print("[red]   a drill did not hold every guarantee: read its postmortem[/red]")

    from reports.site import build_index

    index = build_index(out)
    console.print(f"[bold]reports:[/bold] open {index.resolve().as_uri()}", soft_wrap=True)
