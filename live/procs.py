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
import time
from dataclasses import dataclass, field
from pathlib import Path


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
    with open(log_path, "wb") as fh:
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            start_new_session=True,
        )
    child = Child(name, proc, url, log_path)
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
    proc = child.proc
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
