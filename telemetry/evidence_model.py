"""The pilot evidence document (``evidence.json``) as one strict model, owned by its writer.

``telemetry.pilot_evidence`` builds the document and validates it here before writing (so it can
never write what a reader refuses); the pilot report, the evidence store and ``pilot report
--recompute`` read it through ``parse_evidence``. The contract, key by key, is
``docs/evidence.md`` (``tests/test_evidence_contract.py`` checks the two agree): every key is
required, ``null`` only where the writer writes it, unknown keys refused with their path.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, model_validator

from telemetry.comparison import ComparisonResult
from telemetry.labels import LabelledResult
from telemetry.pilot_run import CorpusFacts, TelemetryFacts
from telemetry.readiness import CriterionResult
from telemetry.run_identity import RunIdentity

EVIDENCE_KIND = "pilot"
EVIDENCE_VERSION = "3"
"""Bumped when a key is added, removed, renamed or changes meaning; evidence of another version
is refused with a message saying which version it is."""

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_METRIC_COLUMN = re.compile(r"^[a-z][a-z0-9_]*$|^level_[A-Z]+$")


class EvidenceVersionError(ValueError):
    """A document that is not pilot evidence of this version (another kind, an older harness)."""


def _iso(value: str) -> str:
    from datetime import datetime

    datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return value


def _run_id(value: str) -> str:
    if not _RUN_ID.match(value):
        raise ValueError(
            "must be usable as a folder name: letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return value


IsoTime = Annotated[str, AfterValidator(_iso)]
RunId = Annotated[str, AfterValidator(_run_id)]
Rate = float | None
"""A measured number; null means "not measured" (no data, or NaN before JSON) and is shown so."""
Status = Literal["pass", "fail", "inconclusive", "not_applicable"]
VerdictLabel = Literal["go", "no-go", "inconclusive"]


class _Part(BaseModel):
    """Every evidence part: unknown keys refused, every key without a default required."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Execution(_Part):
    engine: Literal["local", "dask"]
    workers: int | None
    partitions: int | None
    address: str | None
    shard_rows: int | None


class CorpusInfo(_Part):
    name: str | None
    format: str | None


class Window(_Part):
    start: IsoTime
    end: IsoTime
    days: int


class RouterInfo(_Part):
    config_hash: str
    router_version: str
    semantic: bool
    decision_schema_version: str


def _mirror(source: type, name: str, doc: str, **refined: Any) -> Any:
    """A strict model with exactly the fields of the writer's dataclass ``source``, each one
    required: the dataclass is the one definition of the keys (a field renamed there is renamed
    here, and the contract test then asks for docs/evidence.md). ``refined`` narrows a field's
    type (a status to its values, a dict to its model) or adds a key ``to_dict`` writes beside
    the fields."""
    hints = get_type_hints(source)
    fields: dict[str, Any] = {
        f.name: (refined.pop(f.name, hints[f.name]), ...) for f in dataclasses.fields(source)
    }
    fields.update((key, (kind, ...)) for key, kind in refined.items())
    return create_model(name, __base__=_Part, __doc__=doc, __module__=__name__, **fields)


Identity = _mirror(
    RunIdentity,
    "Identity",
    "``telemetry.run_identity.RunIdentity``: what makes two runs the same run.",
    run_id=RunId,
)
CriterionRow = _mirror(
    CriterionResult,
    "CriterionRow",
    "``telemetry.readiness.CriterionResult``: one go / no-go criterion judged.",
    severity=Literal["critical", "advisory"],
    status=Status,
)
CorpusSummary = _mirror(
    CorpusFacts, "CorpusSummary", "``telemetry.pilot_run.CorpusFacts``: what the corpus held."
)
TelemetryInfo = _mirror(
    TelemetryFacts,
    "TelemetryInfo",
    "``telemetry.pilot_run.TelemetryFacts``: where the decisions went.",
)


class MetricsRow(BaseModel):
    """One bucket of ``telemetry.metrics.compute_metrics``. The keys below are required (the
    report reads them); any other key is another metric column of the registry (a number or
    null: the level and domain shares, execution and store metrics)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    bucket: IsoTime
    queries: int
    borderline_rate: Rate
    upscale_rate: Rate
    confidence_mean: Rate
    confidence_median: Rate
    confidence_drop_pct: Rate
    latency_estimate_p95_ms: Rate
    cost_per_query_usd: Rate

    @model_validator(mode="after")
    def _extra_columns_are_metrics(self) -> MetricsRow:
        for key, value in (self.model_extra or {}).items():
            if not _METRIC_COLUMN.match(key):
                raise ValueError(f"{key!r} is not a metric column name")
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ValueError(f"metric column {key!r} must be a number or null")
        return self


class LevelCount(_Part):
    day: IsoTime
    level: str
    count: int


class ModelCount(_Part):
    day: IsoTime
    model: str
    count: int


class DomainCount(_Part):
    day: IsoTime
    domain: str
    count: int


class Histogram(_Part):
    edges: list[float] = Field(min_length=2)
    per_day: dict[str, list[float]]

    @model_validator(mode="after")
    def _bins_match_edges(self) -> Histogram:
        bins = len(self.edges) - 1
        for day, counts in self.per_day.items():
            if len(counts) != bins:
                raise ValueError(
                    f"per_day[{day!r}] has {len(counts)} counts; {len(self.edges)} edges "
                    f"need {bins}"
                )
        return self


class Thresholds(_Part):
    borderline_rate: float
    upscale_rate: float
    confidence_median: float
    confidence_drop_pct: float
    latency_p95_ms: float


class CostDay(_Part):
    day: IsoTime
    router_usd: float
    all_largest_usd: float
    served_usd: Rate


class Cost(_Part):
    per_day: list[CostDay]
    total_router_usd: float
    total_all_largest_usd: float
    total_served_usd: Rate
    baseline_model: str


class BacktestRow(_Part):
    """One alert rule back-tested on the week (``pilot_evidence.backtest_rows``)."""

    rule: str
    metric: str
    comparator: str
    threshold: float
    severity: str
    window: str | None
    for_: str | None = Field(alias="for")
    evaluated: bool
    note: str | None
    firings: int
    firings_per_week: Rate
    first_fired: IsoTime | None
    last_fired: IsoTime | None
    firing_time: str | None
    noisy: bool
    slack: bool
    suggested_threshold: Rate
    observed_min: Rate
    observed_median: Rate
    observed_p95: Rate
    observed_max: Rate

    @property
    def rule_condition(self) -> str:
        """ "metric > threshold" for people."""
        return f"{self.metric} {self.comparator} {self.threshold:g}"


class Firing(_Part):
    rule: str
    severity: str
    start: IsoTime
    end: IsoTime | None


class Alerts(_Part):
    backtest: list[BacktestRow]
    firings: list[Firing]


class QualityDay(_Part):
    day: IsoTime
    success: bool
    evaluated: int
    successful: int
    failed: list[Any]
    """Great Expectations' failed expectations (free-form objects, as GE reports them)."""
    data_docs: str | None


class Determinism(_Part):
    """``telemetry.pilot_run.Determinism``."""

    sample: int
    matched: int
    mismatched: int
    rate: Rate
    mismatched_fields: dict[str, int]


class Matrix(_Part):
    levels: list[str]
    matrix: list[list[float]]

    @model_validator(mode="after")
    def _square(self) -> Matrix:
        n = len(self.levels)
        if self.matrix and (len(self.matrix) != n or any(len(r) != n for r in self.matrix)):
            raise ValueError(f"matrix must be {n} x {n} (one row and column per level) or empty")
        return self


class Served(_Part):
    rows: int
    unknown_models: int
    router_usd: float
    served_usd: float


Labelled = _mirror(
    LabelledResult,
    "Labelled",
    "``telemetry.labels.LabelledResult``: the decisions judged against the corpus labels.",
    confusion=Matrix,
    served=Served | None,
)


class Flips(_Part):
    upgrades: int
    downgrades: int
    unchanged_level: int
    upgrade_rate: float
    downgrade_rate: float
    basis: str


class ConfigChange(_Part):
    path: str
    baseline: Any
    candidate: Any


class CandidateVerdict(_Part):
    config_hash: str
    verdict: VerdictLabel
    verdict_reason: str
    criteria: list[CriterionRow]
    labelled: Labelled | None


class PairedTestRow(_Part):
    metric: str
    baseline: Rate
    candidate: Rate
    difference: Rate
    ci_low: Rate
    ci_high: Rate
    p_value: Rate
    method: str
    n: int
    significant: bool
    conclusion: str


class ChangedDecision(_Part):
    query_id: str
    query_hash: str | None
    direction: str
    level_step: int
    baseline_level: str
    candidate_level: str
    baseline_model: str
    candidate_model: str
    domain: str
    candidate_domain: str
    cost_delta_usd: float


Comparison = _mirror(
    ComparisonResult,
    "Comparison",
    "``telemetry.comparison.ComparisonResult`` plus the config diff and the candidate's own "
    "criteria and verdict.",
    transition=Matrix,
    flips=Flips,
    transition_by_domain=dict[str, Matrix],
    changed=list[ChangedDecision],
    paired_tests=list[PairedTestRow],
    config_diff=list[ConfigChange],
    candidate=CandidateVerdict,
)


class PilotEvidence(_Part):
    """The pilot flow's evidence document (``<out>/<run_id>/evidence.json``)."""

    kind: Literal["pilot"]
    evidence_version: Literal["3"]
    run_id: RunId
    created_at: IsoTime
    identity: Identity | None
    execution: Execution
    corpus: CorpusInfo
    window: Window
    router: RouterInfo
    verdict: VerdictLabel
    verdict_reason: str
    criteria: list[CriterionRow] = Field(min_length=1)
    corpus_summary: CorpusSummary
    telemetry: TelemetryInfo
    metrics_hourly: list[MetricsRow]
    metrics_daily: list[MetricsRow]
    routing_mix: list[LevelCount]
    model_mix: list[ModelCount]
    domain_mix: list[DomainCount]
    confidence_histogram: Histogram
    thresholds: Thresholds
    cost: Cost
    alerts: Alerts
    quality: list[QualityDay]
    determinism: Determinism
    comparison: Comparison | None
    labelled: Labelled | None
    warnings: list[str]
    timings: dict[str, float]
    """Seconds per pilot stage (empty when recomputed from stored telemetry)."""

    @model_validator(mode="after")
    def _verdict_agrees_with_criteria(self) -> PilotEvidence:
        expected = verdict_of(self.criteria)
        if self.verdict != expected:
            states = ", ".join(
                f"{c.id}={c.status}" for c in self.criteria if c.severity == "critical"
            )
            raise ValueError(
                f"verdict is {self.verdict!r} but the critical criteria ({states}) make it "
                f"{expected!r}"
            )
        return self


def verdict_of(criteria: list[CriterionRow]) -> str:
    """The verdict rule (telemetry/readiness.py), re-checked so a tampered document is refused."""
    critical = [c.status for c in criteria if c.severity == "critical"]
    if "fail" in critical:
        return "no-go"
    if "inconclusive" in critical:
        return "inconclusive"
    return "go"


def check_header(data: Any) -> None:
    """A JSON object of kind ``pilot`` and this evidence version, else ``EvidenceVersionError``
    saying what it is instead (older evidence: re-run the pilot, or ``--recompute``)."""
    if not isinstance(data, dict):
        raise EvidenceVersionError(f"expected a JSON object at the top, got {type(data).__name__}")
    if data.get("kind") != EVIDENCE_KIND:
        raise EvidenceVersionError(f"not pilot evidence (kind={data.get('kind')!r})")
    version = data.get("evidence_version", "1")
    if str(version) != EVIDENCE_VERSION:
        raise EvidenceVersionError(
            f"evidence version {version!r}; this harness reads version {EVIDENCE_VERSION} only "
            "(written by another harness: re-run the pilot, or rebuild it from stored telemetry "
            "with `harness pilot report RUN_ID --recompute`)"
        )


def parse_evidence(data: Any) -> PilotEvidence:
    """Check the header, then validate every key (pydantic ``ValidationError`` with key paths)."""
    check_header(data)
    return PilotEvidence.model_validate(data)
