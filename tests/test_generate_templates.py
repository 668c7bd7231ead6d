"""The generator's templates are data (``data/templates.yaml``): the file is validated with field
paths, every part of it is used, and the generator stays deterministic per seed."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest
import yaml

from data import corpus, generate
from data.generate import FAMILIES, SLOTS, generate_corpus, write_corpus
from data.templates import default_templates_path, load_templates, slot_names
from router.yaml_safe import YamlModelError


def _digest(table: pa.Table) -> str:
    return hashlib.sha256(repr(table.to_pydict()).encode()).hexdigest()


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = write_corpus(generate_corpus(3000, seed=9, bad_rows=0.05), tmp_path / "a.jsonl")
    b = write_corpus(generate_corpus(3000, seed=9, bad_rows=0.05), tmp_path / "b.jsonl")
    assert a.read_bytes() == b.read_bytes()
    assert _digest(generate_corpus(3000, seed=10)) != _digest(generate_corpus(3000, seed=9))


def test_the_packaged_file_loads_and_every_slot_and_family_is_used():
    t = load_templates(None)
    assert t.slots == SLOTS and t.families == FAMILIES
    used = {
        name.rstrip("0123456789")
        for tpl in [*t.contexts, *(x for f in t.families for x in f.templates)]
        for name in slot_names(tpl)
    }
    assert used == set(SLOTS)  # no slot is dead, none is missing
    assert all(len(set(v)) == len(v) for v in SLOTS.values())  # no repeated filler
    assert len({f.name for f in FAMILIES}) == len(FAMILIES)
    # Specs expand as the comment at the top of the file says.
    assert SLOTS["n"][:3] == ("2", "3", "4") and SLOTS["n"][-1] == "60"
    assert SLOTS["clock"][:2] == ("1:00", "1:05") and "12 pm" in SLOTS["clock"]
    assert "`xs = {k: v for k, v in xs.items() if v}`" in SLOTS["short_snippet"]


def test_every_family_shows_up_in_a_corpus():
    week = generate_corpus(40_000, seed=3)
    seen = set(
        zip(
            week.column("expected_level").to_pylist(),
            week.column("expected_domain").to_pylist(),
            strict=True,
        )
    )
    assert {(f.level.value, f.domain.value) for f in FAMILIES} <= seen


def _broken(tmp_path, mutate) -> str:
    raw = yaml.safe_load(default_templates_path().read_text(encoding="utf-8"))
    mutate(raw)
    p = tmp_path / "templates.yaml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(YamlModelError) as exc:
        load_templates(p)
    assert all(line.startswith(str(p)) for line in exc.value.problems)
    return str(exc.value)


def test_a_template_naming_an_unknown_slot_is_refused_with_its_path(tmp_path):
    msg = _broken(tmp_path, lambda raw: raw["families"][2]["templates"].append("hi {nope}"))
    assert "families[2].templates[" in msg and "unknown slot {nope}" in msg


def test_a_non_string_filler_and_a_bad_level_are_refused_with_their_paths(tmp_path):
    def mutate(raw):
        raw["slots"]["city"].append(True)  # an unquoted `yes` in YAML
        raw["families"][0]["level"] = "EASY"

    msg = _broken(tmp_path, mutate)
    assert "field 'slots.city[" in msg and "field 'families[0].level'" in msg


@pytest.mark.parametrize("ext", sorted(corpus.EXTENSIONS))
def test_generator_writes_every_extension_the_loader_reads(tmp_path, ext):
    path = tmp_path / f"c{ext}"
    assert generate.format_for(path) == corpus.detect_format(path)
    write_corpus(generate_corpus(50, seed=1), path)
    assert corpus.validate_corpus(path).accepted == 50
