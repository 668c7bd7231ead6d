"""Seconds per day validated by the decision-telemetry GX suite, with and without Data Docs.

Reports the one-off cost (GX import and context creation) apart from the per-day cost, because a
pilot week pays the first once and the second per day. Run: ``.venv/bin/python -m
benchmarks.bench_gx`` (or the file directly) from the repo root.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _make_frame(rows: int) -> Any:
    """A valid decision-only day from the shared test builder (no raw text in it).

    The decision-only fields are set explicitly: that contract is what the suite checks, and a
    failing frame would time a different path.
    """
    tests_dir = str(REPO / "tests")
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    from telemetry_rows import make_decision_table

    df = make_decision_table(rows, run_id="bench", seed=0).to_pandas()
    df["execution_mode"] = "decision-only"
    df["execution_mode_active"] = False
    df["simulated"] = True
    df["outcome"] = "not_executed"
    for column in ("actual_latency_ms", "actual_cost_usd", "error_code"):
        df[column] = df[column].where(df[column].isna())
    return df


def run(rows: int = 50_000, repeats: int = 3) -> dict[str, float | int]:
    """Time the first validation (import + context) and then ``repeats`` days each way."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from telemetry.quality import QualityValidator

    df = _make_frame(rows)
    models = sorted(set(df["model"]))
    kw = {"expected_rows": rows, "models": models}

    t0 = time.perf_counter()
    import great_expectations  # noqa: F401 - timed on purpose

    import_s = time.perf_counter() - t0
    validator = QualityValidator()
    t0 = time.perf_counter()
    first = validator.validate(df, day_label="warmup", data_docs_dir=None, **kw)
    first_s = time.perf_counter() - t0
    if not first.success:
        raise RuntimeError(f"benchmark frame failed the suite: {first.failed}")

    plain, with_docs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            t0 = time.perf_counter()
            validator.validate(df, day_label=f"day-{i}", data_docs_dir=None, **kw)
            plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            validator.validate(df, day_label=f"day-{i}", data_docs_dir=Path(tmp) / "docs", **kw)
            with_docs.append(time.perf_counter() - t0)
    return {
        "rows": rows,
        "expectations": first.evaluated_expectations,
        "gx_import_s": round(import_s, 3),
        "first_validation_s": round(first_s, 3),
        "per_day_s": round(statistics.median(plain), 3),
        "per_day_with_data_docs_s": round(statistics.median(with_docs), 3),
    }


if __name__ == "__main__":
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    print(run(rows))
