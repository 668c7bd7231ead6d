"""Single decisions for execution tests, built from the packaged catalog (no router engine needed).

The fields follow what the router writes: the tier, estimates and execution style come from the
catalog entry of ``model``; the mode fields follow the toggle value ``mode`` the way the router
derives them (active only for exactly ``execution-enabled``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from datetime import UTC, datetime

from router.config import RouterConfig, load_config
from router.decision import (
    DECISION_SCHEMA_VERSION,
    ComplexityLevel,
    Decision,
    ExecutionMode,
    Outcome,
    ReasonCode,
    decision_id_for,
)

# A level that routes to each tier in the default config (services: any level).
_TIER_LEVEL = {
    "tiny": ComplexityLevel.TRIVIAL,
    "small": ComplexityLevel.SIMPLE,
    "medium": ComplexityLevel.MODERATE,
    "large": ComplexityLevel.COMPLEX,
    "frontier": ComplexityLevel.EXPERT,
}
_SERVICE_DOMAIN = {"image": "image_gen", "speech": "speech"}

DEFAULT_TEXT = "Compare the trade-offs between PostgreSQL and Cassandra for time series."

_CONFIG: RouterConfig | None = None
_HASHES: dict[int, str] = {}


def default_config() -> RouterConfig:
    global _CONFIG
    if _CONFIG is None:
        _CONFIG = load_config()
    return _CONFIG


def _config_hash(cfg: RouterConfig) -> str:
    """``config_hash`` re-serialises the whole config on every access; tests build many decisions."""
    h = _HASHES.get(id(cfg))
    if h is None:
        h = _HASHES[id(cfg)] = cfg.config_hash
    return h


def make_decision(
    model: str = "llama-3.1-405b-instruct",
    mode: str = "execution-enabled",
    *,
    query_id: str = "q-0001",
    run_id: str = "test-run",
    text: str = DEFAULT_TEXT,
    config: RouterConfig | None = None,
    **overrides: object,
) -> Decision:
    """A schema-1.0.0 decision routed to ``model`` under toggle value ``mode``."""
    cfg = config or default_config()
    spec = cfg.model(model)
    level = _TIER_LEVEL.get(spec.tier, ComplexityLevel.MODERATE)
    domain = _SERVICE_DOMAIN.get(spec.tier, "general")
    active = mode == ExecutionMode.EXECUTION_ENABLED.value
    effective = ExecutionMode.EXECUTION_ENABLED if active else ExecutionMode.DECISION_ONLY
    valid_modes = {m.value for m in ExecutionMode}
    mode_codes = [ReasonCode.EXECUTION_ENABLED if active else ReasonCode.DECISION_ONLY_MODE]
    if mode not in valid_modes:
        mode_codes.append(ReasonCode.EXECUTION_MODE_INVALID)
    in_tokens = max(1, math.ceil(len(text) / cfg.limits.chars_per_token))
    out_tokens = min(cfg.routing.expected_output_tokens[level.value], spec.max_output_tokens)
    decision = Decision(
        decision_id=decision_id_for(run_id, query_id),
        run_id=run_id,
        query_id=query_id,
        query_hash=hashlib.sha256(text.encode()).hexdigest(),
        ts=datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
        tenant="default",
        complexity_level=level.value,
        complexity_score=0.5 + 0.1 * level.rank - 0.2,
        borderline=False,
        upscaled=False,
        domain=domain,
        domain_confidence=0.9,
        model=spec.name,
        model_tier=spec.tier,
        execution_style=cfg.execution_style_for(level.rank, domain).value,
        confidence_complexity=0.9,
        confidence_model_fit=0.9,
        confidence_execution_fit=1.0,
        confidence_overall=0.92,
        reason_codes=",".join(
            c.code for c in [ReasonCode.LEVEL_FROM_RULES, ReasonCode.DOMAIN_DEFAULT_GENERAL]
        )
        + ","
        + ",".join(c.code for c in mode_codes),
        latency_estimate_ms=round(
            spec.latency.p50_ms + in_tokens / 1000.0 * spec.latency.per_1k_input_ms, 1
        ),
        cost_estimate_usd=round(
            in_tokens / 1000.0 * spec.price_per_1k_input
            + out_tokens / 1000.0 * spec.price_per_1k_output,
            8,
        ),
        tokens_estimate=in_tokens + out_tokens,
        execution_mode=effective.value,
        execution_mode_active=active,
        simulated=not active,
        outcome=Outcome.NOT_EXECUTED.value,
        actual_latency_ms=None,
        actual_cost_usd=None,
        error_code=None,
        privacy_required=False,
        router_version=cfg.router_version,
        config_hash=_config_hash(cfg),
        decision_schema_version=DECISION_SCHEMA_VERSION,
    )
    return replace(decision, **overrides) if overrides else decision
