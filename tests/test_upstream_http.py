"""The OpenAI-compatible upstream against a real local HTTP server (http.server in a thread on an
ephemeral 127.0.0.1 port): parsing, error and timeout mapping, and the API key kept secret."""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from decision_factory import default_config, make_decision

from router.config import RouterConfig
from router.execution import ExecutionPlane
from router.upstream import (
    OpenAICompatibleUpstream,
    SimulatedUpstream,
    UpstreamConfigError,
    UpstreamRequest,
    call_cost_usd,
    upstream_from_config,
)

KEY_ENV = "AMAIMA_TEST_UPSTREAM_KEY"
SECRET = "sk-test-7f3a9c1e5b2d4f608a1b"
TEXT = "patient Jane Roe, born 1970-02-03, asks about her prescription"


class _Handler(BaseHTTPRequestHandler):
    server: FakeLLMServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        srv = self.server
        srv.received.append(
            {"path": self.path, "headers": dict(self.headers), "body": json.loads(raw)}
        )
        mode = srv.mode
        if mode == "hang":
            srv.release.wait(10)
            return
        if mode in ("500", "429", "400"):
            self._send(int(mode), {"error": {"message": "scripted failure"}})
            return
        if mode == "garbage":
            self._send_raw(200, b"this is not json")
            return
        if mode == "no_usage":
            self._send(
                200, {"choices": [{"message": {"role": "assistant", "content": "abcd" * 5}}]}
            )
            return
        self._send(
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": srv.received[-1]["body"]["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}}],
                "usage": {"prompt_tokens": 17, "completion_tokens": 9, "total_tokens": 26},
            },
        )

    def _send(self, status: int, payload: dict) -> None:
        self._send_raw(status, json.dumps(payload).encode())

    def _send_raw(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep test output clean


class FakeLLMServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"
        self.received: list[dict] = []
        self.release = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server():
    srv = FakeLLMServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)


def _request(model: str = "llama-3.1-8b-instruct", *, timeout_ms: float = 5000) -> UpstreamRequest:
    spec = default_config().model(model)
    return UpstreamRequest(spec, TEXT, max_output_tokens=64, timeout_ms=timeout_ms, call_key="d1")


def _http_config(base_url: str, **execution: object) -> RouterConfig:
    raw = default_config().model_dump(mode="json")
    raw["execution"]["upstream"] = {
        "kind": "openai_compatible",
        "base_url": base_url,
        "api_key_env": KEY_ENV,
    }
    raw["execution"].update(execution)
    return RouterConfig.model_validate(raw)


def _assert_secret_absent(*texts: str) -> None:
    for t in texts:
        assert SECRET not in t
        assert TEXT not in t


def test_success_is_parsed_and_priced_from_usage(server, keyed):
    with OpenAICompatibleUpstream(server.base_url, KEY_ENV) as up:
        result = up.call(_request())
    assert result.ok and result.error_code is None
    assert (result.input_tokens, result.output_tokens) == (17, 9)
    spec = default_config().model("llama-3.1-8b-instruct")
    assert result.cost_usd == call_cost_usd(spec, 17, 9)
    assert result.latency_ms > 0
    (req,) = server.received
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["model"] == "llama-3.1-8b-instruct"
    assert req["body"]["messages"] == [{"role": "user", "content": TEXT}]
    assert req["body"]["max_tokens"] == 64
    assert req["headers"]["Authorization"] == f"Bearer {SECRET}"


def test_base_url_with_v1_and_model_aliases(server, keyed):
    with OpenAICompatibleUpstream(
        server.base_url + "/v1/",
        KEY_ENV,
        model_aliases={"llama-3.1-8b-instruct": "meta/llama-3.1-8b-instruct"},
    ) as up:
        assert up.call(_request()).ok
    assert server.received[0]["path"] == "/v1/chat/completions"
    assert server.received[0]["body"]["model"] == "meta/llama-3.1-8b-instruct"


def test_no_key_env_sends_no_authorization(server):
    with OpenAICompatibleUpstream(server.base_url, None) as up:
        assert up.call(_request()).ok
    assert "Authorization" not in server.received[0]["headers"]


def test_missing_usage_falls_back_to_the_token_estimate(server, keyed):
    server.mode = "no_usage"
    with OpenAICompatibleUpstream(server.base_url, KEY_ENV) as up:
        result = up.call(_request())
    assert result.ok
    assert result.input_tokens == -(-len(TEXT) // 4)
    assert result.output_tokens == 5  # 20 characters of content


@pytest.mark.parametrize(
    ("mode", "retryable"), [("500", True), ("429", True), ("400", False), ("garbage", True)]
)
def test_http_failures_map_to_upstream_error(server, keyed, caplog, mode, retryable):
    server.mode = mode
    with caplog.at_level(logging.DEBUG), OpenAICompatibleUpstream(server.base_url, KEY_ENV) as up:
        result = up.call(_request())
    assert not result.ok
    assert result.error_code == "UPSTREAM_ERROR"
    assert result.retryable is retryable
    assert result.cost_usd == 0
    _assert_secret_absent(caplog.text, repr(result), str(result.detail), repr(up))


def test_a_hanging_server_maps_to_upstream_timeout(server, keyed, caplog):
    server.mode = "hang"
    with caplog.at_level(logging.DEBUG), OpenAICompatibleUpstream(server.base_url, KEY_ENV) as up:
        result = up.call(_request(timeout_ms=200))
    assert not result.ok
    assert result.error_code == "UPSTREAM_TIMEOUT"
    assert result.retryable
    _assert_secret_absent(caplog.text, repr(result), str(result.detail))


def test_connection_refused_maps_to_upstream_error(keyed, caplog):
    with socket.socket() as s:  # a port that was free a moment ago and has no listener now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        caplog.at_level(logging.DEBUG),
        OpenAICompatibleUpstream(f"http://127.0.0.1:{port}", KEY_ENV) as up,
    ):
        result = up.call(_request())
    assert result.error_code == "UPSTREAM_ERROR"
    assert result.detail == "ConnectError"
    _assert_secret_absent(caplog.text, repr(result))


def test_key_missing_at_call_time_is_a_non_retryable_error_naming_the_variable(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with OpenAICompatibleUpstream(server.base_url, KEY_ENV) as up:
        result = up.call(_request())
    assert result.error_code == "UPSTREAM_ERROR" and not result.retryable
    assert KEY_ENV in result.detail
    assert server.received == []


def test_execution_plane_over_http_records_actuals_and_never_leaks_the_key(server, keyed, caplog):
    config = _http_config(server.base_url)
    up = upstream_from_config(config)
    assert isinstance(up, OpenAICompatibleUpstream)
    plane = ExecutionPlane(config, up)
    with caplog.at_level(logging.DEBUG):
        ok = plane.execute(make_decision("llama-3.1-8b-instruct"), TEXT)
        server.mode = "500"
        failed = plane.execute(make_decision("llama-3.1-8b-instruct", query_id="q2"), TEXT)
    up.close()
    assert ok.outcome == "ok" and ok.simulated is False
    assert ok.actual_cost_usd == call_cost_usd(config.model("llama-3.1-8b-instruct"), 17, 9)
    assert failed.outcome == "error" and failed.error_code == "UPSTREAM_ERROR"
    assert len(server.received) == 1 + 1 + config.execution.retries
    assert "HTTP 500" in caplog.text  # the logs were captured: their silence below is meaningful
    _assert_secret_absent(
        caplog.text, json.dumps(ok.to_dict()), json.dumps(failed.to_dict()), repr(plane.stats())
    )


def test_execution_plane_times_out_a_hanging_endpoint(server, keyed):
    config = _http_config(server.base_url, timeout_ms=200, retries=0)
    server.mode = "hang"
    with upstream_from_config(config) as up:
        out = ExecutionPlane(config, up).execute(make_decision("llama-3.1-8b-instruct"), TEXT)
    assert out.outcome == "timeout"
    assert out.error_code == "UPSTREAM_TIMEOUT"


def test_upstream_from_config_chooses_by_kind_and_fails_fast(monkeypatch, server):
    assert isinstance(upstream_from_config(default_config()), SimulatedUpstream)
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(UpstreamConfigError, match=KEY_ENV):
        upstream_from_config(_http_config(server.base_url))
    raw = _http_config(server.base_url).model_dump(mode="json")
    raw["execution"]["upstream"]["base_url"] = None
    with pytest.raises(UpstreamConfigError, match="base_url"):
        upstream_from_config(RouterConfig.model_validate(raw))
    with pytest.raises(UpstreamConfigError, match="http"):
        OpenAICompatibleUpstream("127.0.0.1:8000")
