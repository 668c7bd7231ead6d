"""`harness alerts ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="alerts commands", no_args_is_help=True)
