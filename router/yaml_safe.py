"""One safe YAML loader for every config the harness reads (router config, scenarios, criteria).

Why: ``yaml.safe_load`` silently keeps the last of two equal keys (a typo'd second
``threshold:`` wins without a word) and a non-UTF-8 file fails with a bare
``UnicodeDecodeError`` traceback. Both are raised here as ``yaml.YAMLError`` subclasses, so a
loader that already turns ``yaml.YAMLError`` into its own clear error needs only to call
``load_yaml_file`` / ``load_yaml_text`` instead of ``yaml.safe_load``.

``load_yaml_model(path, Model)`` is the whole path for a config document: strict read, then
pydantic validation, with one error formatter (``validation_problems``) that names the file and
each field's path, so every config the harness reads fails the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ConstructorError):
    """A mapping gives the same key twice; ``problem`` names the key and both lines."""


class NotUtf8Error(yaml.YAMLError):
    """The file is not UTF-8 text; the message gives the byte offset and line."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (explicit keys only: ``<<`` merges may override)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                try:
                    key = self.construct_object(key_node, deep=True)
                    hash(key)
                except (TypeError, yaml.YAMLError):
                    continue  # the base class reports unhashable keys
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKeyError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"duplicate key {key!r} (first at line {seen[key]}, again at line {line})",
                        key_node.start_mark,
                    )
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str) -> Any:
    """``yaml.safe_load`` that raises ``DuplicateKeyError`` on a repeated key."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def decode_utf8(data: bytes, source: str | Path) -> str:
    """Strict UTF-8 (a BOM is allowed); ``NotUtf8Error`` names the byte offset and line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise NotUtf8Error(
            f"{source} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}"
            f" (line {line}); save it as UTF-8"
        ) from None


def load_yaml_file(path: str | Path) -> Any:
    """Read ``path`` as strict UTF-8 and parse it with ``load_yaml_text``.

    ``FileNotFoundError``/``OSError`` propagate; encoding and duplicate-key problems are
    ``yaml.YAMLError`` subclasses.
    """
    p = Path(path)
    return load_yaml_text(decode_utf8(p.read_bytes(), p))


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """A one-line description: ``line N: problem`` for marked errors, else the message."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem


M = TypeVar("M", bound=BaseModel)


class YamlModelError(ValueError):
    """A YAML document that could not be read or is not a valid ``Model``.

    ``problems`` holds one line per problem, each starting with the file (``path: field 'a.b[0]':
    message``); ``str()`` joins them, so a caller's own error class can wrap either form.
    """

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """A pydantic error location as people write it: ``('faults', 0, 'type')`` -> ``faults[0].type``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unwrap(tp: Any) -> Any:
    """The model inside ``Annotated[...]``, ``X | None``, ``list[X]``, ``dict[str, X]`` (else ``tp``)."""
    while True:
        origin = get_origin(tp)
        if origin is None:
            return tp
        args = [a for a in get_args(tp) if a is not type(None)]
        if origin is Annotated:
            tp = args[0]
        elif args:
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else args[-1]
        else:
            return tp


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The valid field names of the model holding ``loc[-1]`` (for 'unknown field' messages)."""
    here: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(here, type) and issubclass(here, BaseModel)):
            return None
        info = here.model_fields.get(part)
        if info is None:
            return None
        here = _unwrap(info.annotation)
    if isinstance(here, type) and issubclass(here, BaseModel):
        return [info.alias or name for name, info in here.model_fields.items()]
    return None


def validation_problems(
    exc: ValidationError, source: str | Path, model: type[BaseModel] | None = None
) -> list[str]:
    """One line per pydantic error: ``source: field 'path': message``.

    The wording people act on: a missing field says so, an unknown field lists the valid ones
    (when ``model`` is given), a validator's ``Value error, `` prefix is dropped.
    """
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            valid = _fields_at(model, loc) if model is not None else None
            msg = "unknown field" + (f"; valid fields: {', '.join(valid)}" if valid else "")
        elif err["type"] == "missing":
            msg = "required field is missing"
        if loc:
            problems.append(f"{source}: field '{field_path(loc)}': {msg}")
        else:
            problems += [f"{source}: {line}" for line in msg.splitlines()]
    return problems


def read_problem(path: Path, exc: OSError | yaml.YAMLError) -> str:
    """One line for a file that could not be read or parsed, naming the file (and line)."""
    if isinstance(exc, FileNotFoundError):
        return f"{path}: file not found"
    if isinstance(exc, OSError):
        return f"{path}: cannot read: {exc.strerror or exc}"
    if isinstance(exc, NotUtf8Error):
        return str(exc)  # already names the file, byte and line
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    return f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"


def validate_model(
    data: Any, model: type[M], source: str | Path, *, context: dict[str, Any] | None = None
) -> M:
    """Validate an already-loaded document; ``YamlModelError`` lists every problem with its path."""
    if not isinstance(data, Mapping):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise YamlModelError([f"{source}: expected a mapping at the top level, got {got}"])
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise YamlModelError(validation_problems(exc, source, model)) from None


def load_yaml_model(
    path: str | Path, model: type[M], *, context: dict[str, Any] | None = None
) -> M:
    """Read ``path`` strictly (UTF-8, duplicate keys refused) and validate it as ``model``.

    Every failure — missing file, unreadable, not UTF-8, bad YAML, invalid fields — is a
    ``YamlModelError`` whose lines name the file (and the line or field path).
    """
    p = Path(path)
    try:
        data = load_yaml_file(p)
    except (OSError, yaml.YAMLError) as exc:
        raise YamlModelError([read_problem(p, exc)]) from None
    return validate_model(data, model, p, context=context)


__all__ = [
    "DuplicateKeyError",
    "NotUtf8Error",
    "YamlModelError",
    "decode_utf8",
    "describe_yaml_error",
    "field_path",
    "load_yaml_file",
    "load_yaml_model",
    "load_yaml_text",
    "read_problem",
    "validate_model",
    "validation_problems",
]
