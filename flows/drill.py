"""Prefect flows for incident drills: one drill, or the suite of built-ins.

The flows orchestrate only: ``drills.runner`` runs the drill and writes its journal; the report
builders (``reports.postmortem``, ``reports.failure_modes``, ``reports.site``) turn journals into
pages; the flow adds Prefect logs and artifacts. ``drill_suite`` runs each drill as a subflow, so
the Prefect UI shows one run per drill, and keeps going when one of them fails.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prefect import flow

from flows.progress import report
from flows.run_logger import run_logger

log = logging.getLogger(__name__)


@flow(name="drill", log_prints=False)
def run_drill(
    scenario: str,
    db: str | None = None,
    out: str = "reports/out",
    semantic: bool = False,
    start: str | None = None,
    qps: float | None = None,
    site: bool = True,
) -> dict:
    """Run one drill (a built-in name or a scenario path) and build its postmortem.

    ``semantic=True`` loads the MiniLM scorer (default: the scenario's setting, rule-only for
    every built-in). ``qps`` overrides the scenario's traffic rate. ``site=False`` leaves the
    Failure Modes page and the index to the caller (the suite builds them once at the end).
    Returns the drill summary: run id, status, passed, score, journal and report paths.
    """
    from drills.runner import run_scenario
    from reports.drill_pages import build_drill_site, build_postmortem_page

    logger = run_logger(log)
    result = run_scenario(
        scenario,
        db=db,
        out=out,
        semantic=semantic or None,  # False keeps the scenario's own setting
        start=start,
        qps=qps,
        progress=_report_virtual_minutes,
    )
    summary = result.summary()
    j = result.journal
    logger.info(
        "drill %s %s: %d/%d guarantees held, resilience score %.2f (%.1f s wall)",
        j.name,
        j.status,
        summary["guarantees_passed"],
        summary["guarantees"],
        j.resilience_score,
        j.wall_seconds,
    )
    for g in j.guarantees:
        if g.verdict != "passed":
            logger.warning(
                "guarantee %s %s: expected %s; actual %s",
                g.id,
                g.verdict,
                g.expected_text,
                g.actual_text,
            )
    summary["postmortem"] = _safely(
        logger, "postmortem", build_postmortem_page, result.journal_path, out
    )
    if site:
        summary["site"] = _safely(logger, "site", build_drill_site, out)
    _publish(j, summary)
    return summary


@flow(name="drill-suite", log_prints=False)
def drill_suite(
    names: list[str] | None = None,
    db: str | None = None,
    out: str = "reports/out",
    qps: float | None = None,
) -> dict:
    """Run drills one after another (default: every built-in), then build the Failure Modes &
    Guarantees page and the site index once. A drill that errors is reported, not fatal."""
    from drills.scenario import builtin_scenarios
    from reports.drill_pages import build_drill_site

    logger = run_logger(log)
    names = list(names) if names else list(builtin_scenarios())
    started = time.perf_counter()
    drills: list[dict] = []
    for i, name in enumerate(names):
        report("drills", i, len(names))
        state = run_drill(name, db=db, out=out, qps=qps, site=False, return_state=True)
        if state.is_completed():
            drills.append(state.result())
        else:
            message = state.message or "drill flow did not complete"
            logger.error("drill %s: %s", name, message)
            drills.append({"name": name, "status": "error", "passed": False, "error": message})
    report("drills", len(names), len(names))
    site = _safely(logger, "site", build_drill_site, out)
    passed = sum(bool(d.get("passed")) for d in drills)
    logger.info("drill suite: %d of %d drills held every guarantee", passed, len(drills))
    return {
        "drills": drills,
        "passed": passed == len(drills),
        "passed_count": passed,
        "total": len(drills),
        "wall_seconds": round(time.perf_counter() - started, 3),
        "site": site,
    }


def _report_virtual_minutes(done_s: float, total_s: float) -> None:
    report("virtual minutes", int(done_s // 60), int(total_s // 60))


def _safely(logger: Any, what: str, func: Any, *args: Any) -> Any:
    """Reports are built after the evidence is safe on disk: a report bug is logged, and the
    drill's result stands."""
    try:
        return func(*args)
    except Exception as exc:  # noqa: BLE001
        logger.error("could not build the %s: %s: %s", what, type(exc).__name__, exc)
        return None


def _publish(j: Any, summary: dict) -> None:
    """A Markdown summary and the guarantee table as Prefect artifacts."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    key = "drill-" + "".join(ch if ch.isalnum() else "-" for ch in j.name.lower())[:80]
    verdict = "PASSED" if j.passed else ("FAILED" if j.status == "completed" else j.status.upper())
    md = (
        f"# Drill {j.name}: **{verdict}**\n\n{j.title}. Run `{j.run_id}`, status {j.status}, "
        f"resilience score {j.resilience_score:.2f}; {j.impact.decisions:,} decisions for "
        f"{j.impact.queries:,} queries, {j.impact.telemetry_rows:,} telemetry rows.\n\n"
        f"Journal: {summary['journal_path']}\n"
        + (f"\nPostmortem: {summary['postmortem']}\n" if summary.get("postmortem") else "")
    )
    rows = [
        {
            "guarantee": g.id,
            "expected": g.expected_text,
            "actual": g.actual_text,
            "verdict": g.verdict,
        }
        for g in j.guarantees
    ]
    try:
        create_markdown_artifact(md, key=key + "-summary", description="Drill summary")
        create_table_artifact(rows, key=key + "-guarantees", description="Guarantees")
    except Exception as exc:  # noqa: BLE001 - artifacts are a convenience, never a failure
        run_logger(log).warning("could not publish Prefect artifacts: %s", type(exc).__name__)
