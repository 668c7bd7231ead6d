"""The decision-telemetry data-quality suite: a valid day passes, each broken promise is reported
by name with counts only, Data Docs are written, and an unknown schema version is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from telemetry_rows import make_decision_table

from router.decision import ExecutionMode, Outcome
from telemetry.quality import (
    QualityValidator,
    UnknownSchemaVersionError,
    build_suite,
    suite_name_for,
    validate_decisions,
)

START = datetime(2026, 11, 2, tzinfo=UTC)
ROWS = 200


def decision_only_day(n: int, seed: int = 0) -> pd.DataFrame:
    """A valid decision-only day from the shared builder.

    The decision-only fields are set explicitly because that contract is what this suite checks
    (decision-only: simulated, not executed, no actuals); on rows that already keep it, this
    changes nothing.
    """
    df = make_decision_table(n, run_id="r1", start=START, seed=seed).to_pandas()
    df["execution_mode"] = ExecutionMode.DECISION_ONLY.value
    df["execution_mode_active"] = False
    df["simulated"] = True
    df["outcome"] = Outcome.NOT_EXECUTED.value
    for column in ("actual_latency_ms", "actual_cost_usd", "error_code"):
        df[column] = df[column].where(df[column].isna())
    return df


MODELS = tuple(sorted(set(decision_only_day(ROWS).model)))


@pytest.fixture(scope="module")
def validator() -> QualityValidator:
    """One GX context for the module: importing GX and building a context cost ~2 s."""
    return QualityValidator()


@pytest.fixture
def day() -> pd.DataFrame:
    return decision_only_day(ROWS)


def _validate(validator: QualityValidator, df: pd.DataFrame, **kw) -> object:
    args = {"expected_rows": ROWS, "models": MODELS, "day_label": "2026-11-02"}
    args["data_docs_dir"] = None
    args.update(kw)
    return validator.validate(df, **args)


def _failed_types(result) -> set[tuple[str, str | None]]:
    return {(f["expectation"], f["column"]) for f in result.failed}


def test_valid_day_passes_every_expectation(validator, day):
    result = _validate(validator, day)
    assert result.success, result.failed
    assert result.failed == []
    assert result.evaluated_expectations == result.successful_expectations > 40
    assert result.suite_name == "decision_telemetry_v1_0_0"


def test_extra_text_column_fails_the_exact_column_set(validator, day):
    day["text"] = "a raw query that must never be stored"
    result = _validate(validator, day)
    assert not result.success
    (failure,) = [
        f for f in result.failed if f["expectation"] == "expect_table_columns_to_match_set"
    ]
    assert failure["unexpected_columns"] == ["text"]
    assert failure["missing_columns"] == []
    assert "a raw query" not in repr(result)


def test_missing_column_is_named(validator, day):
    result = _validate(validator, day.drop(columns=["query_hash"]))
    (failure,) = [
        f for f in result.failed if f["expectation"] == "expect_table_columns_to_match_set"
    ]
    assert failure["missing_columns"] == ["query_hash"]


def test_lost_rows_fail_the_row_count(validator, day):
    result = _validate(validator, day.iloc[:-3])
    assert _failed_types(result) == {("expect_table_row_count_to_equal", None)}
    (failure,) = result.failed
    assert failure["observed_value"] == ROWS - 3
    assert failure["expected_value"] == ROWS


def test_duplicate_decision_id_fails_uniqueness(validator, day):
    day.loc[5, "decision_id"] = day.loc[4, "decision_id"]
    result = _validate(validator, day)
    assert _failed_types(result) == {("expect_column_values_to_be_unique", "decision_id")}
    assert result.failed[0]["unexpected_count"] == 2


def test_bad_query_hash_fails_and_is_not_echoed(validator, day):
    day.loc[7, "query_hash"] = "what is my neighbour's password"
    day.loc[8, "query_hash"] = day.loc[8, "query_hash"].upper()
    result = _validate(validator, day)
    assert _failed_types(result) == {("expect_column_values_to_match_regex", "query_hash")}
    assert result.failed[0]["unexpected_count"] == 2
    assert "password" not in repr(result)


def test_unknown_model_fails(validator, day):
    day.loc[0, "model"] = "gpt-unlisted"
    result = _validate(validator, day)
    assert _failed_types(result) == {("expect_column_values_to_be_in_set", "model")}
    assert result.failed[0]["unexpected_count"] == 1
    assert "gpt-unlisted" not in repr(result.failed)


def test_confidence_above_one_fails(validator, day):
    day.loc[3, "confidence_overall"] = 1.2
    result = _validate(validator, day)
    assert _failed_types(result) == {("expect_column_values_to_be_between", "confidence_overall")}


def test_decision_only_row_with_actual_latency_breaks_the_contract(validator, day):
    day.loc[9, "actual_latency_ms"] = 123.0
    result = _validate(validator, day)
    assert _failed_types(result) == {("expect_column_values_to_be_null", "actual_latency_ms")}
    (failure,) = result.failed
    assert failure["unexpected_count"] == 1
    assert failure["row_condition"] == "execution_mode_active == False"


def test_decision_only_row_must_be_simulated_and_not_executed(validator, day):
    day.loc[1, "simulated"] = False
    day.loc[2, "outcome"] = "ok"
    result = _validate(validator, day)
    assert _failed_types(result) == {
        ("expect_column_values_to_be_in_set", "simulated"),
        ("expect_column_values_to_be_in_set", "outcome"),
    }


def test_executed_rows_may_carry_actuals(validator, day):
    """The contract is conditional: execution-enabled rows with actuals are fine."""
    rows = day.index[:10]
    day.loc[rows, "execution_mode"] = "execution-enabled"
    day.loc[rows, "execution_mode_active"] = True
    day.loc[rows, "simulated"] = False
    day.loc[rows, "outcome"] = "ok"
    day.loc[rows, "actual_latency_ms"] = 80.0
    day.loc[rows, "actual_cost_usd"] = 0.001
    result = _validate(validator, day)
    assert result.success, result.failed


def test_decision_only_mode_marked_active_breaks_the_kill_switch(validator, day):
    day.loc[0, "execution_mode_active"] = True
    result = _validate(validator, day)
    assert ("expect_column_values_to_be_in_set", "execution_mode_active") in _failed_types(result)


def test_null_in_a_required_column_fails(validator, day):
    day.loc[0, "ts"] = pd.NaT
    day.loc[1, "domain"] = None
    result = _validate(validator, day)
    assert _failed_types(result) == {
        ("expect_column_values_to_not_be_null", "ts"),
        ("expect_column_values_to_not_be_null", "domain"),
    }


def test_wrong_schema_version_in_rows_fails(validator, day):
    day.loc[0, "decision_schema_version"] = "0.9.0"
    result = _validate(validator, day)
    assert _failed_types(result) == {
        ("expect_column_values_to_be_in_set", "decision_schema_version")
    }


def test_data_docs_index_is_written_and_lists_every_day(validator, day, tmp_path: Path):
    docs = tmp_path / "report" / "data_docs"
    first = _validate(validator, day, data_docs_dir=docs, day_label="2026-11-02")
    broken = day.iloc[:-1]
    second = _validate(validator, broken, data_docs_dir=docs, day_label="2026-11-03")
    assert first.data_docs_index == second.data_docs_index == (docs / "index.html").resolve()
    assert first.data_docs_index.is_file()
    html = first.data_docs_index.read_text()
    assert "2026-11-02" in html and "2026-11-03" in html
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == 2


def test_module_level_api_and_suite_naming(day):
    result = validate_decisions(
        day, expected_rows=ROWS, models=MODELS, day_label="d1", data_docs_dir=None
    )
    assert result.success
    assert suite_name_for("1.0.0") == "decision_telemetry_v1_0_0"
    assert build_suite(MODELS, ROWS).name == "decision_telemetry_v1_0_0"


def test_unknown_schema_version_is_a_clear_error(validator, day):
    with pytest.raises(UnknownSchemaVersionError, match=r"'9\.9\.9'.*known versions: 1\.0\.0"):
        _validate(validator, day, suite_version="9.9.9")
    with pytest.raises(UnknownSchemaVersionError):
        build_suite(MODELS, ROWS, "9.9.9")


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"expected_rows": -1}, "expected_rows"),
        ({"models": []}, "models"),
        ({"day_label": "../escape"}, "day_label"),
    ],
)
def test_bad_arguments_are_named(validator, day, kw, match):
    with pytest.raises(ValueError, match=match):
        _validate(validator, day, **kw)


def test_data_docs_keep_earlier_days_after_a_restart(validator, day, tmp_path: Path):
    """A fresh validator (as in a new process) still lists days validated before it existed."""
    docs = tmp_path / "data_docs"
    _validate(validator, day, data_docs_dir=docs, day_label="2026-11-02")
    later = QualityValidator()
    result = _validate(later, day, data_docs_dir=docs, day_label="2026-11-03")
    html = result.data_docs_index.read_text()
    assert "2026-11-02" in html and "2026-11-03" in html


def test_row_count_parameter_changes_between_days(validator, day):
    """One registered suite serves every day: the expected count is supplied per run."""
    assert _validate(validator, day, expected_rows=ROWS).success
    other = _validate(validator, day, expected_rows=ROWS + 1)
    assert _failed_types(other) == {("expect_table_row_count_to_equal", None)}
    assert other.failed[0]["expected_value"] == ROWS + 1
    assert _validate(validator, day.iloc[:50], expected_rows=50).success


def test_a_different_model_catalog_re_registers_the_suite(validator, day):
    assert _validate(validator, day, models=("only-this-model",)).failed[0]["column"] == "model"
    assert _validate(validator, day).success


def test_data_docs_never_contain_cell_values(validator, day, tmp_path: Path):
    """Failures are rendered as counts: a stray query text in a bad row never reaches the files."""
    marker = "MARKER-raw-query-text"
    day.loc[3, "query_hash"] = f"{marker} hash"
    day.loc[4, "model"] = f"{marker} model"
    day.loc[5, "reason_codes"] = f"{marker} reason"
    day["text"] = marker
    docs = tmp_path / "docs"
    result = _validate(validator, day, data_docs_dir=docs)
    assert not result.success and marker not in repr(result)
    files = [p for p in docs.rglob("*") if p.is_file() and "static" not in p.parts]
    assert any(p.suffix == ".json" for p in files) and any(p.suffix == ".html" for p in files)
    assert not [p for p in files if marker in p.read_text(errors="replace")]
