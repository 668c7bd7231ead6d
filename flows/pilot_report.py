"""Re-render a pilot report from the evidence stored with the run, or recompute it from stored
telemetry and say what differs.

Why two paths: the stored evidence is the record a pilot lead signed (same verdict, same
criterion values, every section); recomputing proves the record still follows from the stored
decisions, and prints every difference instead of silently replacing the verdict.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

RECOMPUTED_SECTIONS_KEPT = ("comparison",)
"""Sections that need the corpus (the candidate's shadow decisions are not stored): a recompute
keeps them from the stored evidence and says so."""


def _publish(evidence: dict, out: Path) -> dict:
    from reports.pilot import build_pilot_report, validate_evidence
    from reports.site import build_index
    from telemetry import pilot_evidence as ev

    validate_evidence(evidence, f"(stored evidence of run {evidence.get('run_id')!r})")
    evidence_path = ev.write_evidence(evidence, out / evidence["run_id"])
    paths = build_pilot_report(evidence, out)
    build_index(out)
    return {
        "run_id": evidence["run_id"],
        "verdict": evidence["verdict"],
        "verdict_reason": evidence.get("verdict_reason", ""),
        "report_html": str(paths.html),
        "report_md": str(paths.markdown),
        "evidence": str(evidence_path),
        "criteria": evidence["criteria"],
        "comparison": evidence.get("comparison"),
    }


def rerender_pilot_report(run_id: str, *, out: Path, db: str | None = None) -> dict:
    """The report exactly as the run decided it, from the evidence stored in the database."""
    from telemetry.evidence_store import load_evidence
    from telemetry.store import TelemetryStore

    store = TelemetryStore(db)
    try:
        evidence = load_evidence(store, run_id)
    finally:
        store.close()
    return _publish(evidence, Path(out))


def recompute_pilot_report(
    run_id: str, *, out: Path, db: str | None = None, config: str | None = None
) -> tuple[dict, list[str]]:
    """Recompute the evidence from stored telemetry, labels and the run record; returns the
    outcome and every difference from the stored evidence (empty when they agree)."""
    from router.config import load_config
    from telemetry import pilot_evidence as ev
    from telemetry.evidence_store import (
        EvidenceError,
        load_evidence,
        load_labels,
        require_pilot_run,
    )
    from telemetry.store import TelemetryStore, safe_url

    store = TelemetryStore(db)
    try:
        run = require_pilot_run(store, run_id)
        counts = run.counts
        cfg = load_config(config)
        if cfg.config_hash != run.config_hash:
            raise ValueError(
                f"run {run_id!r} used config {run.config_hash}, this config is {cfg.config_hash}; "
                "pass the run's config with --config"
            )
        df = store.read(run_id=run_id, columns=list(ev.SLIM_COLUMNS))
        if df.empty:
            raise ValueError(f"run {run_id!r} has no stored decisions (pruned after 90 days?)")
        try:
            stored = load_evidence(store, run_id)
        except EvidenceError:
            stored = None
        labels = load_labels(store, run_id)
        params = run.parameters
        window = tuple(date.fromisoformat(d) for d in params["window"])
        warnings = list(counts.get("warnings", []))
        telemetry_info = dict(counts.get("telemetry", {}))
        telemetry_info.update(db=safe_url(store.url), rows=len(df))
        evidence = ev.build_evidence(
            ev.slim(df),
            cfg,
            run_id=run_id,
            corpus=counts.get("corpus", {"name": params.get("corpus"), "format": None}),
            window=window,
            semantic=bool(params.get("semantic")),
            corpus_summary=counts["corpus_summary"],
            telemetry_info=telemetry_info,
            quality=counts["quality"],
            determinism=counts["determinism"],
            labels=labels,
            warnings=warnings,
            identity=params.get("identity"),
        )
    finally:
        store.close()
    if stored is not None:
        for key in RECOMPUTED_SECTIONS_KEPT:
            if stored.get(key) is not None:
                evidence[key] = stored[key]
                evidence["warnings"].append(
                    f"Recomputed from stored telemetry: the {key} section needs the corpus and "
                    "is kept from the stored evidence."
                )
    diffs = (
        ["no stored evidence to compare with (a run from before evidence was stored)"]
        if stored is None
        else evidence_differences(stored, evidence)
    )
    return _publish(evidence, Path(out)), diffs


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def evidence_differences(stored: dict, recomputed: dict) -> list[str]:
    """Verdict and every criterion field that differs (value, n, interval, status)."""
    out = []
    if stored.get("verdict") != recomputed.get("verdict"):
        out.append(
            f"verdict: stored {stored.get('verdict')!r}, recomputed {recomputed.get('verdict')!r}"
        )
    old = {c["id"]: c for c in stored.get("criteria", [])}
    new = {c["id"]: c for c in recomputed.get("criteria", [])}
    for cid in sorted(set(old) | set(new)):
        if cid not in old or cid not in new:
            out.append(
                f"criterion {cid}: only in the {'stored' if cid in old else 'recomputed'} evidence"
            )
            continue
        for field in ("status", "value", "n", "ci_low", "ci_high"):
            if not _close(old[cid].get(field), new[cid].get(field)):
                out.append(
                    f"criterion {cid}.{field}: stored {old[cid].get(field)!r}, "
                    f"recomputed {new[cid].get(field)!r}"
                )
    if (stored.get("labelled") is None) != (recomputed.get("labelled") is None):
        out.append("labelled section: present in only one of the two")
    return out
