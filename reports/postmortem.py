"""The drill postmortem: one drill journal in, ``postmortem.html`` + ``postmortem.md`` out.

Laid out like a Google SRE postmortem (summary, impact, root cause, trigger, detection,
resolution, action items, lessons learned, timeline), and stamped as a DRILL everywhere so
nobody mistakes an exercise for an incident. The journal (``drills.journal.Journal``, contract in
``docs/journal.md``) is validated once, up front: a missing, renamed or malformed key raises
``DrillJournalError`` naming the key path and the file. Every sentence after that is derived
from the journal's guarantees, events and metrics (``reports.postmortem_facts``, worded by
``reports.postmortem_text``) — action items come from failed or weak guarantees, lessons from
what the drill observed, never boilerplate. This module loads the journal, draws the figure
and renders the pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from drills.journal import (
    DRILLS_DIR,
    JOURNAL_SCHEMA_VERSION,
    JournalError,
    parse_journal,
)
from drills.journal import JOURNAL_NAME as JOURNAL_JSON
from drills.journal import Journal as DrillJournal
from reports.documents import load_document, page_folder, validate_document
from reports.postmortem_facts import (
    cost_change,
    drill_verdict,
    fault_tiers,
    outcomes,
    rows_lost,
    summarise,
    tier_p95_during,
)
from reports.postmortem_text import (
    failed_text,
    human_duration,
    number,
    parse_duration,
    share_text,
)
from reports.postmortem_timeline import find_markers
from reports.render import parse_ts, render_to

__all__ = [
    "DrillJournalError",
    "PostmortemPaths",
    "build_postmortem",
    "cost_change",
    "drill_verdict",
    "failed_text",
    "find_markers",
    "human_duration",
    "load_journal",
    "outcomes",
    "parse_duration",
    "rows_lost",
    "share_text",
    "summarise",
    "tier_p95_during",
    "validate_journal",
]

POSTMORTEM_HTML = "postmortem.html"
POSTMORTEM_MD = "postmortem.md"


class DrillJournalError(ValueError):
    """A journal that cannot be reported on; the message names the file and every bad key."""


def validate_journal(data: Any, source: str = "journal") -> DrillJournal:
    """Check the whole journal at once (``drills.journal.Journal``, the one model) and list
    every problem with its key path."""
    return validate_document(
        data,
        source,
        what="drill journal",
        invalid=f"is not a valid journal (schema {JOURNAL_SCHEMA_VERSION})",
        parse=parse_journal,
        error=DrillJournalError,
        refused=(JournalError,),
    )


def load_journal(journal: Mapping[str, Any] | Path | str) -> tuple[DrillJournal, str]:
    """Read (when a path) and validate; returns the journal and a label naming its source."""
    return load_document(
        journal,
        what="drill journal",
        in_memory="in-memory journal",
        validate=validate_journal,
        error=DrillJournalError,
    )


# ----------------------------------------------------------------------------------- figure


def build_figure(j: DrillJournal, s: Mapping[str, Any]) -> Any:
    """Latency p95, error rate, alerts firing (and any other signal that moved) on one UTC time
    axis, with the fault windows shaded and the outage markers drawn."""
    from reports.figures import timeline_figure

    metrics = sorted(j.metrics, key=lambda m: parse_ts(m.ts))
    firings = s["firings"]

    def column(key: str, scale: float = 1.0) -> list[tuple[datetime, float | None]]:
        out = []
        for m in metrics:
            v = number(getattr(m, key, None))
            out.append((parse_ts(m.ts), None if v is None else v * scale))
        return out

    def firing_count(ts: datetime) -> float:
        end = ts.timestamp() + 60
        return float(
            sum(
                1
                for f in firings
                if f["fired"].timestamp() < end
                and (f["resolved"] is None or f["resolved"].timestamp() > ts.timestamp())
            )
        )

    series: dict[str, list[tuple[datetime, float | None]]] = {
        "p95 latency": column("actual_latency_p95_ms"),
        "error rate (incl. rejected)": column("error_rate", 100.0),
        "alerts firing": [(parse_ts(m.ts), firing_count(parse_ts(m.ts))) for m in metrics],
    }
    units = {
        "p95 latency": "p95 (ms)",
        "error rate (incl. rejected)": "failed (%)",
        "alerts firing": "alerts",
    }
    worst_tier = column("actual_latency_p95_worst_tier_ms")
    if fault_tiers(j) and any(v is not None for _, v in worst_tier):
        # a tier fault hardly moves the all-tier p95: show the slowest tier the alert watches
        series = {"p95 slowest tier": worst_tier, **series}
        units["p95 slowest tier"] = "tier p95 (ms)"
    # Further rows only when that signal is part of the story: a count that left zero, a cost
    # that spiked, upstream calls that stopped while queries kept coming (the kill switch).
    extra = [
        (parse_ts(m.ts), (number(m.fallback) or 0) + (number(m.rejected) or 0)) for m in metrics
    ]
    if any(v for _, v in extra):
        series["fallback + rejected"], units["fallback + rejected"] = extra, "fallbk+rej"
    for key, name, unit in (
        ("telemetry_write_failures", "store write failures", "write fails"),
        ("spooled_rows", "rows spooled", "spooled"),
        ("misconfigured_toggle_count", "invalid-toggle decisions", "bad toggle"),
    ):
        values = column(key)
        if any(v for _, v in values):
            series[name], units[name] = values, unit
    cost = sorted(v for _, v in column("cost_per_query_usd") if v is not None)
    if cost and cost[0] >= 0 and cost[-1] > 1.5 * cost[len(cost) // 2]:
        series["cost per query"], units["cost per query"] = column("cost_per_query_usd"), "$/query"
    calls = [(number(m.upstream_calls), number(m.queries) or 0) for m in metrics]
    if any(c == 0 and q > 0 for c, q in calls) and any(c for c, _ in calls):
        series["upstream calls"], units["upstream calls"] = column("upstream_calls"), "upstream"
    windows = [(f.start, f.end, f"fault: {f.type}") for f in j.faults]
    m = s["markers"]
    marks: list[tuple[datetime, str]] = []
    for ts, label in (
        (m.begins, "OUTAGE BEGINS"),
        (m.mitigated, "MITIGATED"),
        (m.ends, "OUTAGE ENDS"),
    ):
        if ts is not None:
            marks.append((ts, label))
    seen: set[str] = set()
    for f in firings:
        if f["rule"] not in seen:
            seen.add(f["rule"])
            marks.append((f["fired"], f"alert {f['rule']}"))
    fig = timeline_figure(series, windows, marks, units=units, row_height=120)
    # Metrics are per-minute buckets: draw each value held over its minute, not interpolated.
    fig.update_traces(line_shape="hv", selector={"type": "scatter"})
    return fig


# ---------------------------------------------------------------------------------- builder


@dataclass(frozen=True)
class PostmortemPaths:
    html: Path
    markdown: Path
    journal: Path
    plotly_js: Path


def build_postmortem(
    journal: Mapping[str, Any] | Path | str,
    out_root: Path,
    *,
    generated_at: datetime | None = None,
) -> PostmortemPaths:
    """Write ``<out_root>/drills/<run_id>/postmortem.html`` and ``postmortem.md``.

    The run folder also gets a copy of the journal when it has none (the Failure Modes page and
    the site index find drills by it), and the site root its one shared ``assets/plotly.min.js``.
    """
    from reports.assets import figure_html, plotly_src, relative_root

    j, source = load_journal(journal)
    out_root = Path(out_root)
    folder = page_folder(
        journal,
        out_root / DRILLS_DIR / j.run_id,
        JOURNAL_JSON,
        out_root,
        refresh=True,
        generated_at=generated_at,
    )
    html_path, md_path = folder.path / POSTMORTEM_HTML, folder.path / POSTMORTEM_MD
    s = summarise(j, source)
    ctx = {
        "j": j,
        "s": s,
        "generated_at": folder.generated_at,
        "root": relative_root(html_path, out_root),
        "journal_href": JOURNAL_JSON,
    }
    figure = figure_html(build_figure(j, s), "drill-timeline")
    render_to(
        html_path,
        "postmortem.html.j2",
        figure=figure,
        plotly_src=plotly_src(html_path, out_root),
        **ctx,
    )
    render_to(md_path, "postmortem.md.j2", **ctx)
    return PostmortemPaths(
        html=html_path, markdown=md_path, journal=folder.document, plotly_js=folder.plotly_js
    )
