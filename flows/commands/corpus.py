"""`harness corpus ...`: generate a synthetic corpus, validate a corpus file.

Imports of pyarrow, numpy and the data package happen inside the commands, so `harness --help`
stays fast.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flows.commands.common import console, err_console, fail

app = typer.Typer(
    help="Generate a synthetic query corpus or validate one (quarantine report).",
    no_args_is_help=True,
)

_SHOW_PROGRESS_FROM = 50_000  # rows; below this the work is instant
_SAMPLE_QUARANTINE_ROWS = 10


class CorpusFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"
    jsonl = "jsonl"


@app.command("generate")
def generate(
    n: Annotated[int, typer.Option("--n", min=1, help="Number of rows.")] = 200_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same corpus.")] = 42,
    out: Annotated[
        Path, typer.Option(help="Output file; .parquet, .csv or .jsonl picks the format.")
    ] = Path("data/sample.parquet"),
    days: Annotated[int, typer.Option(min=1, help="Days of traffic.")] = 7,
    start: Annotated[str, typer.Option(help="First UTC day, YYYY-MM-DD.")] = "2026-11-16",
    bad_rows: Annotated[
        float,
        typer.Option(
            "--bad-rows",
            min=0.0,
            max=0.49,
            help="Fraction of rows to corrupt (every quarantine reason), e.g. 0.005.",
        ),
    ] = 0.0,
    format: Annotated[
        CorpusFormat | None, typer.Option(help="Force a format instead of the extension.")
    ] = None,
) -> None:
    """Generate a seeded synthetic query corpus with a daily and weekly traffic shape.

    Rows are generated and written in chunks, so memory stays flat however large --n is."""

    import time

    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from data.generate import write_generated_corpus

    err = err_console
    t0 = time.perf_counter()
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=n < _SHOW_PROGRESS_FROM,
        ) as progress:
            task = progress.add_task(f"generating {n:,} rows into {out}", total=n)
            result = write_generated_corpus(
                out,
                n,
                seed=seed,
                days=days,
                start=start,
                bad_rows=bad_rows,
                format=format.value if format else None,
                progress=lambda rows: progress.update(task, completed=rows),
            )
    except (ValueError, OverflowError) as exc:  # --days 10000000 / --start 9999-12-31
        fail(str(exc if isinstance(exc, ValueError) else _overflow(start, days)))
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    elapsed = time.perf_counter() - t0

    path = result.path
    per_day: list[tuple[object, int]] = sorted(result.per_day.items())
    if result.unparseable_ts:
        per_day.append(("unparseable ts (bad rows)", result.unparseable_ts))
    summary = Table(title=f"Corpus written to {path}", show_header=False)
    summary.add_column("field", style="bold")
    summary.add_column("value")
    summary.add_row("rows", f"{result.rows:,}")
    summary.add_row("seed", str(seed))
    summary.add_row("days", f"{days} from {start} (UTC)")
    summary.add_row("bad rows", f"{bad_rows:.2%}" if bad_rows else "none")
    summary.add_row("size", f"{path.stat().st_size / 1e6:,.1f} MB")
    summary.add_row("took", f"{elapsed:.1f} s")
    console.print(summary)
    console.print(_counts_table("expected_level", result.levels))
    console.print(_counts_table("expected_domain", result.domains))
    days_table = Table(title="rows per UTC day")
    days_table.add_column("day")
    days_table.add_column("rows", justify="right")
    for d, c in per_day:
        days_table.add_row(str(d), f"{c:,}")
    console.print(days_table)


def _overflow(start: str, days: int) -> str:
    return f"--start {start} with --days {days:,} runs past year 9999; use fewer days"


def _counts_table(name: str, counts: dict[str, int]) -> object:
    from rich.table import Table

    total = sum(counts.values()) or 1
    table = Table(title=f"{name} mix")
    table.add_column(name)
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")
    for value, c in sorted(counts.items(), key=lambda kv: -kv[1]):
        table.add_row(value, f"{c:,}", f"{c / total:.1%}")
    return table


@app.command("validate", short_help="Validate a corpus: accepted and quarantined rows per reason.")
def validate(
    path: Annotated[Path, typer.Argument(help="Corpus file: .parquet, .csv or .jsonl.")],
    format: Annotated[
        CorpusFormat | None, typer.Option(help="Force a format instead of the extension.")
    ] = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            help="Write quarantined rows (row number, query id, reason, detail, text hash and length; never the text) here."
        ),
    ] = None,
    start: Annotated[str | None, typer.Option(help="First day of the window, YYYY-MM-DD.")] = None,
    days: Annotated[
        int | None, typer.Option(min=1, help="Days in the window (alone: the last N days).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON document on stdout.")
    ] = False,
) -> None:
    """Validate a corpus: accepted and quarantined rows per reason.

    Exit 0 when the file is readable (even with quarantined rows), 1 when the file as a whole cannot be used (not found, unreadable, unknown format, a required column missing).
    """
    from dataclasses import replace

    from rich.markup import escape
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from data.corpus import CorpusError, load_corpus, read_quarantine

    people = err_console if as_json else console  # with --json, people read stderr, tools stdout
    err = err_console
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task(f"validating {path}", total=None)

            def step(rows: int) -> None:
                progress.update(task, description=f"validating {path}: {rows:,} rows")

            with load_corpus(
                path,
                format=format.value if format else None,
                quarantine_path=quarantine,
                start=start,
                days=days,
                progress=step,
            ) as corpus:
                summary = corpus.summary
                if quarantine is None:  # the temporary quarantine file goes with the work dir
                    summary = replace(summary, quarantine_path=None)
                sample = read_quarantine(corpus.quarantine_path).slice(0, _SAMPLE_QUARANTINE_ROWS)
    except CorpusError as exc:
        fail(str(exc))
    except OSError as exc:  # e.g. --quarantine in a read-only folder
        fail(f"cannot write {exc.filename or quarantine}: {exc.strerror or exc}")

    people.print(summary)
    if sample.num_rows:
        rows = Table(title=f"first {sample.num_rows} quarantined rows (text not shown)")
        for col in ("row_number", "query_id", "reason", "detail"):
            rows.add_column(col)
        for r in sample.select(["row_number", "query_id", "reason", "detail"]).to_pylist():
            rows.add_row(
                str(r["row_number"]),
                escape(r["query_id"] or "-"),
                r["reason"],
                escape(r["detail"]),
            )
        people.print(rows)
    if quarantine is not None:
        people.print(f"quarantine file: {quarantine} ({summary.quarantined:,} rows)")
    elif summary.quarantined:
        people.print("pass --quarantine FILE to keep the quarantined rows")
    if as_json:
        import json

        from telemetry.pilot_run import CorpusFacts

        doc = CorpusFacts.of(summary, str(quarantine) if quarantine else "").to_dict()
        doc.update(
            file=str(path),
            format=summary.format,
            window=[d.isoformat() for d in summary.window] if summary.window else None,
            quarantine_sample=sample.select(
                ["row_number", "query_id", "reason", "detail"]
            ).to_pylist(),
        )
        print(json.dumps(doc))
