"""The report site's front page: an overall status, pilot series with their week-over-week
trends and drills grouped by scenario with their history, all found under the site root.

The index is rebuilt from the files on disk (``<root>/*/evidence.json``,
``<root>/drills/*/journal.json``), so it cannot drift from what was actually produced. A file
that cannot be read is listed as "unreadable" with the reason instead of breaking the page:
one bad run must not hide the evidence of all the others. ``prune`` keeps the newest runs of
each series / scenario and never touches anything outside the site root.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from markupsafe import Markup, escape

from drills.journal import DRILLS_DIR
from drills.journal import JOURNAL_NAME as JOURNAL_JSON
from reports.pilot import EVIDENCE_JSON, REPORT_HTML
from reports.postmortem import POSTMORTEM_HTML
from reports.render import parse_ts, pct, render_to, sig

Entry = TypeVar("Entry", "PilotEntry", "DrillEntry")

INDEX_HTML = "index.html"
FAILURE_MODES_HTML = "failure-modes.html"

HELD_VERDICTS = frozenset({"pass", "passed", "held", "ok", "met", "true"})
HISTORY = 10
"""Runs of one drill scenario shown on the index (older ones are counted, not listed)."""
TREND_CRITERIA = (("borderline_rate", "Borderline rate"), ("downgrade_rate", "Downgrade rate"))
"""Pilot criteria drawn week over week (ids in evidence.json ``criteria[]``)."""

_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass
class Metric:
    """One criterion of one pilot run, as evidence.json states it."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    status: str | None = None
    severity: str | None = None
    threshold: float | None = None


@dataclass
class PilotEntry:
    folder: str
    run_id: str | None = None
    series: str | None = None
    created_at: str | None = None
    window: str | None = None
    window_end: str | None = None
    verdict: str | None = None
    criteria: str | None = None
    metrics: dict[str, Metric] = field(default_factory=dict)
    deltas: dict[str, float | None] = field(default_factory=dict)
    link: str | None = None
    error: str | None = None
    sort_key: datetime = _EPOCH

    @property
    def order(self) -> tuple[str, datetime]:
        """Newest = the latest week, then the latest evidence for that week."""
        return (self.window_end or "", self.sort_key)


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
    sort_key: datetime = _EPOCH

    @property
    def passed(self) -> bool:
        """The runner's own definition: completed and every guarantee held."""
        return self.error is None and self.status == "completed" and bool(self.guarantees_ok)


@dataclass
class PilotSeries:
    name: str
    runs: list[PilotEntry]  # newest first
    trends: list[tuple[str, Markup, str]] = field(default_factory=list)  # label, chart, note

    @property
    def latest(self) -> PilotEntry:
        return self.runs[0]


@dataclass
class DrillScenario:
    name: str
    title: str | None
    runs: list[DrillEntry]  # newest first
    history: Markup = Markup("")
    scores: Markup = Markup("")

    @property
    def latest(self) -> DrillEntry:
        return self.runs[0]

    @property
    def shown(self) -> list[DrillEntry]:
        return self.runs[:HISTORY]

    @property
    def passed_recent(self) -> str:
        shown = self.shown
        return f"{sum(r.passed for r in shown)} of the last {len(shown)} passed"


@dataclass
class Status:
    """The line at the top of the index: the worst thing a reader must know first."""

    state: str  # "fail" | "inconclusive" | "pass" | "empty"
    headline: str
    items: list[tuple[str, str, str | None]]  # (state, text, link)


def _mtime(path: Path) -> datetime:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except OSError:
        return _EPOCH


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


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value else None  # NaN is "not measured"


def _series_of(data: Mapping[str, Any]) -> str:
    identity = data.get("identity")
    if isinstance(identity, Mapping) and isinstance(identity.get("series"), str):
        return identity["series"]
    return "pilot"  # the --series default; evidence older than identities had no other


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
        entry.window_end = str(window["end"])[:10]
        entry.verdict = str(data["verdict"])
        if entry.verdict not in ("go", "no-go", "inconclusive"):
            raise ValueError(
                f"verdict must be 'go', 'no-go' or 'inconclusive', found {entry.verdict!r}"
            )
        entry.series = _series_of(data)
        criteria = data.get("criteria")
        if isinstance(criteria, list) and criteria:
            statuses = [c.get("status") if isinstance(c, Mapping) else None for c in criteria]
            passed = statuses.count("pass")
            applicable = sum(st not in (None, "not_applicable") for st in statuses)
            entry.criteria = f"{passed} / {applicable}"
            for c in criteria:
                if isinstance(c, Mapping) and isinstance(c.get("id"), str):
                    n = c.get("n")
                    entry.metrics[c["id"]] = Metric(
                        value=_float(c.get("value")),
                        ci_low=_float(c.get("ci_low")),
                        ci_high=_float(c.get("ci_high")),
                        n=n if isinstance(n, int) and not isinstance(n, bool) else None,
                        status=str(c["status"]) if c.get("status") else None,
                        severity=str(c["severity"]) if c.get("severity") else None,
                        threshold=_float(c.get("threshold_value")),
                    )
    except (ValueError, TypeError) as exc:
        entry.error = str(exc)
        entry.series = None
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
        entry.name = None
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


# ---------------------------------------------------------------------------------- history


def _readable_by(
    entries: Sequence[Entry], key: Callable[[Entry], str | None]
) -> dict[str, list[Entry]]:
    """The entries whose file could be read, grouped by ``key`` in first-seen order."""
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        k = key(e)
        if e.error is None and k is not None:
            groups.setdefault(k, []).append(e)
    return groups


def group_pilots(entries: Sequence[PilotEntry]) -> list[PilotSeries]:
    """Readable runs by series, newest week first, each with its change since the week before."""
    groups = []
    for name, runs in _readable_by(entries, lambda e: e.series).items():
        runs.sort(key=lambda e: e.order, reverse=True)
        for newer, older in zip(runs, runs[1:], strict=False):
            for cid, _ in TREND_CRITERIA:
                a, b = newer.metrics.get(cid), older.metrics.get(cid)
                ok = a and b and a.value is not None and b.value is not None
                newer.deltas[cid] = a.value - b.value if ok else None  # type: ignore[union-attr]
        chronological = runs[::-1][-HISTORY:]
        trends = []
        for cid, label in TREND_CRITERIA:
            points = [r.metrics.get(cid) for r in chronological]
            if any(p is not None and p.value is not None for p in points):
                trends.append((label, trend_svg(points, label), _trend_note(points)))
        groups.append(PilotSeries(name=name, runs=runs, trends=trends))
    return sorted(groups, key=lambda g: g.latest.order, reverse=True)


def _trend_note(points: Sequence[Metric | None]) -> str:
    """The caption under a trend: how many weeks, the latest value and the threshold line."""
    known = [p for p in points if p is not None and p.value is not None]
    note = f"{len(points)} week{'s' if len(points) != 1 else ''}, latest {pct(known[-1].value)}"
    if known[-1].threshold is not None:
        note += f"; dashed line: threshold {pct(known[-1].threshold)}"
    return note


def group_drills(entries: Sequence[DrillEntry]) -> list[DrillScenario]:
    """Readable runs by scenario, newest first; the scenario with the newest run comes first."""
    groups = []
    for name, runs in _readable_by(entries, lambda e: e.name).items():
        runs.sort(key=lambda e: e.sort_key, reverse=True)
        shown = runs[:HISTORY][::-1]
        groups.append(
            DrillScenario(
                name=name,
                title=next((r.title for r in runs if r.title), None),
                runs=runs,
                history=passfail_svg(shown),
                scores=score_svg(shown),
            )
        )
    return sorted(groups, key=lambda g: g.latest.sort_key, reverse=True)


def overall_status(
    series: Sequence[PilotSeries],
    scenarios: Sequence[DrillScenario],
    unreadable: int = 0,
) -> Status:
    """Latest verdict of every pilot series and every drill whose latest run failed."""
    items: list[tuple[str, str, str | None]] = []
    for s in series:
        p = s.latest
        state = {"go": "pass", "no-go": "fail"}.get(p.verdict or "", "inconclusive")
        items.append(
            (state, f"Pilot series {s.name}: {(p.verdict or '?').upper()} for {p.window}", p.link)
        )
    failing = [d for d in scenarios if not d.latest.passed]
    for d in failing:
        r = d.latest
        what = r.guarantees or "no guarantees recorded"
        items.append(("fail", f"Drill {d.name} failed its latest run ({r.status}; {what})", r.link))
    if scenarios and not failing:
        items.append(
            ("pass", f"All {len(scenarios)} drill scenarios passed their latest run", None)
        )
    if unreadable:
        items.append(("inconclusive", f"{unreadable} run file(s) unreadable: see below", None))
    states = {state for state, _, _ in items}
    if not items:
        return Status("empty", "Nothing has run yet", [])
    no_go = sum(s.latest.verdict == "no-go" for s in series)
    if "fail" in states:
        parts = []
        if no_go:
            parts.append(f"{no_go} pilot series at NO-GO")
        if failing:
            parts.append(f"{len(failing)} drill{'s' if len(failing) > 1 else ''} failing")
        return Status("fail", "Attention: " + ", ".join(parts), items)
    if "inconclusive" in states:
        return Status("inconclusive", "Not conclusive yet: see below", items)
    return Status("pass", "All clear: every series GO, every drill passing", items)


# ------------------------------------------------------------------------- inline SVG charts

_PASS, _FAIL, _NONE, _INK = "#15803d", "#b91c1c", "#cbd5e1", "#1c7ed6"


def passfail_svg(runs: Sequence[DrillEntry]) -> Markup:
    """One square per run, oldest left: green passed, red failed; each says which run it is."""
    if not runs:
        return Markup("")
    w, gap = 12, 3
    cells = []
    for i, r in enumerate(runs):
        colour = _PASS if r.passed else _FAIL
        label = f"{r.created_at or r.started_at}: {'passed' if r.passed else 'FAILED'}"
        cells.append(
            f'<rect x="{i * (w + gap)}" y="0" width="{w}" height="16" rx="2" fill="{colour}">'
            f"<title>{escape(label)}</title></rect>"
        )
    width = len(runs) * (w + gap) - gap
    return Markup(
        f'<svg class="spark" role="img" width="{width}" height="16" viewBox="0 0 {width} 16" '
        f'aria-label="pass/fail of the last {len(runs)} runs, oldest first">'
        + "".join(cells)
        + "</svg>"
    )


def _polyline(
    values: Sequence[float | None], lo: float, hi: float, width: int, height: int
) -> tuple[list[tuple[float, float] | None], str]:
    span = (hi - lo) or 1.0
    step = width / max(len(values) - 1, 1)
    pts: list[tuple[float, float] | None] = []
    for i, v in enumerate(values):
        if v is None:
            pts.append(None)
            continue
        x = i * step if len(values) > 1 else width / 2
        y = height - 2 - (v - lo) / span * (height - 4)
        pts.append((round(x, 1), round(y, 1)))
    path = " ".join(f"{x},{y}" for p in pts if p for x, y in [p])
    return pts, path


def score_svg(runs: Sequence[DrillEntry], width: int = 150, height: int = 32) -> Markup:
    """Resilience score (0–1) over the shown runs, oldest left."""
    values = [_float(r.score) for r in runs]
    if not any(v is not None for v in values):
        return Markup("")
    pts, path = _polyline(values, 0.0, 1.0, width, height)
    dots = "".join(
        f'<circle cx="{p[0]}" cy="{p[1]}" r="2.5" fill="{_PASS if r.passed else _FAIL}">'
        f"<title>{escape(r.created_at or '')}: score {escape(sig(v))}</title></circle>"
        for p, r, v in zip(pts, runs, values, strict=True)
        if p is not None
    )
    return Markup(
        f'<svg class="spark" role="img" width="{width}" height="{height}" '
        f'viewBox="-3 -1 {width + 6} {height + 2}" aria-label="resilience score over time">'
        f'<line x1="0" y1="2" x2="{width}" y2="2" stroke="{_NONE}" stroke-dasharray="2 2"/>'
        f'<polyline points="{path}" fill="none" stroke="{_INK}" stroke-width="1.5"/>'
        f"{dots}</svg>"
    )


def trend_svg(
    points: Sequence[Metric | None], label: str, width: int = 220, height: int = 44
) -> Markup:
    """A criterion over the weeks, oldest left, with its threshold dashed and each week's
    status as the dot colour (red fail, green pass, grey otherwise)."""
    values = [p.value if p is not None else None for p in points]
    present = [v for v in values if v is not None]
    thresholds = [p.threshold for p in points if p is not None and p.threshold is not None]
    threshold = thresholds[-1] if thresholds else None
    lo = min([*present, *([threshold] if threshold is not None else [])])
    hi = max([*present, *([threshold] if threshold is not None else [])])
    lo, hi = min(lo, 0.0), hi * 1.1 if hi > 0 else 1.0
    pts, path = _polyline(values, lo, hi, width, height)
    parts = []
    if threshold is not None:
        _, tpath = _polyline([threshold, threshold], lo, hi, width, height)
        parts.append(
            f'<polyline points="{tpath}" stroke="{_FAIL}" stroke-dasharray="3 2" fill="none" '
            f'stroke-width="1"><title>threshold {escape(pct(threshold))}</title></polyline>'
        )
    parts.append(f'<polyline points="{path}" fill="none" stroke="{_INK}" stroke-width="1.5"/>')
    for p, m in zip(pts, points, strict=True):
        if p is None or m is None:
            continue
        colour = {"pass": _PASS, "fail": _FAIL}.get(m.status or "", "#6b7280")
        parts.append(
            f'<circle cx="{p[0]}" cy="{p[1]}" r="2.8" fill="{colour}">'
            f"<title>{escape(label)} {escape(pct(m.value))} ({escape(m.status or '?')})</title>"
            "</circle>"
        )
    return Markup(
        f'<svg class="spark" role="img" width="{width}" height="{height}" '
        f'viewBox="-4 -2 {width + 8} {height + 4}" '
        f'aria-label="{escape(label)} week over week">' + "".join(parts) + "</svg>"
    )


# ------------------------------------------------------------------------------------ build


def build_index(out_root: Path, *, generated_at: datetime | None = None) -> Path:
    """Write ``<out_root>/index.html``: status, pilot series, drill scenarios, Failure Modes."""
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    generated = (generated_at or datetime.now(UTC)).astimezone(UTC)
    pilots = collect_pilots(out_root)
    drills = collect_drills(out_root)
    series = group_pilots(pilots)
    scenarios = group_drills(drills)
    bad_pilots = [p for p in pilots if p.error]
    bad_drills = [d for d in drills if d.error]
    path = out_root / INDEX_HTML
    return render_to(
        path,
        "index.html.j2",
        page_title="AMAIMA pilot & drill reports",
        generated_at=generated.isoformat(timespec="seconds"),
        root=".",
        status=overall_status(series, scenarios, len(bad_pilots) + len(bad_drills)),
        series=series,
        scenarios=scenarios,
        bad_pilots=bad_pilots,
        bad_drills=bad_drills,
        history=HISTORY,
        trend_criteria=TREND_CRITERIA,
        failure_modes=FAILURE_MODES_HTML if (out_root / FAILURE_MODES_HTML).is_file() else None,
    )


# ---------------------------------------------------------------------------------- retention


class PruneError(ValueError):
    """The site cannot be pruned safely (bad --keep, a folder escaping the site root)."""


@dataclass
class Pruned:
    removed: list[Path]
    kept: int
    skipped: list[str]


def _inside(path: Path, root: Path) -> bool:
    """``path`` is a real folder (not a symlink) whose resolved location is under ``root``."""
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def prune(out_root: Path, keep: int, *, dry_run: bool = False) -> Pruned:
    """Delete all but the newest ``keep`` run folders of each pilot series and drill scenario.

    Only run folders directly under ``out_root`` (pilots) and ``out_root/drills`` are removed;
    a symlink, or a folder that resolves outside the site root, is skipped and reported.
    Unreadable runs are kept (their series is unknown). The index is rebuilt afterwards.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise PruneError(f"--keep must be a whole number of runs >= 1, got {keep!r}")
    out_root = Path(out_root)
    if out_root.is_symlink() or not out_root.is_dir():
        raise PruneError(f"--out {out_root} is not a folder")
    root = out_root.resolve()
    drills_dir = out_root / DRILLS_DIR
    if drills_dir.exists() and not _inside(drills_dir, root):
        raise PruneError(f"{drills_dir} is a symlink or leaves {out_root}: refusing to prune")

    doomed: list[Path] = []
    kept = 0
    for s in group_pilots(collect_pilots(out_root)):
        kept += min(keep, len(s.runs))
        doomed += [out_root / r.folder for r in s.runs[keep:]]
    for d in group_drills(collect_drills(out_root)):
        kept += min(keep, len(d.runs))
        doomed += [drills_dir / r.folder for r in d.runs[keep:]]

    removed: list[Path] = []
    skipped: list[str] = []
    for folder in doomed:
        if not _inside(folder, root):
            skipped.append(f"{folder}: a symlink or outside {out_root}, not removed")
            continue
        if not dry_run:
            shutil.rmtree(folder)
        removed.append(folder)
    if not dry_run:
        build_index(out_root)
    return Pruned(removed=removed, kept=kept, skipped=skipped)
