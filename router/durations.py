"""One duration grammar for every file the harness reads: scenarios, alert rules, rule tests,
journals and postmortems.

Why: each of those once had its own parser, and they disagreed (``1.5m`` was valid for a drill
fault but not for an inline alert rule in the same scenario file). The formatter writes the
canonical Prometheus form (integer parts, ``d h m s ms``), so what it prints can be read back by
this parser, by promtool and by Grafana.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
DURATION_FORMS = "'30s', '5m', '1h', '1h30m', '90s', '250ms' or a number of seconds"


def parse_duration(value: str | int | float | timedelta) -> float:
    """Seconds from '30s' / '1.5m' / '1h30m' / '250ms' / '1d' / '1w', a plain number of seconds
    (>= 0) or a ``timedelta``; anything else raises ``ValueError`` naming the valid forms."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; use e.g. {DURATION_FORMS}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not a duration (>= 0); use e.g. {DURATION_FORMS}")
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("0", "0.0"):
            return 0.0
        parts = _PART.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return sum(float(n) * _UNIT_S[u] for n, u in parts)
    raise ValueError(f"{value!r} is not a duration; use e.g. {DURATION_FORMS}")


def format_duration(value: float | timedelta) -> str:
    """'5m', '1h30m', '1d', '350ms': the inverse of ``parse_duration`` (to the millisecond)."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    rest = int(round(seconds * 1000))
    if rest <= 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, rest = divmod(rest, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^(0|(\d+(\.\d+)?(ms|s|m|h|d|w))+)$"},
            ],
            "description": f"a duration: {DURATION_FORMS}",
        }
    ),
]
"""A pydantic field in seconds that files may write as '5m': one grammar, one JSON Schema."""
