"""The confidence coefficients are policy in the config (``confidence_coefficients``): the engine
and ``router.redecide`` read the same values through ``router.policy``, and a config that leaves
them at their defaults keeps the config hash it had before they were configurable."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from data.generate import generate_corpus
from router.config import ConfidenceCoefficients, RouterConfig, load_config
from router.engine import Router
from router.redecide import redecide
from router.scoring import PATH_RULES, RuleScorer, Scorer, Scores
from router.toggle import resolve_toggle

CONFIDENCES = [
    "confidence_complexity",
    "confidence_model_fit",
    "confidence_execution_fit",
    "confidence_overall",
]


def _rule_only():
    return RouterConfig.model_validate(load_config(None).model_dump(exclude={"head"}))


def _with_coefficients(cfg, **changes):
    raw = cfg.model_dump()
    raw["confidence_coefficients"] |= changes
    return RouterConfig.model_validate(raw)


def test_default_coefficients_keep_the_hash_and_a_change_moves_it():
    cfg = _rule_only()
    assert cfg.confidence_coefficients == ConfidenceCoefficients()
    # The hash of a config that leaves the coefficients out (every config written before they
    # were configurable) is the hash of the same config with them spelled out at their defaults.
    without = cfg.model_dump(mode="json", exclude={"confidence_coefficients"})
    assert RouterConfig.model_validate(without).config_hash == cfg.config_hash
    assert _with_coefficients(cfg, model_fit_base=0.8).config_hash != cfg.config_hash
    assert _with_coefficients(cfg, model_fit_base=0.85).config_hash == cfg.config_hash


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return generate_corpus(400, seed=5, days=1).column("text").to_pylist()


def _route(cfg, texts):
    r = Router(cfg, semantic=False, hash_key=b"k", toggle=resolve_toggle(None), cache_dir=None)
    ts = [datetime(2026, 11, 16, tzinfo=UTC)] * len(texts)
    return r.route_batch(texts, ts=ts, run_id="r").to_pandas()


@pytest.mark.parametrize(
    "changes",
    [
        {"model_fit_base": 0.7, "model_fit_service": 0.9},
        {"complexity_floor": 0.5, "complexity_span": 0.5, "complexity_full_at_bands": 2.0},
        {"execution_fit_truncated": 0.5, "long_input_tokens": 50, "execution_fit_batch_cap": 0.9},
    ],
    ids=["model_fit", "complexity", "execution_fit"],
)
def test_engine_and_redecide_follow_the_configured_coefficients(texts, changes):
    base = _rule_only()
    changed = _with_coefficients(base, **changes)
    a, b = _route(base, texts), _route(changed, texts)
    assert (a[CONFIDENCES] != b[CONFIDENCES]).any().any()  # the engine reads the config
    assert (a["complexity_level"] == b["complexity_level"]).all()  # and nothing but confidences
    got = redecide(a, base, changed)
    pd.testing.assert_frame_equal(
        got[CONFIDENCES].reset_index(drop=True), b[CONFIDENCES].reset_index(drop=True)
    )


def test_domain_confidences_come_from_the_config(texts):
    base = _rule_only()
    changed = _with_coefficients(base, domain_explicit_intent=0.9, domain_default_general=0.7)
    a, b = _route(base, texts), _route(changed, texts)
    explicit = a["reason_codes"].str.contains("DOMAIN_EXPLICIT_INTENT")
    general = a["reason_codes"].str.contains("DOMAIN_DEFAULT_GENERAL") & (
        a["domain_confidence"] == 0.8
    )
    assert explicit.any() and general.any()
    assert (a.loc[explicit, "domain_confidence"] == 0.95).all()
    assert (b.loc[explicit, "domain_confidence"] == 0.9).all()
    assert (b.loc[general, "domain_confidence"] == 0.7).all()


def test_rule_only_scores_are_the_rule_scores():
    """A rule-only router holds the ``RuleScorer``; its typed scores decide on the rule score."""
    r = Router(_rule_only(), semantic=False, hash_key=b"k")
    model: Scorer = r._model
    assert isinstance(model, RuleScorer)
    s = r._score(["Prove that there are infinitely many primes, step by step.", "hi"])
    assert isinstance(s, Scores)
    assert (s.score == s.rule).all() and (s.dom == s.dom_rule).all()
    assert (s.path == PATH_RULES).all() and s.sem is None and s.level_probs is None
    assert s.score[0] > s.score[1]
    picked = s.take(np.array([1, 1, 0]))
    assert picked.score.tolist() == [s.score[1], s.score[1], s.score[0]]
    assert picked.features["length"].shape == (3,) and picked.domain_names == s.domain_names
