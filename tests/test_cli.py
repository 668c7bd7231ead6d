"""The `harness` CLI: route a query or a file, clear errors, help on every command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()
ROOT = Path(__file__).parent.parent


def test_route_prints_the_decision_as_json():
    res = runner.invoke(
        app, ["route", "write a python function that reverses a string", "--rule-only"]
    )
    assert res.exit_code == 0, res.output
    decision = json.loads(res.stdout[res.stdout.index("{") :])
    assert decision["domain"] == "coding" and decision["execution_mode"] == "decision-only"
    assert "reverses a string" not in res.stdout  # the text is never echoed back


def test_route_explain_gives_a_readable_account():
    res = runner.invoke(app, ["route", "Prove that there are infinitely many primes.", "--explain"])
    assert res.exit_code == 0, res.output
    assert "nearest exemplar" in res.stdout and "reasons:" in res.stdout


def test_route_rejects_empty_text_with_a_message():
    res = runner.invoke(app, ["route", "   ", "--rule-only"])
    assert res.exit_code == 1 and "empty" in res.output


def test_route_file_writes_parquet_and_reports_bad_lines(tmp_path):
    src = tmp_path / "q.jsonl"
    src.write_text(
        '{"text": "hello there", "query_id": "a"}\n'
        "not json\n"
        '{"text": "   ", "query_id": "blank"}\n'
        '{"query_id": "no-text"}\n'
        '{"text": "what is 2+2", "query_id": "b"}\n'
    )
    out = tmp_path / "d.parquet"
    res = runner.invoke(app, ["route", "--file", str(src), "--out", str(out), "--rule-only"])
    assert res.exit_code == 1  # some lines were not routed: say so, do not hide it
    assert pq.read_table(out).column("query_id").to_pylist() == ["a", "b"]
    assert "q.jsonl:2" in res.output and "blank" in res.output and "q.jsonl:4" in res.output


@pytest.mark.parametrize(
    "group", ["", "route", "corpus", "telemetry", "alerts", "pilot", "drill", "report", "demo"]
)
def test_every_command_has_help(group):
    res = runner.invoke(app, [*([group] if group else []), "--help"])
    assert res.exit_code == 0 and "Usage" in res.output


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from flows.cli import app\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'great_expectations', 'prefect') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == ""


def test_a_usage_error_exits_64_never_the_no_go_code(tmp_path):
    """CI gates read 2 as no-go: a mistyped flag must not look like a verdict."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    bad = subprocess.run(
        [sys.executable, "-m", "flows.cli", "pilot", "run", "--bogus"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 64 and "No such option" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "flows.cli", "pilot", "calibrate"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert missing.returncode == 64
