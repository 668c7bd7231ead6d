"""Valid schema-1.0.0 decision tables for tests and benchmarks (no router, no model needed).

``decision_id`` depends only on (run_id, row index), like the real router's uuid5 of (run, query):
the same call twice yields the same ids, which is what idempotency tests need. ``seed`` changes the
values, not the ids.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from router.decision import (
    DECISION_ARROW_SCHEMA,
    DECISION_SCHEMA_VERSION,
    DOMAINS,
    LEVELS,
    ExecutionMode,
    ExecutionStyle,
    Outcome,
    ReasonCode,
    decision_id_for,
)

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MODELS = (("small-8b", "small"), ("medium-70b", "medium"), ("large-405b", "large"))
_REASONS = (
    ReasonCode.LEVEL_FROM_RULES.code,
    f"{ReasonCode.LEVEL_FROM_HYBRID.code},{ReasonCode.BORDERLINE_UPSCALE.code}",
    f"{ReasonCode.LEVEL_FROM_RULES.code},{ReasonCode.CODE_DETECTED.code}",
)


def make_decision_table(
    n: int,
    run_id: str = "r1",
    start: datetime = DEFAULT_START,
    seed: int = 0,
    *,
    interval: timedelta = timedelta(seconds=1),
    first_query: int = 0,
    execution_enabled: bool = False,
) -> pa.Table:
    """``n`` valid decisions of ``run_id``, one every ``interval`` from ``start`` (tz-aware).

    Query ids are ``q00000000 + first_query ...`` so consecutive calls can extend a run. By
    default the rows keep the decision-only contract the router writes (simulated, not executed,
    no actuals); ``execution_enabled=True`` gives executed rows with outcomes and actuals.
    """
    rng = np.random.default_rng(seed)
    idx = np.arange(first_query, first_query + n)
    query_ids = [f"q{i:08d}" for i in idx]
    level_i = rng.integers(0, len(LEVELS), n)
    model_i = np.minimum(level_i // 2, len(_MODELS) - 1)
    rng.random(n)  # keeps the random stream (and every other column) stable across versions
    executed = np.full(n, execution_enabled)
    outcome_pool = np.array([Outcome.OK.value, Outcome.ERROR.value, Outcome.FALLBACK.value])
    outcomes = np.where(executed, outcome_pool[rng.integers(0, 3, n)], Outcome.NOT_EXECUTED.value)
    mode = ExecutionMode.EXECUTION_ENABLED if execution_enabled else ExecutionMode.DECISION_ONLY
    mode_reason = (
        ReasonCode.EXECUTION_ENABLED if execution_enabled else ReasonCode.DECISION_ONLY_MODE
    ).code
    actual_latency = np.where(executed, rng.gamma(2.0, 150.0, n), np.nan)
    start_us = (start - _EPOCH) // timedelta(microseconds=1)
    ts = start_us + idx.astype(np.int64) * int(interval / timedelta(microseconds=1))
    columns = {
        "decision_id": [decision_id_for(run_id, q) for q in query_ids],
        "run_id": [run_id] * n,
        "query_id": query_ids,
        "query_hash": [hashlib.sha256(f"{seed}:{i}".encode()).hexdigest() for i in idx],
        "ts": pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "tenant": [f"tenant-{t}" for t in rng.integers(0, 5, n)],
        "complexity_level": [LEVELS[i].value for i in level_i],
        "complexity_score": rng.random(n),
        "borderline": rng.random(n) < 0.1,
        "upscaled": rng.random(n) < 0.05,
        "domain": [DOMAINS[i].value for i in rng.integers(0, len(DOMAINS), n)],
        "domain_confidence": rng.random(n),
        "model": [_MODELS[i][0] for i in model_i],
        "model_tier": [_MODELS[i][1] for i in model_i],
        "execution_style": [
            list(ExecutionStyle)[i].value for i in rng.integers(0, len(ExecutionStyle), n)
        ],
        "confidence_complexity": rng.random(n),
        "confidence_model_fit": rng.random(n),
        "confidence_execution_fit": rng.random(n),
        "confidence_overall": rng.random(n),
        "reason_codes": [f"{_REASONS[i]},{mode_reason}" for i in rng.integers(0, len(_REASONS), n)],
        "latency_estimate_ms": rng.gamma(2.0, 100.0, n),
        "cost_estimate_usd": rng.random(n) / 100,
        "tokens_estimate": rng.integers(10, 4000, n),
        "execution_mode": [mode.value] * n,
        "execution_mode_active": executed,
        "simulated": ~executed,  # decision-only rows are simulated, as the router writes them
        "outcome": outcomes.tolist(),
        "actual_latency_ms": pa.array(actual_latency, pa.float64(), from_pandas=True),
        "actual_cost_usd": pa.array(
            np.where(executed, rng.random(n) / 100, np.nan), pa.float64(), from_pandas=True
        ),
        "error_code": [
            "E_UPSTREAM" if o == Outcome.ERROR.value else None for o in outcomes.tolist()
        ],
        "privacy_required": rng.random(n) < 0.02,
        "router_version": ["0.1.0"] * n,
        "config_hash": ["c0ffee" * 4] * n,
        "decision_schema_version": [DECISION_SCHEMA_VERSION] * n,
    }
    return pa.table(columns, schema=DECISION_ARROW_SCHEMA)
