"""What a live drill can inject and how its clock scales: the fault types with a live injector,
the store faults that need a TCP proxy in front of PostgreSQL, the wall-time budget that sets the
default time scale, and the error for a drill that cannot run.
"""

from __future__ import annotations

LIVE_FAULTS = (
    "upstream_latency", "upstream_error", "toggle", "store_write_failure", "token_multiplier",
    "upstream_latency_creep",
)  # fmt: skip
STORE_FAULTS = ("store_write_failure",)
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MAX_WALL_S = 240.0
MINUTE = 60.0
STANDBY_AHEAD = 2  # services started ahead for coming toggle changes
WARMUP_WALL_S = 2.0  # wall seconds of warm-up traffic before a drill-started service's clock runs
WARMUP_MIN_REQUESTS = 32


class LiveDrillError(RuntimeError):
    """The live drill cannot run (unsupported fault, a process did not start, target down)."""


def default_scale(duration_s: float) -> float:
    return max(1.0, duration_s / MAX_WALL_S)
