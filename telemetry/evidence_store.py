"""A pilot's complete evidence and its corpus labels, kept in the telemetry database with the run.

Why: the report folder is a rendering; the database is the record. ``harness pilot report``
re-renders from here (same verdict, same criterion values); a checksum makes a corrupted row a
clear error instead of a silent partial report.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from telemetry.schema import run_evidence, run_labels
from telemetry.store import TelemetryStore

LABEL_COLUMNS = ("expected_level", "expected_domain")
_LABEL_CHUNK = 20_000


class EvidenceError(ValueError):
    """Stored evidence that is missing or cannot be trusted; names the run."""


def _canonical(evidence: dict) -> str:
    return json.dumps(evidence, sort_keys=True, separators=(",", ":"), allow_nan=False)


def save_evidence(store: TelemetryStore, evidence: dict) -> None:
    """Insert or replace the run's evidence (a rerun of the same run id replaces its own),
    validated first against ``telemetry.evidence_model`` (docs/evidence.md)."""
    from telemetry.evidence_model import parse_evidence

    parse_evidence(evidence)
    body = _canonical(evidence)
    values = {
        "run_id": evidence["run_id"],
        "evidence_version": str(evidence["evidence_version"]),
        "verdict": evidence["verdict"],
        "sha256": hashlib.sha256(body.encode()).hexdigest(),
        "created_at": datetime.now(UTC),
        "evidence": body,
    }
    with store._connect(write=True) as conn:
        conn.execute(sa.delete(run_evidence).where(run_evidence.c.run_id == values["run_id"]))
        conn.execute(sa.insert(run_evidence).values(**values))


def load_evidence(store: TelemetryStore, run_id: str) -> dict:
    """The stored evidence, verified against its checksum; ``EvidenceError`` when absent or
    corrupted (never a partial document). Not validated here: a recompute still compares with
    evidence of an older version; rendering it (``reports.pilot.load_evidence``) refuses it,
    naming its version."""
    with store._connect() as conn:
        row = (
            conn.execute(sa.select(run_evidence).where(run_evidence.c.run_id == run_id))
            .mappings()
            .first()
        )
    if row is None:
        raise EvidenceError(
            f"no stored evidence for run {run_id!r} in {store.safe_url} "
            "(a run from before evidence was stored, or one that did not finish: rerun the "
            "pilot, or use --recompute to rebuild from stored telemetry)"
        )
    body = row["evidence"]
    if hashlib.sha256(body.encode()).hexdigest() != row["sha256"]:
        raise EvidenceError(
            f"stored evidence of run {run_id!r} is corrupted (checksum mismatch); refusing to "
            "render a partial report — rerun the pilot or use --recompute"
        )
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise EvidenceError(
            f"stored evidence of run {run_id!r} is not valid JSON ({exc.msg})"
        ) from None
    if not isinstance(data, dict) or data.get("run_id") != run_id:
        raise EvidenceError(f"stored evidence of run {run_id!r} names another run")
    return data


def save_labels(store: TelemetryStore, run_id: str, labels: pd.DataFrame) -> int:
    """Replace the run's stored labels with ``labels`` (query_id + any label columns)."""
    cols = [c for c in LABEL_COLUMNS if c in labels.columns]
    frame = labels[["query_id", *cols]].copy()
    for c in LABEL_COLUMNS:
        if c not in frame:
            frame[c] = None
    frame = frame.astype(object).where(frame.notna(), None)
    with store._connect(write=True) as conn:
        conn.execute(sa.delete(run_labels).where(run_labels.c.run_id == run_id))
        records = [
            {"run_id": run_id, "query_id": str(q), "expected_level": lv, "expected_domain": dm}
            for q, lv, dm in zip(
                frame["query_id"], frame["expected_level"], frame["expected_domain"], strict=True
            )
        ]
        for a in range(0, len(records), _LABEL_CHUNK):
            conn.execute(sa.insert(run_labels), records[a : a + _LABEL_CHUNK])
    return len(frame)


def load_labels(store: TelemetryStore, run_id: str) -> pd.DataFrame | None:
    """The run's labels, or None when the corpus had none."""
    with store._connect() as conn:
        rows = conn.execute(
            sa.select(run_labels.c.query_id, *(run_labels.c[c] for c in LABEL_COLUMNS)).where(
                run_labels.c.run_id == run_id
            )
        ).all()
    if not rows:
        return None
    return pd.DataFrame(rows, columns=["query_id", *LABEL_COLUMNS])


def delete_run_evidence(store: TelemetryStore, run_id: str) -> None:
    with store._connect(write=True) as conn:
        conn.execute(sa.delete(run_evidence).where(run_evidence.c.run_id == run_id))
        conn.execute(sa.delete(run_labels).where(run_labels.c.run_id == run_id))


def require_pilot_run(store: TelemetryStore, run_id: str, *, finished: bool = True):
    """The run record of a pilot, or a clear error naming the run (unknown id, another kind of
    run, or a run that did not finish)."""
    from telemetry.store import safe_url

    run = store.get_run(run_id)
    if run is None:
        raise LookupError(
            f"no run {run_id!r} in {safe_url(store.url)} (see `harness telemetry runs`)"
        )
    if run.kind != "pilot":
        raise ValueError(f"run {run_id!r} is a {run.kind} run, not a pilot")
    if finished and "quality" not in (run.counts or {}):
        raise ValueError(f"run {run_id!r} did not finish (status {run.status}); rerun the pilot")
    return run
