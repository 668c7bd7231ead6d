"""`harness serve` (the router as an HTTP service) and `harness upstream-sim` (an OpenAI-compatible
model simulator for it to call). FastAPI and uvicorn are imported inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.commands.common import DbOption, err_console, fail

HostOption = Annotated[str, typer.Option("--host", help="Interface to listen on.")]
PortOption = Annotated[int, typer.Option("--port", help="TCP port.")]


def serve(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
    db: DbOption = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Router config YAML.", show_default=False)
    ] = None,
    upstream: Annotated[
        str | None,
        typer.Option(
            "--upstream",
            help="OpenAI-compatible base URL for execution (e.g. a `harness upstream-sim`); "
            "default: the config's execution.upstream.",
            show_default=False,
        ),
    ] = None,
    spool_dir: Annotated[
        Path | None,
        typer.Option("--spool-dir", help="Where refused telemetry waits.", show_default=False),
    ] = None,
    semantic: Annotated[
        bool, typer.Option("--semantic", help="Hybrid router (loads MiniLM); default rule-only.")
    ] = False,
    run_id: Annotated[str, typer.Option("--run-id", help="Run id of the decisions.")] = "live",
) -> None:
    """Serve /v1/simulate, /v1/execute, /v1/health and /metrics (toggle: AMAIMA_EXECUTION_MODE)."""
    from live.service import ServiceSettings, create_app
    from router.config import ConfigError
    from router.upstream import UpstreamConfigError
    from telemetry.errors import TelemetryError

    if not 0 < port < 65536:
        fail(f"--port {port} is not a TCP port (1-65535)")
    settings = ServiceSettings(
        config=config,
        db=db,
        spool_dir=spool_dir,
        upstream_url=upstream,
        semantic=semantic,
        run_id=run_id,
    )
    try:
        app = create_app(settings)
    except (ConfigError, UpstreamConfigError, TelemetryError, ValueError, OSError) as exc:
        fail(str(exc))
    _run_server(app, host, port, "serving the AMAIMA router")


def upstream_sim(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8090,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Router config YAML (its model catalog).", show_default=False
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the latency/token draws.")] = 0,
    time_scale: Annotated[
        float,
        typer.Option("--time-scale", help="Multiply every simulated latency (0 = answer at once)."),
    ] = 1.0,
) -> None:
    """An OpenAI-compatible server (/v1/chat/completions, /v1/models) simulating the catalog's
    models: their latency profiles, token counts and error rates, seeded."""
    from live.upstream_sim import create_sim_app
    from router.config import ConfigError

    if time_scale < 0:
        fail("--time-scale must be >= 0")
    try:
        app = create_sim_app(config, seed=seed, time_scale=time_scale)
    except ConfigError as exc:
        fail(str(exc))
    _run_server(app, host, port, "upstream simulator")


def _run_server(app: object, host: str, port: int, what: str) -> None:
    """Serve ``app`` in the foreground until Ctrl-C; fail when the address cannot be bound."""
    import uvicorn

    err_console.print(f"{what} on http://{host}:{port} (Ctrl-C stops)")
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning")
    )
    server.run()
    if not server.started:
        fail(f"could not listen on {host}:{port} (in use, or not an address of this machine?)")


def register(app: typer.Typer) -> None:
    """Add `serve` and `upstream-sim` to the CLI (one line in flows/cli.py)."""
    app.command("serve", help=serve.__doc__)(serve)
    app.command("upstream-sim", help=upstream_sim.__doc__)(upstream_sim)
