"""The AMAIMA router as an HTTP service (FastAPI): the same ``Router``, ``ExecutionPlane`` and
``TelemetryStore`` the pilot and the drills use, behind the seed's endpoints.

- ``POST /v1/simulate``: one query or a batch -> decisions; never calls a model.
- ``POST /v1/execute``: one query through the execution plane when the toggle allows. Decision-only
  (or an invalid toggle, which fails closed) -> ``409`` with the decision and its ``decision_id``;
  no healthy model -> ``503`` + ``Retry-After`` + ``decision_id`` (retry with it); the upstream
  failed after retries -> ``502`` (``504`` on timeout), also with the decision.
- ``GET /v1/health``: liveness and readiness (store, spool, breakers, toggle).
- ``GET /metrics``: Prometheus exposition (``live.metrics``).

Privacy: a request's text lives only in the handler's memory. Validation errors (422) carry
field locations and messages, never the submitted values; other failures name an exception type
only; uvicorn's access log is off. Oversized bodies are refused with 413 before they are read.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import FastAPI, Request
from fastapi import Query as QueryParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, create_model

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"
DEFAULT_RUN_ID = "live"
MAX_BODY_BYTES = 1_000_000
MAX_BATCH = 1000
MAX_TEXT_CHARS = 100_000
# Not whitespace in any engine's sense (pydantic's Rust regex, Python's re, ECMA): the set
# str.strip() removes, spelled out, because \s differs between them (U+0085, U+001C-U+001F).
NON_BLANK = r"[^\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
SPEC_PATH = Path(__file__).with_name("openapi.json")
MAX_BREAKER_EVENTS = 10_000
THREADS = 200  # request threads: executions wait on the upstream, not on the CPU


# --- request / response models (the OpenAPI contract) ------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Query(_Strict):
    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        pattern=NON_BLANK,
        description="The query: at least one non-whitespace character. Never logged or echoed.",
    )
    query_id: str | None = Field(default=None, min_length=1, max_length=200)
    tenant: str | None = Field(default=None, min_length=1, max_length=100)


class SimulateOne(Query):
    """One query."""

    run_id: str | None = Field(default=None, min_length=1, max_length=200)


class SimulateBatch(_Strict):
    """A batch of queries, decided together (one ``route_batch``)."""

    queries: list[Query] = Field(min_length=1, max_length=MAX_BATCH)
    run_id: str | None = Field(default=None, min_length=1, max_length=200)


class ExecuteRequest(Query):
    run_id: str | None = Field(default=None, min_length=1, max_length=200)


def _decision_model() -> type[BaseModel]:
    """The decision schema 1.0.0 as a pydantic model, from the Arrow schema (one definition)."""
    from router.decision import DECISION_ARROW_SCHEMA

    def py(t: pa.DataType) -> type:
        if pa.types.is_boolean(t):
            return bool
        if pa.types.is_integer(t):
            return int
        if pa.types.is_floating(t):
            return float
        return str  # strings, and ts as ISO-8601 UTC

    fields: dict[str, Any] = {}
    for f in DECISION_ARROW_SCHEMA:
        typ = py(f.type)
        fields[f.name] = (typ | None, None) if f.nullable else (typ, ...)
    return create_model("Decision", **fields)


DecisionOut = _decision_model()


class DecisionsOut(BaseModel):
    decisions: list[DecisionOut]  # type: ignore[valid-type]
    count: int


class ExecuteOut(BaseModel):
    decision_id: str
    decision: DecisionOut  # type: ignore[valid-type]


class ExecuteRefused(BaseModel):
    error: str
    decision_id: str
    decision: DecisionOut  # type: ignore[valid-type]


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    error: str
    detail: list[FieldError] = Field(default_factory=list)


class BreakerEvent(BaseModel):
    seq: int
    unix_ts: float
    model: str
    tier: str
    old: str
    new: str
    reason: str
    calls: int = Field(description="Calls sent to this model since start, at the change.")


class BreakerEvents(BaseModel):
    events: list[BreakerEvent]
    next: int = Field(description="Pass as ?since= to get only later events.")


class Health(BaseModel):
    status: str = Field(description="ok | degraded")
    live: bool
    ready: bool
    uptime_s: float
    checks: dict[str, Any]


# --- settings and state ------------------------------------------------------------------------
@dataclass
class ServiceSettings:
    config: str | Path | None = None
    db: str | None = None
    spool_dir: str | Path | None = None
    upstream_url: str | None = None
    semantic: bool = False
    toggle: str | None = "env"
    run_id: str = DEFAULT_RUN_ID
    max_body_bytes: int = MAX_BODY_BYTES
    flush_interval_s: float = 0.2
    drain_every_s: float = 2.0


class _State:
    """Router, execution plane, store, writer and metrics of one app."""

    def __init__(self, s: ServiceSettings) -> None:
        from live.metrics import ServiceMetrics
        from live.route_batching import RouteBatcher
        from live.writer import TelemetryWriter
        from router.config import UpstreamConfig, load_config
        from router.engine import Router
        from router.execution import ExecutionPlane
        from router.toggle import resolve_toggle, toggle_from_env
        from router.upstream import upstream_from_config
        from telemetry.store import TelemetryStore

        config = load_config(s.config)
        if s.upstream_url:
            up = UpstreamConfig(kind="openai_compatible", base_url=s.upstream_url)
            config = config.model_copy(
                update={"execution": config.execution.model_copy(update={"upstream": up})}
            )
        self.config = config
        toggle = toggle_from_env() if s.toggle == "env" else resolve_toggle(s.toggle)
        self.router = Router(config, semantic=s.semantic, toggle=toggle)
        self.batcher = RouteBatcher(self.router)
        self.upstream = upstream_from_config(config)
        self.plane = ExecutionPlane(config, self.upstream, on_breaker_event=self._on_breaker)
        self.breaker_events: list[dict] = []
        self.tiers = {m.name: m.tier for m in config.models}
        self.store = TelemetryStore(s.db, spool_dir=s.spool_dir)
        self.metrics = ServiceMetrics(self.live_values)
        self.writer = TelemetryWriter(
            self.store,
            metrics=self.metrics,
            flush_interval_s=s.flush_interval_s,
            drain_every_s=s.drain_every_s,
        )
        self.run_id = s.run_id
        self.started = time.monotonic()
        self.retry_after_s = max(1, math.ceil(config.execution.breaker.cooldown_s))

    def _on_breaker(self, event) -> None:
        """Keep each state change with the model's call count then (live drills read them)."""
        if len(self.breaker_events) >= MAX_BREAKER_EVENTS:
            return
        self.breaker_events.append(
            {
                "seq": len(self.breaker_events),
                "unix_ts": time.time(),
                "model": event.model,
                "tier": self.tiers.get(event.model, "?"),
                "old": event.old.value,
                "new": event.new.value,
                "reason": event.reason,
                "calls": self.plane.upstream_calls.get(event.model, 0),
            }
        )

    def live_values(self) -> dict:
        t = self.router.toggle
        try:
            spool_rows = self.store.spool.rows_pending()
        except Exception:  # noqa: BLE001 - a spool being written while read
            spool_rows = 0
        return {
            "breakers": {
                m: (self.tiers.get(m, "?"), st) for m, st in self.plane.breaker_states().items()
            },
            "upstream_calls": self.plane.upstream_calls,
            "spool_rows": spool_rows,
            "queue_rows": self.writer.queued_rows,
            "mode": t.mode.value,
            "toggle_invalid": t.invalid,
        }


def _iso_ts(table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("ts")
    ts = pc.strftime(table.column("ts"), format="%Y-%m-%dT%H:%M:%SZ")
    return table.set_column(i, "ts", ts)


def decisions_json(table: pa.Table) -> list[dict]:
    """Decision rows as JSON-ready dicts (ts as ISO-8601 UTC)."""
    return _iso_ts(table).to_pylist()


def _safe_errors(errors: list[dict]) -> list[dict]:
    """Pydantic errors without ``input``/``ctx``/``url``: those can hold the submitted text."""
    out = []
    for e in errors:
        loc = [x if isinstance(x, int) else str(x) for x in e.get("loc", ())]
        out.append(
            {"loc": loc, "msg": str(e.get("msg", "invalid")), "type": str(e.get("type", ""))}
        )
    return out


class _BodyLimit:
    """Refuse bodies above ``limit`` bytes with 413, by Content-Length or while streaming."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    return await self._refuse(send)
        seen = 0
        limit = self.limit

        class _TooBig(Exception):
            pass

        async def limited():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooBig
            return msg

        try:
            return await self.app(scope, limited, send)
        except _TooBig:
            return await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps(
            {"error": f"request body larger than {self.limit} bytes", "detail": []}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _DecisionsJSON(JSONResponse):
    """The same compact UTF-8 JSON as Starlette's, rendered by orjson: ``json.dumps`` of 500
    decisions took 11 ms, about half the time of routing them."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class _CountRequests:
    """Requests by route and status, and their handling time, as plain ASGI: Starlette's
    ``@app.middleware("http")`` runs each request through extra tasks and streams, which cost
    more than the routing of one query."""

    def __init__(self, app, metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = 500  # an exception that escapes every handler

        async def send_status(msg):
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = getattr(scope.get("route"), "path", "other")  # set by the router
            self.metrics.http_requests.labels(path, str(status)).inc()
            self.metrics.http_duration.labels(path).observe(time.perf_counter() - t0)


_ERR = {"model": ErrorOut}


def create_app(settings: ServiceSettings | None = None, *, state: bool = True) -> FastAPI:
    """The FastAPI app. ``state=False`` builds routes only (for the OpenAPI spec)."""
    from contextlib import asynccontextmanager

    settings = settings or ServiceSettings()
    st: _State | None = _State(settings) if state else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if st is not None:
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
            st.writer.start()
            # What start-up built (router, catalog, imported modules) lives as long as the
            # process: out of the collector's generations, so a full collection does not walk
            # it in the middle of a request.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if st is not None:
                st.writer.stop()
                st.store.close()

    app = FastAPI(
        title="AMAIMA router",
        version=API_VERSION,
        description="The AMAIMA smart router as a service: decisions (simulate), execution behind "
        "the kill switch, health and Prometheus metrics. Query text is never logged or echoed.",
        lifespan=lifespan,
    )
    app.state.service = st

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return JSONResponse(
            {"error": "invalid request", "detail": _safe_errors(exc.errors())}, status_code=422
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return JSONResponse(
            {"error": f"internal error ({type(exc).__name__})", "detail": []}, status_code=500
        )

    if st is not None:
        app.add_middleware(_CountRequests, metrics=st.metrics)

    def _route(items: list[Query], run_id: str | None) -> pa.Table:
        from router.engine import InvalidQueryError

        assert st is not None
        texts = [q.text for q in items]
        qids = _complete_ids(st.router, texts, [q.query_id for q in items])
        tenants = None
        if any(q.tenant for q in items):
            tenants = [q.tenant or "default" for q in items]
        try:  # with the requests that arrive meanwhile, in one route_batch (live.route_batching)
            return st.batcher.route(texts, qids, tenants, run_id or st.run_id)
        except InvalidQueryError as exc:  # the message names rows and query ids, never text
            raise _Unprocessable(str(exc)) from None

    @app.exception_handler(_Unprocessable)
    async def _unprocessable(request: Request, exc: _Unprocessable):
        return JSONResponse({"error": exc.message, "detail": []}, status_code=422)

    @app.post(
        "/v1/simulate",
        response_model=DecisionsOut,
        responses={413: _ERR, 422: _ERR},
        summary="Decide one query or a batch; never executes",
    )
    def simulate(body: SimulateOne | SimulateBatch) -> JSONResponse:
        items = body.queries if isinstance(body, SimulateBatch) else [body]
        table = _route(items, body.run_id)
        st.writer.put(table)
        st.metrics.observe(table, "simulate")
        return _DecisionsJSON({"decisions": decisions_json(table), "count": table.num_rows})

    @app.post(
        "/v1/execute",
        response_model=ExecuteOut,
        responses={
            409: {"model": ExecuteRefused, "description": "decision-only: not executed"},
            413: _ERR,
            422: _ERR,
            502: {"model": ExecuteRefused, "description": "the model failed after retries"},
            503: {"model": ExecuteRefused, "description": "no healthy model: retry later"},
            504: {"model": ExecuteRefused, "description": "the model timed out"},
        },
        summary="Decide and execute one query when the kill switch allows",
    )
    def execute(body: ExecuteRequest) -> JSONResponse:
        from router.decision import decisions_to_table, table_to_decisions
        from telemetry.metric_registry import MISCONFIGURED_CODE

        table = _route([body], body.run_id)
        decision = table_to_decisions(table)[0]
        if decision.execution_mode_active:
            decision = st.plane.execute(decision, body.text)
            table = decisions_to_table([decision])
        st.writer.put(table)
        st.metrics.observe(table, "execute")
        d = decisions_json(table)[0]
        did = decision.decision_id
        outcome = decision.outcome
        headers = None
        if outcome == "not_executed":
            status, msg = 409, "execution is off (decision-only): the decision was not executed"
            if MISCONFIGURED_CODE in decision.reasons or st.router.toggle.invalid:
                msg = "the execution toggle is invalid: failed closed to decision-only"
        elif outcome == "rejected":
            status, msg = 503, "no healthy model for this decision: retry with its decision_id"
            headers = {"Retry-After": str(st.retry_after_s)}
        elif outcome == "timeout":
            status, msg = 504, "the model timed out after retries"
        elif outcome == "error":
            status, msg = 502, "the model failed after retries"
        else:
            return JSONResponse({"decision_id": did, "decision": d})
        return JSONResponse(
            {"error": msg, "decision_id": did, "decision": d}, status_code=status, headers=headers
        )

    @app.get("/v1/health", response_model=Health, summary="Liveness and readiness")
    def health() -> JSONResponse:
        live = st.live_values()
        t = st.router.toggle
        ws = st.writer.status
        store_ok = ws.last_write_ok is not False
        breakers = {m: s for m, (_, s) in live["breakers"].items()}
        tiers_down = sorted(
            {
                tier
                for tier in set(st.tiers.values())
                if all(breakers[m] == "open" for m, t2 in st.tiers.items() if t2 == tier)
            }
        )
        degraded = (not store_ok) or t.invalid or bool(tiers_down) or live["spool_rows"] > 0
        checks = {
            "router": {"ok": True, "semantic": st.router.semantic_enabled,
                       "config_hash": st.router.config_hash},
            "store": {
                "ok": store_ok,
                "url": st.store.safe_url,
                "error_kind": ws.last_error_kind,
                "error_type": ws.last_error_type,
                "written_rows": ws.written_rows,
                "write_failures": ws.write_failures,
            },
            "spool": {"rows_pending": live["spool_rows"], "queue_rows": live["queue_rows"],
                      "spooled_rows": ws.spooled_rows},
            "breakers": breakers,
            "tiers_down": tiers_down,
            "toggle": {"mode": t.mode.value, "raw": t.raw, "invalid": t.invalid,
                       "active": t.active, "reason": t.reason},
        }  # fmt: skip
        return JSONResponse(
            {
                "status": "degraded" if degraded else "ok",
                "live": True,
                "ready": True,
                "uptime_s": round(time.monotonic() - st.started, 3),
                "checks": checks,
            }
        )

    @app.get(
        "/v1/breaker-events",
        response_model=BreakerEvents,
        summary="Circuit-breaker state changes since start (at most 10,000)",
    )
    def breaker_events(since: int = QueryParam(0, ge=0)) -> JSONResponse:
        events = st.breaker_events[since:]
        return JSONResponse({"events": events, "next": since + len(events)})

    @app.get("/metrics", summary="Prometheus exposition", response_class=Response)
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(st.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return _wrap(app, settings.max_body_bytes)


def _complete_ids(router, texts: list[str], given: list[str | None]) -> list[str]:
    """Query ids for a batch where some are given: a missing one gets the router's text-hash
    default, a repeated one an occurrence suffix (``#2``), as the router does for repeated
    texts, so no two rows share a decision_id (the idempotent store would drop one)."""
    default = router._query_ids(router._hashes(texts), None)
    seen: dict[str, int] = {}
    out = []
    for q, d in zip(given, default, strict=True):
        base = q or d
        k = seen.get(base, 0)
        seen[base] = k + 1
        out.append(base if k == 0 else f"{base}#{k + 1}")
    return out


class _Unprocessable(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _wrap(app: FastAPI, limit: int) -> FastAPI:
    app.add_middleware(_BodyLimit, limit=limit)
    return app


def openapi_spec() -> dict:
    """The served OpenAPI document (routes only; no router, store or threads)."""
    return create_app(state=False).openapi()


def write_spec(path: str | Path = SPEC_PATH) -> Path:
    path = Path(path)
    path.write_text(json.dumps(openapi_spec(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def settings_from_env() -> ServiceSettings:
    """For ``uvicorn live.service:app_from_env --factory`` (how ``harness serve`` starts it)."""
    e = os.environ
    return ServiceSettings(
        config=e.get("AMAIMA_SERVE_CONFIG") or None,
        db=e.get("AMAIMA_SERVE_DB") or None,
        spool_dir=e.get("AMAIMA_SERVE_SPOOL_DIR") or None,
        upstream_url=e.get("AMAIMA_SERVE_UPSTREAM") or None,
        semantic=e.get("AMAIMA_SERVE_SEMANTIC", "") == "1",
        run_id=e.get("AMAIMA_SERVE_RUN_ID") or DEFAULT_RUN_ID,
    )


def app_from_env() -> FastAPI:
    return create_app(settings_from_env())
