"""A live drill's faults at real network boundaries: each scenario fault becomes a toxic on a fault
proxy (latency, error, tokens, reset; a creeping latency raised in steps) or a blue/green restart
with a new execution toggle, switched on and off at the scenario's (scaled) times.
"""

from __future__ import annotations

import threading

from live.drill_support import (
    MINUTE,
    STORE_FAULTS,
    LiveDrillError,
)


class FaultInjection:
    """Switch faults on and off.

    Mixed into ``live.drill._LiveDrill``: it shares the drill's state (clock, processes, fault
    windows, results).
    """

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
