"""Progress reporting from inside flows, without coupling flows to a terminal.

The CLI installs a reporter (a rich progress bar); under a Prefect worker nobody does and the
calls are no-ops, while Prefect's own logs and artifacts carry the story.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Reporter = Callable[[str, int, int | None], None]
"""(stage, completed, total) -> None"""

_REPORTER: ContextVar[Reporter | None] = ContextVar("harness_progress", default=None)


def report(stage: str, completed: int, total: int | None = None) -> None:
    fn = _REPORTER.get()
    if fn is not None:
        fn(stage, completed, total)


@contextmanager
def reporting(fn: Reporter) -> Iterator[None]:
    token = _REPORTER.set(fn)
    try:
        yield
    finally:
        _REPORTER.reset(token)


@contextmanager
def rich_progress(console=None) -> Iterator[None]:
    """A rich progress bar with one line per stage."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    tasks: dict[str, int] = {}
    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:

        def update(stage: str, completed: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=completed, total=total)

        with reporting(update):
            yield
