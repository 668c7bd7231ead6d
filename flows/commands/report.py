"""`harness report ...`: build the drill postmortems, the Failure Modes & Guarantees page and the
site index from files on disk (journals, evidence), without re-running anything.

The report builders (Jinja2, Plotly, pydantic) are imported inside each command so that
`harness --help` stays fast. A bad input is one clear line and exit code 1, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.commands.common import console, err_console, fail
from telemetry.exit_codes import ExitCode

app = typer.Typer(
    help="Reports: drill postmortems, the Failure Modes & Guarantees page, the site index.",
    no_args_is_help=True,
)

DEFAULT_OUT = Path("reports/out")

OutOption = Annotated[
    Path,
    typer.Option("--out", "-o", help="Report site folder (index.html, drills/, assets/)."),
]


def _refresh_index(out: Path) -> Path | None:
    """Rebuild the site index when the site module is available; the page is still useful
    without it, so a missing module is a warning, not a failure."""
    try:
        from reports.site import build_index
    except ModuleNotFoundError as exc:
        if exc.name != "reports.site":
            raise
        err_console.print("[yellow]warning:[/yellow] reports.site not available; index not rebuilt")
        return None
    return build_index(out)


def _failure_modes(out: Path, catalogue: Path | None) -> Path:
    from reports.failure_modes import CatalogueError, build_failure_modes

    try:
        return build_failure_modes(out, catalogue)
    except CatalogueError as exc:
        fail(str(exc))


@app.command("failure-modes")
def failure_modes(
    out: OutOption = DEFAULT_OUT,
    catalogue: Annotated[
        Path | None,
        typer.Option(
            "--catalogue", help="Failure-mode catalogue YAML (default: the built-in one)."
        ),
    ] = None,
) -> None:
    """Build failure-modes.html (+ .md) from the latest drill journal of each failure mode."""
    page = _failure_modes(out, catalogue)
    index = _refresh_index(out)
    console.print(str(page), highlight=False, soft_wrap=True)
    if index is not None:
        console.print(f"index: {index}", highlight=False, soft_wrap=True)


@app.command("postmortem")
def postmortem(
    journal: Annotated[Path, typer.Argument(help="A drill journal.json.")],
    out: OutOption = DEFAULT_OUT,
) -> None:
    """Build one drill's postmortem (HTML + Markdown); refresh the Failure Modes page and index."""
    from reports.postmortem import DrillJournalError, build_postmortem

    try:
        paths = build_postmortem(journal, out)
    except DrillJournalError as exc:
        fail(str(exc))
    page = _failure_modes(out, None)
    index = _refresh_index(out)
    console.print(str(paths.html), highlight=False, soft_wrap=True)
    console.print(f"markdown: {paths.markdown}", highlight=False, soft_wrap=True)
    console.print(f"failure modes: {page}", highlight=False, soft_wrap=True)
    if index is not None:
        console.print(f"index: {index}", highlight=False, soft_wrap=True)


@app.command("index")
def index(out: OutOption = DEFAULT_OUT) -> None:
    """Rebuild the site's index.html from the runs and drills found under --out."""
    if not out.is_dir():
        fail(f"--out {out} is not a folder: build a report into it first")
    path = _refresh_index(out)
    if path is None:
        raise typer.Exit(ExitCode.ERROR)
    console.print(str(path), highlight=False, soft_wrap=True)


@app.command("prune")
def prune(
    keep: Annotated[
        int,
        typer.Option("--keep", help="Runs to keep per pilot series and per drill scenario."),
    ],
    out: OutOption = DEFAULT_OUT,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")
    ] = False,
) -> None:
    """Keep the newest N runs of each pilot series / drill scenario; delete older run folders.

    Only run folders inside --out are removed (never a symlink, never anything outside it);
    unreadable runs are kept. The telemetry store is not touched. The index is rebuilt.
    """
    from rich.markup import escape

    from reports.site import PruneError
    from reports.site import prune as prune_site

    try:
        result = prune_site(out, keep, dry_run=dry_run)
    except PruneError as exc:
        fail(str(exc))
    verb = "would remove" if dry_run else "removed"
    for path in result.removed:
        console.print(f"{verb}: {path}", highlight=False, soft_wrap=True)
    for note in result.skipped:
        err_console.print(
            f"[yellow]skipped:[/yellow] {escape(note)}", highlight=False, soft_wrap=True
        )
    console.print(
        f"{verb} {len(result.removed)} run folder(s), kept {result.kept}",
        highlight=False,
        soft_wrap=True,
    )
    if not dry_run:
        if result.removed and (Path(out) / "failure-modes.html").is_file():
            # its "N runs; earlier: ..." history counted the removed runs
            page = _failure_modes(out, None)
            console.print(f"failure modes: {page}", highlight=False, soft_wrap=True)
        console.print(f"index: {Path(out) / 'index.html'}", highlight=False, soft_wrap=True)
