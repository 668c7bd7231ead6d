"""SQLAlchemy Core tables of the telemetry store, derived from the decision record contract.

``decision_telemetry`` is built from ``router.decision.DECISION_ARROW_SCHEMA`` so the database and
the record cannot drift apart. ``harness_meta`` records which store layout created the database,
so a newer or older harness refuses it instead of writing into a layout it does not understand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import sqlalchemy as sa

from router.decision import DECISION_ARROW_SCHEMA, DECISION_COLUMNS

#: Layout version of the store's tables. Bump it when a table or column changes.
STORE_SCHEMA_VERSION = "1"

#: Decision-record versions this layout stores (the rows' ``decision_schema_version``).
SUPPORTED_DECISION_VERSIONS: frozenset[str] = frozenset({"1.0.0"})

META_VERSION_KEY = "store_schema_version"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_epoch_us(value: datetime) -> int:
    """Exact integer microseconds since the Unix epoch of a tz-aware datetime."""
    return (value - _EPOCH) // _MICROSECOND


def from_epoch_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def require_aware(value: datetime | None, name: str = "value") -> datetime | None:
    """``value`` in UTC (None stays None). A naive time is refused rather than guessed."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError(f"{name}={value.isoformat()} is naive; pass a tz-aware (UTC) datetime")
    return value.astimezone(UTC)


class UtcDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC in and out on every dialect.

    PostgreSQL stores ``timestamptz``. SQLite has no time type: it stores integer microseconds
    since the Unix epoch (``datetime(ts / 1e6, 'unixepoch')`` in the sqlite3 shell shows them),
    which is exact, sorts and compares as time, and bulk-loads and indexes faster than text.
    Naive input is refused rather than guessed.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> object:
        value = require_aware(value)
        if value is None:
            return None
        return to_epoch_us(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: object, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, int):
            return from_epoch_us(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sql_type(arrow_type: pa.DataType) -> sa.types.TypeEngine:
    if pa.types.is_string(arrow_type):
        return sa.String()
    if pa.types.is_timestamp(arrow_type):
        return UtcDateTime()
    if pa.types.is_float64(arrow_type):
        return sa.Double()
    if pa.types.is_int64(arrow_type):
        return sa.BigInteger()
    if pa.types.is_boolean(arrow_type):
        return sa.Boolean(create_constraint=False)
    raise TypeError(f"no SQL type for arrow type {arrow_type}; extend telemetry.schema._sql_type")


metadata = sa.MetaData()

decision_telemetry = sa.Table(
    "decision_telemetry",
    metadata,
    *(
        sa.Column(
            f.name,
            _sql_type(f.type),
            primary_key=f.name == "decision_id",
            nullable=f.nullable,
        )
        for f in DECISION_ARROW_SCHEMA
    ),
    sa.Index("ix_decision_telemetry_run_id", "run_id"),
    sa.Index("ix_decision_telemetry_ts", "ts"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(), primary_key=True),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("parameters", sa.Text(), nullable=False),
    sa.Column("config_hash", sa.String(), nullable=True),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("counts", sa.Text(), nullable=True),
)

run_evidence = sa.Table(
    "run_evidence",
    metadata,
    sa.Column("run_id", sa.String(), primary_key=True),
    sa.Column("evidence_version", sa.String(), nullable=False),
    sa.Column("verdict", sa.String(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("evidence", sa.Text(), nullable=False),
)
"""The complete evidence of a pilot (criteria, comparison, labelled evaluation, calibration
input), so a rebuilt report says exactly what the original said. Additive: older databases get
the table on first contact, no store-version bump."""

run_labels = sa.Table(
    "run_labels",
    metadata,
    sa.Column("run_id", sa.String(), primary_key=True),
    sa.Column("query_id", sa.String(), primary_key=True),
    sa.Column("expected_level", sa.String(), nullable=True),
    sa.Column("expected_domain", sa.String(), nullable=True),
)
"""The corpus labels of a pilot's queries (never text), for calibration against labels."""

harness_meta = sa.Table(
    "harness_meta",
    metadata,
    sa.Column("key", sa.String(), primary_key=True),
    sa.Column("value", sa.String(), nullable=False),
)

RUN_COLUMNS: tuple[str, ...] = tuple(c.name for c in runs.columns)

assert tuple(decision_telemetry.columns.keys()) == DECISION_COLUMNS, "table and record disagree"
