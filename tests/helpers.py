"""Checks several test modules share (import as ``from helpers import ...``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def refused_document(
    build: Callable[[Path, Path], Any], data: dict, tmp_path: Path, error: type[Exception]
) -> str:
    """Write ``data`` as a JSON file, build its page into ``tmp_path/out`` and return the error's
    message, once it is shown that the builder refused the file with ``error`` (a ValueError)
    naming the file, and wrote nothing."""
    path = tmp_path / "document.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "out"
    with pytest.raises(error) as err:
        build(path, out)
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert str(path) in message
    assert not out.exists()
    return message


def text_lists(samples: list[str], *, max_chars: int, max_size: int):
    """Hypothesis strategy: batches mixing known texts with arbitrary non-blank unicode."""
    from hypothesis import strategies as st

    one = st.one_of(
        st.sampled_from(samples),
        st.text(min_size=1, max_size=max_chars).filter(lambda s: s.strip()),
    )
    return st.lists(one, min_size=1, max_size=max_size)


def assert_batch_matches_single(router, texts: list[str], ts, run_id: str = "prop") -> None:
    """``route_batch`` decides every row exactly as ``route`` decides it alone."""
    qids = [f"q{i}" for i in range(len(texts))]
    table = router.route_batch(texts, query_ids=qids, ts=ts, run_id=run_id)
    for i, text in enumerate(texts):
        single = router.route(text, query_id=qids[i], ts=ts, run_id=run_id)
        assert table.slice(i, 1).to_pylist()[0] == single.to_dict() | {"ts": ts}


def contract_models(model: Any, namespace: Any, seen: dict | None = None) -> dict[str, Any]:
    """Every pydantic model of ``namespace`` (a module) reachable from ``model`` through its
    fields, by class name: the parts a contract document must list."""
    import re

    from pydantic import BaseModel

    seen = {} if seen is None else seen
    seen[model.__name__] = model
    for field in model.model_fields.values():
        for sub in re.findall(r"\b([A-Z]\w+)\b", repr(field.annotation)):
            cls = getattr(namespace, sub, None)
            if isinstance(cls, type) and issubclass(cls, BaseModel) and sub not in seen:
                contract_models(cls, namespace, seen)
    return seen


def model_keys(model: Any) -> set[str]:
    """The JSON keys of a model (its aliases where a key is a Python keyword, like ``for``)."""
    return {f.alias or name for name, f in model.model_fields.items()}


def documented_keys(text: str) -> dict[str, set[str]]:
    """Model name -> keys in its table of a contract document (``### `path` — Model`` headings
    over ``| `key` | ...`` rows), as in docs/journal.md and docs/evidence.md."""
    import re

    out: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^### .* — (\w+)$", line)
        if heading:
            current = heading.group(1)
            out[current] = set()
        elif current and (key := re.match(r"^\| `(\w+)` \|", line)):
            out[current].add(key.group(1))
    return out
