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

log = logging.getLogger(__name__)

LIVE_FAULTS = (
    "upstream_latency", "upstream_error", "toggle", "store_write_failure", "token_multiplier",
    "upstream_latency_creep",
)  # fmt: skip
STORE_FAULTS = ("store_write_failure",)
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MAX_WALL_S = 240.0
MINUTE = 60.0
STANDBY_AHEAD = 2  # services started ahead for coming toggle changes


class LiveDrillError(RuntimeError):
    """The live drill cannot run (unsupported fault, a process did not start, target down)."""


def default_scale(duration_s: float) -> float:
    return max(1.0, duration_s / MAX_WALL_S)


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


class _LiveDrill:
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
        self.work = out / "drills" / run_id / "live"
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

    # --- time -----------------------------------------------------------------------------------
    def now_v(self) -> float:
        return (time.monotonic() - self.wall0) * self.scale

    def iso(self, off: float) -> str:
        from drills.clock import iso

        return iso(self.start + pd.Timedelta(seconds=off))

    def event(self, kind: str, off: float | None = None, **detail: Any) -> None:
        off = self.now_v() if off is None else off
        self.events.append(jr.Event(ts=self.iso(off), offset_s=round(off, 3), kind=kind, detail=detail))

    # --- processes ------------------------------------------------------------------------------
    def _start_processes(self, db: str | None) -> str:
        import yaml

        from live import procs
        from live.fault_proxy import start_proxy

        self.work.mkdir(parents=True, exist_ok=True)
        cfg = self.config
        br = cfg.execution.breaker
        scaled = cfg.model_copy(
            update={
                "execution": cfg.execution.model_copy(
                    update={
                        "breaker": br.model_copy(
                            update={"cooldown_s": max(0.2, br.cooldown_s / self.scale)}
                        )
                    }
                )
            }
        )
        dump = scaled.model_dump(mode="json", by_alias=True)
        if getattr(cfg, "head", None) is not None:  # relative to the original config's folder
            dump["head"]["weights"] = str(cfg.head_path().resolve())
        cfg_path = self.work / "router.yaml"
        cfg_path.write_text(yaml.safe_dump(dump, sort_keys=False))  # order matters (domains)
        port = procs.free_port()
        sim = procs.start(
            "upstream-sim",
            procs.harness_cmd(
                "upstream-sim", "--port", str(port), "--config", str(cfg_path),
                "--seed", str(cfg.execution.upstream.seed),
            ),
            url=f"http://127.0.0.1:{port}", ready_path="/health", log_dir=self.work,
        )  # fmt: skip
        self.children.append(sim)
        proxy = start_proxy(sim.url, self.work, seed=self.sc.traffic.seed, label=str(self.work))
        self.children.append(proxy)
        self.admin = proxy.extra["admin"]
        self.db = db or f"sqlite:///{(self.work / 'telemetry.db').resolve()}"
        serve_db = self.db
        if {w.type for w in self.sc.timeline()} & set(STORE_FAULTS):
            serve_db = self._store_proxy(db or DEFAULT_PG_URL)
        self.serve_args = ["--config", str(cfg_path), "--db", serve_db,
                           "--upstream", proxy.extra["listen"], "--run-id", self.run_id]  # fmt: skip
        self.service = self._start_service(self.sc.execution_mode or "")
        self.children.append(self.service)
        return self.service.url

    def _store_proxy(self, url: str) -> str:
        """A TCP fault proxy in front of PostgreSQL; the service's store URL goes through it
        (the drill reads the store directly)."""
        from sqlalchemy.engine import make_url

        from live.fault_proxy import start_proxy

        u = make_url(url)
        proxy = start_proxy(f"{u.host or '127.0.0.1'}:{u.port or 5432}", self.work, mode="tcp",
                            seed=self.sc.traffic.seed, label=str(self.work))  # fmt: skip
        self.children.append(proxy)
        self.store_admin = proxy.extra["admin"]
        self.db = url
        return u.set(host="127.0.0.1", port=proxy.extra["port"]).render_as_string(
            hide_password=False
        )

    def _start_service(self, mode: str):
        from live import procs

        self.generation = getattr(self, "generation", -1) + 1
        g = self.generation
        sport = procs.free_port()
        return procs.start(
            "serve" if g == 0 else f"serve-{g}",
            procs.harness_cmd("serve", "--port", str(sport), *self.serve_args,
                              "--spool-dir", str(self.work / f"spool-{g}")),
            url=f"http://127.0.0.1:{sport}", ready_path="/v1/health", log_dir=self.work,
            env={"AMAIMA_EXECUTION_MODE": mode},
        )  # fmt: skip

    def _standby_worker(self, modes: list[str]) -> None:
        """Start the services for the coming toggle changes ahead of time (at most
        ``STANDBY_AHEAD`` waiting), so a restart at its scheduled time is a switch, not a
        3 s start; Prometheus scrapes them from birth, so their counters start at 0."""
        for i, mode in enumerate(modes):
            with self.standby_cv:
                self.standby_cv.wait_for(
                    lambda i=i: self.stopping or i < self.restarts_done + STANDBY_AHEAD
                )
                if self.stopping:
                    return
            try:
                child: Any = self._start_service(mode)
            except Exception as exc:  # noqa: BLE001 - reported when the switch needs it
                child = exc
            with self.standby_cv:
                if not isinstance(child, Exception):
                    self.children.append(child)
                    self._scrape_all()
                self.standby[i] = child
                self.standby_cv.notify_all()

    def _scrape_all(self) -> None:
        if self.prom is not None:
            svcs = [c for c in self.children if c.name.startswith("serve") and c.alive()]
            self.prom.set_targets([c.url for c in svcs])

    def _restart_service(self, client, mode: str, why: str) -> float:
        """Blue/green: the standby ``harness serve`` with ``AMAIMA_EXECUTION_MODE=mode`` takes
        the traffic; the old one's counters and breaker events are kept, then it is stopped by
        PID (uvicorn finishes its in-flight requests and flushes telemetry)."""
        old = self.service
        with self.standby_cv:
            i = self.restarts_done
            if not self.standby_cv.wait_for(lambda: i in self.standby, timeout=90):
                raise LiveDrillError(
                    f"the service for AMAIMA_EXECUTION_MODE={mode!r} did not start"
                )
            new = self.standby.pop(i)
            self.restarts_done += 1
            self.standby_cv.notify_all()
        if isinstance(new, Exception):
            raise LiveDrillError(f"restarting the service failed: {new}")
        self.service, self.url = new, new.url
        switched = self.now_v()
        t = threading.Thread(target=self._retire, args=(client, old, new, mode, why), daemon=True)
        self.retiring.append(t)
        t.start()  # the traffic goes on meanwhile
        return switched

    def _retire(self, client, old, new, mode: str, why: str) -> None:
        from live import procs

        for k, n in self._store_counts(client, old.url).items():
            if k != "pending":
                self.store_base[k] = self.store_base.get(k, 0) + n
        for model, n in self._calls(client, old.url).items():
            self.calls_base[model] = self.calls_base.get(model, 0) + n
        try:
            self.old_breaker_events += client.get(old.url + "/v1/breaker-events").json()["events"]
        except Exception:  # noqa: BLE001 - breaker history of a retired process is best effort
            pass
        procs.stop(old)
        with self.standby_cv:
            self.children.remove(old)
            self._scrape_all()
        try:
            health = client.get(new.url + "/v1/health", timeout=5).json()
        except Exception as exc:  # noqa: BLE001
            health = {"error": type(exc).__name__}
        self.event("service_restarted", None, why=why, env_value=mode, pid=new.pid,
                   url=new.url, health_toggle=health.get("checks", {}).get("toggle", health))  # fmt: skip

    def _stop_processes(self) -> None:
        from live import procs

        for t in self.retiring:
            t.join(timeout=30)
        with self.standby_cv:
            self.stopping = True
            self.standby_cv.notify_all()
        if self.standby_thread is not None:
            self.standby_thread.join(timeout=90)  # a start in progress ends (ready or stopped)
        for child in reversed(self.children):
            try:
                procs.stop(child)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                log.error("could not stop %s (pid %d): %s", child.name, child.pid, exc)

    # --- faults ---------------------------------------------------------------------------------
    def _toxic_for(self, w) -> dict:
        t = w.target.to_dict()
        models = [m.name for m in self.config.models if t.get("tier") in (None, m.tier)]
        if t.get("model"):
            models = [t["model"]]
        p = w.params.model_dump()
        name = f"fault-{w.index}"
        if w.type in STORE_FAULTS:
            rate = 1.0 if p.get("full") else p.get("failure_rate", 1.0)
            return {"type": "reset", "name": name, "probability": rate * w.probability}
        if w.type == "upstream_latency_creep":
            return {"type": "latency", "name": name, "models": models, "latency_ms": 0.0,
                    "probability": w.probability}  # fmt: skip
        if w.type == "token_multiplier":
            return {"type": "tokens", "name": name, "models": models, "factor": p["factor"],
                    "probability": w.probability}  # fmt: skip
        if w.type == "upstream_latency":
            return {"type": "latency", "name": name, "models": models,
                    "latency_ms": p["add_ms"], "jitter_ms": p.get("jitter_ms", 0.0),
                    "probability": w.probability}  # fmt: skip
        return {"type": "error", "name": name, "models": models, "status": 500,
                "probability": min(1.0, w.probability * p.get("error_rate", 1.0))}  # fmt: skip

    def _fault_on(self, client, w, inert: bool) -> None:
        from drills.probes import FaultWindow

        if w.type == "toggle":
            value = w.params.model_dump()["value"]
            spec = {"type": "restart", "name": f"fault-{w.index}", "models": [],
                    "env": {"AMAIMA_EXECUTION_MODE": value}}  # fmt: skip
            desc = f"serve restarted with AMAIMA_EXECUTION_MODE={value!r}"
            switched = None
            if not inert:
                switched = self._restart_service(client, value, f"toggle fault {w.index}")
        else:
            spec = self._toxic_for(w)
        admin = self.store_admin if w.type in STORE_FAULTS else self.admin
        if w.type != "toggle" and not inert and admin:
            r = client.post(admin + "/toxics", json=spec)
            if r.status_code != 201:
                raise LiveDrillError(f"the fault proxy refused toxic {spec['name']}: {r.text}")
            self.toxics[w.index] = spec["name"]
            if w.type == "upstream_latency_creep":
                args = (client, admin, spec, w)
                threading.Thread(target=self._creep, args=args, daemon=True).start()
        # A switch happens at its planned offset, before any query planned later is sent: the
        # window starts there on the queries' own (planned) clock.
        off = w.start_s if w.type == "toggle" and switched is not None else self.now_v()
        desc = (
            desc
            if w.type == "toggle"
            else f"reset toxic (p={spec['probability']:g} per connection and request chunk) "
            "between serve and PostgreSQL"
            if w.type in STORE_FAULTS
            else f"{spec['type']} toxic on {', '.join(spec['models'][:3])}"
            + (f" (+{len(spec['models']) - 3})" if len(spec["models"]) > 3 else "")
        )
        fw = FaultWindow(
            index=w.index, type=w.type, boundary="network (fault proxy)",
            target=w.target.to_dict(), params=w.params.model_dump(mode="json"),
            probability=w.probability, start_s=off,
            description=desc + (" [INERT: not applied]" if inert else ""),
            calls_at_start=self._calls(client),
        )  # fmt: skip
        self.windows[w.index] = fw
        self.event("fault_on", off, type=w.type, index=w.index, toxic=spec, inert=inert)

    def _creep(self, client, admin: str, spec: dict, w) -> None:
        """A creeping latency in steps: every 15 virtual seconds the toxic's latency becomes
        ``ms_per_minute`` x the virtual minutes since the fault began (capped), until it ends."""
        p = w.params.model_dump()
        step = max(0.1, 15.0 / self.scale)
        start = self.now_v()
        while not self.sampling.wait(step):
            fw = self.windows.get(w.index)
            if fw is not None and fw.end_s is not None:
                return
            extra = p["ms_per_minute"] * (self.now_v() - start) / MINUTE
            if p.get("max_add_ms") is not None:
                extra = min(extra, p["max_add_ms"])
            if w.index not in self.toxics:
                return
            try:
                client.post(admin + "/toxics", json={**spec, "latency_ms": round(extra, 1)})
                self.creep_ms[w.index] = round(extra, 1)
            except Exception:  # noqa: BLE001 - the next step tries again
                pass

    def _fault_off(self, client, index: int, ended_by: str) -> None:
        fw = self.windows.get(index)
        if fw is None or fw.end_s is not None:
            return
        name = self.toxics.pop(index, None)
        admin = self.store_admin if fw.type in STORE_FAULTS else self.admin
        if name and admin:
            client.delete(f"{admin}/toxics/{name}")
        fw.end_s = self.now_v()
        if (
            fw.type == "toggle"
            and not fw.description.endswith("[INERT: not applied]")
            and ended_by != "end of drill"
        ):
            base = self.sc.execution_mode or ""
            self._restart_service(client, base, f"toggle {index} ends")
            fw.end_s = min(fw.end_s, self._planned_end.get(index, fw.end_s))
        fw.ended_by = ended_by
        fw.calls_at_end = self._calls(client)
        extra = {"latency_reached_ms": self.creep_ms[index]} if index in self.creep_ms else {}
        self.event("fault_off", fw.end_s, type=fw.type, index=index, ended_by=ended_by, **extra)

    def _sample_store(self, client) -> None:
        """The service's write-failure and spool counters a few times per virtual minute, so the
        harness engine sees ``telemetry_write_failures`` per minute as the virtual drill does."""
        step = MINUTE / self.scale / 4
        while not self.sampling.wait(step):
            c = self._store_counts(client, self.url)
            if c:
                self.store_samples.append(
                    (self.now_v(), c.get("failures", 0) + self.store_base.get("failures", 0),
                     c.get("spooled", 0) + self.store_base.get("spooled", 0))
                )  # fmt: skip

    def _store_between(self, m0: float, m1: float) -> tuple[int, int]:
        """(write failures, rows spooled) the samples saw between two virtual offsets."""

        def at(t: float) -> tuple[int, int]:
            last = (0, 0)
            for off, f, sp in self.store_samples:
                if off > t:
                    break
                last = (f, sp)
            return last

        (f0, s0), (f1, s1) = at(m0), at(m1)
        return f1 - f0, s1 - s0

    def _billed(self, client) -> float:
        """What the models billed: the usage the fault proxy delivered (after any ``tokens``
        toxic), priced by the catalog -- independent of what the service recorded."""
        from router.upstream import call_cost_usd

        if not self.admin:
            return 0.0
        try:
            usage = client.get(self.admin + "/stats", timeout=5).json().get("usage", {})
        except Exception:  # noqa: BLE001
            return 0.0
        specs = {m.name: m for m in self.config.models}
        return round(sum(call_cost_usd(specs[m], u["prompt_tokens"], u["completion_tokens"])
                         for m, u in usage.items() if m in specs), 8)  # fmt: skip

    def _store_counts(self, client, url: str) -> dict[str, int]:
        """The service's telemetry counters: rows spooled, failed writes, rows in its spool."""
        from prometheus_client.parser import text_string_to_metric_families

        names = {"amaima_telemetry_spooled_rows": "spooled",
                 "amaima_telemetry_write_failures": "failures",
                 "amaima_telemetry_spool_rows": "pending"}  # fmt: skip
        out: dict[str, int] = {}
        try:
            text = client.get(url + "/metrics").text
        except Exception:  # noqa: BLE001
            return out
        for fam in text_string_to_metric_families(text):
            if fam.name in names:
                out[names[fam.name]] = int(sum(s.value for s in fam.samples))
        return out

    def _calls(self, client, url: str | None = None) -> dict[str, int]:
        """Upstream calls per model: this service process's counters plus retired ones'."""
        from prometheus_client.parser import text_string_to_metric_families

        if url is None:
            out = self._calls(client, self.url)
            return {m: out.get(m, 0) + self.calls_base.get(m, 0)
                    for m in {*out, *self.calls_base}}  # fmt: skip
        try:
            text = client.get(url + "/metrics").text
        except Exception:  # noqa: BLE001
            return {}
        out: dict[str, int] = {}
        for fam in text_string_to_metric_families(text):
            if fam.name == "amaima_upstream_calls":
                for s in fam.samples:
                    out[s.labels["model"]] = int(s.value)
        return out

    # --- traffic --------------------------------------------------------------------------------
    def _send(self, client, i: int, url: str) -> None:
        body = {
            "text": self.traffic.texts(i, i + 1)[0],
            "query_id": self.traffic.query_id(i),
            "tenant": self.traffic.tenants(i, i + 1)[0],
            "run_id": self.run_id,
        }
        try:
            r = client.post(url + "/v1/execute", json=body)
            data = r.json()
            res = (r.status_code, data.get("decision"))
        except Exception as exc:  # noqa: BLE001 - an unanswered query is counted, not raised
            res = (type(exc).__name__, None)
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

    # --- conclusion -----------------------------------------------------------------------------
    def _frame(self) -> pd.DataFrame:
        from router.decision import DECISION_COLUMNS

        rows = []
        offsets = self.traffic.offsets
        tiers = {m.name: m.tier for m in self.config.models}
        for i, (_, d) in sorted(self.results.items()):
            if not d:
                continue
            row = {c: d.get(c) for c in DECISION_COLUMNS}
            row["offset_s"] = float(offsets[i])
            # The response names the served model; a fallback's routed model is the same tier
            # (model_tier stays the routed tier), recoverable by replaying the query.
            fb = d.get("outcome") == "fallback"
            row["routed_model"] = "(routed; see replay)" if fb else d.get("model")
            row["routed_tier"] = d.get("model_tier")
            row["served_tier"] = tiers.get(d.get("model"), "?")
            rows.append(row)
        cols = [*DECISION_COLUMNS, "offset_s", "routed_model", "routed_tier", "served_tier"]
        df = pd.DataFrame(rows, columns=cols)
        # metrics bucket by ts: the query's arrival on the drill's (virtual) timeline
        df["ts"] = pd.Timestamp(self.start) + pd.to_timedelta(
            df["offset_s"].astype(float), unit="s"
        )
        return df

    def _conclude(self, client, status, error, wall_start, result_cls):
        from drills.probes import PROBES, AlertRecord, BreakerRecord, DrillRecord, drill_metrics
        from telemetry.alerts import AlertEngine
        from telemetry.metrics import compute_metrics

        sc = self.sc
        self.sampling.set()
        end_v = sc.duration if status == "completed" else self.now_v()
        for t in self.retiring:  # retired services' calls and breaker events are in
            t.join(timeout=30)
        # in-flight answers (up to the client timeout) were awaited by the pool; settle telemetry
        df = self._frame()
        rec = DrillRecord(
            start=self.start,
            duration_s=sc.duration,
            model_tiers={m.name: m.tier for m in self.config.models},
            interactive_tiers=tuple(self.config.routing.interactive_tiers),
            arrivals=self.traffic.offsets[: len(self.results)]
            if status != "completed"
            else self.traffic.offsets,
        )
        engine = AlertEngine(self.rules, context="drill")
        harness_alerts: list[AlertRecord] = []
        rec.rules = {r.name: r.condition for r in engine.rules}
        n_min = int(math.ceil(end_v / MINUTE))
        for m in range(n_min):
            m0, m1 = m * MINUTE, (m + 1) * MINUTE
            frame = df[(df["offset_s"] >= m0) & (df["offset_s"] < m1)] if len(df) else df
            rec.minute_frames.append(frame)
            metrics = compute_metrics(
                frame.drop(columns=["served_tier"]),
                "1min",
                interactive_tiers=rec.interactive_tiers,
                start=pd.Timestamp(self.start + pd.Timedelta(seconds=m0)),
                end=pd.Timestamp(self.start + pd.Timedelta(seconds=m1)),
            )
            row = metrics.iloc[0].to_dict() if len(metrics) else {}
            row.update(drill_metrics(frame, rec.interactive_tiers))
            if self.store_samples:
                fails, spooled = self._store_between(m0, m1)
                row["telemetry_write_failures"], row["spooled_rows"] = float(fails), float(spooled)
            row.setdefault("telemetry_write_failures", 0.0)
            row.setdefault("spooled_rows", 0.0)
            for ev in engine.observe(pd.Timestamp(self.start + pd.Timedelta(seconds=m1)), row):
                value = None if math.isnan(ev.value) else float(ev.value)
                harness_alerts.append(
                    AlertRecord(ev.rule, ev.kind, m1, value, ev.severity, ev.summary)
                )
            out = {k: _num(row.get(k)) for k in jr.METRIC_KEYS if k in row}
            out.update({"ts": self.iso(m0), "offset_s": m0, "decisions": len(frame),
                        "queries": rec.queries(m0, m1)})  # fmt: skip
            rec.metrics.append(out)
        try:
            rec.alerts, evaluator = self._alerts(harness_alerts, end_v)
        except Exception as exc:  # noqa: BLE001 - unreadable alerts: the alert checks cannot run
            rec.alerts, evaluator = [], {"name": self.evaluator, "error": str(exc)[:300]}
            if status == "completed":
                status, error = "failed", f"alerts not read from {self.evaluator}: {str(exc)[:300]}"
        if evaluator.get("rule_errors") and error is None:
            error = "prometheus could not evaluate: " + "; ".join(evaluator["rule_errors"])[:300]
        self.event("alert_evaluator", 0.0, **{k: v for k, v in evaluator.items()
                                              if k in ("name", "version", "url")})  # fmt: skip
        for a in rec.alerts:
            self.event(f"alert_{a.kind}", a.offset_s, rule=a.rule, value=a.value,
                       evaluator=evaluator["name"])  # fmt: skip
        for out in rec.metrics:
            out["alerts_firing"] = _firing_at(rec.alerts, out["offset_s"] + MINUTE)
        calls = self._calls(client) if self.url else {}
        rec.billed_usd = self._billed(client)
        rec.upstream_calls_by_model = calls
        rec.segment_calls = [(0.0, sc.duration, sum(calls.values()))]
        try:
            evs = client.get(self.url + "/v1/breaker-events").json()["events"] if self.url else []
        except Exception:  # noqa: BLE001
            evs = []
        evs = [*self.old_breaker_events, *evs]
        for e in evs:
            off = (e["unix_ts"] - (time.time() - (time.monotonic() - self.wall0))) * self.scale
            rec.breakers.append(
                BreakerRecord(
                    off, e["model"], e["tier"], e["old"], e["new"], e["reason"], e["calls"]
                )  # fmt: skip
            )
            self.event(f"breaker_{e['new']}", off, model=e["model"], reason=e["reason"])
        rec.faults = sorted(self.windows.values(), key=lambda w: w.start_s)
        for w in rec.faults:
            if w.end_s is None:
                w.end_s = end_v
                w.ended_by = "end of drill"
        self._store_facts(rec, df, client)
        steady = jr.SteadyState.empty()
        first = min((w.start_s for w in rec.faults), default=None)
        if sc.steady_state and status == "completed":
            at_b = first if first is not None else sc.duration
            widest = max(s.window for s in sc.steady_state)
            rec.before_window = (max(0.0, at_b - widest), at_b)
            rec.after_window = (sc.duration - widest, sc.duration)
            for at, bucket in ((at_b, steady.before), (sc.duration, steady.after)):
                for s in sc.steady_state:
                    v = PROBES[s.probe](s.parsed_params).measure(rec, max(0.0, at - s.window), at)
                    bucket.append(jr.ProbeResult(
                        probe=s.probe, window=_dur(s.window), tolerance=s.tolerance.to_dict(),
                        value=_num(v), ok=s.tolerance.ok(v), params=s.params, at=self.iso(at)))  # fmt: skip
        guarantees = _guarantees(sc, rec, status)
        total = sum(g.weight for g in guarantees)
        score = sum(g.weight for g in guarantees if g.verdict == "passed") / total if total else 0
        self.event("drill_finished", end_v, status=status, resilience_score=score)
        outcomes = df["outcome"].value_counts() if len(df) else pd.Series(dtype=int)
        unanswered = [i for i, (s, d) in self.results.items() if d is None]
        impact = jr.Impact(
            queries=len(self.traffic), decisions=len(df),
            executed=int(len(df) - outcomes.get("not_executed", 0)),
            errors=int(outcomes.get("error", 0) + outcomes.get("timeout", 0)),
            rejected=int(outcomes.get("rejected", 0)),
            fallbacks=int(outcomes.get("fallback", 0)),
            telemetry_rows=rec.store.telemetry_rows, spooled_rows=rec.store.spooled_rows_total,
            upstream_calls=sum(calls.values()),
            not_executed=int(outcomes.get("not_executed", 0)),
            cost_usd=round(float(pd.to_numeric(df["actual_cost_usd"]).sum()), 6) if len(df) else 0,
            unanswered_queries=len(unanswered) + max(0, len(self.traffic) - len(self.results)),
            extra_cost_usd=0.0, latency_p95_ms_before=None, latency_p95_ms_during=None,
            latency_p95_ms_after=None, misconfigured_decisions=0,
        )  # fmt: skip
        fired = [a for a in rec.alerts if a.kind == "fired" and first is not None
                 and a.offset_s >= first]  # fmt: skip
        detection = (
            jr.Detection(alert=fired[0].rule, fired_at=self.iso(fired[0].offset_s),
                         time_to_detect_s=fired[0].offset_s - first)  # fmt: skip
            if fired
            else jr.Detection.none()
        )
        journal = jr.Journal(
            run_id=self.run_id, name=sc.name, title=sc.title, description=sc.description,
            tags=[*sc.tags, "live"], failure_mode=getattr(sc, "failure_mode", None),
            created_at=None, scenario_file=str(sc.source) if sc.source else None,
            scenario_hash=sc.scenario_hash(), started_at=self.iso(0.0), ended_at=self.iso(end_v),
            wall_seconds=round(time.perf_counter() - wall_start, 3),
            execution_mode=sc.execution_mode,
            traffic=jr.Traffic(qps=self.wall_qps, seed=sc.traffic.seed, queries=len(self.traffic),
                               source=self.traffic.source),
            status=status, deviated=any(not r.ok for r in steady.after),
            resilience_score=round(score, 4), steady_state=steady,
            faults=[jr.FaultRecord(type=w.type, target=w.target, params=w.params,
                                   start=self.iso(w.start_s), end=self.iso(w.end_s),
                                   probability=w.probability, index=w.index,
                                   boundary=w.boundary, description=w.description,
                                   ended_by=w.ended_by, injected=w.injected) for w in rec.faults],
            events=sorted(self.events, key=lambda e: e.offset_s), metrics=rec.metrics,
            impact=impact, detection=detection, mitigation=jr.mitigation(rec, self.events, impact),
            guarantees=guarantees, rollbacks=self.rollbacks,
            telemetry=jr.TelemetryInfo(db=self.db or "(target's store)", run_id=self.run_id,
                                       rows=rec.store.telemetry_rows, spool_dir=None),
            error=error,
            router={"mode": "rule-only", "config_hash": self.config.config_hash,
                    "service": self.url, "time_scale": self.scale, "wall_qps": self.wall_qps,
                    "alert_evaluator": evaluator, "http_statuses": self._statuses(),
                    "answers_without_decision_id": sum(
                        1 for _, d in self.results.values() if d and not d.get("decision_id"))},
            alerts=jr.alert_firings(rec.alerts, self.iso), breakers={},
            timeline_markers=jr.outage_markers(rec, self.iso),
            mode="live",
        )  # fmt: skip
        path = jr.write_journal(journal, self.out)
        return result_cls(journal, path)

    def _statuses(self) -> dict[str, int]:
        """How /v1/execute answered (200, 409 decision-only, 503 no model; exception names)."""
        from collections import Counter

        return dict(sorted(Counter(str(s) for s, _ in self.results.values()).items()))

    def _alerts(self, harness_alerts: list, end_v: float) -> tuple[list, dict[str, Any]]:
        """The alert events the guarantees read, and who produced them. With Prometheus: its
        ``ALERTS`` firing intervals on the virtual timeline; rules it could not load (no PromQL
        form) keep the harness engine's events, and the journal names them."""
        from drills.probes import AlertRecord

        if self.prom is None:
            return harness_alerts, {"name": "harness", "engine": "telemetry.alerts.AlertEngine",
                                    "buckets": "1 virtual minute"}  # fmt: skip
        prom = self.prom
        time.sleep(prom.eval_s + prom.interval_s)  # the evaluation covering the last moment
        info = prom.describe()
        info["rule_errors"] = prom.rule_errors()
        end_unix = self.wall0_unix + end_v / self.scale
        by_name = {r.name: r for r in self.rules}
        out = [a for a in harness_alerts if a.rule not in prom.exported]
        for a in prom.firing_intervals(self.wall0_unix, end_unix):
            rule = by_name.get(a.rule)
            summary = rule.summary if rule else ""
            fired = max(0.0, (a.fired_unix - self.wall0_unix) * self.scale)
            out.append(AlertRecord(a.rule, "fired", fired, a.value, a.severity, summary))
            if a.resolved_unix is not None:
                resolved = min(end_v, (a.resolved_unix - self.wall0_unix) * self.scale)
                out.append(AlertRecord(a.rule, "resolved", resolved, None, a.severity, summary))
        info["harness_evaluated_rules"] = sorted(
            {a.rule for a in harness_alerts} - set(prom.exported)
        )
        info["fired"] = sorted({a.rule for a in out if a.kind == "fired"})
        return sorted(out, key=lambda a: (a.offset_s, a.kind != "resolved")), info

    def _store_facts(self, rec, df: pd.DataFrame, client=None) -> None:
        from telemetry.store import TelemetryStore

        s = rec.store
        if not self.db:
            s.error = "no --db given for the target's store: completeness not checked"
            return
        mine = set(df["decision_id"]) if len(df) else set()
        try:
            store = TelemetryStore(self.db, spool_dir=self.work / "spool-reader")
            deadline = time.monotonic() + 20
            while True:
                table = store.read_arrow(
                    run_id=self.run_id, columns=["decision_id", "actual_cost_usd"]
                )
                ids = table.column("decision_id").to_pylist()
                if len(set(ids)) >= len(mine) or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            store.close()
        except Exception as exc:  # noqa: BLE001
            s.error = f"{type(exc).__name__}: {str(exc)[:200]}"
            return
        stored = set(ids)
        s.stored_cost_usd = float(
            sum(c for c in table.column("actual_cost_usd").to_pylist() if c is not None)
        )
        if client is not None and self.url:
            now = self._store_counts(client, self.url)
            s.spooled_rows_total = now.get("spooled", 0) + self.store_base.get("spooled", 0)
            s.write_failures = now.get("failures", 0) + self.store_base.get("failures", 0)
            s.spool_rows_pending = now.get("pending", 0)
            s.drained_rows = max(0, s.spooled_rows_total - s.spool_rows_pending)
        s.telemetry_rows, s.distinct_ids = len(ids), len(stored)
        s.missing_ids = len(mine - stored)
        s.missing_sample = sorted(mine - stored)[:5]
        s.unexpected_ids = len(stored - mine)


def _guarantees(sc, rec, status: str) -> list[jr.GuaranteeResult]:
    """The scenario's checks on the live record, as the virtual runner evaluates them."""
    from drills.probes import CheckOutcome

    out = []
    for g in sc.guarantees:
        check = g.build()
        try:
            if status != "completed":
                raise RuntimeError(f"not evaluated: the drill {status}")
            o = check.evaluate(rec)
            verdict = "passed" if o.passed else "failed"
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            o = CheckOutcome(False, g.check, {}, str(exc)[:300])
            verdict = "error"
        out.append(
            jr.GuaranteeResult(
                id=g.id, check=g.check, params=g.params, expected=g.expect,
                expected_text=o.expected_text, actual=o.actual, actual_text=o.actual_text,
                verdict=verdict, weight=g.weight, evidence=jr._json_safe(o.evidence),
                title=g.title,
            )
        )  # fmt: skip
    return out


def _firing_at(alerts: list, t: float) -> list[str]:
    """Rules firing at virtual offset ``t`` (their last event at or before ``t`` is a firing)."""
    state: dict[str, bool] = {}
    for a in alerts:
        if a.offset_s <= t:
            state[a.rule] = a.kind == "fired"
    return sorted(r for r, on in state.items() if on)


def _num(x: Any) -> Any:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return x
    return None if not math.isfinite(v) else v


def _dur(seconds: float) -> str:
    from drills.clock import format_duration

    return format_duration(seconds)
