"""Rebuild a pilot report from stored telemetry and the run record (no corpus needed).

What the store cannot give back — the candidate routing of a shadow comparison and the corpus
labels — is left out of a rebuilt report, and the report says so.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path


def rebuild_pilot_report(
    run_id: str, *, out: Path, db: str | None = None, config: str | None = None
) -> dict:
    from reports.pilot import build_pilot_report
    from reports.site import build_index
    from router.config import load_config
    from telemetry import pilot_evidence as ev
    from telemetry.store import TelemetryStore, safe_url

    store = TelemetryStore(db)
    try:
        run = store.get_run(run_id)
        if run is None:
            raise LookupError(
                f"no run {run_id!r} in {safe_url(store.url)} (see `harness telemetry runs`)"
            )
        if run.kind != "pilot":
            raise ValueError(f"run {run_id!r} is a {run.kind} run, not a pilot")
        counts = run.counts or {}
        if "quality" not in counts:
            raise ValueError(
                f"run {run_id!r} did not finish (status {run.status}); rerun the pilot"
            )
        cfg = load_config(config)
        if cfg.config_hash != run.config_hash:
            raise ValueError(
                f"run {run_id!r} used config {run.config_hash}, this config is {cfg.config_hash}; "
                "pass the run's config with --config"
            )
        df = store.read(run_id=run_id, columns=list(ev.SLIM_COLUMNS))
        if df.empty:
            raise ValueError(f"run {run_id!r} has no stored decisions (pruned after 90 days?)")
        params = run.parameters
        window = tuple(date.fromisoformat(d) for d in params["window"])
        warnings = list(counts.get("warnings", []))
        warnings.append(
            "Rebuilt from stored telemetry: the shadow comparison and labelled sections are not "
            "stored and are omitted."
        )
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
            comparison=None,
            labels=None,
            warnings=warnings,
        )
    finally:
        store.close()
    out = Path(out)
    evidence_path = ev.write_evidence(evidence, out / run_id)
    paths = build_pilot_report(evidence, out)
    build_index(out)
    return {
        "run_id": run_id,
        "verdict": evidence["verdict"],
        "report_html": str(paths.html),
        "report_md": str(paths.markdown),
        "evidence": str(evidence_path),
        "criteria": evidence["criteria"],
    }
