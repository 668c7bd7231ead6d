"""The decision engine: text in, schema-1.0.0 decision out.

``route_batch`` is the implementation (Arrow string kernels, numpy arithmetic, one embedding per
distinct text); ``route`` is a batch of one, so the two agree by construction and the property
test guards the batch-level parts (deduplication, caching, alignment, per-row errors).

A batch: distinct texts are scored once (``router.scoring``: a typed ``Scores`` record from the
configured ``Scorer``), gathered back to rows, decided by ``router.policy`` (the same functions
``router.redecide`` applies to stored records), given reason codes and written as Arrow columns.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from router import policy
from router.config import RouterConfig, load_config
from router.decision import (
    DECISION_ARROW_SCHEMA,
    DECISION_NAMESPACE,
    DECISION_SCHEMA_VERSION,
    LEVELS,
    REASON_SEPARATOR,
    Decision,
    Outcome,
    ReasonCode,
    table_to_decisions,
)
from router.privacy import hash_key_from_env, hash_text
from router.scoring import (
    PATH_CASCADE,
    PATH_EMBEDDED,
    PATH_RULES,
    CascadeScorer,
    Explanation,
    HybridScorer,
    RuleScorer,
    Scorer,
    Scores,
    rule_scores,
)
from router.toggle import ToggleState, resolve_toggle, toggle_from_env

log = logging.getLogger(__name__)

EMBEDDING_CACHE_DIR_ENV = "AMAIMA_EMBEDDING_CACHE_DIR"
EMBEDDING_STORE_URL_ENV = "AMAIMA_EMBEDDING_STORE_URL"
"""A database URL for the canonical embedding store (shared by every worker of a cluster)."""
DEFAULT_CACHE_DIR = Path(".harness") / "embeddings"
ADHOC_RUN_ID = "adhoc"
DECIDE_CHUNK = 50_000  # rows decided at once: bounds peak memory, changes no result


def head_expectations(config: RouterConfig, domain_names: list[str]) -> dict:
    """What a head's weights file must have been fitted for, to be usable with ``config``."""
    from router.head import HEAD_FORMAT
    from router.semantic import encoder_variant

    sc = config.semantic
    return {
        "format": HEAD_FORMAT,
        "encoder": encoder_variant(sc.model, sc.max_tokens, sc.quantize_int8),
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


@dataclass(frozen=True)
class _Rows:
    """The inputs of one decision batch, row-aligned (texts still raw; hashes and ids made)."""

    texts: list[str]
    qhash: list[str]
    qids: list[str]
    ts: pa.Array
    tenants: list[str] | None

    def __len__(self) -> int:
        return len(self.texts)

    def slice(self, a: int, b: int) -> _Rows:
        return _Rows(
            self.texts[a:b],
            self.qhash[a:b],
            self.qids[a:b],
            self.ts.slice(a, b - a),
            None if self.tenants is None else self.tenants[a:b],
        )

    def take(self, keep: list[int]) -> _Rows:
        pick = lambda xs: [xs[i] for i in keep]  # noqa: E731
        return _Rows(
            pick(self.texts),
            pick(self.qhash),
            pick(self.qids),
            self.ts.take(pa.array(keep, type=pa.int64())),
            None if self.tenants is None else pick(self.tenants),
        )


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
            self._scorer = SemanticScorer.from_config(
                config, cache_path=cache_path, key=self.hash_key
            )
        self._model: Scorer = (
            CascadeScorer(config, self._head, self._scorer)
            if self._head is not None
            else HybridScorer(config, self._scorer)
            if self._scorer is not None
            else RuleScorer()
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

    # --- the encoder, for the fit and the benchmarks ------------------------------------------
    def embed(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts`` through this router's encoder and embedding store, exactly as
        routing computes them (the fit trains on these; ``bench_router`` warms the encoder)."""
        if self._scorer is None:
            raise ValueError("this router routes rule-only: it has no encoder")
        return self._scorer.embed(texts)

    @property
    def texts_embedded(self) -> int:
        """Texts this router has run through the encoder (embedding-store misses) so far."""
        return 0 if self._scorer is None else self._scorer.computed

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
        rows = _Rows(
            texts, qhash, qids, self._ts_column(ts, n), None if tenants is None else list(tenants)
        )
        errors = [
            RowError(i, rows.qids[i], "empty or whitespace-only text")
            for i, t in enumerate(texts)
            if not isinstance(t, str) or not t.strip()
        ]
        if errors:
            bad = {e.index for e in errors}
            kept = rows.take([i for i in range(n) if i not in bad])
            raise BatchInputError(errors, self._decide_chunked(kept, run))
        return self._decide_chunked(rows, run)

    def explain(self, text: str, **kwargs) -> Explanation:
        decision = self.route(text, **kwargs)
        bounded = self._bounded(_clean(text))[0]
        s = self._score([bounded])
        ex = Explanation(
            decision=decision,
            rule_score=float((s.fast_score if s.fast_score is not None else s.rule)[0]),
            semantic_score=None,
            features={k: float(v[0]) for k, v in s.features.items()},
            domain_scores={d: float(s.dom[0, j]) for j, d in enumerate(self._domain_names)},
        )
        self._model.explain(bounded, s, ex)
        return ex

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
    def _ts_column(ts, n: int) -> pa.Array:
        if isinstance(ts, pa.ChunkedArray | pa.Array):
            arr = ts.cast(pa.timestamp("us", tz="UTC"))
            return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        if ts is None:
            values = [datetime.now(UTC)] * n
        elif isinstance(ts, datetime):
            values = [_as_utc(ts)] * n
        else:
            values = [_as_utc(v) for v in ts]
            if len(values) != n:
                raise ValueError(f"ts has {len(values)} entries for {n} texts")
        return pa.array(values, type=pa.timestamp("us", tz="UTC"))

    def _bounded(self, text: str) -> tuple[str, bool]:
        lim = self.config.limits
        if len(text) > lim.max_chars:
            return text[: lim.score_prefix_chars], True
        return text, False

    def _score(self, scored_texts: list[str]) -> Scores:
        """Complexity and domain scores for bounded, cleaned texts (vectorised)."""
        col = pa.array(scored_texts, type=pa.string())
        return self._model.score(col, rule_scores(col, self.config, self._domain_names))

    def _levels_of(self, score: np.ndarray) -> np.ndarray:
        return policy.level_of(score, self._thresholds)

    def _decide_chunked(self, rows: _Rows, run_id: str) -> pa.Table:
        """Decide in slices of DECIDE_CHUNK rows: every row is computed on its own, so slicing
        changes nothing but the peak memory."""
        n = len(rows)
        if n <= DECIDE_CHUNK:
            return self._decide(rows, run_id)
        return pa.concat_tables(
            [
                self._decide(rows.slice(a, min(n, a + DECIDE_CHUNK)), run_id)
                for a in range(0, n, DECIDE_CHUNK)
            ]
        )

    def _decide(self, rows: _Rows, run_id: str) -> pa.Table:
        cfg = self.config
        cc = cfg.confidence_coefficients
        n = len(rows)
        if n == 0:
            return DECISION_ARROW_SCHEMA.empty_table()
        # Score each distinct text once, then gather: repeats of popular queries cost nothing.
        positions: dict[str, int] = {}
        inverse = np.fromiter(
            (positions.setdefault(t, len(positions)) for t in rows.texts), np.int64, n
        )
        distinct = list(positions)
        bounded = [self._bounded(_clean(t)) for t in distinct]
        full_chars = np.array([len(t) for t in distinct], dtype=np.float64)[inverse]
        truncated = np.array([b[1] for b in bounded], dtype=bool)[inverse]
        s = self._score([b[0] for b in bounded]).take(inverse)
        score = np.round(s.score, 6)

        level, borderline, below, dist = policy.levels_from_scores(
            score, self._thresholds, cfg.borderline_band
        )
        dc = policy.choose_domain(
            s.dom, s.dom_rule, s.image_intent, s.speech_intent, self._domain_names, cc
        )
        domain = dc.domain
        service, upscaled, routed = policy.upscale(level, borderline, below, domain, cfg)
        model, override = policy.choose_models(routed, domain, cfg)
        in_tokens = np.maximum(1.0, np.ceil(full_chars / cfg.limits.chars_per_token))
        est = policy.estimates(model, routed, in_tokens, cfg)
        style = policy.execution_styles(routed, domain, cfg)

        conf_c = policy.complexity_confidence(dist, cfg.borderline_band, s.disagree, cc)
        conf_m = policy.model_fit_confidence(dc.confidence, override, upscaled, service, cc)
        conf_e = policy.execution_fit_confidence(truncated, in_tokens, style, cc)
        overall = policy.overall_confidence(conf_c, conf_m, conf_e, cfg.confidence_weights)

        # --- reason codes (bitmask per row, one string per distinct combination) ----------
        toggle = self.toggle
        feats = s.features
        explicit, no_evidence = dc.explicit, dc.no_evidence
        masks: list[tuple[ReasonCode, np.ndarray]] = [
            (ReasonCode.LEVEL_FROM_RULES, s.path == PATH_RULES),
            (ReasonCode.LEVEL_FROM_CASCADE, s.path == PATH_CASCADE),
            (ReasonCode.LEVEL_FROM_HYBRID, s.path == PATH_EMBEDDED),
            (ReasonCode.BORDERLINE_UPSCALE, upscaled),
            (ReasonCode.DOMAIN_EXPLICIT_INTENT, explicit),
            (ReasonCode.DOMAIN_DEFAULT_GENERAL, ~explicit & no_evidence),
            (ReasonCode.DOMAIN_FROM_RULES, ~explicit & ~no_evidence & (dc.rule_evidence > 0)),
            (ReasonCode.DOMAIN_FROM_SEMANTIC, ~explicit & ~no_evidence & (dc.rule_evidence <= 0)),
            (ReasonCode.CODE_DETECTED, feats["code"] >= 0.5),
            (ReasonCode.MATH_DETECTED, feats["math"] >= 0.34),
            (ReasonCode.MULTI_STEP, feats["multi_step"] >= 0.34),
            (ReasonCode.CONSTRAINTS, feats["constraints"] >= 0.34),
            (ReasonCode.DEPTH_REQUESTED, (feats["depth"] > 0) | (feats["expert"] > 0)),
            (ReasonCode.LONG_INPUT, in_tokens > 1000),
            (ReasonCode.INPUT_TRUNCATED, truncated),
            (ReasonCode.DOMAIN_MODEL_OVERRIDE, override),
            (ReasonCode.PRIVACY_REQUIRED, s.privacy),
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
        lv_names = np.array(self._level_names, dtype=object)
        columns = {
            "decision_id": pa.array(
                _fast_uuid5([f"{run_id}\x1f{q}" for q in rows.qids]), pa.string()
            ),
            "run_id": pa.array([run_id] * n, pa.string()),
            "query_id": pa.array(rows.qids, pa.string()),
            "query_hash": pa.array(rows.qhash, pa.string()),
            "ts": rows.ts,
            "tenant": pa.array(
                rows.tenants if rows.tenants is not None else ["default"] * n, pa.string()
            ),
            "complexity_level": pa.array(lv_names[level].tolist(), pa.string()),
            "complexity_score": pa.array(score, pa.float64()),
            "borderline": pa.array(borderline, pa.bool_()),
            "upscaled": pa.array(upscaled, pa.bool_()),
            "domain": pa.array(domain.tolist(), pa.string()),
            "domain_confidence": pa.array(dc.confidence, pa.float64()),
            "model": pa.array(model.tolist(), pa.string()),
            "model_tier": pa.array(est.tier.tolist(), pa.string()),
            "execution_style": pa.array(style.tolist(), pa.string()),
            "confidence_complexity": pa.array(conf_c, pa.float64()),
            "confidence_model_fit": pa.array(conf_m, pa.float64()),
            "confidence_execution_fit": pa.array(conf_e, pa.float64()),
            "confidence_overall": pa.array(overall, pa.float64()),
            "reason_codes": reasons,
            "latency_estimate_ms": pa.array(est.latency_ms, pa.float64()),
            "cost_estimate_usd": pa.array(est.cost_usd, pa.float64()),
            "tokens_estimate": pa.array(est.tokens, pa.int64()),
            "execution_mode": pa.array([toggle.mode.value] * n, pa.string()),
            "execution_mode_active": pa.array([active] * n, pa.bool_()),
            "simulated": pa.array([not active] * n, pa.bool_()),
            "outcome": pa.array([Outcome.NOT_EXECUTED.value] * n, pa.string()),
            "actual_latency_ms": pa.nulls(n, pa.float64()),
            "actual_cost_usd": pa.nulls(n, pa.float64()),
            "error_code": pa.nulls(n, pa.string()),
            "privacy_required": pa.array(s.privacy, pa.bool_()),
            "router_version": pa.array([cfg.router_version] * n, pa.string()),
            "config_hash": pa.array([self.config_hash] * n, pa.string()),
            "decision_schema_version": pa.array([DECISION_SCHEMA_VERSION] * n, pa.string()),
        }
        return pa.table(columns, schema=DECISION_ARROW_SCHEMA)


__all__ = [
    "ADHOC_RUN_ID",
    "BatchInputError",
    "Explanation",
    "InvalidQueryError",
    "Router",
    "RowError",
]
