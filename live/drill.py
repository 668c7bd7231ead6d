"""Live drills: the scenario's faults at real network boundaries, traffic over HTTP in wall time.

``run_live`` starts ``harness upstream-sim``, a fault proxy in front of it and ``harness serve``
(pointed at the proxy) as real processes -- or drives a service someone else runs (``target``,
with ``proxy_admin`` for faults) -- sends the scenario's traffic to ``POST /v1/execute`` on a
wall clock, switches proxy toxics on and off at the scenario's times, reads ``/v1/breaker-events``
and ``/metrics``, then checks the *same* guarantees with the same check classes, alert rules and
probes as the virtual drill, and writes the same journal (``"mode": "live"``).

Time scaling: a 30 min scenario runs in ``duration / time_scale`` wall seconds (default: at most
4 min). Scenario times (fault at 5m, rollback at 15m, "within 2m") are virtual: wall offset x
scale. The service's breaker cool-down is scaled the same way; model latencies and injected
latencies are *not* (a +4 s spike takes 4 real seconds). Traffic is ``qps`` real requests per
wall second. Without Prometheus, alert rules run over the decisions the service answered, bucketed by
arrival into virtual minutes, through the same ``AlertEngine`` the virtual drills use.

Faults with a live injector: ``upstream_latency`` (a latency toxic on the target's models),
``upstream_error`` (an HTTP 500 toxic with the fault's probability), ``token_multiplier`` (a
``tokens`` toxic), ``store_write_failure`` (reset toxics on a TCP proxy between the service and
PostgreSQL) and ``toggle`` (the service restarted blue/green with the new
``AMAIMA_EXECUTION_MODE``). Others are refused before anything starts. Alerts are evaluated by a
real Prometheus when it is on PATH (``live.prometheus``), else by the harness engine. Every
process started is stopped by PID in a ``finally`` (Ctrl-C included).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from drills import journal as jr
from live.drill_conclusion import Conclusion
from live.drill_faults import FaultInjection
from live.drill_fleet import ServiceFleet
from live.drill_readings import ServiceReadings
from live.drill_support import (
    DEFAULT_PG_URL,
    LIVE_FAULTS,
    MAX_WALL_S,
    MINUTE,
    STANDBY_AHEAD,
    STORE_FAULTS,
    LiveDrillError,
    default_scale,
)

__all__ = [
    "DEFAULT_PG_URL",
    "LIVE_FAULTS",
    "MAX_WALL_S",
    "MINUTE",
    "STANDBY_AHEAD",
    "STORE_FAULTS",
    "LiveDrillError",
    "default_scale",
    "run_live",
]

log = logging.getLogger(__name__)


def run_live(
    scenario: Any,
    *,
    out: str | Path = "reports/out",
    time_scale: float | None = None,
    qps: float | None = None,
    target: str | None = None,
    proxy_admin: str | None = None,
    db: str | None = None,
    run_id: str | None = None,
    inert_proxy: bool = False,
    progress: Any = None,
    evaluator: str = "auto",
):
    """Run one drill live; returns a ``drills.runner.DrillResult``. ``inert_proxy``: switch no
    toxic on (the drill must then fail: proves the guarantees depend on the faults).
    ``evaluator``: who evaluates the alert rules -- ``prometheus`` (a real Prometheus scraping the
    service), ``harness`` (the project's engine over the answered decisions) or ``auto``
    (Prometheus when it is on PATH)."""
    from drills.clock import parse_start
    from drills.runner import DrillResult, new_run_id
    from drills.scenario import Scenario, load_scenario
    from live.prometheus import PrometheusError, choose_evaluator

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    unsupported = sorted({w.type for w in sc.timeline()} - set(LIVE_FAULTS))
    if unsupported:
        raise LiveDrillError(
            f"scenario {sc.name} uses fault type(s) {', '.join(unsupported)}, which have no live "
            f"injector yet (live: {', '.join(LIVE_FAULTS)}); run it without --live"
        )
    if target is not None and sc.toggle_changes:
        raise LiveDrillError(
            "toggle changes restart the service with a new AMAIMA_EXECUTION_MODE: run this "
            "scenario without --target (the drill must own the service process)"
        )
    if target is not None and {w.type for w in sc.timeline()} & set(STORE_FAULTS):
        raise LiveDrillError(
            "store faults put a fault proxy between the service and PostgreSQL: run this "
            "scenario without --target (the drill must own the service process)"
        )
    if (
        {w.type for w in sc.timeline()} & set(STORE_FAULTS)
        and db is not None
        and not db.startswith("postgresql")
    ):
        raise LiveDrillError(
            "store faults need a PostgreSQL store behind a TCP fault proxy: give a "
            "postgresql+psycopg:// --db (default: " + DEFAULT_PG_URL + ")"
        )
    if target is not None and proxy_admin is None and sc.faults and not inert_proxy:
        raise LiveDrillError(
            "--target needs --proxy-admin URL (the admin API of a fault proxy in front of the "
            "target's upstream) to inject the scenario's faults"
        )
    try:
        chosen = choose_evaluator(evaluator)
    except (PrometheusError, ValueError) as exc:
        raise LiveDrillError(str(exc)) from None
    scale = time_scale or default_scale(sc.duration)
    if scale <= 0:
        raise LiveDrillError("--time-scale must be > 0")
    start = parse_start(None)
    rid = run_id or new_run_id(sc.name, start).replace("drill-", "drill-live-", 1)
    drill = _LiveDrill(sc, Path(out), scale, qps, start, rid, progress)
    drill.evaluator = chosen
    return drill.run(target, proxy_admin, db, inert_proxy, DrillResult)


class _LiveDrill(ServiceFleet, FaultInjection, ServiceReadings, Conclusion):
    """One live drill: its clock, traffic and run; processes, faults, readings and the
    conclusion live in the mixins (``live.drill_fleet``, ``drill_faults``, ``drill_readings``,
    ``drill_conclusion``)."""

    def __init__(self, sc, out: Path, scale: float, qps: float | None, start, run_id, progress):
        from drills.traffic import build_traffic
        from telemetry.alerts import load_rules

        self.sc = sc
        self.rules = [*load_rules(), *sc.inline_rules]
        self.out = out
        self.scale = scale
        self.start = start
        self.run_id = run_id
        self.progress = progress
        self.config = sc.router_config
        self.wall_qps = qps or min(sc.traffic.qps, 20.0)
        t = sc.traffic
        self.traffic = build_traffic(
            self.wall_qps / scale, sc.duration, seed=t.seed, corpus=t.corpus, arrivals=t.arrivals
        )
        self.events: list[jr.Event] = []
        self.rollbacks: list[jr.RollbackRecord] = []
        self.results: dict[int, tuple[int | str, dict | None]] = {}
        self.lock = threading.Lock()
        self.work = out / jr.DRILLS_DIR / run_id / "live"
        self.children: list[Any] = []
        self.wall0 = 0.0
        self.windows: dict[int, Any] = {}
        self.toxics: dict[int, str] = {}
        self.url = ""
        self.admin: str | None = None
        self.evaluator = "harness"
        self.prom: Any = None  # live.prometheus.LivePrometheus while it runs
        self.wall0_unix = 0.0
        self.service: Any = None
        self.serve_args: list[str] = []
        self.calls_base: dict[str, int] = {}
        self.store_admin: str | None = None
        self.store_base: dict[str, int] = {}  # store counters of retired service processes
        self.creep_ms: dict[int, float] = {}  # latency a creeping fault had reached
        self.store_samples: list[tuple[float, int, int]] = []  # (virtual s, failures, spooled)
        self.sampling = threading.Event()
        self.old_breaker_events: list[dict] = []
        self.standby: dict[int, Any] = {}
        self.standby_cv = threading.Condition()
        self.restarts_done = 0
        self.stopping = False
        self.standby_thread: threading.Thread | None = None
        self.retiring: list[threading.Thread] = []
        self._planned_end: dict[int, float] = {}
        self.warm_url: str | None = None  # the service _warm_up sent traffic to, and what it left:
        self.warm_calls: dict[str, int] = {}  # upstream calls per model,
        self.warm_usage: dict[str, dict] = {}  # the usage the fault proxy tallied,
        self.warmup: dict[str, Any] | None = None  # and what was sent

    # --- time -----------------------------------------------------------------------------------
    def now_v(self) -> float:
        """Virtual seconds since the traffic started (0 before: a drill interrupted while its
        processes start ends at 0, not at the machine's uptime x the scale)."""
        if not self.wall0:
            return 0.0
        return (time.monotonic() - self.wall0) * self.scale

    def iso(self, off: float) -> str:
        from drills.clock import iso

        return iso(self.start + pd.Timedelta(seconds=off))

    def event(self, kind: str, off: float | None = None, **detail: Any) -> None:
        off = self.now_v() if off is None else off
        self.events.append(
            jr.Event(ts=self.iso(off), offset_s=round(off, 3), kind=kind, detail=detail)
        )

    # --- traffic --------------------------------------------------------------------------------
    @staticmethod
    def _execute(client, url: str, traffic, i: int, run_id: str, query_id: str):
        """POST query ``i`` of ``traffic`` to ``/v1/execute``: (HTTP status, decision) or, when
        nothing answered, (the exception's type name, None)."""
        body = {
            "text": traffic.texts(i, i + 1)[0],
            "query_id": query_id,
            "tenant": traffic.tenants(i, i + 1)[0],
            "run_id": run_id,
        }
        try:
            r = client.post(url + "/v1/execute", json=body)
            return r.status_code, r.json().get("decision")
        except Exception as exc:  # noqa: BLE001 - an unanswered query is counted, not raised
            return type(exc).__name__, None

    def _send(self, client, i: int, url: str) -> None:
        res = self._execute(client, url, self.traffic, i, self.run_id, self.traffic.query_id(i))
        with self.lock:
            self.results[i] = res

    def _drive(self, client, inert: bool) -> None:
        sc = self.sc
        plan: list[tuple[float, int, str, Any]] = []
        for w in sc.timeline():
            plan.append((w.start_s, 1, "on", w))
            if w.end_s is not None:
                plan.append((w.end_s, 0, "off", w))
        for i, r in enumerate(sc.rollbacks):
            if r.at is not None:
                plan.append((r.at, 0, "rollback", (i, r)))
        plan.sort(key=lambda p: (p[0], p[1]))
        self._planned_end = {w.index: w.end_s for w in sc.timeline() if w.end_s is not None}
        base = sc.execution_mode or ""
        modes = [] if inert else [
            obj.params.model_dump()["value"] if what == "on" else base
            for _, _, what, obj in plan if what in ("on", "off") and obj.type == "toggle"
        ]  # fmt: skip
        if modes and self.service is not None:
            self.standby_thread = threading.Thread(
                target=self._standby_worker, args=(modes,), daemon=True
            )
            self.standby_thread.start()
        wall = self.traffic.offsets / self.scale
        n = len(wall)
        if self.url and any(w.type in STORE_FAULTS for w in sc.timeline()):
            threading.Thread(target=self._sample_store, args=(client,), daemon=True).start()
        k = 0
        self.wall0, self.wall0_unix = time.monotonic(), time.time()
        self.event("drill_started", 0.0, run_id=self.run_id, queries=n, mode="live",
                   time_scale=self.scale, wall_qps=self.wall_qps)  # fmt: skip
        if self.warmup:
            self.event("service_warmed_up", 0.0, **self.warmup)
        with ThreadPoolExecutor(max_workers=256) as pool:
            for i in range(n + 1):
                due = wall[i] if i < n else sc.duration / self.scale
                while True:
                    nxt = plan[k][0] / self.scale if k < len(plan) else math.inf
                    until = min(due, nxt)
                    delay = until - (time.monotonic() - self.wall0)
                    if delay > 0:
                        time.sleep(delay)
                    if nxt <= due and k < len(plan):
                        _, _, what, obj = plan[k]
                        k += 1
                        self._apply(client, what, obj, inert)
                        continue
                    break
                if i < n:
                    pool.submit(self._send, client, i, self.url)
                if self.progress is not None and i % 50 == 0:
                    self.progress(self.now_v(), sc.duration)
        while k < len(plan):  # anything planned at the very end
            _, _, what, obj = plan[k]
            k += 1
            self._apply(client, what, obj, inert)

    def _apply(self, client, what: str, obj: Any, inert: bool) -> None:
        if what == "on":
            self._fault_on(client, obj, inert)
        elif what == "off":
            self._fault_off(client, obj.index, "duration")
        else:
            i, r = obj
            if r.type == "clear_faults":
                cleared = [ix for ix, fw in self.windows.items() if fw.end_s is None]
                for ix in cleared:
                    self._fault_off(client, ix, "rollback clear_faults")
                detail = f"removed {len(cleared)} toxic(s) from the fault proxy"
            elif r.type == "drain_spool":
                detail = "the service drains its own spool every 2 s once the store answers"
            else:
                detail = f"{r.type}: nothing to do in a live drill"
            off = self.now_v()
            self.rollbacks.append(jr.RollbackRecord(type=r.type, ts=self.iso(off), ok=True, detail=detail,
                                                    offset_s=off))  # fmt: skip
            self.event("rollback", off, type=r.type, index=i, ok=True, detail=detail)

    # --- the run --------------------------------------------------------------------------------
    def run(self, target, proxy_admin, db, inert: bool, result_cls):
        import httpx

        from live.procs import ProcessStartError

        wall_start = time.perf_counter()
        status, error = "completed", None
        self.db = db
        client = httpx.Client(
            timeout=60, limits=httpx.Limits(max_connections=256, max_keepalive_connections=256)
        )
        try:
            if target is None:
                self.url = self._start_processes(db)
                self._warm_up(client)
            else:
                self.url, self.admin = target.rstrip("/"), proxy_admin
                try:
                    client.get(self.url + "/v1/health", timeout=5).raise_for_status()
                except httpx.HTTPError as exc:
                    raise LiveDrillError(
                        f"target {self.url} does not answer /v1/health ({type(exc).__name__})"
                    ) from None
            if self.admin:
                client.delete(self.admin + "/toxics")
            if self.evaluator == "prometheus":
                self._start_prometheus()
            self._drive(client, inert)
        except (LiveDrillError, ProcessStartError) as exc:
            self._cleanup(client)
            raise LiveDrillError(str(exc)) from None
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted (KeyboardInterrupt)"
        except Exception as exc:  # noqa: BLE001 - recorded in the journal
            status, error = "failed", f"{type(exc).__name__}: {str(exc)[:300]}"
            log.exception("live drill %s failed", self.run_id)
        try:
            if status == "completed":
                for ix in [ix for ix, fw in self.windows.items() if fw.end_s is None]:
                    self._fault_off(client, ix, "end of drill")
                return self._conclude(client, status, error, wall_start, result_cls)
            return self._conclude(client, status, error, wall_start, result_cls)
        finally:
            self._cleanup(client)

    def _start_prometheus(self) -> None:
        from live.prometheus import PrometheusError, start_prometheus

        try:
            self.prom = start_prometheus(self.rules, self.scale, self.url, self.work)
        except PrometheusError as exc:
            raise LiveDrillError(str(exc)) from None
        self.children.append(self.prom.child)

    def _cleanup(self, client) -> None:
        try:
            if self.admin:
                client.delete(self.admin + "/toxics", timeout=5)
        except Exception:  # noqa: BLE001
            pass
        finally:
            client.close()
            self._stop_processes()
