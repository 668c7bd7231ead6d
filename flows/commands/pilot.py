"""`harness pilot ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="pilot commands", no_args_is_help=True)
