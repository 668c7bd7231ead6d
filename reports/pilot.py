"""The pilot report: one evidence document in, ``report.html`` + ``report.md`` out.

The evidence (``<out>/<run_id>/evidence.json``, written by the pilot flow; the contract is
docs/evidence.md and its one model ``telemetry.evidence_model.PilotEvidence``) is validated
once, up front: a missing, renamed or malformed key raises ``PilotEvidenceError`` naming the
key path and the evidence file, evidence of another version is refused saying which, and a
"go" verdict next to a failed criterion is refused. After that the builder trusts
its input; templates only lay out the facts computed here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reports.documents import load_document, page_folder, validate_document
from reports.render import is_missing, parse_ts, render_to
from router.decision import LEVELS
from telemetry.evidence_model import (
    EVIDENCE_VERSION,
    CriterionRow,
    EvidenceVersionError,
    MetricsRow,
    PilotEvidence,
    parse_evidence,
)
from telemetry.pilot_evidence import EVIDENCE_NAME

LEVEL_NAMES = tuple(lv.value for lv in LEVELS)

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
EVIDENCE_JSON = EVIDENCE_NAME  # the writer's name for the file

RATE_MIN_QUERIES = 50
"""Hours with fewer queries are not judged on their borderline / upscale rate, as in the rate
alert rules (``min_queries: 50`` in telemetry/alert_rules.yaml): 3 of 4 is not a 75 % trend."""


class PilotEvidenceError(ValueError):
    """Evidence that cannot be reported on; the message names the file and every bad key."""


# ------------------------------------------------------------------------ evidence loading


def validate_evidence(data: Any, source: str = "evidence") -> PilotEvidence:
    """Check the whole document at once and list every problem with its key path."""
    return validate_document(
        data,
        source,
        what="pilot evidence",
        invalid=f"is not a valid evidence document (version {EVIDENCE_VERSION})",
        parse=parse_evidence,
        error=PilotEvidenceError,
        refused=(EvidenceVersionError,),
    )


def load_evidence(evidence: Mapping[str, Any] | Path | str) -> tuple[PilotEvidence, str]:
    """Read (when a path) and validate; returns the evidence and a label naming its source."""
    return load_document(
        evidence,
        what="pilot evidence",
        in_memory="in-memory document",
        validate=validate_evidence,
        error=PilotEvidenceError,
    )


# ----------------------------------------------------------------------------- derived facts


def _weighted(rows: list[MetricsRow], key: str) -> float | None:
    pairs = [(getattr(r, key), r.queries) for r in rows if not is_missing(getattr(r, key))]
    total = sum(q for _, q in pairs)
    return sum(v * q for v, q in pairs) / total if total else None


def _measured(rows: list[MetricsRow], key: str) -> list[tuple[MetricsRow, float]]:
    return [(r, float(getattr(r, key))) for r in rows if not is_missing(getattr(r, key))]


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _redact_url(url: str | None) -> str | None:
    """Never print a database password that might sit in a store URL."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url) if url else url


def _safe_link(link: str | None, base: Path) -> dict[str, Any] | None:
    """A relative link that stays inside the site (no scheme, no absolute path)."""
    if not link:
        return None
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or link.startswith(("/", "\\")) or "\\" in link:
        return {"href": None, "text": link, "exists": False}
    return {"href": link, "text": link, "exists": (base / parts.path).exists()}


def _quality_failure_text(item: Any) -> str:
    if isinstance(item, Mapping):
        head = str(item.get("expectation") or item.get("expectation_type") or "expectation")
        col = item.get("column")
        extra = [f"{k}={item[k]}" for k in ("unexpected_count", "observed_value") if k in item]
        return " ".join([head, f"on {col}" if col else "", *extra]).replace("  ", " ").strip()
    return str(item)


def _day(value: str) -> str:
    return parse_ts(value).date().isoformat()


STATUS_LABEL = {
    "pass": "PASS",
    "fail": "FAIL",
    "inconclusive": "INCONCLUSIVE",
    "not_applicable": "N/A",
}
VERDICT_LABEL = {"go": "GO", "no-go": "NO-GO", "inconclusive": "INCONCLUSIVE"}


def criterion_rows(criteria: list[CriterionRow]) -> list[dict[str, Any]]:
    """Criteria with their interval and settle hint as text (one formatting for HTML, Markdown
    and the terminal)."""
    from telemetry.readiness import format_value

    rows = []
    for c in criteria:
        interval = "—"
        if not is_missing(c.ci_low) and not is_missing(c.ci_high):
            interval = f"{format_value(c.ci_low, c.unit)} – {format_value(c.ci_high, c.unit)}"
        hint = c.reason
        if c.status == "inconclusive" and c.more_queries:
            hint += f"; about {c.more_queries:,} more queries would settle it"
        rows.append(
            {
                "c": c,
                "interval": interval,
                "n": f"{c.n:,}",
                "status": STATUS_LABEL[c.status],
                "hint": hint,
            }
        )
    return rows


def summarise(ev: PilotEvidence, run_dir: Path) -> dict[str, Any]:
    """The numbers quoted next to each chart, computed once so HTML and Markdown agree."""
    t = ev.thresholds
    hourly, daily = ev.metrics_hourly, ev.metrics_daily
    crit = {
        "passed": sum(c.status == "pass" for c in ev.criteria),
        "failed": [c for c in ev.criteria if c.status == "fail"],
        "failed_critical": [
            c for c in ev.criteria if c.status == "fail" and c.severity == "critical"
        ],
        "inconclusive": [c for c in ev.criteria if c.status == "inconclusive"],
        "na": sum(c.status == "not_applicable" for c in ev.criteria),
        "total": len(ev.criteria),
        "judged": sum(c.status != "not_applicable" for c in ev.criteria),
        "rows": criterion_rows(ev.criteria),
        "verdict_label": VERDICT_LABEL[ev.verdict],
    }
    busy = max(hourly, key=lambda r: r.queries, default=None)
    busy_day = max(daily, key=lambda r: r.queries, default=None)
    traffic = {
        "total": sum(r.queries for r in hourly),
        "hours": len(hourly),
        "empty_hours": sum(r.queries == 0 for r in hourly),
        "peak": busy,
        "busiest_day": busy_day,
        "mean_per_hour": (sum(r.queries for r in hourly) / len(hourly)) if hourly else None,
    }
    levels_total: dict[str, int] = {}
    for row in ev.routing_mix:
        levels_total[row.level] = levels_total.get(row.level, 0) + row.count
    rank = {lv: i for i, lv in enumerate(LEVEL_NAMES)}
    levels_total = dict(sorted(levels_total.items(), key=lambda kv: (rank.get(kv[0], 99), kv[0])))
    models_total: dict[str, int] = {}
    for row in ev.model_mix:
        models_total[row.model] = models_total.get(row.model, 0) + row.count
    mix_days = sorted({_day(r.day) for r in ev.routing_mix})
    mix_table = {d: {lv: 0 for lv in levels_total} for d in mix_days}
    for row in ev.routing_mix:
        mix_table[_day(row.day)][row.level] += row.count
    routed = sum(levels_total.values())
    rates = {}
    busy_hours = [r for r in hourly if r.queries >= RATE_MIN_QUERIES]
    for key, limit in (("borderline_rate", t.borderline_rate), ("upscale_rate", t.upscale_rate)):
        measured = _measured(busy_hours, key)
        worst = max(measured, key=lambda p: p[1], default=None)
        rates[key] = {
            "week": _weighted(daily, key),
            "threshold": limit,
            "hours_over": sum(v > limit for _, v in measured),
            "hours_measured": len(measured),
            "worst": worst,
        }
    drops = _measured(daily, "confidence_drop_pct")
    medians = _measured(daily, "confidence_median")
    confidence = {
        "mean": _weighted(daily, "confidence_mean"),
        "lowest_median": min(medians, key=lambda p: p[1], default=None),
        "largest_drop": max(drops, key=lambda p: p[1], default=None),
        "days_over": sum(v > t.confidence_drop_pct for _, v in drops),
    }
    c = ev.cost
    cost = {
        "savings_usd": c.total_all_largest_usd - c.total_router_usd,
        "savings_share": _share(
            c.total_all_largest_usd - c.total_router_usd, c.total_all_largest_usd
        ),
        "per_query": _share(c.total_router_usd, traffic["total"]),
        "served": not is_missing(c.total_served_usd)
        or any(not is_missing(d.served_usd) for d in c.per_day),
        "vs_served_usd": None
        if is_missing(c.total_served_usd)
        else c.total_served_usd - c.total_router_usd,
    }
    lat = _measured(hourly, "latency_estimate_p95_ms")
    latency = {
        "hours_measured": len(lat),
        "hours_over": sum(v > t.latency_p95_ms for _, v in lat),
        "worst": max(lat, key=lambda p: p[1], default=None),
        "median": sorted(v for _, v in lat)[len(lat) // 2] if lat else None,
    }
    fired = [b for b in ev.alerts.backtest if b.firings]
    alerts = {
        "firings": len(ev.alerts.firings),
        "rules_fired": len({f.rule for f in ev.alerts.firings} | {b.rule for b in fired}),
        "rules": len(ev.alerts.backtest),
        "noisy": [b.rule for b in ev.alerts.backtest if b.noisy],
        "slack": [b.rule for b in ev.alerts.backtest if b.slack],
    }
    quality_rows = [
        {
            "q": q,
            "docs": _safe_link(q.data_docs, run_dir),
            "failures": [_quality_failure_text(f) for f in q.failed],
        }
        for q in ev.quality
    ]
    docs_links = [r["docs"] for r in quality_rows if r["docs"] and r["docs"]["href"]]
    quality = {
        "days": len(ev.quality),
        "passed": sum(q.success for q in ev.quality),
        "rows": quality_rows,
        "docs": docs_links[0] if docs_links and len({d["href"] for d in docs_links}) == 1 else None,
    }
    cs = ev.corpus_summary
    quarantine = {
        "share": _share(cs.quarantined, cs.rows),
        "reasons": sorted(cs.by_reason.items(), key=lambda kv: (-kv[1], kv[0])),
        "reason_total": sum(cs.by_reason.values()),
    }
    d = ev.determinism
    determinism = {"ok": d.mismatched == 0 and d.sample > 0 and d.matched == d.sample}
    comparison = None
    if ev.comparison is not None:
        cmp_ = ev.comparison
        base_by_id = {c.id: c for c in ev.criteria}
        comparison = {
            "total": cmp_.matched + cmp_.mismatched,
            "match_rate": _share(cmp_.matched, cmp_.matched + cmp_.mismatched),
            "reasons": sorted(cmp_.mismatch_reasons.items(), key=lambda kv: (-kv[1], kv[0])),
            "candidate_rows": [
                {**row, "base": base_by_id.get(row["c"].id)}
                for row in criterion_rows(cmp_.candidate.criteria)
            ],
            "candidate_label": VERDICT_LABEL[cmp_.candidate.verdict],
            "domain_moves": [
                (
                    dom,
                    sum(
                        m.matrix[i][j]
                        for i in range(len(m.matrix))
                        for j in range(len(m.matrix))
                        if j > i
                    ),
                    sum(
                        m.matrix[i][j]
                        for i in range(len(m.matrix))
                        for j in range(len(m.matrix))
                        if j < i
                    ),
                    sum(map(sum, m.matrix)),
                )
                for dom, m in sorted(cmp_.transition_by_domain.items())
            ],
        }
    labelled = None
    if ev.labelled is not None:
        lab = ev.labelled
        labelled = {
            "domains": sorted(lab.per_domain_accuracy.items(), key=lambda kv: (kv[1], kv[0])),
            "no_downgrade": None if is_missing(lab.downgrade_rate) else 1 - lab.downgrade_rate,
            "has_confusion": bool(lab.confusion.matrix)
            and any(any(r) for r in lab.confusion.matrix),
        }
    return {
        "rate_min_queries": RATE_MIN_QUERIES,
        "criteria": crit,
        "traffic": traffic,
        "levels_total": levels_total,
        "models_total": sorted(models_total.items(), key=lambda kv: (-kv[1], kv[0])),
        "routed": routed,
        "mix_table": mix_table,
        "rates": rates,
        "confidence": confidence,
        "cost": cost,
        "latency": latency,
        "alerts": alerts,
        "quality": quality,
        "quarantine": quarantine,
        "determinism": determinism,
        "comparison": comparison,
        "labelled": labelled,
        "telemetry_db": _redact_url(ev.telemetry.db),
    }


# ---------------------------------------------------------------------------------- figures


def build_figures(ev: PilotEvidence) -> dict[str, Any]:
    """Every chart of the report as an HTML fragment (plotly.js is loaded once by the page)."""
    from reports import figures as f
    from reports.assets import figure_html

    t = ev.thresholds
    hourly = [r.model_dump() for r in ev.metrics_hourly]
    daily = [r.model_dump() for r in ev.metrics_daily]
    window_end = parse_ts(ev.window.end)
    if len(ev.window.end) <= 10:  # a date: the window runs to the end of that day
        window_end = window_end.replace(hour=23, minute=59, second=59)
    figs = {
        "traffic": f.traffic_per_hour(hourly),
        "levels": f.routing_mix_per_day([r.model_dump() for r in ev.routing_mix]),
        "models": f.model_mix_per_day([r.model_dump() for r in ev.model_mix]),
        "rates": f.rates_vs_thresholds(
            hourly,
            {"borderline_rate": t.borderline_rate, "upscale_rate": t.upscale_rate},
            labels={"borderline_rate": "borderline", "upscale_rate": "upscaled"},
            min_count=RATE_MIN_QUERIES,
            daily=daily,
        ),
        "confidence_hist": f.confidence_distribution(
            ev.confidence_histogram.edges,
            ev.confidence_histogram.per_day,
            floor=t.confidence_median,
        ),
        "confidence_drift": f.confidence_drift(
            daily, floor=t.confidence_median, drop_threshold_pct=t.confidence_drop_pct
        ),
        "cost": f.cost_per_day(
            [r.model_dump() for r in ev.cost.per_day], baseline_model=ev.cost.baseline_model
        ),
        "latency": f.latency_p95(hourly, sla_ms=t.latency_p95_ms),
        "alerts": f.alert_timeline(
            [r.model_dump() for r in ev.alerts.firings],
            rules=[b.rule for b in ev.alerts.backtest],
            start=ev.window.start,
            end=window_end,
        ),
    }
    if ev.comparison is not None:
        figs["transition"] = f.transition_heatmap(ev.comparison.transition.model_dump())
    if ev.labelled is not None and ev.labelled.confusion.matrix:
        figs["confusion"] = f.confusion_heatmap(ev.labelled.confusion.model_dump())
    return {name: figure_html(fig, f"fig-{name}") for name, fig in figs.items()}


# ---------------------------------------------------------------------------------- builder


@dataclass(frozen=True)
class PilotReportPaths:
    html: Path
    markdown: Path
    plotly_js: Path
    evidence: Path


def build_pilot_report(
    evidence: Mapping[str, Any] | Path | str,
    out_root: Path,
    *,
    generated_at: datetime | None = None,
) -> PilotReportPaths:
    """Write ``<out_root>/<run_id>/report.html`` and ``report.md`` from one evidence document.

    The run folder also gets ``evidence.json`` when it has none (the site index lists runs by
    it), and the site root gets its one shared ``assets/plotly.min.js``.
    """
    from reports.assets import plotly_src, relative_root

    ev, source = load_evidence(evidence)
    out_root = Path(out_root)
    folder = page_folder(
        evidence, out_root / ev.run_id, EVIDENCE_JSON, out_root, generated_at=generated_at
    )
    run_dir = folder.path
    html_path, md_path = run_dir / REPORT_HTML, run_dir / REPORT_MD
    ctx = {
        "ev": ev,
        "s": summarise(ev, run_dir),
        "generated_at": folder.generated_at,
        "source": source,
        "root": relative_root(html_path, out_root),
    }
    render_to(
        html_path,
        "pilot.html.j2",
        figs=build_figures(ev),
        plotly_src=plotly_src(html_path, out_root),
        **ctx,
    )
    render_to(md_path, "pilot.md.j2", **ctx)
    return PilotReportPaths(
        html=html_path, markdown=md_path, plotly_js=folder.plotly_js, evidence=folder.document
    )
