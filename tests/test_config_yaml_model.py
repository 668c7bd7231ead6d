"""``router.yaml_safe.load_yaml_model``: the one strict YAML-to-model loader and its one error
formatter (every problem names the file and the field's path)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, field_validator

from router.yaml_safe import YamlModelError, field_path, load_yaml_model


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    weight: float = Field(ge=0)


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    steps: list[_Step]

    @field_validator("name")
    @classmethod
    def _lower(cls, v: str) -> str:
        if v != v.lower():
            raise ValueError("use lowercase")
        return v


def _write(tmp_path, text: str | bytes):
    p = tmp_path / "doc.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def test_valid_document_loads(tmp_path):
    doc = load_yaml_model(_write(tmp_path, "name: a\nsteps:\n  - {kind: x, weight: 1.5}\n"), _Doc)
    assert doc == _Doc(name="a", steps=[_Step(kind="x", weight=1.5)])


def test_every_field_problem_names_file_and_path(tmp_path):
    p = _write(
        tmp_path, "name: A\nsteps:\n  - {kind: x, weight: -1}\n  - {weight: 1, colour: red}\n"
    )
    with pytest.raises(YamlModelError) as exc:
        load_yaml_model(p, _Doc)
    problems = exc.value.problems
    assert f"{p}: field 'name': use lowercase" in problems
    assert any(x.startswith(f"{p}: field 'steps[0].weight': ") for x in problems)
    assert f"{p}: field 'steps[1].kind': required field is missing" in problems
    assert f"{p}: field 'steps[1].colour': unknown field; valid fields: kind, weight" in problems
    assert len(problems) == 4 and str(exc.value) == "\n".join(problems)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name: a\nsteps: []\nname: b\n", r":3: not valid YAML: duplicate key 'name'"),
        (b"name: caf\xe9\nsteps: []\n", r"not UTF-8 text: byte 0xe9"),
        ("name: [a\n", r"not valid YAML"),
        ("- a\n- b\n", r": expected a mapping at the top level, got a list"),
        ("", r": expected a mapping at the top level, got an empty file"),
    ],
    ids=["duplicate_key", "not_utf8", "bad_yaml", "not_a_mapping", "empty"],
)
def test_read_problems_name_the_file(tmp_path, text, needle):
    p = _write(tmp_path, text)
    with pytest.raises(YamlModelError, match=needle) as exc:
        load_yaml_model(p, _Doc)
    assert all(line.startswith(str(p)) for line in exc.value.problems)


def test_missing_file(tmp_path):
    with pytest.raises(YamlModelError, match="nope.yaml: file not found"):
        load_yaml_model(tmp_path / "nope.yaml", _Doc)


def test_field_path():
    assert field_path(("faults", 0, "target", "model")) == "faults[0].target.model"
    assert field_path(()) == ""
