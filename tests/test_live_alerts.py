"""The alert rules exported as Prometheus rules: the real `promtool check rules` and `promtool test
rules` pass on the export (and fail when a rule is changed), and every series the PromQL reads
is one the running service exposes."""

from __future__ import annotations

import re
import subprocess

import httpx
import pytest

from live import procs
from telemetry.alerts import export_prometheus, prometheus_rules


def _run(*cmd: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize("context", ["drill", "pilot"])
def test_promtool_checks_and_tests_the_export(promtool, tmp_path, context):
    rules_path, tests, skipped = export_prometheus(tmp_path / "rules.yml", context=context)
    r = _run(promtool, "check", "rules", str(rules_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert tests, "the packaged rule tests of this context were exported"
    for t in tests:
        r = _run(promtool, "test", "rules", t.name, cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
    text = rules_path.read_text()
    if context == "drill":
        assert "Not exported: borderline_rate_high (not in the drill context)" in text
    else:
        assert not skipped


def test_promtool_test_fails_when_a_rule_changes(promtool, tmp_path):
    rules_path, tests, _ = export_prometheus(tmp_path / "rules.yml", context="drill")
    text = rules_path.read_text()
    broken = text.replace(
        "amaima:misconfigured_toggle_count:1m > 0", "amaima:misconfigured_toggle_count:1m > 5"
    )
    assert broken != text
    rules_path.write_text(broken)
    r = _run(promtool, "test", "rules", tests[0].name, cwd=tmp_path)
    assert r.returncode != 0
    assert "misconfigured_toggle" in r.stdout + r.stderr


def test_cli_export(tmp_path):
    out = tmp_path / "prom" / "rules.yml"
    r = _run(*procs.harness_cmd("alerts", "export", "--prometheus", str(out)))
    assert r.returncode == 0, r.stderr
    assert out.exists() and (out.parent / "rules_test.yml").exists()
    r = _run(*procs.harness_cmd("alerts", "export"))
    assert r.returncode == 1 and "error:" in r.stderr


def test_every_series_the_rules_read_is_exposed_by_the_service(tmp_path):
    doc, _ = prometheus_rules(context="pilot")
    exprs = " ".join(r["expr"] for g in doc["groups"] for r in g["rules"])
    names = set(re.findall(r"\bamaima_[a-z_]+", exprs))
    svc = procs.start_service(tmp_path, f"sqlite:///{tmp_path / 't.db'}", mode="execution-enabled")
    try:
        for text in ("hi", "prove that sqrt(2) is irrational", "translate hello to german"):
            httpx.post(svc.url + "/v1/execute", json={"text": text}, timeout=30)
        exposed = httpx.get(svc.url + "/metrics").text
    finally:
        procs.stop(svc)
    series = set(re.findall(r"^(amaima_[a-z_]+)", exposed, flags=re.M))
    assert names <= series, f"rules read series the service does not expose: {names - series}"
