"""`harness upstream-sim`: an OpenAI-compatible server that behaves like the catalog's models.

Each ``POST /v1/chat/completions`` draws from the same seeded model as ``SimulatedUpstream``
(lognormal time to first token fitted to the profile's p50/p95, prefill per input token, output
tokens, the model's error rate) and then *sleeps* that latency (times ``time_scale``), so the
service's ``OpenAICompatibleUpstream`` measures real wall time over a real socket. Draws are keyed
by (seed, model, n-th call to that model): a rerun with the same traffic order gives the same
latencies. An unknown model is a 404, as real servers answer; a simulated error is a 500.
The prompt is read to count its tokens and then dropped: it is never logged or echoed.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def create_sim_app(
    config_path: str | Path | None = None, *, seed: int = 0, time_scale: float = 1.0
) -> FastAPI:
    from router.config import load_config
    from router.upstream import SimulatedUpstream, UpstreamRequest

    config = load_config(config_path)
    sim = SimulatedUpstream(config, seed=seed)
    specs = {m.name: m for m in config.models}
    counters = {name: itertools.count() for name in specs}
    lock = threading.Lock()
    stats = {"calls": 0, "errors": 0}
    app = FastAPI(title="AMAIMA upstream simulator", version="1.0.0")

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": n, "object": "model"} for n in specs]}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", **stats}

    @app.post("/v1/chat/completions")
    async def complete(request: Request):
        try:
            body = await request.json()
            name = body["model"]
            messages = body["messages"]
            text = "".join(str(m.get("content") or "") for m in messages)
            max_tokens = int(body.get("max_tokens") or 0)
        except (ValueError, KeyError, TypeError, AttributeError):
            return JSONResponse(
                {"error": {"message": "expected {model, messages, max_tokens}"}}, status_code=400
            )
        spec = specs.get(name)
        if spec is None:
            return JSONResponse({"error": {"message": "unknown model"}}, status_code=404)
        with lock:
            n = next(counters[name])
            stats["calls"] += 1
        result = sim.call(
            UpstreamRequest(
                model=spec,
                text=text,
                max_output_tokens=max_tokens or spec.max_output_tokens,
                timeout_ms=float("inf"),
                call_key=f"#{n}",
            )
        )
        del text
        if time_scale > 0 and result.latency_ms > 0:
            await asyncio.sleep(result.latency_ms * time_scale / 1000.0)
        if not result.ok:
            with lock:
                stats["errors"] += 1
            return JSONResponse({"error": {"message": "simulated model error"}}, status_code=500)
        out = result.output_tokens
        return {
            "id": f"chatcmpl-sim-{seed}-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "x" * min(out, 64)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": result.input_tokens,
                "completion_tokens": out,
                "total_tokens": result.input_tokens + out,
            },
        }

    return app
