"""Fault injectors at the three boundaries a drill can break, and the rollbacks that undo them.

- **upstream**: :class:`FaultyUpstream` wraps the configured :class:`~router.upstream.Upstream`
  (the shape ``router/upstream.py`` documents), so the execution plane, its retries, timeouts and
  circuit breakers see the fault exactly as they would see a sick model.
- **store**: :class:`StoreFaultHook` is the telemetry store's ``write_failure_hook``; it returns a
  real ``sqlalchemy.exc.OperationalError`` (``telemetry.errors.make_store_fault``), which takes the
  store's real except-branch, retry and spool path.
- **config**: the ``toggle`` fault sets the router's kill switch to a value, valid or not; the
  runner applies it at the next routing segment, as a config reload would.

Adding a fault is adding a class here and a line in ``FAULTS`` (RouteLLM's registry shape).
Randomness is seeded and keyed by (seed, fault, call, attempt), so a drill replays identically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from abc import ABC
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drills.registry import Registry
from telemetry.errors import FAULT_MESSAGES, make_store_fault

if TYPE_CHECKING:
    from router.config import ModelSpec
    from router.upstream import Upstream, UpstreamRequest, UpstreamResult

Boundary = Literal["upstream", "store", "config"]
_TWO_POW_53 = float(2**53)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """What an upstream fault hits: one model, one tier, or (both None) every model."""

    model: str | None = None
    tier: str | None = None

    def matches(self, spec: ModelSpec) -> bool:
        if self.model is not None and spec.name != self.model:
            return False
        return self.tier is None or spec.tier == self.tier

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("model", self.model), ("tier", self.tier)) if v is not None}

    def describe(self) -> str:
        if self.model:
            return f"model {self.model}"
        if self.tier:
            return f"tier {self.tier}"
        return "every model"


class FaultInjector(ABC):
    """One scheduled fault. The runner switches it on and off on the virtual clock."""

    type: ClassVar[str]
    boundary: ClassVar[Boundary]
    summary: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = _Params
    takes_target: ClassVar[bool] = False

    def __init__(
        self,
        index: int,
        params: BaseModel,
        *,
        target: Target | None = None,
        probability: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.index = index
        self.params = params
        self.target = target or Target()
        self.probability = probability
        self.seed = seed
        self.active = False
        self.started_at_s: float | None = None
        self.injected = 0
        """How many times this fault actually changed a call or a write."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(#{self.index}, {self.target.describe()}, active={self.active})"
        )

    def describe(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.params.model_dump().items() if v is not None)
        where = f" on {self.target.describe()}" if self.takes_target else ""
        return f"{self.type}{where}" + (f" ({params})" if params else "")


# ----------------------------------------------------------------------------- upstream


class UpstreamFault(FaultInjector):
    boundary: ClassVar[Boundary] = "upstream"
    takes_target: ClassVar[bool] = True

    def before(
        self, request: UpstreamRequest, u: tuple[float, float], now_s: float
    ) -> UpstreamResult | None:
        """Short-circuit the call with a result (the model is not called), or None."""
        return None

    def after(
        self,
        request: UpstreamRequest,
        result: UpstreamResult,
        u: tuple[float, float],
        now_s: float,
    ) -> UpstreamResult:
        """Change what the model returned."""
        return result


class _LatencyParams(_Params):
    add_ms: float = Field(gt=0, description="latency added to every matching call (ms)")
    jitter_ms: float = Field(default=0.0, ge=0, description="uniform +- jitter around add_ms")


class UpstreamLatency(UpstreamFault):
    type = "upstream_latency"
    summary = "add_ms (+- jitter_ms) to every call of the target model or tier"
    Params = _LatencyParams

    def after(self, request, result, u, now_s):  # noqa: D102
        p: _LatencyParams = self.params  # type: ignore[assignment]
        extra = max(0.0, p.add_ms + (2.0 * u[1] - 1.0) * p.jitter_ms)
        self.injected += 1
        return dataclasses.replace(result, latency_ms=round(result.latency_ms + extra, 3))


class _CreepParams(_Params):
    ms_per_minute: float = Field(gt=0, description="latency added per virtual minute of fault")
    max_add_ms: float | None = Field(default=None, gt=0, description="cap on the added latency")


class UpstreamLatencyCreep(UpstreamFault):
    type = "upstream_latency_creep"
    summary = "latency grows by ms_per_minute since the fault started (a slow regression)"
    Params = _CreepParams

    def after(self, request, result, u, now_s):  # noqa: D102
        p: _CreepParams = self.params  # type: ignore[assignment]
        since = max(0.0, now_s - (self.started_at_s or 0.0))
        extra = p.ms_per_minute * since / 60.0
        if p.max_add_ms is not None:
            extra = min(extra, p.max_add_ms)
        self.injected += 1
        return dataclasses.replace(result, latency_ms=round(result.latency_ms + extra, 3))


class _ErrorParams(_Params):
    error_rate: float = Field(default=1.0, gt=0, le=1, description="share of calls that fail")
    code: Literal["UPSTREAM_ERROR", "UPSTREAM_TIMEOUT"] = "UPSTREAM_ERROR"
    latency_ms: float | None = Field(
        default=None, ge=0, description="time until the failure (default 20 ms; timeout_ms)"
    )
    retryable: bool = True


class UpstreamError(UpstreamFault):
    type = "upstream_error"
    summary = "error_rate of calls to the target fail (UPSTREAM_ERROR or UPSTREAM_TIMEOUT)"
    Params = _ErrorParams

    def before(self, request, u, now_s):  # noqa: D102
        from router.upstream import UpstreamErrorCode, UpstreamResult

        p: _ErrorParams = self.params  # type: ignore[assignment]
        if u[1] >= p.error_rate:
            return None
        code = UpstreamErrorCode(p.code)
        if p.latency_ms is not None:
            latency = p.latency_ms
        else:
            latency = request.timeout_ms if code is UpstreamErrorCode.UPSTREAM_TIMEOUT else 20.0
        self.injected += 1
        return UpstreamResult.failure(
            code, latency, retryable=p.retryable, detail=f"drill fault {self.type}"
        )


class _TokenParams(_Params):
    factor: float = Field(gt=0, description="multiplier on output tokens (and so on cost)")


class TokenMultiplier(UpstreamFault):
    type = "token_multiplier"
    summary = "output tokens (and their cost) of the target multiplied by factor: a cost spike"
    Params = _TokenParams

    def after(self, request, result, u, now_s):  # noqa: D102
        from router.upstream import call_cost_usd

        if not result.ok:
            return result
        p: _TokenParams = self.params  # type: ignore[assignment]
        tokens = max(1, round(result.output_tokens * p.factor))
        self.injected += 1
        return dataclasses.replace(
            result,
            output_tokens=tokens,
            cost_usd=call_cost_usd(request.model, result.input_tokens, tokens),
        )


class FaultyUpstream:
    """The upstream the execution plane calls during a drill: the real (simulated) upstream with
    the active upstream faults applied. Counts every call and every billed dollar per model."""

    def __init__(self, inner: Upstream, now_s: Callable[[], float], seed: int = 0) -> None:
        self.inner = inner
        self.now_s = now_s
        self.seed = seed
        self.faults: list[UpstreamFault] = []
        self.calls: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.billed_usd = 0.0
        self.total_calls = 0
        self.call_keys: dict[str, str] = {}
        """decision_id -> a run-independent key (the query id), so the simulated models draw
        the same latencies and errors in every run of a scenario, whatever its run id."""

    def __repr__(self) -> str:
        return f"FaultyUpstream({self.inner!r}, faults={len(self.faults)})"

    def _draw(self, fault: UpstreamFault, request: UpstreamRequest) -> tuple[float, float]:
        key = request.call_key or f"#{self.total_calls}"
        digest = hashlib.blake2b(
            f"{self.seed}\x1f{fault.index}\x1f{key}\x1f{request.attempt}".encode(),
            digest_size=16,
        ).digest()
        a = (int.from_bytes(digest[:8], "little") >> 11) / _TWO_POW_53
        b = (int.from_bytes(digest[8:], "little") >> 11) / _TWO_POW_53
        return a, b

    def call(self, request: UpstreamRequest) -> UpstreamResult:
        self.total_calls += 1
        stable = self.call_keys.get(request.call_key or "")
        if stable is not None:
            request = dataclasses.replace(request, call_key=stable)
        self.calls[request.model.name] += 1
        now = self.now_s()
        hits = []
        for fault in self.faults:
            if fault.active and fault.target.matches(request.model):
                u = self._draw(fault, request)
                if u[0] < fault.probability:
                    hits.append((fault, u))
        result = None
        for fault, u in hits:
            result = fault.before(request, u, now)
            if result is not None:
                break
        if result is None:
            result = self.inner.call(request)
            for fault, u in hits:
                result = fault.after(request, result, u, now)
        if result.ok:
            self.billed_usd += result.cost_usd
        else:
            self.failures[request.model.name] += 1
        return result


# ----------------------------------------------------------------------------- store


class _StoreParams(_Params):
    failure_rate: float | None = Field(
        default=None, gt=0, le=1, description="share of write attempts that fail (default 1.0)"
    )
    full: bool = Field(default=False, description="full outage: every write attempt fails")
    kind: str | None = Field(
        default=None,
        description="database error kind: "
        + ", ".join(FAULT_MESSAGES)
        + " (default locked; connection_refused when full)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> _StoreParams:
        if self.kind is not None and self.kind not in FAULT_MESSAGES:
            raise ValueError(
                f"kind {self.kind!r} is not a store fault kind; valid: {', '.join(FAULT_MESSAGES)}"
            )
        if self.full and self.failure_rate not in (None, 1.0):
            raise ValueError("full: true means every write fails; drop failure_rate or set 1.0")
        return self

    @property
    def rate(self) -> float:
        return 1.0 if self.full or self.failure_rate is None else self.failure_rate

    @property
    def error_kind(self) -> str:
        return self.kind or ("connection_refused" if self.full else "locked")


class StoreWriteFailure(FaultInjector):
    type = "store_write_failure"
    boundary: ClassVar[Boundary] = "store"
    summary = "failure_rate of telemetry write attempts raise a real OperationalError (full: all)"
    Params = _StoreParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rng = random.Random(f"{self.seed}\x1fstore\x1f{self.index}")

    def maybe_fail(self) -> BaseException | None:
        p: _StoreParams = self.params  # type: ignore[assignment]
        if self._rng.random() >= self.probability * p.rate:
            return None
        self.injected += 1
        return make_store_fault(p.error_kind)


class StoreFaultHook:
    """The store's ``write_failure_hook``: consulted before every decision-write attempt."""

    def __init__(self) -> None:
        self.faults: list[StoreWriteFailure] = []
        self.attempts = 0
        self.failures = 0

    def __call__(self) -> BaseException | None:
        self.attempts += 1
        for fault in self.faults:
            if fault.active:
                exc = fault.maybe_fail()
                if exc is not None:
                    self.failures += 1
                    return exc
        return None


# ----------------------------------------------------------------------------- config


class _ToggleParams(_Params):
    value: str | None = Field(description="AMAIMA_EXECUTION_MODE value to set (null = unset)")


class ToggleFault(FaultInjector):
    type = "toggle"
    boundary: ClassVar[Boundary] = "config"
    summary = "set the execution toggle to value (valid or not) at the config boundary"
    Params = _ToggleParams

    @property
    def value(self) -> str | None:
        return self.params.value  # type: ignore[attr-defined]

    def describe(self) -> str:
        return f"toggle set to {self.value!r}"


FAULTS: Registry[FaultInjector] = Registry(
    "fault type",
    "type",
    (
        UpstreamLatency,
        UpstreamError,
        UpstreamLatencyCreep,
        TokenMultiplier,
        StoreWriteFailure,
        ToggleFault,
    ),
)
"""Fault types by name; add one with ``FAULTS.add`` (see ``drills.registry``)."""


class FaultBoundaries:
    """The injection points of one drill, and the faults currently switched on."""

    def __init__(self, upstream: FaultyUpstream, store_hook: StoreFaultHook) -> None:
        self.upstream = upstream
        self.store_hook = store_hook
        self.faults: list[FaultInjector] = []

    def add(self, fault: FaultInjector) -> None:
        self.faults.append(fault)
        if isinstance(fault, UpstreamFault):
            self.upstream.faults.append(fault)
        elif isinstance(fault, StoreWriteFailure):
            self.store_hook.faults.append(fault)

    def activate(self, fault: FaultInjector, now_s: float) -> None:
        fault.active = True
        fault.started_at_s = now_s

    def deactivate(self, fault: FaultInjector) -> None:
        fault.active = False

    def active(self) -> list[FaultInjector]:
        return [f for f in self.faults if f.active]

    def clear(self, types: list[str] | None = None) -> list[FaultInjector]:
        """Switch off every active fault (of ``types``); returns those switched off."""
        cleared = [f for f in self.active() if types is None or f.type in types]
        for f in cleared:
            f.active = False
        return cleared

    def toggle_override(self) -> tuple[bool, str | None]:
        """(True, value) of the most recently started active toggle fault, else (False, None)."""
        toggles = [f for f in self.active() if isinstance(f, ToggleFault)]
        if not toggles:
            return False, None
        latest = max(toggles, key=lambda f: (f.started_at_s or 0.0, f.index))
        return True, latest.value


# ----------------------------------------------------------------------------- rollbacks


class RollbackTarget(Protocol):
    """What a rollback can act on; the runner implements it."""

    def clear_faults(self, types: list[str] | None) -> str: ...

    def restore_toggle(self, value: str | None, use_baseline: bool) -> str: ...

    def drain_spool(self) -> str: ...


class Rollback(ABC):
    type: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = _Params

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    def run(self, target: RollbackTarget) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class _ClearParams(_Params):
    types: list[str] | None = Field(default=None, description="only these fault types")

    @model_validator(mode="after")
    def _known(self) -> _ClearParams:
        unknown = [t for t in self.types or () if t not in FAULTS]
        if unknown:
            raise ValueError(f"unknown fault type(s) {unknown}; registered: {', '.join(FAULTS)}")
        return self


class ClearFaults(Rollback):
    type = "clear_faults"
    summary = "switch off every active fault (or those of the given types)"
    Params = _ClearParams

    def run(self, target: RollbackTarget) -> str:
        return target.clear_faults(self.params.types)  # type: ignore[attr-defined]


class _RestoreParams(_Params):
    value: str | None = Field(
        default=None, description="toggle value to set; omitted: the scenario's execution_mode"
    )


class RestoreToggle(Rollback):
    type = "restore_toggle"
    summary = "set the execution toggle back (to value, or to the scenario's execution_mode)"
    Params = _RestoreParams

    def run(self, target: RollbackTarget) -> str:
        use_baseline = "value" not in self.params.model_fields_set
        return target.restore_toggle(self.params.value, use_baseline)  # type: ignore[attr-defined]


class DrainSpool(Rollback):
    type = "drain_spool"
    summary = "write the telemetry spool back into the store"

    def run(self, target: RollbackTarget) -> str:
        return target.drain_spool()


ROLLBACKS: Registry[Rollback] = Registry(
    "rollback", "type", (ClearFaults, RestoreToggle, DrainSpool)
)
