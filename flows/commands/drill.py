"""`harness drill ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="drill commands", no_args_is_help=True)
