"""Re-decide stored decisions under other level thresholds and borderline band, without the text.

Why: calibration sweeps thousands of threshold/band settings on a week of stored scores; routing
the texts again for each would take hours. Everything after the complexity score in the engine
(level, borderline, upscale, model, estimates, confidences) is a function of the stored record
and the config: ``router.policy``, which the engine uses too. A test holds
``redecide(route_batch(A), B) == route_batch(B)`` for rule-only routing.

The hybrid and learned scores are mixes of level centres; a candidate written by calibration pins
the run's centres (``score_centers``), so every stored score, the cascade's path and the
rule/semantic disagreement (read back from the stored complexity confidence) mean the
same under the new thresholds — the re-decision is exact, not an approximation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from router import policy
from router.config import RouterConfig
from router.decision import LEVELS, ReasonCode, has_reason_code
from router.policy import LEVEL_NAMES, levels_from_scores

__all__ = ["LEVEL_NAMES", "levels_from_scores", "redecide"]


def redecide(stored: pd.DataFrame, old: RouterConfig, new: RouterConfig) -> pd.DataFrame:
    """The stored decisions as ``new`` would have made them (same scores, domains, texts)."""
    score = stored["complexity_score"].to_numpy(dtype=float)
    domain = stored["domain"].astype(str).to_numpy()
    # Input tokens: the stored estimate minus the output part the old config added.
    o_level, _, _, o_dist = levels_from_scores(score, old.thresholds, old.borderline_band)
    o_routed = np.minimum(o_level + stored["upscaled"].to_numpy(bool).astype(int), len(LEVELS) - 1)
    o_out = policy.output_tokens(stored["model"].astype(str).to_numpy(), o_routed, old)
    in_tokens = stored["tokens_estimate"].to_numpy(dtype=float) - o_out
    disagree = policy.disagreement_from_confidence(
        stored["confidence_complexity"].to_numpy(float),
        o_dist,
        old.borderline_band,
        old.confidence_coefficients,
    )

    cc = new.confidence_coefficients
    level, borderline, below, dist = levels_from_scores(score, new.thresholds, new.borderline_band)
    service, upscaled, routed = policy.upscale(level, borderline, below, domain, new)
    model, override = policy.choose_models(routed, domain, new)
    est = policy.estimates(model, routed, in_tokens, new)
    style = policy.execution_styles(routed, domain, new)
    truncated = has_reason_code(stored["reason_codes"], ReasonCode.INPUT_TRUNCATED.code)
    conf_c = policy.complexity_confidence(dist, new.borderline_band, disagree, cc)
    dom_conf = stored["domain_confidence"].to_numpy(dtype=float)
    conf_m = policy.model_fit_confidence(dom_conf, override, upscaled, service, cc)
    conf_e = policy.execution_fit_confidence(truncated, in_tokens, style, cc)
    out = stored.copy()
    out["complexity_level"] = np.array(LEVEL_NAMES, dtype=object)[level]
    out["borderline"] = borderline
    out["upscaled"] = upscaled
    out["model"] = model
    out["model_tier"] = est.tier
    out["cost_estimate_usd"] = est.cost_usd
    out["latency_estimate_ms"] = est.latency_ms
    out["tokens_estimate"] = est.tokens
    out["confidence_complexity"] = conf_c
    out["confidence_model_fit"] = conf_m
    out["confidence_execution_fit"] = conf_e
    out["confidence_overall"] = policy.overall_confidence(
        conf_c, conf_m, conf_e, new.confidence_weights
    )
    return out
