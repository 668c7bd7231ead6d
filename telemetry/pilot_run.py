"""The typed facts of one pilot run: what each day produced, what the week adds up to, and the
outcome the command prints. The flow gathers these; the evidence and the run record are derived
from them (telemetry.pilot_evidence), never copied by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class DayResult:
    """One day routed and written (decision-only)."""

    day: date
    accepted: int
    routed: int
    written: int
    spooled: int
    duplicates: int
    unrouted: int
    slim: pd.DataFrame
    candidate: pd.DataFrame | None = None
    labels: pd.DataFrame | None = None
    route_s: float = 0.0
    write_s: float = 0.0


@dataclass
class Determinism:
    """The deterministic-replay sample, summed over days."""

    sample: int = 0
    matched: int = 0
    mismatched_fields: dict[str, int] = field(default_factory=dict)

    @property
    def mismatched(self) -> int:
        return self.sample - self.matched

    @property
    def rate(self) -> float | None:
        return self.matched / self.sample if self.sample else None

    @classmethod
    def merge(cls, parts: list[dict]) -> Determinism:
        out = cls()
        for p in parts:
            out.sample += int(p["sample"])
            out.matched += int(p["matched"])
            for k, v in p["mismatched_fields"].items():
                out.mismatched_fields[k] = out.mismatched_fields.get(k, 0) + int(v)
        return out

    def to_dict(self) -> dict:
        return {
            "sample": self.sample,
            "matched": self.matched,
            "mismatched": self.mismatched,
            "rate": self.rate,
            "mismatched_fields": dict(self.mismatched_fields),
        }


@dataclass
class CorpusFacts:
    rows: int
    accepted: int
    quarantined: int
    by_reason: dict[str, int]
    rows_per_day: dict[str, int]
    in_window: int
    quarantine_file: str

    @classmethod
    def of(cls, summary: Any, quarantine_file: str) -> CorpusFacts:
        """From the loader's CorpusSummary."""
        return cls(
            rows=summary.total_rows,
            accepted=summary.accepted,
            quarantined=summary.quarantined,
            by_reason={k: v for k, v in summary.reasons.items() if v},
            rows_per_day={d.isoformat(): n for d, n in sorted(summary.rows_per_day.items())},
            in_window=summary.in_window,
            quarantine_file=quarantine_file,
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TelemetryFacts:
    db: str
    rows: int
    routed: int
    written: int
    spooled: int
    drained: int
    duplicates: int
    unrouted: int

    @classmethod
    def of(
        cls, days: list[DayResult], *, db: str, stored_rows: int, drained: int
    ) -> TelemetryFacts:
        return cls(
            db=db,
            rows=stored_rows,
            routed=sum(r.routed for r in days),
            written=sum(r.written for r in days),
            spooled=sum(r.spooled for r in days),
            drained=drained,
            duplicates=sum(r.duplicates for r in days),
            unrouted=sum(r.unrouted for r in days),
        )

    def to_dict(self) -> dict:
        return asdict(self)


LABEL_COLUMNS = ("expected_level", "expected_domain", "served_model")


def route_and_write(
    router, candidate, store, day: date, table, run_id: str, *, logger
) -> DayResult:
    """Route one partition (a day, or a day's shard on a cluster worker) in decision-only mode,
    write its telemetry (spooled if the store fails) and keep the slim frames for the week."""
    import time

    from router.engine import BatchInputError
    from telemetry.pilot_evidence import slim

    texts = table.column("text").to_pylist()
    kwargs = dict(
        query_ids=table.column("query_id").to_pylist(),
        ts=table.column("ts"),
        run_id=run_id,
        tenants=table.column("tenant").to_pylist(),
    )
    unrouted = 0
    t0 = time.perf_counter()
    try:
        decisions = router.route_batch(texts, **kwargs)
    except BatchInputError as exc:  # the corpus validator should have quarantined these
        decisions, unrouted = exc.table, len(exc.errors)
        logger.error("%s: %d rows could not be routed: %s", day, unrouted, exc)
    t1 = time.perf_counter()
    w = store.write(decisions)
    t2 = time.perf_counter()
    if w.spooled:
        logger.warning(
            "%s: telemetry store unavailable (%s); %d decisions spooled for drain",
            day,
            w.error_kind,
            w.spooled,
        )
    cand = None
    if candidate is not None:
        cand = slim(candidate.route_batch(texts, **(kwargs | {"run_id": f"{run_id}-candidate"})))
    labels = None
    label_cols = [c for c in LABEL_COLUMNS if c in table.column_names]
    if label_cols:
        lab = table.select(["query_id", *label_cols]).to_pandas()
        if lab[label_cols].notna().any().any():
            labels = lab
    return DayResult(
        day=day,
        accepted=table.num_rows,
        routed=decisions.num_rows,
        written=w.written,
        spooled=w.spooled,
        duplicates=w.duplicates,
        unrouted=unrouted,
        slim=slim(decisions),
        candidate=cand,
        labels=labels,
        route_s=t1 - t0,
        write_s=t2 - t1,
    )


def merge_shards(parts: list[DayResult]) -> DayResult:
    """One day's result from its shards (in shard order)."""
    first = parts[0]

    def cat(frames):
        frames = [f for f in frames if f is not None]
        return pd.concat(frames, ignore_index=True) if frames else None

    return DayResult(
        day=first.day,
        accepted=sum(p.accepted for p in parts),
        routed=sum(p.routed for p in parts),
        written=sum(p.written for p in parts),
        spooled=sum(p.spooled for p in parts),
        duplicates=sum(p.duplicates for p in parts),
        unrouted=sum(p.unrouted for p in parts),
        slim=cat([p.slim for p in parts]),
        candidate=cat([p.candidate for p in parts]),
        labels=cat([p.labels for p in parts]),
        route_s=sum(p.route_s for p in parts),
        write_s=sum(p.write_s for p in parts),
    )


def run_record_counts(evidence: dict) -> dict:
    """What the run record keeps so `pilot report --recompute` can rebuild the evidence: a
    selection of evidence keys (one source), not a second hand-built document."""
    keys = (
        "verdict",
        "quality",
        "determinism",
        "corpus",
        "corpus_summary",
        "telemetry",
        "warnings",
    )
    out = {k: evidence[k] for k in keys}
    out["rows"] = evidence["telemetry"]["rows"]
    return out


@dataclass
class PilotOutcome:
    """What `pilot_week` returns (and `harness pilot run --json` prints)."""

    run_id: str
    verdict: str
    verdict_reason: str
    report_html: Path | None
    report_md: Path | None
    evidence_path: Path
    criteria: list[dict]
    comparison: dict | None = None

    @classmethod
    def of(cls, evidence: dict, paths: Any, evidence_path: Path) -> PilotOutcome:
        return cls(
            run_id=evidence["run_id"],
            verdict=evidence["verdict"],
            verdict_reason=evidence["verdict_reason"],
            report_html=paths.html,
            report_md=paths.markdown,
            evidence_path=evidence_path,
            criteria=evidence["criteria"],
            comparison=evidence.get("comparison"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "verdict": self.verdict,
            "verdict_reason": self.verdict_reason,
            "comparison": self.comparison,
            "report_html": str(self.report_html) if self.report_html else None,
            "report_md": str(self.report_md) if self.report_md else None,
            "evidence": str(self.evidence_path),
            "criteria": self.criteria,
        }
