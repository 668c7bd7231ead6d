"""What a drill leaves behind for its probes and checks to read: one :class:`DrillRecord`.

Why a module of its own: the runner (virtual clock) and the live drill fill the record as time
passes; the probes (``drills.probes``) measure it while the drill runs and the checks
(``drills.checks``) judge it afterwards (one check reuses the latency probe); both read the record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from drills.clock import iso
from telemetry.metric_registry import INTERACTIVE_TIERS


# The base of probe and check params and expectations: unknown keys refused, frozen. (No
# docstring: the scenario schema describes each plug-in's params with the plug-in's summary.)
class ParamsModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class FaultWindow:
    """When one fault (or one toggle misconfiguration) was on, in seconds since the start."""

    index: int
    type: str
    boundary: str
    target: dict[str, str]
    params: dict[str, Any]
    probability: float
    start_s: float
    end_s: float | None = None
    """None while on; set when the fault was switched off (by its duration or a rollback)."""
    ended_by: str | None = None
    description: str = ""
    injected: int = 0
    calls_at_start: dict[str, int] = field(default_factory=dict)
    """Upstream calls per model sent before the fault started (to count calls until a breaker
    opens)."""
    calls_at_end: dict[str, int] | None = None


@dataclass
class AlertRecord:
    rule: str
    kind: Literal["fired", "resolved"]
    offset_s: float
    value: float | None
    severity: str
    summary: str


@dataclass
class BreakerRecord:
    offset_s: float
    model: str
    tier: str
    old: str
    new: str
    reason: str
    calls: int
    """Calls sent to this model since the drill started, when the state changed."""


@dataclass
class StoreFacts:
    """The telemetry store after the final drain."""

    telemetry_rows: int = 0
    distinct_ids: int = 0
    missing_ids: int = 0
    unexpected_ids: int = 0
    missing_sample: list[str] = field(default_factory=list)
    spool_rows_pending: int = 0
    spool_files_pending: int = 0
    spooled_rows_total: int = 0
    spool_events: int = 0
    write_failures: int = 0
    drained_rows: int = 0
    stored_cost_usd: float = 0.0
    error: str | None = None


@dataclass
class DrillRecord:
    """Everything a probe or a check may read. The runner fills it as virtual time passes."""

    start: datetime
    duration_s: float
    model_tiers: dict[str, str]
    interactive_tiers: tuple[str, ...] = INTERACTIVE_TIERS
    arrivals: np.ndarray = field(default_factory=lambda: np.empty(0))
    """Arrival offset (s) of every query sent so far, routed or not."""
    minute_frames: list[pd.DataFrame] = field(default_factory=list)
    """Executed decisions per virtual minute, plus ``offset_s``, ``routed_model``, ``routed_tier``."""
    metrics: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[AlertRecord] = field(default_factory=list)
    breakers: list[BreakerRecord] = field(default_factory=list)
    faults: list[FaultWindow] = field(default_factory=list)
    segment_calls: list[tuple[float, float, int]] = field(default_factory=list)
    """(start_s, end_s, upstream calls) per routing segment."""
    upstream_calls_by_model: dict[str, int] = field(default_factory=dict)
    billed_usd: float = 0.0
    before_window: tuple[float, float] | None = None
    after_window: tuple[float, float] | None = None
    store: StoreFacts = field(default_factory=StoreFacts)
    spool_rows_now: Callable[[], int] = lambda: 0
    open_breakers_now: Callable[[], list[str]] = list
    rules: dict[str, str] = field(default_factory=dict)
    """Alert rules evaluated in this drill: name -> condition."""
    _frame_cache: tuple[tuple[int, int], pd.DataFrame] | None = None

    # --- reading ----------------------------------------------------------------------------
    def frame(self, start_s: float | None = None, end_s: float | None = None) -> pd.DataFrame:
        """Executed decisions with arrival ``offset_s`` in ``[start_s, end_s)``."""
        n = len(self.minute_frames)
        key = (n, id(self.minute_frames[-1]) if n else 0)
        if self._frame_cache is None or self._frame_cache[0] != key:
            whole = (
                pd.concat(self.minute_frames, ignore_index=True)
                if self.minute_frames
                else pd.DataFrame(columns=["offset_s", "decision_id", "outcome"])
            )
            self._frame_cache = (key, whole)
        df = self._frame_cache[1]
        if start_s is None and end_s is None:
            return df
        mask = np.ones(len(df), dtype=bool)
        offsets = df["offset_s"].to_numpy(float)
        if start_s is not None:
            mask &= offsets >= start_s
        if end_s is not None:
            mask &= offsets < end_s
        return df[mask]

    def queries(self, start_s: float | None = None, end_s: float | None = None) -> int:
        lo = 0 if start_s is None else int(np.searchsorted(self.arrivals, start_s, "left"))
        hi = (
            len(self.arrivals)
            if end_s is None
            else int(np.searchsorted(self.arrivals, end_s, "left"))
        )
        return max(0, hi - lo)

    def upstream_calls(self, start_s: float | None = None, end_s: float | None = None) -> int:
        lo = -math.inf if start_s is None else start_s
        hi = math.inf if end_s is None else end_s
        return sum(c for s, e, c in self.segment_calls if s >= lo and e <= hi)

    def ts(self, offset_s: float) -> str:
        return iso(self.start + pd.Timedelta(seconds=offset_s))

    def end_of(self, window: FaultWindow) -> float:
        return window.end_s if window.end_s is not None else self.duration_s

    def windows(self, selector: FaultSelector | None) -> list[FaultWindow]:
        if selector is None:
            return list(self.faults)
        return [f for f in self.faults if selector.matches(f)]

    def during(self, windows: Iterable[FaultWindow]) -> pd.DataFrame:
        parts = [self.frame(w.start_s, self.end_of(w)) for w in windows]
        if not parts:
            return self.frame(0, 0)
        return pd.concat(parts).drop_duplicates("decision_id")


class FaultSelector(ParamsModel):
    """Which fault windows a check measures from: by type and/or position in the scenario."""

    type: str | None = None
    index: int | None = Field(default=None, ge=0)

    def matches(self, window: FaultWindow) -> bool:
        if self.type is not None and window.type != self.type:
            return False
        return self.index is None or window.index == self.index

    def describe(self) -> str:
        if self.index is not None:
            return f"fault #{self.index}"
        return f"{self.type} fault" if self.type else "fault"
