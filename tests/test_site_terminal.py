"""`harness telemetry runs` in a CI log or pipe (80 columns): ids whole, every field filled."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from flows.commands.telemetry import app as telemetry_cli
from telemetry.store import TelemetryStore

LONG_IDS = (
    "drill-upstream-latency-spike-20261129T121448Z-c7a539",
    "pilot-20261116-20261122-b06c06b5-rules-vs-1a2b3c4d-e5b087e3",
)


@pytest.fixture
def url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 't.db'}"
    store = TelemetryStore(url, spool_dir=tmp_path / "spool")
    start = datetime(2026, 11, 16, 2, tzinfo=UTC)
    store.start_run(LONG_IDS[0], "drill", {"qps": 2}, "abc", started_at=start)
    store.finish_run(LONG_IDS[0], "completed", {}, finished_at=start.replace(minute=30))
    store.start_run(LONG_IDS[1], "pilot", {"days": 7}, "abc", started_at=start)
    return url


@pytest.mark.parametrize("columns", [80, 60])
def test_runs_fold_to_blocks_when_narrow_and_never_cut_an_id(url, columns) -> None:
    result = CliRunner().invoke(
        telemetry_cli, ["runs", "--db", url], env={"COLUMNS": str(columns)}, terminal_width=columns
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # longer only when the line is one id or path that must not be cut
    assert all(len(line) <= columns or " " not in line.removeprefix("store: ") for line in lines)
    assert "runs: 2" in lines
    for run_id in LONG_IDS:
        assert run_id in lines  # whole, on its own line: copy-pasteable
    text = result.output
    assert "drill, completed, 0 decisions" in text
    assert "2026-11-16 02:00:00Z -> 2026-11-16 02:30:00Z" in text
    assert "pilot, running, 0 decisions" in text and "-> -" in text  # still running
    assert "…" not in text and "┃" not in text


def test_runs_are_a_table_when_wide_enough(url) -> None:
    result = CliRunner().invoke(
        telemetry_cli, ["runs", "--db", url], env={"COLUMNS": "200"}, terminal_width=200
    )
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.startswith("run_id"))
    assert header.split() == ["run_id", "kind", "status", "started_at", "finished_at", "decisions"]
    row = next(line for line in result.output.splitlines() if line.startswith(LONG_IDS[0]))
    assert row.split()[1:3] == ["drill", "completed"]
