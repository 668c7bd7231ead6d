"""Issue 9 rows 6, 7 and 13 for drill scenarios: non-finite numbers, non-UTF-8 files, duplicate
keys and pattern errors give one clear `error:` through `drill run`, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from drills.scenario import SCENARIO_DIR, ScenarioError, load_scenario
from flows.cli import app

runner = CliRunner()
BASE = (SCENARIO_DIR / "model-failure.yaml").read_text(encoding="utf-8")


def _scenario(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _drill(path: Path, tmp_path: Path):
    res = runner.invoke(app, ["drill", "run", str(path), "--dry-run", "--out", str(tmp_path / "o")])
    assert res.exit_code == 1, res.output
    assert (
        "Traceback" not in res.output
        and res.exception is None
        or isinstance(res.exception, SystemExit)
    )
    return res.output


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("traffic: {qps: 20, seed: 19}", "traffic: {qps: .nan, seed: 19}", "traffic.qps"),
        ("tolerance: {max: 0.02}", "tolerance: {max: .inf}", "steady_state.1.tolerance.max"),
        ("params: {error_rate: 1.0}", "params: {error_rate: .nan}", "faults.0.params.error_rate"),
        ("expect: {max: 10}", "expect: {max: -.inf}", "guarantees.3.expect.max"),
    ],
)
def test_non_finite_numbers_in_a_scenario_are_refused(tmp_path, old, new, field):
    assert old in BASE
    p = _scenario(tmp_path, BASE.replace(old, new))
    with pytest.raises(ScenarioError, match=rf"'{field}': not a finite number"):
        load_scenario(p)
    assert "not a finite number" in _drill(p, tmp_path)


def test_nan_as_a_string_in_check_expectations_is_refused(tmp_path):
    """pydantic turns the string 'nan' into a float; the parsed params are checked too."""
    p = _scenario(tmp_path, BASE.replace("expect: {max: 10}", "expect: {max: nan}"))
    with pytest.raises(ScenarioError, match=r"max: not a finite number"):
        load_scenario(p)


def test_non_utf8_scenario_is_one_clear_error(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes(BASE.encode("utf-8") + "# Mod\u00e8le\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match=r"not UTF-8 text: byte 0xe8"):
        load_scenario(p)
    out = _drill(p, tmp_path)
    assert "error:" in out and "not UTF-8" in out


def test_duplicate_keys_in_a_scenario_are_refused(tmp_path):
    p = _scenario(tmp_path, BASE + "\nduration: 1m\n")
    with pytest.raises(ScenarioError, match=r"duplicate key 'duration'"):
        load_scenario(p)
    assert "duplicate key 'duration'" in _drill(p, tmp_path)


def test_name_pattern_is_printed_literally(tmp_path):
    p = _scenario(tmp_path, BASE.replace("name: model-failure", "name: Model_Failure"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(p)
    assert "^[0-9a-z][0-9a-z-]*$" in str(info.value)
    out = _drill(p, tmp_path)
    assert "^[0-9a-z][0-9a-z-]*$" in out and "lowercase letters" in out
    assert "'^*$'" not in out


def test_headerless_traffic_corpus_is_a_scenario_error_without_text(tmp_path):
    """Issue 9 row 3: `drill run` with a headerless CSV as traffic.corpus printed the first row
    (query text) in a traceback; now it is one scenario error with counts and positions."""
    canary = "CANARY-drill-4b1d how do I"
    (tmp_path / "c.csv").write_text(
        f"q1,2026-11-16T10:00:00Z,{canary}\nq2,2026-11-16T10:00:01Z,hello\n", encoding="utf-8"
    )
    text = BASE.replace(
        "traffic: {qps: 20, seed: 19}", "traffic: {qps: 2, seed: 19, corpus: c.csv}"
    )
    p = _scenario(tmp_path, text)
    with pytest.raises(ScenarioError, match="header row missing") as info:
        load_scenario(p)
    assert canary not in str(info.value)
    out = _drill(p, tmp_path)
    assert "traffic.corpus" in out and "canary" not in out.lower()
