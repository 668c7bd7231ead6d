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
