"""The `harness` command line. Each command group lives in `flows/commands/`; heavy libraries
(torch, sentence-transformers, great_expectations, prefect) are imported inside the commands that
need them, so `harness --help` answers in about a second."""

from __future__ import annotations

import logging

import typer

from flows.commands import alerts, corpus, demo, drill, pilot, report, route, serve, telemetry
from telemetry.exit_codes import ExitCode

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
app.add_typer(__import__("flows.commands.router_cmd", fromlist=["app"]).app, name="router")
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
    # Prefect waits 20 s for its temporary local API server. On a busy 2-core machine that start
    # took longer, and a pilot run failed with "Timed out while attempting to connect to
    # ephemeral Prefect API server" (make test, with benchmarks running beside it).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if not verbose:
        # Prefect's per-task INFO lines drown the progress bars; --verbose brings them back.
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    handler = logging.StreamHandler()
    handler.setFormatter(TerminalLogFormatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    for noisy in (
        "httpx",
        "prefect",
        "sentence_transformers",
        "transformers",
        "great_expectations",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class TerminalLogFormatter(logging.Formatter):
    """Log lines fold at the terminal's width (CI logs and pipes are often 80 columns); words,
    paths and ids stay whole, continuation lines are indented."""

    def format(self, record: logging.LogRecord) -> str:
        import shutil
        import textwrap

        width = max(40, shutil.get_terminal_size((100, 24)).columns)
        return "\n".join(
            textwrap.fill(
                line,
                width,
                subsequent_indent="  ",
                break_long_words=False,
                break_on_hyphens=False,
            )
            if len(line) > width
            else line
            for line in super().format(record).splitlines()
        )


def _flags_take_no_value() -> None:
    """Typer 0.29 prints every flag as ``--dry-run <bool>``, which reads as if it took a value
    (and ``--dry-run true`` is an error): a flag's help shows no type."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_flags_hidden", False):
        return
    shown = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._flags_hidden = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()


def _is(exc: BaseException, name: str) -> bool:
    """Typer vendors its own copy of Click: match its exception classes by name."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def main() -> None:
    """The console entry point: usage errors exit 64 (EX_USAGE), Ctrl-C exits 130."""
    import sys

    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(ExitCode.INTERRUPTED)
    except Exception as exc:
        if _is(exc, "NoArgsIsHelpError"):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(ExitCode.OK)
        if _is(exc, "UsageError"):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(ExitCode.USAGE)
        if _is(exc, "Abort"):
            print("aborted", file=sys.stderr)
            sys.exit(ExitCode.INTERRUPTED)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
