"""The execution plane: kill switch, actuals, retries, circuit breakers, same-tier fallback,
rejection, and the seeded simulated upstream. Time is a fake clock driven by hand."""

from __future__ import annotations

import dataclasses
import logging
import statistics
from collections import Counter

import pytest
from decision_factory import DEFAULT_TEXT, default_config, make_decision

from router.breaker import BreakerEvent, BreakerState, CircuitBreaker
from router.config import BreakerConfig, RouterConfig
from router.decision import Outcome, ReasonCode
from router.execution import ExecutionPlane
from router.upstream import (
    SimulatedUpstream,
    Upstream,
    UpstreamErrorCode,
    UpstreamRequest,
    UpstreamResult,
    call_cost_usd,
    estimate_input_tokens,
)

LARGE = ("llama-3.1-405b-instruct", "mistral-large-2", "llama-3.2-90b-vision")


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class ScriptedUpstream:
    """A fault wrapper around the simulated upstream (the shape drills/faults.py takes): named
    models fail, or are slowed; every call is counted."""

    def __init__(self, inner: Upstream) -> None:
        self.inner = inner
        self.failing: dict[str, UpstreamErrorCode] = {}
        self.non_retryable: set[str] = set()
        self.add_ms: dict[str, float] = {}
        self.raising: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.requests: list[UpstreamRequest] = []

    def call(self, request: UpstreamRequest) -> UpstreamResult:
        name = request.model.name
        self.calls[name] += 1
        self.requests.append(request)
        if name in self.raising:
            raise RuntimeError(f"wrapper bug while handling {request.text}")
        if name in self.failing:
            return UpstreamResult.failure(
                self.failing[name],
                50.0,
                retryable=name not in self.non_retryable,
                detail="scripted",
            )
        result = self.inner.call(request)
        if name in self.add_ms:
            result = dataclasses.replace(result, latency_ms=result.latency_ms + self.add_ms[name])
        return result


def make_config(
    *,
    quiet: bool = True,
    breaker: dict | None = None,
    privacy_model: str | None = None,
    **execution,
) -> RouterConfig:
    """The packaged config with execution settings changed (validated again). ``quiet`` sets every
    model's error rate to 0 so only the scripted faults fail."""
    raw = default_config().model_dump(mode="json")
    if quiet:
        for m in raw["models"]:
            m["error_rate"] = 0.0
    raw["execution"].update(execution)
    raw["execution"]["breaker"].update(breaker or {})
    if privacy_model is not None:
        raw["routing"]["privacy_model"] = privacy_model
    return RouterConfig.model_validate(raw)


def make_plane(config: RouterConfig, *, seed: int = 3, clock: FakeClock | None = None):
    upstream = ScriptedUpstream(SimulatedUpstream(config, seed=seed))
    plane = ExecutionPlane(config, upstream, now=clock or FakeClock())
    return plane, upstream


def decisions(n: int, model: str = LARGE[0], *, query_id_prefix: str = "q", **kw):
    return [make_decision(model, query_id=f"{query_id_prefix}-{i:05d}", **kw) for i in range(n)]


# --- the kill switch ----------------------------------------------------------------------------
def test_decision_only_decisions_never_reach_upstream():
    plane, upstream = make_plane(make_config())
    for d in decisions(50, mode="decision-only"):
        out = plane.execute(d, DEFAULT_TEXT)
        assert out is d
        assert out.simulated is True
        assert out.outcome == Outcome.NOT_EXECUTED
        assert out.actual_latency_ms is None and out.actual_cost_usd is None
    assert plane.upstream_calls_total == 0
    assert sum(upstream.calls.values()) == 0


@pytest.mark.parametrize(
    "mode",
    ["Execution-Enabled", "execution-enabled ", " execution-enabled", "execution_enabled",
     "EXECUTION-ENABLED", "enabled", "true", "", "decision-only"],
)  # fmt: skip
def test_active_decision_with_a_mode_other_than_exactly_enabled_fails_closed(mode):
    plane, upstream = make_plane(make_config())
    d = make_decision(execution_mode=mode, execution_mode_active=True, simulated=False)
    out = plane.execute(d, DEFAULT_TEXT)
    assert plane.upstream_calls_total == 0
    assert sum(upstream.calls.values()) == 0
    assert out.execution_mode_active is False
    assert out.simulated is True
    assert out.outcome == Outcome.NOT_EXECUTED
    assert out.actual_latency_ms is None and out.actual_cost_usd is None
    assert ReasonCode.EXECUTION_MODE_INVALID.code in out.reasons
    assert plane.stats()["failed_closed"] == 1


def test_enabled_mode_but_inactive_flag_is_not_executed():
    plane, _ = make_plane(make_config())
    d = make_decision(execution_mode_active=False, simulated=True)
    assert plane.execute(d, DEFAULT_TEXT) is d
    assert plane.upstream_calls_total == 0


# --- actuals ------------------------------------------------------------------------------------
def test_executed_decision_carries_actuals_priced_from_the_catalog():
    config = make_config()
    plane, upstream = make_plane(config)
    d = make_decision()
    out = plane.execute(d, DEFAULT_TEXT)
    assert out.outcome == Outcome.OK
    assert out.simulated is False
    assert out.error_code is None
    assert out.model == d.model and out.model_tier == d.model_tier
    assert out.actual_latency_ms > 0
    # Only the execution fields change.
    changed = {f for f in d.to_dict() if d.to_dict()[f] != out.to_dict()[f]}
    assert changed == {"outcome", "actual_latency_ms", "actual_cost_usd"}
    (request,) = upstream.requests
    assert request.call_key == d.decision_id
    assert request.timeout_ms == config.execution.timeout_ms
    spec = config.model(d.model)
    in_tokens = estimate_input_tokens(DEFAULT_TEXT, config.limits.chars_per_token)
    priced = [call_cost_usd(spec, in_tokens, k) for k in range(1, spec.max_output_tokens + 1)]
    assert out.actual_cost_usd in priced
    assert plane.upstream_calls == {d.model: 1}


def test_output_tokens_follow_the_routed_level_and_the_model_cap():
    config = make_config()
    plane, upstream = make_plane(config)
    plane.execute(make_decision("llama-3.2-1b-instruct"), DEFAULT_TEXT)
    plane.execute(make_decision("llama-3.2-1b-instruct", query_id="q2", upscaled=True), "x")
    plane.execute(make_decision("sdxl-turbo"), "a cat in a space suit")
    trivial, upscaled, image = upstream.requests
    out = config.routing.expected_output_tokens
    assert trivial.expected_output_tokens == out["TRIVIAL"]
    assert upscaled.expected_output_tokens == out["SIMPLE"]
    assert image.max_output_tokens == 1 and image.expected_output_tokens == 1


def test_an_answer_after_the_timeout_is_a_timeout():
    config = make_config(timeout_ms=1000, retries=0)
    plane, upstream = make_plane(config)
    upstream.add_ms[LARGE[0]] = 5000
    out = plane.execute(make_decision(), DEFAULT_TEXT)
    assert out.outcome == Outcome.TIMEOUT
    assert out.error_code == "UPSTREAM_TIMEOUT"
    assert out.actual_latency_ms == 1000
    assert out.actual_cost_usd == 0
    assert ReasonCode.UPSTREAM_TIMEOUT.code in out.reasons


def test_an_upstream_that_raises_still_yields_a_decision_and_logs_no_text(caplog):
    plane, upstream = make_plane(make_config(retries=0))
    upstream.raising.add(LARGE[0])
    secret_text = "my card number is 4111 1111 1111 1111"
    with caplog.at_level(logging.DEBUG):
        out = plane.execute(make_decision(), secret_text)
    assert out.outcome == Outcome.ERROR
    assert out.error_code == "UPSTREAM_ERROR"
    assert "RuntimeError" in caplog.text
    assert "4111" not in caplog.text


def test_unknown_model_is_rejected_not_crashed():
    plane, _ = make_plane(make_config())
    out = plane.execute(dataclasses.replace(make_decision(), model="no-such-model"), DEFAULT_TEXT)
    assert out.outcome == Outcome.REJECTED
    assert out.error_code == "UPSTREAM_UNAVAILABLE"
    assert plane.upstream_calls_total == 0


# --- retries ------------------------------------------------------------------------------------
@pytest.mark.parametrize("retries", [0, 1, 3])
def test_retries_are_bounded(retries):
    # A breaker that cannot open within the test, so only the retry bound limits the calls.
    config = make_config(retries=retries, breaker={"min_calls": 20, "window": 20})
    plane, upstream = make_plane(config)
    upstream.failing[LARGE[0]] = UpstreamErrorCode.UPSTREAM_ERROR
    out = plane.execute(make_decision(), DEFAULT_TEXT)
    assert out.outcome == Outcome.ERROR
    assert out.error_code == "UPSTREAM_ERROR"
    assert ReasonCode.UPSTREAM_ERROR.code in out.reasons
    assert upstream.calls[LARGE[0]] == 1 + retries
    assert plane.upstream_calls == {LARGE[0]: 1 + retries}
    assert out.actual_latency_ms == pytest.approx(50.0 * (1 + retries))
    assert [r.attempt for r in upstream.requests] == list(range(1 + retries))


def test_a_retry_that_succeeds_is_ok_and_waits_for_both_attempts():
    config = make_config(retries=1)
    inner = SimulatedUpstream(config, seed=3)

    class FailFirst:
        def call(self, request: UpstreamRequest) -> UpstreamResult:
            if request.attempt == 0:
                return UpstreamResult.failure(UpstreamErrorCode.UPSTREAM_TIMEOUT, 10_000)
            return inner.call(request)

    plane = ExecutionPlane(config, FailFirst(), now=FakeClock())
    out = plane.execute(make_decision(), DEFAULT_TEXT)
    assert out.outcome == Outcome.OK
    assert out.actual_latency_ms > 10_000
    assert plane.upstream_calls_total == 2
    assert plane.stats()["retries"] == 1


def test_non_retryable_failures_are_not_retried():
    plane, upstream = make_plane(make_config(retries=3))
    upstream.failing[LARGE[0]] = UpstreamErrorCode.UPSTREAM_ERROR
    upstream.non_retryable.add(LARGE[0])
    out = plane.execute(make_decision(), DEFAULT_TEXT)
    assert out.outcome == Outcome.ERROR
    assert upstream.calls[LARGE[0]] == 1


# --- circuit breaker ----------------------------------------------------------------------------
BREAKER = BreakerConfig(
    window=10,
    min_calls=4,
    error_rate_threshold=0.5,
    slow_call_ms=1000,
    slow_rate_threshold=0.5,
    cooldown_s=30,
    half_open_max_calls=2,
)


def test_breaker_opens_after_min_calls_failures_half_opens_after_cooldown_and_closes():
    clock = FakeClock()
    events: list[BreakerEvent] = []
    b = CircuitBreaker("m", BREAKER, now=clock, on_event=events.append)
    for _ in range(3):
        assert b.try_acquire()
        b.record(ok=False, latency_ms=10)
    assert b.state is BreakerState.CLOSED  # 3 failures < min_calls
    assert b.try_acquire()
    b.record(ok=False, latency_ms=10)
    assert b.state is BreakerState.OPEN
    assert not b.try_acquire()

    clock.advance(29.9)
    assert b.state is BreakerState.OPEN
    clock.advance(0.1)
    assert b.state is BreakerState.HALF_OPEN
    assert b.try_acquire() and b.try_acquire()
    assert not b.try_acquire()  # only half_open_max_calls trial calls
    b.record(ok=True, latency_ms=10)
    assert b.state is BreakerState.HALF_OPEN
    b.record(ok=True, latency_ms=10)
    assert b.state is BreakerState.CLOSED

    assert [(e.old, e.new) for e in events] == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]
    assert [e.ts for e in events] == [1000.0, 1030.0, 1030.0]
    assert "error rate 100%" in events[0].reason
    assert all(e.model == "m" for e in events)


def test_breaker_reopens_when_a_half_open_trial_fails_or_is_slow():
    for ok, latency in [(False, 10), (True, 1500)]:
        clock = FakeClock()
        b = CircuitBreaker("m", BREAKER, now=clock)
        for _ in range(4):
            b.try_acquire()
            b.record(ok=False, latency_ms=10)
        clock.advance(30)
        assert b.try_acquire()
        b.record(ok=ok, latency_ms=latency)
        assert b.state is BreakerState.OPEN
        clock.advance(29)
        assert b.state is BreakerState.OPEN  # the cool-down restarted at the re-open


def test_a_result_counts_only_in_the_state_its_call_was_let_through_in():
    """A slow call let through before the breaker opened answers while it is half-open: it is
    not a trial, so it must not re-open the breaker (live: a latency spike's in-flight calls kept
    re-opening breakers after the rollback); the real trials close it."""
    clock = FakeClock()
    b = CircuitBreaker("m", BREAKER, now=clock)
    late = b.try_acquire()  # still in flight when the breaker opens
    for _ in range(4):
        b.record(ok=False, latency_ms=10, permit=b.try_acquire())
    assert b.state is BreakerState.OPEN
    clock.advance(30)
    trials = [b.try_acquire(), b.try_acquire()]
    assert b.state is BreakerState.HALF_OPEN and all(trials)
    b.record(ok=True, latency_ms=4000, permit=late)  # slow, but from the closed state
    assert b.state is BreakerState.HALF_OPEN
    for t in trials:
        b.record(ok=True, latency_ms=10, permit=t)
    assert b.state is BreakerState.CLOSED
    b.record(ok=False, latency_ms=4000, permit=trials[0])  # a trial answered twice: ignored
    assert b.state is BreakerState.CLOSED
    b.record(ok=True, latency_ms=1500)  # no permit: counted in the current state, as before
    assert b.state is BreakerState.CLOSED


def test_breaker_opens_on_slow_calls_even_when_they_succeed():
    b = CircuitBreaker("m", BREAKER, now=FakeClock())
    for latency in (100, 1200, 100, 1000):
        b.try_acquire()
        b.record(ok=True, latency_ms=latency)
    assert b.state is BreakerState.OPEN  # 2 of 4 calls >= slow_call_ms


def test_breaker_window_forgets_old_failures():
    b = CircuitBreaker("m", BREAKER, now=FakeClock())
    for ok in [False] * 4 + [True] * 6:  # opens after the 4th
        b.try_acquire()
        b.record(ok=ok, latency_ms=10)
    assert b.state is BreakerState.OPEN
    b2 = CircuitBreaker("m", BREAKER, now=FakeClock())
    for ok in [True] * 3 + [False] + [True] * 10 + [False] * 4:  # 4 of the last 10 failed
        b2.try_acquire()
        b2.record(ok=ok, latency_ms=10)
    assert b2.state is BreakerState.CLOSED
    b2.try_acquire()
    b2.record(ok=False, latency_ms=10)  # 5 of the last 10
    assert b2.state is BreakerState.OPEN


def test_plane_breaker_opens_half_opens_on_the_virtual_clock_and_closes_on_success():
    clock = FakeClock()
    config = make_config(fallback="none", retries=0)
    seen: list[BreakerEvent] = []
    upstream = ScriptedUpstream(SimulatedUpstream(config, seed=3))
    plane = ExecutionPlane(config, upstream, now=clock, on_breaker_event=seen.append)
    upstream.failing[LARGE[0]] = UpstreamErrorCode.UPSTREAM_ERROR
    min_calls = config.execution.breaker.min_calls
    outs = [plane.execute(d, DEFAULT_TEXT) for d in decisions(min_calls + 3)]
    assert [o.outcome for o in outs] == ["error"] * min_calls + ["rejected"] * 3
    assert plane.breaker_states()[LARGE[0]] == "open"
    assert upstream.calls[LARGE[0]] == min_calls

    upstream.failing.clear()  # the model recovers; the breaker only finds out after the cool-down
    clock.advance(config.execution.breaker.cooldown_s)
    assert plane.breaker_states()[LARGE[0]] == "half_open"
    trials = config.execution.breaker.half_open_max_calls
    outs = [plane.execute(d, DEFAULT_TEXT) for d in decisions(trials, query_id_prefix="t")]
    assert all(o.outcome == "ok" for o in outs)
    assert plane.breaker_states()[LARGE[0]] == "closed"
    assert [(e.model, e.old.value, e.new.value) for e in seen] == [
        (LARGE[0], "closed", "open"),
        (LARGE[0], "open", "half_open"),
        (LARGE[0], "half_open", "closed"),
    ]
    assert plane.breaker_events == seen
    assert seen[1].ts == clock.t


# --- fallback -----------------------------------------------------------------------------------
def test_same_tier_fallback_is_used_and_recorded_never_a_lower_tier():
    config = make_config(fallback="same_tier")
    plane, upstream = make_plane(config)
    upstream.failing[LARGE[0]] = UpstreamErrorCode.UPSTREAM_ERROR
    outs = [plane.execute(d, DEFAULT_TEXT) for d in decisions(40)]
    assert plane.breaker_states()[LARGE[0]] == "open"

    fallbacks = [o for o in outs if o.outcome == Outcome.FALLBACK]
    assert len(fallbacks) >= 30
    for o in fallbacks:
        assert o.model == LARGE[1]  # the next large model in catalog order
        assert o.model_tier == "large"
        assert config.model(o.model).tier == "large"
        assert {ReasonCode.FALLBACK_SAME_TIER.code, ReasonCode.CIRCUIT_OPEN.code} <= set(o.reasons)
        assert o.error_code is None and o.actual_cost_usd > 0
    # Every call went to a large model: nothing was downgraded.
    assert {config.model(m).tier for m in upstream.calls} == {"large"}


def test_fallback_none_rejects_when_the_chosen_models_breaker_is_open():
    config = make_config(fallback="none", retries=0)
    plane, upstream = make_plane(config)
    upstream.failing[LARGE[0]] = UpstreamErrorCode.UPSTREAM_ERROR
    for d in decisions(config.execution.breaker.min_calls):
        plane.execute(d, DEFAULT_TEXT)
    assert plane.breaker_states()[LARGE[0]] == "open"
    calls_before = plane.upstream_calls_total
    d = make_decision(query_id="q-retry-me")
    out = plane.execute(d, DEFAULT_TEXT)
    assert out.outcome == Outcome.REJECTED
    assert out.error_code == "UPSTREAM_UNAVAILABLE"
    assert out.decision_id == d.decision_id  # the retry handle
    assert out.model == d.model
    assert out.simulated is False
    assert out.actual_latency_ms == 0 and out.actual_cost_usd == 0
    assert {ReasonCode.UPSTREAM_UNAVAILABLE.code, ReasonCode.CIRCUIT_OPEN.code} <= set(out.reasons)
    assert ReasonCode.FALLBACK_SAME_TIER.code not in out.reasons
    assert plane.upstream_calls_total == calls_before
    assert set(plane.upstream_calls) == {LARGE[0]}


def test_all_models_of_the_tier_unhealthy_is_rejected_not_downgraded():
    config = make_config(fallback="same_tier", retries=1)
    plane, upstream = make_plane(config)
    for m in LARGE:
        upstream.failing[m] = UpstreamErrorCode.UPSTREAM_TIMEOUT
    outs = [plane.execute(d, DEFAULT_TEXT) for d in decisions(30)]
    assert set(plane.breaker_states()[m] for m in LARGE) == {"open"}
    assert outs[-1].outcome == Outcome.REJECTED
    assert outs[-1].error_code == "UPSTREAM_UNAVAILABLE"
    assert {o.outcome for o in outs} <= {"timeout", "rejected"}
    assert all(o.model in LARGE for o in outs)
    timeouts = [o for o in outs if o.outcome == "timeout"]
    assert timeouts and all(o.error_code == "UPSTREAM_TIMEOUT" for o in timeouts)
    assert set(upstream.calls) <= set(LARGE)


def test_a_private_decision_never_falls_back_off_the_private_model():
    config = make_config(fallback="same_tier", retries=0, privacy_model=LARGE[0])
    plane, upstream = make_plane(config)
    upstream.failing[LARGE[0]] = UpstreamErrorCode.UPSTREAM_ERROR
    outs = [plane.execute(d, DEFAULT_TEXT) for d in decisions(10, privacy_required=True)]
    assert {o.outcome for o in outs} == {"error", "rejected"}
    assert set(upstream.calls) == {LARGE[0]}
    # A non-private decision for the same model may use the same tier.
    assert plane.execute(make_decision(query_id="public"), DEFAULT_TEXT).outcome == "fallback"


def test_service_models_fall_back_only_to_services_of_the_same_tier():
    config = make_config()
    plane, upstream = make_plane(config)
    upstream.failing["sdxl-turbo"] = UpstreamErrorCode.UPSTREAM_ERROR
    outs = [plane.execute(d, "a lighthouse") for d in decisions(20, model="sdxl-turbo")]
    assert {o.model for o in outs if o.outcome == "fallback"} == {"flux.1-schnell"}
    assert set(upstream.calls) == {"sdxl-turbo", "flux.1-schnell"}


# --- the simulated upstream ---------------------------------------------------------------------
def test_simulated_actuals_are_reproducible_for_a_seed_and_independent_of_call_order():
    config = default_config()  # the catalog's real error rates
    ds = [d for m in config.model_names for d in decisions(30, model=m, query_id_prefix=m)]

    def run(seed: int, order: list) -> dict:
        plane = ExecutionPlane(config, SimulatedUpstream(config, seed), now=FakeClock())
        outs = [plane.execute(d, DEFAULT_TEXT) for d in order]
        return {o.decision_id: (o.outcome, o.actual_latency_ms, o.actual_cost_usd) for o in outs}

    first = run(7, ds)
    assert first == run(7, ds) == run(7, ds[::-1])
    assert first != run(8, ds)
    assert len(first) == len(ds)


def test_simulated_latency_tokens_and_errors_follow_the_catalog():
    raw = default_config().model_dump(mode="json")
    raw["models"][0]["error_rate"] = 0.2
    config = RouterConfig.model_validate(raw)
    spec = config.models[0]
    sim = SimulatedUpstream(config, seed=11)
    text = "x" * 4000  # 1000 input tokens: prefill adds per_1k_input_ms
    results = [
        sim.call(
            UpstreamRequest(
                spec, text, max_output_tokens=100, timeout_ms=60_000, call_key=f"k{i}",
                expected_output_tokens=60,
            )
        )
        for i in range(4000)
    ]  # fmt: skip
    errors = [r for r in results if not r.ok]
    assert 0.17 < len(errors) / len(results) < 0.23
    assert all(r.error_code == "UPSTREAM_ERROR" and r.cost_usd == 0 for r in errors)
    lat = sorted(r.latency_ms for r in results)
    prefill = spec.latency.per_1k_input_ms
    assert statistics.median(lat) == pytest.approx(spec.latency.p50_ms + prefill, rel=0.05)
    assert lat[int(0.95 * len(lat))] == pytest.approx(spec.latency.p95_ms + prefill, rel=0.08)
    ok = [r for r in results if r.ok]
    assert all(1 <= r.output_tokens <= 100 for r in ok)
    assert statistics.median(r.output_tokens for r in ok) == pytest.approx(60 * 0.94, rel=0.1)
    assert all(r.input_tokens == 1000 for r in results)
    assert all(r.cost_usd == call_cost_usd(spec, 1000, r.output_tokens) for r in ok)


def test_simulated_timeout_is_decided_by_comparing_latency_not_by_waiting():
    config = default_config()
    sim = SimulatedUpstream(config, seed=1)
    spec = config.model("nemotron-ultra-253b")
    r = sim.call(UpstreamRequest(spec, "hello", max_output_tokens=10, timeout_ms=1.0))
    assert not r.ok
    assert r.error_code == "UPSTREAM_TIMEOUT"
    assert r.latency_ms == 1.0


def test_request_repr_never_shows_the_text():
    spec = default_config().models[0]
    req = UpstreamRequest(spec, "private words", max_output_tokens=5, timeout_ms=10)
    assert "private words" not in repr(req)
