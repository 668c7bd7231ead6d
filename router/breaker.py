"""A circuit breaker per model: stop sending traffic to a model that is failing or slow, and probe
it again after a cool-down.

Time comes from an injected clock (``now``, seconds), so a drill on a virtual clock opens,
half-opens and closes breakers in virtual time, and a test drives the cool-down by hand.

States (after Resilience4j / Hystrix):

- ``closed``: calls pass; the last ``window`` call results are kept. Once at least ``min_calls``
  are in the window, the breaker opens when the failure rate reaches ``error_rate_threshold`` or
  the slow-call rate (latency >= ``slow_call_ms``, failed or not) reaches ``slow_rate_threshold``.
- ``open``: no call passes. After ``cooldown_s`` on the clock the breaker becomes half-open.
- ``half_open``: up to ``half_open_max_calls`` trial calls pass. When that many trials succeed
  the breaker closes; one failed *or slow* trial re-opens it (a model still inside a latency
  spike must not be declared healthy).

A call is judged in the state it was let through in: :meth:`try_acquire` hands out a
:class:`Permit` naming the breaker's current epoch (one per state change), and :meth:`record`
ignores a result whose permit is from an earlier epoch. Otherwise a slow call let through
before the breaker opened, answering 4 s later, would be taken for a half-open trial and
re-open a breaker whose model is already fast again (seen live: a latency spike's in-flight
calls kept re-opening large-tier breakers after the rollback).

Every state change is a :class:`BreakerEvent`, handed to ``on_event`` so a drill can journal
"breaker open / half_open / closed" with its virtual timestamp.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from router.config import BreakerConfig


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to send one call, from the breaker's state epoch ``epoch`` (truthy)."""

    epoch: int


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """One state change. ``ts`` is on the breaker's clock (virtual seconds in a drill)."""

    ts: float
    model: str
    old: BreakerState
    new: BreakerState
    reason: str


class CircuitBreaker:
    """Sliding-window breaker for one model. Thread-safe: one lock guards the state."""

    def __init__(
        self,
        model: str,
        config: BreakerConfig,
        *,
        now: Callable[[], float],
        on_event: Callable[[BreakerEvent], None] | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self._now = now
        self._on_event = on_event
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._window: deque[tuple[bool, bool]] = deque()
        self._failures = 0
        self._slow = 0
        self._opened_at = 0.0
        self._trial_permits = 0
        self._trial_successes = 0
        self._epoch = 0  # +1 at every state change: a permit's result counts in its own epoch

    # --- reading ----------------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        """The state now; an open breaker whose cool-down has passed reads (and becomes) half-open."""
        with self._lock:
            event = self._refresh()
            state = self._state
        self._emit(event)
        return state

    def available(self) -> bool:
        """Would a call be let through now? Does not take a trial permit."""
        with self._lock:
            event = self._refresh()
            ok = self._state is BreakerState.CLOSED or (
                self._state is BreakerState.HALF_OPEN
                and self._trial_permits < self.config.half_open_max_calls
            )
        self._emit(event)
        return ok

    # --- calling ----------------------------------------------------------------------------
    def try_acquire(self) -> Permit | None:
        """Ask to send one call: a :class:`Permit` to hand back to :meth:`record`, or None.
        In half-open this takes one of the trial permits."""
        with self._lock:
            event = self._refresh()
            if self._state is BreakerState.CLOSED:
                ok = True
            elif (
                self._state is BreakerState.HALF_OPEN
                and self._trial_permits < self.config.half_open_max_calls
            ):
                self._trial_permits += 1
                ok = True
            else:
                ok = False
            permit = Permit(self._epoch) if ok else None
        self._emit(event)
        return permit

    def record(self, *, ok: bool, latency_ms: float, permit: Permit | None = None) -> None:
        """Record the result of a call that :meth:`try_acquire` let through. With its ``permit``,
        a result from an earlier state (the breaker opened, half-opened or closed since the call
        was let through) is ignored; without one it counts in the current state."""
        cfg = self.config
        slow = latency_ms >= cfg.slow_call_ms
        failed = not ok
        event: BreakerEvent | None = None
        with self._lock:
            if permit is not None and permit.epoch != self._epoch:
                pass  # judged in the state it was let through in, which has ended
            elif self._state is BreakerState.CLOSED:
                window = self._window
                if len(window) >= cfg.window:
                    old_failed, old_slow = window.popleft()
                    self._failures -= old_failed
                    self._slow -= old_slow
                window.append((failed, slow))
                self._failures += failed
                self._slow += slow
                n = len(window)
                if n >= cfg.min_calls:
                    error_rate = self._failures / n
                    slow_rate = self._slow / n
                    if error_rate >= cfg.error_rate_threshold:
                        event = self._open(
                            f"error rate {error_rate:.0%} over the last {n} calls"
                            f" >= {cfg.error_rate_threshold:.0%}"
                        )
                    elif slow_rate >= cfg.slow_rate_threshold:
                        event = self._open(
                            f"slow-call rate {slow_rate:.0%} (>= {cfg.slow_call_ms:g} ms) over the"
                            f" last {n} calls >= {cfg.slow_rate_threshold:.0%}"
                        )
            elif self._state is BreakerState.HALF_OPEN:
                if failed or slow:
                    what = "failed" if failed else f"was slow ({latency_ms:.0f} ms)"
                    event = self._open(f"half-open trial call {what}")
                else:
                    self._trial_successes += 1
                    if self._trial_successes >= cfg.half_open_max_calls:
                        event = self._transition(
                            BreakerState.CLOSED,
                            f"{self._trial_successes} half-open trial calls succeeded",
                        )
            # OPEN: a late result of a call let through before the breaker opened changes nothing.
        self._emit(event)

    # --- internals (called with the lock held) -------------------------------------------------
    def _refresh(self) -> BreakerEvent | None:
        if (
            self._state is BreakerState.OPEN
            and self._now() - self._opened_at >= self.config.cooldown_s
        ):
            return self._transition(
                BreakerState.HALF_OPEN, f"cool-down of {self.config.cooldown_s:g} s elapsed"
            )
        return None

    def _open(self, reason: str) -> BreakerEvent:
        event = self._transition(BreakerState.OPEN, reason)
        self._opened_at = event.ts
        return event

    def _transition(self, new: BreakerState, reason: str) -> BreakerEvent:
        event = BreakerEvent(self._now(), self.model, self._state, new, reason)
        self._state = new
        self._epoch += 1
        self._window.clear()
        self._failures = 0
        self._slow = 0
        self._trial_permits = 0
        self._trial_successes = 0
        return event

    def _emit(self, event: BreakerEvent | None) -> None:
        # Outside the lock, so a callback may read the breaker without deadlocking.
        if event is not None and self._on_event is not None:
            self._on_event(event)
