"""Words and numbers for people in a drill postmortem: durations, offsets, one-line summaries
of faults, events and free-form journal values, shares, probe values and tolerances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drills.journal import Event, FaultRecord
from reports.render import MISSING, is_missing, ms, num, pct, sig, usd
from router import durations


def parse_duration(value: Any) -> float | None:
    """ "2m" / "90s" / "1h30m" / 120 -> seconds, in the harness's one grammar
    (``router.durations``); None when it is not a duration."""
    if is_missing(value):
        return None
    try:
        return durations.parse_duration(value)
    except ValueError:
        return None


def human_duration(seconds: Any) -> str:
    """45 -> "45 s", 150 -> "2 min 30 s", 3900 -> "1 h 5 min"; missing -> "—"."""
    if is_missing(seconds):
        return "—"
    s = float(seconds)
    sign, s = ("-" if s < 0 else ""), abs(s)
    if s < 60:
        return f"{sign}{s:.0f} s" if s >= 1 or s == 0 else f"{sign}{s:.1f} s"
    if s < 3600:
        m, r = divmod(round(s), 60)
        return f"{sign}{m} min" + (f" {r} s" if r else "")
    h, r = divmod(round(s), 3600)
    return f"{sign}{h} h" + (f" {r // 60} min" if r // 60 else "")


def offset_label(seconds: float) -> str:
    """Seconds since drill start as "T+05:00" (or "T+1:05:00" past an hour)."""
    sign = "-" if seconds < 0 else "+"
    s = round(abs(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"T{sign}{h}:{m:02d}:{sec:02d}" if h else f"T{sign}{m:02d}:{sec:02d}"


def compact(value: Any, limit: int = 160) -> str:
    """A dict / list / scalar as one short readable line (for tables, not for parsing)."""
    if is_missing(value):
        return ""
    if isinstance(value, Mapping):
        text = ", ".join(f"{k}: {_inner(v)}" for k, v in value.items() if not is_missing(v))
    elif isinstance(value, list | tuple):
        text = ", ".join(_inner(v) for v in value)
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = sig(value)  # three significant digits: 0.0333, 4,946, not 0.03333333
    elif isinstance(value, str) and (value != value.strip() or not value):
        text = repr(value)  # a toggle value with a stray space must be visible as such
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _inner(value: Any) -> str:
    """A nested value inside a one-line summary: mappings as "k=v k=v", lists comma-joined."""
    if isinstance(value, Mapping):
        return " ".join(f"{k}={_inner(v)}" for k, v in value.items() if not is_missing(v))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inner(v) for v in value) + "]"
    return compact(value, 80)


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def number(value: Any) -> float | None:
    if is_missing(value) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


EVENT_LABELS: dict[str, str] = {
    "drill_started": "Drill started",
    "service_warmed_up": "Service warmed up (live, before the clock started)",
    "steady_state_before": "Steady state checked (before)",
    "fault_on": "Fault injected",
    "fault_off": "Fault removed",
    "first_error": "First error",
    "alert_fired": "Alert fired",
    "alert_resolved": "Alert resolved",
    "breaker_open": "Circuit breaker opened",
    "breaker_half_open": "Circuit breaker half-open (probing)",
    "breaker_closed": "Circuit breaker closed",
    "fallback": "Fallback serving",
    "toggle_changed": "Execution toggle changed",
    "spool": "Telemetry spooled locally",
    "drain": "Spool drained to the store",
    "rollback": "Rollback",
    "steady_state_after": "Steady state checked (after)",
    "drill_finished": "Drill finished",
}
EVENT_CLASS: dict[str, str] = {
    "fault_on": "ev-fault",
    "fault_off": "ev-recover",
    "first_error": "ev-fault",
    "alert_fired": "ev-alert",
    "alert_resolved": "ev-recover",
    "breaker_open": "ev-mitigate",
    "fallback": "ev-mitigate",
    "spool": "ev-mitigate",
    "rollback": "ev-mitigate",
    "drain": "ev-recover",
    "breaker_closed": "ev-recover",
}


def detail_text(event: Event) -> str:
    d = event.detail
    if isinstance(d, Mapping):
        return compact(d, 220)
    return compact(d, 220)


def alert_name(event: Event) -> str:
    d = event.detail if isinstance(event.detail, Mapping) else {}
    return str(d.get("rule") or d.get("alert") or d.get("name") or "alert")


def fault_text(f: FaultRecord) -> str:
    """One fault as a sentence fragment: "upstream_latency on tier=large (add_ms=4000)"."""
    text = f.type
    if f.target:
        text += " on " + ", ".join(f"{k}={v}" for k, v in f.target.items())
    if f.params:
        text += " (" + ", ".join(f"{k}={compact(v, 60)}" for k, v in f.params.items()) + ")"
    if f.probability is not None and f.probability < 1:
        text += f", hitting {f.probability:.0%} of calls"
    return text


def share_text(rate: float | None) -> str:
    """A share for people: "4.4 %", "< 0.1 %" for a few in many (never a bare "0.0 %")."""
    if rate is None:
        return MISSING
    return "< 0.1 %" if 0 < rate < 0.0005 else pct(rate)


def failed_text(o: Mapping[str, float | None]) -> str | None:
    """One sentence that matches what the error-rate alert measured."""
    if o["failed"] is None or o["executed"] is None:
        return None
    if not o["failed"]:
        return f"None of the {num(o['executed'])} queries sent to execution failed."
    parts = []
    if o["rejected"]:
        parts.append(f"{num(o['rejected'])} rejected with a retryable decision id")
    if o["errors"]:
        many = o["errors"] != 1
        parts.append(
            f"{num(o['errors'])} upstream {'errors or timeouts' if many else 'error or timeout'}"
        )
    text = (
        f"{num(o['failed'])} of {num(o['executed'])} queries sent to execution failed "
        f"({share_text(o['failed_rate'])}): {' and '.join(parts)}."
    )
    if o["rejected"]:
        text += " The error-rate chart and the error_rate_high alert count rejections as failures."
    return text


_RATIO_PROBES = frozenset({"decision_availability", "error_rate"})
_MS_PROBES = frozenset({"latency_p95_ms"})
_USD_PROBES = frozenset({"cost_per_query_usd"})


def probe_value(probe: str, value: Any) -> str:
    """A steady-state value for people: 0.0907 -> "9.1 %", 581.74 -> "582 ms"."""
    v = number(value)
    if v is None:
        return MISSING if is_missing(value) else compact(value, 60)
    if probe in _RATIO_PROBES:
        return pct(v)
    if probe in _MS_PROBES:
        return ms(v)
    if probe in _USD_PROBES:
        return usd(v)
    return sig(v)


def tolerance_text(probe: str, tolerance: Mapping[str, Any] | None) -> str:
    """``{"max": 0.02}`` -> "≤ 2.0 %"; ``{"min": 1.0, "max": 2}`` -> "≥ 100.0 % and ≤ ..."."""
    if not tolerance:
        return MISSING
    words = {"min": "≥", "max": "≤", "eq": "="}
    parts = [
        f"{words.get(k, k)} {probe_value(probe, v)}"
        for k, v in tolerance.items()
        if k in words or not isinstance(v, Mapping)
    ]
    return " and ".join(parts) or MISSING


def amount_text(value: float, unit: str) -> str:
    return human_duration(value) if unit == "s" else f"{value:,.4g}"
