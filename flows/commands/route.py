"""`harness route`."""

from __future__ import annotations


def route() -> None:
    """Route one query (or a JSONL file) and print the decision."""
    raise NotImplementedError
