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
