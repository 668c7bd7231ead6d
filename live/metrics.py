"""The service's Prometheus metrics (official ``prometheus_client``), one registry per app.

Names are the contract the exported alert rules (``telemetry.alerts.prometheus_rules``) query;
``METRIC_NAMES`` lists them and a test checks every name the rules use is exposed. Decisions are
counted per batch (one ``inc`` per distinct label set), so a 1,000-query batch costs a few
hundred microseconds of bookkeeping, not one lookup per row and metric.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable

import pyarrow as pa
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Summary,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from telemetry.metric_registry import (
    CALLED_OUTCOMES,
    ERROR_OUTCOMES,
    MISCONFIGURED_CODE,
    PROM_DECISIONS,
    has_reason_code,
)

disable_created_metrics()  # the *_created series only double the exposition

# Every latency threshold of an alert rule is a bucket bound (a test checks it): histogram_quantile
# interpolates inside a bucket, so a p95 of 152 ms in a 150-200 bucket could read 176 and page
# against a 160 threshold (measured: the early warning fired before the latency-regression fault).
# Finer bounds around the interactive SLA (200 ms) for the same reason.
LATENCY_BUCKETS_MS = (
    25, 50, 100, 125, 140, 150, 160, 170, 180, 190, 200, 250, 300, 500, 750, 1000, 1500, 2000,
    3000, 4000, 5000, 7500, 10000, 15000,
)  # fmt: skip
BREAKER_VALUE = {"closed": 0, "half_open": 1, "open": 2}
ENDPOINTS = ("simulate", "execute")
# The outcomes the alert rules count, exposed at 0 (see ``_zero_outcomes``).
_ZEROED = tuple(dict.fromkeys(str(o) for o in (*CALLED_OUTCOMES, *ERROR_OUTCOMES)))
_ZERO_CAP = 800  # (level, domain, tier) keys x models per tier pre-exposed at most

METRIC_NAMES = (
    PROM_DECISIONS,
    "amaima_borderline_decisions_total",
    "amaima_upscaled_decisions_total",
    "amaima_misconfigured_decisions_total",
    "amaima_decision_confidence",
    "amaima_latency_estimate_ms",
    "amaima_actual_latency_ms",
    "amaima_query_cost_usd_total",
    "amaima_actual_cost_usd_total",
    "amaima_estimated_cost_usd_total",
    "amaima_breaker_state",
    "amaima_upstream_calls_total",
    "amaima_telemetry_spool_rows",
    "amaima_telemetry_queue_rows",
    "amaima_telemetry_write_failures_total",
    "amaima_telemetry_spooled_rows_total",
    "amaima_telemetry_written_rows_total",
    "amaima_execution_mode",
    "amaima_execution_toggle_invalid",
    "amaima_http_requests_total",
    "amaima_http_request_duration_seconds",
)


class _Live:
    """Values read at scrape time (breakers, spool, toggle) rather than pushed."""

    def __init__(self, read: Callable[[], dict]) -> None:
        self._read = read

    def collect(self):  # noqa: D102 - prometheus_client's collector protocol
        s = self._read()
        g = GaugeMetricFamily(
            "amaima_breaker_state",
            "Circuit breaker per model: 0 closed, 1 half-open, 2 open.",
            labels=["model", "tier"],
        )
        for model, (tier, state) in s["breakers"].items():
            g.add_metric([model, tier], BREAKER_VALUE.get(state, 2))
        yield g
        c = CounterMetricFamily(
            "amaima_upstream_calls", "Calls sent to model endpoints (retries included).",
            labels=["model"],
        )  # fmt: skip
        for model, n in s["upstream_calls"].items():
            c.add_metric([model], n)
        yield c
        yield GaugeMetricFamily(
            "amaima_telemetry_spool_rows",
            "Decisions waiting in the local spool for the store to come back.",
            value=s["spool_rows"],
        )
        yield GaugeMetricFamily(
            "amaima_telemetry_queue_rows",
            "Decisions queued for the asynchronous telemetry writer.",
            value=s["queue_rows"],
        )
        mode = GaugeMetricFamily(
            "amaima_execution_mode",
            "1 for the effective execution mode (decision-only or execution-enabled).",
            labels=["mode"],
        )
        for m in ("decision-only", "execution-enabled"):
            mode.add_metric([m], 1.0 if s["mode"] == m else 0.0)
        yield mode
        yield GaugeMetricFamily(
            "amaima_execution_toggle_invalid",
            "1 when AMAIMA_EXECUTION_MODE holds an invalid value (failed closed).",
            value=1.0 if s["toggle_invalid"] else 0.0,
        )


class ServiceMetrics:
    def __init__(self, read_live: Callable[[], dict]) -> None:
        r = self.registry = CollectorRegistry()
        self.decisions = Counter(
            PROM_DECISIONS.removesuffix("_total"),
            "Decisions by endpoint, level, domain, model, tier and outcome.",
            ["endpoint", "level", "domain", "model", "tier", "outcome"], registry=r,
        )  # fmt: skip
        self.borderline = Counter(
            "amaima_borderline_decisions", "Decisions in the borderline band.", ["endpoint"],
            registry=r,
        )  # fmt: skip
        self.upscaled = Counter(
            "amaima_upscaled_decisions", "Decisions upscaled one tier.", ["endpoint"], registry=r
        )
        self.misconfigured = Counter(
            "amaima_misconfigured_decisions",
            "Decisions carrying EXECUTION_MODE_INVALID (the toggle failed closed).",
            ["endpoint"], registry=r,
        )  # fmt: skip
        self.confidence = Summary(
            "amaima_decision_confidence", "confidence_overall of each decision.", ["endpoint"],
            registry=r,
        )  # fmt: skip
        self.latency_estimate = Histogram(
            "amaima_latency_estimate_ms", "The router's latency estimate (ms) per model tier.",
            ["tier"], buckets=LATENCY_BUCKETS_MS, registry=r,
        )  # fmt: skip
        self.actual_latency = Histogram(
            "amaima_actual_latency_ms",
            "What callers waited (ms) for decisions that reached a model, per model tier.",
            ["tier"], buckets=LATENCY_BUCKETS_MS, registry=r,
        )  # fmt: skip
        self.query_cost = Counter(
            "amaima_query_cost_usd",
            "Cost per decision: actual where executed and known, else the estimate.",
            registry=r,
        )
        self.actual_cost = Counter(
            "amaima_actual_cost_usd", "Billed cost of executed decisions.", ["model"], registry=r
        )
        self.estimated_cost = Counter(
            "amaima_estimated_cost_usd", "The router's cost estimates.", registry=r
        )
        self.write_failures = Counter(
            "amaima_telemetry_write_failures", "Failed telemetry write attempts.", registry=r
        )
        self.spooled = Counter(
            "amaima_telemetry_spooled_rows", "Decisions written to the local spool.", registry=r
        )
        self.written = Counter(
            "amaima_telemetry_written_rows", "Decisions written to the store.", registry=r
        )
        self.http_requests = Counter(
            "amaima_http_requests", "HTTP requests by route and status.", ["route", "status"],
            registry=r,
        )  # fmt: skip
        self.http_duration = Histogram(
            "amaima_http_request_duration_seconds", "Request handling time by route.", ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )  # fmt: skip
        r.register(_Live(read_live))
        # Exposed at 0 from the start: a series that is absent until its first event makes
        # increase() empty, not 0, in the exported rules.
        for ep in ENDPOINTS:
            for m in (self.borderline, self.upscaled, self.misconfigured, self.confidence):
                m.labels(ep)
        self._keys: set[tuple[str, str, str, str]] = set()  # (endpoint, level, domain, tier)
        self._tier_models: dict[str, set[str]] = {}

    def _zero_outcomes(self, ep: str, lv: str, dom: str, model: str, tier: str) -> None:
        """Expose the alerting outcomes at 0 for every (level, domain, model of the same tier)
        seen: Prometheus's increase() misses the first increment of a series born mid-window,
        so a fallback or error series created by the fault itself would be undercounted just
        when the alert should fire. Fallback stays in the tier, so the cross product is small."""
        key = (ep, lv, dom, tier)
        models = self._tier_models.setdefault(tier, set())
        pairs = []
        if key not in self._keys:
            self._keys.add(key)
            pairs += [(key, m) for m in models | {model}]
        if model not in models:
            models.add(model)
            pairs += [(k, model) for k in self._keys if k[3] == tier]
        for (e, level, domain, t), m in pairs:
            if len(self._keys) * max(1, len(models)) > _ZERO_CAP:
                return
            for outcome in _ZEROED:
                self.decisions.labels(e, level, domain, m, t, outcome)

    def observe(self, table: pa.Table, endpoint: str) -> None:
        """Count one batch of decisions (after execution, when there was any)."""
        n = table.num_rows
        if n == 0:
            return
        c = {name: table.column(name).to_pylist() for name in _OBSERVED}
        tally = Tally(
            zip(
                c["complexity_level"],
                c["domain"],
                c["model"],
                c["model_tier"],
                c["outcome"],
                strict=True,
            )
        )
        for (lv, dom, model, tier, outcome), k in tally.items():
            if endpoint == "execute":
                self._zero_outcomes(endpoint, lv, dom, model, tier)
            self.decisions.labels(endpoint, lv, dom, model, tier, outcome).inc(k)
        b = sum(c["borderline"])
        if b:
            self.borderline.labels(endpoint).inc(b)
        u = sum(c["upscaled"])
        if u:
            self.upscaled.labels(endpoint).inc(u)
        bad = int(has_reason_code(c["reason_codes"], MISCONFIGURED_CODE).sum())
        if bad:
            self.misconfigured.labels(endpoint).inc(bad)
        conf = self.confidence.labels(endpoint)
        for v in c["confidence_overall"]:
            conf.observe(v)
        est_cost = 0.0
        query_cost = 0.0
        # one child per tier, looked up once per batch (``labels()`` costs more than observing)
        estimate_of = {t: self.latency_estimate.labels(t) for t in set(c["model_tier"])}
        actual_of: dict = {}  # a tier's series appears with its first executed call
        for i in range(n):
            tier = c["model_tier"][i]
            estimate_of[tier].observe(c["latency_estimate_ms"][i])
            est = c["cost_estimate_usd"][i]
            est_cost += est
            outcome = c["outcome"][i]
            actual = c["actual_cost_usd"][i]
            if outcome != "not_executed" and actual is not None:
                query_cost += actual
                if actual:
                    self.actual_cost.labels(c["model"][i]).inc(actual)
            else:
                query_cost += est
            lat = c["actual_latency_ms"][i]
            if outcome in CALLED_OUTCOMES and lat is not None:
                if tier not in actual_of:
                    actual_of[tier] = self.actual_latency.labels(tier)
                actual_of[tier].observe(lat)
        self.estimated_cost.inc(est_cost)
        self.query_cost.inc(query_cost)


_OBSERVED = (
    "complexity_level",
    "domain",
    "model",
    "model_tier",
    "outcome",
    "borderline",
    "upscaled",
    "reason_codes",
    "confidence_overall",
    "latency_estimate_ms",
    "cost_estimate_usd",
    "actual_cost_usd",
    "actual_latency_ms",
)
