"""The "Failure Modes & Guarantees" page: one row per failure mode, evidence from drills only.

What is promised (detection, automatic response, guarantee, the operator's 2 a.m. steps) is data
in ``reports/failure_modes.yaml``; whether it held is read ONLY from drill journals under
``<out_root>/drills/*/journal.json``. Each failure mode shows its latest drill (by the real time
the journal was recorded, not the drill's virtual clock); a mode never drilled says "no
evidence", and a latest drill that failed is shown as a failure, however old the last pass. A
journal that cannot be read is listed with the reason — never silently skipped, never a crash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from drills.journal import DRILLS_DIR
from drills.journal import JOURNAL_NAME as JOURNAL_JSON
from drills.journal import Journal as DrillJournal
from reports.postmortem import (
    POSTMORTEM_HTML,
    DrillJournalError,
    cost_change,
    drill_verdict,
    human_duration,
    load_journal,
    rows_lost,
    tier_p95_during,
)
from reports.render import is_missing, ms, num, parse_ts, pct, render_to, usd

FAILURE_MODES_HTML = "failure-modes.html"
FAILURE_MODES_MD = "failure-modes.md"
DEFAULT_CATALOGUE = Path(__file__).with_name("failure_modes.yaml")

_KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class CatalogueError(ValueError):
    """The failure-mode catalogue is unreadable; the message names the file, entry and field."""


# ------------------------------------------------------------------------------- catalogue


def _kebab(value: str) -> str:
    if not _KEBAB.match(value):
        raise ValueError("must be lower-kebab-case, e.g. 'model-failure'")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Strict):
    do: str
    run: str | None = None


def _measure_path(value: str) -> str:
    if value.startswith("derived.") and value.removeprefix("derived.") not in DERIVED:
        raise ValueError(f"unknown derived measure; valid: derived.{', derived.'.join(DERIVED)}")
    return value


class Measure(_Strict):
    label: str
    path: Annotated[str, AfterValidator(_measure_path)]
    unit: Literal["s", "ms", "count", "usd", "pct", "text"] = "count"


class DetectionSpec(_Strict):
    alerts: list[str] = Field(default_factory=list)
    text: str


class FailureMode(_Strict):
    id: Annotated[str, AfterValidator(_kebab)]
    title: str
    scenarios: list[str] = Field(min_length=1)
    detection: DetectionSpec
    automatic_response: str
    guarantee: str
    evidence: list[Measure] = Field(default_factory=list)
    operator: list[Step] = Field(min_length=1)


class Catalogue(_Strict):
    failure_modes: list[FailureMode] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Catalogue:
        ids = [m.id for m in self.failure_modes]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate failure mode id(s): {', '.join(dup)}")
        owner: dict[str, str] = {}
        for m in self.failure_modes:
            for s in m.scenarios:
                if s in owner:
                    raise ValueError(
                        f"scenario {s!r} is listed under both {owner[s]!r} and {m.id!r}: "
                        "each drill must count as evidence for one failure mode"
                    )
                owner[s] = m.id
        return self

    def mode_of(self, scenario: str, declared: str | None = None) -> str | None:
        """The failure mode a drill of ``scenario`` is evidence for: the mode that lists the
        scenario, else the one its scenario file declared (``failure_mode``) if it exists."""
        for m in self.failure_modes:
            if scenario in m.scenarios:
                return m.id
        return declared if any(m.id == declared for m in self.failure_modes) else None


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Read and validate the catalogue (default: reports/failure_modes.yaml)."""
    import yaml

    path = Path(path) if path is not None else DEFAULT_CATALOGUE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"failure-mode catalogue {path}: file not found") from None
    except yaml.YAMLError as exc:
        raise CatalogueError(f"failure-mode catalogue {path}: not valid YAML ({exc})") from None
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        lines = [f"failure-mode catalogue {path} is invalid:"]
        modes = data.get("failure_modes") if isinstance(data, Mapping) else None
        for err in exc.errors()[:20]:
            loc = list(err["loc"])
            where = ".".join(str(p) for p in loc) or "(document)"
            if len(loc) >= 2 and loc[0] == "failure_modes" and isinstance(loc[1], int) and modes:
                entry = modes[loc[1]] if loc[1] < len(modes) else None
                name = entry.get("id") if isinstance(entry, Mapping) else None
                rest = ".".join(str(p) for p in loc[2:]) or "(entry)"
                where = f"entry {loc[1]} ({name!r}) field {rest}"
            lines.append(f"  - {where}: {err['msg']}")
        raise CatalogueError("\n".join(lines)) from None


def failure_mode_problem(scenario: str, declared: str, catalogue: Path | None = None) -> str | None:
    """Why a scenario may not declare ``failure_mode: declared`` (None when it may): the id must
    be in the catalogue, and a scenario the catalogue lists must declare the mode listing it (a
    drill is evidence for one failure mode)."""
    try:
        cat = load_catalogue(catalogue)
    except CatalogueError as exc:
        return str(exc)
    ids = [m.id for m in cat.failure_modes]
    where = str(catalogue) if catalogue else "reports/failure_modes.yaml"
    if declared not in ids:
        return f"unknown failure mode {declared!r}; failure modes in {where}: {', '.join(ids)}"
    listed = cat.mode_of(scenario)
    if listed not in (None, declared):
        return (
            f"{where} lists scenario {scenario!r} under {listed!r}, not {declared!r}: a drill is "
            "evidence for one failure mode"
        )
    return None


# ---------------------------------------------------------------------------------- journals


@dataclass(frozen=True)
class DrillRecord:
    """One readable journal on disk, with the real time it was recorded."""

    path: Path
    journal: DrillJournal
    recorded: datetime
    verdict: str


@dataclass(frozen=True)
class Unreadable:
    path: Path
    error: str


@dataclass
class DrillScan:
    records: list[DrillRecord] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


def _recorded_at(j: DrillJournal, path: Path) -> datetime:
    """Real time of the run: the journal's ``created_at`` (real UTC, written by the drill
    engine) when present, else the file's mtime. Never ``started_at``: that is the drill's
    virtual clock, the same for every run by default."""
    if j.created_at:
        return parse_ts(j.created_at)
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def scan_drills(out_root: Path) -> DrillScan:
    """Every ``<out_root>/drills/*/journal.json``: readable ones as records, the rest with the
    reason. A journal copied under a second folder counts once (its own run folder wins)."""
    scan = DrillScan()
    by_run: dict[str, DrillRecord] = {}
    for path in sorted((Path(out_root) / DRILLS_DIR).glob(f"*/{JOURNAL_JSON}")):
        try:
            j, _ = load_journal(path)
        except DrillJournalError as exc:
            scan.unreadable.append(Unreadable(path, str(exc)))
            continue
        rec = DrillRecord(path, j, _recorded_at(j, path), drill_verdict(j))
        seen = by_run.get(j.run_id)
        if seen is None or path.parent.name == j.run_id:
            by_run[j.run_id] = rec
    scan.records = sorted(by_run.values(), key=lambda r: (r.recorded, r.journal.started_at))
    return scan


# ---------------------------------------------------------------------------------- evidence


def _in_fault_window(j: DrillJournal) -> list[Any]:
    """Metric rows (minute buckets) that start while any fault is active."""
    spans = [
        (parse_ts(f.start), parse_ts(f.end) if f.end else parse_ts(j.ended_at or f.start))
        for f in j.faults
    ]
    return [m for m in j.metrics if any(a <= parse_ts(m.ts) < b for a, b in spans)]


def _misconfigured(j: DrillJournal) -> list[Any]:
    """Metric rows (minute buckets) in which decisions were made under an invalid toggle."""
    return [m for m in j.metrics if (m.misconfigured_toggle_count or 0) > 0]


def _sum(rows: list[Any], key: str) -> float | None:
    values = [getattr(r, key) for r in rows if not is_missing(getattr(r, key))]
    return float(sum(values)) if values else None


DERIVED: dict[str, Any] = {
    "rows_lost": rows_lost,
    "upstream_calls_during_faults": lambda j: _sum(_in_fault_window(j), "upstream_calls"),
    "queries_during_faults": lambda j: _sum(_in_fault_window(j), "queries"),
    "errors_during_faults": lambda j: _sum(_in_fault_window(j), "errors"),
    "upstream_calls_while_misconfigured": lambda j: _sum(_misconfigured(j), "upstream_calls"),
    "decisions_while_misconfigured": lambda j: _sum(
        _misconfigured(j), "misconfigured_toggle_count"
    ),
    # a tier fault hardly moves the all-tier p95 (833 ms for a +4 s spike): the faulted tier's
    "tier_p95_during": tier_p95_during,
    "cost_change": lambda j: (
        None
        if (c := cost_change(j)) is None
        else f"{c['signed']} against the pre-fault cost per query"
    ),
}
"""Measures computed from the journal's metrics (``derived.<name>`` in the catalogue)."""


def _lookup(j: DrillJournal, path: str) -> Any:
    if path.startswith("derived."):
        return DERIVED[path.removeprefix("derived.")](j)
    if path.startswith("guarantee."):
        check = path.removeprefix("guarantee.")
        g = next((g for g in j.guarantees if g.check == check or g.id == check), None)
        if g is None:
            return None
        return (g.actual_text or str(g.actual)) + (
            "" if g.verdict == "passed" else f" ({g.verdict})"
        )
    value: Any = j
    for part in path.split("."):
        if value is None:
            return None
        if isinstance(value, Mapping):
            value = value.get(part)
        else:
            value = getattr(value, part, None)
    return value


def _format(value: Any, unit: str) -> str:
    if is_missing(value):
        return "—"
    if unit == "s":
        return human_duration(value)
    if unit == "ms":
        return ms(value)
    if unit == "usd":
        return usd(value)
    if unit == "pct":
        return pct(value)
    if unit == "count":
        return num(value)
    return str(value)


def _compact_error(j: DrillJournal) -> str:
    return "" if j.error is None else str(j.error)


def _why_failed(j: DrillJournal) -> list[dict[str, str]]:
    out = []
    if j.status != "completed":
        out.append(
            {
                "id": f"drill {j.status}",
                "expected": "the drill runs to completion",
                "actual": _compact_error(j) or f"status {j.status}",
            }
        )
    if j.deviated:
        out.append(
            {
                "id": "steady state",
                "expected": "steady state restored after the drill",
                "actual": "not restored",
            }
        )
    for g in j.guarantees:
        if g.verdict != "passed":
            out.append(
                {
                    "id": g.id,
                    "expected": g.expected_text or str(g.expected),
                    "actual": (g.actual_text or str(g.actual))
                    + (" (check could not be evaluated)" if g.verdict == "error" else ""),
                }
            )
    return out


def evidence_row(mode: FailureMode, runs: list[DrillRecord], out_root: Path) -> dict[str, Any]:
    """The evidence cell for one failure mode: its latest drill, or "no evidence"."""
    if not runs:
        return {"drilled": False, "runs": 0}
    latest = runs[-1]
    j = latest.journal
    postmortem = Path(out_root) / DRILLS_DIR / j.run_id / POSTMORTEM_HTML
    return {
        "drilled": True,
        "runs": len(runs),
        "run_id": j.run_id,
        "scenario": j.name,
        "date": j.started_at,
        "recorded": latest.recorded,
        "status": j.status,
        "verdict": latest.verdict,
        "passed": sum(1 for g in j.guarantees if g.verdict == "passed"),
        "total": len(j.guarantees),
        "failures": _why_failed(j) if latest.verdict != "passed" else [],
        "measures": [
            {"label": m.label, "value": _format(_lookup(j, m.path), m.unit)} for m in mode.evidence
        ],
        "postmortem": f"{DRILLS_DIR}/{j.run_id}/{POSTMORTEM_HTML}" if postmortem.exists() else None,
        "journal": latest.path.relative_to(out_root).as_posix(),
        "history": [
            {"run_id": r.journal.run_id, "verdict": r.verdict, "recorded": r.recorded}
            for r in reversed(runs[:-1])
        ][:5],
    }


# ----------------------------------------------------------------------------------- builder


def build_failure_modes(
    out_root: Path,
    catalogue: Path | None = None,
    *,
    build_missing_postmortems: bool = True,
    generated_at: datetime | None = None,
) -> Path:
    """Write ``<out_root>/failure-modes.html`` (and ``failure-modes.md``); returns the HTML path.

    With ``build_missing_postmortems`` a latest drill without a postmortem gets one, so every
    evidence cell links to the full account.
    """
    from reports.postmortem import build_postmortem

    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    cat = load_catalogue(catalogue)
    scan = scan_drills(out_root)
    runs: dict[str, list[DrillRecord]] = {m.id: [] for m in cat.failure_modes}
    uncatalogued: list[DrillRecord] = []
    for rec in scan.records:
        mode_id = cat.mode_of(rec.journal.name, rec.journal.failure_mode)
        (runs[mode_id] if mode_id else uncatalogued).append(rec)
    problems = [
        {"path": u.path.relative_to(out_root).as_posix(), "error": u.error} for u in scan.unreadable
    ]

    if build_missing_postmortems:
        for recs in runs.values():
            if not recs:
                continue
            latest = recs[-1]
            target = out_root / DRILLS_DIR / latest.journal.run_id / POSTMORTEM_HTML
            if not target.exists():
                try:
                    build_postmortem(latest.path, out_root)
                except (DrillJournalError, OSError) as exc:
                    problems.append(
                        {
                            "path": latest.path.relative_to(out_root).as_posix(),
                            "error": f"postmortem could not be built: {exc}",
                        }
                    )

    rows = [
        {
            "mode": m,
            "evidence": evidence_row(m, runs[m.id], out_root),
            # custom scenarios that declared this mode (failure_mode:) and have runs
            "custom": sorted({r.journal.name for r in runs[m.id]} - set(m.scenarios)),
        }
        for m in cat.failure_modes
    ]
    drilled = [r for r in rows if r["evidence"]["drilled"]]
    failing = [r for r in drilled if r["evidence"]["verdict"] != "passed"]
    generated = (generated_at or datetime.now(UTC)).astimezone(UTC)
    ctx = {
        "rows": rows,
        "counts": {
            "modes": len(rows),
            "drilled": len(drilled),
            "passing": len(drilled) - len(failing),
            "failing": len(failing),
            "undrilled": len(rows) - len(drilled),
        },
        "failing": [r["mode"].title for r in failing],
        "uncatalogued": [
            {
                "run_id": r.journal.run_id,
                "name": r.journal.name,
                "verdict": r.verdict,
                "path": r.path.relative_to(out_root).as_posix(),
            }
            for r in uncatalogued
        ],
        "problems": problems,
        "generated_at": generated.isoformat(timespec="seconds"),
        "root": ".",
        "catalogue_name": (Path(catalogue) if catalogue else DEFAULT_CATALOGUE).name,
    }
    html_path = out_root / FAILURE_MODES_HTML
    render_to(html_path, "failure_modes.html.j2", **ctx)
    render_to(out_root / FAILURE_MODES_MD, "failure_modes.md.j2", **ctx)
    return html_path
