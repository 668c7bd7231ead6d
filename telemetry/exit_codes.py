"""The harness's exit codes: the CLI's contract with CI and cron (one definition, no imports, so
the command line can read it before any heavy library loads).

A CI gate reads 2 as "do not ship": only a no-go verdict or a failed guarantee / rule test may
exit 2; bad input is 1 and a mistyped flag 64 (``EX_USAGE``), never 2."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    GO = 0
    ERROR = 1
    NO_GO = 2
    """A no-go verdict, a failed drill guarantee or a failed alert-rule test."""
    FAILED_CHECK = 2
    INCONCLUSIVE = 3
    USAGE = 64
    INTERRUPTED = 130
    """Ctrl-C (128 + SIGINT), as shells report it."""


VERDICT_EXIT = {"go": ExitCode.GO, "no-go": ExitCode.NO_GO, "inconclusive": ExitCode.INCONCLUSIVE}
