"""The outage's timeline in a drill postmortem: the OUTAGE BEGINS / MITIGATED / OUTAGE ENDS
markers, every event in order (a failed half-open probe shown with the re-open it led to), alert
firings and each breaker's story."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drills.journal import Event
from drills.journal import Journal as DrillJournal
from reports.postmortem_text import EVENT_CLASS, EVENT_LABELS, alert_name, detail_text, offset_label
from reports.render import parse_ts

VALID_TOGGLE_VALUES = ("decision-only", "execution-enabled")


@dataclass(frozen=True)
class Markers:
    """The three moments every postmortem timeline is read against (None: did not happen)."""

    begins: datetime | None
    mitigated: datetime | None
    ends: datetime | None
    mitigated_by: str | None


def toggle_invalid(j: DrillJournal) -> bool:
    return j.execution_mode is not None and j.execution_mode not in VALID_TOGGLE_VALUES


def find_markers(j: DrillJournal) -> Markers:
    """OUTAGE BEGINS / ENDS: what the drill engine recorded (``timeline_markers``), else the
    first fault_on / the last fault_off once every fault is off (else the first rollback after
    the last fault_on). A scenario whose own toggle value is invalid is misconfigured from the
    first minute: that is when it begins. MITIGATED is the journal's ``mitigation`` only: the
    engine decides it once, no report re-derives it."""
    events = sorted(j.events, key=lambda e: parse_ts(e.ts))
    ons = [parse_ts(e.ts) for e in events if e.kind == "fault_on"]
    offs = [parse_ts(e.ts) for e in events if e.kind == "fault_off"]
    rollbacks = [parse_ts(e.ts) for e in events if e.kind == "rollback"]
    begins = ons[0] if ons else (min(parse_ts(f.start) for f in j.faults) if j.faults else None)
    if begins is None and toggle_invalid(j):
        begins = parse_ts(j.started_at)

    ends = None
    if ons and offs and len(offs) >= len(ons):
        ends = offs[-1]
    elif ons:
        after = [t for t in rollbacks if t >= ons[-1]]
        ends = after[0] if after else None
    elif j.faults and all(f.end for f in j.faults):
        ends = max(parse_ts(f.end) for f in j.faults if f.end)
    elif begins is not None:
        after = [t for t in rollbacks if t >= begins]
        ends = after[0] if after else None
    recorded = j.timeline_markers
    if recorded.outage_begins:
        begins = parse_ts(recorded.outage_begins)
    if recorded.outage_ends:
        ends = parse_ts(recorded.outage_ends)
    mit = j.mitigation
    mitigated = parse_ts(mit.mitigated_at) if mit.mitigated_at else None
    return Markers(begins, mitigated, ends, mit.how if mitigated else None)


def breaker_summary(j: DrillJournal) -> list[dict[str, Any]]:
    """One line per model whose breaker moved: first opened, how many half-open probes failed
    and re-opened it, when it closed. The events themselves are listed once, in the timeline."""
    by_model: dict[str, dict[str, Any]] = {}
    for e in sorted(j.events, key=lambda e: parse_ts(e.ts)):
        if not e.kind.startswith("breaker_"):
            continue
        d = e.detail if isinstance(e.detail, Mapping) else {}
        model = str(d.get("model") or "?")
        row = by_model.setdefault(
            model,
            {
                "model": model,
                "tier": d.get("tier"),
                "opened": None,
                "reopened": 0,
                "closed": None,
                "reason": None,
            },
        )
        if e.kind == "breaker_open":
            if row["opened"] is None:
                row["opened"], row["reason"] = parse_ts(e.ts), d.get("reason")
            elif d.get("old") == "half_open":
                row["reopened"] += 1
        elif e.kind == "breaker_closed":
            row["closed"] = parse_ts(e.ts)
    final = getattr(j, "breakers", None)
    for row in by_model.values():
        state = final.get(row["model"]) if isinstance(final, Mapping) else None
        row["final"] = str(state).replace("_", "-") if state else None
    return list(by_model.values())


def alert_windows(j: DrillJournal) -> list[tuple[str, datetime, datetime | None]]:
    """(rule, fired, resolved or None) for every firing in the journal."""
    open_: dict[str, datetime] = {}
    out: list[tuple[str, datetime, datetime | None]] = []
    for e in sorted(j.events, key=lambda e: parse_ts(e.ts)):
        if e.kind == "alert_fired":
            open_.setdefault(alert_name(e), parse_ts(e.ts))
        elif e.kind == "alert_resolved":
            name = alert_name(e)
            if name in open_:
                out.append((name, open_.pop(name), parse_ts(e.ts)))
    out += [(name, start, None) for name, start in open_.items()]
    return sorted(out, key=lambda w: w[1])


def _detail(e: Event) -> Mapping[str, Any]:
    return e.detail if isinstance(e.detail, Mapping) else {}


def _failed_probes(events: Sequence[Event]) -> set[int]:
    """Indexes of ``breaker_half_open`` events whose next breaker event for the same model is
    the re-open (the probe failed): the timeline shows the pair as one row."""
    out: set[int] = set()
    for i, e in enumerate(events):
        if e.kind != "breaker_half_open":
            continue
        model = _detail(e).get("model")
        nxt = next(
            (
                k
                for k in range(i + 1, len(events))
                if events[k].kind.startswith("breaker_")
                and _detail(events[k]).get("model") == model
            ),
            None,
        )
        if (
            nxt is not None
            and events[nxt].kind == "breaker_open"
            and _detail(events[nxt]).get("old") == "half_open"
        ):
            out.add(i)
    return out


def timeline_rows(j: DrillJournal, markers: Markers) -> list[dict[str, Any]]:
    """Every event in time order, with the OUTAGE BEGINS / MITIGATED / OUTAGE ENDS markers
    placed just before the event at their instant."""
    start = parse_ts(j.started_at)
    entries: list[tuple[datetime, int, dict[str, Any]]] = []
    probing = _failed_probes(j.events)
    for i, e in enumerate(j.events):
        if i in probing:
            continue  # shown with the re-open it led to
        ts = parse_ts(e.ts)
        label = EVENT_LABELS.get(e.kind, e.kind.replace("_", " ").capitalize())
        if e.kind == "breaker_open" and _detail(e).get("old") == "half_open":
            label = "Circuit breaker re-opened (half-open probe failed)"
        entries.append(
            (
                ts,
                10 + i,
                {
                    "ts": ts,
                    "offset": offset_label(
                        e.offset_s if e.offset_s is not None else (ts - start).total_seconds()
                    ),
                    "kind": e.kind,
                    "label": label,
                    "detail": detail_text(e),
                    "cls": EVENT_CLASS.get(e.kind, ""),
                    "marker": None,
                },
            )
        )
    for order, (ts, name) in enumerate(
        (
            (markers.begins, "OUTAGE BEGINS"),
            (markers.mitigated, "MITIGATED"),
            (markers.ends, "OUTAGE ENDS"),
        )
    ):
        if ts is not None:
            entries.append(
                (
                    ts,
                    order,
                    {
                        "ts": ts,
                        "offset": offset_label((ts - start).total_seconds()),
                        "kind": "marker",
                        "label": name,
                        "detail": "",
                        "cls": "marker",
                        "marker": name,
                    },
                )
            )
    entries.sort(key=lambda x: (x[0], x[1]))
    return [row for _, _, row in entries]
