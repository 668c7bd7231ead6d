"""The single streaming pass: read, validate, partition accepted rows by UTC day, write the
quarantine file; and the prepared corpus that yields one day at a time.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data.corpus.readers import READERS, detect_format
from data.corpus.schema import (
    ACCEPTED_SCHEMA,
    BATCH_ROWS,
    QUARANTINE_SCHEMA,
    REASONS,
    US_PER_DAY,
    CorpusError,
    Reason,
    Reject,
    safe_text,
    to_numpy,
)
from data.corpus.summary import CorpusSummary
from data.corpus.validation import Validator


def _day_dir(parts: Path, d: date) -> Path:
    return parts / f"day={d.isoformat()}"


@dataclass
class PreparedCorpus:
    """A validated corpus, partitioned by UTC day under ``work_dir``; iterate with iter_days."""

    summary: CorpusSummary
    work_dir: Path
    quarantine_path: Path
    days: tuple[date, ...]  # days inside the window that have rows, in order
    _parts: Path
    _cleanup: Any = None

    def read_day(self, day: date) -> pa.Table:
        """One day's accepted rows, sorted by (ts, row_number)."""
        d_dir = _day_dir(self._parts, day)
        files = sorted(d_dir.glob("*.parquet")) if d_dir.exists() else []
        if not files:
            return ACCEPTED_SCHEMA.empty_table()
        table = pa.concat_tables([pq.read_table(f, schema=ACCEPTED_SCHEMA) for f in files])
        return table.sort_by([("ts", "ascending"), ("row_number", "ascending")])

    def iter_days(self) -> Iterator[tuple[date, pa.Table]]:
        """(day, accepted rows) for each day of the window that has rows; one day in memory."""
        for d in self.days:
            yield d, self.read_day(d)

    def close(self) -> None:
        """Remove the work dir if this object created it (a temporary directory)."""
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> PreparedCorpus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _to_day(value: date | str | None, what: str) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CorpusError(f"{what} {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _window(
    days_present: list[date], start: date | None, days: int | None
) -> tuple[date, date] | None:
    """Inclusive window. ``days`` alone means the last ``days`` calendar days up to the last
    day with rows; ``start`` alone runs to the last day with rows."""
    if days is not None and days < 1:
        raise CorpusError(f"days must be at least 1, got {days}")
    try:
        return _window_dates(days_present, start, days)
    except OverflowError:  # --days 10000000, --start 9999-12-31
        raise CorpusError(
            f"the window (start {start or 'the data'}, {days:,} days) falls outside years 1-9999; "
            "use fewer days or an earlier start"
        ) from None


def _window_dates(
    days_present: list[date], start: date | None, days: int | None
) -> tuple[date, date] | None:
    if not days_present:
        if start is None:
            return None
        return start, start + timedelta(days=(days or 1) - 1)
    first, last = days_present[0], days_present[-1]
    if start is None and days is None:
        return first, last
    if start is None:
        return last - timedelta(days=days - 1), last
    if days is None:
        return start, max(start, last)
    return start, start + timedelta(days=days - 1)


def check_columns(path: str | Path, *, format: str | None = None) -> str:
    """A cheap early check of what ``load_corpus`` would refuse as a whole file (not found,
    unknown format, unreadable, a required column missing), reading the header and at most
    one record; returns the format. ``CorpusError`` messages never carry row text. JSONL is
    checked for readability only: its columns are the keys of a whole batch."""
    src = Path(path)
    fmt = detect_format(src, format)
    if not src.is_file():
        raise CorpusError(f"corpus file not found: {src}")
    try:
        if fmt != "jsonl":
            next(iter(READERS[fmt](src, 1)), None)
    except (OSError, EOFError) as exc:
        raise CorpusError(f"cannot read {src}: {exc}") from None
    return fmt


def load_corpus(
    path: str | Path,
    *,
    format: str | None = None,
    quarantine_path: str | Path | None = None,
    work_dir: str | Path | None = None,
    start: date | str | None = None,
    days: int | None = None,
    hash_key: bytes | None = None,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int], None] | None = None,
    remove_work_dir: bool | None = None,
) -> PreparedCorpus:
    """Validate ``path`` in one streaming pass and partition accepted rows by UTC day.

    Bad rows go to ``quarantine_path`` (default ``<work_dir>/quarantine.parquet``; the file is
    always written, empty when nothing was quarantined). ``work_dir/accepted`` is replaced; with
    no ``work_dir`` a temporary directory is used and removed by ``close()``. ``start``/``days``
    select the days ``iter_days`` yields (see ``_window``). ``hash_key`` keys the user-id hash;
    by default the ``AMAIMA_TELEMETRY_HASH_KEY`` environment variable. ``progress`` is called
    with the number of rows read so far. ``remove_work_dir`` (default: only for a temporary
    one) deletes ``work_dir`` on ``close()``, on failure and at garbage collection: the day
    partitions hold query text and must not outlive the run.
    """
    src = Path(path)
    fmt = detect_format(src, format)
    if not src.exists():
        raise CorpusError(f"corpus file not found: {src}")
    if not src.is_file():
        raise CorpusError(f"corpus path is not a file: {src}")
    start_d = _to_day(start, "start")

    temporary = work_dir is None if remove_work_dir is None else remove_work_dir
    if work_dir is None:
        wd = Path(tempfile.mkdtemp(prefix="amaima-corpus-"))
    else:
        wd = Path(work_dir)
        wd.mkdir(parents=True, exist_ok=True)
    parts = wd / "accepted"
    try:
        if parts.exists():
            shutil.rmtree(parts)
        parts.mkdir(parents=True)
        q_path = Path(quarantine_path) if quarantine_path is not None else wd / "quarantine.parquet"
        q_path.parent.mkdir(parents=True, exist_ok=True)
        summary = _validate_file(
            src, fmt, parts, q_path, start_d, days, hash_key, batch_rows, progress
        )
    except BaseException:
        if temporary:
            shutil.rmtree(wd, ignore_errors=True)
        raise
    window = summary.window
    in_window = tuple(d for d in summary.days if window is not None and window[0] <= d <= window[1])
    corpus = PreparedCorpus(summary, wd, q_path, in_window, parts)
    if temporary:  # removed on close(), or when the object is garbage-collected
        corpus._cleanup = weakref.finalize(corpus, shutil.rmtree, str(wd), ignore_errors=True)
    return corpus


def _validate_file(
    src: Path,
    fmt: str,
    parts: Path,
    q_path: Path,
    start: date | None,
    days: int | None,
    hash_key: bytes | None,
    batch_rows: int,
    progress: Callable[[int], None] | None,
) -> CorpusSummary:
    """The single streaming pass: read, validate, write day partitions and quarantine rows."""
    validator: Validator | None = None
    rows_per_day: dict[int, int] = {}
    reasons = dict.fromkeys((r.value for r in REASONS), 0)
    accepted = quarantined = 0
    first_us: int | None = None
    last_us: int | None = None
    columns: tuple[str, ...] = ()
    tmp_q = q_path.with_name(f".{q_path.name}.{uuid.uuid4().hex[:8]}.tmp")
    writer = pq.ParquetWriter(tmp_q, QUARANTINE_SCHEMA, compression="zstd")
    try:
        for part_no, chunk in enumerate(READERS[fmt](src, batch_rows)):
            columns = (*columns, *(c for c in chunk.columns if c not in columns))
            if validator is None:
                key = hash_key
                if key is None:
                    from router.privacy import hash_key_from_env

                    key = hash_key_from_env(warn="user_id" in chunk.columns)
                validator = Validator(key)
            table, rejects = validator.check(chunk)
            if rejects:
                writer.write_table(_quarantine_table(rejects, validator.hash_key))
                quarantined += len(rejects)
                for r in rejects:
                    reasons[r.reason.value] += 1
            if table.num_rows:
                accepted += table.num_rows
                us = to_numpy(pc.cast(table.column("ts"), pa.int64()))
                first_us = int(us.min()) if first_us is None else min(first_us, int(us.min()))
                last_us = int(us.max()) if last_us is None else max(last_us, int(us.max()))
                day_no = us // US_PER_DAY
                for d in np.unique(day_no):
                    mask = day_no == d
                    day = date(1970, 1, 1) + timedelta(days=int(d))
                    out = _day_dir(parts, day)
                    out.mkdir(exist_ok=True)
                    pq.write_table(
                        table.filter(pa.array(mask)),
                        out / f"part-{part_no:06d}.parquet",
                        compression="zstd",
                    )
                    rows_per_day[int(d)] = rows_per_day.get(int(d), 0) + int(mask.sum())
            if progress is not None:
                progress(accepted + quarantined)
    except BaseException:
        writer.close()
        tmp_q.unlink(missing_ok=True)
        raise
    writer.close()
    tmp_q.replace(q_path)

    per_day = {date(1970, 1, 1) + timedelta(days=d): c for d, c in sorted(rows_per_day.items())}
    window = _window(sorted(per_day), start, days)
    in_window = sum(
        c for d, c in per_day.items() if window is not None and window[0] <= d <= window[1]
    )

    def ts(us: int | None) -> datetime | None:
        return None if us is None else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)

    return CorpusSummary(
        path=str(src),
        format=fmt,
        total_rows=accepted + quarantined,
        accepted=accepted,
        quarantined=quarantined,
        reasons=reasons,
        rows_per_day=per_day,
        first_ts=ts(first_us),
        last_ts=ts(last_us),
        window=window,
        in_window=in_window,
        quarantine_path=str(q_path),
        columns=columns,
    )


# A malformed or mis-encoded row's fields may be misaligned (a stray quote, a broken line):
# its "query_id" is kept only when it looks like an id, never when it may be query text.
_ID_SHAPE = re.compile(r"[\w.:@/+#=-]{1,128}")
_MISALIGNED = (Reason.MALFORMED_ROW, Reason.INVALID_ENCODING)


def _quarantine_id(r: Reject) -> str | None:
    qid = safe_text(r.query_id)
    if qid is not None and r.reason in _MISALIGNED and not _ID_SHAPE.fullmatch(qid):
        return None
    return qid


def _quarantine_table(rejects: list[Reject], key: bytes | None) -> pa.Table:
    from router.privacy import hash_text

    texts = [
        None if r.text is None else (r.text if isinstance(r.text, str) else safe_text(r.text))
        for r in rejects
    ]
    return pa.table(
        {
            "row_number": pa.array([r.row_number for r in rejects], pa.int64()),
            "query_id": pa.array([_quarantine_id(r) for r in rejects], pa.string()),
            "reason": pa.array([r.reason.value for r in rejects], pa.string()),
            "detail": pa.array([r.detail for r in rejects], pa.string()),
            "text_hash": pa.array(
                [None if t is None else hash_text(t, key) for t in texts], pa.string()
            ),
            "text_chars": pa.array([None if t is None else len(t) for t in texts], pa.int64()),
        },
        schema=QUARANTINE_SCHEMA,
    )


def validate_corpus(path: str | Path, **kwargs: Any) -> CorpusSummary:
    """Validate only: the summary; day partitions are discarded, and so is the quarantine file
    unless ``quarantine_path`` is given (then ``summary.quarantine_path`` is None)."""
    kwargs.setdefault("work_dir", None)
    keep_quarantine = kwargs.get("quarantine_path") is not None or kwargs["work_dir"] is not None
    with load_corpus(path, **kwargs) as corpus:
        summary = corpus.summary
    return summary if keep_quarantine else replace(summary, quarantine_path=None)


def iter_days(path: str | Path, **kwargs: Any) -> Iterator[tuple[date, pa.Table]]:
    """Validate ``path`` and yield (day, accepted rows) per UTC day; see ``load_corpus``."""
    with load_corpus(path, **kwargs) as corpus:
        yield from corpus.iter_days()


def read_quarantine(path: str | Path) -> pa.Table:
    """The quarantine file as written by ``load_corpus``."""
    return pq.read_table(path, schema=QUARANTINE_SCHEMA)
