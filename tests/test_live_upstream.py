"""`harness upstream-sim` as its own process: the service's OpenAICompatibleUpstream calls it over
HTTP; latencies are real (slept), seeded, and follow the catalog's profiles."""

from __future__ import annotations

import httpx
import pytest

from live import procs


def _sim(tmp_path, name: str, *args: str) -> procs.Child:
    port = procs.free_port()
    return procs.start(
        name,
        procs.harness_cmd("upstream-sim", "--port", str(port), *args),
        url=f"http://127.0.0.1:{port}",
        ready_path="/health",
        log_dir=tmp_path,
    )


def _ask(child: procs.Child, model: str, n: int) -> list[tuple[int, float]]:
    out = []
    for _ in range(n):
        r = httpx.post(
            child.url + "/v1/chat/completions",
            json={
                "model": model,
                "messages": [{"role": "user", "content": "q"}],
                "max_tokens": 300,
            },
            timeout=30,
        )
        out.append((r.status_code, r.json().get("usage", {}).get("completion_tokens")))
    return out


def test_seeded_and_openai_shaped(tmp_path):
    a = _sim(tmp_path, "sim-a", "--seed", "3", "--time-scale", "0")
    b = _sim(tmp_path, "sim-b", "--seed", "3", "--time-scale", "0")
    c = _sim(tmp_path, "sim-c", "--seed", "4", "--time-scale", "0")
    try:
        ra, rb, rc = (_ask(x, "llama-3.1-8b-instruct", 8) for x in (a, b, c))
        assert ra == rb, "same seed, same call order -> same answers"
        assert ra != rc
        models = httpx.get(a.url + "/v1/models").json()["data"]
        assert "llama-3.1-405b-instruct" in {m["id"] for m in models}
        r = httpx.post(a.url + "/v1/chat/completions", json={"model": "nope", "messages": []})
        assert r.status_code == 404
        r = httpx.post(a.url + "/v1/chat/completions", content=b"garbage")
        assert r.status_code == 400
    finally:
        for x in (a, b, c):
            procs.stop(x)


def test_service_executes_through_the_simulator_over_http(tmp_path):
    sim = _sim(tmp_path, "sim", "--seed", "1", "--time-scale", "0.2")
    port = procs.free_port()
    svc = procs.start(
        "serve",
        procs.harness_cmd(
            "serve", "--port", str(port), "--db", f"sqlite:///{tmp_path / 't.db'}",
            "--upstream", sim.url,
        ),
        url=f"http://127.0.0.1:{port}",
        ready_path="/v1/health",
        log_dir=tmp_path,
        env={"AMAIMA_EXECUTION_MODE": "execution-enabled"},
    )  # fmt: skip
    try:
        lat = []
        for i in range(6):
            r = httpx.post(
                svc.url + "/v1/execute",
                json={"text": f"explain the difference between tcp and udp ({i})"},
                timeout=30,
            )
            assert r.status_code == 200, r.text
            d = r.json()["decision"]
            assert d["outcome"] == "ok" and not d["simulated"]
            lat.append(d["actual_latency_ms"])
        # medium/large tiers have p50 in the hundreds of ms; at time-scale 0.2 that is > 10 ms
        assert min(lat) > 5, lat
        assert httpx.get(sim.url + "/health").json()["calls"] >= 6
    finally:
        procs.stop(svc)
        procs.stop(sim)
    assert not svc.alive() and not sim.alive()


@pytest.mark.parametrize("args", [["--time-scale", "-1"]])
def test_bad_options_are_one_clear_line(args):
    import subprocess

    r = subprocess.run(
        procs.harness_cmd("upstream-sim", *args), capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1
    assert "error:" in r.stderr and "Traceback" not in r.stderr
