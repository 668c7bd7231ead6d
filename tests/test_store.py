"""The telemetry store on a real SQLite file and a real PostgreSQL schema.

Failures are real: a read-only SQLite file, a database path that cannot exist, a lock held by
another connection, SQLite's own page limit (disk full), PostgreSQL refusing connections. After
each, a drain into a working store must leave every decision stored exactly once.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from telemetry_rows import DEFAULT_START, make_decision_table
from typer.testing import CliRunner

from flows.commands.telemetry import app as telemetry_cli
from router.decision import DECISION_ARROW_SCHEMA, DECISION_COLUMNS
from telemetry.errors import (
    SpoolError,
    StoreUnavailableError,
    StoreVersionError,
    TelemetrySchemaError,
    UnknownRunError,
    make_store_fault,
)
from telemetry.schema import STORE_SCHEMA_VERSION, harness_meta
from telemetry.store import TelemetryStore

ORDER = [("ts", "ascending"), ("decision_id", "ascending")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _refusing_postgres_url(password: str | None = None) -> str:
    """A loopback port nothing listens on: connections are refused at once."""
    auth = f"postgres:{password}" if password else "postgres"
    return f"postgresql+psycopg://{auth}@127.0.0.1:{_free_port()}/test"


def _stored_ids(store: TelemetryStore) -> list[str]:
    return store.read_arrow(columns=["decision_id"]).column("decision_id").to_pylist()


def _assert_exactly_once(store: TelemetryStore, *tables: pa.Table) -> None:
    expected = set()
    for table in tables:
        expected |= set(table.column("decision_id").to_pylist())
    ids = _stored_ids(store)
    assert len(ids) == len(set(ids)), "a decision is stored twice"
    assert set(ids) == expected, "a decision is missing"
    assert store.count() == len(expected)


@pytest.fixture
def store(store_url, tmp_path):
    with TelemetryStore(store_url, spool_dir=tmp_path / "spool", retry_delay_s=0) as s:
        yield s


# ---------------------------------------------------------------- writes and reads


def test_written_batch_reads_back_identical_and_typed_like_the_record_schema(store):
    table = make_decision_table(300, seed=3)

    result = store.write(table)

    assert (result.rows, result.written, result.duplicates, result.spooled) == (300, 300, 0, 0)
    assert result.ok and result.error_kind is None
    back = store.read_arrow()
    assert back.schema.equals(DECISION_ARROW_SCHEMA)
    assert back.equals(table.sort_by(ORDER))
    frame = store.read(columns=["decision_id", "ts", "borderline"])
    assert list(frame.columns) == ["decision_id", "ts", "borderline"]
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
    assert frame["ts"].iloc[0] == DEFAULT_START


def test_writing_the_same_decisions_again_stores_them_once(store):
    table = make_decision_table(200)
    overlapping = make_decision_table(100, first_query=150)  # 50 old ids, 50 new ones

    first = store.write(table)
    again = store.write(table)
    overlap = store.write(overlapping)
    within = store.write(pa.concat_tables([overlapping, overlapping]))

    assert (first.written, first.duplicates) == (200, 0)
    assert (again.written, again.duplicates) == (0, 200)
    assert (overlap.written, overlap.duplicates) == (50, 50)
    assert (within.written, within.duplicates) == (0, 200)
    _assert_exactly_once(store, table, overlapping)


def test_duplicates_inside_one_new_batch_are_stored_once(store):
    table = make_decision_table(40)

    result = store.write(pa.concat_tables([table, table]))

    assert (result.written, result.duplicates) == (40, 40)
    assert store.count() == 40


def test_awkward_strings_empty_strings_nulls_and_extreme_floats_round_trip(store):
    table = make_decision_table(6)
    tenants = ['quote"d', "comma,here", "new\nline", "", "ünïcödé ✓", "\\N"]
    errors = [None, "", "E,1", 'say "x"', "NaN", "NULL"]
    scores = [0.0, 5e-324, 1.7976931348623157e308, 1 / 3, float("-inf"), 0.1 + 0.2]
    table = table.set_column(5, "tenant", pa.array(tenants))
    table = table.set_column(
        DECISION_COLUMNS.index("error_code"), "error_code", pa.array(errors, pa.string())
    )
    table = table.set_column(
        DECISION_COLUMNS.index("complexity_score"), "complexity_score", pa.array(scores)
    )

    store.write(table)

    back = store.read_arrow().sort_by([("query_id", "ascending")])
    assert back.column("tenant").to_pylist() == tenants
    assert back.column("error_code").to_pylist() == errors
    assert back.column("complexity_score").to_pylist() == scores


def test_values_constant_across_a_batch_round_trip_exactly(store):
    """SQLite writes a batch's constant columns as SQL literals: quoting must be exact."""
    run_id = "o'brien'); DROP TABLE decision_telemetry; --"
    table = make_decision_table(30, run_id=run_id)
    table = table.set_column(5, "tenant", pa.array(["back\\slash 'q' \"dq\" \\x00"] * 30))

    store.write(table)

    back = store.read_arrow(run_id=run_id)
    assert back.equals(table.cast(DECISION_ARROW_SCHEMA).sort_by(ORDER))
    assert store.count(run_id) == 30


def test_reads_filter_by_run_and_half_open_time_window(store):
    a = make_decision_table(48, run_id="run-a", interval=timedelta(hours=1))
    b = make_decision_table(10, run_id="run-b", start=DEFAULT_START + timedelta(days=5))
    store.write(a)
    store.write(b)
    start = DEFAULT_START + timedelta(hours=10)
    end = DEFAULT_START + timedelta(hours=20)

    window = store.read_arrow(run_id="run-a", start=start, end=end)

    assert store.count() == 58 and store.count("run-a") == 48 and store.count("nope") == 0
    assert store.read_arrow(run_id="run-b").equals(b.sort_by(ORDER))
    assert window.num_rows == 10
    assert pc.min(window.column("ts")).as_py() == start
    assert pc.max(window.column("ts")).as_py() == end - timedelta(hours=1)
    assert store.read_arrow(run_id="nope").num_rows == 0
    assert store.read_arrow(run_id="nope").schema.equals(DECISION_ARROW_SCHEMA)


def test_reads_refuse_naive_times_and_unknown_columns(store):
    with pytest.raises(ValueError, match="naive"):
        store.read(start=datetime(2026, 1, 5))
    with pytest.raises(TelemetrySchemaError, match="unknown column.*query_text"):
        store.read(columns=["decision_id", "query_text"])


def test_malformed_batches_are_refused_with_the_column_named(sqlite_url, tmp_path):
    store = TelemetryStore(sqlite_url, spool_dir=tmp_path / "spool")
    table = make_decision_table(5)
    naive_ts = table.set_column(4, "ts", table.column("ts").cast(pa.timestamp("us")))
    nulls = table.set_column(
        DECISION_COLUMNS.index("model"), "model", pa.array([None] * 5, pa.string())
    )
    future = table.set_column(
        DECISION_COLUMNS.index("decision_schema_version"),
        "decision_schema_version",
        pa.array(["9.0.0"] * 5),
    )

    with pytest.raises(TelemetrySchemaError, match=r"missing \['tenant'\]"):
        store.write(table.drop_columns(["tenant"]))
    with pytest.raises(TelemetrySchemaError, match=r"unexpected \['query_text'\]"):
        store.write(table.append_column("query_text", pa.array(["secret"] * 5)))
    with pytest.raises(TelemetrySchemaError, match="'ts'.*time zone"):
        store.write(naive_ts)
    with pytest.raises(TelemetrySchemaError, match="'model' has 5 null"):
        store.write(nulls)
    with pytest.raises(TelemetrySchemaError, match="9.0.0"):
        store.write(future)
    with pytest.raises(TelemetrySchemaError, match="'tenant' row 3 contains a NUL"):
        store.write(table.set_column(5, "tenant", pa.array(["a", "b", "c", "d\x00", "e"])))
    assert store.count() == 0 and store.spool.pending() == []


def test_empty_batch_is_a_no_op(store):
    result = store.write(DECISION_ARROW_SCHEMA.empty_table())
    assert (result.rows, result.written, result.attempts) == (0, 0, 0)


def test_concurrent_writers_from_threads_lose_nothing(store):
    tables = [make_decision_table(150, run_id=f"t{i}") for i in range(4)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(store.write, tables))

    assert sum(r.written for r in results) + sum(r.spooled for r in results) == 600
    store.drain()
    _assert_exactly_once(store, *tables)


# ---------------------------------------------------------------- retention and export


def test_prune_deletes_only_decisions_older_than_the_retention_window(store):
    now = datetime(2026, 6, 1, tzinfo=UTC)
    table = make_decision_table(
        120, start=now - timedelta(days=119, hours=12), interval=timedelta(days=1)
    )
    store.write(table)

    deleted = store.prune(retention_days=90, now=now)

    cutoff = now - timedelta(days=90)
    expected_kept = pc.sum(pc.greater_equal(table.column("ts"), pa.scalar(cutoff))).as_py()
    assert deleted == 120 - expected_kept == 30
    assert store.count() == expected_kept
    assert pc.min(store.read_arrow(columns=["ts"]).column("ts")).as_py() >= cutoff
    assert store.prune(retention_days=90, now=now) == 0
    with pytest.raises(ValueError, match="naive"):
        store.prune(now=datetime(2026, 6, 1))


def test_export_writes_one_run_to_parquet_and_refuses_an_unknown_run(store, tmp_path):
    run = make_decision_table(75, run_id="pilot-1")
    store.write(run)
    store.write(make_decision_table(5, run_id="other"))
    out = tmp_path / "exports" / "pilot-1.parquet"

    rows = store.export_parquet("pilot-1", out)

    assert rows == 75
    assert pq.read_table(out).equals(run.sort_by(ORDER))
    with pytest.raises(UnknownRunError, match="no run 'ghost'.*known runs"):
        store.export_parquet("ghost", tmp_path / "ghost.parquet")
    assert not (tmp_path / "ghost.parquet").exists()


def test_a_started_run_without_decisions_exports_an_empty_file(store, tmp_path):
    store.start_run("empty", "drill", {}, None)
    out = tmp_path / "empty.parquet"

    assert store.export_parquet("empty", out) == 0
    assert pq.read_table(out).num_rows == 0


# ---------------------------------------------------------------- runs


def test_runs_are_started_finished_listed_and_restartable(store):
    t0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    started = store.start_run("pilot-w1", "pilot", {"days": 7, "seed": 7}, "abc123", started_at=t0)
    store.start_run("drill-1", "drill", {"scenario": "upstream-latency-spike"}, "abc123")
    store.write(make_decision_table(12, run_id="pilot-w1"))

    finished = store.finish_run(
        "pilot-w1", "completed", {"decisions": 12}, finished_at=t0 + timedelta(hours=2)
    )

    assert started.status == "running" and started.started_at == t0
    assert finished.status == "completed" and finished.counts == {"decisions": 12}
    assert finished.parameters == {"days": 7, "seed": 7}
    assert finished.finished_at == t0 + timedelta(hours=2)
    assert store.get_run("missing") is None
    frame = store.list_runs()
    assert frame["run_id"].tolist() == ["pilot-w1", "drill-1"]
    assert frame.set_index("run_id")["decisions"].to_dict() == {"pilot-w1": 12, "drill-1": 0}
    assert str(frame["started_at"].dtype).endswith("UTC]")

    restarted = store.start_run("pilot-w1", "pilot", {"days": 7}, "def456")
    assert restarted.status == "running" and restarted.finished_at is None
    assert restarted.config_hash == "def456"


def test_finishing_an_unknown_run_or_with_an_unknown_status_is_an_error(store):
    with pytest.raises(UnknownRunError, match="not started"):
        store.finish_run("ghost", "completed", {})
    store.start_run("r", "route", {}, None)
    with pytest.raises(ValueError, match="valid: running, completed"):
        store.finish_run("r", "done", {})


# ---------------------------------------------------------------- versions


def test_store_refuses_a_database_of_another_store_version(store_url, tmp_path):
    url = store_url
    if url.startswith("postgresql"):  # trust auth ignores it; the message must hide it
        url = url.replace("postgres@", "postgres:hunter2@", 1)
    TelemetryStore(url, spool_dir=tmp_path / "spool").close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.update(harness_meta).values(value="999"))
    engine.dispose()

    with pytest.raises(StoreVersionError) as info:
        TelemetryStore(url, spool_dir=tmp_path / "spool")

    message = str(info.value)
    assert "version 999" in message and f"version {STORE_SCHEMA_VERSION}" in message
    assert url.split("?")[0].replace("hunter2", "***") in message
    assert "hunter2" not in message


# ---------------------------------------------------------------- real failures, then drain


def test_read_only_sqlite_spools_and_a_drain_stores_everything_once(tmp_path):
    db = tmp_path / "telemetry.db"
    spool = tmp_path / "spool"
    rw = TelemetryStore(f"sqlite:///{db}", spool_dir=spool, retry_delay_s=0)
    before = make_decision_table(100)
    rw.write(before)
    ro = TelemetryStore(f"sqlite:///file:{db}?mode=ro&uri=true", spool_dir=spool)
    during = make_decision_table(100, first_query=80)  # 20 already stored

    result = ro.write(during)

    assert (result.written, result.spooled, result.error_kind) == (0, 100, "read_only")
    assert result.error_type == "OperationalError"
    assert result.spool_file in ro.spool.pending()
    assert ro.count() == 100  # reads still work on the read-only file
    drained = rw.drain()
    assert (drained.files_drained, drained.rows_written, drained.duplicates) == (1, 80, 20)
    assert drained.complete and drained.rows_remaining == 0
    assert rw.spool.pending() == []
    _assert_exactly_once(rw, before, during)


def test_sqlite_path_that_cannot_exist_spools_without_failing_the_caller(tmp_path):
    spool = tmp_path / "spool"
    broken = TelemetryStore(
        f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 't.db'}", spool_dir=spool
    )
    table = make_decision_table(30)

    result = broken.write(table)

    assert (result.spooled, result.error_kind) == (30, "unavailable")
    assert result.attempts == 1  # not transient: no retry
    with pytest.raises(StoreUnavailableError, match="unavailable") as info:
        broken.count()
    assert info.value.kind == "unavailable"
    good = TelemetryStore(f"sqlite:///{tmp_path / 'good.db'}", spool_dir=spool)
    assert good.drain().rows_written == 30
    _assert_exactly_once(good, table)


def test_locked_sqlite_is_retried_then_spooled_then_drained(tmp_path):
    db = tmp_path / "telemetry.db"
    store = TelemetryStore(
        f"sqlite:///{db}", spool_dir=tmp_path / "spool", lock_timeout_s=0.05, retry_delay_s=0
    )
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")
    table = make_decision_table(25)
    try:
        result = store.write(table)
    finally:
        holder.rollback()
        holder.close()

    assert (result.spooled, result.error_kind, result.attempts) == (25, "locked", 2)
    assert store.drain().rows_written == 25
    _assert_exactly_once(store, table)


def test_sqlite_disk_full_spools_and_drains_once_space_is_back(tmp_path):
    store = TelemetryStore(f"sqlite:///{tmp_path / 't.db'}", spool_dir=tmp_path / "spool")
    small = make_decision_table(10)
    store.write(small)

    def tiny_disk(dbapi_conn, _record):
        dbapi_conn.execute("PRAGMA max_page_count = 8")

    sa.event.listen(store.engine, "connect", tiny_disk)
    store.engine.dispose()
    big = make_decision_table(2_000, first_query=10)
    result = store.write(big)
    sa.event.remove(store.engine, "connect", tiny_disk)
    store.engine.dispose()

    assert (result.spooled, result.error_kind) == (2_000, "disk_full")
    assert store.count() == 10  # the failed transaction left nothing behind
    assert store.drain().rows_written == 2_000
    _assert_exactly_once(store, small, big)


def test_postgres_refusing_connections_spools_then_drains_into_postgres(postgres_url, tmp_path):
    spool = tmp_path / "spool"
    down = TelemetryStore(_refusing_postgres_url(), spool_dir=spool, retries=2, retry_delay_s=0)
    first = make_decision_table(300)
    second = make_decision_table(300, first_query=250)  # 50 shared with the first

    results = [down.write(first), down.write(second)]

    assert [r.error_kind for r in results] == ["connection_refused"] * 2
    assert [r.attempts for r in results] == [3, 3]  # transient: retried
    assert down.spool.rows_pending() == 600
    assert down.drain().files_remaining == 2  # still down: nothing lost, nothing removed
    with pytest.raises(StoreUnavailableError, match="connection_refused"):
        down.read()
    up = TelemetryStore(postgres_url, spool_dir=spool)
    drained = up.drain()
    assert (drained.files_drained, drained.rows_written, drained.duplicates) == (2, 550, 50)
    _assert_exactly_once(up, first, second)
    assert up.drain().files_drained == 0


def test_a_partially_failing_drain_keeps_the_unwritten_batches(store):
    batches = [make_decision_table(20, first_query=20 * i) for i in range(3)]
    store.write_failure_hook = lambda: make_store_fault("connection_refused")
    for batch in batches:
        store.write(batch)
    calls = iter(range(100))
    store.write_failure_hook = lambda: make_store_fault("read_only") if next(calls) >= 1 else None

    partial = store.drain()

    assert (partial.files_drained, partial.rows_written) == (1, 20)
    assert (partial.files_remaining, partial.rows_remaining) == (2, 40)
    assert partial.error_kind == "read_only" and not partial.complete
    store.write_failure_hook = None
    assert store.drain().rows_written == 40
    _assert_exactly_once(store, *batches)


def test_write_failure_hook_is_consulted_on_every_attempt_and_takes_the_spool_path(store):
    calls = []

    def flaky():
        calls.append(1)
        return make_store_fault("locked") if len(calls) == 1 else None

    store.retries = 2
    store.write_failure_hook = flaky
    healed = store.write(make_decision_table(10))
    store.write_failure_hook = lambda: make_store_fault("disk_full")
    spooled = store.write(make_decision_table(10, first_query=10))

    assert (healed.written, healed.attempts, len(calls)) == (10, 2, 2)
    assert (spooled.spooled, spooled.error_kind, spooled.attempts) == (10, "disk_full", 1)
    assert store.count() == 10 and store.spool.rows_pending() == 10


def test_a_batch_the_database_rejects_as_bad_data_is_set_aside_not_blocking(store):
    import psycopg

    batches = [make_decision_table(10, first_query=10 * i) for i in range(2)]
    store.write_failure_hook = lambda: make_store_fault("connection_refused")
    for batch in batches:
        store.write(batch)
    rejections = iter([psycopg.errors.DataError("invalid input")])
    store.write_failure_hook = lambda: (
        sa.exc.DataError("INSERT", None, exc) if (exc := next(rejections, None)) else None
    )

    result = store.drain()

    assert (result.files_drained, result.rows_written, result.files_remaining) == (1, 10, 0)
    assert len(result.corrupt_files) == 1 and result.corrupt_files[0].exists()
    assert store.spool.read(result.corrupt_files[0]).equals(batches[0])
    _assert_exactly_once(store, batches[1])


def test_an_unreadable_spool_file_is_set_aside_and_the_rest_drained(store):
    table = make_decision_table(15)
    store.write_failure_hook = lambda: make_store_fault("locked")
    store.write(table)
    store.write_failure_hook = None
    bad = store.spool.directory / "00000000000000000000-corrupt.parquet"
    bad.write_bytes(b"PAR1 truncated")

    result = store.drain()

    assert result.rows_written == 15 and result.files_remaining == 0
    assert [p.name for p in result.corrupt_files] == [bad.name]
    assert result.corrupt_files[0].exists()


def test_when_database_and_spool_both_fail_the_caller_is_told(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = TelemetryStore(_refusing_postgres_url(), spool_dir=blocker / "spool", retries=0)

    with pytest.raises(SpoolError, match="still with the caller"):
        store.write(make_decision_table(3))


def test_failure_logs_give_kind_and_url_but_no_password_and_no_data(tmp_path, caplog):
    store = TelemetryStore(
        _refusing_postgres_url(password="hunter2"), spool_dir=tmp_path / "s", retries=0
    )
    table = make_decision_table(4)

    with caplog.at_level(logging.WARNING, logger="telemetry.store"):
        store.write(table)

    text = caplog.text
    assert "kind=connection_refused" in text and "postgres:***@127.0.0.1" in text
    assert "hunter2" not in text and "hunter2" not in repr(store)
    for value in table.column("query_hash").to_pylist() + table.column("decision_id").to_pylist():
        assert value not in text


# ---------------------------------------------------------------- defaults


def test_default_store_is_a_sqlite_file_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AMAIMA_TELEMETRY_URL", raising=False)
    monkeypatch.delenv("AMAIMA_TELEMETRY_SPOOL_DIR", raising=False)

    store = TelemetryStore()
    store.write(make_decision_table(3))

    assert store.url == f"sqlite:///{tmp_path / '.harness' / 'telemetry.db'}"
    assert (tmp_path / ".harness" / "telemetry.db").is_file()
    assert store.spool.directory.parent == tmp_path / ".harness" / "spool"


def test_environment_url_overrides_the_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AMAIMA_TELEMETRY_URL", f"sqlite:///{tmp_path / 'env.db'}")

    TelemetryStore().write(make_decision_table(2))

    assert (tmp_path / "env.db").is_file()
    assert not (tmp_path / ".harness" / "telemetry.db").exists()


def test_unsupported_urls_are_refused_with_what_would_be_valid():
    from telemetry.errors import TelemetryError

    with pytest.raises(TelemetryError, match="supported: sqlite"):
        TelemetryStore("mysql://u:pw@localhost/db")
    with pytest.raises(TelemetryError, match="not a database URL"):
        TelemetryStore("just words")


# ---------------------------------------------------------------- CLI


def test_cli_runs_export_prune_drain_and_unknown_run(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    spool = tmp_path / "spool"
    store = TelemetryStore(url, spool_dir=spool)
    store.start_run("pilot-1", "pilot", {"days": 1}, "abc")
    store.write(make_decision_table(20, run_id="pilot-1", start=datetime(2020, 1, 1, tzinfo=UTC)))
    store.write_failure_hook = lambda: make_store_fault("locked")
    store.write(make_decision_table(7, run_id="pilot-1", first_query=20))
    runner = CliRunner()
    out = tmp_path / "pilot-1.parquet"

    runs = runner.invoke(telemetry_cli, ["runs", "--db", url])
    export = runner.invoke(
        telemetry_cli, ["export", "--run", "pilot-1", "--out", str(out), "--db", url]
    )
    unknown = runner.invoke(
        telemetry_cli,
        ["export", "--run", "ghost", "--out", str(tmp_path / "g.parquet"), "--db", url],
    )
    drain = runner.invoke(telemetry_cli, ["drain", "--db", url, "--spool-dir", str(spool)])
    prune = runner.invoke(telemetry_cli, ["prune", "--days", "90", "--db", url])

    assert runs.exit_code == 0 and "pilot-1" in runs.output
    assert export.exit_code == 0 and pq.read_table(out).num_rows == 20
    assert unknown.exit_code == 1 and "no run 'ghost'" in unknown.output
    assert drain.exit_code == 0 and "7 rows written" in drain.output
    assert prune.exit_code == 0 and "pruned 27 decision rows" in prune.output


def test_cli_drain_exits_1_while_the_store_is_still_down(tmp_path):
    spool = tmp_path / "spool"
    url = _refusing_postgres_url()
    TelemetryStore(url, spool_dir=spool, retries=0).write(make_decision_table(5))

    result = CliRunner().invoke(telemetry_cli, ["drain", "--db", url, "--spool-dir", str(spool)])

    assert result.exit_code == 1
    assert "5 rows still spooled" in result.output and "connection_refused" in result.output
