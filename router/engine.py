"""The decision engine: text in, schema-1.0.0 decision out.

``route_batch`` is the implementation (Arrow string kernels, numpy arithmetic, one embedding per
distinct text); ``route`` is a batch of one, so the two agree by construction and the property
test guards the batch-level parts (deduplication, caching, alignment, per-row errors).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from router import features as feat
from router.config import RouterConfig, load_config
from router.decision import (
    DECISION_ARROW_SCHEMA,
    DECISION_NAMESPACE,
    DECISION_SCHEMA_VERSION,
    LEVELS,
    REASON_SEPARATOR,
    Decision,
    ExecutionMode,
    Outcome,
    ReasonCode,
    table_to_decisions,
)
from router.privacy import hash_key_from_env, hash_text
from router.toggle import ToggleState, resolve_toggle, toggle_from_env

log = logging.getLogger(__name__)

EMBEDDING_CACHE_DIR_ENV = "AMAIMA_EMBEDDING_CACHE_DIR"
EMBEDDING_STORE_URL_ENV = "AMAIMA_EMBEDDING_STORE_URL"
"""A database URL for the canonical embedding store (shared by every worker of a cluster)."""
DEFAULT_CACHE_DIR = Path(".harness") / "embeddings"
ADHOC_RUN_ID = "adhoc"
DECIDE_CHUNK = 50_000  # rows decided at once: bounds peak memory, changes no result
GENERAL_PRIOR = 0.25  # semantic evidence a specific domain must beat to win over "general"
DEFAULT_GENERAL_CONFIDENCE = 0.8
GENERAL_RULE_PRIOR = 0.2  # below one keyword hit (0.5), so any rule evidence beats "general"
SEM_DOMAIN_FLOOR = 0.25  # top-k mean cosine below which an exemplar resemblance is noise
SEM_DOMAIN_SPAN = 0.35


def head_expectations(config: RouterConfig, domain_names: list[str]) -> dict:
    """What a head's weights file must have been fitted for, to be usable with ``config``."""
    from router.head import HEAD_FORMAT

    sc = config.semantic
    return {
        "format": HEAD_FORMAT,
        "encoder": f"{sc.model}|{sc.max_tokens}|{'int8' if sc.quantize_int8 else 'fp32'}",
        "levels": [lv.value for lv in LEVELS],
        "rule_domains": list(domain_names),
        "rule_weights": config.rule_weights.model_dump(mode="json"),
        "hash_dim": config.head.hash_dim,
    }


class InvalidQueryError(ValueError):
    """A query that cannot be routed (empty or whitespace-only). Never carries the text."""


@dataclass(frozen=True)
class RowError:
    index: int
    query_id: str
    reason: str


class BatchInputError(InvalidQueryError):
    """Some rows of a batch could not be routed. ``table`` holds the decisions of the others,
    ``errors`` says which rows failed and why, so nothing is silently lost."""

    def __init__(self, errors: list[RowError], table: pa.Table) -> None:
        self.errors = errors
        self.table = table
        head = "; ".join(f"row {e.index} (query_id {e.query_id}): {e.reason}" for e in errors[:5])
        more = f" and {len(errors) - 5} more" if len(errors) > 5 else ""
        super().__init__(
            f"{len(errors)} of {len(errors) + table.num_rows} rows not routed: {head}{more}"
        )


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


def _fast_uuid5(names: Sequence[str]) -> list[str]:
    """uuid.uuid5(DECISION_NAMESPACE, name) for many names, without per-row UUID objects."""
    ns = DECISION_NAMESPACE.bytes
    out = []
    sha1 = hashlib.sha1
    for name in names:
        b = bytearray(sha1(ns + name.encode("utf-8", "surrogatepass")).digest()[:16])
        b[6] = (b[6] & 0x0F) | 0x50
        b[8] = (b[8] & 0x3F) | 0x80
        h = b.hex()
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def _gather(scored: dict, inverse: np.ndarray) -> dict:
    """Per-distinct-text score arrays expanded back to one row per input (rows = first axis)."""
    out = {}
    for k, v in scored.items():
        if isinstance(v, np.ndarray):
            out[k] = v[inverse]
        elif isinstance(v, dict):
            out[k] = {name: arr[inverse] for name, arr in v.items()}
        else:
            out[k] = v
    return out


def _clean(text: str) -> str:
    """Valid UTF-8 for Arrow: lone surrogates become U+FFFD (the hash still sees the original)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _as_utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


class Router:
    """AMAIMA's smart router: configurable, deterministic, text-free output."""

    def __init__(
        self,
        config: RouterConfig,
        *,
        semantic: bool | None = None,
        hash_key: bytes | None | str = "env",
        toggle: ToggleState | None = None,
        cache_dir: str | Path | None | str = "env",
    ) -> None:
        self.config = config
        self.semantic_enabled = config.semantic.enabled if semantic is None else semantic
        self.hash_key = hash_key_from_env() if hash_key == "env" else hash_key
        self.toggle = toggle if toggle is not None else toggle_from_env()
        self.config_hash = config.config_hash
        self._thresholds = np.array(config.thresholds, dtype=np.float64)
        # The score scale (level centres, and the boundaries between them) is separate from the
        # decision thresholds, so calibration can move a threshold without moving any score.
        self._centers = np.array(config.centers, dtype=np.float64)
        self._scale_bounds = np.array(config.scale_boundaries, dtype=np.float64)
        self._level_names = [lv.value for lv in LEVELS]
        self._domain_names = [
            d for d in config.exemplars.domains
        ]  # semantic order; rule evidence is mapped onto it
        if "general" not in self._domain_names:
            self._domain_names.append("general")
        self._head = None
        if config.head is not None:
            self._head = self._load_head(config)
        self._scorer = None
        if self.semantic_enabled:
            from router.semantic import SemanticScorer

            if cache_dir == "env":
                env_dir = os.environ.get(EMBEDDING_CACHE_DIR_ENV)
                cache_dir = Path(env_dir) if env_dir else DEFAULT_CACHE_DIR
            cache_path = None if cache_dir is None else Path(cache_dir) / "minilm.sqlite"
            store_url = os.environ.get(EMBEDDING_STORE_URL_ENV, "").strip()
            if store_url and cache_dir is not None:
                cache_path = store_url
            sc = config.semantic
            self._scorer = SemanticScorer(
                sc.model,
                {lv: config.exemplars.levels[lv] for lv in self._level_names},
                {d: config.exemplars.domains[d] for d in config.exemplars.domains},
                cache_path=cache_path,
                key=self.hash_key,
                batch_size=sc.batch_size,
                max_chars=sc.max_chars,
                top_k=sc.top_k,
                max_tokens=sc.max_tokens,
                quantize_int8=sc.quantize_int8,
            )

    # --- construction -------------------------------------------------------------------
    def _load_head(self, config: RouterConfig):
        """The fitted head, refused unless its file is the one the config names and it was fitted
        for this encoder variant, these rule features and these domains."""
        from router.config import ConfigError
        from router.head import LearnedHead, file_sha256

        path = config.head_path()
        if not path.is_file():
            raise ConfigError(f"router head weights not found: {path}")
        got = file_sha256(path)
        if got != config.head.sha256:
            raise ConfigError(
                f"router head weights {path} have sha256 {got[:16]}..., the config expects "
                f"{config.head.sha256[:16]}... (refit with `harness router fit`)"
            )
        return LearnedHead(path, head_expectations(config, self._domain_names))

    @classmethod
    def from_config(
        cls, path: str | Path | None = None, *, semantic: bool | None = None, **kwargs
    ) -> Router:
        """Router from a YAML config (None: the packaged default). semantic=False: rule-only."""
        return cls(load_config(path), semantic=semantic, **kwargs)

    def set_toggle(self, value: str | None) -> ToggleState:
        """Change the kill switch at run time (drills flip it); returns the effective state."""
        self.toggle = resolve_toggle(value)
        return self.toggle

    # --- public API -----------------------------------------------------------------------
    def route(
        self,
        text: str,
        *,
        query_id: str | None = None,
        ts: datetime | None = None,
        run_id: str | None = None,
        tenant: str | None = None,
    ) -> Decision:
        if not isinstance(text, str):
            raise InvalidQueryError(f"query text must be a str, got {type(text).__name__}")
        if not text.strip():
            raise InvalidQueryError(
                "query text is empty or whitespace-only; there is nothing to route"
                + (f" (query_id {query_id})" if query_id else "")
            )
        table = self.route_batch(
            [text],
            query_ids=None if query_id is None else [query_id],
            ts=ts,
            run_id=run_id,
            tenants=None if tenant is None else [tenant],
        )
        return table_to_decisions(table)[0]

    def route_batch(
        self,
        texts: Sequence[str] | pa.Array | pa.ChunkedArray,
        *,
        query_ids: Sequence[str] | None = None,
        ts: datetime | Sequence[datetime] | pa.Array | None = None,
        run_id: str | None = None,
        tenants: Sequence[str] | None = None,
    ) -> pa.Table:
        """Decisions for many texts, as a schema-1.0.0 Arrow table aligned with the valid inputs.

        Raises ``BatchInputError`` (carrying the decisions of the valid rows) if any row is empty.
        """
        if isinstance(texts, pa.ChunkedArray | pa.Array):
            texts = texts.to_pylist()
        texts = list(texts)
        n = len(texts)
        if query_ids is not None and len(query_ids) != n:
            raise ValueError(f"query_ids has {len(query_ids)} entries for {n} texts")
        if tenants is not None and len(tenants) != n:
            raise ValueError(f"tenants has {len(tenants)} entries for {n} texts")
        run = run_id or ADHOC_RUN_ID
        qhash = self._hashes(texts)
        qids = self._query_ids(qhash, query_ids)
        errors = [
            RowError(i, qids[i], "empty or whitespace-only text")
            for i, t in enumerate(texts)
            if not isinstance(t, str) or not t.strip()
        ]
        if errors:
            bad = {e.index for e in errors}
            keep = [i for i in range(n) if i not in bad]
            table = self._decide_chunked(
                [texts[i] for i in keep],
                [qhash[i] for i in keep],
                [qids[i] for i in keep],
                self._ts_column(ts, n, keep),
                run,
                None if tenants is None else [tenants[i] for i in keep],
            )
            raise BatchInputError(errors, table)
        return self._decide_chunked(
            texts,
            qhash,
            qids,
            self._ts_column(ts, n, None),
            run,
            None if tenants is None else list(tenants),
        )

    def explain(self, text: str, **kwargs) -> Explanation:
        decision = self.route(text, **kwargs)
        scored = self._score([self._bounded(_clean(text))[0]], want_detail=True)
        learned = None if self._head is None or scored["path"][0] != 2 else scored["score"][0]
        ex = Explanation(
            decision=decision,
            rule_score=float(scored.get("fast_score", scored["rule"])[0]),
            semantic_score=float(scored["sem"][0]) if scored["sem"] is not None else learned,
            features={k: float(v[0]) for k, v in scored["features"].items()},
            domain_scores={d: float(scored["dom"][0, j]) for j, d in enumerate(self._domain_names)},
        )
        if self._head is not None:
            for j, lv in enumerate(self._level_names):
                ex.level_probability[lv] = float(scored["level_probs"][0, j])
            if self._scorer is not None:
                self._explain_semantic(ex, self._bounded(_clean(text))[0], scored)
        elif scored["sem"] is not None:
            sims, probs, best = scored["level_sims"], scored["level_probs"], scored["best"]
            for j, lv in enumerate(self._level_names):
                ex.level_similarity[lv] = float(sims[0, j])
                ex.level_probability[lv] = float(probs[0, j])
                ex.nearest_exemplars[lv] = (
                    self._scorer.exemplar(lv, int(best[0, j])),
                    float(sims[0, j]),
                )
        return ex

    def _explain_semantic(self, ex: Explanation, text: str, scored: dict) -> None:
        """For a reader: the full head's score and the nearest level exemplars, even when the
        cascade decided without embedding (the decision itself is unchanged)."""
        from router.head import dense_features, hashed_tokens
        from router.semantic import quantise

        head = self._head
        dense, _ = dense_features(scored, scored["rule_features"])
        tok = hashed_tokens(pa.array([text], pa.string()), head.dim)
        embq = quantise(self._scorer.embed([text]))
        lp, _ = head.predict("full", head.grid(dense), tok, embq)
        ex.semantic_score = float(self._expected_score(lp)[0])
        sims, _, best = self._scorer.similarities([text])
        for j, lv in enumerate(self._level_names):
            ex.level_similarity[lv] = float(sims[0, j])
            ex.nearest_exemplars[lv] = (
                self._scorer.exemplar(lv, int(best[0, j])),
                float(sims[0, j]),
            )

    # --- internals ------------------------------------------------------------------------
    def _hashes(self, texts: list) -> list[str]:
        """One HMAC per distinct text (repeats are common in real traffic)."""
        key = self.hash_key
        memo: dict[str, str] = {}
        out = []
        for t in texts:
            if not isinstance(t, str):
                t = ""
            h = memo.get(t)
            if h is None:
                h = memo[t] = hash_text(t, key)
            out.append(h)
        return out

    @staticmethod
    def _query_ids(qhash: list[str], query_ids: Sequence[str] | None) -> list[str]:
        if query_ids is not None:
            return [str(q) for q in query_ids]
        # Default ids derive from the text hash; repeats get an occurrence suffix so no decision
        # id collides (a collision would make the idempotent store drop a real decision).
        seen: dict[str, int] = {}
        out = []
        for h in qhash:
            base = h[:20]
            k = seen.get(base, 0)
            seen[base] = k + 1
            out.append(base if k == 0 else f"{base}#{k + 1}")
        return out

    @staticmethod
    def _ts_column(ts, n: int, keep: list[int] | None) -> pa.Array:
        if ts is None:
            values = [datetime.now(UTC)] * n
        elif isinstance(ts, datetime):
            values = [_as_utc(ts)] * n
        else:
            if isinstance(ts, pa.ChunkedArray | pa.Array):
                arr = ts.cast(pa.timestamp("us", tz="UTC"))
                if keep is not None:
                    arr = arr.take(pa.array(keep, type=pa.int64()))
                return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
            values = [_as_utc(v) for v in ts]
            if len(values) != n:
                raise ValueError(f"ts has {len(values)} entries for {n} texts")
        if keep is not None:
            values = [values[i] for i in keep]
        return pa.array(values, type=pa.timestamp("us", tz="UTC"))

    def _bounded(self, text: str) -> tuple[str, bool]:
        lim = self.config.limits
        if len(text) > lim.max_chars:
            return text[: lim.score_prefix_chars], True
        return text, False

    def _score(self, scored_texts: list[str], *, want_detail: bool = False) -> dict:
        """Complexity and domain scores for bounded, cleaned texts (vectorised)."""
        cfg = self.config
        w = cfg.rule_weights
        col = pa.array(scored_texts, type=pa.string())
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
        n = len(scored_texts)
        dom_rule = np.zeros((n, len(self._domain_names)), dtype=np.float64)
        for j, d in enumerate(self._domain_names):
            if d in f.domain_hits:
                dom_rule[:, j] = np.minimum(1.0, f.domain_hits[d] / 2.0)
            elif d == "general":
                dom_rule[:, j] = GENERAL_RULE_PRIOR
        out: dict = {
            "domain_names": self._domain_names,
            "rule_features": f,
            "rule": rule,
            "features": {
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
            "privacy": f.privacy > 0,
            "image_intent": f.image_intent > 0,
            "speech_intent": f.speech_intent > 0,
            "dom_rule": dom_rule,
            "sem": None,
            "path": np.zeros(n, dtype=np.int8),  # 0 rules, 1 cascade (fast head), 2 embedded
            "disagree": np.zeros(n, dtype=np.float64),
        }
        if self._head is not None:
            self._score_head(col, f, out)
        elif self._scorer is not None:
            from router.semantic import softmax

            sc = cfg.semantic
            level_sims, domain_sims, best = self._scorer.similarities(scored_texts)
            level_probs = softmax(level_sims, sc.temperature)
            sem = level_probs @ self._centers
            score = (1.0 - sc.weight) * rule + sc.weight * sem
            # Semantic domain evidence counts only from a real resemblance (absolute gate), and
            # never selects a service domain: those dispatch to non-LLM services, so they need
            # explicit intent.
            dom_sem = np.clip((domain_sims - SEM_DOMAIN_FLOOR) / SEM_DOMAIN_SPAN, 0.0, 1.0)
            for j, d in enumerate(self._domain_names):
                if d in cfg.routing.service_domains:
                    dom_sem[:, j] = 0.0
                elif d == "general":
                    dom_sem[:, j] = GENERAL_PRIOR
            dom = (1.0 - sc.domain_weight) * dom_rule + sc.domain_weight * dom_sem
            out.update(
                sem=sem,
                score=score,
                dom=dom,
                dom_sem=dom_sem,
                level_sims=level_sims,
                level_probs=level_probs,
                best=best,
                path=np.full(n, 2, dtype=np.int8),
                disagree=np.abs(self._scale_level(rule) - self._scale_level(sem)).astype(
                    np.float64
                ),
            )
        else:
            out.update(score=rule, dom=dom_rule, dom_sem=None)
        return out

    def _score_head(self, col: pa.Array, f, out: dict) -> None:
        """The cascade: the fast head (rules + hashed words) decides a text when its score is far
        from every level boundary and its domain is clear; only the others are embedded and go to
        the full head. Each row's path depends on its own text alone (route == route_batch)."""
        from router.head import dense_features, hashed_tokens, subset_tokens

        head, hc = self._head, self.config.head
        n = len(col)
        dense, _ = dense_features(out, f)
        xq = head.grid(dense)
        tok = hashed_tokens(col, head.dim)
        lp, dp = head.predict("fast", xq, tok)
        fast = self._expected_score(lp)
        dist = np.abs(fast[:, None] - head.boundaries[None, :]).min(axis=1)
        clear = (dp.max(axis=1) >= hc.domain_clarity) | out["image_intent"] | out["speech_intent"]
        path = np.full(n, 1 if self._scorer is not None else 0, dtype=np.int8)
        score = fast.copy()
        disagree = np.zeros(n, dtype=np.float64)
        if self._scorer is not None:
            sel = np.flatnonzero(~((dist >= hc.cascade_margin) & clear))
            if sel.size:
                from router.semantic import quantise

                texts = col.take(pa.array(sel, pa.int64())).to_pylist()
                embq = quantise(self._scorer.embed(texts))
                lp2, dp2 = head.predict("full", xq[sel], subset_tokens(tok, sel), embq)
                full = self._expected_score(lp2)
                disagree[sel] = np.abs(
                    np.searchsorted(head.boundaries, full, side="right")
                    - np.searchsorted(head.boundaries, fast[sel], side="right")
                )
                score[sel], lp[sel], dp[sel], path[sel] = full, lp2, dp2, 2
        # Domain scores in the router's domain order: the head's probabilities where it knows the
        # domain, keyword evidence for the domains it was not fitted on (robotics, speech, ...).
        # A keyword hit for a domain the head was not fitted on outranks the head (its domains are
        # probabilities <= 1): the head cannot know that domain, the keywords are specific.
        dom = np.where(out["dom_rule"] > 0, 1.0 + out["dom_rule"], 0.0)
        for j, d in enumerate(self._domain_names):
            if d in head.domains:
                dom[:, j] = dp[:, head.domains.index(d)]
        out.update(
            score=score,
            dom=dom,
            sem=None,
            level_probs=lp,
            path=path,
            disagree=disagree,
            fast_score=fast,
        )

    def _expected_score(self, probs: np.ndarray) -> np.ndarray:
        """Probability-weighted level centre on the head's fixed score scale (the centres of the
        thresholds it was fitted with), so moving a threshold in the config moves decisions."""
        return self._head.expected_score(probs)

    def _scale_level(self, score: np.ndarray) -> np.ndarray:
        """A score's level on the score scale (not the decision): for disagreement measures."""
        return np.searchsorted(self._scale_bounds, score, side="right")

    def _levels_of(self, score: np.ndarray) -> np.ndarray:
        return np.clip(
            np.searchsorted(self._thresholds, score, side="right") - 1, 0, len(LEVELS) - 1
        )

    def _decide_chunked(
        self,
        texts: list[str],
        qhash: list[str],
        qids: list[str],
        ts_col: pa.Array,
        run_id: str,
        tenants: list[str] | None,
    ) -> pa.Table:
        """Decide in slices of DECIDE_CHUNK rows: every row is computed on its own, so slicing
        changes nothing but the peak memory."""
        n = len(texts)
        if n <= DECIDE_CHUNK:
            return self._decide(texts, qhash, qids, ts_col, run_id, tenants)
        parts = []
        for a in range(0, n, DECIDE_CHUNK):
            b = min(n, a + DECIDE_CHUNK)
            parts.append(
                self._decide(
                    texts[a:b],
                    qhash[a:b],
                    qids[a:b],
                    ts_col.slice(a, b - a),
                    run_id,
                    None if tenants is None else tenants[a:b],
                )
            )
        return pa.concat_tables(parts)

    def _decide(
        self,
        texts: list[str],
        qhash: list[str],
        qids: list[str],
        ts_col: pa.Array,
        run_id: str,
        tenants: list[str] | None,
    ) -> pa.Table:
        cfg = self.config
        n = len(texts)
        if n == 0:
            return DECISION_ARROW_SCHEMA.empty_table()
        # Score each distinct text once, then gather: repeats of popular queries cost nothing.
        positions: dict[str, int] = {}
        inverse = np.fromiter((positions.setdefault(t, len(positions)) for t in texts), np.int64, n)
        distinct = list(positions)
        bounded = [self._bounded(_clean(t)) for t in distinct]
        full_chars = np.array([len(t) for t in distinct], dtype=np.float64)[inverse]
        truncated = np.array([b[1] for b in bounded], dtype=bool)[inverse]
        s = _gather(self._score([b[0] for b in bounded]), inverse)
        score = np.round(s["score"], 6)

        # --- complexity level, borderline band, upscale ---------------------------------
        level = self._levels_of(score)
        boundaries = self._thresholds[1:]
        diffs = score[:, None] - boundaries[None, :]
        nearest = np.argmin(np.abs(diffs), axis=1)
        dist = np.abs(diffs[np.arange(n), nearest])
        below = diffs[np.arange(n), nearest] < 0
        borderline = dist < cfg.borderline_band

        # --- domain ------------------------------------------------------------------------
        dom = s["dom"]
        order = np.argsort(-dom, axis=1, kind="stable")
        top = dom[np.arange(n), order[:, 0]]
        second = dom[np.arange(n), order[:, 1]]
        dom_idx = order[:, 0]
        domain_names = np.array(self._domain_names, dtype=object)
        domain = domain_names[dom_idx]
        domain_conf = np.where(top + second > 0, top / np.maximum(top + second, 1e-12), 0.5)
        rule_evidence = s["dom_rule"][np.arange(n), dom_idx]
        general_j = self._domain_names.index("general")
        no_evidence = dom_idx == general_j
        image = s["image_intent"]
        speech = s["speech_intent"] & ~image
        explicit = image | speech
        domain = np.where(image, "image_gen", np.where(speech, "speech", domain))
        # "General" because nothing else matched is a default, not a finding: cap its confidence.
        others_silent = np.delete(dom, general_j, axis=1).max(axis=1) <= 0
        domain_conf = np.where(
            others_silent & (dom_idx == general_j), DEFAULT_GENERAL_CONFIDENCE, domain_conf
        )
        domain_conf = np.where(explicit, 0.95, domain_conf)
        domain_conf = np.round(np.clip(domain_conf, 0.0, 1.0), 4)

        service = np.isin(domain, cfg.routing.service_domains)
        upscaled = borderline & below & (level < len(LEVELS) - 1) & ~service
        routed = level + upscaled.astype(int)

        # --- model ---------------------------------------------------------------------------
        model = np.empty(n, dtype=object)
        override = np.zeros(n, dtype=bool)
        lv_names = np.array(self._level_names, dtype=object)
        for r in range(len(LEVELS)):
            model[routed == r] = cfg.routing.level_models[lv_names[r]]
        for d, mapping in cfg.routing.domain_models.items():
            dmask = domain == d
            if not dmask.any():
                continue
            for r in range(len(LEVELS)):
                m = mapping.get(lv_names[r], mapping.get("*"))
                if m is None:
                    continue
                sel = dmask & (routed == r)
                model[sel] = m
                override[sel] = True
        specs = {m.name: m for m in cfg.models}
        tier = np.array([specs[m].tier for m in model], dtype=object)
        price_in = np.array([specs[m].price_per_1k_input for m in model])
        price_out = np.array([specs[m].price_per_1k_output for m in model])
        p50 = np.array([specs[m].latency.p50_ms for m in model])
        prefill = np.array([specs[m].latency.per_1k_input_ms for m in model])
        max_out = np.array([specs[m].max_output_tokens for m in model], dtype=np.float64)

        # --- estimates -----------------------------------------------------------------------
        in_tokens = np.maximum(1.0, np.ceil(full_chars / cfg.limits.chars_per_token))
        expected_out = np.array(
            [cfg.routing.expected_output_tokens[lv] for lv in self._level_names], dtype=np.float64
        )[routed]
        out_tokens = np.minimum(expected_out, max_out)
        tokens = (in_tokens + out_tokens).astype(np.int64)
        cost = np.round(in_tokens / 1000.0 * price_in + out_tokens / 1000.0 * price_out, 8)
        latency = np.round(p50 + in_tokens / 1000.0 * prefill, 1)
        # One rule (RouterConfig.execution_style_for), evaluated once per distinct
        # (level, domain) pair and gathered back: O(n), no per-pair masks on the hot path.
        dom_names, dom_code = np.unique(domain.astype(str), return_inverse=True)
        pair_code = routed.astype(np.int64) * len(dom_names) + dom_code
        pairs, pair_inv = np.unique(pair_code, return_inverse=True)
        pair_style = np.array(
            [
                cfg.execution_style_for(
                    int(p // len(dom_names)), str(dom_names[p % len(dom_names)])
                ).value
                for p in pairs
            ],
            dtype=object,
        )
        style = pair_style[pair_inv.ravel()]

        # --- confidence --------------------------------------------------------------------
        conf_c = 0.6 + 0.4 * np.minimum(1.0, dist / (4.0 * cfg.borderline_band))
        conf_c = conf_c - 0.1 * s["disagree"]
        conf_c = np.round(np.clip(conf_c, 0.0, 1.0), 4)
        fit = 0.85 + 0.15 * domain_conf + 0.03 * override - 0.05 * upscaled
        fit = np.where(service, 0.98, fit)
        conf_m = np.round(np.clip(fit, 0.0, 1.0), 4)
        ex_fit = np.where(truncated, 0.6, np.where(in_tokens > 4000, 0.85, 1.0))
        ex_fit = np.where(style == "batch_parallel", np.minimum(ex_fit, 0.95), ex_fit)
        conf_e = np.round(ex_fit, 4)
        cw = cfg.confidence_weights
        wsum = cw.complexity + cw.model_fit + cw.execution_fit
        overall = np.round(
            (cw.complexity * conf_c + cw.model_fit * conf_m + cw.execution_fit * conf_e) / wsum, 4
        )

        # --- reason codes (bitmask per row, one string per distinct combination) ----------
        toggle = self.toggle
        feats = s["features"]
        masks: list[tuple[ReasonCode, np.ndarray]] = [
            (ReasonCode.LEVEL_FROM_RULES, s["path"] == 0),
            (ReasonCode.LEVEL_FROM_CASCADE, s["path"] == 1),
            (ReasonCode.LEVEL_FROM_HYBRID, s["path"] == 2),
            (ReasonCode.BORDERLINE_UPSCALE, upscaled),
            (ReasonCode.DOMAIN_EXPLICIT_INTENT, explicit),
            (ReasonCode.DOMAIN_DEFAULT_GENERAL, ~explicit & no_evidence),
            (ReasonCode.DOMAIN_FROM_RULES, ~explicit & ~no_evidence & (rule_evidence > 0)),
            (ReasonCode.DOMAIN_FROM_SEMANTIC, ~explicit & ~no_evidence & (rule_evidence <= 0)),
            (ReasonCode.CODE_DETECTED, feats["code"] >= 0.5),
            (ReasonCode.MATH_DETECTED, feats["math"] >= 0.34),
            (ReasonCode.MULTI_STEP, feats["multi_step"] >= 0.34),
            (ReasonCode.CONSTRAINTS, feats["constraints"] >= 0.34),
            (ReasonCode.DEPTH_REQUESTED, (feats["depth"] > 0) | (feats["expert"] > 0)),
            (ReasonCode.LONG_INPUT, in_tokens > 1000),
            (ReasonCode.INPUT_TRUNCATED, truncated),
            (ReasonCode.DOMAIN_MODEL_OVERRIDE, override),
            (ReasonCode.PRIVACY_REQUIRED, s["privacy"]),
        ]
        mode_codes = [
            ReasonCode.EXECUTION_ENABLED if toggle.active else ReasonCode.DECISION_ONLY_MODE
        ]
        if toggle.invalid:
            mode_codes.append(ReasonCode.EXECUTION_MODE_INVALID)
        bits = np.zeros(n, dtype=np.int64)
        for b, (_, m) in enumerate(masks):
            bits |= m.astype(np.int64) << b
        uniq, inverse = np.unique(bits, return_inverse=True)
        strings = []
        for u in uniq:
            codes = [c.code for b, (c, _) in enumerate(masks) if (int(u) >> b) & 1]
            strings.append(REASON_SEPARATOR.join(codes + [c.code for c in mode_codes]))
        reasons = pa.array(strings, type=pa.string()).take(
            pa.array(inverse.ravel(), type=pa.int64())
        )

        active = toggle.active
        columns = {
            "decision_id": pa.array(_fast_uuid5([f"{run_id}\x1f{q}" for q in qids]), pa.string()),
            "run_id": pa.array([run_id] * n, pa.string()),
            "query_id": pa.array(qids, pa.string()),
            "query_hash": pa.array(qhash, pa.string()),
            "ts": ts_col,
            "tenant": pa.array(tenants if tenants is not None else ["default"] * n, pa.string()),
            "complexity_level": pa.array(lv_names[level].tolist(), pa.string()),
            "complexity_score": pa.array(score, pa.float64()),
            "borderline": pa.array(borderline, pa.bool_()),
            "upscaled": pa.array(upscaled, pa.bool_()),
            "domain": pa.array(domain.tolist(), pa.string()),
            "domain_confidence": pa.array(domain_conf, pa.float64()),
            "model": pa.array(model.tolist(), pa.string()),
            "model_tier": pa.array(tier.tolist(), pa.string()),
            "execution_style": pa.array(style.tolist(), pa.string()),
            "confidence_complexity": pa.array(conf_c, pa.float64()),
            "confidence_model_fit": pa.array(conf_m, pa.float64()),
            "confidence_execution_fit": pa.array(conf_e, pa.float64()),
            "confidence_overall": pa.array(overall, pa.float64()),
            "reason_codes": reasons,
            "latency_estimate_ms": pa.array(latency, pa.float64()),
            "cost_estimate_usd": pa.array(cost, pa.float64()),
            "tokens_estimate": pa.array(tokens, pa.int64()),
            "execution_mode": pa.array([toggle.mode.value] * n, pa.string()),
            "execution_mode_active": pa.array([active] * n, pa.bool_()),
            "simulated": pa.array([not active] * n, pa.bool_()),
            "outcome": pa.array([Outcome.NOT_EXECUTED.value] * n, pa.string()),
            "actual_latency_ms": pa.nulls(n, pa.float64()),
            "actual_cost_usd": pa.nulls(n, pa.float64()),
            "error_code": pa.nulls(n, pa.string()),
            "privacy_required": pa.array(s["privacy"], pa.bool_()),
            "router_version": pa.array([cfg.router_version] * n, pa.string()),
            "config_hash": pa.array([self.config_hash] * n, pa.string()),
            "decision_schema_version": pa.array([DECISION_SCHEMA_VERSION] * n, pa.string()),
        }
        return pa.table(columns, schema=DECISION_ARROW_SCHEMA)


__all__ = [
    "ADHOC_RUN_ID",
    "BatchInputError",
    "ExecutionMode",
    "Explanation",
    "InvalidQueryError",
    "Router",
    "RowError",
]
