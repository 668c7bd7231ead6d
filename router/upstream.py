"""The upstream boundary: how the execution plane calls a model, simulated or real.

An :class:`Upstream` takes one :class:`UpstreamRequest` and returns one :class:`UpstreamResult`:
output tokens, latency, cost, or an error code. It never raises for a model failure; a failure is
a result (``ok=False``) so the plane can count it in the circuit breaker and retry.

Two implementations, chosen by ``execution.upstream.kind`` (:func:`upstream_from_config`):

- :class:`SimulatedUpstream` never sleeps. Drills run on a virtual clock (36,000 queries in
  seconds), so it *returns* a latency drawn from the catalog's profile and decides a timeout by
  comparing that number with ``timeout_ms``. Every draw is keyed by (seed, model, call_key,
  attempt): the plane passes the decision_id as ``call_key``, so a rerun gives identical actuals
  whatever order the calls come in.
- :class:`OpenAICompatibleUpstream` posts to ``/v1/chat/completions`` of a real endpoint (vLLM,
  NIM, Ollama, ...) with httpx, measures wall time and uses real timeouts. The API key is read
  from the environment at call time and only ever placed in the ``Authorization`` header: it is
  not stored on the object, logged, or put in a result or exception.

Fault injection composes by wrapping: any object with a ``call(request) -> UpstreamResult``
method is an Upstream, so a drill wraps the configured one::

    class SlowLargeTier:                       # drills/faults.py does this for real
        def __init__(self, inner: Upstream, add_ms: float) -> None:
            self.inner, self.add_ms = inner, add_ms

        def call(self, request: UpstreamRequest) -> UpstreamResult:
            result = self.inner.call(request)
            if request.model.tier != "large":
                return result
            return dataclasses.replace(result, latency_ms=result.latency_ms + self.add_ms)

A wrapper may add latency, turn results into errors (:meth:`UpstreamResult.failure`) or
short-circuit without calling the inner upstream. It need not re-check the timeout: the plane
treats any result slower than ``request.timeout_ms`` as a timeout.

The query text travels in ``UpstreamRequest.text`` (``repr=False``) and stays in memory: logs
name the model, the status and the latency, never the text.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from router.config import ModelSpec, RouterConfig

if TYPE_CHECKING:  # httpx costs ~80 ms to import; only the HTTP upstream needs it
    import httpx

log = logging.getLogger(__name__)

Z95 = 1.6448536269514722  # standard normal quantile at 0.95
OUTPUT_TOKEN_SIGMA = 0.35  # spread of simulated output length around the expected length
_TWO_POW_53 = float(2**53)


class UpstreamErrorCode(StrEnum):
    """Error codes an execution can end with; each is also a ``ReasonCode`` of the same name."""

    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"


class UpstreamConfigError(ValueError):
    """The upstream cannot be built from the config; the message names the field or env var."""


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One call to one model. ``text`` is excluded from ``repr`` so a logged request leaks nothing."""

    model: ModelSpec
    text: str = field(repr=False)
    max_output_tokens: int
    """The cap sent to the model (``max_tokens``)."""
    timeout_ms: float
    call_key: str | None = None
    """Stable identity of the logical call (the decision_id): keys the simulated randomness."""
    attempt: int = 0
    """0 for the first try, 1.. for retries: a retry is a fresh draw, reproducibly."""
    expected_output_tokens: int | None = None
    """What the router expects the answer to need; the simulation centres on it, real models ignore it."""


@dataclass(frozen=True, slots=True)
class UpstreamResult:
    ok: bool
    output_tokens: int
    input_tokens: int
    latency_ms: float
    cost_usd: float
    error_code: UpstreamErrorCode | None = None
    retryable: bool = True
    """False for failures a retry cannot fix (a 4xx other than 429, a missing API key)."""
    detail: str | None = None
    """Short, text-free diagnosis for logs (``HTTP 503``, ``ConnectError``); never the key or text."""

    @classmethod
    def failure(
        cls,
        code: UpstreamErrorCode,
        latency_ms: float,
        *,
        input_tokens: int = 0,
        retryable: bool = True,
        detail: str | None = None,
    ) -> UpstreamResult:
        """A failed call. Failed calls cost nothing: providers bill completed answers only."""
        return cls(False, 0, input_tokens, latency_ms, 0.0, code, retryable, detail)

    @classmethod
    def success(
        cls, model: ModelSpec, input_tokens: int, output_tokens: int, latency_ms: float
    ) -> UpstreamResult:
        """A completed call, billed at the catalog's prices (``call_cost_usd``)."""
        return cls(
            True,
            output_tokens,
            input_tokens,
            latency_ms,
            call_cost_usd(model, input_tokens, output_tokens),
        )


@runtime_checkable
class Upstream(Protocol):
    """Anything that can call a model. Must return a result for a model failure, not raise."""

    def call(self, request: UpstreamRequest) -> UpstreamResult: ...


def call_cost_usd(model: ModelSpec, input_tokens: int, output_tokens: int) -> float:
    """Cost from the catalog's prices per 1k tokens (the same formula as the router's estimate)."""
    return round(
        input_tokens / 1000.0 * model.price_per_1k_input
        + output_tokens / 1000.0 * model.price_per_1k_output,
        8,
    )


def estimate_input_tokens(text: str, chars_per_token: float) -> int:
    """The router's token estimate, used where a real count is not available."""
    return max(1, math.ceil(len(text) / chars_per_token))


# --- simulated ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _SimParams:
    mu: float
    sigma: float
    prefill_per_token_ms: float
    error_rate: float


class SimulatedUpstream:
    """A seeded model simulator: catalog latency, token and error behaviour, no sleeping.

    Latency (ms) = lognormal time to first token fitted to the profile's p50 and p95, plus prefill
    (``per_1k_input_ms`` per 1k input tokens). This is the quantity the router's
    ``latency_estimate_ms`` estimates; generation time is not included. Output tokens are
    lognormal around the expected length, capped by ``max_output_tokens``. Errors occur with the
    model's ``error_rate``; a latency above ``timeout_ms`` is a timeout that took ``timeout_ms``.
    """

    def __init__(self, config: RouterConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        self._chars_per_token = config.limits.chars_per_token
        self._params: dict[str, _SimParams] = {}
        self._counters: dict[str, int] = {}
        self._prefix = f"{seed}\x1f".encode()

    def __repr__(self) -> str:
        return f"SimulatedUpstream(seed={self.seed})"

    def _params_for(self, model: ModelSpec) -> _SimParams:
        p = self._params.get(model.name)
        if p is None:
            lat = model.latency
            p = _SimParams(
                mu=math.log(lat.p50_ms),
                sigma=(math.log(lat.p95_ms) - math.log(lat.p50_ms)) / Z95,
                prefill_per_token_ms=lat.per_1k_input_ms / 1000.0,
                error_rate=model.error_rate,
            )
            self._params[model.name] = p
        return p

    def _uniforms(self, model: str, request: UpstreamRequest) -> tuple[float, float, float]:
        key = request.call_key
        if key is None:  # no identity given: the n-th call to this model, per model
            n = self._counters.get(model, 0)
            self._counters[model] = n + 1
            key = f"#{n}"
        digest = hashlib.blake2b(
            self._prefix + f"{model}\x1f{key}\x1f{request.attempt}".encode(), digest_size=24
        ).digest()
        a = int.from_bytes(digest[0:8], "little") >> 11
        b = int.from_bytes(digest[8:16], "little") >> 11
        c = int.from_bytes(digest[16:24], "little") >> 11
        # a in (0, 1] for the logarithm in Box-Muller; b, c in [0, 1).
        return (a + 1) / _TWO_POW_53, b / _TWO_POW_53, c / _TWO_POW_53

    def call(self, request: UpstreamRequest) -> UpstreamResult:
        model = request.model
        p = self._params_for(model)
        u1, u2, u3 = self._uniforms(model.name, request)
        radius = math.sqrt(-2.0 * math.log(u1))
        z_latency = radius * math.cos(2.0 * math.pi * u2)
        z_tokens = radius * math.sin(2.0 * math.pi * u2)

        input_tokens = estimate_input_tokens(request.text, self._chars_per_token)
        latency = math.exp(p.mu + p.sigma * z_latency) + input_tokens * p.prefill_per_token_ms
        latency = round(latency, 3)
        if latency > request.timeout_ms:
            return UpstreamResult.failure(
                UpstreamErrorCode.UPSTREAM_TIMEOUT,
                request.timeout_ms,
                input_tokens=input_tokens,
                detail="simulated timeout",
            )
        if u3 < p.error_rate:
            return UpstreamResult.failure(
                UpstreamErrorCode.UPSTREAM_ERROR,
                latency,
                input_tokens=input_tokens,
                detail="simulated error",
            )
        cap = max(1, request.max_output_tokens)
        expected = request.expected_output_tokens or cap
        drawn = expected * math.exp(
            OUTPUT_TOKEN_SIGMA * z_tokens - OUTPUT_TOKEN_SIGMA * OUTPUT_TOKEN_SIGMA / 2
        )
        output_tokens = min(cap, max(1, round(drawn)))
        return UpstreamResult.success(model, input_tokens, output_tokens, latency)


# --- OpenAI-compatible HTTP ---------------------------------------------------------------------
class OpenAICompatibleUpstream:
    """A real endpoint speaking the OpenAI chat-completions API (vLLM, NVIDIA NIM, Ollama, ...).

    ``base_url`` is the server root (``http://host:8000``); a trailing ``/v1`` is accepted too.
    ``api_key_env`` names the environment variable holding the key (None: no auth, as for a local
    Ollama). The key is read at every call, so rotating it needs no restart, and it lives only in
    the request header. ``model_aliases`` maps catalog names to the endpoint's names when they
    differ (NIM serves ``meta/llama-3.1-405b-instruct``).

    Latency is the measured wall time of the whole (non-streaming) call, so it includes
    generation; the simulation's latency is time to first token. Compare like with like.
    """

    def __init__(
        self,
        base_url: str,
        api_key_env: str | None = None,
        *,
        client: httpx.Client | None = None,
        chars_per_token: float = 4.0,
        model_aliases: dict[str, str] | None = None,
    ) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise UpstreamConfigError(
                f"execution.upstream.base_url must be an http(s) URL, got {base_url!r}"
            )
        root = base_url.rstrip("/")
        if root.endswith("/v1"):
            root = root[: -len("/v1")]
        self.url = f"{root}/v1/chat/completions"
        self.api_key_env = api_key_env
        self.chars_per_token = chars_per_token
        self.model_aliases = dict(model_aliases or {})
        if client is None:
            import httpx

            client = httpx.Client()
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client

    def __repr__(self) -> str:
        return f"OpenAICompatibleUpstream(url={self.url!r}, api_key_env={self.api_key_env!r})"

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> OpenAICompatibleUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self) -> dict[str, str] | None:
        """The auth header, or None when a configured key is missing."""
        headers = {"Content-Type": "application/json"}
        if self.api_key_env is None:
            return headers
        key = os.environ.get(self.api_key_env)
        if not key:
            return None
        headers["Authorization"] = f"Bearer {key}"
        return headers

    def call(self, request: UpstreamRequest) -> UpstreamResult:
        import httpx

        model = request.model
        name = self.model_aliases.get(model.name, model.name)
        estimated_in = estimate_input_tokens(request.text, self.chars_per_token)
        headers = self._headers()
        if headers is None:
            detail = f"environment variable {self.api_key_env} (the API key) is not set"
            log.error("upstream %s: %s", model.name, detail)
            return UpstreamResult.failure(
                UpstreamErrorCode.UPSTREAM_ERROR, 0.0, retryable=False, detail=detail
            )
        body = {
            "model": name,
            "messages": [{"role": "user", "content": request.text}],
            "max_tokens": request.max_output_tokens,
            "stream": False,
        }
        timeout = httpx.Timeout(request.timeout_ms / 1000.0)
        start = time.perf_counter()
        try:
            response = self._client.post(self.url, json=body, headers=headers, timeout=timeout)
        except httpx.TimeoutException as exc:
            return self._fail(request, start, UpstreamErrorCode.UPSTREAM_TIMEOUT, exc)
        except httpx.HTTPError as exc:
            return self._fail(request, start, UpstreamErrorCode.UPSTREAM_ERROR, exc)
        latency = round((time.perf_counter() - start) * 1000.0, 3)
        status = response.status_code
        if status >= 400:
            retryable = status == 429 or status >= 500 or status == 408
            log.info("upstream %s: HTTP %d after %.1f ms", model.name, status, latency)
            return UpstreamResult.failure(
                UpstreamErrorCode.UPSTREAM_ERROR,
                latency,
                input_tokens=estimated_in,
                retryable=retryable,
                detail=f"HTTP {status}",
            )
        try:
            payload = response.json()
            choices = payload["choices"]
            if not choices:
                raise ValueError("empty choices")
            content = choices[0].get("message", {}).get("content") or ""
            usage = payload.get("usage") or {}
            input_tokens = int(usage.get("prompt_tokens") or estimated_in)
            output_tokens = int(
                usage.get("completion_tokens")
                or estimate_input_tokens(content, self.chars_per_token)
            )
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            log.info(
                "upstream %s: unusable response body (%s) after %.1f ms",
                model.name,
                type(exc).__name__,
                latency,
            )
            return UpstreamResult.failure(
                UpstreamErrorCode.UPSTREAM_ERROR,
                latency,
                input_tokens=estimated_in,
                detail=f"unusable response body ({type(exc).__name__})",
            )
        log.debug("upstream %s: HTTP %d in %.1f ms", model.name, status, latency)
        return UpstreamResult.success(model, input_tokens, output_tokens, latency)

    def _fail(
        self, request: UpstreamRequest, start: float, code: UpstreamErrorCode, exc: Exception
    ) -> UpstreamResult:
        # The exception's type only: its message can quote the request.
        latency = round((time.perf_counter() - start) * 1000.0, 3)
        log.info(
            "upstream %s: %s (%s) after %.1f ms",
            request.model.name,
            code.value,
            type(exc).__name__,
            latency,
        )
        return UpstreamResult.failure(code, latency, detail=type(exc).__name__)


def upstream_from_config(config: RouterConfig, *, client: httpx.Client | None = None) -> Upstream:
    """Build the upstream ``execution.upstream.kind`` asks for; fail fast on a missing key."""
    up = config.execution.upstream
    if up.kind == "simulated":
        return SimulatedUpstream(config, seed=up.seed)
    if up.kind == "openai_compatible":
        if not up.base_url:
            raise UpstreamConfigError(
                "execution.upstream.base_url is required when execution.upstream.kind is "
                "'openai_compatible' (e.g. http://127.0.0.1:8000 for vLLM)"
            )
        if up.api_key_env is not None and not os.environ.get(up.api_key_env):
            raise UpstreamConfigError(
                f"execution.upstream.api_key_env names {up.api_key_env}, but that environment "
                "variable is not set; set it, or remove api_key_env for an endpoint without auth"
            )
        return OpenAICompatibleUpstream(
            up.base_url,
            up.api_key_env,
            client=client,
            chars_per_token=config.limits.chars_per_token,
        )
    raise UpstreamConfigError(
        f"execution.upstream.kind {up.kind!r} is not known; valid: 'simulated', 'openai_compatible'"
    )
