"""The processes of a live drill: the upstream simulator, the fault proxies (one in front of the
models, one in front of PostgreSQL for store faults) and ``harness serve``, restarted blue/green
with standbys started ahead when the scenario changes the execution toggle; every one stopped by
PID at the end.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

from live.drill_support import (
    DEFAULT_PG_URL,
    STANDBY_AHEAD,
    STORE_FAULTS,
    WARMUP_MIN_REQUESTS,
    WARMUP_WALL_S,
    LiveDrillError,
)

log = logging.getLogger("live.drill")


class ServiceFleet:
    """Start, switch and stop the drill's processes.

    Mixed into ``live.drill._LiveDrill``: it shares the drill's state (clock, processes, fault
    windows, results).
    """

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

    def _warm_up(self, client) -> None:
        """Send the service it just started a short burst of execute traffic before the clock
        runs, under the run id ``<run_id>-warmup``, and take the counters it leaves as the
        drill's zero.

        Why: the first requests a fresh process handles pay for its cold start (lazy imports,
        new connections through the fault proxy to the models). Measured on one core: the first
        eight interactive calls took 170-280 ms against a 35 ms median model, so the first
        virtual minute's p95 read 200 ms before any fault, and the latency-regression drill's
        "first minute in breach" was that cold start, not the regression. A service someone
        else runs (``--target``) is warm already and is sent nothing extra: its calls may cost
        money. Warm-up texts come from another seed than the drill's traffic."""
        from concurrent.futures import ThreadPoolExecutor

        from drills.traffic import build_traffic

        t = self.sc.traffic
        n = max(WARMUP_MIN_REQUESTS, math.ceil(self.wall_qps * WARMUP_WALL_S))
        warm = build_traffic(self.wall_qps, n / self.wall_qps, seed=t.seed + 1, corpus=t.corpus)
        n = min(n, len(warm))
        rid = f"{self.run_id}-warmup"
        statuses: list[int | str] = []

        def send(i: int) -> None:
            status, _ = self._execute(client, self.url, warm, i, rid, f"warmup-{i}")
            statuses.append(status)

        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=64) as pool:
            for i in range(n):
                delay = warm.offsets[i] - (time.monotonic() - t0)
                if delay > 0:
                    time.sleep(delay)
                pool.submit(send, i)
        self.warm_calls = self._calls(client, self.url)  # read before warm_url is set: raw
        self.warm_usage = self._usage(client)
        self.warm_url = self.url
        for k, v in self._store_counts(client, self.url).items():
            if k != "pending":
                self.store_base[k] = self.store_base.get(k, 0) - v
        answered = sum(1 for s in statuses if isinstance(s, int) and s < 500)
        self.warmup = {"requests": n, "answered": answered, "run_id": rid,
                       "wall_s": round(time.monotonic() - t0, 2)}  # fmt: skip

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
            self.old_breaker_events += self._breaker_events(client, old.url)
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
        # a child a Ctrl-C caught between its start and ``self.children`` (logs in self.work)
        for name in procs.stop_started_in(self.work):
            log.warning("stopped %s, which was started but not yet recorded", name)
