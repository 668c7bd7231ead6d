"""Issue 9 rows 7, 8 and 11 for the telemetry store: a stalled PostgreSQL (accepts, never
answers) costs one connect timeout and the batches spool with a warning; statements are bounded;
spools are keyed by the database, not the URL spelling, and `telemetry status` lists them all."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import pytest
import sqlalchemy as sa
from telemetry_rows import make_decision_table
from typer.testing import CliRunner

from flows.commands.telemetry import app as telemetry_cli
from telemetry.store import TelemetryStore, database_identity

runner = CliRunner()


@pytest.fixture
def stalled_server():
    """A real TCP server on 127.0.0.1 that accepts connections and never sends a byte."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(2)
    for c in held:
        c.close()
    srv.close()


def test_a_stalled_postgres_spools_every_batch_quickly_with_a_warning(
    stalled_server, tmp_path, caplog
):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{stalled_server}/test"
    caplog.set_level(logging.WARNING, logger="telemetry.store")
    t0 = time.monotonic()
    store = TelemetryStore(url, spool_dir=tmp_path / "spool", connect_timeout_s=1)
    results = [store.write(make_decision_table(50, seed=i)) for i in range(6)]
    elapsed = time.monotonic() - t0
    store.close()
    assert all(r.spooled == r.rows == 50 for r in results)
    assert {r.error_kind for r in results} == {"timeout"}
    assert store.spool.rows_pending() == 300
    # One connect timeout at start, then the cool-down: not (retries + 1) timeouts per batch.
    assert elapsed < 4, f"{elapsed:.1f} s"
    assert any("not reachable" in r.getMessage() for r in caplog.records)


def test_a_store_that_stalls_later_costs_one_timeout(stalled_server, tmp_path, caplog):
    store = TelemetryStore(
        f"sqlite:///{tmp_path / 't.db'}", spool_dir=tmp_path / "spool", connect_timeout_s=1
    )
    assert store.write(make_decision_table(5)).ok
    # Point the same object at the stalled server (what a database failover that hangs does).
    store.engine = sa.create_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{stalled_server}/test",
        connect_args={"connect_timeout": 1},
    )
    store.dialect = "postgresql"
    caplog.set_level(logging.WARNING, logger="telemetry.store")
    t0 = time.monotonic()
    results = [store.write(make_decision_table(5, seed=i + 1)) for i in range(5)]
    assert time.monotonic() - t0 < 3
    assert [r.attempts for r in results] == [1, 0, 0, 0, 0]
    assert sum(r.spooled for r in results) == 25
    assert sum("spooled" in r.getMessage() for r in caplog.records) == 1


def test_postgres_statements_are_bounded(postgres_url, tmp_path):
    store = TelemetryStore(postgres_url, spool_dir=tmp_path / "s", statement_timeout_s=7)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("show statement_timeout")).scalar() == "7s"
        assert conn.execute(sa.text("show lock_timeout")).scalar() == "2s"
        # ... and the search_path from the URL's options still holds.
        assert "harness_test_" in conn.execute(sa.text("show search_path")).scalar()
    store.close()


def test_database_identity_ignores_spelling():
    a = database_identity("postgresql://postgres@127.0.0.1/test")
    assert a == database_identity(
        "postgresql+psycopg://postgres:secret@127.0.0.1:5432/test?connect_timeout=5&sslmode=prefer"
    )
    assert a != database_identity("postgresql://postgres@127.0.0.1/other")
    assert a != database_identity("postgresql://postgres@127.0.0.1/test?options=-csearch_path%3Dx")
    assert database_identity("sqlite:///./t.db") == database_identity(
        f"sqlite:///{os.getcwd()}/t.db"
    )


def test_another_spelling_sees_and_drains_the_same_spool(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AMAIMA_TELEMETRY_SPOOL_DIR", raising=False)
    db = tmp_path / "t.db"
    db.write_text("not a database")  # writes fail and spool
    first = TelemetryStore(f"sqlite:///{db}")
    assert first.write(make_decision_table(20)).spooled == 20
    first.close()
    db.unlink()
    other = f"sqlite:///{os.path.relpath(db)}"
    res = runner.invoke(telemetry_cli, ["status", "--db", other])
    assert res.exit_code == 0, res.output
    assert "20 rows" in res.output and "(this store)" in res.output
    res = runner.invoke(telemetry_cli, ["drain", "--db", other])
    assert res.exit_code == 0 and "20 rows written" in res.output


def test_status_lists_a_legacy_spool_with_its_target(tmp_path, monkeypatch):
    """A spool folder named by an older scheme (or another database) is listed with its target,
    and drained only when its target is this database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AMAIMA_TELEMETRY_SPOOL_DIR", raising=False)
    url = f"sqlite:///{tmp_path / 't.db'}"
    store = TelemetryStore(url)
    legacy = store.spool.directory.parent / "sqlite-0123456789ab"
    from telemetry.spool import Spool

    Spool(legacy).put(make_decision_table(7), metadata={"harness.store_url": url})
    Spool(store.spool.directory.parent / "postgresql-feedfacecafe").put(
        make_decision_table(3, run_id="r2"),
        metadata={"harness.store_url": "postgresql+psycopg://postgres@db.example/other"},
    )
    res = runner.invoke(telemetry_cli, ["status", "--db", url])
    assert "7 rows" in res.output and "(same database)" in res.output
    assert "3 rows" in res.output and "db.example/other (other)" in res.output
    assert store.drain().rows_written == 7
    assert store.count() == 7


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_spool_drain_is_one_error(tmp_path):
    spool_dir = tmp_path / "spool"
    db = tmp_path / "t.db"
    db.write_text("not a database")
    store = TelemetryStore(f"sqlite:///{db}", spool_dir=spool_dir)
    store.write(make_decision_table(4))
    db.unlink()
    spool_dir.chmod(0o500)
    try:
        res = runner.invoke(
            telemetry_cli, ["drain", "--db", f"sqlite:///{db}", "--spool-dir", str(spool_dir)]
        )
    finally:
        spool_dir.chmod(0o700)
    assert res.exit_code == 1 and "could not remove" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_full_spool_is_one_clear_error(tmp_path):
    """A spool that cannot take the batch (here: its folder is a file) raises SpoolError."""
    from telemetry.errors import SpoolError

    blocker = tmp_path / "spool"
    blocker.write_text("x")
    db = tmp_path / "t.db"
    db.write_text("not a database")
    store = TelemetryStore(f"sqlite:///{db}", spool_dir=blocker)
    with pytest.raises(SpoolError, match="could not spool 4 decision rows"):
        store.write(make_decision_table(4))


@pytest.mark.parametrize("days", ["100000000", "1000000000000"])
def test_prune_with_huge_days_keeps_everything(tmp_path, days):
    url = f"sqlite:///{tmp_path / 't.db'}"
    TelemetryStore(url, spool_dir=tmp_path / "s").write(make_decision_table(3))
    res = runner.invoke(telemetry_cli, ["prune", "--days", days, "--db", url])
    assert res.exit_code == 0, res.output
    assert "pruned 0 decision rows" in res.output


@pytest.mark.parametrize("url", ["mysql://u:pw@localhost/db", "mysql+pymysql://u@h/db"])
def test_mysql_url_is_one_error(url):
    res = runner.invoke(telemetry_cli, ["status", "--db", url])
    assert res.exit_code == 1 and "supported: sqlite" in res.output and "pw" not in res.output


def test_spool_remove_failure_is_a_spool_error(tmp_path):
    """A batch that cannot be removed (here a real IsADirectoryError) is a SpoolError, not an
    OSError traceback."""
    from telemetry.errors import SpoolError
    from telemetry.spool import Spool

    spool = Spool(tmp_path / "spool")
    stuck = spool.directory / "00000000000000000001-x.parquet"
    stuck.mkdir(parents=True)
    with pytest.raises(SpoolError, match="could not remove"):
        spool.remove(stuck)
