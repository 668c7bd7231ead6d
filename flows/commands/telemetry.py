"""`harness telemetry ...`: drain the spool, prune by retention, export a run, list runs.

The store (SQLAlchemy, pyarrow, pandas) is imported inside each command so `harness --help` stays
fast. Every failure is a one-line message and exit code 1, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from flows.commands.common import DbOption, fail
from telemetry.exit_codes import ExitCode

if TYPE_CHECKING:
    from telemetry.store import TelemetryStore

# soft_wrap: a store URL or spool path is never folded into two lines (they are copied)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    help="Telemetry store: drain the local spool, prune, export a run, list runs.",
    no_args_is_help=True,
)

SpoolOption = Annotated[
    Path | None,
    typer.Option(
        "--spool-dir",
        help="Spool folder (default: $AMAIMA_TELEMETRY_SPOOL_DIR, else the store's own folder "
        "under .harness/spool/).",
        show_default=False,
    ),
]


@contextmanager
def _store(db: str | None, spool_dir: Path | None = None) -> Iterator[TelemetryStore]:
    """Open the store; any telemetry error becomes a clear message and exit code 1."""
    from telemetry.errors import TelemetryError
    from telemetry.store import TelemetryStore

    try:
        store = TelemetryStore(db, spool_dir=spool_dir)
    except TelemetryError as exc:
        fail(str(exc))
    try:
        yield store
    except TelemetryError as exc:
        fail(str(exc))
    finally:
        store.close()


@app.command()
def drain(db: DbOption = None, spool_dir: SpoolOption = None) -> None:
    """Write spooled decision batches into the store (idempotent; files deleted after commit)."""
    with _store(db, spool_dir) as store:
        result = store.drain()
        console.print(
            f"drained {result.files_drained} file(s) into {store.safe_url}: "
            f"{result.rows_written} rows written, {result.duplicates} already stored",
            highlight=False,
        )
        for path in result.corrupt_files:
            err_console.print(f"[yellow]unreadable spool file kept aside:[/yellow] {path}")
        if not result.complete:
            fail(
                f"{result.files_remaining} file(s) / {result.rows_remaining} rows still spooled "
                f"in {store.spool.directory}: store refused them (kind={result.error_kind}); "
                "run `harness telemetry drain` again when it is back"
            )
        if result.corrupt_files:
            raise typer.Exit(ExitCode.ERROR)


@app.command()
def prune(
    days: Annotated[
        int, typer.Option("--days", min=1, help="Keep decisions of the last DAYS days.")
    ] = 90,
    db: DbOption = None,
) -> None:
    """Delete decisions older than the retention window (run records are kept)."""
    with _store(db) as store:
        deleted = store.prune(retention_days=days)
        console.print(
            f"pruned {deleted} decision rows older than {days} days from {store.safe_url}",
            highlight=False,
        )


@app.command()
def export(
    run: Annotated[str, typer.Option("--run", help="Run id to export.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    db: DbOption = None,
) -> None:
    """Export one run's decisions to a parquet file."""
    if out.suffix != ".parquet":
        fail(f"--out {out} must end in .parquet")
    with _store(db) as store:
        rows = store.export_parquet(run, out)
        console.print(f"exported {rows} decisions of run {run!r} to {out}", highlight=False)


@app.command()
def runs(
    db: DbOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the runs as one JSON document on stdout.")
    ] = False,
) -> None:
    """List recorded runs, oldest first, with their decision counts."""
    with _store(db) as store:
        frame = store.list_runs()
        if as_json:
            import json

            print(
                json.dumps(
                    {
                        "store": store.safe_url,
                        "runs": [
                            {
                                "run_id": str(r.run_id),
                                "kind": r.kind,
                                "status": r.status,
                                "started_at": _when(r.started_at),
                                "finished_at": _when(r.finished_at),
                                "decisions": int(r.decisions),
                            }
                            for r in frame.itertuples(index=False)
                        ],
                    }
                )
            )
            return
        if frame.empty:
            console.print(f"no runs in {store.safe_url}", highlight=False)
            return
        rows = [
            {
                "run_id": str(row.run_id),
                "kind": str(row.kind or "-"),
                "status": str(row.status or "-"),
                "started_at": _when(row.started_at),
                "finished_at": _when(row.finished_at),
                "decisions": f"{int(row.decisions):,}",
            }
            for row in frame.itertuples(index=False)
        ]
        console.print(f"store: {store.safe_url}", highlight=False, soft_wrap=True)
        console.print(f"runs: {len(rows)}", highlight=False, soft_wrap=True)
        for line in _run_lines(rows, console.width):
            console.print(line, highlight=False, soft_wrap=True, markup=False)


def _run_lines(rows: list[dict[str, str]], width: int) -> list[str]:
    """Aligned columns when they fit ``width``; otherwise one block per run (the id on its own
    line, the rest below) so no id is ever cut: ids are copied into `pilot report`/`export`."""
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    if sum(widths.values()) + 2 * (len(cols) - 1) <= width:

        def line(values: dict[str, str]) -> str:
            cells = [
                values[c].rjust(widths[c]) if c == "decisions" else values[c].ljust(widths[c])
                for c in cols
            ]
            return "  ".join(cells).rstrip()

        return [line({c: c for c in cols}), *(line(r) for r in rows)]
    out: list[str] = []
    for r in rows:
        out += [
            r["run_id"],
            f"  {r['kind']}, {r['status']}, {r['decisions']} decisions",
            f"  {r['started_at']} -> {r['finished_at']}",
        ]
    return out


@app.command()
def status(db: DbOption = None, spool_dir: SpoolOption = None) -> None:
    """Stored decisions, and every spool folder with the database its rows wait for."""
    from rich.text import Text

    from flows.commands.tables import print_wrapped

    with _store(db, spool_dir) as store:
        console.print(f"store: {store.safe_url}", highlight=False)
        console.print(f"decisions stored: {store.count()}", highlight=False)
        for spool, target, same in store.spools():
            pending = spool.pending()
            if spool is not store.spool and not pending:
                continue
            mark = "this store" if spool is store.spool else "same database" if same else "other"
            print_wrapped(
                console,
                Text(
                    f"spool: {len(pending)} file(s), {spool.rows_pending()} rows in "
                    f"{spool.directory} -> {target} ({mark})"
                ),
                indent=0,
            )


def _when(value: object) -> str:
    """UTC timestamp for the table; '-' for a run still running (NaT / None)."""
    try:
        return value.strftime("%Y-%m-%d %H:%M:%SZ")  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return "-"
