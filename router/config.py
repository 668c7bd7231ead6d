"""Router configuration: a YAML file validated by pydantic, hashed into every decision.

Everything a reviewer needs to know about what the router promises (catalog, thresholds, bands,
weights, exemplars) is data here, so a threshold changes without a code change and the
`config_hash` in each decision says exactly which promises were in force.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from router.decision import DOMAINS, LEVELS, ExecutionStyle
from router.yaml_safe import YamlModelError, load_yaml_model

DEFAULT_CONFIG_NAME = "default_config.yaml"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, the field and what is valid."""


class _Strict(BaseModel):
    # allow_inf_nan=False: a `.nan` threshold compares false with everything and misroutes silently.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LatencyProfile(_Strict):
    """Time to first token (ms) plus prefill cost per 1k input tokens."""

    p50_ms: float = Field(gt=0)
    p95_ms: float = Field(gt=0)
    per_1k_input_ms: float = Field(default=0.0, ge=0)
    output_tokens_per_s: float = Field(default=50.0, gt=0)

    @model_validator(mode="after")
    def _p95_not_below_p50(self) -> LatencyProfile:
        if self.p95_ms < self.p50_ms:
            raise ValueError(f"p95_ms ({self.p95_ms}) must be >= p50_ms ({self.p50_ms})")
        return self


class ModelSpec(_Strict):
    name: str = Field(min_length=1)
    tier: str = Field(min_length=1)
    price_per_1k_input: float = Field(ge=0)
    price_per_1k_output: float = Field(ge=0)
    latency: LatencyProfile
    error_rate: float = Field(default=0.0, ge=0, le=1)
    max_output_tokens: int = Field(default=1024, gt=0)
    kind: Literal["llm", "service"] = "llm"


class SemanticConfig(_Strict):
    enabled: bool = True
    model: str = "all-MiniLM-L6-v2"
    weight: float = Field(default=0.5, ge=0, le=1)
    domain_weight: float = Field(default=0.5, ge=0, le=1)
    temperature: float = Field(default=0.05, gt=0)
    max_chars: int = Field(default=2000, gt=0)
    top_k: int = Field(default=3, ge=1)
    batch_size: int = Field(default=128, ge=1)
    max_tokens: int = Field(default=128, ge=8, le=512)
    quantize_int8: bool = False


class LimitsConfig(_Strict):
    max_chars: int = Field(default=100_000, gt=0)
    score_prefix_chars: int = Field(default=8_000, gt=0)
    chars_per_token: float = Field(default=4.0, gt=0)


class ConfidenceWeights(_Strict):
    complexity: float = Field(ge=0)
    model_fit: float = Field(ge=0)
    execution_fit: float = Field(ge=0)

    @model_validator(mode="after")
    def _positive_sum(self) -> ConfidenceWeights:
        if self.complexity + self.model_fit + self.execution_fit <= 0:
            raise ValueError("confidence weights must not all be zero")
        return self


class ConfidenceCoefficients(_Strict):
    """How each confidence is made; ``confidence_weights`` mixes them into the overall one.

    Policy, so it lives beside the rule weights. The defaults are the values the engine has
    always used; a config that leaves them out hashes as it did before they were configurable.
    """

    complexity_floor: float = Field(default=0.6, ge=0, le=1)  # a score on a level boundary
    complexity_span: float = Field(default=0.4, ge=0, le=1)  # added as it moves away ...
    complexity_full_at_bands: float = Field(default=4.0, gt=0)  # ... in full this many bands out
    disagreement_penalty: float = Field(default=0.1, ge=0, le=1)  # per level of disagreement
    model_fit_base: float = Field(default=0.85, ge=0, le=1)
    model_fit_domain: float = Field(default=0.15, ge=0, le=1)  # times the domain confidence
    model_fit_override: float = Field(default=0.03, ge=0, le=1)  # a domain model was chosen
    model_fit_upscaled: float = Field(default=0.05, ge=0, le=1)  # taken off when upscaled
    model_fit_service: float = Field(default=0.98, ge=0, le=1)  # a service domain's model
    execution_fit_truncated: float = Field(default=0.6, ge=0, le=1)
    long_input_tokens: int = Field(default=4000, gt=0)
    execution_fit_long_input: float = Field(default=0.85, ge=0, le=1)
    execution_fit_batch_cap: float = Field(default=0.95, ge=0, le=1)
    domain_default_general: float = Field(default=0.8, ge=0, le=1)  # general: nothing matched
    domain_explicit_intent: float = Field(default=0.95, ge=0, le=1)  # image/speech intent


class RuleWeights(_Strict):
    """Contribution of each rule feature to the rule score in [0, 1]."""

    length: float = 0.30
    code: float = 0.12
    math: float = 0.10
    multi_step: float = 0.08
    constraints: float = 0.06
    depth: float = 0.16
    expert: float = 0.20
    trivial: float = 0.25
    word_problem: float = 0.10
    formal: float = 0.15
    code_task: float = 0.0
    length_tokens_full: int = 80
    base: float = 0.10


class RoutingConfig(_Strict):
    level_models: dict[str, str]
    domain_models: dict[str, dict[str, str]] = Field(default_factory=dict)
    service_domains: list[str] = Field(default_factory=lambda: ["image_gen", "speech"])
    interactive_tiers: list[str] = Field(default_factory=list)
    expected_output_tokens: dict[str, int]
    privacy_model: str | None = None


class BreakerConfig(_Strict):
    window: int = Field(default=20, ge=1)
    min_calls: int = Field(default=5, ge=1)
    error_rate_threshold: float = Field(default=0.5, gt=0, le=1)
    slow_call_ms: float = Field(default=3000, gt=0)
    slow_rate_threshold: float = Field(default=0.5, gt=0, le=1)
    cooldown_s: float = Field(default=30, gt=0)
    half_open_max_calls: int = Field(default=3, ge=1)


class UpstreamConfig(_Strict):
    kind: Literal["simulated", "openai_compatible"] = "simulated"
    base_url: str | None = None
    api_key_env: str | None = None
    seed: int = 0


class ExecutionConfig(_Strict):
    timeout_ms: float = Field(default=10_000, gt=0)
    retries: int = Field(default=1, ge=0, le=5)
    fallback: Literal["same_tier", "none"] = "same_tier"
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)


class ExemplarConfig(_Strict):
    levels: dict[str, list[str]]
    domains: dict[str, list[str]]


MAX_CASCADE_MARGIN = 0.5  # level boundaries are 0.2 apart


class HeadConfig(_Strict):
    """The learned head written by `harness router fit` (router/head.py). The weights file's
    sha256 is part of the config, hence of ``config_hash``; a file that does not match is refused."""

    weights: str = Field(min_length=1)  # path, relative to the config file's folder
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    hash_dim: int = Field(ge=16, le=1 << 22)
    # min distance to a boundary; at the maximum no row is that far, so every text is embedded
    cascade_margin: float = Field(default=0.1, ge=0, le=MAX_CASCADE_MARGIN)
    domain_clarity: float = Field(default=0.8, ge=0, le=1)  # min fast-head domain probability


class RouterConfig(_Strict):
    router_version: str
    semantic: SemanticConfig = Field(default_factory=SemanticConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    levels: dict[str, float]
    borderline_band: float = Field(ge=0, le=0.2)
    confidence_weights: ConfidenceWeights
    confidence_coefficients: ConfidenceCoefficients = Field(default_factory=ConfidenceCoefficients)
    rule_weights: RuleWeights = Field(default_factory=RuleWeights)
    models: list[ModelSpec]
    routing: RoutingConfig
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    exemplars: ExemplarConfig
    head: HeadConfig | None = None
    score_centers: dict[str, float] | None = None
    """Where each level sits on the complexity-score scale: the semantic and learned scores are
    probability-weighted mixes of these. Default: the middle of each level's threshold range.
    `pilot calibrate` pins them, so moving a threshold moves the decision, not the score."""
    _base_dir: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> RouterConfig:
        level_names = [lv.value for lv in LEVELS]
        domain_names = [d.value for d in DOMAINS]
        if set(self.levels) != set(level_names):
            raise ValueError(f"levels must give exactly {level_names}, got {list(self.levels)}")
        thresholds = [self.levels[name] for name in level_names]
        if thresholds[0] != 0.0 or any(b <= a for a, b in pairwise(thresholds)):
            raise ValueError(
                f"level thresholds must start at 0.0 and strictly increase, got {thresholds}"
            )
        if thresholds[-1] >= 1.0:
            raise ValueError("the EXPERT threshold must be below 1.0")
        gaps = [b - a for a, b in pairwise(thresholds)]
        if self.borderline_band * 2 >= min(gaps):
            raise ValueError(
                f"borderline_band {self.borderline_band} must be under half the narrowest level width"
                f" ({min(gaps) / 2:.3f})"
            )
        if self.score_centers is not None:
            if set(self.score_centers) != set(level_names):
                raise ValueError(
                    f"score_centers must give exactly {level_names}, got {list(self.score_centers)}"
                )
            centers = [self.score_centers[name] for name in level_names]
            if any(b <= a for a, b in pairwise(centers)) or not 0 <= centers[0] < centers[-1] <= 1:
                raise ValueError(
                    f"score_centers must strictly increase within [0, 1], got {centers}"
                )
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"models: duplicate names {dupes}")
        known = set(names)

        def _check_model(where: str, name: str) -> None:
            if name not in known:
                raise ValueError(f"{where}: unknown model {name!r}; catalog has {sorted(known)}")

        if set(self.routing.level_models) != set(level_names):
            raise ValueError(f"routing.level_models must map every level {level_names}")
        for lv, m in self.routing.level_models.items():
            _check_model(f"routing.level_models.{lv}", m)
        for dom, mapping in self.routing.domain_models.items():
            if dom not in domain_names:
                raise ValueError(
                    f"routing.domain_models: unknown domain {dom!r}; valid: {domain_names}"
                )
            for lv, m in mapping.items():
                if lv != "*" and lv not in level_names:
                    raise ValueError(
                        f"routing.domain_models.{dom}: unknown level {lv!r}; valid: {level_names} or '*'"
                    )
                _check_model(f"routing.domain_models.{dom}.{lv}", m)
        for dom in self.routing.service_domains:
            if dom not in domain_names:
                raise ValueError(
                    f"routing.service_domains: unknown domain {dom!r}; valid: {domain_names}"
                )
        if self.routing.privacy_model:
            _check_model("routing.privacy_model", self.routing.privacy_model)
        if set(self.routing.expected_output_tokens) != set(level_names):
            raise ValueError(f"routing.expected_output_tokens must map every level {level_names}")
        tiers = {m.tier for m in self.models}
        for t in self.routing.interactive_tiers:
            if t not in tiers:
                raise ValueError(
                    f"routing.interactive_tiers: unknown tier {t!r}; tiers: {sorted(tiers)}"
                )
        if set(self.exemplars.levels) != set(level_names):
            raise ValueError(f"exemplars.levels must give phrases for every level {level_names}")
        for lv, phrases in self.exemplars.levels.items():
            if not phrases:
                raise ValueError(f"exemplars.levels.{lv} is empty")
        for dom, phrases in self.exemplars.domains.items():
            if dom not in domain_names:
                raise ValueError(
                    f"exemplars.domains: unknown domain {dom!r}; valid: {domain_names}"
                )
            if not phrases:
                raise ValueError(f"exemplars.domains.{dom} is empty")
        return self

    # --- derived views -------------------------------------------------------------------
    def model(self, name: str) -> ModelSpec:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(f"unknown model {name!r}")

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    @property
    def thresholds(self) -> list[float]:
        return [self.levels[lv.value] for lv in LEVELS]

    @property
    def centers(self) -> list[float]:
        """The score-scale position of each level (see ``score_centers``)."""
        if self.score_centers is not None:
            return [self.score_centers[lv.value] for lv in LEVELS]
        t = self.thresholds
        return [(a + b) / 2.0 for a, b in zip(t, [*t[1:], 1.0], strict=True)]

    @property
    def scale_boundaries(self) -> list[float]:
        """Level boundaries of the score scale itself (midpoints between centres): what the
        cascade and the rule/semantic disagreement measure against. Equal to the thresholds
        unless calibration moved the thresholds and pinned the centres."""
        if self.score_centers is None:
            return self.thresholds[1:]  # exactly, not a float round trip
        c = self.centers
        return [(a + b) / 2.0 for a, b in zip(c, c[1:], strict=False)]

    def execution_style_for(self, level_rank: int, domain: str) -> ExecutionStyle:
        if domain == "speech":
            return ExecutionStyle.STREAMING_REAL_TIME
        if level_rank >= 4:
            return ExecutionStyle.BATCH_PARALLEL
        return ExecutionStyle.STREAMING

    def head_path(self) -> Path | None:
        """The head's weights file, resolved against the folder of the config file."""
        if self.head is None:
            return None
        p = Path(self.head.weights)
        if p.is_absolute():
            return p
        # Beside the config first; then the packaged folder, so a copy of the default config
        # written elsewhere (a calibrated candidate, a test) still finds the shipped weights.
        # Safe: the file's sha256 is checked against the config at load.
        for folder in (self._base_dir, default_config_path().parent):
            if folder is not None and (folder / p).is_file():
                return folder / p
        return (self._base_dir or Path.cwd()) / p

    @cached_property
    def config_hash(self) -> str:
        """Hash of the normalised config (sorted-key JSON): equal configs hash equal, whatever the YAML layout."""
        # A config without a head hashes as it did before heads existed.
        # Likewise a config without pinned score centres.
        unset = {k for k in ("head", "score_centers") if getattr(self, k) is None}
        # And one with the default confidence coefficients, as before they were configurable.
        if self.confidence_coefficients == ConfidenceCoefficients():
            unset.add("confidence_coefficients")
        dump = self.model_dump(mode="json", exclude=unset or None)
        blob = json.dumps(dump, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def default_config_path() -> Path:
    return Path(str(resources.files("router") / DEFAULT_CONFIG_NAME))


def load_config(path: str | Path | None = None) -> RouterConfig:
    """Load and validate a router config; ``None`` is the packaged default."""
    p = Path(path) if path is not None else default_config_path()
    try:
        cfg = load_yaml_model(p, RouterConfig)  # strict UTF-8, duplicate keys refused
    except YamlModelError as exc:
        raise ConfigError(str(exc)) from None
    cfg._base_dir = p.resolve().parent
    return cfg
