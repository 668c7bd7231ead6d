"""The run log of the telemetry store: one ``runs`` row per pilot or drill run (kind, parameters,
config hash, start, end, status, counts), kept when old decisions are pruned, as the index of what
happened.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from telemetry.errors import UnknownRunError
from telemetry.schema import RUN_COLUMNS, decision_telemetry, require_aware, runs

if TYPE_CHECKING:
    import pandas as pd

RUN_STATUSES: tuple[str, ...] = ("running", "completed", "failed", "aborted", "interrupted")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One row of ``runs``, with the JSON columns parsed."""

    run_id: str
    kind: str
    parameters: dict[str, Any]
    config_hash: str | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    counts: dict[str, Any] | None


class RunLog:
    """Run records, mixed into ``TelemetryStore``: its connections and its dialect's upsert."""

    safe_url: str

    def _connect(self, *, write: bool = False) -> contextlib.AbstractContextManager[sa.Connection]:
        raise NotImplementedError

    def _dialect_insert(self, table: sa.Table) -> Any:
        raise NotImplementedError

    def start_run(
        self,
        run_id: str,
        kind: str,
        parameters: Mapping[str, Any] | None = None,
        config_hash: str | None = None,
        *,
        started_at: datetime | None = None,
    ) -> RunRecord:
        """Record (or restart: decision ids are per run, so reruns are idempotent) a run."""
        if not isinstance(run_id, str) or not run_id.strip():
            raise ValueError(f"run_id must be a non-empty string, got {run_id!r}")
        if not isinstance(kind, str) or not kind.strip():
            raise ValueError(f"kind must be a non-empty string such as 'pilot', got {kind!r}")
        params = dict(parameters or {})
        values = {
            "run_id": run_id,
            "kind": kind,
            "parameters": json.dumps(params, sort_keys=True, default=str),
            "config_hash": config_hash,
            "started_at": require_aware(started_at, "started_at") or datetime.now(UTC),
            "finished_at": None,
            "status": "running",
            "counts": None,
        }
        stmt = self._dialect_insert(runs).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id"],
            set_={k: stmt.excluded[k] for k in values if k != "run_id"},
        )
        with self._connect(write=True) as conn:
            conn.execute(stmt)
        record = self.get_run(run_id)
        assert record is not None
        return record

    def finish_run(
        self,
        run_id: str,
        status: str,
        counts: Mapping[str, Any] | None = None,
        *,
        finished_at: datetime | None = None,
    ) -> RunRecord:
        """Close a run with its final status and counts. Raises ``UnknownRunError`` if not started."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}; valid: {', '.join(RUN_STATUSES)}")
        stmt = (
            sa.update(runs)
            .where(runs.c.run_id == run_id)
            .values(
                status=status,
                counts=json.dumps(dict(counts or {}), sort_keys=True, default=str),
                finished_at=require_aware(finished_at, "finished_at") or datetime.now(UTC),
            )
        )
        with self._connect(write=True) as conn:
            updated = conn.execute(stmt).rowcount
        if not updated:
            raise UnknownRunError(
                f"cannot finish run {run_id!r}: not started in {self.safe_url} (call start_run)"
            )
        record = self.get_run(run_id)
        assert record is not None
        return record

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run record, or None when no run has this id."""
        with self._connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
        return _run_record(row) if row is not None else None

    def list_runs(self) -> pd.DataFrame:
        """All runs, oldest first, with parsed ``parameters``/``counts`` and a ``decisions`` count."""
        import pandas as pd

        per_run = (
            sa.select(decision_telemetry.c.run_id, sa.func.count().label("decisions")).group_by(
                decision_telemetry.c.run_id
            )
        ).subquery()
        stmt = (
            sa.select(runs, sa.func.coalesce(per_run.c.decisions, 0).label("decisions"))
            .select_from(runs.outerjoin(per_run, per_run.c.run_id == runs.c.run_id))
            .order_by(runs.c.started_at, runs.c.run_id)
        )
        with self._connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        records = []
        for row in rows:
            rec = _run_record(row)
            records.append(
                {
                    **{c: getattr(rec, c) for c in RUN_COLUMNS},
                    "decisions": int(row["decisions"]),
                }
            )
        frame = pd.DataFrame(records, columns=[*RUN_COLUMNS, "decisions"])
        for col in ("started_at", "finished_at"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        return frame

    def _known_run_ids(self, limit: int) -> list[str]:
        stmt = sa.select(runs.c.run_id).order_by(runs.c.started_at.desc()).limit(limit)
        with self._connect() as conn:
            return list(conn.execute(stmt).scalars())


def _run_record(row: Mapping[str, Any]) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"],
        kind=row["kind"],
        parameters=json.loads(row["parameters"]) if row["parameters"] else {},
        config_hash=row["config_hash"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        status=row["status"],
        counts=json.loads(row["counts"]) if row["counts"] is not None else None,
    )
