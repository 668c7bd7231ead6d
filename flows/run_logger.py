"""The logger a flow's code writes to.

Inside a Prefect flow or task run it is Prefect's run logger, so the lines reach the run's log in
the UI; outside one (tests and helpers called directly) it is the calling module's own logger.
"""

from __future__ import annotations

import logging

from prefect import get_run_logger


def run_logger(fallback: logging.Logger) -> logging.Logger | logging.LoggerAdapter:
    """Prefect's logger of the current run, or ``fallback`` outside a run context."""
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a flow/task run context
        return fallback
