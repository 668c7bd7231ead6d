"""The real Prometheus a live drill starts: it loads the exported rules at the drill's time scale,
scrapes `harness serve`, and its ALERTS series say when a rule fired; it is stopped by PID. Skips
without `prometheus` on PATH; fails when HARNESS_REQUIRE_PROMETHEUS=1 (CI). The full drill with
Prometheus is in test_live_drills.py (it uses Prometheus whenever it is on PATH)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from live import procs
from live.drill import LiveDrillError, run_live
from live.prometheus import PrometheusError, choose_evaluator, scaled_rules, start_prometheus
from telemetry.alerts import AlertRule, load_rules


def test_rules_are_scaled_to_the_drill_clock():
    rules = {r.name: r for r in scaled_rules(load_rules(), 40)}
    assert rules["fallback_rate_high"].window_for("drill").total_seconds() == 1.5
    assert rules["error_rate_high"].for_duration("drill").total_seconds() == 1.5
    assert rules["borderline_rate_high"].window_for("pilot").total_seconds() == 3600  # untouched


def test_an_alert_fires_in_prometheus_and_prometheus_is_stopped(prometheus, tmp_path):
    """A rule on the service's query count (1m at scale 30 = 2 s): quiet while no query comes,
    firing in Prometheus's ALERTS once queries flow."""
    rule = AlertRule.model_validate({
        "name": "queries_seen", "metric": "queries", "comparator": ">", "threshold": 0,
        "window": {"drill": "1m"}, "for": "0m", "severity": "info", "summary": "traffic",
    })  # fmt: skip
    svc = procs.start_service(tmp_path, f"sqlite:///{tmp_path / 't.db'}")
    prom = None
    try:
        prom = start_prometheus([rule], 30, svc.url, tmp_path)
        assert prom.interval_s == pytest.approx(2 / 6, abs=0.001) and prom.eval_s == prom.interval_s
        t0 = time.time()
        time.sleep(1.5)
        quiet_until = time.time()
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            httpx.post(svc.url + "/v1/simulate", json={"text": "hello there"}, timeout=10)
            time.sleep(0.05)
        time.sleep(prom.eval_s + prom.interval_s)
        fired = prom.firing_intervals(t0, time.time())
        assert [a.rule for a in fired] == ["queries_seen"]
        assert fired[0].fired_unix > quiet_until and fired[0].value > 0
        assert prom.rule_errors() == []
    finally:
        if prom is not None:
            procs.stop(prom.child)
        procs.stop(svc)
    assert prom is not None and not Path(f"/proc/{prom.child.pid}").exists()


def test_prometheus_required_but_missing_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrometheusError, match="not on PATH"):
        choose_evaluator("prometheus")
    monkeypatch.delenv("HARNESS_REQUIRE_PROMETHEUS", raising=False)
    assert choose_evaluator("auto") == "harness"
    monkeypatch.setenv("HARNESS_REQUIRE_PROMETHEUS", "1")
    with pytest.raises(LiveDrillError, match="HARNESS_REQUIRE_PROMETHEUS"):
        run_live("model-failure", out=tmp_path, evaluator="auto")
    assert not (tmp_path / "drills").exists()
