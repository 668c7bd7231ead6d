"""Writing a scenario without copying one: the JSON Schema and the reference generated from the
models and registries (and checked in, so they cannot drift), `drill validate`, and the
`failure_mode` a custom scenario declares, which puts its drills on the Failure Modes page."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from test_drills import small, write_yaml
from typer.testing import CliRunner

from drills.docs import DOCS_DIR, SCENARIOS_MD, SCHEMA_JSON, generated_files
from drills.faults import FAULTS, ROLLBACKS
from drills.probes import CHECKS, PROBES
from drills.scenario import Scenario, ScenarioError, builtin_scenarios, json_schema, load_scenario
from flows.cli import app
from router.yaml_safe import load_yaml_file

ROOT = Path(__file__).resolve().parents[1]
NARROW = {"COLUMNS": "80", "NO_COLOR": "1"}


def _validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _custom(**overrides) -> dict:
    """The engine tests' small 6-minute drill, renamed: not a built-in, not in the catalogue."""
    return small(**{"name": "custom-model-outage", **overrides})


# ------------------------------------------------------------------------------ the schema


def test_schema_accepts_every_built_in_as_written():
    v = _validator()
    for name, path in builtin_scenarios().items():
        errors = [
            f"{list(e.absolute_path)}: {e.message}" for e in v.iter_errors(load_yaml_file(path))
        ]
        assert errors == [], name


def test_schema_refuses_what_the_loader_refuses_per_plug_in():
    v = _validator()
    base = load_yaml_file(builtin_scenarios()["model-failure"])

    def errors(mutate) -> list[str]:
        doc = copy.deepcopy(base)
        mutate(doc)
        return [e.message for e in v.iter_errors(doc)]

    assert errors(lambda d: d["faults"][0]["params"].update(bogus=1))  # not upstream_error's
    assert errors(lambda d: d["faults"][0].update(type="no_such_fault"))
    assert errors(lambda d: d["guarantees"][4]["expect"].update(within="soon"))
    assert errors(lambda d: d.update(duration="half an hour"))
    assert errors(lambda d: d.pop("guarantees"))
    # durations are written as people write them, in specs and in a check's expect block
    assert errors(lambda d: d["guarantees"][4]["expect"].update(within="1m30s")) == []
    assert errors(lambda d: d.update(duration=1800)) == []


def test_schema_lists_every_registered_plug_in_with_its_params():
    schema = json_schema()
    defs = schema["$defs"]
    for spec, key, registry in (
        ("FaultSpec", "type", FAULTS),
        ("ProbeSpec", "probe", PROBES),
        ("GuaranteeSpec", "check", CHECKS),
        ("RollbackSpec", "type", ROLLBACKS),
    ):
        assert defs[spec]["properties"][key]["enum"] == list(registry)
        branches = {b["if"]["properties"][key]["const"]: b for b in defs[spec]["allOf"]}
        assert list(branches) == list(registry)
        for name, plugin in registry.items():
            params = branches[name]["then"]["properties"]["params"]
            assert set(params.get("properties", {})) == set(plugin.Params.model_fields)
    assert set(schema["properties"]) == set(Scenario.model_fields)


def test_drill_schema_prints_one_json_document_and_writes_out(tmp_path):
    res = CliRunner().invoke(app, ["drill", "schema"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == json_schema()
    out = tmp_path / "s" / "scenario.schema.json"
    res = CliRunner().invoke(app, ["drill", "schema", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text()) == json_schema()
    md = CliRunner().invoke(app, ["drill", "schema", "--markdown"])
    assert md.exit_code == 0 and md.stdout.startswith("# Writing a drill scenario")


# ------------------------------------------------------------------------ the generated docs


def test_committed_docs_are_what_the_generator_writes():
    """CI runs this: a new field, fault, probe, check, rollback or param without regenerated docs
    (`python -m drills.docs`) fails here."""
    for name, text in generated_files().items():
        committed = DOCS_DIR / name
        assert committed.is_file(), f"{committed} missing: run python -m drills.docs"
        assert committed.read_text(encoding="utf-8") == text, (
            f"{committed} is out of date: run python -m drills.docs"
        )


def test_docs_check_fails_on_a_stale_file(tmp_path, monkeypatch):
    import drills.docs as docs

    monkeypatch.setattr(docs, "DOCS_DIR", tmp_path)
    assert docs.main([]) == 0 and docs.main(["--check"]) == 0
    (tmp_path / SCENARIOS_MD).write_text("# hand-edited\n", encoding="utf-8")
    assert docs.main(["--check"]) == 1


def test_reference_documents_every_field_and_plug_in_with_an_example():
    md = generated_files()[SCENARIOS_MD]
    for field in Scenario.model_fields:
        assert f"| `{field}` |" in md
    sections = md.split("\n## ")
    for heading, registry in (
        ("Faults", FAULTS),
        ("Probes", PROBES),
        ("Checks", CHECKS),
        ("Rollbacks", ROLLBACKS),
    ):
        body = next(s for s in sections if s.startswith(heading))
        for name, plugin in registry.items():
            entry = body.split(f"\n### {name}\n", 1)[1].split("\n### ", 1)[0]
            assert plugin.summary in entry
            assert "Example" in entry and "```yaml" in entry
            for param in plugin.Params.model_fields:
                assert f"| `{param}` |" in entry
    for name in json_schema()["$defs"]:  # every type a field or param refers to has a section
        assert f"### {name}" in md or f"({name})" in md, name
    assert json.loads(generated_files()[SCHEMA_JSON]) == json_schema()


# ----------------------------------------------------------------------------- drill validate


def test_validate_says_ok_per_file_and_exits_0(tmp_path):
    good = write_yaml(tmp_path / "good.yaml", _custom())
    res = CliRunner().invoke(app, ["drill", "validate", str(good), "model-failure"], env=NARROW)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # a long path wraps at 80 columns
    assert text.startswith(f"ok {good}: custom-model-outage, 1 fault(s), 3 guarantee(s)")
    assert "ok model-failure: model-failure, 1 fault(s), 8 guarantee(s)" in text


def test_validate_reports_every_invalid_file_with_field_and_allowed_values_and_exits_1(tmp_path):
    good = write_yaml(tmp_path / "good.yaml", _custom())
    bad_param = _custom()
    bad_param["faults"][0]["params"] = {"rate": 1.0}
    bad = write_yaml(tmp_path / "bad.yaml", bad_param)
    missing = tmp_path / "missing.yaml"
    res = CliRunner().invoke(
        app, ["drill", "validate", str(good), str(bad), str(missing)], env=NARROW
    )
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())  # messages wrap at 80 columns
    assert f"ok {good}" in text
    assert f"invalid {bad}: 1 problem(s)" in text
    assert "field 'faults[0].params': rate: unknown parameter" in text
    assert "valid params for upstream_error: error_rate, code, latency_ms, retryable" in text
    assert f"invalid {missing}: 1 problem(s)" in text and "scenario file not found" in text


def test_validate_json_is_one_document_on_stdout(tmp_path):
    bad = write_yaml(tmp_path / "bad.yaml", _custom(duration="90s"))
    res = CliRunner().invoke(
        app, ["drill", "validate", "cost-spike", str(bad), "--json"], env=NARROW
    )
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["valid"] is False
    ok, invalid = doc["files"]
    assert ok["valid"] and ok["name"] == "cost-spike" and ok["problems"] == []
    assert not invalid["valid"] and "field 'duration'" in invalid["problems"][0]
    assert "invalid" in res.stderr  # people's lines went to stderr


def test_validate_without_files_is_a_usage_error_not_a_no_go():
    res = subprocess.run(
        [sys.executable, "-m", "flows.cli", "drill", "validate"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        timeout=60,
    )
    assert res.returncode == 64, res.stderr
    assert "Missing argument" in res.stderr


@pytest.mark.parametrize("option", [["--time-scale", "-3"], ["--qps", "0"]])
def test_a_non_positive_rate_is_a_usage_error_before_anything_starts(option, tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "flows.cli", "drill", "run", "model-failure", "--live", *option,
         "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}, timeout=60,
    )  # fmt: skip
    assert res.returncode == 64, res.stderr
    assert "Invalid value" in res.stderr and "starting" not in res.stderr
    assert not (tmp_path / "drills").exists()


# ---------------------------------------------------------------------------- failure_mode


def test_failure_mode_must_be_a_catalogue_id_and_the_error_lists_them(tmp_path):
    bad = write_yaml(tmp_path / "bad.yaml", _custom(failure_mode="model-outage"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(bad)
    (problem,) = err.value.problems
    assert "field 'failure_mode': unknown failure mode 'model-outage'" in problem
    assert "reports/failure_modes.yaml: upstream-latency-spike, telemetry-store-outage" in problem
    ok = write_yaml(tmp_path / "ok.yaml", _custom(failure_mode="model-failure"))
    assert load_scenario(ok).failure_mode == "model-failure"
    res = CliRunner().invoke(app, ["drill", "validate", str(ok)], env=NARROW)
    assert res.exit_code == 0 and "failure mode model-failure" in " ".join(res.output.split())


def test_a_catalogued_scenario_cannot_claim_another_failure_mode(tmp_path):
    clash = write_yaml(
        tmp_path / "clash.yaml", _custom(name="model-failure", failure_mode="cost-spike")
    )
    with pytest.raises(ScenarioError, match="lists scenario 'model-failure' under 'model-failure'"):
        load_scenario(clash)


def test_a_custom_drill_that_declares_a_failure_mode_is_evidence_for_it(tmp_path):
    """A real custom drill through `harness drill run`: its journal carries the declared mode and
    the Failure Modes page shows it under that mode, not under "not in the catalogue"."""
    from reports.failure_modes import build_failure_modes

    scenario = write_yaml(tmp_path / "custom.yaml", _custom(failure_mode="model-failure"))
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "drill",
            "run",
            str(scenario),
            "--db",
            f"sqlite:///{tmp_path / 'telemetry.db'}",
            "--out",
            str(out),
            "--no-reports",
            "--json",
        ],
        env=NARROW,
    )
    assert res.exit_code in (0, 2), res.output
    (drill,) = json.loads(res.stdout)["drills"]
    journal = json.loads(Path(drill["journal_path"]).read_text())
    assert journal["failure_mode"] == "model-failure"

    html = build_failure_modes(out).read_text()
    row = html.split('<tr id="fm-model-failure"', 1)[1].split("</tr>", 1)[0]
    assert "custom: <code>custom-model-outage</code>" in row  # named under the mode it drills
    assert "<code>custom-model-outage</code> 2026-" in row  # and as the latest evidence
    not_catalogued = html.split("not in the catalogue", 1)
    assert len(not_catalogued) == 1 or "custom-model-outage" not in not_catalogued[1]
