"""What a live drill reads from the running service and its fault proxy: the telemetry store's
counters (spooled rows, failed writes, rows pending, sampled a few times per virtual minute), the
upstream calls per model, and the bill of the usage the proxy delivered.
"""

from __future__ import annotations

from live.drill_support import (
    MINUTE,
)


class ServiceReadings:
    """Counters of the service processes (retired ones included).

    Mixed into ``live.drill._LiveDrill``: it shares the drill's state (clock, processes, fault
    windows, results).
    """

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
