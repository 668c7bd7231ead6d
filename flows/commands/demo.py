"""`harness demo`: the main job on the embedded default."""

from __future__ import annotations


def demo() -> None:
    """Generate a sample corpus, route it into the SQLite store and print a summary."""
    raise NotImplementedError
