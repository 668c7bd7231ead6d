"""Start and stop the live-mode processes (service, upstream simulator, fault proxy) by PID.

Each child runs in its own process group (``start_new_session``), so stopping it also stops any
worker it forked, and a Ctrl-C in the terminal reaches the harness only: the harness stops its
children itself, in ``finally`` blocks. ``stop`` sends SIGTERM to the group, waits, then SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_STARTED: list[Child] = []  # every child ``start`` made that ``stop`` has not seen end
_STARTED_LOCK = threading.Lock()


class ProcessStartError(RuntimeError):
    """A child did not come up; the message carries the tail of its stderr."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    url: str
    log_path: Path
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 15) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


def harness_cmd(*args: str) -> list[str]:
    """The harness CLI in this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "flows.cli", *args]


def start_service(
    log_dir: str | Path, db_url: str, *, mode: str = "decision-only", args: tuple[str, ...] = ()
) -> Child:
    """`harness serve` on a free 127.0.0.1 port with its own store, ready to answer."""
    port = free_port()
    return start(
        "serve",
        harness_cmd("serve", "--port", str(port), "--db", db_url, *args),
        url=f"http://127.0.0.1:{port}",
        ready_path="/v1/health",
        log_dir=log_dir,
        env={"AMAIMA_EXECUTION_MODE": mode},
    )


def start(
    name: str,
    cmd: list[str],
    *,
    url: str,
    ready_path: str,
    log_dir: str | Path,
    env: dict[str, str] | None = None,
    timeout_s: float = 60.0,
) -> Child:
    """Start ``cmd`` and wait until ``GET url+ready_path`` answers (any HTTP status)."""
    import httpx

    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, **(env or {})}
    with open(log_path, "wb") as fh, _sigint_deferred():
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            start_new_session=True,
        )
        child = Child(name, proc, url, log_path)
        with _STARTED_LOCK:
            _STARTED.append(child)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ProcessStartError(
                    f"{name} exited with code {proc.returncode} before it was ready:\n"
                    + child.log_tail()
                )
            try:
                httpx.get(url + ready_path, timeout=1.0)
                return child
            except httpx.HTTPError:
                time.sleep(0.1)
        raise ProcessStartError(f"{name} not ready after {timeout_s:.0f} s:\n" + child.log_tail())
    except BaseException:
        # Not ready, or Ctrl-C while waiting: the caller never got the child, so stop it here.
        stop(child)
        raise


def stop(child: Child, timeout_s: float = 10.0) -> int | None:
    """SIGTERM the child's process group, then SIGKILL after ``timeout_s``; returns its code."""
    code = _terminate(child.proc, timeout_s)
    if code is not None:
        with _STARTED_LOCK:
            if child in _STARTED:
                _STARTED.remove(child)
    return code


def stop_started_in(folder: str | Path) -> list[str]:
    """Stop every child ``start`` made with its log under ``folder`` that is still running.
    A Ctrl-C can land after ``start`` returned a child and before its caller recorded it (seen
    once in CI: a drill's service outlived the drill); the owner calls this last."""
    folder = Path(folder).resolve()
    with _STARTED_LOCK:
        mine = [c for c in _STARTED if folder in c.log_path.resolve().parents]
    stopped = []
    for child in mine:
        if child.alive():
            stopped.append(child.name)
        stop(child)
    return stopped


def _terminate(proc: subprocess.Popen, timeout_s: float) -> int | None:
    if proc.poll() is not None:
        return proc.returncode
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.poll()


@contextmanager
def _sigint_deferred():
    """Hold a Ctrl-C until the block is done (the child is started *and* recorded), then raise
    it. Only the main thread receives KeyboardInterrupt, so other threads need no deferral."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held and callable(previous):
            previous(signal.SIGINT, None)  # the default handler raises KeyboardInterrupt
        elif held and previous == signal.SIG_DFL:
            raise KeyboardInterrupt
