"""The drill journal contract: one strict model (``drills.journal.Journal``), documented in
``docs/journal.md``, refusing renamed, missing and unknown keys with their path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import contract_models, documented_keys

from drills import journal as jr
from reports.postmortem import DrillJournalError, load_journal

ROOT = Path(__file__).parents[1]
DOC = ROOT / "docs" / "journal.md"
SAMPLE = Path(__file__).parent / "data" / "journals" / "upstream-latency-spike-passed.json"


def test_the_contract_document_lists_exactly_the_models_keys() -> None:
    models = contract_models(jr.Journal, jr)
    documented = documented_keys(DOC.read_text(encoding="utf-8"))
    assert set(documented) == set(models)
    for name, model in models.items():
        assert documented[name] == set(model.model_fields), name


def test_the_contract_document_check_fails_when_a_key_is_renamed() -> None:
    """The check above can fail: a doc with one key renamed no longer matches."""
    text = DOC.read_text(encoding="utf-8").replace("| `extra_cost_usd` |", "| `extra_cost` |")
    assert documented_keys(text)["Impact"] != set(jr.Impact.model_fields)


def _sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("section", "old", "new"),
    [("impact", "extra_cost_usd", "extra_cost"), ("detection", "time_to_detect_s", "ttd_s")],
)
def test_a_renamed_key_fails_with_its_path(section: str, old: str, new: str) -> None:
    data = _sample()
    data[section][new] = data[section].pop(old)
    with pytest.raises(DrillJournalError) as err:
        load_journal(data)
    message = str(err.value)
    assert f"missing key '{section}.{old}'" in message  # the name the reader expects
    assert f"key '{section}.{new}'" in message and "Extra inputs" in message  # and the stray one


def test_a_missing_nullable_key_is_an_error_not_a_none() -> None:
    data = _sample()
    del data["mitigation"]["mitigated_at"]
    del data["metrics"][3]["offset_s"]
    with pytest.raises(DrillJournalError) as err:
        load_journal(data)
    assert "missing key 'mitigation.mitigated_at'" in str(err.value)
    assert "missing key 'metrics[3].offset_s'" in str(err.value)
    data = _sample()
    data["mitigation"]["mitigated_at"] = None  # null is how "did not happen" is written
    j, _ = load_journal(data)
    assert j.mitigation.mitigated_at is None


def test_an_older_journal_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    data = _sample()
    data["schema_version"] = "1.0"
    path = tmp_path / "journal.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DrillJournalError) as err:
        load_journal(path)
    assert str(path) in str(err.value) and "'1.0'" in str(err.value)
    assert "re-run the drill" in str(err.value)
    with pytest.raises(jr.JournalError, match="re-run the drill"):
        jr.read_journal(path)


def test_the_writer_round_trips_through_the_reader(tmp_path: Path) -> None:
    j = jr.parse_journal(_sample())
    other = copy.deepcopy(j)
    other.run_id = "drill-copy-1"
    path = jr.write_journal(other, tmp_path)
    assert path == tmp_path / "drills" / "drill-copy-1" / "journal.json"
    back = jr.parse_journal(json.loads(path.read_text()))
    assert back.impact == j.impact and back.metrics == j.metrics and back.run_id == "drill-copy-1"
    assert back.to_dict()["kind"] == "drill" and list(back.to_dict())[:3] == [
        "kind",
        "schema_version",
        "run_id",
    ]
