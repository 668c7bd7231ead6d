"""The decision after the score: level, borderline, upscale, domain, model, estimates, execution
style and confidences, as functions of scores and the config.

Why a module of its own: the engine applies it to fresh scores and ``router.redecide`` to stored
ones (calibration sweeps thresholds without the texts). One definition means a coefficient moved
in the config moves both, and the test that holds them equal guards the arithmetic, not a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from router.config import ConfidenceCoefficients, ConfidenceWeights, RouterConfig
from router.decision import LEVELS, ExecutionStyle

LEVEL_NAMES = [lv.value for lv in LEVELS]


def level_of(score: np.ndarray, thresholds: list[float] | np.ndarray) -> np.ndarray:
    """The level index of each score: the last threshold at or below it."""
    th = np.asarray(thresholds, dtype=np.float64)
    return np.clip(np.searchsorted(th, score, side="right") - 1, 0, len(th) - 1)


def levels_from_scores(
    score: np.ndarray, thresholds: list[float] | np.ndarray, band: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Level index, borderline flag, below-boundary flag and distance to the nearest boundary."""
    th = np.asarray(thresholds, dtype=np.float64)
    level = level_of(score, th)
    diffs = score[:, None] - th[None, 1:]
    nearest = np.argmin(np.abs(diffs), axis=1)
    signed = diffs[np.arange(len(score)), nearest]
    dist = np.abs(signed)
    return level, dist < band, signed < 0, dist


def upscale(
    level: np.ndarray,
    borderline: np.ndarray,
    below: np.ndarray,
    domain: np.ndarray,
    cfg: RouterConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(service domain, upscaled, routed level): a borderline score just below a boundary is
    served one level up, except in service domains (they dispatch to non-LLM services)."""
    service = np.isin(domain, cfg.routing.service_domains)
    upscaled = borderline & below & (level < len(LEVELS) - 1) & ~service
    return service, upscaled, level + upscaled.astype(int)


@dataclass(frozen=True)
class DomainChoice:
    domain: np.ndarray  # object array of domain names
    confidence: np.ndarray
    explicit: np.ndarray  # image or speech intent decided the domain
    no_evidence: np.ndarray  # "general" had the top score
    rule_evidence: np.ndarray  # keyword evidence of the top domain


def choose_domain(
    dom: np.ndarray,
    dom_rule: np.ndarray,
    image_intent: np.ndarray,
    speech_intent: np.ndarray,
    domain_names: list[str],
    cc: ConfidenceCoefficients,
) -> DomainChoice:
    """The top-scoring domain, its confidence against the runner-up, and explicit intents."""
    n = len(dom)
    rows = np.arange(n)
    order = np.argsort(-dom, axis=1, kind="stable")
    top = dom[rows, order[:, 0]]
    second = dom[rows, order[:, 1]]
    dom_idx = order[:, 0]
    domain = np.array(domain_names, dtype=object)[dom_idx]
    conf = np.where(top + second > 0, top / np.maximum(top + second, 1e-12), 0.5)
    general_j = domain_names.index("general")
    image = image_intent
    speech = speech_intent & ~image
    explicit = image | speech
    domain = np.where(image, "image_gen", np.where(speech, "speech", domain))
    # "General" because nothing else matched is a default, not a finding: cap its confidence.
    others_silent = np.delete(dom, general_j, axis=1).max(axis=1) <= 0
    conf = np.where(others_silent & (dom_idx == general_j), cc.domain_default_general, conf)
    conf = np.where(explicit, cc.domain_explicit_intent, conf)
    return DomainChoice(
        domain=domain,
        confidence=np.round(np.clip(conf, 0.0, 1.0), 4),
        explicit=explicit,
        no_evidence=dom_idx == general_j,
        rule_evidence=dom_rule[rows, dom_idx],
    )


def choose_models(
    routed: np.ndarray, domain: np.ndarray, cfg: RouterConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(model name per row, whether a domain mapping overrode the level's model)."""
    n = len(routed)
    model = np.empty(n, dtype=object)
    override = np.zeros(n, dtype=bool)
    for r, name in enumerate(LEVEL_NAMES):
        model[routed == r] = cfg.routing.level_models[name]
    for d, mapping in cfg.routing.domain_models.items():
        dmask = domain == d
        if not dmask.any():
            continue
        for r, name in enumerate(LEVEL_NAMES):
            m = mapping.get(name, mapping.get("*"))
            if m is None:
                continue
            sel = dmask & (routed == r)
            model[sel] = m
            override[sel] = True
    return model, override


def output_tokens(model: np.ndarray, routed: np.ndarray, cfg: RouterConfig) -> np.ndarray:
    """Expected output tokens of the routed level, capped by each model's maximum."""
    specs = {m.name: m for m in cfg.models}
    max_out = np.array([specs[m].max_output_tokens for m in model], dtype=np.float64)
    expected = np.array(
        [cfg.routing.expected_output_tokens[lv] for lv in LEVEL_NAMES], dtype=np.float64
    )[routed]
    return np.minimum(expected, max_out)


@dataclass(frozen=True)
class Estimates:
    tier: np.ndarray
    tokens: np.ndarray  # int64: input + output
    cost_usd: np.ndarray
    latency_ms: np.ndarray


def estimates(
    model: np.ndarray, routed: np.ndarray, in_tokens: np.ndarray, cfg: RouterConfig
) -> Estimates:
    """Tier, tokens, cost and latency of serving each row with its model (catalog prices)."""
    specs = {m.name: m for m in cfg.models}
    price_in = np.array([specs[m].price_per_1k_input for m in model])
    price_out = np.array([specs[m].price_per_1k_output for m in model])
    p50 = np.array([specs[m].latency.p50_ms for m in model])
    prefill = np.array([specs[m].latency.per_1k_input_ms for m in model])
    out_tokens = output_tokens(model, routed, cfg)
    return Estimates(
        tier=np.array([specs[m].tier for m in model], dtype=object),
        tokens=(in_tokens + out_tokens).astype(np.int64),
        cost_usd=np.round(in_tokens / 1000.0 * price_in + out_tokens / 1000.0 * price_out, 8),
        latency_ms=np.round(p50 + in_tokens / 1000.0 * prefill, 1),
    )


def execution_styles(routed: np.ndarray, domain: np.ndarray, cfg: RouterConfig) -> np.ndarray:
    """``RouterConfig.execution_style_for`` per row, evaluated once per distinct (level, domain)
    pair and gathered back: O(n), no per-pair masks on the hot path."""
    if len(routed) == 0:
        return np.empty(0, dtype=object)
    dom_names, dom_code = np.unique(domain.astype(str), return_inverse=True)
    k = len(dom_names)
    pairs, pair_inv = np.unique(routed.astype(np.int64) * k + dom_code, return_inverse=True)
    pair_style = np.array(
        [cfg.execution_style_for(int(p // k), str(dom_names[p % k])).value for p in pairs],
        dtype=object,
    )
    return pair_style[pair_inv.ravel()]


def _complexity_base(dist: np.ndarray, band: float, cc: ConfidenceCoefficients) -> np.ndarray:
    if band <= 0:
        return np.ones_like(dist)
    return cc.complexity_floor + cc.complexity_span * np.minimum(
        1.0, dist / (cc.complexity_full_at_bands * band)
    )


def complexity_confidence(
    dist: np.ndarray, band: float, disagree: np.ndarray, cc: ConfidenceCoefficients
) -> np.ndarray:
    """Low on a level boundary, rising as the score moves away; less when scorers disagree."""
    conf = _complexity_base(dist, band, cc) - cc.disagreement_penalty * disagree
    return np.round(np.clip(conf, 0.0, 1.0), 4)


def disagreement_from_confidence(
    stored: np.ndarray, dist: np.ndarray, band: float, cc: ConfidenceCoefficients
) -> np.ndarray:
    """The scorers' disagreement (whole levels) read back from a stored complexity confidence:
    the inverse of ``complexity_confidence`` for the config that made it."""
    if cc.disagreement_penalty <= 0:
        return np.zeros_like(dist)
    shortfall = np.maximum(_complexity_base(dist, band, cc) - stored, 0.0)
    return np.round(shortfall / cc.disagreement_penalty)


def model_fit_confidence(
    domain_conf: np.ndarray,
    override: np.ndarray,
    upscaled: np.ndarray,
    service: np.ndarray,
    cc: ConfidenceCoefficients,
) -> np.ndarray:
    fit = (
        cc.model_fit_base
        + cc.model_fit_domain * domain_conf
        + cc.model_fit_override * override
        - cc.model_fit_upscaled * upscaled
    )
    return np.round(np.clip(np.where(service, cc.model_fit_service, fit), 0.0, 1.0), 4)


def execution_fit_confidence(
    truncated: np.ndarray, in_tokens: np.ndarray, style: np.ndarray, cc: ConfidenceCoefficients
) -> np.ndarray:
    fit = np.where(
        truncated,
        cc.execution_fit_truncated,
        np.where(in_tokens > cc.long_input_tokens, cc.execution_fit_long_input, 1.0),
    )
    batch = style == ExecutionStyle.BATCH_PARALLEL.value
    return np.round(np.where(batch, np.minimum(fit, cc.execution_fit_batch_cap), fit), 4)


def overall_confidence(
    conf_c: np.ndarray, conf_m: np.ndarray, conf_e: np.ndarray, cw: ConfidenceWeights
) -> np.ndarray:
    wsum = cw.complexity + cw.model_fit + cw.execution_fit
    return np.round(
        (cw.complexity * conf_c + cw.model_fit * conf_m + cw.execution_fit * conf_e) / wsum, 4
    )
