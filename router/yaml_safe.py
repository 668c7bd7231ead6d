"""One safe YAML loader for every config the harness reads (router config, scenarios, criteria).

Why: ``yaml.safe_load`` silently keeps the last of two equal keys (a typo'd second
``threshold:`` wins without a word) and a non-UTF-8 file fails with a bare
``UnicodeDecodeError`` traceback. Both are raised here as ``yaml.YAMLError`` subclasses, so a
loader that already turns ``yaml.YAMLError`` into its own clear error needs only to call
``load_yaml_file`` / ``load_yaml_text`` instead of ``yaml.safe_load``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
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


__all__ = [
    "DuplicateKeyError",
    "NotUtf8Error",
    "decode_utf8",
    "describe_yaml_error",
    "load_yaml_file",
    "load_yaml_text",
]
