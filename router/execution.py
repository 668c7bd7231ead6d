"""The execution plane: turn a routing decision into a model call, fail-safe.

The decision plane has already decided (and logged) when :meth:`ExecutionPlane.execute` runs:
execution only fills in what happened (``outcome``, ``actual_latency_ms``, ``actual_cost_usd``,
``error_code``) and never raises for an upstream problem, so every query keeps its decision
whatever the models do. The guarantees, in the order ``execute`` applies them:

1. **Kill switch.** A decision whose effective mode is not active is returned unchanged: no
   upstream call. Defence in depth: a decision claiming to be active while its
   ``execution_mode`` is not exactly ``execution-enabled`` is not executed either; it comes back
   failed closed (inactive, ``not_executed``, ``EXECUTION_MODE_INVALID``).
2. **Per-call timeout, bounded retries.** At most ``1 + execution.retries`` calls per decision;
   only errors and timeouts are retried, never a non-retryable failure (a 4xx, a missing key).
   A result slower than ``timeout_ms`` is a timeout, whoever produced it.
3. **Circuit breaker per model** (:mod:`router.breaker`): every call is counted in the breaker
   of the model that served it, and a model whose breaker is open gets no calls.
4. **Fallback, never a downgrade.** With ``fallback: same_tier`` a call goes to the next model
   of the *same tier and kind* (catalog order) whose breaker lets calls through; with ``none``
   there is no alternative. A lower tier is never used. A decision that needs the private
   deployment (``privacy_required`` with ``routing.privacy_model`` set) never falls back.
5. **Rejection with a retry handle.** When no healthy model remains before any call, the
   outcome is ``rejected`` with error code ``UPSTREAM_UNAVAILABLE``; the caller retries with the
   decision_id (the seed's HTTP 503).

Recording (schema 1.0.0 has no served-model column, so this is the chosen convention):

- ``model`` is the model that *served* the call (or made the last failed attempt), so the actuals
  always belong to the model named next to them. ``model_tier`` is unchanged, since fallback is
  same-tier. ``latency_estimate_ms`` / ``cost_estimate_usd`` stay the router's estimates for its
  own choice.
- A fallback is never silent: outcome ``fallback`` plus reason codes ``CIRCUIT_OPEN`` (the
  routed model's breaker refused) and ``FALLBACK_SAME_TIER``. The routed model is recoverable by
  replaying the query (the router is deterministic) and is named in the debug log.
- ``actual_latency_ms`` is what the caller waited: every attempt, retries included (0 when
  nothing was called). ``actual_cost_usd`` sums what was billed (failed calls cost nothing).
- ``simulated`` is False for every decision the plane executed or rejected; it stays True only
  for decision-only decisions. Which upstream implementation ran is a property of the run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace

from router.breaker import BreakerEvent, BreakerState, CircuitBreaker
from router.config import ModelSpec, RouterConfig
from router.decision import (
    LEVELS,
    REASON_SEPARATOR,
    Decision,
    ExecutionMode,
    Outcome,
    ReasonCode,
    split_reasons,
)
from router.upstream import (
    Upstream,
    UpstreamErrorCode,
    UpstreamRequest,
    UpstreamResult,
)

log = logging.getLogger(__name__)

MAX_KEPT_EVENTS = 10_000  # breaker events kept in memory; the callback sees every one

_ENABLED = ExecutionMode.EXECUTION_ENABLED.value
_OK = Outcome.OK.value


def _with_reasons(existing: str, *codes: ReasonCode) -> str:
    """Append codes not already present, keeping the router's codes and their order."""
    present = split_reasons(existing)
    added = [c.code for c in codes if c.code not in present]
    if not added:
        return existing
    return REASON_SEPARATOR.join(present + added)


class ExecutionPlane:
    """Executes decisions against an :class:`~router.upstream.Upstream`. Safe to share between
    threads: breakers and counters are lock-guarded; the upstream must be thread-safe too."""

    def __init__(
        self,
        config: RouterConfig,
        upstream: Upstream,
        *,
        now: Callable[[], float] = time.monotonic,
        on_breaker_event: Callable[[BreakerEvent], None] | None = None,
    ) -> None:
        self.config = config
        self.upstream = upstream
        self.now = now
        ex = config.execution
        self._timeout_ms = ex.timeout_ms
        self._attempts = 1 + ex.retries
        self._fallback = ex.fallback
        self._privacy_model = config.routing.privacy_model
        self._user_on_event = on_breaker_event
        self._events: deque[BreakerEvent] = deque(maxlen=MAX_KEPT_EVENTS)
        self._specs: dict[str, ModelSpec] = {m.name: m for m in config.models}
        self._breakers: dict[str, CircuitBreaker] = {
            m.name: CircuitBreaker(m.name, ex.breaker, now=now, on_event=self._on_event)
            for m in config.models
        }
        self._alternatives: dict[str, tuple[ModelSpec, ...]] = {
            m.name: tuple(
                o
                for o in config.models
                if o.name != m.name and o.tier == m.tier and o.kind == m.kind
            )
            for m in config.models
        }
        # (complexity_level, upscaled) -> expected output tokens of the level actually routed to
        out = config.routing.expected_output_tokens
        self._expected_out: dict[tuple[str, bool], int] = {
            (lv.value, up): out[LEVELS[min(i + int(up), len(LEVELS) - 1)].value]
            for i, lv in enumerate(LEVELS)
            for up in (False, True)
        }
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._stats: Counter[str] = Counter()

    # --- observation ----------------------------------------------------------------------------
    def breaker_states(self) -> dict[str, str]:
        """Model -> ``closed`` | ``open`` | ``half_open`` now (an elapsed cool-down is applied)."""
        return {name: b.state.value for name, b in self._breakers.items()}

    def breaker(self, model: str) -> CircuitBreaker:
        return self._breakers[model]

    @property
    def breaker_events(self) -> list[BreakerEvent]:
        """The last state changes (at most ``MAX_KEPT_EVENTS``), oldest first."""
        return list(self._events)

    @property
    def upstream_calls(self) -> dict[str, int]:
        """Calls actually sent upstream, per model (retries included)."""
        with self._lock:
            return dict(self._calls)

    @property
    def upstream_calls_total(self) -> int:
        with self._lock:
            return sum(self._calls.values())

    def stats(self) -> dict[str, int]:
        """Counts by outcome (``outcome:ok`` ...), plus ``retries``, ``not_executed`` and
        ``failed_closed`` (active decisions refused because their mode was not exactly enabled)."""
        with self._lock:
            return dict(self._stats)

    # --- execution ------------------------------------------------------------------------------
    def execute(self, decision: Decision, text: str) -> Decision:
        """Execute one decision; returns the decision with its outcome and actuals filled in."""
        if not decision.execution_mode_active:
            self._count("not_executed")
            return decision
        if decision.execution_mode != _ENABLED:
            return self._fail_closed(decision)

        spec = self._specs.get(decision.model)
        if spec is None:
            log.warning(
                "decision %s routes to model %r, which the execution config's catalog does not"
                " have (known: %s): rejected",
                decision.decision_id,
                decision.model,
                ", ".join(self._specs),
            )
            return self._finish_rejected(decision, 0.0, circuit_open=False)

        if self._fallback == "same_tier" and not (
            decision.privacy_required and self._privacy_model is not None
        ):
            candidates = (spec, *self._alternatives[spec.name])
        else:
            candidates = (spec,)
        expected = self._expected_output_tokens(decision)

        spent_ms = 0.0
        cost = 0.0
        circuit_open = False
        attempt = 0
        last: tuple[ModelSpec, UpstreamResult] | None = None
        while attempt < self._attempts:
            chosen = permit = None
            for c in candidates:
                permit = self._breakers[c.name].try_acquire()
                if permit:
                    chosen = c
                    break
                circuit_open = True
            if chosen is None:
                break
            if attempt:
                self._count("retries")
            result = self._call(chosen, text, decision.decision_id, attempt, expected)
            attempt += 1
            spent_ms += result.latency_ms
            cost += result.cost_usd
            self._breakers[chosen.name].record(
                ok=result.ok, latency_ms=result.latency_ms, permit=permit
            )
            if result.ok:
                return self._finish_served(decision, spec, chosen, spent_ms, cost, circuit_open)
            last = (chosen, result)
            if not result.retryable:
                break

        if last is None:
            return self._finish_rejected(decision, spent_ms, circuit_open=circuit_open)
        return self._finish_failed(decision, spec, last, spent_ms, cost, circuit_open)

    # --- internals ------------------------------------------------------------------------------
    def _expected_output_tokens(self, decision: Decision) -> int | None:
        return self._expected_out.get((decision.complexity_level, bool(decision.upscaled)))

    def _call(
        self, model: ModelSpec, text: str, call_key: str, attempt: int, expected: int | None
    ) -> UpstreamResult:
        cap = model.max_output_tokens
        request = UpstreamRequest(
            model=model,
            text=text,
            max_output_tokens=cap,
            timeout_ms=self._timeout_ms,
            call_key=call_key,
            attempt=attempt,
            expected_output_tokens=None if expected is None else min(expected, cap),
        )
        with self._lock:
            self._calls[model.name] += 1
        try:
            result = self.upstream.call(request)
        except Exception as exc:  # noqa: BLE001 - an upstream bug must not cost the decision
            # Type only: a message could quote the request text.
            log.error(
                "upstream %s raised %s instead of returning a result; counted as UPSTREAM_ERROR",
                model.name,
                type(exc).__name__,
            )
            return UpstreamResult.failure(
                UpstreamErrorCode.UPSTREAM_ERROR, 0.0, detail=type(exc).__name__
            )
        if result.ok and result.latency_ms > self._timeout_ms:
            return UpstreamResult.failure(
                UpstreamErrorCode.UPSTREAM_TIMEOUT,
                self._timeout_ms,
                input_tokens=result.input_tokens,
                detail="answer arrived after the timeout",
            )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "upstream %s attempt %d: %s in %.1f ms",
                model.name,
                attempt,
                "ok" if result.ok else (result.detail or result.error_code),
                result.latency_ms,
            )
        return result

    def _count(self, key: str) -> None:
        with self._lock:
            self._stats[key] += 1

    def _on_event(self, event: BreakerEvent) -> None:
        self._events.append(event)
        # A fresh outage is a warning; the re-opens and probes that follow it are routine.
        fresh = event.new is BreakerState.OPEN and event.old is BreakerState.CLOSED
        level = logging.WARNING if fresh else logging.INFO
        log.log(
            level,
            "circuit breaker %s: %s -> %s (%s)",
            event.model,
            event.old.value,
            event.new.value,
            event.reason,
        )
        if self._user_on_event is not None:
            self._user_on_event(event)

    def _fail_closed(self, decision: Decision) -> Decision:
        log.warning(
            "decision %s is marked active but its execution_mode is %r, not exactly %r:"
            " not executed (failed closed)",
            decision.decision_id,
            decision.execution_mode,
            _ENABLED,
        )
        self._count("failed_closed")
        return replace(
            decision,
            execution_mode_active=False,
            simulated=True,
            outcome=Outcome.NOT_EXECUTED.value,
            actual_latency_ms=None,
            actual_cost_usd=None,
            error_code=None,
            reason_codes=_with_reasons(decision.reason_codes, ReasonCode.EXECUTION_MODE_INVALID),
        )

    def _finish_served(
        self,
        decision: Decision,
        routed: ModelSpec,
        served: ModelSpec,
        spent_ms: float,
        cost: float,
        circuit_open: bool,
    ) -> Decision:
        if served is routed:
            self._count("outcome:ok")
            return replace(
                decision,
                simulated=False,
                outcome=_OK,
                actual_latency_ms=round(spent_ms, 3),
                actual_cost_usd=round(cost, 8),
                error_code=None,
            )
        self._count("outcome:fallback")
        log.debug("decision %s: fallback %s -> %s", decision.decision_id, routed.name, served.name)
        codes = (ReasonCode.CIRCUIT_OPEN,) if circuit_open else ()
        return replace(
            decision,
            model=served.name,
            simulated=False,
            outcome=Outcome.FALLBACK.value,
            actual_latency_ms=round(spent_ms, 3),
            actual_cost_usd=round(cost, 8),
            error_code=None,
            reason_codes=_with_reasons(
                decision.reason_codes, *codes, ReasonCode.FALLBACK_SAME_TIER
            ),
        )

    def _finish_failed(
        self,
        decision: Decision,
        routed: ModelSpec,
        last: tuple[ModelSpec, UpstreamResult],
        spent_ms: float,
        cost: float,
        circuit_open: bool,
    ) -> Decision:
        model, result = last
        code = result.error_code or UpstreamErrorCode.UPSTREAM_ERROR
        timed_out = code is UpstreamErrorCode.UPSTREAM_TIMEOUT
        outcome = Outcome.TIMEOUT if timed_out else Outcome.ERROR
        self._count(f"outcome:{outcome.value}")
        codes: list[ReasonCode] = []
        if circuit_open:
            codes.append(ReasonCode.CIRCUIT_OPEN)
        if model is not routed:
            codes.append(ReasonCode.FALLBACK_SAME_TIER)
        codes.append(ReasonCode.UPSTREAM_TIMEOUT if timed_out else ReasonCode.UPSTREAM_ERROR)
        return replace(
            decision,
            model=model.name,
            simulated=False,
            outcome=outcome.value,
            actual_latency_ms=round(spent_ms, 3),
            actual_cost_usd=round(cost, 8),
            error_code=code.value,
            reason_codes=_with_reasons(decision.reason_codes, *codes),
        )

    def _finish_rejected(
        self, decision: Decision, spent_ms: float, *, circuit_open: bool
    ) -> Decision:
        self._count("outcome:rejected")
        codes = (ReasonCode.CIRCUIT_OPEN,) if circuit_open else ()
        return replace(
            decision,
            simulated=False,
            outcome=Outcome.REJECTED.value,
            actual_latency_ms=round(spent_ms, 3),
            actual_cost_usd=0.0,
            error_code=UpstreamErrorCode.UPSTREAM_UNAVAILABLE.value,
            reason_codes=_with_reasons(
                decision.reason_codes, *codes, ReasonCode.UPSTREAM_UNAVAILABLE
            ),
        )
