"""Pilot weeks on a real 2-worker Dask LocalCluster against PostgreSQL: the workers store exactly
the decisions a single process makes (same decision ids, levels, scores, reason codes), a worker
killed mid-week loses nothing and duplicates nothing, and bad cluster settings are clear errors
before any work. (The whole pilot on a cluster — GX, determinism replay, verdict — with every
partition a Prefect task run on a real server: tests/test_cluster_prefect.py.)"""

from __future__ import annotations

import os
import signal
from datetime import date

import pyarrow as pa
import pytest

from flows.cluster import (
    ClusterError,
    ClusterSpec,
    PartitionSpec,
    connect,
    parse_cluster,
    probe,
    route_week_on_cluster,
)

pytestmark = pytest.mark.slow
RUN = "pilot-cluster-test"
COLS = [
    "decision_id",
    "query_id",
    "query_hash",
    "complexity_level",
    "complexity_score",
    "borderline",
    "upscaled",
    "domain",
    "model",
    "confidence_overall",
    "reason_codes",
    "cost_estimate_usd",
]


@pytest.fixture(scope="module")
def week() -> list[tuple[date, pa.Table]]:
    from data.generate import generate_corpus

    t = generate_corpus(3000, seed=21, days=2, start="2026-11-16")
    days = pa.compute.floor_temporal(t.column("ts"), unit="day")
    out = []
    for d in sorted(set(days.to_pylist())):
        mask = pa.compute.equal(days, pa.scalar(d, days.type))
        tt = t.filter(mask).select(["query_id", "ts", "text", "tenant"])
        out.append((d.date(), tt))
    return out


@pytest.fixture(scope="module")
def cluster():
    client, local = connect(ClusterSpec("local", 2))
    try:
        yield client
    finally:
        client.close()
        local.close()


def _in_process(week, run_id: str = RUN, semantic: bool = False) -> pa.Table:
    """The single-process decisions of the same week (the reference the cluster must equal)."""
    from router.engine import Router
    from router.toggle import resolve_toggle

    r = Router.from_config(semantic=semantic, toggle=resolve_toggle("decision-only"))
    return pa.concat_tables(
        r.route_batch(
            t.column("text").to_pylist(),
            query_ids=t.column("query_id").to_pylist(),
            ts=t.column("ts"),
            run_id=run_id,
            tenants=t.column("tenant").to_pylist(),
        )
        for _, t in week
    )


def test_a_cluster_week_stores_exactly_the_single_process_decisions(cluster, week, postgres_url):
    from telemetry.store import TelemetryStore

    spec = PartitionSpec(None, None, False, postgres_url, RUN)
    results, partitions = route_week_on_cluster(cluster, spec, iter(week), 400, lambda *_: None)
    assert partitions >= 8 and sum(r.accepted for r in results) == 3000
    assert [r.day for r in results] == [d for d, _ in week]
    store = TelemetryStore(postgres_url)
    stored = store.read(run_id=RUN, columns=COLS).sort_values("query_id").reset_index(drop=True)
    store.close()
    local = _in_process(week).to_pandas()[COLS].sort_values("query_id").reset_index(drop=True)
    assert len(stored) == 3000
    import pandas as pd

    pd.testing.assert_frame_equal(stored, local, check_dtype=False)


def test_a_worker_killed_mid_week_is_retried_and_stored_exactly_once(cluster, week, postgres_url):
    import time

    from telemetry.store import TelemetryStore

    spec = PartitionSpec(None, None, False, postgres_url, RUN + "-kill")
    pids = cluster.run(os.getpid)  # {worker address: pid}
    victim = sorted(pids.values())[0]
    killed = []

    def progress(done, total):
        if done == 1 and not killed:
            os.kill(victim, signal.SIGKILL)  # the worker dies with partitions in flight
            killed.append(time.monotonic())

    results, partitions = route_week_on_cluster(cluster, spec, iter(week), 150, progress)
    assert killed, "no worker was killed"
    store = TelemetryStore(postgres_url)
    try:
        assert store.count(RUN + "-kill") == 3000  # nothing lost, nothing twice
    finally:
        store.close()
    assert sum(r.accepted for r in results) == 3000
    cluster.wait_for_workers(1)


def test_bad_cluster_settings_are_clear_errors_before_any_work():
    with pytest.raises(ClusterError, match="not 'local'"):
        parse_cluster("spark://x", "postgresql+psycopg://h/db")
    with pytest.raises(ClusterError, match="SQLite is a local file"):
        parse_cluster("tcp://127.0.0.1:8786", "sqlite:///t.db")
    assert parse_cluster("local:3", "sqlite:///t.db").workers == 3
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(ClusterError, match="unreachable"):
        probe(parse_cluster(f"tcp://127.0.0.1:{port}", "postgresql+psycopg://h/db"))


def _two_day_pilot_on_two_workers(
    tmp_path, db: str, *, rows: int, seed: int, shard_rows: int
) -> tuple[dict, dict]:
    """A rule-only pilot of a generated two-day corpus on a local two-worker Dask cluster:
    the flow's outcome and its evidence document."""
    import json
    from pathlib import Path

    from data.generate import generate_corpus, write_corpus
    from flows.pilot import pilot_week

    corpus = write_corpus(
        generate_corpus(rows, seed=seed, days=2, start="2026-11-16"), tmp_path / "c.parquet"
    )
    out = pilot_week(
        corpus=str(corpus),
        days=2,
        out=str(tmp_path / "out"),
        db=db,
        semantic=False,
        cluster="local:2",
        shard_rows=shard_rows,
    )
    return out, json.loads(Path(out["evidence"]).read_text())


def test_a_store_outage_during_a_cluster_run_spools_per_worker_and_loses_nothing(
    prefect_harness, tmp_path, monkeypatch
):
    """Every worker's writes fail (nothing listens on the store's port): each worker spools its
    partitions, the driver's drain finds the store still down, and every accepted decision is
    waiting in the spool — counts exact, verdict no-go with the reason."""
    from telemetry.store import TelemetryStore

    monkeypatch.chdir(tmp_path)  # workers inherit the cwd: the spool is the driver's
    dead = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    out, ev = _two_day_pilot_on_two_workers(tmp_path, dead, rows=1200, seed=6, shard_rows=200)
    accepted = ev["corpus_summary"]["in_window"]
    assert ev["execution"]["engine"] == "dask" and ev["execution"]["partitions"] >= 6
    assert ev["telemetry"]["spooled"] == accepted and ev["telemetry"]["written"] == 0
    assert TelemetryStore(dead).spool.rows_pending() == accepted
    assert out["verdict"] == "no-go"


def test_hybrid_workers_share_the_canonical_embeddings_in_the_database(
    cluster, week, postgres_url, monkeypatch
):
    """Hybrid routing on 2 workers with the embedding store in PostgreSQL: every distinct text
    has one canonical vector there, and the single-process router reading that store makes
    exactly the decisions the workers stored."""
    import pandas as pd
    import sqlalchemy as sa

    from router.engine import EMBEDDING_STORE_URL_ENV
    from router.semantic import EMBEDDINGS_TABLE
    from telemetry.store import TelemetryStore

    small = [(d, t.slice(0, 150)) for d, t in week]
    spec = PartitionSpec(None, None, True, postgres_url, RUN + "-hy", postgres_url)
    results, partitions = route_week_on_cluster(cluster, spec, iter(small), 50, lambda *_: None)
    assert partitions >= 6
    eng = sa.create_engine(postgres_url)
    with eng.connect() as c:
        vectors = c.execute(sa.text(f"select count(*) from {EMBEDDINGS_TABLE}")).scalar()
    eng.dispose()
    texts = [x for _, t in small for x in t.column("text").to_pylist()]
    assert 0 < vectors <= len(set(texts))  # one canonical vector per embedded text
    monkeypatch.setenv(EMBEDDING_STORE_URL_ENV, postgres_url)
    local = (
        _in_process(small, RUN + "-hy", semantic=True)
        .to_pandas()[COLS]
        .sort_values("query_id")
        .reset_index(drop=True)
    )
    store = TelemetryStore(postgres_url)
    stored = (
        store.read(run_id=RUN + "-hy", columns=COLS).sort_values("query_id").reset_index(drop=True)
    )
    store.close()
    pd.testing.assert_frame_equal(stored, local, check_dtype=False)
