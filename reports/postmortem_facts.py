"""The facts a drill postmortem states, computed once from the journal: guarantees with their
margins, the verdict, action items and lessons, what happened to the queries, cost and latency
— and, with the timeline (``postmortem_timeline``), everything the pages show (``summarise``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from drills.journal import GuaranteeResult as Guarantee
from drills.journal import Journal as DrillJournal
from drills.journal import MetricRow, ProbeResult, ProbeSummary, SteadyState
from reports.postmortem_text import (
    amount_text,
    capitalised,
    compact,
    failed_text,
    fault_text,
    human_duration,
    number,
    offset_label,
    parse_duration,
    probe_value,
    share_text,
    tolerance_text,
)
from reports.postmortem_timeline import (
    VALID_TOGGLE_VALUES,
    Markers,
    alert_windows,
    breaker_summary,
    find_markers,
    timeline_rows,
    toggle_invalid,
)
from reports.render import num, parse_ts, usd

WEAK_SHARE = 0.5
"""A guarantee that passed but used more than this share of its allowance (e.g. detection
that took more than half its allowed window) gets a follow-up action item."""


def _within_allowance(g: Guarantee) -> tuple[float, float, str] | None:
    """(used, allowed, unit) for a guarantee with a time window or a ceiling, else None."""
    expected = g.expected if isinstance(g.expected, Mapping) else {}
    actual = g.actual if isinstance(g.actual, Mapping) else {}
    if "within" in expected:
        allowed = parse_duration(expected["within"])
        used = None
        for key in ("fired_after_s", "after_s", "seconds", "value"):
            used = number(actual.get(key))
            if used is not None:
                break
        if used is None:
            used = next(
                (
                    number(v)
                    for k, v in actual.items()
                    if k.endswith("_s") and number(v) is not None
                ),
                None,
            )
        if allowed and used is not None:
            return used, allowed, "s"
    if "max" in expected:
        allowed = number(expected["max"])
        used = number(actual.get("value")) if actual else number(g.actual)
        if allowed and allowed > 0 and used is not None:
            return used, allowed, ""
    return None


def assess_guarantee(g: Guarantee) -> dict[str, Any]:
    """The guarantee as a table row, with "weak" set when it passed using most of its margin."""
    expected_text = g.expected_text or compact(g.expected) or "—"
    actual_text = g.actual_text or compact(g.actual) or "—"
    weak = None
    margin = _within_allowance(g)
    if g.verdict == "passed" and margin is not None:
        used, allowed, unit = margin
        if used > WEAK_SHARE * allowed:
            weak = (
                f"used {amount_text(used, unit)} of its {amount_text(allowed, unit)} allowance "
                f"({used / allowed:.0%}, more than {WEAK_SHARE:.0%})"
            )
    return {
        "id": g.id,
        "check": g.check or "",
        "expected_text": expected_text,
        "actual_text": actual_text,
        "verdict": g.verdict,
        "weight": g.weight,
        "evidence": compact(g.evidence, 300),
        "weak": weak,
    }


def drill_verdict(j: DrillJournal) -> str:
    """ "passed" only when the drill completed, steady state came back and every guarantee held;
    "inconclusive" when it checked no guarantee at all (no evidence is not a pass)."""
    if j.status == "completed" and not j.guarantees:
        return "inconclusive"
    ok = j.status == "completed" and not j.deviated
    return "passed" if ok and all(g.verdict == "passed" for g in j.guarantees) else "failed"


def action_items(
    j: DrillJournal, rows: Sequence[Mapping[str, Any]], alerts: Sequence[str]
) -> list[dict[str, str]]:
    """Action items from what the drill proved missing: failed and unevaluable guarantees,
    weak passes, an unfinished drill, a steady state that did not come back, a silent fault."""
    items: list[dict[str, str]] = []
    if j.status != "completed":
        items.append(
            {
                "priority": "P1",
                "type": "repair",
                "guarantee": "",
                "text": f"The drill itself ended '{j.status}'"
                + (f": {j.error}" if j.error else "")
                + ". Fix the cause and rerun it: guarantees it did not reach are unproven.",
            }
        )
    for g in rows:
        if g["verdict"] == "failed":
            items.append(
                {
                    "priority": "P1",
                    "type": "fix",
                    "guarantee": g["id"],
                    "text": f"Close the gap in guarantee '{g['id']}': expected "
                    f"{g['expected_text']}; actual {g['actual_text']}.",
                }
            )
        elif g["verdict"] == "error":
            items.append(
                {
                    "priority": "P1",
                    "type": "investigate",
                    "guarantee": g["id"],
                    "text": f"Guarantee '{g['id']}' could not be evaluated"
                    + (f" by check '{g['check']}'" if g["check"] else "")
                    + f" ({g['actual_text']}). A promise that cannot be measured is not evidence: "
                    "repair the check and rerun the drill.",
                }
            )
    if j.deviated:
        failed_after = [p.probe for p in j.steady_state.after if p.ok is False]
        items.append(
            {
                "priority": "P2",
                "type": "investigate",
                "guarantee": "",
                "text": "Steady state was not restored after the drill"
                + (f" (probes failing: {', '.join(failed_after)})" if failed_after else "")
                + ": find what stayed broken after the faults were cleared.",
            }
        )
    for g in rows:
        if g["weak"]:
            items.append(
                {
                    "priority": "P3",
                    "type": "follow-up",
                    "guarantee": g["id"],
                    "text": f"Guarantee '{g['id']}' held with little margin: {g['weak']}. "
                    "Tighten it before it becomes a miss (alert window, threshold or timeout).",
                }
            )
    if j.faults and not alerts and not any(g["check"] == "alert_fired" for g in rows):
        items.append(
            {
                "priority": "P2",
                "type": "detect",
                "guarantee": "",
                "text": "No alert fired during the fault: an operator would not have been told. "
                "Add or tune an alert rule for this failure mode and a guarantee that checks it.",
            }
        )
    return items


def lessons(
    j: DrillJournal,
    rows: Sequence[Mapping[str, Any]],
    markers: Markers,
    detected_at: datetime | None,
) -> dict[str, list[str]]:
    """What went well / wrong / where we got lucky, each line traceable to a guarantee, event
    or measured number in the journal."""
    well: list[str] = []
    wrong: list[str] = []
    lucky: list[str] = []
    for g in rows:
        if g["verdict"] == "passed" and not g["weak"]:
            well.append(f"{capitalised(g['expected_text'])}: {g['actual_text']} ({g['id']}).")
        elif g["verdict"] == "passed":
            lucky.append(
                f"Guarantee {g['id']} passed, but {g['weak']}: a slightly worse day misses it."
            )
        elif g["verdict"] == "failed":
            wrong.append(
                f"Guarantee {g['id']} failed: expected {g['expected_text']}; actual {g['actual_text']}."
            )
        else:
            wrong.append(f"Guarantee {g['id']} could not be evaluated: {g['actual_text']}.")
    if markers.begins and markers.mitigated:
        delay = (markers.mitigated - markers.begins).total_seconds()
        if markers.mitigated_by:
            when = (
                f"{human_duration(delay)} after it began" if delay >= 1 else "the moment it began"
            )
            well.append(f"The fault was contained automatically ({markers.mitigated_by}) {when}.")
    elif markers.begins:
        wrong.append(
            "No containment was recorded: no breaker, fallback, spool or rollback event, and "
            "the journal names no mitigation."
        )
    if detected_at and markers.mitigated and markers.mitigated < detected_at:
        lead = human_duration((detected_at - markers.mitigated).total_seconds())
        lucky.append(
            f"The automatic response contained the fault {lead} before any alert fired: had it "
            "not, nobody would have known until then."
        )
    for f in j.faults:
        if f.probability is not None and f.probability < 1:
            lucky.append(
                f"The {f.type} fault hit only {f.probability:.0%} of calls; a full outage of that "
                "kind is harsher than what was drilled."
            )
    if j.status != "completed":
        wrong.append(f"The drill ended '{j.status}'" + (f": {j.error}" if j.error else "") + ".")
    for p in j.steady_state.during:
        if p.violations:
            wrong.append(
                f"Steady-state probe {p.probe} was violated during the fault in "
                f"{p.violations:.0f} of {p.samples or 0:.0f} samples (worst {probe_value(p.probe, p.worst)})."
            )
    after = j.steady_state.after
    if after and all(p.ok for p in after):
        well.append(
            f"Steady state came back after the drill ({', '.join(p.probe for p in after)})."
        )
    elif j.deviated:
        wrong.append("Steady state did not come back after the drill.")
    for r in j.rollbacks:
        if r.ok is False:
            wrong.append(f"Rollback {r.type} failed" + (f": {r.detail}" if r.detail else "") + ".")
    o = outcomes(j)
    if o["failed"]:
        wrong.append(failed_text(o) or "")
    elif o["failed"] == 0 and (o["executed"] or 0) > 0:
        well.append(failed_text(o) or "")
    lost = rows_lost(j)
    if lost:
        wrong.append(f"{lost:,.0f} decision rows are missing from telemetry.")
    return {"well": well, "wrong": wrong, "lucky": lucky}


def rows_lost(j: DrillJournal) -> float | None:
    """Decisions minus rows that reached telemetry (after any drain)."""
    d, t = number(j.impact.decisions), number(j.impact.telemetry_rows)
    return None if d is None or t is None else max(0.0, d - t)


# ------------------------------------------------------------------ numbers people can trust


def outcomes(j: DrillJournal) -> dict[str, float | None]:
    """What happened to the queries, in the journal's own terms, so that the postmortem, the
    error-rate chart and the ``error_rate_high`` alert agree.

    The journal's ``executed`` counts every decision sent to the execution path (served,
    fallback, rejected, error, timeout); ``errors`` counts upstream errors and timeouts only.
    The error-rate metric (and its alert) counts errors, timeouts AND rejections as failures:
    ``failed`` is that numerator and ``failed_rate`` that share of ``executed``.
    """
    imp = j.impact
    executed = number(imp.executed)
    errors = number(imp.errors)
    rejected = number(imp.rejected)
    fallbacks = number(imp.fallbacks)
    failed = None if errors is None and rejected is None else (errors or 0) + (rejected or 0)
    served = None
    if executed is not None and failed is not None:
        served = max(0.0, executed - failed - (fallbacks or 0))
    return {
        "executed": executed,
        "served": served,
        "fallbacks": fallbacks,
        "rejected": rejected,
        "errors": errors,
        "failed": failed,
        "failed_rate": failed / executed if failed is not None and executed else None,
    }


def _fault_minutes(j: DrillJournal) -> tuple[list[MetricRow], list[MetricRow], list[MetricRow]]:
    """Metric rows (minute buckets) before the first fault, while any fault is active, after."""
    if not j.faults:
        return list(j.metrics), [], []
    end_of_drill = parse_ts(j.ended_at) if j.ended_at else None
    spans = [
        (parse_ts(f.start), parse_ts(f.end) if f.end else end_of_drill or parse_ts(f.start))
        for f in j.faults
    ]
    first, last = min(a for a, _ in spans), max(b for _, b in spans)
    before, during, after = [], [], []
    for m in j.metrics:
        ts = parse_ts(m.ts)
        if ts < first:
            before.append(m)
        elif any(a <= ts < b for a, b in spans):
            during.append(m)
        elif ts >= last:
            after.append(m)
    return before, during, after


def cost_change(j: DrillJournal) -> dict[str, Any] | None:
    """``impact.extra_cost_usd`` with the words it needs: billed USD during the faults minus
    what the same number of queries cost per query before the first fault."""
    extra = number(j.impact.extra_cost_usd)
    if extra is None or not j.faults:
        return None
    before, during, _ = _fault_minutes(j)

    def per_query(rows: list[MetricRow]) -> float | None:
        q = sum(number(getattr(m, "decisions", None) or m.queries) or 0 for m in rows)
        c = sum(number(getattr(m, "cost_usd", None)) or 0 for m in rows)
        return c / q if q else None

    base, now = per_query(before), per_query(during)
    o = outcomes(j)
    if abs(extra) < 0.005:
        text = "The faults did not change what was billed per query."
    elif extra > 0:
        text = f"The faults cost {usd(extra)} more than the same queries cost before them"
    else:
        text = f"{usd(-extra)} less was billed during the faults than before them"
    if base is not None and now is not None and abs(extra) >= 0.005:
        text += f" ({usd(now * 1000)} per 1,000 queries during, {usd(base * 1000)} before)"
    if extra < -0.005 and (o["rejected"] or 0) > 0:
        text += f": the {num(o['rejected'])} rejected queries were never billed"
    elif extra > 0.005 and (o["fallbacks"] or 0) > 0:
        text += f": {num(o['fallbacks'])} queries were served by a fallback model"
    if not text.endswith("."):
        text += "."
    signed = ("+" if extra > 0 else "−") + usd(abs(extra)) if abs(extra) >= 0.005 else usd(0)
    return {"value": extra, "signed": signed, "text": text}


def fault_tiers(j: DrillJournal) -> list[str]:
    """Model tiers a fault targeted (``target: {tier: large}``), in order."""
    tiers: list[str] = []
    for f in j.faults:
        tier = (f.target or {}).get("tier")
        if isinstance(tier, str) and tier not in tiers:
            tiers.append(tier)
    return tiers


def _tier_probe(probes: list[ProbeResult], tier: str) -> ProbeResult | None:
    for p in probes:
        params = getattr(p, "params", None) or {}
        if (
            p.probe == "latency_p95_ms"
            and isinstance(params, Mapping)
            and params.get("tier") == tier
        ):
            return p
    return None


def latency_rows(j: DrillJournal) -> list[dict[str, Any]]:
    """p95 latency before / during / after: all executed queries, every faulted tier (its
    steady-state probe), and the slowest tier per minute (what the latency alert watches).
    A tier fault hidden in the all-tier p95 (833 ms for a +4 s spike) shows on its own row."""
    imp = j.impact
    rows = [
        {
            "label": "all executed queries",
            "before": number(imp.latency_p95_ms_before),
            "during": number(imp.latency_p95_ms_during),
            "after": number(imp.latency_p95_ms_after),
            "note": "p95 over each whole phase",
        }
    ]
    ss = j.steady_state
    during_by_probe = {p.probe: p for p in ss.during}
    for tier in fault_tiers(j):
        b, a = _tier_probe(ss.before, tier), _tier_probe(ss.after, tier)
        d = during_by_probe.get("latency_p95_ms") if b is not None or a is not None else None
        if b is None and a is None:
            continue
        rows.append(
            {
                "label": f"tier {tier} (the faulted tier)",
                "before": number(b.value) if b else None,
                "during": number(d.worst) if d else tier_p95_during(j),
                "after": number(a.value) if a else None,
                "note": "steady-state probe; during = worst"
                + (f" {b.window} window" if b and b.window else ""),
            }
        )
    before, during, after = _fault_minutes(j)

    def worst(rows_: list[MetricRow]) -> float | None:
        vals = [number(getattr(m, "actual_latency_p95_worst_tier_ms", None)) for m in rows_]
        vals = [v for v in vals if v is not None]
        return max(vals) if vals else None

    if any(worst(x) is not None for x in (before, during, after)):
        rows.append(
            {
                "label": "slowest tier, worst minute",
                "before": worst(before),
                "during": worst(during),
                "after": worst(after),
                "note": "what execution_p95_latency_high watches",
            }
        )
    return rows


def tier_p95_during(j: DrillJournal) -> float | None:
    """p95 of the faulted tier during the faults: its steady-state probe's worst value, else
    the slowest tier's worst minute; the all-tier p95 when no fault targets a tier."""
    tiers = fault_tiers(j)
    if not tiers:
        return number(j.impact.latency_p95_ms_during)
    d = next((p for p in j.steady_state.during if p.probe == "latency_p95_ms"), None)
    if d is not None and any(_tier_probe(j.steady_state.before, t) for t in tiers):
        return number(d.worst)
    _, during, _ = _fault_minutes(j)
    vals = [number(getattr(m, "actual_latency_p95_worst_tier_ms", None)) for m in during]
    vals = [v for v in vals if v is not None]
    return max(vals) if vals else number(j.impact.latency_p95_ms_during)


def _probe_tier(p: ProbeResult | ProbeSummary, ss: SteadyState) -> str | None:
    """The tier a steady-state probe watches; the "during" summaries carry no params, so they
    take the tier of the same probe before the fault."""
    params = getattr(p, "params", None)
    if not isinstance(params, Mapping):
        twin = next((b for b in ss.before if b.probe == p.probe), None)
        params = getattr(twin, "params", None) if twin is not None else None
    tier = params.get("tier") if isinstance(params, Mapping) else None
    return str(tier) if tier else None


def summarise(j: DrillJournal, source: str) -> dict[str, Any]:
    """Every fact the templates show, computed once here."""
    markers = find_markers(j)
    rows = [assess_guarantee(g) for g in j.guarantees]
    firings = alert_windows(j)
    start = parse_ts(j.started_at)
    end = parse_ts(j.ended_at) if j.ended_at else None

    det = j.detection
    detected_at = parse_ts(det.fired_at) if det.fired_at else None
    detect_alert = det.alert or None
    if detected_at is None and firings and markers.begins:
        after = [f for f in firings if f[1] >= markers.begins]
        if after:
            detect_alert, detected_at = after[0][0], after[0][1]
    ttd = det.time_to_detect_s
    if ttd is None and detected_at and markers.begins:
        ttd = (detected_at - markers.begins).total_seconds()
    detect_allowed = None
    for g in j.guarantees:
        if g.check == "alert_fired" and isinstance(g.expected, Mapping):
            detect_allowed = parse_duration(g.expected.get("within"))
            break
    ttm = j.mitigation.time_to_mitigate_s
    outage_s = (
        (markers.ends - markers.begins).total_seconds() if markers.begins and markers.ends else None
    )

    verdict = drill_verdict(j)
    passed = [g for g in rows if g["verdict"] == "passed"]
    failed = [g for g in rows if g["verdict"] != "passed"]
    alerts = sorted({f[0] for f in firings})
    items = action_items(j, rows, alerts)

    summary = [
        f"The {j.name} drill injected "
        + (
            "; ".join(
                f"{fault_text(f)} from {offset_label((parse_ts(f.start) - start).total_seconds())}"
                + (
                    f" to {offset_label((parse_ts(f.end) - start).total_seconds())}"
                    if f.end
                    else " until the end"
                )
                for f in j.faults
            )
            if j.faults
            else "no fault"
        )
        + " (virtual clock)."
    ]
    if toggle_invalid(j):
        summary.append(
            f"The scenario itself set AMAIMA_EXECUTION_MODE={j.execution_mode!r}, an invalid "
            "value, from the first minute."
        )
    summary.append(
        f"{len(passed)} of {len(rows)} guarantees held"
        + (f"; not held: {', '.join(g['id'] for g in failed)}" if failed else "")
        + (f"; the drill ended '{j.status}'" if j.status != "completed" else "")
        + "."
    )
    if detected_at and ttd is not None:
        summary.append(f"Alert {detect_alert} fired {human_duration(ttd)} after the fault began.")
    elif j.faults:
        summary.append("No alert fired for the fault.")
    if markers.mitigated and ttm is not None:
        summary.append(
            f"Contained {human_duration(ttm)} after it began"
            + (f" ({markers.mitigated_by})" if markers.mitigated_by else "")
            + "."
        )

    mode = j.execution_mode
    toggle_note = None
    if toggle_invalid(j):
        toggle_note = (
            f"The scenario set AMAIMA_EXECUTION_MODE to {mode!r}, which is not one of "
            f"{' or '.join(VALID_TOGGLE_VALUES)}: the router must fail closed to decision-only."
        )

    return {
        "verdict": verdict,
        "passed": len(passed),
        "total": len(rows),
        "guarantees": rows,
        "failed_guarantees": failed,
        "summary": summary,
        "markers": markers,
        "timeline": timeline_rows(j, markers),
        "firings": [
            {
                "rule": name,
                "fired": s,
                "resolved": e,
                "offset": offset_label((s - start).total_seconds()),
            }
            for name, s, e in firings
        ],
        "detection": {
            "alert": detect_alert,
            "at": detected_at,
            "ttd": ttd,
            "ttd_text": human_duration(ttd),
            "allowed": detect_allowed,
            "allowed_text": human_duration(detect_allowed) if detect_allowed else None,
        },
        "mitigation": {
            "at": markers.mitigated,
            "how": markers.mitigated_by,
            "ttm": ttm,
            "ttm_text": human_duration(ttm),
            "breakers": breaker_summary(j),
            "other_events": [
                r
                for r in timeline_rows(j, Markers(None, None, None, None))
                if r["kind"] in ("fallback", "spool", "drain", "toggle_changed")
            ],
        },
        "outcomes": outcomes(j),
        "failed_text": failed_text(outcomes(j)),
        "failed_share": share_text(outcomes(j)["failed_rate"]),
        "cost": cost_change(j),
        "latency": latency_rows(j),
        "steady_state": [
            {
                "phase": phase,
                "probe": p.probe,
                "tolerance": tolerance_text(p.probe, p.tolerance),
                "value": probe_value(p.probe, p.value if isinstance(p, ProbeResult) else p.worst),
                "samples": getattr(p, "samples", None),
                "violations": getattr(p, "violations", None),
                "ok": p.ok,
                "tier": _probe_tier(p, j.steady_state),
            }
            for phase, probes in (
                ("before", j.steady_state.before),
                ("during (worst)", j.steady_state.during),
                ("after", j.steady_state.after),
            )
            for p in probes
        ],
        "outage_text": human_duration(outage_s) if outage_s is not None else None,
        "faults": [
            {
                "type": f.type,
                "text": fault_text(f),
                "start": parse_ts(f.start),
                "end": parse_ts(f.end) if f.end else None,
                "start_offset": offset_label((parse_ts(f.start) - start).total_seconds()),
                "end_offset": offset_label((parse_ts(f.end) - start).total_seconds())
                if f.end
                else None,
                "target": compact(f.target),
                "params": compact(f.params),
                "probability": f.probability,
            }
            for f in j.faults
        ],
        "toggle_note": toggle_note,
        "action_items": items,
        "lessons": lessons(j, rows, markers, detected_at),
        "rows_lost": rows_lost(j),
        "start": start,
        "end": end,
        "duration_text": human_duration((end - start).total_seconds()) if end else None,
        "source": source,
    }
