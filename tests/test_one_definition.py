"""One definition per concept: the same text means the same thing wherever the harness reads it.

Durations are read in scenario faults (drills.clock), inline and shipped alert rules
(telemetry.alerts) and journals (reports.postmortem); all three go through router.durations.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from drills.clock import format_duration as clock_format
from drills.scenario import ScenarioError, parse_scenario, resolve_scenario
from reports.postmortem import parse_duration as postmortem_seconds
from router.durations import format_duration, parse_duration
from router.yaml_safe import load_yaml_file
from telemetry.alerts import format_duration as alerts_format
from telemetry.alerts import parse_duration as alerts_timedelta


def _scenario_with(text: Any, rule_for: Any = None) -> dict[str, Any]:
    """The cost-spike scenario with one fault lasting ``text`` and an inline rule holding for it
    (or for ``rule_for``)."""
    data = copy.deepcopy(load_yaml_file(resolve_scenario("cost-spike")))
    data["faults"][0]["duration"] = text
    data["alert_rules"] = [
        {
            "name": "drill_cost_sustained",
            "metric": "cost_per_query_usd",
            "comparator": ">",
            "threshold": 0.004,
            "window": {"drill": "1m"},
            "for": text if rule_for is None else rule_for,
            "severity": "warning",
            "summary": "cost per query stays high",
        }
    ]
    return data


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1.5m", 90.0),
        ("90s", 90.0),
        ("1m30s", 90.0),
        ("0.25h", 900.0),
        ("0.1h", 360.0),
        ("2M", 120.0),
        ("500ms", 0.5),
        (120, 120.0),
    ],
)
def test_one_string_is_one_duration_in_faults_rules_and_postmortems(text, seconds):
    sc = parse_scenario(_scenario_with(text))
    fault_s = sc.faults[0].duration
    (rule,) = sc.inline_rules
    rule_s = rule.for_duration("drill").total_seconds()
    assert fault_s == rule_s == postmortem_seconds(text) == parse_duration(text) == seconds
    assert alerts_timedelta(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["1 hour", "5x", "-1m", "1h 30m", "m", True, -3])
def test_a_bad_duration_is_refused_by_faults_rules_and_postmortems(bad):
    with pytest.raises(ScenarioError, match=r"'faults\[0\]\.duration': .* is not a duration"):
        parse_scenario(_scenario_with(bad, rule_for="1m"))
    with pytest.raises(ScenarioError, match=r"'alert_rules\[0\]\.for': .* is not a duration"):
        parse_scenario(_scenario_with("1m", rule_for=bad))
    assert postmortem_seconds(bad) is None
    with pytest.raises(ValueError, match=r"is not a duration.*; use e.g. '30s'"):
        alerts_timedelta(bad)


@pytest.mark.parametrize("seconds", [0.0, 0.25, 1.5, 59.0, 90.0, 3600.0, 5400.0, 86400.0, 93784.5])
def test_the_formatter_is_one_and_reads_back(seconds):
    text = format_duration(seconds)
    assert clock_format(seconds) == alerts_format(alerts_timedelta(seconds)) == text
    assert parse_duration(text) == seconds
    assert text.replace("ms", "").isalnum() and "." not in text  # Prometheus-valid: integer parts


# ----------------------------------------------------------------------------- registries


def test_every_drill_registry_adds_entries_one_way_and_refuses_a_second_claim():
    from drills.faults import FAULTS, ROLLBACKS, UpstreamLatency
    from drills.probes import CHECKS, PROBES
    from drills.registry import Registry

    for registry, key in (
        (FAULTS, "type"),
        (ROLLBACKS, "type"),
        (PROBES, "name"),
        (CHECKS, "name"),
    ):
        assert isinstance(registry, Registry) and registry
        assert all(getattr(cls, key) == name for name, cls in registry.items())

    assert FAULTS.add(UpstreamLatency) is UpstreamLatency  # the same class again: a no-op
    impostor = type("Impostor", (UpstreamLatency,), {})
    with pytest.raises(ValueError, match="fault type 'upstream_latency' is already registered"):
        FAULTS.add(impostor)
    assert FAULTS["upstream_latency"] is UpstreamLatency


def test_an_added_fault_type_is_valid_in_a_scenario_and_listed_when_unknown():
    from drills.faults import FAULTS, UpstreamLatency

    data = load_yaml_file(resolve_scenario("cost-spike"))
    data["faults"][0]["type"] = "extra_latency"
    with pytest.raises(ScenarioError, match=r"unknown fault type 'extra_latency'; registered: "):
        parse_scenario(copy.deepcopy(data))
    extra = FAULTS.add(type("ExtraLatency", (UpstreamLatency,), {"type": "extra_latency"}))
    try:
        data["faults"][0]["params"] = {"add_ms": 500}
        assert parse_scenario(data).faults[0].type == "extra_latency"
    finally:
        FAULTS.pop(extra.type)
