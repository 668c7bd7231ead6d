"""live.shadow against `harness serve` as a real process: the shadow's table equals the in-process
router's on the same texts; a target that is down, refuses, flakes or answers garbage is reported
clearly (and retried where a retry can help)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from live import procs
from live.shadow import ShadowTargetError, shadow_decisions
from router.decision import DECISION_ARROW_SCHEMA
from router.engine import BatchInputError, Router

SEEDS = [
    "what is the capital of peru",
    "write a python function that merges two sorted lists",
    "prove that there are infinitely many primes",
    "hi",
    "translate good morning to italian",
    "design a distributed rate limiter for a global api with strict consistency",
]


def test_shadow_equals_in_process_routing(served_router):
    texts = [f"{SEEDS[i % len(SEEDS)]} (case {i})" for i in range(1200)]
    qids = [f"q{i:05d}" for i in range(1200)]
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    ts = [t0 + timedelta(seconds=i) for i in range(1200)]
    table = shadow_decisions(
        served_router.url, texts, qids, ts, "pilot-shadow", batch_size=250, concurrency=3
    )
    assert table.schema.equals(DECISION_ARROW_SCHEMA, check_metadata=False)
    local = Router.from_config(None, semantic=False, toggle=None).route_batch(
        texts, query_ids=qids, ts=ts, run_id="pilot-shadow"
    )
    for col in ("decision_id", "query_id", "query_hash", "ts", "model", "complexity_level",
                "domain", "reason_codes"):  # fmt: skip
        assert table.column(col).equals(local.column(col)), col


def test_blank_rows_are_named_and_the_rest_returned(served_router):
    with pytest.raises(BatchInputError) as exc:
        shadow_decisions(served_router.url, ["hello", "  ", "bye"], ["a", "b", "c"])
    assert [e.query_id for e in exc.value.errors] == ["b"]
    assert exc.value.table.column("query_id").to_pylist() == ["a", "c"]


def test_a_down_target_is_one_clear_error():
    port = procs.free_port()
    with pytest.raises(ShadowTargetError, match=r"not reachable \(ConnectError\).*3 attempts"):
        shadow_decisions(f"http://127.0.0.1:{port}", ["x"], ["1"], retries=2, backoff_s=0.01)


class _Stub(BaseHTTPRequestHandler):
    mode = "garbage"
    forward_to = ""
    calls = 0

    def do_POST(self):  # noqa: N802
        cls = type(self)
        cls.calls += 1
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if cls.mode == "flaky" and cls.calls % 2 == 1:
            return self._send(503, b'{"error": "busy"}')
        if cls.mode == "flaky":
            r = httpx.post(cls.forward_to + "/v1/simulate", content=body,
                           headers={"content-type": "application/json"})  # fmt: skip
            return self._send(r.status_code, r.content)
        if cls.mode == "short":
            return self._send(200, json.dumps({"decisions": []}).encode())
        return self._send(200, b"<html>not an api</html>")

    def _send(self, status, payload):
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *a):
        pass


@pytest.fixture
def stub():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _Stub.calls = 0
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.mark.parametrize(
    "mode, match", [("garbage", "not AMAIMA decisions"), ("short", "0 decisions")]
)
def test_garbage_answers_fail_at_once(stub, mode, match):
    _Stub.mode = mode
    with pytest.raises(ShadowTargetError, match=match):
        shadow_decisions(stub[1], ["secret text"], ["1"], backoff_s=0.01)
    assert _Stub.calls == 1


def test_5xx_is_retried_with_backoff(stub, served_router):
    _Stub.mode, _Stub.forward_to = "flaky", served_router.url
    table = shadow_decisions(stub[1], SEEDS, [str(i) for i in range(6)], backoff_s=0.01)
    assert table.num_rows == 6 and _Stub.calls == 2


def test_wrong_endpoint_says_so(tmp_path):
    port = procs.free_port()
    sim = procs.start(
        "sim", procs.harness_cmd("upstream-sim", "--port", str(port)),
        url=f"http://127.0.0.1:{port}", ready_path="/health", log_dir=tmp_path,
    )  # fmt: skip
    try:
        with pytest.raises(ShadowTargetError, match="HTTP 404.*speak POST /v1/simulate"):
            shadow_decisions(sim.url, ["x"], ["1"])
    finally:
        procs.stop(sim)
