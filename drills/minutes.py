"""Per-minute metrics of a virtual drill: each closed minute's decisions through the pilot's
metric computation (``telemetry.metrics.compute_metrics``) and the drill's own columns, into
the same alert engine the pilot back-test uses, and one ``metrics`` row of the journal."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pandas as pd

from drills import journal as jr
from drills.clock import VirtualClock
from drills.probes import drill_metrics
from drills.record import AlertRecord, DrillRecord


class MinuteMetrics:
    """Closes one virtual minute at a time: metrics, alert evaluation, the journal row."""

    def __init__(
        self, record: DrillRecord, engine: Any, clock: VirtualClock, events: jr.EventLog
    ) -> None:
        self.record = record
        self.engine = engine
        self.clock = clock
        self.events = events

    def close(self, m0: float, m1: float, frame: pd.DataFrame, counters: Counter[str]) -> None:
        """``frame``: the minute's executed decisions; ``counters``: its event metrics."""
        from telemetry.metrics import compute_metrics

        rec = self.record
        rec.minute_frames.append(frame)
        metrics = compute_metrics(
            frame,
            "1min",
            interactive_tiers=rec.interactive_tiers,
            start=pd.Timestamp(self.clock.at(m0)),
            end=pd.Timestamp(self.clock.at(m1)),
        )
        row = metrics.iloc[0].to_dict() if len(metrics) else {}
        # the event metrics are per-bucket sums (compute_metrics' ``events``): set them directly
        row["telemetry_write_failures"] = float(counters["telemetry_write_failures"])
        row["spooled_rows"] = float(counters["spooled_rows"])
        row.update(drill_metrics(frame, rec.interactive_tiers))
        self._alerts(m1, row)
        outcomes = frame["outcome"].value_counts() if len(frame) else pd.Series(dtype=int)
        out = {
            "ts": self.clock.iso(m0),
            "offset_s": m0,
            "queries": rec.queries(m0, m1),
            "decisions": len(frame),
            "executed": int(len(frame) - outcomes.get("not_executed", 0)),
            "not_executed": int(outcomes.get("not_executed", 0)),
            "ok": int(outcomes.get("ok", 0)),
            "fallback": int(outcomes.get("fallback", 0)),
            "rejected": int(outcomes.get("rejected", 0)),
            "errors": int(outcomes.get("error", 0) + outcomes.get("timeout", 0)),
            "error_rate": row.get("error_rate"),
            "fallback_rate": row.get("fallback_rate"),
            "rejected_rate": row.get("rejected_rate"),
            "actual_latency_p95_ms": row.get("actual_latency_p95_ms"),
            "actual_latency_p95_worst_tier_ms": row.get("actual_latency_p95_worst_tier_ms"),
            "actual_latency_p95_interactive_ms": row.get("actual_latency_p95_interactive_ms"),
            "cost_per_query_usd": row.get("cost_per_query_usd"),
            "cost_usd": float(pd.to_numeric(frame["actual_cost_usd"], errors="coerce").sum())
            if len(frame)
            else 0.0,
            "telemetry_write_failures": int(counters["telemetry_write_failures"]),
            "spooled_rows": int(counters["spooled_rows"]),
            "upstream_calls": int(counters["upstream_calls"]),
            "misconfigured_toggle_count": int(row.get("misconfigured_toggle_count", 0) or 0),
            "open_breakers": len(rec.open_breakers_now()),
            "alerts_firing": sorted(self.engine.firing()),
        }
        rec.metrics.append(jr.json_safe(out))

    def _alerts(self, m1: float, row: dict[str, Any]) -> None:
        """The minute's metrics into the alert engine; each firing or resolution recorded."""
        for event in self.engine.observe(pd.Timestamp(self.clock.at(m1)), row):
            value = None if math.isnan(event.value) else float(event.value)
            self.record.alerts.append(
                AlertRecord(event.rule, event.kind, m1, value, event.severity, event.summary)
            )
            self.events.add(
                f"alert_{event.kind}",
                m1,
                rule=event.rule,
                severity=event.severity,
                value=value,
                condition=f"{event.metric} {event.comparator} {event.threshold:g}",
                summary=event.summary,
            )
