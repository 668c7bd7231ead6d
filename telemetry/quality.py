"""Great Expectations data-quality suite for decision telemetry, one suite per schema version.

Each day of telemetry is validated against the suite of the schema version it claims, and the
results are rendered as Data Docs inside the report folder, so an auditor sees evidence rather than
promises. Failure details returned to callers (and rendered in Data Docs) are counts and column
names only: the checkpoint runs with ``partial_unexpected_count=0`` so no cell value of any column
is ever copied into a result, a report or a log.

Great Expectations takes about 2 s to import, so it is imported inside functions, and one
ephemeral context is reused for every day validated in the process (``QualityValidator``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.decision import (
    DECISION_ARROW_SCHEMA,
    DECISION_COLUMNS,
    DECISION_SCHEMA_VERSION,
    DOMAINS,
    LEVELS,
    REASON_CODES,
    REASON_SEPARATOR,
    ExecutionMode,
    ExecutionStyle,
    Outcome,
)

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd

SUITE_PREFIX = "decision_telemetry"
DATASOURCE_NAME = "decision_telemetry"
ASSET_NAME = "decisions"
BATCH_DEFINITION_NAME = "one_day"
EXPECTED_ROWS_PARAMETER = "expected_rows"

# Keeps GX from copying cell values into results: counts and percentages only.
RESULT_FORMAT: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": 0}

# Table-level expectations whose observed value is a count or column names, never cell values.
_OBSERVED_VALUE_IS_SAFE = {
    "expect_table_row_count_to_equal",
    "expect_table_columns_to_match_set",
}

_DAY_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA256_HEX = r"^[0-9a-f]{64}$"
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class UnknownSchemaVersionError(ValueError):
    """No data-quality suite is registered for a decision schema version."""


@dataclass(frozen=True, slots=True)
class QualityResult:
    """One day's verdict. ``failed`` holds counts and column names only, never row contents."""

    success: bool
    day_label: str
    evaluated_expectations: int
    successful_expectations: int
    failed: list[dict[str, Any]] = field(default_factory=list)
    data_docs_index: Path | None = None
    suite_name: str = ""
    rows: int = 0


def suite_name_for(suite_version: str) -> str:
    """``1.0.0`` -> ``decision_telemetry_v1_0_0``: one suite per schema version."""
    return f"{SUITE_PREFIX}_v{suite_version.replace('.', '_')}"


def _row_count_value(expected_rows: int | None) -> int | dict[str, str]:
    """None keeps the count as a GX suite parameter, so one registered suite serves every day."""
    if expected_rows is None:
        return {"$PARAMETER": EXPECTED_ROWS_PARAMETER}
    return expected_rows


def _reason_codes_regex() -> str:
    code = "(?:" + "|".join(re.escape(c) for c in REASON_CODES) + ")"
    sep = re.escape(REASON_SEPARATOR)
    return f"^(?:{code}(?:{sep}{code})*)?$"


def _suite_v1_0_0(
    models: Collection[str], expected_rows: int | None, suite_version: str
) -> gx.ExpectationSuite:
    """Schema 1.0.0. The decision-only contract uses GX row conditions (``Column(...) == ...``).

    Row conditions were checked on pandas 3.1 / GX 1.24 and filter correctly, so no derived
    column is needed and GX sees the caller's columns unchanged, which keeps the exact column-set
    check meaningful. The string form (``row_condition="..."`` + ``condition_parser="pandas"``)
    is deprecated since GX 1.9, so Condition objects are used.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    decision_only = Column("execution_mode_active") == False  # noqa: E712 - builds a GX Condition
    unit_interval = (
        "complexity_score",
        "domain_confidence",
        "confidence_complexity",
        "confidence_model_fit",
        "confidence_execution_fit",
        "confidence_overall",
    )
    non_negative = (
        "latency_estimate_ms",
        "cost_estimate_usd",
        "tokens_estimate",
        "actual_latency_ms",
        "actual_cost_usd",
    )
    required = [f.name for f in DECISION_ARROW_SCHEMA if not f.nullable]

    expectations: list[gxe.Expectation] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(DECISION_COLUMNS),
            exact_match=True,
            notes="Exact column set: no raw-text column can sneak into telemetry.",
        ),
        gxe.ExpectTableRowCountToEqual(
            value=_row_count_value(expected_rows),
            notes="Zero data loss: every routed query has a decision row.",
        ),
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in required),
        gxe.ExpectColumnValuesToBeUnique(column="decision_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="decision_id", regex=_UUID),
        gxe.ExpectColumnValuesToMatchRegex(
            column="query_hash", regex=_SHA256_HEX, notes="Queries are stored hashed, never raw."
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="complexity_level", value_set=[str(v) for v in LEVELS]
        ),
        gxe.ExpectColumnValuesToBeInSet(column="domain", value_set=[str(v) for v in DOMAINS]),
        gxe.ExpectColumnValuesToBeInSet(column="model", value_set=sorted(models)),
        gxe.ExpectColumnValuesToBeInSet(
            column="execution_style", value_set=[str(v) for v in ExecutionStyle]
        ),
        gxe.ExpectColumnValuesToBeInSet(column="outcome", value_set=[str(v) for v in Outcome]),
        gxe.ExpectColumnValuesToBeInSet(
            column="execution_mode", value_set=[str(v) for v in ExecutionMode]
        ),
        gxe.ExpectColumnValuesToMatchRegex(column="reason_codes", regex=_reason_codes_regex()),
        *(
            gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=1)
            for c in unit_interval
        ),
        *(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in non_negative),
        gxe.ExpectColumnValuesToBeInSet(
            column="decision_schema_version", value_set=[suite_version]
        ),
        # The kill switch: the effective mode and the active flag agree ...
        gxe.ExpectColumnValuesToBeInSet(
            column="execution_mode_active",
            value_set=[False],
            row_condition=Column("execution_mode") == ExecutionMode.DECISION_ONLY.value,
            notes="Kill switch: decision-only is never active.",
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="execution_mode_active",
            value_set=[True],
            row_condition=Column("execution_mode") == ExecutionMode.EXECUTION_ENABLED.value,
        ),
        # ... and a decision-only row was simulated, with no actuals and nothing executed.
        gxe.ExpectColumnValuesToBeInSet(
            column="simulated",
            value_set=[True],
            row_condition=decision_only,
            notes="Decision-only rows are simulated.",
        ),
        gxe.ExpectColumnValuesToBeNull(
            column="actual_latency_ms",
            row_condition=decision_only,
            notes="Decision-only rows have no actual latency: nothing was called.",
        ),
        gxe.ExpectColumnValuesToBeNull(
            column="actual_cost_usd",
            row_condition=decision_only,
            notes="Decision-only rows have no actual cost: nothing was called.",
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="outcome",
            value_set=[Outcome.NOT_EXECUTED.value],
            row_condition=decision_only,
            notes="Decision-only rows are not executed.",
        ),
    ]
    return gx.ExpectationSuite(
        name=suite_name_for(suite_version),
        expectations=expectations,
        meta={"decision_schema_version": suite_version},
    )


SuiteBuilder = Callable[[Collection[str], "int | None", str], "gx.ExpectationSuite"]

# Schema version -> suite builder. A new schema version adds a builder and a line here.
SUITE_BUILDERS: dict[str, SuiteBuilder] = {"1.0.0": _suite_v1_0_0}


def _builder_for(suite_version: str) -> SuiteBuilder:
    try:
        return SUITE_BUILDERS[suite_version]
    except KeyError:
        raise UnknownSchemaVersionError(
            f"no data-quality suite for decision schema version {suite_version!r}; "
            f"known versions: {', '.join(sorted(SUITE_BUILDERS))}"
        ) from None


def build_suite(
    models: Collection[str],
    expected_rows: int | None,
    suite_version: str = DECISION_SCHEMA_VERSION,
) -> gx.ExpectationSuite:
    """The suite for one schema version, parametrised by the model catalog and the day's size.

    ``expected_rows=None`` leaves the row count as the suite parameter ``expected_rows``, to be
    given at run time (``expectation_parameters``); the validator uses that form so it registers
    the suite once instead of once per day (re-registering costs ~0.3 s a day in GX).
    """
    builder = _builder_for(suite_version)
    if expected_rows is not None:
        _check_expected_rows(expected_rows)
    _check_models(models)
    return builder(models, expected_rows, suite_version)


def _check_expected_rows(expected_rows: int) -> None:
    if isinstance(expected_rows, bool) or not isinstance(expected_rows, int) or expected_rows < 0:
        raise ValueError(f"expected_rows must be an int >= 0, got {expected_rows!r}")


def _check_models(models: Collection[str]) -> None:
    if isinstance(models, str) or not models or not all(isinstance(m, str) for m in models):
        raise ValueError("models must be a non-empty collection of model names (strings)")


def _summarise_failure(res: Any) -> dict[str, Any]:
    """Counts and column names only; cell values never leave GX (see RESULT_FORMAT)."""
    cfg = res.expectation_config
    kwargs = cfg.kwargs
    out: dict[str, Any] = {"expectation": cfg.type, "column": kwargs.get("column")}
    condition = kwargs.get("row_condition")
    if condition:
        from great_expectations.expectations.row_conditions import deserialize_row_condition

        out["row_condition"] = repr(deserialize_row_condition(condition))
    result = res.result or {}
    for key in ("element_count", "unexpected_count", "unexpected_percent", "missing_count"):
        if key in result:
            out[key] = result[key]
    if cfg.type in _OBSERVED_VALUE_IS_SAFE and "observed_value" in result:
        out["observed_value"] = result["observed_value"]
    if cfg.type == "expect_table_columns_to_match_set":
        mismatched = (result.get("details") or {}).get("mismatched") or {}
        out["unexpected_columns"] = sorted(mismatched.get("unexpected", []))
        out["missing_columns"] = sorted(mismatched.get("missing", []))
        out.pop("observed_value", None)
    if cfg.type == "expect_table_row_count_to_equal":
        out["expected_value"] = kwargs.get("value")
    exc = res.exception_info or {}
    if exc.get("raised_exception"):
        out["raised_exception"] = True
        out["exception_message"] = str(exc.get("exception_message", ""))[:300]
    return out


class QualityValidator:
    """Holds one ephemeral GX context for the process: importing GX and creating it cost ~2 s.

    The suite, validation definition and checkpoints are registered once per (schema version,
    model set) and reused for every day; the day's row count is a suite parameter. Calls are
    serialised with a lock because a GX context is not thread-safe (Prefect's default task runner
    uses threads). Each Data Docs directory gets its own site and its own filesystem
    validation-results store inside that directory, so a rerun in a new process still lists the
    earlier days (GX drops index entries whose results its store no longer holds).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._context: Any = None
        self._batch_definition: Any = None
        self._default_results_store: str | None = None
        self._sites: dict[Path, tuple[str, str]] = {}
        self._suite_key: tuple[str, tuple[str, ...]] | None = None
        self._definition: Any = None
        self._checkpoints: dict[str | None, Any] = {}

    def _ensure_context(self) -> Any:
        if self._context is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            # GX pins one of its module loggers to INFO at import; its temp-dir chatter is noise.
            logging.getLogger("great_expectations.data_context.types.base").setLevel(
                logging.WARNING
            )
            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            source = context.data_sources.add_or_update_pandas(name=DATASOURCE_NAME)
            asset = source.add_dataframe_asset(name=ASSET_NAME)
            self._batch_definition = asset.add_batch_definition_whole_dataframe(
                BATCH_DEFINITION_NAME
            )
            self._default_results_store = context.validation_results_store_name
            self._context = context
        return self._context

    def _site_for(self, data_docs_dir: Path) -> tuple[str, str]:
        """(site name, results store name) for a directory, registered once per process."""
        if data_docs_dir in self._sites:
            return self._sites[data_docs_dir]
        context = self._context
        key = hashlib.sha256(str(data_docs_dir).encode()).hexdigest()[:12]
        site_name, store_name = f"decision_quality_{key}", f"decision_quality_results_{key}"
        context.add_store(
            store_name,
            {
                "class_name": "ValidationResultsStore",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(data_docs_dir / "_validation_results"),
                },
            },
        )
        site_config = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(data_docs_dir),
            },
            "site_section_builders": {
                "validations": {"source_store_name": store_name},
                "profiling": {"source_store_name": store_name},
            },
        }
        if site_name in context.list_data_docs_sites():
            context.update_data_docs_site(site_name, site_config)
        else:
            context.add_data_docs_site(site_name, site_config)
        self._sites[data_docs_dir] = (site_name, store_name)
        return site_name, store_name

    def _checkpoint_for(
        self, suite_version: str, models: tuple[str, ...], site_name: str | None
    ) -> Any:
        """Register (add_or_update) the suite when its version or models change; reuse it else."""
        import great_expectations as gx
        from great_expectations.checkpoint import UpdateDataDocsAction

        context = self._context
        key = (suite_version, models)
        if key != self._suite_key:
            suite = context.suites.add_or_update(build_suite(models, None, suite_version))
            self._definition = context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=suite.name, data=self._batch_definition, suite=suite)
            )
            self._checkpoints.clear()
            self._suite_key = key
        if site_name not in self._checkpoints:
            actions = []
            if site_name is not None:
                actions.append(
                    UpdateDataDocsAction(name="update_data_docs", site_names=[site_name])
                )
            name = f"{self._definition.name}__{site_name or 'no_data_docs'}"
            self._checkpoints[site_name] = context.checkpoints.add_or_update(
                gx.Checkpoint(
                    name=name,
                    validation_definitions=[self._definition],
                    actions=actions,
                    result_format=RESULT_FORMAT,
                )
            )
        return self._checkpoints[site_name]

    def validate(
        self,
        df: pd.DataFrame,
        *,
        expected_rows: int,
        models: Collection[str],
        day_label: str,
        data_docs_dir: str | Path | None,
        suite_version: str = DECISION_SCHEMA_VERSION,
    ) -> QualityResult:
        """Validate one day of decisions; build Data Docs into ``data_docs_dir`` when given."""
        import pandas as pd

        _builder_for(suite_version)
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        if not isinstance(day_label, str) or not _DAY_LABEL_RE.match(day_label):
            raise ValueError(
                f"day_label {day_label!r} is not valid: use 1-64 characters of letters, digits, "
                "'.', '_' or '-' (it names Data Docs folders), e.g. '2026-11-02'"
            )
        _check_expected_rows(expected_rows)
        _check_models(models)
        docs_dir = Path(data_docs_dir).resolve() if data_docs_dir is not None else None
        with self._lock:
            return self._run(
                df, expected_rows, tuple(sorted(set(models))), day_label, docs_dir, suite_version
            )

    def _run(
        self,
        df: pd.DataFrame,
        expected_rows: int,
        models: tuple[str, ...],
        day_label: str,
        docs_dir: Path | None,
        suite_version: str,
    ) -> QualityResult:
        from great_expectations.core.run_identifier import RunIdentifier

        context = self._ensure_context()
        site_name = None
        if docs_dir is not None:
            docs_dir.mkdir(parents=True, exist_ok=True)
            site_name, store_name = self._site_for(docs_dir)
            context.validation_results_store_name = store_name
        else:
            context.validation_results_store_name = self._default_results_store
        checkpoint = self._checkpoint_for(suite_version, models, site_name)

        run_id = RunIdentifier(run_name=day_label, run_time=datetime.now(UTC))
        checkpoint_result = checkpoint.run(
            batch_parameters={"dataframe": df},
            expectation_parameters={EXPECTED_ROWS_PARAMETER: expected_rows},
            run_id=run_id,
        )
        (validation,) = checkpoint_result.run_results.values()
        stats = validation.statistics
        failed = [_summarise_failure(r) for r in validation.results if not r.success]
        index = docs_dir / "index.html" if docs_dir is not None else None
        if index is not None and not index.is_file():
            raise RuntimeError(f"Data Docs were not written: {index} is missing after the build")
        if docs_dir is not None:  # GX links Bootstrap/jQuery/Font Awesome from CDNs
            from reports.assets import make_data_docs_offline

            make_data_docs_offline(docs_dir)
        return QualityResult(
            success=bool(validation.success),
            day_label=day_label,
            evaluated_expectations=int(stats["evaluated_expectations"]),
            successful_expectations=int(stats["successful_expectations"]),
            failed=failed,
            data_docs_index=index,
            suite_name=suite_name_for(suite_version),
            rows=len(df),
        )


_default_validator: QualityValidator | None = None
_default_lock = threading.Lock()


def default_validator() -> QualityValidator:
    """The process-wide validator, created on first use so importing this module stays cheap."""
    global _default_validator
    with _default_lock:
        if _default_validator is None:
            _default_validator = QualityValidator()
        return _default_validator


def validate_decisions(df: pd.DataFrame, **options: Any) -> QualityResult:
    """Validate one day of decision telemetry with the process-wide validator; ``options`` are
    ``QualityValidator.validate``'s (expected_rows, models, day_label, data_docs_dir, ...)."""
    return default_validator().validate(df, **options)
