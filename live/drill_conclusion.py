"""The end of a live drill: the answered decisions as a frame on the virtual timeline, per-minute
metrics and alerts (the harness engine, or Prometheus's ``ALERTS`` read back), breaker events,
store completeness, steady state, the guarantees checked with the virtual drill's classes, and the
journal.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd

from drills import journal as jr
from drills.verification import evaluate_guarantees, resilience_score
from live.drill_support import (
    MINUTE,
)


class Conclusion:
    """Measure, check and write the journal.

    Mixed into ``live.drill._LiveDrill``: it shares the drill's state (clock, processes, fault
    windows, results).
    """

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
            evs = self._breaker_events(client, self.url) if self.url else []
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
        guarantees = evaluate_guarantees(sc, rec, status)
        score = resilience_score(guarantees)
        self.event("drill_finished", end_v, status=status, resilience_score=score)
        unanswered = [i for i, (s, d) in self.results.items() if d is None]
        # the one impact definition both engines share; live counts a query unanswered when its
        # HTTP request never came back with a decision
        impact = jr.impact(rec, queries=len(self.traffic), upstream_calls=sum(calls.values()))
        impact = impact.model_copy(update={"unanswered_queries": len(unanswered) + max(
            0, len(self.traffic) - len(self.results))})  # fmt: skip
        detection = jr.detection(rec, sc.guarantees)
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
            alerts=jr.alert_firings(rec.alerts, rec), breakers={},
            timeline_markers=jr.outage_markers(rec),
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
