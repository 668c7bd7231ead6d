"""The built-in drills against the real router, execution plane and telemetry store.

Each built-in runs once (module fixture) at 5 queries per second instead of 20 — the faults,
timings and rules are the scenario's own; only the traffic is lighter. The full-size runs
(30 virtual minutes at 20 qps) are in ``benchmarks/bench_drills.py``.

Every detection guarantee must be able to fail: the same drill with its faults made inert (same
windows, no effect) must fail it. Otherwise a check that always passes would look like evidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from drills.faults import FAULTS, UpstreamFault
from drills.runner import DrillResult, run_scenario
from drills.scenario import Scenario, builtin_scenarios, load_scenario, parse_scenario

QPS = 5
INERT_QPS = 2  # a detection that cannot happen fails at any rate
BUILTINS = sorted(builtin_scenarios())

# The guarantees that prove a fault was *detected* (an alert, a reason code, the spool path).
DETECTION = {
    "upstream-latency-spike": ["latency-alert", "breakers-open"],
    "telemetry-store-partial-outage": ["write-failure-alert", "outage-spooled"],
    "execution-toggle-misconfigured": ["toggle-alert", "reason-code"],
    "cost-spike": ["cost-alert", "extra-spend-measured"],
    "model-failure": ["fallback-alert", "breaker-opens"],
    "model-failure-no-fallback": ["error-alert", "breaker-opens", "reject-retryable"],
    "latency-regression": ["early-warning"],
}


def _run(
    scenario: Scenario | str, root: Path, db: str | None = None, qps: float = QPS
) -> DrillResult:
    return run_scenario(
        scenario,
        db=db or f"sqlite:///{root / 'telemetry.db'}",
        out=root / "out",
        spool_dir=root / "spool",
        qps=qps,
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, DrillResult]:
    root = tmp_path_factory.mktemp("drills")
    return {name: _run(name, root / name) for name in BUILTINS}


def test_every_built_in_has_a_detection_guarantee_listed():
    assert set(DETECTION) == set(BUILTINS)


@pytest.mark.parametrize("name", BUILTINS)
def test_built_in_drill_holds_every_guarantee(results, name):
    j = results[name].journal
    failed = {g.id: (g.expected_text, g.actual_text) for g in j.guarantees if g.verdict != "passed"}
    assert j.status == "completed", j.error
    assert not failed, failed
    assert j.resilience_score == 1.0 and not j.deviated
    assert j.impact.decisions == j.impact.queries == 30 * 60 * QPS
    assert j.impact.telemetry_rows == j.impact.decisions
    assert j.detection.alert is not None and j.detection.time_to_detect_s is not None
    assert j.mitigation.how


def test_latency_spike_opens_breakers_and_rejects_with_a_retry_handle(results):
    j = results["upstream-latency-spike"].journal
    opened = {e.detail["model"] for e in j.events if e.kind == "breaker_open"}
    assert opened == {"llama-3.1-405b-instruct", "mistral-large-2", "llama-3.2-90b-vision"}
    # the spike becomes rejections with a retry handle, not errors: errors stay within the
    # catalogue's natural error rate (one seeded upstream error after retries is not the spike)
    from router.config import load_config

    natural = max(m.error_rate for m in load_config().models)
    assert j.impact.rejected > 0 and j.impact.errors <= natural * j.impact.executed
    assert j.detection.time_to_detect_s <= 120
    assert j.impact.latency_p95_ms_after < 2 * j.impact.latency_p95_ms_before


def test_misconfigured_toggle_never_executes(results):
    j = results["execution-toggle-misconfigured"].journal
    assert j.impact.upstream_calls == 0 and j.impact.executed == 0
    assert j.impact.not_executed == j.impact.decisions
    values = [e.detail["value"] for e in j.events if e.kind == "toggle_changed"]
    assert values == [
        "Execution-Enabled",
        "decision-only",
        "true",
        "decision-only",
        "execution_enabled",
        "decision-only",
        "",
        "decision-only",
    ]
    fired = [
        e
        for e in j.events
        if e.kind == "alert_fired" and e.detail["rule"] == "misconfigured_toggle"
    ]
    assert len(fired) == 4, "each misconfiguration is its own page"


def test_store_outage_spools_and_drains_everything(results):
    j = results["telemetry-store-partial-outage"].journal
    spools = [e for e in j.events if e.kind == "spool"]
    drains = [e for e in j.events if e.kind == "drain"]
    assert spools and {e.detail["error_kind"] for e in spools} <= {"locked", "connection_refused"}
    assert any(e.detail["error_kind"] == "connection_refused" for e in drains), (
        "drains during the full outage fail and keep the files"
    )
    assert sum(e.detail["rows_written"] for e in drains) == j.impact.spooled_rows
    assert j.impact.telemetry_rows == j.impact.decisions


def test_model_failure_falls_back_within_the_tier_and_says_so(results):
    j = results["model-failure"].journal
    assert j.impact.fallbacks > 0 and j.impact.rejected == 0
    g = {x.id: x for x in j.guarantees}
    assert g["no-downgrade"].actual["downgrades"] == 0
    assert g["errors-bounded"].actual["count"] <= 10
    no_fallback = results["model-failure-no-fallback"].journal
    assert no_fallback.impact.fallbacks == 0 and no_fallback.impact.rejected > 0


def test_cost_spike_every_billed_dollar_is_in_telemetry(results):
    j = results["cost-spike"].journal
    g = {x.id: x for x in j.guarantees}
    assert g["every-dollar-recorded"].actual["diff_usd"] < 1e-6
    assert j.impact.extra_cost_usd > 1.0


def test_latency_regression_is_flagged_before_the_sla_breach(results):
    j = results["latency-regression"].journal
    g = {x.id: x for x in j.guarantees}["early-warning"]
    assert g.actual["breached"] is True and g.actual["lead_s"] >= 0


# ----------------------------------------------------------------------------- faults really fire


class InertFault(UpstreamFault):
    """Switched on and off like the real fault, changes nothing."""

    type: ClassVar[str] = "inert"
    summary: ClassVar[str] = "a fault window with no effect (tests)"


@pytest.fixture
def inert_registered():
    FAULTS.add(InertFault)
    yield
    FAULTS.pop("inert", None)


def _inert(name: str) -> Scenario:
    data = load_scenario(name).model_dump(mode="json")
    for fault in data["faults"]:
        fault["type"] = "inert"
        fault["params"] = {}
    for change in data["toggle_changes"]:
        if change["value"] != "decision-only":
            change["value"] = "execution-enabled"  # a correct change: nothing to detect
    return parse_scenario(data, f"{name} (inert)")


@pytest.mark.parametrize("name", BUILTINS)
def test_drill_with_inert_faults_fails_its_detection_guarantees(name, tmp_path, inert_registered):
    j = _run(_inert(name), tmp_path, qps=INERT_QPS).journal
    verdicts = {g.id: g for g in j.guarantees}
    assert j.status == "completed"
    assert j.faults, "the fault windows are still there"
    for gid in DETECTION[name]:
        assert verdicts[gid].verdict == "failed", (gid, verdicts[gid].actual_text)
    assert j.resilience_score < 1.0


# ----------------------------------------------------------------------------- both stores


def test_store_outage_loses_nothing_on_sqlite_and_postgres(store_url, tmp_path):
    j = _run("telemetry-store-partial-outage", tmp_path, db=store_url).journal
    g = {x.id: x for x in j.guarantees}
    assert g["no-telemetry-lost"].verdict == "passed", g["no-telemetry-lost"].actual_text
    assert g["no-telemetry-lost"].actual["missing"] == 0
    assert g["no-telemetry-lost"].actual["duplicates"] == 0
    assert j.impact.spooled_rows > 0 and j.impact.telemetry_rows == j.impact.decisions
    assert j.telemetry.db.startswith(store_url.split(":")[0])


# ----------------------------------------------------------------------------- Prefect


@pytest.mark.slow
def test_run_drill_is_a_real_prefect_flow(prefect_harness, tmp_path):
    from flows.drill import run_drill

    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(
        "name: tiny\ntitle: Tiny\nduration: 3m\ntraffic: {qps: 2, seed: 1}\n"
        "faults: [{type: upstream_error, target: {model: llama-3.1-8b-instruct}, at: 1m,"
        " duration: 1m}]\n"
        "guarantees: [{id: up, check: decision_availability},"
        " {id: stored, check: telemetry_completeness}]\n",
        encoding="utf-8",
    )
    state = run_drill(
        str(scenario),
        db=f"sqlite:///{tmp_path / 't.db'}",
        out=str(tmp_path / "out"),
        return_state=True,
    )
    assert state.is_completed()
    summary = state.result()
    assert summary["status"] == "completed" and summary["passed"] and summary["exit_code"] == 0
    assert Path(summary["journal_path"]).is_file()
