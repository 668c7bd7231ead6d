"""The decision record (schema 1.0.0): the one contract shared by router, telemetry, checks and reports.

Changing what a field means bumps ``DECISION_SCHEMA_VERSION``; the data-quality suite and the
telemetry store are keyed on it, so old rows stay interpretable.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DECISION_SCHEMA_VERSION = "1.0.0"

# A fixed namespace so decision ids are the same in every process and on every machine.
DECISION_NAMESPACE = uuid.UUID("6d2f2b1e-8a57-5c3e-9a8e-0a4d1c6e7b10")


class ComplexityLevel(StrEnum):
    TRIVIAL = "TRIVIAL"
    SIMPLE = "SIMPLE"
    MODERATE = "MODERATE"
    COMPLEX = "COMPLEX"
    EXPERT = "EXPERT"

    @property
    def rank(self) -> int:
        return LEVELS.index(self)


LEVELS: tuple[ComplexityLevel, ...] = tuple(ComplexityLevel)


class Domain(StrEnum):
    GENERAL = "general"
    CODING = "coding"
    MATH = "math"
    BIOLOGY = "biology"
    ROBOTICS = "robotics"
    VISION = "vision"
    SPEECH = "speech"
    IMAGE_GEN = "image_gen"
    AGENT_BUILDER = "agent_builder"


DOMAINS: tuple[Domain, ...] = tuple(Domain)


class ExecutionStyle(StrEnum):
    STREAMING = "streaming"
    STREAMING_REAL_TIME = "streaming_real_time"
    BATCH_PARALLEL = "batch_parallel"


class Outcome(StrEnum):
    NOT_EXECUTED = "not_executed"
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    REJECTED = "rejected"
    FALLBACK = "fallback"


class ExecutionMode(StrEnum):
    DECISION_ONLY = "decision-only"
    EXECUTION_ENABLED = "execution-enabled"


class ReasonCode(Enum):
    """Why a decision came out as it did. The value is the stable code; ``label`` is for people."""

    LEVEL_FROM_RULES = ("LEVEL_FROM_RULES", "Complexity decided by rule features alone")
    LEVEL_FROM_HYBRID = (
        "LEVEL_FROM_HYBRID",
        "Complexity blended from rules and semantic similarity",
    )
    LEVEL_FROM_CASCADE = (
        "LEVEL_FROM_CASCADE",
        "Complexity decided by the fitted rule head alone: far from every level boundary and a"
        " clear domain, so the text was not embedded",
    )
    BORDERLINE_UPSCALE = (
        "BORDERLINE_UPSCALE",
        "Score inside a borderline band: routed one tier up (no-downgrade)",
    )
    DOMAIN_EXPLICIT_INTENT = (
        "DOMAIN_EXPLICIT_INTENT",
        "Explicit service intent (image generation or speech) detected",
    )
    DOMAIN_FROM_RULES = ("DOMAIN_FROM_RULES", "Domain decided by keyword evidence")
    DOMAIN_FROM_SEMANTIC = ("DOMAIN_FROM_SEMANTIC", "Domain decided by semantic similarity")
    DOMAIN_DEFAULT_GENERAL = ("DOMAIN_DEFAULT_GENERAL", "No domain evidence: general")
    CODE_DETECTED = ("CODE_DETECTED", "Code or programming request detected")
    MATH_DETECTED = ("MATH_DETECTED", "Mathematical notation or task detected")
    MULTI_STEP = ("MULTI_STEP", "Several questions or steps requested")
    CONSTRAINTS = ("CONSTRAINTS", "Explicit constraints or requirements listed")
    DEPTH_REQUESTED = ("DEPTH_REQUESTED", "Depth requested (prove, design, trade-offs, ...)")
    LONG_INPUT = ("LONG_INPUT", "Long input")
    INPUT_TRUNCATED = ("INPUT_TRUNCATED", "Input over the size limit: scored on a bounded prefix")
    DOMAIN_MODEL_OVERRIDE = ("DOMAIN_MODEL_OVERRIDE", "Domain routes to a specialised model")
    PRIVACY_REQUIRED = ("PRIVACY_REQUIRED", "Personal data markers: private deployment required")
    DECISION_ONLY_MODE = ("DECISION_ONLY_MODE", "Execution toggle is decision-only: not executed")
    EXECUTION_ENABLED = ("EXECUTION_ENABLED", "Execution toggle is execution-enabled")
    EXECUTION_MODE_INVALID = (
        "EXECUTION_MODE_INVALID",
        "Execution toggle misconfigured: failed closed to decision-only",
    )
    FALLBACK_SAME_TIER = ("FALLBACK_SAME_TIER", "Primary model unhealthy: same-tier fallback used")
    CIRCUIT_OPEN = ("CIRCUIT_OPEN", "Circuit breaker open for the chosen model")
    UPSTREAM_UNAVAILABLE = (
        "UPSTREAM_UNAVAILABLE",
        "No healthy model: rejected, retry with decision_id",
    )
    UPSTREAM_ERROR = ("UPSTREAM_ERROR", "Upstream model returned an error")
    UPSTREAM_TIMEOUT = ("UPSTREAM_TIMEOUT", "Upstream model timed out")

    def __init__(self, code: str, label: str) -> None:
        self.code = code
        self.label = label

    def __str__(self) -> str:
        return self.code

    @classmethod
    def parse(cls, code: str) -> ReasonCode:
        try:
            return cls[code]
        except KeyError:
            raise ValueError(
                f"unknown reason code {code!r}; valid: {', '.join(c.code for c in cls)}"
            ) from None


REASON_CODES: tuple[str, ...] = tuple(c.code for c in ReasonCode)
REASON_SEPARATOR = ","


def decision_id_for(run_id: str, query_id: str) -> str:
    """uuid5 of (run, query): a rerun of the same run writes the same ids, so writes are idempotent."""
    return str(uuid.uuid5(DECISION_NAMESPACE, f"{run_id}\x1f{query_id}"))


def split_reasons(value: str | None) -> list[str]:
    return [c for c in (value or "").split(REASON_SEPARATOR) if c]


def has_reason_code(reason_codes: pd.Series | Iterable[str | None], code: str) -> np.ndarray:
    """Rows whose reason codes hold ``code`` exactly (split on ``REASON_SEPARATOR``; a code that
    merely contains ``code`` does not match). Categorical columns are checked per category."""
    import numpy as np
    import pandas as pd

    if not isinstance(reason_codes, pd.Series):  # a few rows (the service): no Series, ~2 ms
        hits = (isinstance(r, str) and code in split_reasons(r) for r in reason_codes)
        return np.fromiter(hits, dtype=bool)  # None / NaN: no codes
    s = reason_codes
    if isinstance(s.dtype, pd.CategoricalDtype):
        hit = [code in split_reasons(str(c)) for c in s.cat.categories] + [False]
        return np.asarray(hit, dtype=bool)[s.cat.codes.to_numpy()]
    sep = REASON_SEPARATOR
    framed = sep + s.astype("str") + sep
    return (framed.str.contains(sep + code + sep, regex=False) & s.notna()).to_numpy(bool)


@dataclass(frozen=True, slots=True)
class Decision:
    """One routing decision. Holds no raw query text, by construction."""

    decision_id: str
    run_id: str
    query_id: str
    query_hash: str
    ts: datetime
    tenant: str
    complexity_level: str
    complexity_score: float
    borderline: bool
    upscaled: bool
    domain: str
    domain_confidence: float
    model: str
    model_tier: str
    execution_style: str
    confidence_complexity: float
    confidence_model_fit: float
    confidence_execution_fit: float
    confidence_overall: float
    reason_codes: str
    latency_estimate_ms: float
    cost_estimate_usd: float
    tokens_estimate: int
    execution_mode: str
    execution_mode_active: bool
    simulated: bool
    outcome: str
    actual_latency_ms: float | None
    actual_cost_usd: float | None
    error_code: str | None
    privacy_required: bool
    router_version: str
    config_hash: str
    decision_schema_version: str

    @property
    def reasons(self) -> list[str]:
        return split_reasons(self.reason_codes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ts"] = self.ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return d


DECISION_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Decision))

TS_TYPE = pa.timestamp("us", tz="UTC")

DECISION_ARROW_SCHEMA = pa.schema(
    [
        pa.field("decision_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("query_id", pa.string(), nullable=False),
        pa.field("query_hash", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("tenant", pa.string(), nullable=False),
        pa.field("complexity_level", pa.string(), nullable=False),
        pa.field("complexity_score", pa.float64(), nullable=False),
        pa.field("borderline", pa.bool_(), nullable=False),
        pa.field("upscaled", pa.bool_(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("domain_confidence", pa.float64(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("model_tier", pa.string(), nullable=False),
        pa.field("execution_style", pa.string(), nullable=False),
        pa.field("confidence_complexity", pa.float64(), nullable=False),
        pa.field("confidence_model_fit", pa.float64(), nullable=False),
        pa.field("confidence_execution_fit", pa.float64(), nullable=False),
        pa.field("confidence_overall", pa.float64(), nullable=False),
        pa.field("reason_codes", pa.string(), nullable=False),
        pa.field("latency_estimate_ms", pa.float64(), nullable=False),
        pa.field("cost_estimate_usd", pa.float64(), nullable=False),
        pa.field("tokens_estimate", pa.int64(), nullable=False),
        pa.field("execution_mode", pa.string(), nullable=False),
        pa.field("execution_mode_active", pa.bool_(), nullable=False),
        pa.field("simulated", pa.bool_(), nullable=False),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("actual_latency_ms", pa.float64(), nullable=True),
        pa.field("actual_cost_usd", pa.float64(), nullable=True),
        pa.field("error_code", pa.string(), nullable=True),
        pa.field("privacy_required", pa.bool_(), nullable=False),
        pa.field("router_version", pa.string(), nullable=False),
        pa.field("config_hash", pa.string(), nullable=False),
        pa.field("decision_schema_version", pa.string(), nullable=False),
    ],
    metadata={"decision_schema_version": DECISION_SCHEMA_VERSION},
)

assert tuple(DECISION_ARROW_SCHEMA.names) == DECISION_COLUMNS, "schema and dataclass disagree"


def decisions_to_table(decisions: list[Decision]) -> pa.Table:
    """Column-wise build (no per-row dicts) of the schema-1.0.0 Arrow table."""
    cols = {name: [getattr(d, name) for d in decisions] for name in DECISION_COLUMNS}
    return pa.table(cols, schema=DECISION_ARROW_SCHEMA)


def table_to_decisions(table: pa.Table) -> list[Decision]:
    table = table.select(list(DECISION_COLUMNS))
    rows = table.to_pylist()
    return [Decision(**r) for r in rows]
