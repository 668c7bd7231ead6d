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

    def _usage(self, client) -> dict[str, dict]:
        """The usage per model the fault proxy delivered so far (its ``/stats``)."""
        if not self.admin:
            return {}
        try:
            return client.get(self.admin + "/stats", timeout=5).json().get("usage", {})
        except Exception:  # noqa: BLE001
            return {}

    def _billed(self, client) -> float:
        """What the models billed: the usage the fault proxy delivered (after any ``tokens``
        toxic), priced by the catalog -- independent of what the service recorded. The warm-up's
        usage is not the drill's."""
        from router.upstream import call_cost_usd

        warm = self.warm_usage
        specs = {m.name: m for m in self.config.models}
        total = 0.0
        for m, u in self._usage(client).items():
            if m in specs:
                w = warm.get(m, {})
                total += call_cost_usd(
                    specs[m],
                    u["prompt_tokens"] - w.get("prompt_tokens", 0),
                    u["completion_tokens"] - w.get("completion_tokens", 0),
                )
        return round(total, 8)

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
        return self._minus_warmup(out, url)

    def _minus_warmup(self, calls: dict[str, int], url: str) -> dict[str, int]:
        """Calls counted by the process at ``url``, less its warm-up's (``_warm_up``): the
        drill's counters start at zero when its clock does."""
        if url != self.warm_url:
            return calls
        warm = self.warm_calls
        return {m: n - warm.get(m, 0) for m, n in calls.items()}

    def _breaker_events(self, client, url: str) -> list[dict]:
        """The breaker changes of the process at ``url``, their call counts on the drill's zero."""
        events = client.get(url + "/v1/breaker-events").json()["events"]
        if url == self.warm_url:
            warm = self.warm_calls
            events = [{**e, "calls": e["calls"] - warm.get(e["model"], 0)} for e in events]
        return events
