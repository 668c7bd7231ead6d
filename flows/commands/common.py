"""Shared CLI plumbing: one console, one way to fail with a clear message."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as an error and exit with ``code`` (1 = error)."""
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)
