"""Scoring: texts in, a typed record of complexity and domain scores out (no decision yet).

Three ways to score, one shape. ``rule_scores`` always runs (keyword and structure features, the
rule score, keyword domain evidence); a ``Scorer`` then turns those into the scores the engine
decides on: ``RuleScorer`` keeps them, ``HybridScorer`` mixes in MiniLM similarity to level and
domain exemplars, ``CascadeScorer`` asks the learned head (fast head, then the full head with the
embedding for the texts it cannot place). The engine calls only the protocol's two methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyarrow as pa

from router import features as feat
from router.config import RouterConfig
from router.decision import LEVELS, Decision

if TYPE_CHECKING:
    from router.head import LearnedHead
    from router.semantic import SemanticScorer

GENERAL_PRIOR = 0.25  # semantic evidence a specific domain must beat to win over "general"
GENERAL_RULE_PRIOR = 0.2  # below one keyword hit (0.5), so any rule evidence beats "general"
SEM_DOMAIN_FLOOR = 0.25  # top-k mean cosine below which an exemplar resemblance is noise
SEM_DOMAIN_SPAN = 0.35

PATH_RULES, PATH_CASCADE, PATH_EMBEDDED = 0, 1, 2  # how a row's level was scored


@dataclass
class Scores:
    """Per-row scores of a batch of texts; every array has one row per text (first axis)."""

    domain_names: list[str]  # column order of the domain matrices
    rule_features: feat.RuleFeatures  # raw counts (not gathered by ``take``)
    features: dict[str, np.ndarray]  # named rule features in [0, 1]
    rule: np.ndarray  # rule score in [0, 1]
    privacy: np.ndarray
    image_intent: np.ndarray
    speech_intent: np.ndarray
    dom_rule: np.ndarray  # n x D keyword domain evidence
    score: np.ndarray  # the complexity score the level is decided on
    dom: np.ndarray  # n x D domain scores the domain is decided on
    path: np.ndarray  # int8: PATH_RULES, PATH_CASCADE or PATH_EMBEDDED
    disagree: np.ndarray  # levels between the rule view and the model view
    sem: np.ndarray | None = None  # hybrid: the semantic score
    dom_sem: np.ndarray | None = None  # hybrid: n x D semantic domain evidence
    level_sims: np.ndarray | None = None  # hybrid: n x L exemplar similarity
    level_probs: np.ndarray | None = None  # hybrid and head: n x L level probabilities
    best: np.ndarray | None = None  # hybrid: n x L index of the nearest exemplar
    fast_score: np.ndarray | None = None  # head: the fast head's score

    def take(self, rows: np.ndarray) -> Scores:
        """The rows ``rows`` (e.g. distinct texts expanded back to one row per input)."""
        changes = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                changes[f.name] = v[rows]
            elif isinstance(v, dict):
                changes[f.name] = {k: a[rows] for k, a in v.items()}
        return replace(self, **changes)


@dataclass
class Explanation:
    """A readable account of one decision (no raw text)."""

    decision: Decision
    rule_score: float
    semantic_score: float | None
    level_similarity: dict[str, float] = field(default_factory=dict)
    level_probability: dict[str, float] = field(default_factory=dict)
    nearest_exemplars: dict[str, tuple[str, float]] = field(default_factory=dict)
    domain_scores: dict[str, float] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)


class Scorer(Protocol):
    """What the engine asks of a way of scoring (rules, hybrid, learned cascade)."""

    def score(self, col: pa.Array, rules: Scores) -> Scores:
        """The scores to decide on, from the bounded texts ``col`` and their rule scores."""
        ...

    def explain(self, text: str, scores: Scores, ex: Explanation) -> None:
        """Fill ``ex``'s model-side fields for one text scored as ``scores``."""
        ...


def rule_scores(col: pa.Array, cfg: RouterConfig, domain_names: list[str]) -> Scores:
    """Rule features, the rule score and keyword domain evidence (vectorised)."""
    w = cfg.rule_weights
    f = feat.extract(col)
    len_feat = np.sqrt(np.minimum(1.0, f.words / float(w.length_tokens_full)))
    multi = np.minimum(
        1.0, (np.maximum(f.questions - 1.0, 0.0) + np.minimum(f.steps, 4.0) * 0.5) / 3.0
    )
    constraints = np.minimum(1.0, f.constraints / 3.0)
    depth = np.minimum(1.0, f.depth / 2.0)
    expert = np.minimum(1.0, f.expert / 2.0)
    trivial = f.trivial * (f.words <= 12.0)
    word_problem = np.minimum(1.0, f.word_problem / 2.0) * (f.numbers >= 2.0)
    formal = np.minimum(1.0, f.formal / 2.0)
    rule = (
        w.base
        + w.length * len_feat
        + w.code * f.code
        + w.math * f.math
        + w.multi_step * multi
        + w.constraints * constraints
        + w.depth * depth
        + w.expert * expert
        + w.word_problem * word_problem
        + w.formal * formal
        + w.code_task * f.code_task
        - w.trivial * trivial
    )
    rule = np.clip(rule, 0.0, 1.0)

    # Domain evidence from rules, aligned with the semantic domain order.
    n = len(col)
    dom_rule = np.zeros((n, len(domain_names)), dtype=np.float64)
    for j, d in enumerate(domain_names):
        if d in f.domain_hits:
            dom_rule[:, j] = np.minimum(1.0, f.domain_hits[d] / 2.0)
        elif d == "general":
            dom_rule[:, j] = GENERAL_RULE_PRIOR
    return Scores(
        domain_names=domain_names,
        rule_features=f,
        features={
            "length": len_feat,
            "code": f.code,
            "math": f.math,
            "multi_step": multi,
            "constraints": constraints,
            "depth": depth,
            "expert": expert,
            "trivial": trivial,
            "word_problem": word_problem,
            "formal": formal,
            "code_task": f.code_task,
        },
        rule=rule,
        privacy=f.privacy > 0,
        image_intent=f.image_intent > 0,
        speech_intent=f.speech_intent > 0,
        dom_rule=dom_rule,
        score=rule,
        dom=dom_rule,
        path=np.full(n, PATH_RULES, dtype=np.int8),
        disagree=np.zeros(n, dtype=np.float64),
    )


def _nearest_exemplars(
    ex: Explanation, semantic: SemanticScorer, sims: np.ndarray, best: np.ndarray
) -> None:
    for j, lv in enumerate(semantic.level_names):
        ex.level_similarity[lv] = float(sims[0, j])
        ex.nearest_exemplars[lv] = (semantic.exemplar(lv, int(best[0, j])), float(sims[0, j]))


class RuleScorer:
    """Rules alone: the rule score is the complexity score, keywords pick the domain."""

    def score(self, col: pa.Array, rules: Scores) -> Scores:
        return rules

    def explain(self, text: str, scores: Scores, ex: Explanation) -> None:
        return None


class HybridScorer:
    """Rule score mixed with the MiniLM similarity to each level's exemplars (``semantic.weight``);
    domains likewise (``semantic.domain_weight``)."""

    def __init__(self, cfg: RouterConfig, semantic: SemanticScorer) -> None:
        self.cfg = cfg
        self.semantic = semantic
        self._centers = np.array(cfg.centers, dtype=np.float64)
        self._scale_bounds = np.array(cfg.scale_boundaries, dtype=np.float64)

    def _scale_level(self, score: np.ndarray) -> np.ndarray:
        """A score's level on the score scale (not the decision): for disagreement measures."""
        return np.searchsorted(self._scale_bounds, score, side="right")

    def score(self, col: pa.Array, rules: Scores) -> Scores:
        from router.semantic import softmax

        sc, rule = self.cfg.semantic, rules.rule
        level_sims, domain_sims, best = self.semantic.similarities(col.to_pylist())
        level_probs = softmax(level_sims, sc.temperature)
        sem = level_probs @ self._centers
        # Semantic domain evidence counts only from a real resemblance (absolute gate), and
        # never selects a service domain: those dispatch to non-LLM services, so they need
        # explicit intent.
        dom_sem = np.clip((domain_sims - SEM_DOMAIN_FLOOR) / SEM_DOMAIN_SPAN, 0.0, 1.0)
        for j, d in enumerate(rules.domain_names):
            if d in self.cfg.routing.service_domains:
                dom_sem[:, j] = 0.0
            elif d == "general":
                dom_sem[:, j] = GENERAL_PRIOR
        return replace(
            rules,
            sem=sem,
            score=(1.0 - sc.weight) * rule + sc.weight * sem,
            dom=(1.0 - sc.domain_weight) * rules.dom_rule + sc.domain_weight * dom_sem,
            dom_sem=dom_sem,
            level_sims=level_sims,
            level_probs=level_probs,
            best=best,
            path=np.full(len(rule), PATH_EMBEDDED, dtype=np.int8),
            disagree=np.abs(self._scale_level(rule) - self._scale_level(sem)).astype(np.float64),
        )

    def explain(self, text: str, scores: Scores, ex: Explanation) -> None:
        ex.semantic_score = float(scores.sem[0])
        for j, lv in enumerate(self.semantic.level_names):
            ex.level_probability[lv] = float(scores.level_probs[0, j])
        _nearest_exemplars(ex, self.semantic, scores.level_sims, scores.best)


WEAK_KEYWORD_CAP = 0.5  # weak keyword evidence for a domain the head does not know: even odds


def keyword_outranks(col: pa.Array, rules: Scores) -> np.ndarray:
    """Rows x domains: keyword evidence strong enough to outrank the learned head. Any hit counts,
    unless the domain has a specific-word pattern (``features.SPECIFIC_PATTERNS``): then only a
    specific word does ("are you a robot?" is chit-chat, "simulate a robot gripper in Gazebo" is
    robotics). Only the rows with a hit are searched again."""
    strong = rules.dom_rule > 0
    for j, d in enumerate(rules.domain_names):
        pattern = feat.SPECIFIC_PATTERNS.get(d)
        hit = np.flatnonzero(strong[:, j])
        if pattern is None or hit.size == 0:
            continue
        strong[hit, j] = feat._match(col.take(pa.array(hit, pa.int64())), pattern) > 0
    return strong


class CascadeScorer:
    """The learned head as a cascade: the fast head (rules + hashed words) decides a text when its
    score is far from every level boundary and its domain is clear; only the others are embedded
    and go to the full head. Each row's path depends on its own text alone (route == route_batch).
    Without an encoder (rule-only routing) the fast head decides every text."""

    def __init__(self, cfg: RouterConfig, head: LearnedHead, semantic: SemanticScorer | None):
        self.hc = cfg.head
        self.head = head
        self.semantic = semantic

    def score(self, col: pa.Array, rules: Scores) -> Scores:
        from router.head import cascade_clear, dense_features, hashed_tokens, subset_tokens

        head, hc = self.head, self.hc
        n = len(col)
        dense, _ = dense_features(rules, rules.rule_features)
        xq = head.grid(dense)
        tok = hashed_tokens(col, head.dim)
        lp, dp = head.predict("fast", xq, tok)
        fast = head.expected_score(lp)
        dist = head.boundary_distance(fast)
        clear = cascade_clear(dp, head.domains, rules, hc.domain_clarity)
        path = np.full(n, PATH_CASCADE if self.semantic is not None else PATH_RULES, np.int8)
        score = fast.copy()
        disagree = np.zeros(n, dtype=np.float64)
        if self.semantic is not None:
            sel = np.flatnonzero(~((dist >= hc.cascade_margin) & clear))
            if sel.size:
                from router.semantic import quantise

                texts = col.take(pa.array(sel, pa.int64())).to_pylist()
                embq = quantise(self.semantic.embed(texts))
                lp2, dp2 = head.predict("full", xq[sel], subset_tokens(tok, sel), embq)
                full = head.expected_score(lp2)
                disagree[sel] = np.abs(
                    np.searchsorted(head.boundaries, full, side="right")
                    - np.searchsorted(head.boundaries, fast[sel], side="right")
                )
                score[sel], lp[sel], dp[sel], path[sel] = full, lp2, dp2, PATH_EMBEDDED
        # Domain scores in the router's domain order: the head's probabilities where it knows the
        # domain, keyword evidence for the domains it was not fitted on (robotics, speech, ...).
        # Strong keyword evidence for such a domain outranks the head (its domains are
        # probabilities <= 1): the head cannot know that domain. Weak evidence (everyday words
        # only) is capped at even odds: it wins only where the head's own top domain is below.
        dom = np.where(
            keyword_outranks(col, rules),
            1.0 + rules.dom_rule,
            np.minimum(rules.dom_rule, WEAK_KEYWORD_CAP),
        )
        for j, d in enumerate(rules.domain_names):
            if d in head.domains:
                dom[:, j] = dp[:, head.domains.index(d)]
        return replace(
            rules,
            score=score,
            dom=dom,
            level_probs=lp,
            path=path,
            disagree=disagree,
            fast_score=fast,
        )

    def explain(self, text: str, scores: Scores, ex: Explanation) -> None:
        """The level probabilities the decision used; with an encoder, also the full head's score
        and the nearest level exemplars, even when the cascade decided without embedding (the
        decision itself is unchanged)."""
        for j, lv in enumerate(lv.value for lv in LEVELS):
            ex.level_probability[lv] = float(scores.level_probs[0, j])
        if self.semantic is None:
            return
        from router.head import dense_features, hashed_tokens
        from router.semantic import quantise

        head = self.head
        dense, _ = dense_features(scores, scores.rule_features)
        tok = hashed_tokens(pa.array([text], pa.string()), head.dim)
        embq = quantise(self.semantic.embed([text]))
        lp, _ = head.predict("full", head.grid(dense), tok, embq)
        ex.semantic_score = float(head.expected_score(lp)[0])
        sims, _, best = self.semantic.similarities([text])
        _nearest_exemplars(ex, self.semantic, sims, best)
