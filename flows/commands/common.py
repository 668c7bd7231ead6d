"""Shared CLI plumbing: one console, one way to fail with a clear message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console

console = Console(stderr=False, highlight=False)
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
def quiet_injected_faults() -> Iterator[None]:
    """During a drill, expected fault warnings stay out of the console (unless --verbose)."""
    import logging

    if logging.getLogger().level <= logging.INFO:  # harness --verbose
        yield
        return
    saved = {name: logging.getLogger(name).level for name in DRILL_NOISE}
    for name in DRILL_NOISE:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


# Prefect's engine loggers print a full traceback for a failed task or flow run. On the terminal
# the command prints one `error:` line instead (the run's state in Prefect keeps the exception).
PREFECT_ENGINE_LOGGERS = (
    "prefect.task_runs",
    "prefect.flow_runs",
    "prefect.task_engine",
    "prefect.flow_engine",
)


@contextmanager
def quiet_prefect_tracebacks() -> Iterator[None]:
    """Without --verbose, a failing run ends in one error line, not Prefect's tracebacks."""
    import logging

    if logging.getLogger().level <= logging.INFO:  # harness --verbose
        yield
        return
    saved = {name: logging.getLogger(name).level for name in PREFECT_ENGINE_LOGGERS}
    for name in PREFECT_ENGINE_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
