"""Where a pilot stages its corpus partitions and how two identical pilots are kept apart.

Staged day partitions hold query text, so they live in a private (0700) temp dir, never in the
report folder, and are removed on close; dirs left by killed runs are swept at the next start.
A run-id lock makes a second identical pilot fail fast with a clear message instead of racing
the first one on the same report files.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

WORK_PREFIX = "amaima-pilot-"
PID_FILE = "owner.pid"
LEGACY_WORK_GLOB = ".pilot-work-*"
LOCK_DIR = ".locks"


class RunBusyError(RuntimeError):
    """Another process is running the same pilot run right now."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_work_dirs(out_root: Path | None = None) -> int:
    """Remove staging dirs whose owner process is gone (and legacy ones in the report folder)."""
    removed = 0
    for d in Path(tempfile.gettempdir()).glob(WORK_PREFIX + "*"):
        try:
            pid = int((d / PID_FILE).read_text().strip())
        except (OSError, ValueError):
            pid = -1
        if pid > 0 and _alive(pid):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed += 1
    if out_root is not None and out_root.is_dir():
        for d in out_root.glob(LEGACY_WORK_GLOB):
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d staging folders left by runs that did not finish", removed)
    return removed


def new_work_dir(out_root: Path | None = None) -> Path:
    """A private staging dir owned by this process (after sweeping dead runs' dirs)."""
    sweep_stale_work_dirs(out_root)
    from flows.interrupt import register_cleanup_dir

    d = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))  # mode 0700
    (d / PID_FILE).write_text(str(os.getpid()))
    register_cleanup_dir(d)
    return d


def remove_work_dir(d: Path) -> None:
    from flows.interrupt import unregister_cleanup_dir

    shutil.rmtree(d, ignore_errors=True)
    unregister_cleanup_dir(d)


@dataclass
class RunLock:
    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = -1


def acquire_run_lock(out_root: Path, run_id: str) -> RunLock:
    """An exclusive, non-blocking lock per run id (released by the OS if the process dies)."""
    d = out_root / LOCK_DIR
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{run_id}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunBusyError(
            f"pilot run {run_id} is already running in another process (lock {path}); wait for "
            "it to finish — the same corpus, window and config give the same run"
        ) from None
    return RunLock(path, fd)
