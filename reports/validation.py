"""One way to say what is wrong with an input document (evidence, journal): every problem with
its key path, so a broken file is fixed in one pass."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

MAX_PROBLEMS = 20


def key_path(loc: tuple[Any, ...]) -> str:
    """('criteria', 2, 'passed') -> 'criteria[2].passed'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def describe(exc: ValidationError, header: str) -> str:
    lines = [header]
    for err in exc.errors()[:MAX_PROBLEMS]:
        key = key_path(err["loc"])
        if err["type"] == "missing":
            lines.append(f"  - missing key '{key}'")
        else:
            got = repr(err.get("input"))
            got = got if len(got) <= 60 else got[:57] + "..."
            lines.append(f"  - key '{key}': {err['msg']} (got {got})")
    if len(exc.errors()) > MAX_PROBLEMS:
        lines.append(f"  - … and {len(exc.errors()) - MAX_PROBLEMS} more")
    return "\n".join(lines)
