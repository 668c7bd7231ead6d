"""Virtual time for drills: a 30-minute incident replays in seconds, with honest timestamps.

Every timestamp a drill produces (decision ``ts``, breaker events, alert firings, journal events)
comes from one :class:`VirtualClock`, so the journal, the telemetry rows and the postmortem
timeline agree to the millisecond. The clock only moves forward; the runner moves it, nothing
sleeps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from router.durations import DURATION_FORMS, format_duration, parse_duration

__all__ = [
    "DEFAULT_START",
    "DURATION_FORMS",
    "VirtualClock",
    "format_duration",
    "iso",
    "parse_duration",
    "parse_start",
]

DEFAULT_START = datetime(2026, 11, 16, 2, 0, 0, tzinfo=UTC)
"""A quiet Monday 02:00 UTC: the on-call hour the drills rehearse."""


def parse_start(value: str | datetime | None) -> datetime:
    """The drill's virtual start: an ISO-8601 time with a zone ('2026-11-16T02:00:00Z')."""
    if value is None:
        return DEFAULT_START
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"start {value!r} is not an ISO-8601 time; use e.g. 2026-11-16T02:00:00Z"
            ) from None
    if dt.tzinfo is None:
        raise ValueError(
            f"start {value!r} has no time zone; add 'Z' for UTC, e.g. 2026-11-16T02:00:00Z"
        )
    return dt.astimezone(UTC)


def iso(dt: datetime) -> str:
    """UTC ISO-8601 with 'Z'; milliseconds only when the time has them."""
    dt = dt.astimezone(UTC)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class VirtualClock:
    """Seconds since the drill started (``offset_s``), mapped onto a UTC start time.

    ``monotonic`` is what the execution plane and its circuit breakers read, so a breaker's
    30 s cool-down passes in virtual time.
    """

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock's start must be tz-aware (UTC)")
        self.start = start.astimezone(UTC)
        self.offset_s = 0.0

    def __repr__(self) -> str:
        return f"VirtualClock({iso(self.start)} + {self.offset_s:.3f}s)"

    def monotonic(self) -> float:
        return self.offset_s

    def set(self, offset_s: float) -> None:
        """Move to ``offset_s``. Going backwards would reorder events: refused."""
        if offset_s < self.offset_s - 1e-9:
            raise ValueError(
                f"virtual clock cannot go back from {self.offset_s:.3f}s to {offset_s:.3f}s"
            )
        self.offset_s = offset_s

    def advance(self, seconds: float) -> None:
        self.set(self.offset_s + seconds)

    def at(self, offset_s: float) -> datetime:
        return self.start + timedelta(seconds=offset_s)

    def now(self) -> datetime:
        return self.at(self.offset_s)

    def iso(self, offset_s: float | None = None) -> str:
        return iso(self.at(self.offset_s if offset_s is None else offset_s))
