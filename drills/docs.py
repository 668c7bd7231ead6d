"""The scenario reference (``docs/scenarios.md``) and JSON Schema (``docs/scenario.schema.json``),
generated from the scenario models and the plug-in registries so they cannot drift.

Why generated: a hand-written reference goes stale the day someone adds a fault or a param. Here
every field's meaning is its model's ``description``, every fault / probe / check / rollback is
listed from its registry with its ``summary`` and its ``Params`` (and a check's ``Expect``), and
each gets an example taken from a built-in scenario that uses it (or built from its defaults),
validated by the same model ``harness drill validate`` uses. ``python -m drills.docs`` rewrites
both files; ``python -m drills.docs --check`` (and a test) fails when a committed file differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from drills.scenario import (
    FaultSpec,
    GuaranteeSpec,
    ProbeSpec,
    RollbackSpec,
    Scenario,
    TargetSpec,
    ToggleChange,
    Tolerance,
    TrafficSpec,
    builtin_scenarios,
    json_schema,
    parse_scenario,
)
from router.durations import DURATION_FORMS
from router.yaml_safe import load_yaml_file

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs"
SCENARIOS_MD = "scenarios.md"
SCHEMA_JSON = "scenario.schema.json"

EXAMPLE = """\
# yaml-language-server: $schema=scenario.schema.json
name: my-tier-slowdown
title: The large tier slows down for ten minutes
failure_mode: upstream-latency-spike
duration: 30m
traffic: {qps: 10, seed: 7}
steady_state:
  - {probe: error_rate, window: 5m, tolerance: {max: 0.02}}
faults:
  - type: upstream_latency
    target: {tier: large}
    at: 10m
    duration: 10m
    params: {add_ms: 4000}
guarantees:
  - id: every-query-decided
    check: decision_availability
    expect: {min: 1.0}
  - id: latency-alert
    check: alert_fired
    params: {rule: execution_p95_latency_high}
    expect: {within: 2m}
"""
"""A complete custom scenario; the generator validates it, so the reference never shows one
that ``drill validate`` would refuse."""

FIELD_MODELS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("The scenario (top level)", Scenario),
    ("traffic", TrafficSpec),
    ("toggle_changes[]", ToggleChange),
    ("faults[]", FaultSpec),
    ("faults[].target", TargetSpec),
    ("steady_state[]", ProbeSpec),
    ("steady_state[].tolerance", Tolerance),
    ("guarantees[]", GuaranteeSpec),
    ("rollbacks[]", RollbackSpec),
)

# (heading, the scenario list that names it, the spec model) per plug-in kind
PLUGIN_KINDS: tuple[tuple[str, str, type[Any]], ...] = (
    ("Faults", "faults", FaultSpec),
    ("Probes", "steady_state", ProbeSpec),
    ("Checks", "guarantees", GuaranteeSpec),
    ("Rollbacks", "rollbacks", RollbackSpec),
)


# --------------------------------------------------------------------------------- formatting


def _type_text(prop: dict[str, Any]) -> str:
    """A JSON Schema property as a short type, e.g. ``number | null``, ``"a" | "b"``."""
    if "enum" in prop:
        if len(prop["enum"]) > 3:  # a registry's names: listed in their own section
            return "name"
        return " | ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in prop:
        if any(p.get("pattern", "").startswith("^(0|(\\d+") for p in prop["anyOf"]):
            return "duration"
        return " | ".join(dict.fromkeys(_type_text(p) for p in prop["anyOf"]))
    kind = prop.get("type", "any")
    if kind == "array":
        items = prop.get("items")
        if isinstance(items, dict):
            return f"list of {_type_text(items)}"
        if "prefixItems" in prop:
            return "[" + ", ".join(_type_text(p) for p in prop["prefixItems"]) + "]"
    if kind == "object":
        return "mapping"
    return str(kind)


def _default_text(model: type[BaseModel], name: str) -> str:
    info = model.model_fields[name]
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        if isinstance(value, list) and value and isinstance(value[0], BaseModel):
            value = [v.model_dump(exclude_defaults=True) for v in value]
    else:
        value = info.default
    return f"`{json.dumps(value, default=str)}`"


def _constraints(prop: dict[str, Any]) -> str:
    words = {
        "minimum": ">=",
        "exclusiveMinimum": ">",
        "maximum": "<=",
        "exclusiveMaximum": "<",
        "minLength": "length >=",
        "minItems": "items >=",
    }
    parts = [f"{w} {prop[k]}" for k, w in words.items() if k in prop]
    if "pattern" in prop and "duration" != _type_text(prop):
        parts.append(f"pattern `{prop['pattern']}`")
    return f" ({', '.join(parts)})" if parts else ""


def _cell(text: str) -> str:
    """One Markdown table cell or paragraph: one line, reST ``code`` as Markdown `code`."""
    return " ".join(str(text).split()).replace("``", "`").replace("|", "\\|")


def field_table(model: type[BaseModel], skip: tuple[str, ...] = ()) -> list[str]:
    """Markdown table of a model's fields: name, type, default, meaning."""
    if not model.model_fields:
        return ["No parameters."]
    props = model.model_json_schema()["properties"]
    lines = ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        prop = props.get(name, {})
        meaning = info.description or prop.get("description") or ""
        if len(prop.get("enum", ())) > 3:
            meaning += " (see the sections below)"
        lines.append(
            f"| `{name}` | {_cell(_type_text(prop) + _constraints(prop))} | "
            f"{_default_text(model, name)} | {_cell(meaning)} |"
        )
    return lines


def schema_table(schema: dict[str, Any]) -> list[str]:
    """Markdown table of a JSON Schema object (a parameter type the plug-ins share)."""
    required = set(schema.get("required", ()))
    lines = ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, prop in schema.get("properties", {}).items():
        default = "**required**" if name in required else f"`{json.dumps(prop.get('default'))}`"
        lines.append(
            f"| `{name}` | {_cell(_type_text(prop) + _constraints(prop))} | {default} | "
            f"{_cell(prop.get('description', ''))} |"
        )
    return lines


def _yaml_block(data: Any) -> list[str]:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=88)
    return ["```yaml", *text.rstrip().splitlines(), "```"]


# ----------------------------------------------------------------------------------- examples


def _builtin_uses() -> dict[tuple[str, str], tuple[dict[str, Any], str]]:
    """(scenario list, plug-in name) -> (its first use in a built-in, that file's name)."""
    uses: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
    for name, path in builtin_scenarios().items():
        doc = load_yaml_file(path)
        for _heading, section, spec in PLUGIN_KINDS:
            for entry in doc.get(section) or []:
                uses.setdefault((section, entry[spec.key]), (entry, f"{name}.yaml"))
    return uses


def _made_up_example(spec: type[Any], name: str) -> dict[str, Any]:
    """An entry for a plug-in no built-in uses: its name and its required params (nullable ones
    as null), plus what the spec itself requires."""
    params: dict[str, Any] = {}
    for field, info in spec.registry[name].Params.model_fields.items():
        if info.is_required():
            params[field] = None
    entry: dict[str, Any] = {spec.key: name}
    if spec is GuaranteeSpec:
        entry = {"id": name.replace("_", "-"), **entry}
    if spec is ProbeSpec:
        entry["tolerance"] = {"max": 0}
    if spec is FaultSpec:
        entry.update(at="5m", duration="5m")
    if params:
        entry["params"] = params
    return entry


def _example(section: str, spec: type[Any], name: str, uses: dict) -> tuple[dict, str | None]:
    entry, source = uses.get((section, name), (None, None))
    if entry is None:
        entry = _made_up_example(spec, name)
    spec.model_validate(entry)  # an example the loader refuses must not reach the reference
    return entry, source


# ------------------------------------------------------------------------------------ render


def render_markdown() -> str:
    """The whole reference as Markdown (deterministic: the test compares it byte for byte)."""
    parse_scenario(yaml.safe_load(EXAMPLE), "docs example")
    out = [
        "# Writing a drill scenario",
        "",
        "<!-- Generated by `python -m drills.docs` from drills/scenario.py and the plug-in",
        "     registries (drills/faults.py, drills/probes.py). Do not edit: a test fails when this",
        "     file differs from what the generator writes. -->",
        "",
        "A scenario is one YAML file: the traffic a drill sends, the faults it switches on and",
        "off on a virtual clock, the steady state that must hold before and after, the",
        "guarantees checked at the end and the rollbacks that undo the faults.",
        "",
        "- `harness drill validate FILE...` checks files without running them (exit 0 all",
        "  valid, 1 any invalid; `--json` for CI). Every message names the file, the field",
        "  and what would be valid.",
        "- `harness drill run FILE --dry-run` prints the plan: what happens when.",
        f"- `harness drill schema` prints the JSON Schema (also in `docs/{SCHEMA_JSON}`); with",
        "  the YAML language server, a first line",
        "  `# yaml-language-server: $schema=<path to scenario.schema.json>` gives completion",
        "  and checks in the editor. The schema cannot express everything: the timeline,",
        "  models and tiers from the router catalog and alert-rule references are checked by",
        "  `drill validate` only.",
        "- `failure_mode` names the failure mode the drill is evidence for (an id in",
        "  `reports/failure_modes.yaml`); its runs then appear under that mode on the Failure",
        "  Modes page instead of under \u201cDrills not in the catalogue\u201d.",
        "",
        "Durations are written",
        f"{DURATION_FORMS}.",
        "Times (`at`) count from the start of the drill on its virtual clock.",
        "",
        "## A complete example",
        "",
        "```yaml",
        *EXAMPLE.rstrip().splitlines(),
        "```",
        "",
        "## Fields",
        "",
    ]
    for title, model in FIELD_MODELS:
        heading = title if model is Scenario else f"{title} ({model.__name__})"
        out += [f"### {heading}", "", _cell(model.__doc__ or ""), "", *field_table(model), ""]
    uses = _builtin_uses()
    for heading, section, spec in PLUGIN_KINDS:
        out += [f"## {heading}", ""]
        out += [
            f"Named by `{section}[].{spec.key}`. Registered: "
            + ", ".join(f"`{n}`" for n in spec.registry)
            + ".",
            "",
        ]
        for name, plugin in spec.registry.items():
            out += [f"### {name}", "", _cell(plugin.summary) + ".", ""]
            facts = []
            if hasattr(plugin, "boundary"):
                facts.append(f"Boundary: {plugin.boundary}.")
                facts.append(
                    "Takes a `target` (model or tier)." if plugin.takes_target else "No `target`."
                )
            if getattr(plugin, "unit", ""):
                facts.append(f"Unit: {plugin.unit}.")
            if getattr(plugin, "point_in_time", False):
                facts.append("Measured at a point in time (the window is ignored).")
            if getattr(plugin, "rule_param", None):
                facts.append(f"`params.{plugin.rule_param}` names an alert rule of the drill.")
            if facts:
                out += [" ".join(facts), ""]
            for part, (attr, _label) in spec.parts.items():
                out += [f"`{part}`:", "", *field_table(getattr(plugin, attr)), ""]
            entry, source = _example(section, spec, name, uses)
            out.append(f"Example (from `drills/scenarios/{source}`):" if source else "Example:")
            out += ["", *_yaml_block([entry]), ""]
    spec_models = {m.__name__ for _t, m in FIELD_MODELS}
    shared = {k: v for k, v in json_schema()["$defs"].items() if k not in spec_models}
    if shared:
        out += ["## Parameter types", "", "Types that plug-in parameters above refer to.", ""]
        for name, schema in shared.items():
            out += [f"### {name}", "", _cell(schema.get("description", "")), ""]
            out += [*schema_table(schema), ""]
    return "\n".join(out).rstrip() + "\n"


def render_schema() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def generated_files() -> dict[str, str]:
    """File name under ``docs/`` -> its generated text."""
    return {SCENARIOS_MD: render_markdown(), SCHEMA_JSON: render_schema()}


def main(argv: list[str] | None = None) -> int:
    """``python -m drills.docs [--check]``: write the files, or exit 1 naming the stale ones."""
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    stale = []
    for name, text in generated_files().items():
        path = DOCS_DIR / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if check:
            stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run `python -m drills.docs`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
