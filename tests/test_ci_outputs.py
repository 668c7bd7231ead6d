"""CI-facing output: JUnit XML that a CI parser reads, JSON on stdout, and terminal output that
reads at 80 columns (no line longer, ids whole)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from typer.testing import CliRunner

from flows.cli import app
from telemetry.alerts import DEFAULT_RULES_PATH

NARROW = {"COLUMNS": "80", "NO_COLOR": "1"}


def _lines(output: str) -> list[str]:
    return [line.rstrip() for line in output.splitlines()]


def test_alerts_list_and_test_read_at_80_columns():
    for args in (["alerts", "list"], ["alerts", "list", "--context", "drill"], ["alerts", "test"]):
        res = CliRunner().invoke(app, args, env=NARROW)
        assert res.exit_code == 0, res.output
        too_long = [line for line in _lines(res.output) if len(line) > 80]
        assert too_long == [], (args, too_long[:3])
    listed = CliRunner().invoke(app, ["alerts", "list"], env=NARROW).output
    assert "- borderline_rate_high" in listed  # names whole, one block per rule


def test_alerts_test_writes_junit_a_ci_parser_reads(tmp_path):
    ok = tmp_path / "ok.xml"
    res = CliRunner().invoke(app, ["alerts", "test", "--junit", str(ok)], env=NARROW)
    assert res.exit_code == 0, res.output
    root = ET.parse(ok).getroot()
    assert root.tag == "testsuites" and int(root.get("tests")) > 10
    assert root.get("failures") == "0"
    suite = root.find("testsuite")
    assert suite is not None and len(suite.findall("testcase")) == int(root.get("tests"))

    # A rule test that fails shows up as a <failure> with expected vs actual, and exit 2.
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"""rule_files: [{DEFAULT_RULES_PATH}]
evaluation_interval: 1m
context: drill
tests:
  - name: wrong expectation on purpose
    input_series:
      - metric: misconfigured_toggle_count
        values: "0 0 3 0"
    alert_rule_test:
      - {{eval_time: 1m, alertname: misconfigured_toggle, exp_alerts: [{{severity: critical}}]}}
      - {{eval_time: 3m, alertname: misconfigured_toggle, exp_alerts: []}}
"""
    )
    out = tmp_path / "bad.xml"
    res = CliRunner().invoke(app, ["alerts", "test", str(bad), "--junit", str(out)], env=NARROW)
    assert res.exit_code == 2, res.output
    root = ET.parse(out).getroot()
    fails = root.findall(".//failure")
    assert root.get("tests") == "2" and root.get("failures") == "1" and len(fails) == 1
    assert "expected" in fails[0].get("message") and "got" in fails[0].get("message")


def test_corpus_validate_and_telemetry_runs_print_one_json_document(tmp_path):
    import json

    from data.generate import generate_corpus, write_corpus
    from telemetry.store import TelemetryStore

    corpus = write_corpus(
        generate_corpus(300, seed=2, days=2, start="2026-11-16", bad_rows=0.05),
        tmp_path / "c.csv",
    )
    res = CliRunner().invoke(app, ["corpus", "validate", str(corpus), "--json"], env=NARROW)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["rows"] == doc["accepted"] + doc["quarantined"] and doc["quarantined"] > 0
    assert all("text" not in r for r in doc["quarantine_sample"])

    db = f"sqlite:///{tmp_path / 't.db'}"
    store = TelemetryStore(db)
    store.start_run("pilot-x-20261116-20261117-abcdef12-rules-0123abcd", "pilot", {}, "h")
    store.close()
    res = CliRunner().invoke(app, ["telemetry", "runs", "--db", db, "--json"], env=NARROW)
    assert res.exit_code == 0, res.output
    runs = json.loads(res.stdout)["runs"]
    assert [r["run_id"] for r in runs] == ["pilot-x-20261116-20261117-abcdef12-rules-0123abcd"]


def test_drill_run_and_suite_write_junit_and_json(tmp_path):
    """A real drill (2 queries/s keeps it fast): JUnit has one testcase per guarantee, a failed
    guarantee is a <failure> with expected vs actual, and --json is one document on stdout."""
    import json

    from drills.scenario import builtin_scenarios

    src = builtin_scenarios()["model-failure"]
    strict = tmp_path / "model-failure-strict.yaml"
    strict.write_text(
        src.read_text()
        .replace("expect: {within: 2m}", "expect: {within: 1s}")
        .replace("name: model-failure\n", "name: model-failure-strict\n")
    )
    junit = tmp_path / "drill.xml"
    res = CliRunner().invoke(
        app,
        [
            "drill",
            "run",
            str(strict),
            "--qps",
            "2",
            "--out",
            str(tmp_path / "out"),
            "--db",
            f"sqlite:///{tmp_path / 't.db'}",
            "--no-reports",
            "--junit",
            str(junit),
            "--json",
        ],
        env=NARROW,
    )
    assert res.exit_code == 2, res.output  # the detection guarantee cannot hold within 1 s
    doc = json.loads(res.stdout)
    assert doc["passed"] is False and len(doc["drills"]) == 1
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    fails = root.findall(".//failure")
    assert len(cases) == len(doc["drills"][0]["guarantees_detail"]) and len(fails) == 1
    assert "expected" in fails[0].get("message") and "got" in fails[0].get("message")

    suite_junit = tmp_path / "suite.xml"
    res = CliRunner().invoke(
        app,
        [
            "drill",
            "suite",
            "model-failure",
            "--qps",
            "2",
            "--out",
            str(tmp_path / "out2"),
            "--db",
            f"sqlite:///{tmp_path / 't2.db'}",
            "--junit",
            str(suite_junit),
            "--json",
        ],
        env=NARROW,
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["passed"] is True
    root = ET.parse(suite_junit).getroot()
    assert root.get("failures") == "0" and int(root.get("tests")) >= 5
