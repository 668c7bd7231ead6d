"""`harness serve` as a real uvicorn process on a free 127.0.0.1 port: the endpoints, the status
codes of the execution plane (409 / 503 + Retry-After / 200), health and metrics, asynchronous
telemetry with a spool when the store is down, no text in errors or logs, the committed OpenAPI
spec, and a schemathesis run against the served spec."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from live import procs
from live.service import SPEC_PATH

CANARY = "zebra-canary-7731 patient Jane Roe"


@contextmanager
def _serving(log_dir: Path, db: str, mode: str, *args: str) -> Iterator[procs.Child]:
    """`harness serve` with AMAIMA_EXECUTION_MODE=``mode`` on the store ``db``, stopped after."""
    child = procs.start_service(log_dir, db, mode=mode, args=args)
    try:
        yield child
    finally:
        procs.stop(child)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """Decision-only service on a SQLite store."""
    tmp = tmp_path_factory.mktemp("svc")
    db = f"sqlite:///{tmp / 't.db'}"
    with _serving(tmp, db, "decision-only", "--spool-dir", str(tmp / "spool")) as child:
        child.extra["db"] = db
        child.extra["spool"] = tmp / "spool"
        yield child


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """Execution enabled, but the upstream refuses connections and the store is unreachable."""
    tmp = tmp_path_factory.mktemp("broken")
    dead_store = f"postgresql+psycopg://postgres@127.0.0.1:{procs.free_port()}/none"
    dead_upstream = f"http://127.0.0.1:{procs.free_port()}"
    spool = ("--spool-dir", str(tmp / "spool"))
    with _serving(
        tmp, dead_store, "execution-enabled", *spool, "--upstream", dead_upstream
    ) as child:
        child.extra["spool"] = tmp / "spool"
        yield child


def _post(child, path: str, body, **kw) -> httpx.Response:
    return httpx.post(child.url + path, json=body, timeout=30, **kw)


def _metric(child, name: str, **labels) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(child.url + "/metrics", timeout=10).text
    total = 0.0
    found = False
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
                found = True
    assert found, f"{name}{labels} not exposed"
    return total


# --- decisions ---------------------------------------------------------------------------------
def test_simulate_one_and_batch(service):
    r = _post(service, "/v1/simulate", {"text": "write a python function to sort a list"})
    assert r.status_code == 200
    (d,) = r.json()["decisions"]
    assert d["domain"] == "coding" and d["outcome"] == "not_executed" and d["simulated"]
    assert d["ts"].endswith("Z")
    batch = {"queries": [{"text": f"what is {i} + {i}?", "query_id": f"q{i}"} for i in range(50)]}
    r = _post(service, "/v1/simulate", {**batch, "run_id": "shadow-1"})
    body = r.json()
    assert r.status_code == 200 and body["count"] == 50
    assert [d["query_id"] for d in body["decisions"]] == [f"q{i}" for i in range(50)]
    again = _post(service, "/v1/simulate", {**batch, "run_id": "shadow-1"}).json()
    assert [d["decision_id"] for d in again["decisions"]] == [
        d["decision_id"] for d in body["decisions"]
    ], "same run and query ids -> same decision ids"
    assert "what is" not in r.text


def test_repeated_or_missing_query_ids_never_share_a_decision_id(service):
    qs = [{"text": "fine", "query_id": "a"}, {"text": "other", "query_id": "a"}, {"text": "x"}]
    ds = _post(service, "/v1/simulate", {"queries": qs}).json()["decisions"]
    assert [d["query_id"] for d in ds][:2] == ["a", "a#2"]
    assert len({d["decision_id"] for d in ds}) == 3


def test_execute_decision_only_is_409_with_decision(service):
    r = _post(service, "/v1/execute", {"text": "hello there", "query_id": "x1"})
    assert r.status_code == 409
    body = r.json()
    assert body["decision_id"] == body["decision"]["decision_id"]
    assert body["decision"]["outcome"] == "not_executed"
    assert "decision-only" in body["error"]


@pytest.mark.parametrize(
    "body",
    [
        {"text": CANARY, "surprise": 1},
        {"text": CANARY, "queries": [{"text": CANARY}]},
        {"queries": [{"text": CANARY, "query_id": 5}]},
        {"text": 12},
        {"text": "   \t "},
        {},
    ],
)
def test_bad_bodies_are_422_without_echo(service, body):
    r = _post(service, "/v1/simulate", body)
    assert r.status_code == 422, r.text
    assert CANARY not in r.text and "Jane" not in r.text
    assert r.json()["error"]


def test_malformed_json_and_oversized_bodies(service):
    r = httpx.post(
        service.url + "/v1/simulate",
        content=b'{"text": "zebra-canary-7731',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and "zebra" not in r.text
    big = {"text": "x" * 1_200_000}
    r = _post(service, "/v1/simulate", big)
    assert r.status_code == 413
    r = _post(service, "/v1/execute", {"queries": [{"text": "a"}] * 5000})
    assert r.status_code in (413, 422)


def test_health_and_metrics(service):
    h = httpx.get(service.url + "/v1/health").json()
    assert h["live"] and h["ready"]
    assert h["checks"]["toggle"] == {
        **h["checks"]["toggle"], "mode": "decision-only", "invalid": False
    }  # fmt: skip
    assert set(h["checks"]["breakers"].values()) == {"closed"}
    _post(service, "/v1/simulate", {"text": "hi"})
    assert _metric(service, "amaima_decisions_total", endpoint="simulate") >= 1
    assert _metric(service, "amaima_execution_mode", mode="decision-only") == 1
    assert _metric(service, "amaima_execution_toggle_invalid") == 0
    assert _metric(service, "amaima_breaker_state") == 0
    assert _metric(service, "amaima_latency_estimate_ms_count") >= 1

    # requests by route and status (the counting middleware sees the status the app answered)
    def answered(status: str) -> float:
        return _metric(service, "amaima_http_requests_total", route="/v1/simulate", status=status)

    _post(service, "/v1/simulate", {"nope": 1})
    ok, bad = answered("200"), answered("422")
    _post(service, "/v1/simulate", {"text": "hi"})
    _post(service, "/v1/simulate", {"nope": 1})
    assert (answered("200"), answered("422")) == (ok + 1, bad + 1)
    assert _metric(service, "amaima_http_request_duration_seconds_count", route="/v1/simulate") >= 3


def test_telemetry_reaches_the_store_asynchronously(service):
    from telemetry.store import TelemetryStore

    qs = [{"text": f"translate {i} words to french", "query_id": f"t{i}"} for i in range(30)]
    _post(service, "/v1/simulate", {"queries": qs, "run_id": "tel-check"})
    store = TelemetryStore(service.extra["db"], spool_dir=service.extra["spool"])
    deadline = time.monotonic() + 10
    while store.count("tel-check") < 30 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.count("tel-check") == 30
    store.close()


def test_no_text_in_the_service_log(service):
    _post(service, "/v1/simulate", {"text": CANARY})
    _post(service, "/v1/execute", {"text": CANARY})
    _post(service, "/v1/simulate", {"text": CANARY, "bad": True})
    time.sleep(0.5)
    assert "zebra-canary" not in service.log_path.read_text(errors="replace")


# --- execution plane failures -----------------------------------------------------------------
def test_no_healthy_model_is_503_with_retry_after_and_decision_id(broken):
    """The upstream refuses connections: calls fail, breakers open, then requests are rejected
    before any call with 503 + Retry-After + the decision_id to retry with."""
    seen = []
    for i in range(40):
        r = _post(broken, "/v1/execute", {"text": "hi", "query_id": f"b{i}"})
        seen.append(r.status_code)
        if r.status_code == 503:
            break
    assert seen[0] == 502, seen
    assert seen[-1] == 503, seen
    assert int(r.headers["Retry-After"]) >= 1
    body = r.json()
    assert body["decision_id"] == body["decision"]["decision_id"]
    assert body["decision"]["outcome"] == "rejected"
    assert body["decision"]["error_code"] == "UPSTREAM_UNAVAILABLE"
    h = httpx.get(broken.url + "/v1/health").json()
    tier = body["decision"]["model_tier"]
    assert tier in h["checks"]["tiers_down"]
    assert h["status"] == "degraded"
    assert _metric(broken, "amaima_breaker_state") > 0
    ev = httpx.get(broken.url + "/v1/breaker-events").json()
    opened = [e for e in ev["events"] if e["new"] == "open"]
    assert opened and all(e["tier"] == tier and e["calls"] >= 1 for e in opened)
    assert httpx.get(broken.url + f"/v1/breaker-events?since={ev['next']}").json()["events"] == []


def test_a_dead_store_spools_and_deciding_goes_on(broken):
    for i in range(5):
        r = _post(broken, "/v1/simulate", {"text": f"what is {i} squared", "query_id": f"s{i}"})
        assert r.status_code == 200
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        h = httpx.get(broken.url + "/v1/health").json()
        if h["checks"]["spool"]["rows_pending"] >= 5:
            break
        time.sleep(0.2)
    assert h["checks"]["spool"]["rows_pending"] >= 5
    assert h["checks"]["store"]["ok"] is False and h["status"] == "degraded"
    assert "none" not in json.dumps(h["checks"]["store"]["error_type"] or "")
    assert _metric(broken, "amaima_telemetry_spool_rows") >= 5
    assert _metric(broken, "amaima_telemetry_write_failures_total") >= 1


def test_invalid_toggle_fails_closed_and_is_reported(tmp_path):
    with _serving(tmp_path, f"sqlite:///{tmp_path / 't.db'}", "Execution-Enabled") as child:
        h = httpx.get(child.url + "/v1/health").json()
        assert h["checks"]["toggle"]["invalid"] is True
        assert h["checks"]["toggle"]["mode"] == "decision-only"
        assert h["status"] == "degraded"
        r = _post(child, "/v1/execute", {"text": "hello"})
        assert r.status_code == 409 and "invalid" in r.json()["error"]
        assert _metric(child, "amaima_execution_toggle_invalid") == 1
    assert child.proc.returncode is not None


def test_execution_enabled_serves_200(tmp_path):
    with _serving(tmp_path, f"sqlite:///{tmp_path / 't.db'}", "execution-enabled") as child:
        r = _post(child, "/v1/execute", {"text": "what is the capital of france"})
        assert r.status_code == 200, r.text
        d = r.json()["decision"]
        assert d["outcome"] in ("ok", "fallback") and d["actual_latency_ms"] > 0
        assert _metric(child, "amaima_actual_latency_ms_count") == 1
        assert _metric(child, "amaima_upstream_calls_total") >= 1


def test_committed_openapi_spec_matches_the_served_one(service):
    served = httpx.get(service.url + "/openapi.json").json()
    committed = json.loads(SPEC_PATH.read_text())
    assert served == committed, (
        "the served OpenAPI spec differs from live/openapi.json: if the change is intended, "
        "run `python -c 'from live.service import write_spec; write_spec()'` and commit it"
    )


def test_schemathesis_contract(service):
    """Generated requests (valid and invalid) never crash the service, and every answer matches
    the served spec: status codes, content types and bodies. Bounded examples keep it fast."""
    from hypothesis import given

    schema = schemathesis.openapi.from_url(service.url + "/openapi.json")
    ops = [r.ok() for r in schema.get_all_operations()]
    assert {op.label for op in ops} >= {"POST /v1/simulate", "POST /v1/execute"}
    for op in ops:

        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate()

        check()


def test_requests_that_arrive_together_are_routed_together_with_their_own_answers():
    """While one batch is routed, the requests that arrive wait and the next one routes them in a
    single route_batch call; each gets the decisions it would get alone, and an invalid one fails
    alone (live.route_batching)."""
    from live.route_batching import RouteBatcher
    from router.config import load_config
    from router.engine import InvalidQueryError, Router

    router = Router(load_config(None))
    jobs = [([f"explain tcp vs udp in {i} words", "hi"], [f"q{i}a", f"q{i}b"]) for i in range(6)]

    def queued_then_routed(jobs) -> tuple[RouteBatcher, list]:
        import threading

        batcher = RouteBatcher(router)
        out: list = [None] * len(jobs)

        def submit(i: int) -> None:
            try:
                out[i] = batcher.route(jobs[i][0], jobs[i][1], None, "run-x")
            except InvalidQueryError as exc:
                out[i] = exc

        batcher._route_lock.acquire()  # a batch is being routed: the others queue meanwhile
        threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(jobs))]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(batcher._pending) < len(jobs) and time.monotonic() < deadline:
            time.sleep(0.01)
        batcher._route_lock.release()
        for t in threads:
            t.join(10)
        return batcher, out

    batcher, out = queued_then_routed(jobs)
    assert batcher.calls == 1
    for (texts, qids), got in zip(jobs, out, strict=True):
        alone = router.route_batch(texts, query_ids=qids, run_id="run-x")
        assert got.drop_columns(["ts"]).to_pylist() == alone.drop_columns(["ts"]).to_pylist()
    big = [[f"prove lemma {i}.{k}" for k in range(200)] for i in range(3)]  # > MAX_BATCH together
    batcher, out = queued_then_routed(
        [(t, [f"b{i}.{k}" for k in range(200)]) for i, t in enumerate(big)]
    )
    assert batcher.calls == 3 and [got.num_rows for got in out] == [200, 200, 200]
    batcher, out = queued_then_routed([*jobs, ([" "], ["bad"])])
    assert isinstance(out[-1], InvalidQueryError)  # the shared call failed: each alone
    assert all(got.num_rows == 2 for got in out[:-1])
