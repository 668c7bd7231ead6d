"""A fault proxy process (toxiproxy's model) for faults at real network boundaries.

``python -m live.fault_proxy --listen PORT --upstream URL --admin PORT [--mode http|tcp]``

It forwards traffic to ``--upstream`` and applies *toxics*, switched on and off over a small
admin HTTP API while it runs:

- ``latency``: ``latency_ms`` (+- ``jitter_ms``, uniform) before the answer;
- ``timeout``: hold the request ``timeout_ms`` (0: until the client gives up), then close;
- ``reset``: close the connection at once with a TCP reset (SO_LINGER 0);
- ``error``: answer ``status`` (default 503) without forwarding (http mode);
- ``bandwidth``: deliver the answer at ``rate_kbps``;
- ``tokens``: multiply the answer's ``usage.completion_tokens`` by ``factor`` (a cost spike).

Every toxic has a ``probability`` (0..1, seeded draws) and, in http mode, optional ``models``: it
applies only to requests whose JSON body names one of them (the OpenAI ``model`` field), which is
how a drill slows "the large tier" while one proxy fronts the whole upstream. In tcp mode (for
PostgreSQL) the proxy pipes bytes and latency applies per chunk; ``reset`` applies to new
connections and to each chunk the client sends on an open one (pooled connections break too);
``error`` and ``models`` do not.

Admin API (JSON): ``GET /toxics``, ``POST /toxics`` (a toxic, ``name`` optional), ``DELETE
/toxics`` (all), ``DELETE /toxics/<name>``, ``GET /stats``. Bodies are never logged; the proxy
reads the request body only to find the model name.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import struct
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from router.yaml_safe import validation_problems

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


ToxicType = Literal["latency", "timeout", "reset", "error", "bandwidth", "tokens"]


class Toxic(BaseModel):
    """One toxic as the admin API takes it, checked once on arrival (unknown fields, types and
    ranges refused with the field's name)."""

    model_config = ConfigDict(extra="forbid")

    type: ToxicType
    name: str = ""
    probability: float = Field(1.0, ge=0.0, le=1.0)
    models: list[str] = Field(default_factory=list)
    latency_ms: float = Field(0.0, ge=0.0)
    jitter_ms: float = Field(0.0, ge=0.0)
    timeout_ms: float = Field(0.0, ge=0.0)
    status: int = Field(503, ge=100, le=599)  # an HTTP status
    rate_kbps: float = Field(0.0, ge=0.0)
    factor: float = Field(1.0, gt=0.0)
    _hits: int = PrivateAttr(default=0)

    @classmethod
    def parse(cls, data: object, n: int) -> Toxic:
        """The toxic of an admin request; an unnamed one is called ``<type>-<n>``."""
        if not isinstance(data, dict):
            raise ValueError("a toxic is a JSON object")
        try:
            t = cls.model_validate(data)
        except ValidationError as exc:
            raise ValueError("; ".join(validation_problems(exc, "toxic", cls))) from None
        t.name = t.name or f"{t.type}-{n}"
        return t

    @property
    def hits(self) -> int:
        """How often the toxic applied."""
        return self._hits

    def hit(self) -> None:
        self._hits += 1

    def to_dict(self) -> dict:
        return {**self.model_dump(), "hits": self._hits}

    def applies(self, model: str | None, rng: random.Random) -> bool:
        if self.models and model not in self.models:
            return False
        return self.probability >= 1.0 or rng.random() < self.probability


class Proxy:
    def __init__(self, upstream: str, mode: str = "http", seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        parts = urlsplit(self.upstream if "://" in self.upstream else f"tcp://{self.upstream}")
        self.up_host, self.up_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.mode = mode
        self.toxics: dict[str, Toxic] = {}
        self.rng = random.Random(seed)
        self.stats = {"requests": 0, "connections": 0, "forwarded": 0, "upstream_errors": 0}
        self._n = 0
        self._client = None

    # --- toxics ---------------------------------------------------------------------------------
    def add(self, data: dict) -> Toxic:
        self._n += 1
        t = Toxic.parse(data, self._n)
        self.toxics[t.name] = t
        return t

    def active(self, model: str | None) -> list[Toxic]:
        return [t for t in self.toxics.values() if t.applies(model, self.rng)]

    # --- tcp mode -------------------------------------------------------------------------------
    async def handle_tcp(self, reader, writer) -> None:
        self.stats["connections"] += 1
        for t in self.active(None):
            t.hit()
            if await _cut(reader, writer, t):
                return
        try:
            up_r, up_w = await asyncio.open_connection(self.up_host, self.up_port)
        except OSError:
            self.stats["upstream_errors"] += 1
            return _reset(writer)

        async def pipe(src, dst, outbound: bool) -> None:
            try:
                while data := await src.read(65536):
                    for t in list(self.toxics.values()):
                        if t.type == "latency" and t.applies(None, self.rng):
                            await asyncio.sleep(_delay(t, self.rng))
                        elif t.type == "reset" and outbound and t.applies(None, self.rng):
                            # a pooled connection breaks too: a database that goes away does
                            # not wait for the client to reconnect (per request chunk)
                            t.hit()
                            _reset(writer)
                            up_w.close()
                            return
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_w, True), pipe(up_r, writer, False))

    # --- http mode ------------------------------------------------------------------------------
    async def handle_http(self, reader, writer) -> None:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=200))
        self.stats["connections"] += 1
        try:
            while True:
                req = await _read_request(reader)
                if req is None:
                    break
                method, path, headers, body = req
                self.stats["requests"] += 1
                model = _model_of(body)
                status = None
                factor = 1.0
                for t in self.active(model):
                    t.hit()
                    if await _cut(reader, writer, t):
                        return
                    if t.type == "error":
                        status = t.status
                    if t.type == "latency":
                        await asyncio.sleep(_delay(t, self.rng))
                    if t.type == "tokens":
                        factor *= t.factor
                if status is not None:
                    await _respond(writer, status, b'{"error": {"message": "injected fault"}}')
                    continue
                try:
                    r = await self._client.request(
                        method,
                        self.upstream + path,
                        content=body,
                        headers={k: v for k, v in headers.items() if k not in HOP_HEADERS},
                    )
                except httpx.HTTPError:
                    self.stats["upstream_errors"] += 1
                    await _respond(writer, 502, b'{"error": {"message": "upstream unreachable"}}')
                    continue
                self.stats["forwarded"] += 1
                rate = max(
                    (t.rate_kbps for t in self.toxics.values() if t.type == "bandwidth"),
                    default=0.0,
                )
                if rate:
                    await asyncio.sleep(len(r.content) / (rate * 1024))
                content = self._bill(model, r.status_code, r.content, factor)
                await _respond(writer, r.status_code, content, r.headers.get("content-type"))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    def _bill(self, model: str | None, status: int, content: bytes, factor: float) -> bytes:
        """The ``tokens`` toxic multiplies an answer's ``usage.completion_tokens`` (a cost spike);
        every answered call's usage is tallied per model in ``/stats`` (the provider's bill)."""
        if status != 200 or model is None or b'"usage"' not in content:
            return content
        try:
            payload = json.loads(content)
            usage = payload["usage"]
            if factor != 1.0:
                usage["completion_tokens"] = max(1, round(usage["completion_tokens"] * factor))
                content = json.dumps(payload).encode()
            bill = self.stats.setdefault("usage", {}).setdefault(
                model, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0}
            )
            bill["calls"] += 1
            bill["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
            bill["completion_tokens"] += int(usage.get("completion_tokens") or 0)
        except (ValueError, KeyError, TypeError):
            pass
        return content

    # --- admin ----------------------------------------------------------------------------------
    async def handle_admin(self, reader, writer) -> None:
        try:
            req = await _read_request(reader)
            if req is None:
                return
            method, path, _, body = req
            status, payload = self.admin(method, path.split("?")[0].rstrip("/"), body)
            await _respond(writer, status, json.dumps(payload).encode())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def admin(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        if path == "/toxics" and method == "GET":
            return 200, [t.to_dict() for t in self.toxics.values()]
        if path == "/toxics" and method == "POST":
            try:
                t = self.add(json.loads(body or b"{}"))
            except (ValueError, TypeError) as exc:
                return 400, {"error": str(exc)}
            return 201, t.to_dict()
        if path == "/toxics" and method == "DELETE":
            n = len(self.toxics)
            self.toxics.clear()
            return 200, {"removed": n}
        if path.startswith("/toxics/") and method == "DELETE":
            name = path[len("/toxics/") :]
            if self.toxics.pop(name, None) is None:
                return 404, {"error": f"no toxic named {name!r}"}
            return 200, {"removed": 1}
        if path == "/stats" and method == "GET":
            return 200, {**self.stats, "toxics": {t.name: t.hits for t in self.toxics.values()}}
        return 404, {"error": "GET/POST/DELETE /toxics, DELETE /toxics/<name>, GET /stats"}


def _delay(t: Toxic, rng: random.Random) -> float:
    j = rng.uniform(-t.jitter_ms, t.jitter_ms) if t.jitter_ms else 0.0
    return max(0.0, t.latency_ms + j) / 1000.0


def _reset(writer) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer or a middlebox would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def _cut(reader, writer, t: Toxic) -> bool:
    """Apply a connection-level toxic: ``reset`` at once, ``timeout`` after holding the
    connection. True when the connection is gone (the caller stops serving it)."""
    if t.type == "timeout":
        await _hold(reader, t.timeout_ms)
    if t.type in ("reset", "timeout"):
        _reset(writer)
        return True
    return False


async def _hold(reader, timeout_ms: float) -> None:
    """Hold the connection: until ``timeout_ms`` passes, or the client closes (0: no limit)."""
    try:
        if timeout_ms:
            await asyncio.wait_for(reader.read(), timeout_ms / 1000.0)
        else:
            await reader.read()
    except (TimeoutError, ConnectionError):
        pass


async def _read_request(reader) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, path, _ = lines[0].split(" ", 2)
    except ValueError:
        return None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(n) if n else b""
    return method, path, headers, body


async def _respond(writer, status: int, body: bytes, ctype: str | None = None) -> None:
    head = (
        f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}\r\n"
        f"Content-Type: {ctype or 'application/json'}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    await writer.drain()


def _model_of(body: bytes) -> str | None:
    if not body or b'"model"' not in body:
        return None
    try:
        m = json.loads(body).get("model")
    except (ValueError, AttributeError):
        return None
    return m if isinstance(m, str) else None


async def serve(listen: int, admin: int, upstream: str, mode: str, seed: int, host: str) -> None:
    proxy = Proxy(upstream, mode, seed)
    handler = proxy.handle_http if mode == "http" else proxy.handle_tcp
    main = await asyncio.start_server(handler, host, listen, limit=2**22)
    adm = await asyncio.start_server(proxy.handle_admin, host, admin)
    print(f"fault proxy {mode} {host}:{listen} -> {upstream}; admin {host}:{admin}", flush=True)
    async with main, adm:
        await asyncio.gather(main.serve_forever(), adm.serve_forever())


def start_proxy(upstream: str, log_dir, *, mode: str = "http", seed: int = 0, label: str = ""):
    """Start a proxy process on free ports; returns its ``procs.Child`` (``extra['admin']``)."""
    import sys

    from live import procs

    listen, admin = procs.free_port(), procs.free_port()
    child = procs.start(
        f"fault-proxy-{listen}",
        [sys.executable, "-m", "live.fault_proxy", "--listen", str(listen), "--admin", str(admin),
         "--upstream", upstream, "--mode", mode, "--seed", str(seed), "--label", label],
        url=f"http://127.0.0.1:{admin}",
        ready_path="/stats",
        log_dir=log_dir,
    )  # fmt: skip
    child.extra["admin"] = f"http://127.0.0.1:{admin}"
    child.extra["listen"] = f"http://127.0.0.1:{listen}"
    child.extra["port"] = listen
    return child


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fault_proxy", description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--admin", type=int, required=True)
    p.add_argument("--upstream", required=True, help="http://host:port (http) or host:port (tcp)")
    p.add_argument("--mode", choices=("http", "tcp"), default="http")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--label", default="", help="free text shown in ps (whose proxy this is)")
    a = p.parse_args(argv)
    try:
        asyncio.run(serve(a.listen, a.admin, a.upstream, a.mode, a.seed, a.host))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
