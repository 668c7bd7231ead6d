"""The `harness` command line. Each command group lives in `flows/commands/`; heavy libraries
(torch, sentence-transformers, great_expectations, prefect) are imported inside the commands that
need them, so `harness --help` answers in about a second."""

from __future__ import annotations

import typer

from flows.commands import alerts, corpus, demo, drill, pilot, report, route, serve, telemetry

app = typer.Typer(
    name="harness",
    help="AMAIMA pilot & drill harness: route queries, replay pilot weeks, run fire drills, build reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("route", help=route.route.__doc__)(route.route)
app.add_typer(corpus.app, name="corpus")
app.add_typer(telemetry.app, name="telemetry")
app.add_typer(alerts.app, name="alerts")
app.add_typer(pilot.app, name="pilot")
app.add_typer(drill.app, name="drill")
app.add_typer(report.app, name="report")
app.command("demo", help=demo.demo.__doc__)(demo.demo)
serve.register(app)  # `harness serve`, `harness upstream-sim` (live mode)


@app.callback()
def _setup(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show info-level log lines."),
) -> None:
    """Log lines go to stderr as 'warning: ...' so stdout stays machine-readable."""
    import logging
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # No network but the package registries: Prefect's server analytics would only log errors.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if not verbose:
        # Prefect's per-task INFO lines drown the progress bars; --verbose brings them back.
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    for noisy in (
        "httpx",
        "prefect",
        "sentence_transformers",
        "transformers",
        "great_expectations",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
