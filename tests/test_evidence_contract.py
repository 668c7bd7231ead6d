"""The pilot evidence contract: one strict model (``telemetry.evidence_model.PilotEvidence``),
owned by the writer, documented in ``docs/evidence.md``, refusing renamed, missing and unknown
keys with their path and evidence of another version with one clear message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import contract_models, documented_keys, model_keys
from pydantic import ValidationError

from reports.pilot import PilotEvidenceError, build_pilot_report, load_evidence
from telemetry import evidence_model as em
from telemetry import pilot_evidence as pe

ROOT = Path(__file__).parents[1]
DOC = ROOT / "docs" / "evidence.md"
SAMPLE = Path(__file__).parent / "data" / "pilot_evidence_sample.json"


def test_the_contract_document_lists_exactly_the_models_keys() -> None:
    models = contract_models(em.PilotEvidence, em)
    documented = documented_keys(DOC.read_text(encoding="utf-8"))
    assert set(documented) == set(models)
    for name, model in models.items():
        assert documented[name] == model_keys(model), name


def test_the_contract_document_check_fails_when_a_key_is_renamed() -> None:
    """The check above can fail: a doc with one key renamed no longer matches."""
    text = DOC.read_text(encoding="utf-8").replace("| `ci_low` |", "| `ci_lo` |")
    assert documented_keys(text)["CriterionRow"] != model_keys(em.CriterionRow)


def _sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def _problems(data: dict[str, Any]) -> str:
    with pytest.raises(PilotEvidenceError) as err:
        load_evidence(data)
    return str(err.value)


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [(("telemetry",), "rows", "row_count"), (("criteria", 2), "ci_low", "ci_lo")],
)
def test_a_renamed_key_fails_with_its_path(path: tuple, old: str, new: str) -> None:
    data = _sample()
    part = data
    for step in path:
        part = part[step]
    part[new] = part.pop(old)
    where = ".".join(str(p) for p in path).replace(".2", "[2]")
    message = _problems(data)
    assert f"missing key '{where}.{old}'" in message  # the name the reader expects
    assert f"key '{where}.{new}'" in message and "Extra inputs" in message  # and the stray one


def test_a_missing_nullable_key_is_an_error_not_a_none() -> None:
    data = _sample()
    del data["cost"]["total_served_usd"]
    del data["alerts"]["backtest"][1]["first_fired"]
    del data["labelled"]
    message = _problems(data)
    assert "missing key 'cost.total_served_usd'" in message
    assert "missing key 'alerts.backtest[1].first_fired'" in message
    assert "missing key 'labelled'" in message
    data = _sample()
    data["labelled"] = None  # null is how "no labels" is written
    ev, _ = load_evidence(data)
    assert ev.labelled is None


def test_the_writer_refuses_what_a_reader_would(tmp_path: Path) -> None:
    data = _sample()
    data["telemetry"]["row_count"] = data["telemetry"].pop("rows")
    with pytest.raises(ValidationError, match=r"telemetry\.rows"):
        pe.write_evidence(data, tmp_path)
    assert not (tmp_path / "evidence.json").exists()


@pytest.mark.parametrize("version", ["2", None])
def test_older_evidence_is_refused_with_its_version(tmp_path: Path, version: str | None) -> None:
    data = _sample()
    if version is None:
        del data["evidence_version"]  # version 1 had no such key
    else:
        data["evidence_version"] = version
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PilotEvidenceError) as err:
        build_pilot_report(path, tmp_path / "site")
    message = str(err.value)
    assert str(path) in message and f"evidence version {version or '1'!r}" in message
    assert "re-run the pilot" in message and "--recompute" in message
    assert "\n" not in message  # one clear line, not a list of every key that moved


def test_the_sample_round_trips_through_the_writer(tmp_path: Path) -> None:
    data = _sample()
    path = pe.write_evidence(copy.deepcopy(data), tmp_path / data["run_id"])
    ev, _ = load_evidence(path)
    assert json.loads(path.read_text()) == data
    assert ev.telemetry.rows == data["telemetry"]["rows"]
    assert ev.criteria[2].ci_low == data["criteria"][2]["ci_low"]
