"""Issue 9 rows 6, 7 and 13 for the router config: non-finite numbers, non-UTF-8 files and
duplicate keys are refused with a clear ConfigError (never a silent misroute or a traceback)."""

from __future__ import annotations

import pytest
import yaml

from router.config import ConfigError, default_config_path, load_config
from router.yaml_safe import DuplicateKeyError, NotUtf8Error, load_yaml_file, load_yaml_text


def _config_text() -> str:
    return default_config_path().read_text(encoding="utf-8")


def _write_with(tmp_path, mutate) -> str:
    raw = yaml.safe_load(_config_text())
    mutate(raw)
    p = tmp_path / "router.yaml"
    p.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return p


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize(
    "where",
    [
        lambda raw, v: raw["levels"].__setitem__(
            sorted(raw["levels"], key=raw["levels"].get)[1], v
        ),
        lambda raw, v: raw.__setitem__("borderline_band", v),
        lambda raw, v: raw["models"][0]["latency"].__setitem__("p95_ms", v),
        lambda raw, v: raw.setdefault("rule_weights", {}).__setitem__("length", v),
    ],
    ids=["level_threshold", "borderline_band", "latency", "rule_weight"],
)
def test_non_finite_numbers_are_refused(tmp_path, where, value):
    path = _write_with(tmp_path, lambda raw: where(raw, value))
    with pytest.raises(ConfigError, match="finite"):
        load_config(path)


def test_nan_written_as_yaml_dot_nan_is_refused(tmp_path):
    text = _config_text()
    raw = yaml.safe_load(text)
    name = sorted(raw["levels"], key=raw["levels"].get)[2]
    p = tmp_path / "router.yaml"
    raw["levels"][name] = "__NAN__"
    p.write_text(
        yaml.safe_dump(raw).replace("'__NAN__'", ".nan").replace("__NAN__", ".nan"),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=rf"levels\.{name}.*finite"):
        load_config(p)


def test_non_utf8_config_is_a_config_error(tmp_path):
    p = tmp_path / "router.yaml"
    p.write_bytes(_config_text().encode("utf-8") + b"\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"not UTF-8.*0xe9"):
        load_config(p)


def test_duplicate_key_in_config_is_refused(tmp_path):
    p = tmp_path / "router.yaml"
    p.write_text(_config_text() + "\nborderline_band: 0.0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"duplicate key 'borderline_band'"):
        load_config(p)


def test_yaml_safe_loader_rules(tmp_path):
    with pytest.raises(
        DuplicateKeyError, match=r"duplicate key 'a' \(first at line 1, again at line 3\)"
    ):
        load_yaml_text("a: 1\nb: 2\na: 3\n")
    with pytest.raises(DuplicateKeyError):
        load_yaml_text("outer:\n  x: 1\n  x: 1\n")
    # merges may override, as YAML intends; equal keys in different mappings are fine
    assert load_yaml_text("base: &b {x: 1}\nd:\n  <<: *b\n  x: 2\n") == {
        "base": {"x": 1},
        "d": {"x": 2},
    }
    with pytest.raises(yaml.constructor.ConstructorError):
        load_yaml_text("x: !!python/object/apply:os.system ['true']\n")
    p = tmp_path / "f.yaml"
    p.write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(NotUtf8Error, match=r"0xff at offset 8 \(line 2\)"):
        load_yaml_file(p)
    p.write_bytes("\ufeffa: 1\n".encode())
    assert load_yaml_file(p) == {"a": 1}


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("execution\u2010enabled", "'execution<U+2010 HYPHEN>enabled'"),
        ("execution-enabled\u200b", "'execution-enabled<U+200B ZERO WIDTH SPACE>'"),
        ("execution\u2011enabled", "'execution<U+2011 NON-BREAKING HYPHEN>enabled'"),
        ("\u0435xecution-enabled", "'<U+0435 CYRILLIC SMALL LETTER IE>xecution-enabled'"),
    ],
)
def test_invalid_toggle_values_show_their_code_points(value, shown, caplog):
    from router.toggle import resolve_toggle

    state = resolve_toggle(value)
    assert state.invalid and not state.active
    assert shown in state.reason and shown in caplog.text
    assert value not in state.reason  # the look-alike never prints as itself
