"""The drill engine: virtual clock, scenario validation, fault injectors, the runner's
guarantees about itself (rollbacks always run, aborts, no raw text, reproducibility) and the CLI.

Scenarios here are small (a few virtual minutes, a few queries per second) so each run takes well
under a second; the built-in scenarios at full behaviour are in ``test_drill_scenarios.py``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from drills.clock import VirtualClock, format_duration, parse_duration, parse_start
from drills.faults import (
    FAULTS,
    FaultyUpstream,
    StoreFaultHook,
    StoreWriteFailure,
    Target,
    TokenMultiplier,
    UpstreamError,
    UpstreamLatency,
)
from drills.journal import EVENT_KINDS, read_journal
from drills.probes import CHECKS, PROBES
from drills.runner import run_scenario
from drills.scenario import (
    ScenarioError,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
)
from flows.commands.drill import app as drill_cli
from router.config import load_config
from router.upstream import SimulatedUpstream, UpstreamRequest

CANARY = "zebra-canary-7731 my secret is hunter2"
WIDE = {"COLUMNS": "300"}


def small(**overrides) -> dict:
    """A 6-minute drill at 4 qps: a fault at 2m, cleared at 4m."""
    data = {
        "name": "small",
        "title": "Small drill",
        "execution_mode": "execution-enabled",
        "duration": "6m",
        "traffic": {"qps": 4, "seed": 3},
        "steady_state": [
            {"probe": "decision_availability", "window": "1m", "tolerance": {"min": 1.0}}
        ],
        "faults": [
            {
                "type": "upstream_error",
                "target": {"model": "llama-3.1-8b-instruct"},
                "at": "2m",
                "params": {"error_rate": 1.0},
            }
        ],
        "rollbacks": [{"type": "clear_faults", "at": "4m"}],
        "guarantees": [
            {"id": "up", "check": "decision_availability", "expect": {"min": 1.0}},
            {
                "id": "opens",
                "check": "breaker_opened",
                "params": {"model": "llama-3.1-8b-instruct"},
                "expect": {"within_calls": 10},
            },
            {"id": "stored", "check": "telemetry_completeness"},
        ],
    }
    data.update(overrides)
    return data


def write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def run(tmp_path):
    """run(scenario_dict_or_name, **kwargs) against a fresh SQLite file under tmp_path."""

    def _run(scenario, **kwargs):
        if isinstance(scenario, dict):
            scenario = parse_scenario(scenario, "test")
        kwargs.setdefault("db", f"sqlite:///{tmp_path / 'telemetry.db'}")
        kwargs.setdefault("out", tmp_path / "out")
        kwargs.setdefault("spool_dir", tmp_path / "spool")
        return run_scenario(scenario, **kwargs)

    return _run


# ----------------------------------------------------------------------------- clock


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("250ms", 0.25), (90, 90), ("0", 0)],
)
def test_durations_parse_like_the_scenario_files_write_them(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5x", "five minutes", "-1m", True, -3])
def test_a_bad_duration_says_which_forms_are_valid(bad):
    with pytest.raises(ValueError, match="'30s', '5m', '1h'"):
        parse_duration(bad)


def test_virtual_clock_maps_offsets_to_utc_and_never_goes_back():
    clock = VirtualClock(parse_start("2026-11-16T02:00:00Z"))
    clock.set(90.5)
    assert clock.iso() == "2026-11-16T02:01:30.500Z"
    assert format_duration(5400) == "1h30m"
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(10)
    with pytest.raises(ValueError, match="no time zone"):
        parse_start("2026-11-16T02:00:00")


# ----------------------------------------------------------------------------- validation


def problems_of(data: dict, tmp_path: Path, name: str = "bad.yaml") -> str:
    path = write_yaml(tmp_path / name, data)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    text = str(err.value)
    assert str(path) in text, "every problem names the file"
    return text


def test_unknown_fault_type_lists_the_registered_ones(tmp_path):
    data = small()
    data["faults"][0]["type"] = "upstream_latnecy"
    text = problems_of(data, tmp_path)
    assert "field 'faults[0].type'" in text
    assert "unknown fault type 'upstream_latnecy'" in text
    for registered in FAULTS:
        assert registered in text


def test_unknown_probe_and_check_list_the_registered_ones(tmp_path):
    data = small()
    data["steady_state"][0]["probe"] = "uptime"
    data["guarantees"][0]["check"] = "always_fine"
    text = problems_of(data, tmp_path)
    assert "field 'steady_state[0].probe'" in text and "unknown probe 'uptime'" in text
    assert "field 'guarantees[0].check'" in text and "unknown check 'always_fine'" in text
    assert all(p in text for p in PROBES) and all(c in text for c in CHECKS)


def test_fault_params_are_checked_against_the_fault_type(tmp_path):
    data = small(
        faults=[{"type": "upstream_latency", "target": {"tier": "large"}, "at": "2m", "params": {}}]
    )
    text = problems_of(data, tmp_path)
    assert "field 'faults[0].params'" in text
    assert "add_ms: required" in text
    assert "valid params for upstream_latency: add_ms, jitter_ms" in text


def test_fault_targets_are_checked_against_the_router_catalog(tmp_path):
    data = small()
    data["faults"][0]["target"] = {"model": "gpt-9"}
    text = problems_of(data, tmp_path)
    assert "field 'faults[0].target.model': unknown model 'gpt-9'" in text
    assert "llama-3.1-8b-instruct" in text
    data["faults"][0]["target"] = {"tier": "huge"}
    assert "unknown tier 'huge'; tiers: frontier, image, large" in problems_of(data, tmp_path)


def test_a_store_fault_refuses_a_model_target(tmp_path):
    data = small(
        faults=[{"type": "store_write_failure", "target": {"tier": "large"}, "params": {}}]
    )
    text = problems_of(data, tmp_path)
    assert "store_write_failure acts on the store boundary" in text


def test_unknown_field_lists_the_valid_fields(tmp_path):
    data = small(trafic={"qps": 3})
    text = problems_of(data, tmp_path)
    assert "field 'trafic': unknown field; valid fields: name, title" in text


def test_bad_duration_and_tolerance_name_their_field(tmp_path):
    data = small(duration="half an hour")
    data["steady_state"][0]["tolerance"] = {}
    text = problems_of(data, tmp_path)
    assert "field 'duration': 'half an hour' is not a duration" in text
    assert "field 'steady_state[0].tolerance': give at least one of min, max, range, equals" in text


def test_steady_state_window_must_not_overlap_a_fault(tmp_path):
    data = small()
    data["steady_state"][0]["window"] = "3m"
    text = problems_of(data, tmp_path)
    assert (
        "field 'steady_state[0].window': 3m is longer than the time before the first fault" in text
    )


def test_guarantee_rule_must_exist_and_inline_rules_cannot_shadow_shipped_ones(tmp_path):
    data = small()
    data["guarantees"].append(
        {
            "id": "paged",
            "check": "alert_fired",
            "params": {"rule": "nope"},
            "expect": {"within": "1m"},
        }
    )
    text = problems_of(data, tmp_path)
    assert "field 'guarantees[3].params.rule': unknown alert rule 'nope'" in text
    assert "error_rate_high" in text
    shadow = small(
        alert_rules=[
            {
                "name": "error_rate_high",
                "metric": "error_rate",
                "comparator": ">",
                "threshold": 0.5,
                "window": "1m",
                "severity": "info",
                "summary": "mine",
            }
        ]
    )
    assert "'error_rate_high' is a shipped rule" in problems_of(shadow, tmp_path, "b.yaml")


def test_unquoted_true_toggle_is_the_string_an_operator_would_type(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: t\ntitle: t\nduration: 5m\ntraffic: {qps: 1}\nexecution_mode: true\n"
        "guarantees: [{id: up, check: decision_availability}]\n",
        encoding="utf-8",
    )
    assert load_scenario(path).execution_mode == "true"


def test_unknown_scenario_name_lists_the_built_ins():
    with pytest.raises(ScenarioError, match="built-ins: .*upstream-latency-spike"):
        load_scenario("no-such-drill")


def test_every_built_in_validates_and_has_a_plan():
    names = set(builtin_scenarios())
    assert {
        "upstream-latency-spike",
        "telemetry-store-partial-outage",
        "execution-toggle-misconfigured",
        "cost-spike",
        "model-failure",
        "latency-regression",
    } <= names
    for name in names:
        sc = load_scenario(name)
        kinds = [kind for _, kind, _ in sc.plan()]
        assert kinds[0] == "drill_started" and "fault_on" in kinds, name
        assert sc.duration == 1800 and sc.queries == 36_000, name


# ----------------------------------------------------------------------------- faults


@functools.cache
def _config():
    return load_config()


def _request(model_name: str, key: str = "d1") -> UpstreamRequest:
    model = _config().model(model_name)
    return UpstreamRequest(model, "some text", 100, 10_000, call_key=key)


def _upstream(*faults, now=lambda: 0.0) -> FaultyUpstream:
    cfg = _config()
    up = FaultyUpstream(SimulatedUpstream(cfg, 0), now, seed=1)
    for f in faults:
        f.active = True
        f.started_at_s = 0.0
        up.faults.append(f)
    return up


def test_latency_fault_hits_only_its_target_tier():
    fault = UpstreamLatency(0, UpstreamLatency.Params(add_ms=4000), target=Target(tier="large"))
    clean = _upstream()
    faulty = _upstream(fault)
    large = _request("llama-3.1-405b-instruct")
    small_model = _request("llama-3.1-8b-instruct")
    assert faulty.call(large).latency_ms == pytest.approx(clean.call(large).latency_ms + 4000)
    assert faulty.call(small_model) == clean.call(small_model)


def test_error_fault_fails_without_calling_the_model_and_bills_nothing():
    fault = UpstreamError(0, UpstreamError.Params(), target=Target(model="deepseek-r1"))
    up = _upstream(fault)
    result = up.call(_request("deepseek-r1"))
    assert not result.ok and result.error_code == "UPSTREAM_ERROR" and result.cost_usd == 0
    assert up.billed_usd == 0 and up.failures["deepseek-r1"] == 1 and fault.injected == 1


def test_token_multiplier_multiplies_tokens_and_cost():
    fault = TokenMultiplier(0, TokenMultiplier.Params(factor=5), target=Target(model="deepseek-r1"))
    clean = _upstream().call(_request("deepseek-r1"))
    spiked = _upstream(fault).call(_request("deepseek-r1"))
    assert spiked.output_tokens == clean.output_tokens * 5
    assert spiked.cost_usd > 4 * clean.cost_usd


def test_fault_probability_is_seeded_and_keyed_by_call():
    def hits() -> list[bool]:
        fault = UpstreamError(0, UpstreamError.Params(), probability=0.3)
        up = _upstream(fault)
        return [not up.call(_request("gemma-2-2b-it", f"d{i}")).ok for i in range(200)]

    first = hits()
    assert first == hits()
    assert 30 <= sum(first) <= 90


def test_store_fault_raises_a_real_operational_error():
    hook = StoreFaultHook()
    fault = StoreWriteFailure(0, StoreWriteFailure.Params(full=True))
    hook.faults.append(fault)
    assert hook() is None, "an inactive fault changes nothing"
    fault.active = True
    exc = hook()
    assert isinstance(exc, sa.exc.OperationalError)
    assert "Connection refused" in str(exc.orig)


# ----------------------------------------------------------------------------- runner


def test_small_drill_runs_and_journals_per_the_contract(run):
    result = run(small())
    j = read_journal(result.journal_path)
    assert j["status"] == "completed" and result.passed and result.exit_code == 0
    contract = {
        "kind", "schema_version", "run_id", "name", "title", "description", "tags",
        "scenario_file", "scenario_hash", "started_at", "ended_at", "wall_seconds",
        "execution_mode", "traffic", "status", "deviated", "resilience_score", "steady_state",
        "faults", "events", "metrics", "impact", "detection", "mitigation", "guarantees",
        "rollbacks", "telemetry", "error",
    }  # fmt: skip
    assert contract <= set(j)
    assert j["started_at"] == "2026-11-16T02:00:00Z" and j["ended_at"] == "2026-11-16T02:06:00Z"
    assert j["traffic"] == {"qps": 4.0, "seed": 3, "queries": 1440, "source": "generated"}
    assert {e["kind"] for e in j["events"]} <= set(EVENT_KINDS)
    offsets = [e["offset_s"] for e in j["events"]]
    assert offsets == sorted(offsets)
    assert len(j["metrics"]) == 6
    assert {"ts", "queries", "executed", "error_rate", "actual_latency_p95_ms"} <= set(
        j["metrics"][0]
    )
    g = {x["id"]: x for x in j["guarantees"]}
    assert g["opens"]["verdict"] == "passed" and "opened after" in g["opens"]["actual_text"]
    assert j["faults"][0]["start"] == "2026-11-16T02:02:00Z"
    assert j["faults"][0]["end"] == "2026-11-16T02:04:00Z"
    assert j["rollbacks"][0]["type"] == "clear_faults" and j["rollbacks"][0]["ok"]
    assert j["telemetry"]["rows"] == 1440 and "telemetry.db" in j["telemetry"]["db"]


def test_rollbacks_run_after_an_exception_mid_drill(run, caplog):
    boom_at = 3

    def explode(minute: int) -> None:
        if minute == boom_at:
            raise RuntimeError("injected failure mid-drill")

    data = small(toggle_changes=[{"at": "2m", "value": "Execution-Enabled"}])
    data["execution_mode"] = "decision-only"
    data["rollbacks"] = [{"type": "clear_faults", "at": "5m"}]
    with caplog.at_level(logging.CRITICAL):
        result = run(data, on_minute=explode)
    j = result.journal
    assert j.status == "failed" and "injected failure mid-drill" in j.error
    assert result.exit_code == 1
    rollback = j.rollbacks[0]
    assert rollback.type == "clear_faults" and rollback.ok
    assert rollback.ts == "2026-11-16T02:03:00Z", "run at once, not at its scheduled 5m"
    assert "after failed" in rollback.detail
    assert all(f.end == "2026-11-16T02:03:00Z" for f in j.faults), "every fault switched off"
    kinds = [e.kind for e in j.events]
    assert "rollback" in kinds and kinds[-1] == "drill_finished"
    toggles = [e.detail["value"] for e in j.events if e.kind == "toggle_changed"]
    assert toggles == ["Execution-Enabled", "decision-only"], "the toggle is restored"
    assert {g.verdict for g in j.guarantees} == {"error"}
    assert Path(result.journal_path).is_file()


def test_interrupt_still_rolls_back_and_journals(run):
    def interrupt(minute: int) -> None:
        if minute == 3:
            raise KeyboardInterrupt

    result = run(small(), on_minute=interrupt)
    assert result.journal.status == "interrupted" and result.exit_code == 1
    assert result.journal.rollbacks and result.journal.faults[0].ended_by.startswith("rollback")


def test_drill_aborts_when_the_steady_state_is_not_met_first(run):
    data = small()
    data["steady_state"].append(
        {"probe": "upstream_calls", "window": "1m", "tolerance": {"equals": 0}}
    )
    result = run(data)
    j = result.journal
    assert j.status == "aborted" and result.exit_code == 2
    assert "upstream_calls" in j.error
    assert not [f for f in j.faults], "no fault was switched on"
    assert j.steady_state.before[1].ok is False
    assert {g.verdict for g in j.guarantees} == {"error"} and j.resilience_score == 0


def test_reruns_of_a_scenario_measure_the_same_thing(run):
    a = run(small()).journal
    b = run(small()).journal
    assert a.run_id != b.run_id
    assert [g.actual for g in a.guarantees] == [g.actual for g in b.guarantees]
    assert a.metrics == b.metrics


def test_journal_and_telemetry_hold_no_raw_query_text(run, tmp_path):
    import pyarrow as pa

    from data.generate import generate_corpus, write_corpus

    table = generate_corpus(300, seed=5, days=1)
    texts = [f"{CANARY} #{i}: {t}" for i, t in enumerate(table.column("text").to_pylist())]
    table = table.set_column(table.column_names.index("text"), "text", pa.array(texts))
    corpus = write_corpus(table, tmp_path / "canary.jsonl")
    data = small(traffic={"qps": 2, "seed": 1, "corpus": str(corpus)})
    result = run(data)
    assert result.journal.traffic.source == "corpus:canary.jsonl"
    out_files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert out_files
    for p in out_files:
        assert "zebra-canary" not in p.read_text(encoding="utf-8", errors="replace"), p
    db = (tmp_path / "telemetry.db").read_bytes()
    assert b"zebra-canary" not in db and b"hunter2" not in db


# ----------------------------------------------------------------------------- CLI


def test_dry_run_sends_no_traffic(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "never.db"
    res = CliRunner().invoke(
        drill_cli, ["run", "upstream-latency-spike", "--dry-run", "--db", f"sqlite:///{db}"]
    )
    assert res.exit_code == 0, res.output
    assert "dry run: no traffic sent" in res.output
    assert "upstream_latency on tier large" in res.output and "breakers-open" in res.output
    assert not db.exists() and not (tmp_path / "reports").exists()
    assert not (tmp_path / ".harness").exists()


def test_cli_exit_codes_say_passed_failed_or_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    ok = write_yaml(tmp_path / "ok.yaml", small())
    base = [
        "--db",
        f"sqlite:///{tmp_path / 't.db'}",
        "--out",
        str(tmp_path / "out"),
        "--no-reports",
    ]
    res = runner.invoke(drill_cli, ["run", str(ok), *base], env=WIDE)
    assert res.exit_code == 0, res.output
    assert "3/3 guarantees held" in res.output and "journal:" in res.output

    failing = small()
    failing["guarantees"].append(
        {"id": "never", "check": "upstream_calls", "expect": {"equals": 0}}
    )
    bad = write_yaml(tmp_path / "bad.yaml", failing)
    res = runner.invoke(drill_cli, ["run", str(bad), *base], env=WIDE)
    assert res.exit_code == 2, res.output
    assert "upstream calls over the whole drill: exactly 0" in res.output

    broken = write_yaml(tmp_path / "broken.yaml", small(duration="soon"))
    res = runner.invoke(drill_cli, ["run", str(broken), *base], env=WIDE)
    assert res.exit_code == 1
    assert "field 'duration'" in res.output


def test_drill_list_shows_every_built_in():
    res = CliRunner().invoke(drill_cli, ["list"], env=WIDE)
    assert res.exit_code == 0, res.output
    for name in builtin_scenarios():
        assert name in res.output


def test_the_journal_records_the_failure_mode_the_scenario_declares(run):
    result = run(small(failure_mode="model-failure"))
    j = read_journal(result.journal_path)
    assert j["failure_mode"] == "model-failure"
    assert read_journal(run(small()).journal_path)["failure_mode"] is None


def _recovery(before_ms, after_ms, within_pct: float = 25.0):
    """latency_recovers over a record of large-tier calls: the first 5 minutes before the fault,
    the last 5 after the rollback."""
    import numpy as np
    import pandas as pd

    from drills.record import DrillRecord

    frames = []
    for start, values in ((0.0, np.asarray(before_ms)), (1500.0, np.asarray(after_ms))):
        frames.append(
            pd.DataFrame(
                {
                    "offset_s": start + np.arange(len(values)) * 300.0 / len(values),
                    "decision_id": [f"d{start:g}-{i}" for i in range(len(values))],
                    "outcome": "ok",
                    "model_tier": "large",
                    "actual_latency_ms": values,
                }
            )
        )
    record = DrillRecord(
        start=pd.Timestamp("2026-03-02", tz="UTC"), duration_s=1800, model_tiers={}
    )
    record.minute_frames = frames
    record.before_window, record.after_window = (0.0, 300.0), (1500.0, 1800.0)
    cls = CHECKS["latency_recovers"]
    return cls(cls.Params(tier="large"), cls.Expect(within_pct=within_pct)).evaluate(record)


def test_latency_recovery_tells_a_noisy_p95_from_latency_that_stayed_high():
    """A p95 of 60 calls is about their third-largest: two windows of the same traffic differ by
    +-20 %. A point estimate above the limit passes when the calls above it are as few as noise
    gives (binomial test); a fault that never cleared, or the same shift over many calls, fails."""
    import numpy as np

    before = np.random.default_rng(0).lognormal(np.log(400), 0.3, 60)
    after = np.sort(before)
    after[-4:] *= 2.0  # four slow calls in 60: the p95 point estimate doubles
    noisy = _recovery(before, after)
    assert noisy.actual["after_ms"] > noisy.actual["limit_ms"]
    assert noisy.passed and noisy.actual["after_calls_above_limit"] == 4
    assert "not shown to be above it" in noisy.actual_text

    stuck = _recovery(before, before + 4000)
    assert not stuck.passed and stuck.actual["after_calls_above_limit"] == 60
    assert "the p95 is above it" in stuck.actual_text

    many = np.random.default_rng(1).lognormal(np.log(400), 0.3, 2000)
    shifted = np.sort(many)
    shifted[-130:] *= 2.0  # the same share of slow calls (6.5 %) over 2,000 calls is real
    assert not _recovery(many, shifted).passed
    assert _recovery(many, np.random.default_rng(2).lognormal(np.log(400), 0.3, 2000)).passed
