"""The drill journal: what happened in one drill, as data — one strict model, written here and
read by every report (``docs/journal.md`` is the contract, checked against this model by a test).

Both drill engines (``drills.runner`` on the virtual clock, ``live.drill`` over real processes)
assemble a ``Journal`` and write it with ``write_journal``; the report builders
(``reports.postmortem``, ``reports.failure_modes``, ``reports.site``) read it with
``parse_journal``. Every part refuses unknown keys and every key is required (``null`` where a
value may be absent), so a renamed or missing field fails validation with its path instead of
silently becoming None. Times are ISO-8601 UTC on the drill's clock; nothing here holds query
text (decision ids, models and counts only). The file is written atomically: a crash leaves the
previous journal or none, never half of one.

Schema 2.0 made the model strict; a 1.x journal (from a harness before it) is refused with a
message that says to re-run the drill.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

if TYPE_CHECKING:
    from drills.record import AlertRecord, DrillRecord

JOURNAL_KIND = "drill"
JOURNAL_SCHEMA_VERSION = "2.0"
JOURNAL_NAME = "journal.json"
DRILLS_DIR = "drills"

EVENT_KINDS: tuple[str, ...] = (
    "drill_started",
    "steady_state_before",
    "fault_on",
    "fault_off",
    "first_error",
    "alert_fired",
    "alert_resolved",
    "breaker_open",
    "breaker_half_open",
    "breaker_closed",
    "toggle_changed",
    "spool",
    "drain",
    "rollback",
    "steady_state_after",
    "drill_finished",
)
"""Event kinds the virtual engine records (the live engine adds a few of its own)."""

Status = Literal["completed", "failed", "aborted", "interrupted"]
Verdict = Literal["passed", "failed", "error"]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]
VERDICTS: tuple[str, ...] = Verdict.__args__  # type: ignore[attr-defined]


class JournalError(ValueError):
    """A file that is not a journal this harness reads (another kind, an older schema)."""


def _iso(value: str) -> str:
    datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return value


IsoTime = Annotated[str, AfterValidator(_iso)]


def json_safe(x: Any) -> Any:
    """NaN and infinities become null; numpy scalars become Python numbers."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, str | bytes):
        try:
            x = x.item()
        except (TypeError, ValueError):
            pass
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, datetime):
        return x.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(x, Path):
        return str(x)
    return x


class _Part(BaseModel):
    """Every journal part: unknown keys refused; numbers arrive JSON-safe (numpy, NaN -> null)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, data: Any) -> Any:
        return json_safe(data) if isinstance(data, dict) else data


class ProbeResult(_Part):
    """A steady-state probe measured once (before the first fault, after the drill)."""

    probe: str
    window: str
    tolerance: dict[str, Any]
    value: float | None
    ok: bool
    params: dict[str, Any]
    at: IsoTime | None


class ProbeSummary(_Part):
    """A probe watched every minute while faults were on."""

    probe: str
    ok: bool
    samples: int
    violations: int
    worst: float | None
    window: str
    tolerance: dict[str, Any]
    first_violation: IsoTime | None


class SteadyState(_Part):
    before: list[ProbeResult]
    during: list[ProbeSummary]
    after: list[ProbeResult]

    @classmethod
    def empty(cls) -> SteadyState:
        return cls(before=[], during=[], after=[])


class FaultRecord(_Part):
    type: str
    target: dict[str, str]
    params: dict[str, Any]
    start: IsoTime
    end: IsoTime | None
    probability: float
    index: int
    boundary: str
    description: str
    ended_by: str | None
    injected: int


class Event(_Part):
    ts: IsoTime
    offset_s: float
    kind: str
    detail: dict[str, Any]


class Traffic(_Part):
    qps: float
    seed: int
    queries: int
    source: str


class MetricRow(_Part):
    """One virtual minute. ``ts`` and ``offset_s`` are always there; a metric the engine could
    not compute for that minute is null, a metric under another name is refused."""

    ts: IsoTime
    offset_s: float
    queries: int | None = None
    decisions: int | None = None
    executed: int | None = None
    not_executed: int | None = None
    ok: int | None = None
    fallback: int | None = None
    rejected: int | None = None
    errors: int | None = None
    error_rate: float | None = None
    fallback_rate: float | None = None
    rejected_rate: float | None = None
    actual_latency_p95_ms: float | None = None
    actual_latency_p95_worst_tier_ms: float | None = None
    actual_latency_p95_interactive_ms: float | None = None
    cost_per_query_usd: float | None = None
    cost_usd: float | None = None
    telemetry_write_failures: int | None = None
    spooled_rows: int | None = None
    upstream_calls: int | None = None
    misconfigured_toggle_count: int | None = None
    open_breakers: int | None = None
    alerts_firing: list[str] | None = None


METRIC_KEYS: tuple[str, ...] = tuple(MetricRow.model_fields)


class Impact(_Part):
    queries: int
    decisions: int
    executed: int
    errors: int
    rejected: int
    fallbacks: int
    extra_cost_usd: float
    latency_p95_ms_before: float | None
    latency_p95_ms_during: float | None
    latency_p95_ms_after: float | None
    telemetry_rows: int
    spooled_rows: int
    upstream_calls: int
    not_executed: int
    misconfigured_decisions: int
    cost_usd: float
    unanswered_queries: int


class Detection(_Part):
    """The first alert after the first fault (null: none fired)."""

    alert: str | None
    fired_at: IsoTime | None
    time_to_detect_s: float | None

    @classmethod
    def none(cls) -> Detection:
        return cls(alert=None, fired_at=None, time_to_detect_s=None)


class Mitigation(_Part):
    """When and how the fault was contained — the one place "mitigated" is recorded (null: it
    was not). Reports read it; none re-derives it."""

    mitigated_at: IsoTime | None
    time_to_mitigate_s: float | None
    how: str | None

    @classmethod
    def none(cls) -> Mitigation:
        return cls(mitigated_at=None, time_to_mitigate_s=None, how=None)


class TimelineMarkers(_Part):
    """When the outage began (first fault on) and ended (last fault off); null: no fault."""

    outage_begins: IsoTime | None
    outage_ends: IsoTime | None


class GuaranteeResult(_Part):
    id: str
    check: str
    params: dict[str, Any]
    expected: dict[str, Any]
    expected_text: str
    actual: dict[str, Any]
    actual_text: str
    verdict: Verdict
    weight: float
    evidence: dict[str, Any]
    title: str | None


class RollbackRecord(_Part):
    type: str
    ts: IsoTime
    ok: bool
    detail: str
    offset_s: float


class TelemetryInfo(_Part):
    db: str
    run_id: str
    rows: int
    spool_dir: str | None


class AlertFiring(_Part):
    """One alert firing. The virtual engine records severity, resolution, peak and condition;
    the live engine (Prometheus or the harness evaluator) the firing and its time."""

    rule: str
    fired_at: IsoTime
    resolved_at: IsoTime | None
    severity: str | None
    peak_value: float | None
    condition: str | None


def _run_id(value: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", value):
        raise ValueError(
            "must be usable as a folder name: letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return value


class Journal(_Part):
    kind: Literal["drill"] = JOURNAL_KIND
    schema_version: Literal["2.0"] = JOURNAL_SCHEMA_VERSION
    run_id: Annotated[str, AfterValidator(_run_id)]
    mode: Literal["virtual", "live"]
    """virtual: one process on a virtual clock; live: real processes over HTTP in wall time."""
    # the scenario
    name: str
    title: str
    description: str
    tags: list[str]
    failure_mode: str | None
    scenario_file: str | None
    scenario_hash: str
    execution_mode: str | None
    # the run
    created_at: IsoTime | None
    """Real UTC time the journal was written (``started_at`` is on the drill's clock)."""
    started_at: IsoTime
    ended_at: IsoTime
    wall_seconds: float
    traffic: Traffic
    router: dict[str, Any]
    status: Status
    error: str | None
    deviated: bool
    resilience_score: float
    steady_state: SteadyState
    faults: list[FaultRecord]
    events: list[Event]
    metrics: list[MetricRow]
    impact: Impact
    detection: Detection
    mitigation: Mitigation
    timeline_markers: TimelineMarkers
    alerts: list[AlertFiring]
    breakers: dict[str, str]
    guarantees: list[GuaranteeResult]
    rollbacks: list[RollbackRecord]
    telemetry: TelemetryInfo

    @property
    def passed(self) -> bool:
        """Every guarantee held (and the drill ran to the end)."""
        return self.status == "completed" and all(g.verdict == "passed" for g in self.guarantees)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(self.model_dump(mode="json"))


def journal_dir(out_root: str | Path, run_id: str) -> Path:
    return Path(out_root) / DRILLS_DIR / run_id


def write_journal(journal: Journal, out_root: str | Path) -> Path:
    """Write ``<out_root>/drills/<run_id>/journal.json`` atomically; returns its path."""
    directory = journal_dir(out_root, journal.run_id)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / JOURNAL_NAME
    partial = directory / (JOURNAL_NAME + ".partial")
    if not journal.created_at:
        journal.created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = json.dumps(journal.to_dict(), indent=2, allow_nan=False, ensure_ascii=False)
    try:
        with open(partial, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def check_header(data: Any) -> None:
    """A JSON object of kind ``drill`` and this schema version, else ``JournalError`` saying
    what it is instead (an older journal: re-run the drill)."""
    if not isinstance(data, dict):
        raise JournalError(f"expected a JSON object at the top, got {type(data).__name__}")
    if data.get("kind") != JOURNAL_KIND:
        raise JournalError(f"not a drill journal (kind={data.get('kind')!r})")
    version = data.get("schema_version")
    if version != JOURNAL_SCHEMA_VERSION:
        raise JournalError(
            f"journal schema {version!r}; this harness reads {JOURNAL_SCHEMA_VERSION} only"
            + (
                " (written by an earlier harness: re-run the drill to get a current journal)"
                if str(version).startswith("1.")
                else ""
            )
        )


def parse_journal(data: Any) -> Journal:
    """Check the header, then validate every key (pydantic ``ValidationError`` with key paths)."""
    check_header(data)
    return Journal.model_validate(data)


def read_journal(path: str | Path) -> dict[str, Any]:
    """A journal file, validated, as a plain dict."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    try:
        return parse_journal(data).to_dict()
    except JournalError as exc:
        raise JournalError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------- journal assembly
# What both drill engines derive from a ``drills.probes.DrillRecord`` once the drill is over.


def detection(rec: DrillRecord, guarantees: Sequence[Any] = ()) -> Detection:
    """The first alert fired at or after the first fault — first a rule that a detection
    guarantee (``alert_fired``, ``detected_before_sla``) of the scenario names."""
    if not rec.faults:
        return Detection.none()
    start = rec.faults[0].start_s
    fired = [a for a in rec.alerts if a.kind == "fired" and a.offset_s >= start]
    preferred = [
        g.params.get("rule")
        for g in guarantees
        if g.check in ("alert_fired", "detected_before_sla")
    ]
    pick = next((a for r in preferred for a in fired if a.rule == r), None)
    if pick is None and fired:
        pick = fired[0]
    if pick is None:
        return Detection.none()
    return Detection(
        alert=pick.rule,
        fired_at=rec.ts(pick.offset_s),
        time_to_detect_s=round(pick.offset_s - start, 3),
    )


def mitigation(rec: DrillRecord, events: Sequence[Event], impact: Impact) -> Mitigation:
    """The first containment after the first fault: a breaker opening, telemetry spooled, an
    invalid toggle failing closed; else the fault's own end (no automatic mitigation)."""
    from telemetry.metric_registry import MISCONFIGURED_CODE, has_reason_code

    if not rec.faults:
        return Mitigation.none()
    start = rec.faults[0].start_s
    candidates: list[tuple[float, str]] = []
    opened = next((b for b in rec.breakers if b.new == "open" and b.offset_s >= start), None)
    if opened is not None:
        how = f"circuit breaker opened on {opened.model}"
        if impact.fallbacks:
            how += "; traffic served by a same-tier fallback"
        if impact.rejected:
            how += "; requests with no healthy model rejected with a retryable decision_id"
        candidates.append((opened.offset_s, how))
    spool = next((e for e in events if e.kind == "spool" and e.offset_s >= start), None)
    if spool is not None:
        candidates.append(
            (spool.offset_s, "telemetry kept in the local spool and drained after recovery")
        )
    df = rec.frame()
    if len(df):
        coded = df[has_reason_code(df["reason_codes"], MISCONFIGURED_CODE)]
        coded = coded[coded["offset_s"] >= start]
        if len(coded):
            candidates.append(
                (
                    float(coded["offset_s"].min()),
                    "invalid toggle failed closed to decision-only: nothing executed",
                )
            )
    if not candidates:
        ends = [(rec.end_of(w), w.ended_by or "fault ended") for w in rec.faults]
        t, by = max(ends)
        candidates.append((t, f"no automatic mitigation; fault ended ({by})"))
    t, how = min(candidates)
    return Mitigation(mitigated_at=rec.ts(t), time_to_mitigate_s=round(t - start, 3), how=how)


def outage_markers(rec: DrillRecord) -> TimelineMarkers:
    """First fault on, last fault off (a fault still on at the end ends with the drill)."""
    first = rec.faults[0].start_s if rec.faults else None
    last_end = max((rec.end_of(w) for w in rec.faults), default=None)
    return TimelineMarkers(
        outage_begins=None if first is None else rec.ts(first),
        outage_ends=None if last_end is None else rec.ts(last_end),
    )


def alert_firings(alerts: Sequence[AlertRecord], rec: DrillRecord) -> list[AlertFiring]:
    """Fired/resolved alert events paired into firings (the live engine's alert list)."""
    open_: dict[str, AlertRecord] = {}
    out: list[AlertFiring] = []

    def close(a: AlertRecord, resolved: float | None) -> None:
        out.append(
            AlertFiring(
                rule=a.rule,
                fired_at=rec.ts(a.offset_s),
                resolved_at=None if resolved is None else rec.ts(resolved),
                severity=a.severity or None,
                peak_value=a.value,
                condition=rec.rules.get(a.rule),
            )
        )

    for a in sorted(alerts, key=lambda a: a.offset_s):
        if a.kind == "fired":
            open_.setdefault(a.rule, a)
        elif a.rule in open_:
            close(open_.pop(a.rule), a.offset_s)
    for a in open_.values():
        close(a, None)
    return sorted(out, key=lambda f: f.fired_at)


class EventLog:
    """The drill's events as they are recorded, stamped on the drill's clock."""

    def __init__(self, iso: Callable[[float], str], now: Callable[[], float]) -> None:
        self.iso = iso
        self.now = now
        self.items: list[Event] = []

    def add(self, kind: str, offset_s: float | None = None, **detail: Any) -> None:
        off = self.now() if offset_s is None else offset_s
        self.items.append(Event(ts=self.iso(off), offset_s=round(off, 3), kind=kind, detail=detail))

    def in_order(self) -> list[Event]:
        """By time (events are recorded as they are noticed, some after the fact)."""
        return sorted(self.items, key=lambda e: e.offset_s)


def detail_of(obj: Any, *names: str) -> dict[str, Any]:
    """``{name: obj.name}``: an event's detail read off the object it reports."""
    return {n: getattr(obj, n) for n in names}


def impact(rec: DrillRecord, *, queries: int, upstream_calls: int) -> Impact:
    """What the drill did to the queries, read from the record once the drill is over."""
    import pandas as pd

    from drills.checks import extra_cost
    from drills.probes import p95
    from telemetry.metric_registry import CALLED_OUTCOMES, MISCONFIGURED_CODE, has_reason_code

    df = rec.frame()
    outcomes = df["outcome"].value_counts() if len(df) else pd.Series(dtype=int)
    before_w, after_w = rec.before_window, rec.after_window

    def lat(frame: pd.DataFrame) -> float | None:
        called = frame[frame["outcome"].isin(CALLED_OUTCOMES)] if len(frame) else frame
        return p95(called["actual_latency_ms"]) if len(called) else None

    extra, _, _ = extra_cost(rec) if rec.faults else (0.0, None, None)
    return Impact(
        queries=queries,
        decisions=len(df),
        executed=int(len(df) - outcomes.get("not_executed", 0)),
        errors=int(outcomes.get("error", 0) + outcomes.get("timeout", 0)),
        rejected=int(outcomes.get("rejected", 0)),
        fallbacks=int(outcomes.get("fallback", 0)),
        extra_cost_usd=round(extra, 6),
        latency_p95_ms_before=lat(rec.frame(*before_w)) if before_w else None,
        latency_p95_ms_during=lat(rec.during(rec.faults)) if rec.faults else None,
        latency_p95_ms_after=lat(rec.frame(*after_w)) if after_w else None,
        telemetry_rows=rec.store.telemetry_rows,
        spooled_rows=rec.store.spooled_rows_total,
        upstream_calls=upstream_calls,
        not_executed=int(outcomes.get("not_executed", 0)),
        misconfigured_decisions=int(has_reason_code(df["reason_codes"], MISCONFIGURED_CODE).sum())
        if len(df)
        else 0,
        cost_usd=round(float(pd.to_numeric(df["actual_cost_usd"], errors="coerce").sum()), 6)
        if len(df)
        else 0.0,
        unanswered_queries=max(0, rec.queries() - len(df)),
    )


def engine_firings(firings: Iterable[Any], rec: DrillRecord) -> list[AlertFiring]:
    """The alert engine's firings (``telemetry.alerts`` ``Firing``) as journal entries."""
    from drills.clock import iso

    return [
        AlertFiring(
            rule=f.rule,
            severity=f.severity,
            fired_at=iso(f.fired_at.to_pydatetime()),
            resolved_at=None if f.resolved_at is None else iso(f.resolved_at.to_pydatetime()),
            peak_value=f.peak_value,
            condition=rec.rules.get(f.rule),
        )
        for f in firings
    ]
