"""Ctrl-C (or SIGTERM) during a long command: stop within seconds, leave nothing behind.

Why: Prefect reacts to KeyboardInterrupt by reporting the crash to its API, which took over a
minute and ended in an httpx traceback while the temporary Prefect server (a child uvicorn)
kept running. The harness instead removes the staging dirs it registered (they hold query
text), terminates every process it started (its descendants), and exits 130 at once. Locks are
released by the OS; the next run sweeps anything a `kill -9` left.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

from telemetry.exit_codes import ExitCode

_cleanup_dirs: set[Path] = set()


def register_cleanup_dir(path: Path) -> None:
    _cleanup_dirs.add(Path(path))


def unregister_cleanup_dir(path: Path) -> None:
    _cleanup_dirs.discard(Path(path))


def descendants(pid: int | None = None) -> list[int]:
    """Every live descendant of ``pid`` (default: this process), from /proc."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses; split after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def terminate_descendants(grace_s: float = 2.0) -> None:
    pids = descendants()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _handler(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    sys.stderr.write("\ninterrupted: stopping and cleaning up (exit 130)\n")
    sys.stderr.flush()
    for d in list(_cleanup_dirs):
        shutil.rmtree(d, ignore_errors=True)
    terminate_descendants()
    os._exit(ExitCode.INTERRUPTED)


def install() -> None:
    """Take over SIGINT and SIGTERM for this command (main thread only)."""
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
