"""The report site's front page: every pilot run and drill run found under the site root.

The index is rebuilt from the files on disk (``<root>/*/evidence.json``,
``<root>/drills/*/journal.json``), so it cannot drift from what was actually produced. A file
that cannot be read is listed as "unreadable" with the reason instead of breaking the page:
one bad run must not hide the evidence of all the others.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reports.pilot import EVIDENCE_JSON, REPORT_HTML
from reports.render import parse_ts, render_to

INDEX_HTML = "index.html"
DRILLS_DIR = "drills"
JOURNAL_JSON = "journal.json"
POSTMORTEM_HTML = "postmortem.html"
FAILURE_MODES_HTML = "failure-modes.html"

HELD_VERDICTS = frozenset({"pass", "passed", "held", "ok", "met", "true"})


@dataclass
class PilotEntry:
    folder: str
    run_id: str | None = None
    created_at: str | None = None
    window: str | None = None
    verdict: str | None = None
    criteria: str | None = None
    link: str | None = None
    error: str | None = None
    sort_key: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))


@dataclass
class DrillEntry:
    folder: str
    name: str | None = None
    title: str | None = None
    run_id: str | None = None
    status: str | None = None
    started_at: str | None = None
    created_at: str | None = None
    score: Any = None
    guarantees: str | None = None
    guarantees_ok: bool | None = None
    link: str | None = None
    error: str | None = None
    sort_key: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))


def _mtime(path: Path) -> datetime:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except OSError:
        return datetime.min.replace(tzinfo=UTC)


def _read_json(path: Path) -> Mapping[str, Any]:
    """The JSON object in ``path``; ValueError with a short reason otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    return data


def _require(data: Mapping[str, Any], *keys: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")


def _pilot_entry(path: Path) -> PilotEntry:
    folder = path.parent.name
    entry = PilotEntry(folder=folder, sort_key=_mtime(path))
    try:
        data = _read_json(path)
        _require(data, "run_id", "created_at", "verdict", "window")
        window = data["window"]
        if not isinstance(window, Mapping) or not {"start", "end"} <= set(window):
            raise ValueError("window must have start and end")
        entry.sort_key = parse_ts(data["created_at"])
        entry.run_id = str(data["run_id"])
        entry.created_at = str(data["created_at"])
        entry.window = f"{str(window['start'])[:10]} – {str(window['end'])[:10]}"
        entry.verdict = str(data["verdict"])
        if entry.verdict not in ("go", "no-go", "inconclusive"):
            raise ValueError(
                f"verdict must be 'go', 'no-go' or 'inconclusive', found {entry.verdict!r}"
            )
        criteria = data.get("criteria")
        if isinstance(criteria, list) and criteria:
            statuses = [c.get("status") if isinstance(c, Mapping) else None for c in criteria]
            passed = statuses.count("pass")
            applicable = sum(st not in (None, "not_applicable") for st in statuses)
            entry.criteria = f"{passed} / {applicable}"
    except (ValueError, TypeError) as exc:
        entry.error = str(exc)
    report = path.parent / REPORT_HTML
    if report.is_file():
        entry.link = f"{folder}/{REPORT_HTML}"
    return entry


def _drill_entry(path: Path) -> DrillEntry:
    folder = path.parent.name
    entry = DrillEntry(folder=folder, sort_key=_mtime(path))
    try:
        data = _read_json(path)
        _require(data, "name", "status", "started_at")
        # started_at is on the drill's virtual clock (the same for every run by default); the
        # real time the journal was written orders runs.
        entry.sort_key = parse_ts(data.get("created_at") or data["started_at"])
        entry.name = str(data["name"])
        entry.title = str(data["title"]) if data.get("title") else None
        entry.run_id = str(data["run_id"]) if data.get("run_id") else None
        entry.status = str(data["status"])
        entry.started_at = str(data["started_at"])
        entry.created_at = str(data["created_at"]) if data.get("created_at") else None
        entry.score = data.get("resilience_score")
        guarantees = data.get("guarantees")
        if isinstance(guarantees, list):
            verdicts = [
                str(g.get("verdict", "?")).lower() if isinstance(g, Mapping) else "?"
                for g in guarantees
            ]
            held = sum(v in HELD_VERDICTS for v in verdicts)
            other = Counter(v for v in verdicts if v not in HELD_VERDICTS)
            parts = [f"{held} / {len(verdicts)} held"]
            parts += [f"{n} {v}" for v, n in sorted(other.items())]
            entry.guarantees = ", ".join(parts) if verdicts else "none declared"
            entry.guarantees_ok = held == len(verdicts)
    except (ValueError, TypeError) as exc:
        entry.error = str(exc)
    if (path.parent / POSTMORTEM_HTML).is_file():
        entry.link = f"{DRILLS_DIR}/{folder}/{POSTMORTEM_HTML}"
    return entry


def collect_pilots(out_root: Path) -> list[PilotEntry]:
    """Every ``<root>/*/evidence.json``, newest first (unreadable ones by file time)."""
    paths = sorted(Path(out_root).glob(f"*/{EVIDENCE_JSON}"))
    entries = [_pilot_entry(p) for p in paths]
    return sorted(entries, key=lambda e: e.sort_key, reverse=True)


def collect_drills(out_root: Path) -> list[DrillEntry]:
    """Every ``<root>/drills/*/journal.json``, newest first (unreadable ones by file time)."""
    paths = sorted((Path(out_root) / DRILLS_DIR).glob(f"*/{JOURNAL_JSON}"))
    entries = [_drill_entry(p) for p in paths]
    return sorted(entries, key=lambda e: e.sort_key, reverse=True)


def build_index(out_root: Path, *, generated_at: datetime | None = None) -> Path:
    """Write ``<out_root>/index.html`` listing pilot runs, drill runs and the Failure Modes page."""
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    generated = (generated_at or datetime.now(UTC)).astimezone(UTC)
    path = out_root / INDEX_HTML
    return render_to(
        path,
        "index.html.j2",
        page_title="AMAIMA pilot & drill reports",
        generated_at=generated.isoformat(timespec="seconds"),
        root=".",
        pilots=collect_pilots(out_root),
        drills=collect_drills(out_root),
        failure_modes=FAILURE_MODES_HTML if (out_root / FAILURE_MODES_HTML).is_file() else None,
    )
