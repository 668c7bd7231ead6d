"""Hostile input and operator actions at the pilot's edge (issue 9 rows 1, 4, 7 and 9): names
that become paths, staging of text-bearing partitions, identical runs at once, a spool that
cannot be written, Ctrl-C. Each test fails on the code before the fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.interrupt import descendants
from flows.staging import (
    PID_FILE,
    WORK_PREFIX,
    RunBusyError,
    acquire_run_lock,
    new_work_dir,
    remove_work_dir,
    sweep_stale_work_dirs,
)

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    from data.generate import generate_corpus, write_corpus

    path = tmp_path_factory.mktemp("c") / "week.parquet"
    return write_corpus(generate_corpus(300, seed=3, days=2, start="2026-11-16"), path)


def _snapshot(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


@pytest.mark.parametrize("series", ["../../escape", "/tmp/abs-escape", "a/b", ".hidden", "x" * 60])
def test_a_series_that_could_become_a_path_is_refused_before_any_work(
    tmp_path, small_corpus, series
):
    work = tmp_path / "work"
    work.mkdir()
    before = _snapshot(tmp_path)
    res = CliRunner().invoke(
        app,
        [
            "pilot",
            "run",
            "--corpus",
            str(small_corpus),
            "--series",
            series,
            "--out",
            str(work / "out"),
            "--db",
            f"sqlite:///{work / 't.db'}",
            "--rule-only",
        ],
    )
    assert res.exit_code == 1, res.output
    assert "not a valid series name" in res.output and "Traceback" not in res.output
    assert _snapshot(tmp_path) == before  # nothing written, inside or outside --out
    assert not Path("/tmp/abs-escape").exists()


def test_out_pointing_at_a_file_is_a_clear_error(tmp_path, small_corpus):
    f = tmp_path / "report.txt"
    f.write_text("x")
    res = CliRunner().invoke(
        app, ["pilot", "run", "--corpus", str(small_corpus), "--out", str(f), "--rule-only"]
    )
    assert res.exit_code == 1 and "is a file" in res.output and f.read_text() == "x"


def test_staging_lives_outside_the_report_folder_and_dead_runs_are_swept(tmp_path):
    out = tmp_path / "out"
    legacy = out / ".pilot-work-abc123" / "accepted"
    legacy.mkdir(parents=True)
    (legacy / "part-0.parquet").write_text("text-bearing")
    dead = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
    (dead / PID_FILE).write_text("999999999")  # no such process
    live = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
    (live / PID_FILE).write_text(str(os.getpid()))
    try:
        d = new_work_dir(out)
        assert not str(d).startswith(str(out)) and oct(d.stat().st_mode)[-3:] == "700"
        assert not dead.exists() and live.exists()
        assert not list(out.glob(".pilot-work-*"))
        remove_work_dir(d)
        assert not d.exists()
    finally:
        remove_work_dir(live)
    assert sweep_stale_work_dirs(out) >= 0


def test_two_identical_pilots_at_once_the_second_is_refused(tmp_path):
    lock = acquire_run_lock(tmp_path, "pilot-x")
    with pytest.raises(RunBusyError, match="already running"):
        acquire_run_lock(tmp_path, "pilot-x")
    other = acquire_run_lock(tmp_path, "pilot-y")  # another run is not blocked
    other.release()
    lock.release()
    acquire_run_lock(tmp_path, "pilot-x").release()


def test_a_lock_held_by_a_killed_process_is_released(tmp_path):
    code = (
        "import sys, time; from pathlib import Path; from flows.staging import acquire_run_lock;"
        f"acquire_run_lock(Path({str(tmp_path)!r}), 'pilot-x'); print('locked', flush=True);"
        "time.sleep(60)"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(RunBusyError):
            acquire_run_lock(tmp_path, "pilot-x")
    finally:
        p.kill()
        p.wait()
    acquire_run_lock(tmp_path, "pilot-x").release()


def _cli(args, cwd, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **kw.pop("env", {})},
        **kw,
    )


@pytest.mark.slow
def test_a_spool_that_cannot_be_written_ends_in_one_error_line(tmp_path, small_corpus):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    p = _cli(
        [
            "pilot",
            "run",
            "--corpus",
            str(small_corpus),
            "--rule-only",
            "--out",
            str(tmp_path / "out"),
            "--db",
            "postgresql+psycopg://postgres@127.0.0.1:1/test",
        ],
        tmp_path,
        env={"AMAIMA_TELEMETRY_SPOOL_DIR": str(blocker / "spool")},
    )
    out, err = p.communicate(timeout=300)
    assert p.returncode == 1, err[-2000:]
    assert "Traceback" not in err and "could not spool" in err
    assert [line for line in err.splitlines() if line.startswith("error:")]


@pytest.mark.slow
def test_ctrl_c_stops_within_seconds_exits_130_and_leaves_no_process(tmp_path):
    from data.generate import generate_corpus, write_corpus

    corpus = write_corpus(
        generate_corpus(20_000, seed=9, days=3, start="2026-11-16"), tmp_path / "big.parquet"
    )
    p = _cli(
        [
            "pilot",
            "run",
            "--corpus",
            str(corpus),
            "--rule-only",
            "--days",
            "3",
            "--out",
            str(tmp_path / "out"),
            "--db",
            f"sqlite:///{tmp_path / 't.db'}",
        ],
        tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not descendants(p.pid):
            time.sleep(0.2)  # the temporary Prefect server is up once the CLI has a child
        kids = descendants(p.pid)
        assert kids, "the pilot never started its Prefect server"
        time.sleep(2)
        kids = descendants(p.pid)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err[-2000:]
    assert took < 10, f"Ctrl-C took {took:.1f} s"
    assert "Traceback" not in err
    time.sleep(0.5)
    alive = [
        k
        for k in kids
        if Path(f"/proc/{k}").exists()
        and Path(f"/proc/{k}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    ]
    assert alive == [], "a process the pilot started outlived it"
    mine = [
        d
        for d in Path(tempfile.gettempdir()).glob(WORK_PREFIX + "*")
        if (d / PID_FILE).exists() and (d / PID_FILE).read_text().strip() == str(p.pid)
    ]
    assert mine == [], "the staging dir (query text) was left behind"
