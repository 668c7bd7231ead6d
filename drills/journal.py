"""The drill journal: what happened, as data (``/tmp/drill_journal_contract.md``, schema 1.0).

Dataclasses mirror the contract's keys one to one, so the postmortem and Failure Modes pages can
read ``journal.json`` without importing the harness. Times are ISO-8601 UTC on the drill's
virtual clock; nothing here holds query text (decision ids, models and counts only). The file
is written atomically: a crash leaves the previous journal or none, never half of one.

Keys beyond the contract (additive, same schema version): ``created_at`` (real UTC time the
journal was written), ``router`` (rule-only or hybrid, config hash), ``alerts`` (every firing),
``breakers`` (final states), ``timeline_markers`` (outage begins / mitigated / ends), ``mode``
(``virtual`` or ``live``) and, in
``metrics`` rows, the extra per-minute columns listed in ``METRIC_KEYS``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JOURNAL_KIND = "drill"
JOURNAL_SCHEMA_VERSION = "1.0"
JOURNAL_NAME = "journal.json"

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
STATUSES: tuple[str, ...] = ("completed", "failed", "aborted", "interrupted")
VERDICTS: tuple[str, ...] = ("passed", "failed", "error")

METRIC_KEYS: tuple[str, ...] = (
    "ts",
    "queries",
    "executed",
    "ok",
    "fallback",
    "rejected",
    "errors",
    "error_rate",
    "actual_latency_p95_ms",
    "cost_per_query_usd",
    "telemetry_write_failures",
    "spooled_rows",
    "upstream_calls",
    "misconfigured_toggle_count",
    # additive
    "offset_s",
    "decisions",
    "not_executed",
    "fallback_rate",
    "rejected_rate",
    "actual_latency_p95_worst_tier_ms",
    "actual_latency_p95_interactive_ms",
    "cost_usd",
    "open_breakers",
    "alerts_firing",
)


@dataclass
class ProbeResult:
    probe: str
    window: str
    tolerance: dict[str, Any]
    value: float | None
    ok: bool
    params: dict[str, Any] = field(default_factory=dict)
    at: str | None = None


@dataclass
class ProbeSummary:
    """A probe watched every virtual minute while faults were on."""

    probe: str
    ok: bool
    samples: int
    violations: int
    worst: float | None
    window: str = ""
    tolerance: dict[str, Any] = field(default_factory=dict)
    first_violation: str | None = None


@dataclass
class SteadyState:
    before: list[ProbeResult] = field(default_factory=list)
    during: list[ProbeSummary] = field(default_factory=list)
    after: list[ProbeResult] = field(default_factory=list)


@dataclass
class FaultRecord:
    type: str
    target: dict[str, str]
    params: dict[str, Any]
    start: str
    end: str | None
    probability: float
    # additive
    index: int = 0
    boundary: str = ""
    description: str = ""
    ended_by: str | None = None
    injected: int = 0


@dataclass
class Event:
    ts: str
    offset_s: float
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Traffic:
    qps: float
    seed: int
    queries: int
    source: str


@dataclass
class Impact:
    queries: int = 0
    decisions: int = 0
    executed: int = 0
    errors: int = 0
    rejected: int = 0
    fallbacks: int = 0
    extra_cost_usd: float = 0.0
    latency_p95_ms_before: float | None = None
    latency_p95_ms_during: float | None = None
    latency_p95_ms_after: float | None = None
    telemetry_rows: int = 0
    spooled_rows: int = 0
    upstream_calls: int = 0
    # additive
    not_executed: int = 0
    misconfigured_decisions: int = 0
    cost_usd: float = 0.0
    unanswered_queries: int = 0


@dataclass
class Detection:
    alert: str | None = None
    fired_at: str | None = None
    time_to_detect_s: float | None = None


@dataclass
class Mitigation:
    mitigated_at: str | None = None
    time_to_mitigate_s: float | None = None
    how: str | None = None


@dataclass
class GuaranteeResult:
    id: str
    check: str
    params: dict[str, Any]
    expected: dict[str, Any]
    expected_text: str
    actual: dict[str, Any]
    actual_text: str
    verdict: str
    weight: float
    evidence: dict[str, Any] = field(default_factory=dict)
    title: str | None = None


@dataclass
class RollbackRecord:
    type: str
    ts: str
    ok: bool
    detail: str = ""
    offset_s: float = 0.0


@dataclass
class TelemetryInfo:
    db: str
    run_id: str
    rows: int
    spool_dir: str | None = None


@dataclass
class Journal:
    run_id: str
    name: str
    title: str
    description: str
    tags: list[str]
    scenario_file: str | None
    scenario_hash: str
    started_at: str
    ended_at: str
    wall_seconds: float
    execution_mode: str | None
    traffic: Traffic
    status: str
    deviated: bool
    resilience_score: float
    steady_state: SteadyState
    faults: list[FaultRecord]
    events: list[Event]
    metrics: list[dict[str, Any]]
    impact: Impact
    detection: Detection
    mitigation: Mitigation
    guarantees: list[GuaranteeResult]
    rollbacks: list[RollbackRecord]
    telemetry: TelemetryInfo
    error: str | None = None
    kind: str = JOURNAL_KIND
    schema_version: str = JOURNAL_SCHEMA_VERSION
    # additive
    created_at: str = ""
    router: dict[str, Any] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    breakers: dict[str, str] = field(default_factory=dict)
    timeline_markers: dict[str, str | None] = field(default_factory=dict)
    mode: str = "virtual"
    """virtual: one process on a virtual clock; live: real processes over HTTP in wall time."""

    @property
    def passed(self) -> bool:
        """Every guarantee held (and the drill ran to the end)."""
        return self.status == "completed" and all(g.verdict == "passed" for g in self.guarantees)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        head = ("kind", "schema_version", "run_id")
        ordered = {k: d.pop(k) for k in head}
        ordered.update(d)
        return _json_safe(ordered)


def _json_safe(x: Any) -> Any:
    """NaN and infinities become null; numpy scalars become Python numbers."""
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
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


def journal_dir(out_root: str | Path, run_id: str) -> Path:
    return Path(out_root) / "drills" / run_id


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


def read_journal(path: str | Path) -> dict[str, Any]:
    """A journal as a dict; refuses a file of another kind or schema version."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("kind") != JOURNAL_KIND:
        raise ValueError(f"{path}: not a drill journal (kind={data.get('kind')!r})")
    if str(data.get("schema_version", "")).split(".")[0] != JOURNAL_SCHEMA_VERSION.split(".")[0]:
        raise ValueError(
            f"{path}: journal schema {data.get('schema_version')!r}; this harness reads "
            f"{JOURNAL_SCHEMA_VERSION}"
        )
    return data


def build_postmortem(journal_path: str | Path, out_root: str | Path) -> str | None:
    """The postmortem page of one drill, if ``reports.postmortem`` is installed."""
    func = _optional("reports.postmortem", "build_postmortem")
    if func is None:
        return None
    result = func(Path(journal_path), Path(out_root))
    if result is None:
        return None
    return str(getattr(result, "html", result))


def build_site(out_root: str | Path) -> list[str]:
    """The Failure Modes & Guarantees page and the site index, for the builders installed."""
    built = []
    for module_name, func_name in (
        ("reports.failure_modes", "build_failure_modes"),
        ("reports.site", "build_index"),
    ):
        func = _optional(module_name, func_name)
        if func is not None:
            result = func(Path(out_root))
            built.append(str(result) if result is not None else f"{module_name}.{func_name}")
    return built


def _optional(module_name: str, func_name: str) -> Any:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        log.info("%s is not installed yet: skipping %s", module_name, func_name)
        return None
    func = getattr(module, func_name, None)
    if func is None:
        log.info("%s has no %s yet: skipping", module_name, func_name)
    return func
