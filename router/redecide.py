"""Re-decide stored decisions under other level thresholds and borderline band, without the text.

Why: calibration sweeps thousands of threshold/band settings on a week of stored scores; routing
the texts again for each would take hours. Everything after the complexity score in the engine
(level, borderline, upscale, model, estimates, confidences) is a function of the stored record
and the config, reproduced here. A test holds ``redecide(route_batch(A), B) == route_batch(B)``
for rule-only routing, so the engine and this module cannot drift apart unnoticed.

The hybrid and learned scores are mixes of level centres; a candidate written by calibration pins
the run's centres (``score_centers``), so every stored score, the cascade's path and the
rule/semantic disagreement (0.1 confidence per level, read back from the stored record) mean the
same under the new thresholds — the re-decision is exact, not an approximation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from router.config import RouterConfig
from router.decision import LEVELS, ReasonCode

LEVEL_NAMES = [lv.value for lv in LEVELS]


def levels_from_scores(
    score: np.ndarray, thresholds: list[float] | np.ndarray, band: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Level index, borderline flag, below-boundary flag and distance to the nearest boundary."""
    th = np.asarray(thresholds, dtype=float)
    level = np.clip(np.searchsorted(th, score, side="right") - 1, 0, len(th) - 1)
    diffs = score[:, None] - th[None, 1:]
    nearest = np.argmin(np.abs(diffs), axis=1)
    signed = diffs[np.arange(len(score)), nearest]
    dist = np.abs(signed)
    return level, dist < band, signed < 0, dist


def _complexity_base(dist: np.ndarray, band: float) -> np.ndarray:
    return 0.6 + 0.4 * np.minimum(1.0, dist / (4.0 * band)) if band > 0 else np.ones_like(dist)


def redecide(stored: pd.DataFrame, old: RouterConfig, new: RouterConfig) -> pd.DataFrame:
    """The stored decisions as ``new`` would have made them (same scores, domains, texts)."""
    n = len(stored)
    score = stored["complexity_score"].to_numpy(dtype=float)
    domain = stored["domain"].astype(str).to_numpy()
    # Input tokens: the stored estimate minus the output part the old config added.
    o_level, _, _, o_dist = levels_from_scores(score, old.thresholds, old.borderline_band)
    o_routed = np.minimum(o_level + stored["upscaled"].to_numpy(bool).astype(int), len(LEVELS) - 1)
    o_specs = {m.name: m for m in old.models}
    o_out = np.minimum(
        np.array([old.routing.expected_output_tokens[LEVEL_NAMES[r]] for r in o_routed], float),
        np.array([o_specs[m].max_output_tokens for m in stored["model"].astype(str)], float),
    )
    in_tokens = stored["tokens_estimate"].to_numpy(dtype=float) - o_out
    penalty = (
        np.round(
            np.maximum(
                _complexity_base(o_dist, old.borderline_band)
                - stored["confidence_complexity"].to_numpy(float),
                0.0,
            )
            / 0.1
        )
        * 0.1
    )

    level, borderline, below, dist = levels_from_scores(score, new.thresholds, new.borderline_band)
    service = np.isin(domain, new.routing.service_domains)
    upscaled = borderline & below & (level < len(LEVELS) - 1) & ~service
    routed = level + upscaled.astype(int)
    model = np.empty(n, dtype=object)
    override = np.zeros(n, dtype=bool)
    for r, name in enumerate(LEVEL_NAMES):
        model[routed == r] = new.routing.level_models[name]
    for d, mapping in new.routing.domain_models.items():
        dmask = domain == d
        if not dmask.any():
            continue
        for r, name in enumerate(LEVEL_NAMES):
            m = mapping.get(name, mapping.get("*"))
            if m is not None:
                sel = dmask & (routed == r)
                model[sel] = m
                override[sel] = True
    specs = {m.name: m for m in new.models}
    price_in = np.array([specs[m].price_per_1k_input for m in model])
    price_out = np.array([specs[m].price_per_1k_output for m in model])
    p50 = np.array([specs[m].latency.p50_ms for m in model])
    prefill = np.array([specs[m].latency.per_1k_input_ms for m in model])
    max_out = np.array([specs[m].max_output_tokens for m in model], dtype=float)
    expected = np.array(
        [new.routing.expected_output_tokens[LEVEL_NAMES[r]] for r in routed], dtype=float
    )
    out_tokens = np.minimum(expected, max_out)
    cost = np.round(in_tokens / 1000.0 * price_in + out_tokens / 1000.0 * price_out, 8)
    latency = np.round(p50 + in_tokens / 1000.0 * prefill, 1)
    style_batch = (routed >= len(LEVELS) - 1) & (domain != "speech")
    truncated = (
        stored["reason_codes"]
        .astype(str)
        .str.contains(ReasonCode.INPUT_TRUNCATED.code, regex=False)
        .to_numpy()
    )
    conf_c = np.round(np.clip(_complexity_base(dist, new.borderline_band) - penalty, 0, 1), 4)
    dom_conf = stored["domain_confidence"].to_numpy(dtype=float)
    fit = 0.85 + 0.15 * dom_conf + 0.03 * override - 0.05 * upscaled
    conf_m = np.round(np.clip(np.where(service, 0.98, fit), 0, 1), 4)
    ex_fit = np.where(truncated, 0.6, np.where(in_tokens > 4000, 0.85, 1.0))
    conf_e = np.round(np.where(style_batch, np.minimum(ex_fit, 0.95), ex_fit), 4)
    cw = new.confidence_weights
    wsum = cw.complexity + cw.model_fit + cw.execution_fit
    overall = np.round(
        (cw.complexity * conf_c + cw.model_fit * conf_m + cw.execution_fit * conf_e) / wsum, 4
    )
    out = stored.copy()
    out["complexity_level"] = np.array(LEVEL_NAMES, dtype=object)[level]
    out["borderline"] = borderline
    out["upscaled"] = upscaled
    out["model"] = model
    out["model_tier"] = np.array([specs[m].tier for m in model], dtype=object)
    out["cost_estimate_usd"] = cost
    out["latency_estimate_ms"] = latency
    out["tokens_estimate"] = (in_tokens + out_tokens).astype(np.int64)
    out["confidence_complexity"] = conf_c
    out["confidence_model_fit"] = conf_m
    out["confidence_execution_fit"] = conf_e
    out["confidence_overall"] = overall
    return out
