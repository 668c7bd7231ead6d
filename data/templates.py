"""The synthetic corpus's templates as data: ``data/templates.yaml``, its schema and expansion.

Why a data file: the templates (slot fillers, query families and their weights, noise) are what
people edit to change the traffic mix; as Python they were 1,400 lines of tuples inside the
generator. The file is validated like every config (``router.yaml_safe.load_yaml_model``: every
problem names the field's path), and a template that names a slot the file does not define is
refused there, not when a corpus is half generated.
"""

from __future__ import annotations

import functools
import itertools
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from router.decision import ComplexityLevel, Domain
from router.yaml_safe import YamlModelError, load_yaml_model

TEMPLATES_NAME = "templates.yaml"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Range(_Spec):
    """``{range: [start, stop, step]}``: integers as Python's ``range`` gives them."""

    range: Annotated[list[StrictInt], Field(min_length=1, max_length=3)]

    def values(self) -> list[int]:
        return list(range(*self.range))


class _Product(_Spec):
    """``{format: "...", product: [...]}``: ``str.format`` over every combination, first list
    outermost (the order of nested ``for`` loops)."""

    format: StrictStr
    product: Annotated[list[list[StrictStr | StrictInt] | _Range], Field(min_length=1)]

    def values(self) -> list[str]:
        lists = [p.values() if isinstance(p, _Range) else p for p in self.product]
        return [self.format.format(*combo) for combo in itertools.product(*lists)]


_SlotItem = StrictStr | _Range | _Product
_Weighted = tuple[StrictStr, float]


class _FamilySpec(_Spec):
    name: StrictStr
    level: ComplexityLevel
    domain: Domain
    work: float = Field(ge=0)  # relative weight in work hours
    leisure: float = Field(ge=0)  # relative weight evenings, nights, weekends
    chat: bool = True  # short chat register: casual prefixes, suffixes, casing and typos
    templates: Annotated[list[StrictStr], Field(min_length=1)]


class TemplateFile(_Spec):
    """The schema of ``templates.yaml`` (its header comment says what each part is for)."""

    slots: dict[StrictStr, Annotated[list[_SlotItem], Field(min_length=1)]]
    families: Annotated[list[_FamilySpec], Field(min_length=1)]
    contexts: list[StrictStr]
    context_probability: dict[ComplexityLevel, float]
    chat_prefixes: list[_Weighted]
    chat_suffixes: list[_Weighted]
    long_prefixes: list[_Weighted]
    long_suffixes: list[_Weighted]
    right_to_left: list[tuple[StrictStr, ComplexityLevel, Domain]]
    emoji_tails: list[StrictStr]
    log_head: StrictStr
    log_line: StrictStr

    @model_validator(mode="after")
    def _slots_exist(self) -> TemplateFile:
        problems = []
        where = [(f"families[{i}].templates", f.templates) for i, f in enumerate(self.families)]
        for field, templates in [*where, ("contexts", self.contexts)]:
            for j, template in enumerate(templates):
                for name in slot_names(template):
                    if name.rstrip("0123456789") not in self.slots:
                        problems.append(f"{field}[{j}]: unknown slot {{{name}}}")
        missing = [lv.value for lv in ComplexityLevel if lv not in self.context_probability]
        if missing:
            problems.append(f"context_probability: no probability for {missing}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def slot_names(template: str) -> list[str]:
    """The ``{name}`` placeholders of a template, in order."""
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    level: ComplexityLevel
    domain: Domain
    templates: tuple[str, ...]
    work: float  # relative weight in work hours
    leisure: float  # relative weight evenings, nights, weekends
    chat: bool = True  # short chat register: casual prefixes, suffixes, casing and typos


@dataclass(frozen=True)
class Templates:
    """The expanded file: every slot a tuple of strings, ready for the generator."""

    slots: dict[str, tuple[str, ...]]
    families: tuple[Family, ...]
    contexts: tuple[str, ...]
    context_probability: dict[ComplexityLevel, float]
    chat_prefixes: tuple[tuple[str, float], ...]
    chat_suffixes: tuple[tuple[str, float], ...]
    long_prefixes: tuple[tuple[str, float], ...]
    long_suffixes: tuple[tuple[str, float], ...]
    right_to_left: tuple[tuple[str, ComplexityLevel, Domain], ...]
    emoji_tails: tuple[str, ...]
    log_head: str
    log_line: str


def _expand(items: list) -> tuple[str, ...]:
    out: list[str] = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        else:
            out.extend(str(v) for v in item.values())
    return tuple(out)


def default_templates_path() -> Path:
    return Path(str(resources.files("data") / TEMPLATES_NAME))


def load_templates(path: str | Path | None = None) -> Templates:
    """Read, validate and expand a template file (``None``: the packaged one)."""
    spec = load_yaml_model(path or default_templates_path(), TemplateFile)
    return Templates(
        slots={name: _expand(items) for name, items in spec.slots.items()},
        families=tuple(
            Family(f.name, f.level, f.domain, tuple(f.templates), f.work, f.leisure, f.chat)
            for f in spec.families
        ),
        contexts=tuple(spec.contexts),
        context_probability=dict(spec.context_probability),
        chat_prefixes=tuple(spec.chat_prefixes),
        chat_suffixes=tuple(spec.chat_suffixes),
        long_prefixes=tuple(spec.long_prefixes),
        long_suffixes=tuple(spec.long_suffixes),
        right_to_left=tuple(spec.right_to_left),
        emoji_tails=tuple(spec.emoji_tails),
        log_head=spec.log_head,
        log_line=spec.log_line,
    )


@functools.cache
def packaged_templates() -> Templates:
    """The packaged file, read once per process."""
    return load_templates(None)


__all__ = [
    "Family",
    "TemplateFile",
    "Templates",
    "YamlModelError",
    "default_templates_path",
    "load_templates",
    "packaged_templates",
    "slot_names",
]
