"""Every command reads at 80 columns (CI logs, pipes): each command's `--help` and the human
output of the commands people run there, rendered with COLUMNS=80, has no line longer than 80,
and ids (drill names, guarantee ids, run ids) come out whole, never cut or split."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from flows.cli import app

NARROW = {"COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1"}


def _command_paths(cmd=None, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command group and subcommand of `harness`, as argument lists."""
    cmd = cmd or typer.main.get_command(app)
    out = [path]
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        out += _command_paths(sub, (*path, name))
    return out


def _render(args: list[str], env: dict[str, str] = NARROW) -> tuple[int, list[str]]:
    res = CliRunner().invoke(app, args, env=env)
    return res.exit_code, [line.rstrip() for line in res.output.splitlines()]


def _too_long(lines: list[str]) -> list[str]:
    return [line for line in lines if len(line) > 80]


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "harness")
def test_help_fits_80_columns(path):
    code, lines = _render([*path, "--help"])
    assert code == 0 and any("Usage" in line for line in lines)
    assert _too_long(lines) == []
    assert not [line for line in lines if "<bool>" in line]  # flags take no value


def test_the_width_check_sees_a_wide_terminal():
    """The check above can fail: the same help at 200 columns does have longer lines."""
    _, lines = _render(["drill", "run", "--help"], env={**NARROW, "COLUMNS": "200"})
    assert _too_long(lines)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """A valid and an invalid scenario, a small corpus with bad rows, a store with a run."""
    import yaml

    from data.generate import generate_corpus, write_corpus
    from drills.scenario import builtin_scenarios
    from router.yaml_safe import load_yaml_file
    from telemetry.store import TelemetryStore

    root = tmp_path_factory.mktemp("narrow")
    good = load_yaml_file(builtin_scenarios()["model-failure"])
    bad = {**good, "name": "Bad Name", "faults": [{"type": "upstream_eror", "at": "5m"}]}
    (root / "good.yaml").write_text(yaml.safe_dump({**good, "name": "my-drill"}))
    (root / "bad.yaml").write_text(yaml.safe_dump(bad))
    write_corpus(
        generate_corpus(200, seed=2, days=2, start="2026-11-16", bad_rows=0.05),
        root / "c.csv",
    )
    store = TelemetryStore(f"sqlite:///{root / 't.db'}")
    store.start_run(RUN_ID, "drill", {"scenario": "model-failure"}, "hash")
    store.close()
    return {"root": root}


RUN_ID = "drill-model-failure-20261116T020000Z-4fda65180206f11b-20261129T143000Z"
"""Longer than a narrow column: `telemetry runs` once cut such ids."""


def test_command_output_fits_80_columns_with_ids_whole(inputs):
    root = inputs["root"]
    db = f"sqlite:///{root / 't.db'}"
    cases: list[tuple[list[str], set[int], list[str]]] = [
        (["drill", "list"], {0}, ["- execution-toggle-misconfigured", "every-dollar-recorded"]),
        (
            ["drill", "validate", str(root / "good.yaml"), str(root / "bad.yaml")],
            {1},
            ["ok ", "invalid ", "upstream_eror"],
        ),
        (
            ["drill", "run", "execution-toggle-misconfigured", "--dry-run"],
            {0},
            ["- zero-upstream-calls", "- decision-plane-up"],
        ),
        (["drill", "run", str(root / "bad.yaml"), "--dry-run"], {1}, ["invalid scenario"]),
        (["alerts", "list"], {0}, ["- borderline_rate_high"]),
        (["alerts", "list", "--context", "drill"], {0}, ["- fallback_rate_high"]),
        (["alerts", "test"], {0}, ["alert rule tests"]),
        (["telemetry", "runs", "--db", db], {0}, [RUN_ID]),
        (["telemetry", "status", "--db", db], {0}, ["decisions stored"]),
        (["corpus", "validate", str(root / "c.csv")], {0}, []),
    ]
    for args, codes, whole in cases:
        code, lines = _render(args)
        assert code in codes, (args, code, lines[-5:])
        assert _too_long(lines) == [], (args, _too_long(lines)[:3])
        for text in whole:  # ids and words on one line, not split across two
            assert any(text in line for line in lines), (args, text)


def test_a_real_drill_and_the_suite_read_at_80_columns(tmp_path, monkeypatch):
    """`drill run` (expected vs actual per guarantee) and `drill suite` (one block per drill),
    at 2 queries/s to stay fast; journal and report paths come out whole."""
    monkeypatch.chdir(tmp_path)  # relative paths: as long as a CI job's
    db = f"sqlite:///{tmp_path / 't.db'}"
    for command in ("run", "suite"):
        args = ["drill", command, "model-failure", "--qps", "2", "--out", "out", "--db", db]
        code, lines = _render(args)
        assert code == 0, (args, lines[-8:])
        assert _too_long(lines) == [], (args, _too_long(lines)[:3])
        journals = [line for line in lines if "/journal.json" in line]
        assert journals and all(
            re.search(r"out/drills/drill-model-failure-[0-9TZ]+-[0-9a-f]+/journal\.json", j)
            for j in journals
        ), journals


def test_wrapping_never_splits_a_path_or_an_id():
    """Prose wraps at spaces; a path longer than a line keeps a line of its own, whole."""
    import io

    from rich.console import Console
    from rich.text import Text

    from flows.commands.tables import print_wrapped

    path = "out/drills/drill-model-failure-20261129T145831Z-f21abc/" + "x" * 30 + "/journal.json"
    buf = io.StringIO()
    console = Console(file=buf, width=40, color_system=None)
    print_wrapped(console, Text(f"journal: {path} then some words after it"), 2)
    lines = buf.getvalue().splitlines()
    assert "  " + path in lines  # whole, on its own line
    assert [line for line in lines if len(line) > 40] == ["  " + path]
    assert " ".join(" ".join(lines).split()) == f"journal: {path} then some words after it"


def test_log_lines_fold_at_80_columns_with_words_whole(monkeypatch):
    """The CLI's log lines (the hash-key warning is 170 characters) fold at the terminal width;
    a path longer than a line keeps a line of its own."""
    import logging

    from flows.cli import TerminalLogFormatter
    from router.privacy import UNKEYED_WARNING

    monkeypatch.setenv("COLUMNS", "80")
    fmt = TerminalLogFormatter("%(levelname)s: %(message)s")
    path = "/tmp/" + "x" * 90 + "/journal.json"
    msg = f"{UNKEYED_WARNING} See {path} for details."
    rec = logging.LogRecord("t", logging.WARNING, __file__, 1, msg, None, None)
    lines = fmt.format(rec).splitlines()
    assert len(lines) > 2
    assert [ln.strip() for ln in lines if len(ln) > 80] == [path]  # only the unbreakable path
    assert " ".join(ln.strip() for ln in lines) == f"WARNING: {msg}"  # nothing lost or split
    monkeypatch.setenv("COLUMNS", "200")
    assert fmt.format(rec).count("\n") < len(lines) - 1  # wider terminal, fewer folds
