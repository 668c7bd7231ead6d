"""Telemetry store throughput: bulk insert, idempotent re-write and read, on SQLite and PostgreSQL.

Targets (2 cores): SQLite >= 100k rows/s, PostgreSQL >= 50k rows/s for inserts. SQLite runs on a
temporary file; PostgreSQL on a fresh schema of $AMAIMA_TEST_POSTGRES_URL (default the local test
server), dropped afterwards. ``run()`` returns numbers and prints nothing.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BATCH_ROWS = 10_000  # a realistic per-task batch, next to the one-shot bulk write


def _decision_table(n: int) -> pa.Table:
    try:
        from tests.telemetry_rows import make_decision_table
    except ImportError:  # run as a script: the repo root is not on sys.path
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.telemetry_rows import make_decision_table
    return make_decision_table(n, run_id="bench")


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _measure(prefix: str, url: str, table: pa.Table, spool_dir: Path) -> dict[str, float]:
    from telemetry.store import TelemetryStore

    n = table.num_rows
    out: dict[str, float] = {}
    with TelemetryStore(url, spool_dir=spool_dir) as store:
        cpu_start = time.process_time()
        seconds, result = _timed(lambda: store.write(table))
        cpu = time.process_time() - cpu_start
        if result.written != n:
            raise RuntimeError(f"{prefix}: wrote {result.written} of {n} ({result.error_kind})")
        out[f"{prefix}_insert_s"] = round(seconds, 3)
        out[f"{prefix}_insert_rows_per_s"] = round(n / seconds)
        # This process's CPU only: for SQLite that is all the work, so it shows the rate an
        # uncontended core would reach; for PostgreSQL the server's share is not in it.
        out[f"{prefix}_insert_client_cpu_s"] = round(cpu, 3)

        seconds, result = _timed(lambda: store.write(table))
        if result.duplicates != n:
            raise RuntimeError(f"{prefix}: re-write stored {result.written} duplicates")
        out[f"{prefix}_rewrite_duplicates_rows_per_s"] = round(n / seconds)

        seconds, back = _timed(store.read_arrow)
        if back.num_rows != n:
            raise RuntimeError(f"{prefix}: read {back.num_rows} of {n}")
        out[f"{prefix}_read_rows_per_s"] = round(n / seconds)
    return out


def _measure_batched(prefix: str, url: str, table: pa.Table, spool_dir: Path) -> dict[str, float]:
    from telemetry.store import TelemetryStore

    with TelemetryStore(url, spool_dir=spool_dir) as store:
        start = time.perf_counter()
        for batch in table.to_batches(max_chunksize=BATCH_ROWS):
            store.write(pa.Table.from_batches([batch]))
        seconds = time.perf_counter() - start
        if store.count() != table.num_rows:
            raise RuntimeError(f"{prefix}: batched writes stored {store.count()} rows")
    return {
        f"{prefix}_insert_{BATCH_ROWS // 1000}k_batches_rows_per_s": round(table.num_rows / seconds)
    }


def _postgres(table: pa.Table, spool_dir: Path) -> dict[str, Any]:
    import sqlalchemy as sa

    base = os.environ.get("AMAIMA_TEST_POSTGRES_URL", DEFAULT_PG_URL)
    admin = sa.create_engine(base, connect_args={"connect_timeout": 3})
    schemas = [f"bench_telemetry_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    try:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(sa.text(f'create schema "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - no server: report it, do not fail the suite
        admin.dispose()
        return {"postgres_error": f"{type(exc).__name__}: PostgreSQL not reachable"}
    sep = "&" if "?" in base else "?"
    urls = [f"{base}{sep}options=-csearch_path%3D{schema}" for schema in schemas]
    try:
        out: dict[str, Any] = _measure("postgres", urls[0], table, spool_dir)
        out.update(_measure_batched("postgres", urls[1], table, spool_dir))
        return out
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(sa.text(f'drop schema if exists "{schema}" cascade'))
        admin.dispose()


def run(n: int = 200_000) -> dict[str, Any]:
    """Insert / idempotent re-write / read rates in rows per second for ``n`` decisions."""
    table = _decision_table(n)
    result: dict[str, Any] = {
        "n": n,
        "cpus": os.cpu_count(),
        "load_avg_1m_before": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory(prefix="bench_telemetry_") as tmp:
        tmp_path = Path(tmp)
        spool = tmp_path / "spool"
        result.update(_measure("sqlite", f"sqlite:///{tmp_path / 'bulk.db'}", table, spool))
        result.update(
            _measure_batched("sqlite", f"sqlite:///{tmp_path / 'batched.db'}", table, spool)
        )
        result.update(_postgres(table, spool))
        if any(spool.glob("*.parquet")):
            raise RuntimeError("benchmark writes spooled: the numbers would be meaningless")
    return result


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
