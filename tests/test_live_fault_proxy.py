"""The fault proxy as a real process between a client and `harness upstream-sim`: each toxic does
what it says, only to the models it targets, and the admin API validates what it is given."""

from __future__ import annotations

import time

import httpx
import pytest

from live import procs
from live.fault_proxy import start_proxy

MODEL = "llama-3.1-8b-instruct"
OTHER = "gemma-2-2b-it"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proxy")
    port = procs.free_port()
    sim = procs.start(
        "sim", procs.harness_cmd("upstream-sim", "--port", str(port), "--time-scale", "0"),
        url=f"http://127.0.0.1:{port}", ready_path="/health", log_dir=tmp,
    )  # fmt: skip
    proxy = start_proxy(sim.url, tmp)
    tcp = start_proxy(f"127.0.0.1:{port}", tmp, mode="tcp")
    try:
        yield sim, proxy, tcp
    finally:
        for c in (tcp, proxy, sim):
            procs.stop(c)


def _call(base: str, model: str = MODEL, timeout: float = 10) -> tuple[int | str, float]:
    t0 = time.perf_counter()
    try:
        r = httpx.post(
            base + "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "q"}], "max_tokens": 5},
            timeout=timeout,
        )
        out: int | str = r.status_code
    except httpx.HTTPError as exc:
        out = type(exc).__name__
    return out, (time.perf_counter() - t0) * 1000


def _toxic(proxy, **spec) -> None:
    r = httpx.post(proxy.extra["admin"] + "/toxics", json=spec)
    assert r.status_code == 201, r.text


@pytest.fixture(autouse=True)
def _clear(chain):
    yield
    for c in chain[1:]:
        httpx.delete(c.extra["admin"] + "/toxics")


def test_passthrough_then_latency_on_one_model_only(chain):
    _, proxy, _ = chain
    base = proxy.extra["listen"]
    assert _call(base)[0] == 200
    _toxic(proxy, type="latency", latency_ms=400, jitter_ms=50, models=[MODEL])
    status, ms = _call(base)
    assert status == 200 and ms >= 340
    status, ms = _call(base, OTHER)
    assert status == 200 and ms < 300


def test_error_reset_timeout_and_probability(chain):
    _, proxy, _ = chain
    base = proxy.extra["listen"]
    _toxic(proxy, type="error", status=503, name="boom")
    assert _call(base)[0] == 503
    httpx.delete(proxy.extra["admin"] + "/toxics/boom")
    _toxic(proxy, type="reset")
    assert _call(base)[0] in ("RemoteProtocolError", "ReadError", "ConnectError")
    httpx.delete(proxy.extra["admin"] + "/toxics")
    _toxic(proxy, type="timeout", timeout_ms=500)
    status, ms = _call(base)
    assert status != 200 and ms >= 450
    httpx.delete(proxy.extra["admin"] + "/toxics")
    _toxic(proxy, type="error", status=500, probability=0.5)
    codes = [_call(base)[0] for _ in range(40)]
    assert 5 < codes.count(500) < 35 and codes.count(200) > 5
    stats = httpx.get(proxy.extra["admin"] + "/stats").json()
    assert stats["requests"] >= 40


def test_tcp_mode_latency_and_reset(chain):
    _, _, tcp = chain
    base = tcp.extra["listen"]
    assert _call(base)[0] == 200
    _toxic(tcp, type="latency", latency_ms=300)
    status, ms = _call(base)
    assert status == 200 and ms >= 300
    httpx.delete(tcp.extra["admin"] + "/toxics")
    _toxic(tcp, type="reset")
    assert _call(base)[0] != 200


@pytest.mark.parametrize(
    "spec",
    [{"type": "flood"}, {"type": "latency", "probability": 2}, {"type": "latency", "x": 1}],
)
def test_admin_refuses_bad_toxics(chain, spec):
    r = httpx.post(chain[1].extra["admin"] + "/toxics", json=spec)
    assert r.status_code == 400 and r.json()["error"]


def test_tokens_toxic_multiplies_the_billed_usage_of_its_models_only(chain):
    _, proxy, _ = chain
    admin = proxy.extra["admin"]

    def usage(model: str) -> int:
        r = httpx.post(
            proxy.extra["listen"] + "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "q"}], "max_tokens": 5},
            timeout=10,
        )
        return r.json()["usage"]["completion_tokens"]

    def billed(model: str) -> int:
        return (
            httpx.get(admin + "/stats")
            .json()
            .get("usage", {})
            .get(model, {})
            .get("completion_tokens", 0)
        )

    assert usage(MODEL) <= 5  # max_tokens holds without the toxic
    _toxic(proxy, type="tokens", factor=5, models=[MODEL])
    before, before_other = billed(MODEL), billed(OTHER)
    spiked = [usage(MODEL) for _ in range(5)]
    others = [usage(OTHER) for _ in range(5)]
    assert all(u % 5 == 0 and u >= 5 for u in spiked) and max(spiked) > 5
    assert all(u <= 5 for u in others)  # other models untouched
    assert billed(MODEL) - before == sum(spiked)  # the bill is what the proxy delivered
    assert billed(OTHER) - before_other == sum(others)
    r = httpx.post(admin + "/toxics", json={"type": "tokens", "factor": 0})
    assert r.status_code == 400 and "factor" in r.text
