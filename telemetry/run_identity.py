"""Who a pilot run is: its id covers the series, window, config, scorer, comparison candidate,
the telemetry database and a fingerprint of the accepted corpus rows.

Why: decision ids are uuid5(run id + query id), so a crashed run rerun on the same content gets
the same id and the idempotent store keeps one copy; different content gets a new id, so no run
ever overwrites another run's rows or report (a second corpus over the same window used to reuse
the id, keep the old rows and then report a false determinism failure).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from telemetry.store import safe_url

SERIES_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")
"""A series becomes part of folder names: no separators, no dots, no leading punctuation."""


class RunIdentityError(ValueError):
    """A name that cannot be part of a run id (and so of a folder name)."""


def check_series(series: str) -> str:
    """Validate ``--series`` at the edge, before any work, so it can never become a path."""
    if not isinstance(series, str) or not SERIES_PATTERN.match(series):
        raise RunIdentityError(
            f"--series {series!r} is not a valid series name: use 1-48 letters, digits, '-' or "
            "'_', starting with a letter or digit (it becomes part of the run id and folder name)"
        )
    return series


def fingerprint_days(days: Iterable[pa.Table]) -> tuple[str, int]:
    """SHA-256 over every accepted row's (query_id, ts, text) in a canonical order (by day, then
    query id), so the same rows in any file order give the same fingerprint. Returns the hex
    digest and the row count."""
    h = hashlib.sha256()
    rows = 0
    for table in days:
        t = table.select(["query_id", "ts", "text"])
        order = pc.sort_indices(t, sort_keys=[("query_id", "ascending")])
        t = t.take(order)
        ts = pc.cast(t.column("ts"), pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
        for qid, us, text in zip(
            t.column("query_id").to_pylist(), ts, t.column("text").to_pylist(), strict=True
        ):
            q = qid.encode("utf-8", "surrogatepass")
            x = text.encode("utf-8", "surrogatepass")
            h.update(b"%d:%s%d;%d:%s" % (len(q), q, us, len(x), x))
        rows += t.num_rows
    return h.hexdigest(), rows


def database_identity(url: str) -> str:
    """The database a run's rows live in, without password or driver: sqlite file path, or
    host:port/database (+ search_path option) for PostgreSQL."""
    import sqlalchemy as sa

    u = sa.make_url(safe_url(url))
    if u.get_backend_name() == "sqlite":
        return f"sqlite:{u.database or ':memory:'}"
    opts = u.query.get("options", "")
    return f"{u.get_backend_name()}://{u.host or ''}:{u.port or ''}/{u.database or ''}?{opts}"


@dataclass(frozen=True)
class RunIdentity:
    series: str
    window: tuple[str, str]
    config_hash: str
    semantic: bool
    candidate_config_hash: str | None
    corpus_fingerprint: str
    corpus_rows: int
    database: str
    target: str | None = None
    """The deployed router a shadow pilot replayed against (None: the in-process router)."""

    @property
    def key(self) -> str:
        """8 hex digits over what the readable part of the id does not spell out."""
        parts = [self.corpus_fingerprint, self.candidate_config_hash or "", self.database]
        if self.target:
            parts.append(self.target)
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:8]

    @property
    def run_id(self) -> str:
        mode = "-target" if self.target else ("" if self.semantic else "-rules")
        vs = f"-vs-{self.candidate_config_hash[:8]}" if self.candidate_config_hash else ""
        start, end = (d.replace("-", "") for d in self.window)
        return f"{self.series}-{start}-{end}-{self.config_hash[:8]}{mode}{vs}-{self.key}"

    def to_dict(self) -> dict:
        return {**asdict(self), "window": list(self.window), "run_id": self.run_id}


def make_identity(
    *,
    series: str,
    window: tuple[date, date],
    config_hash: str,
    semantic: bool,
    candidate_config_hash: str | None,
    corpus_days: Iterable[pa.Table],
    db_url: str,
    target: str | None = None,
) -> RunIdentity:
    fp, rows = fingerprint_days(corpus_days)
    return RunIdentity(
        series=check_series(series),
        window=(window[0].isoformat(), window[1].isoformat()),
        config_hash=config_hash,
        semantic=semantic,
        candidate_config_hash=candidate_config_hash,
        corpus_fingerprint=fp,
        corpus_rows=rows,
        database=database_identity(db_url),
        target=target.rstrip("/") if target else None,
    )
