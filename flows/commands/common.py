"""Shared CLI plumbing: one console, one way to fail with a clear message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.console import Console

console = Console(stderr=False, highlight=False)

JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout (people's output on stderr)."),
]
"""The one `--json` flag: every command that has it prints exactly one document on stdout."""

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Telemetry store URL (sqlite:///path.db or postgresql+psycopg://user@host/db). "
        "Default: $AMAIMA_TELEMETRY_URL, else sqlite:///.harness/telemetry.db.",
        show_default=False,
    ),
]
"""The one `--db` option: every command that reads or writes the telemetry store takes it."""
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # one error, one line


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as an error and exit with ``code`` (1 = error).

    The message is markup-escaped: paths and patterns hold '[...]' that rich would eat."""
    from rich.markup import escape

    err_console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


# Loggers that report faults a drill injects on purpose; the journal records every one of them.
DRILL_NOISE = ("telemetry.store", "router.breaker", "router.execution", "router.toggle")


@contextmanager
def _raised_level(names: tuple[str, ...], level: int) -> Iterator[None]:
    """Raise these loggers to ``level`` for the block, unless --verbose asked for everything."""
    import logging

    if logging.getLogger().level <= logging.INFO:  # harness --verbose
        yield
        return
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, old in saved.items():
            logging.getLogger(name).setLevel(old)


def quiet_injected_faults():
    """During a drill, expected fault warnings stay out of the console (unless --verbose)."""
    import logging

    return _raised_level(DRILL_NOISE, logging.ERROR)


# Prefect's engine loggers print a full traceback for a failed task or flow run. On the terminal
# the command prints one `error:` line instead (the run's state in Prefect keeps the exception).
PREFECT_ENGINE_LOGGERS = (
    "prefect.task_runs",
    "prefect.flow_runs",
    "prefect.task_engine",
    "prefect.flow_engine",
)


def quiet_prefect_tracebacks():
    """Without --verbose, a failing run ends in one error line, not Prefect's tracebacks."""
    import logging

    return _raised_level(PREFECT_ENGINE_LOGGERS, logging.CRITICAL)
