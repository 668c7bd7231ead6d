"""Scale-out: the routing and writing of a week on a Dask LocalCluster with 1 and 2 workers.

Measures decisions/s of `route_week_on_cluster` inside a flow run, as a pilot runs it (the part
that scales out; GX, replay and the verdict stay on the driver) for a hybrid corpus with a cold embedding store per run and for a
rule-only corpus, plus the per-partition costs behind a throughput model for 10 and 100 workers.
Writes go to a fresh PostgreSQL schema per run (the shared store a real cluster uses).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid


def _week(n: int, seed: int):
    import pyarrow.compute as pc

    from data.generate import generate_corpus

    t = generate_corpus(n, seed=seed, days=7, start="2026-11-16").select(
        ["query_id", "ts", "text", "tenant"]
    )
    days = pc.floor_temporal(t.column("ts"), unit="day")
    out = []
    for d in sorted(set(days.to_pylist())):
        out.append((d.date(), t.filter(pc.equal(days, d))))
    return out


def _schema_url() -> tuple[str, str]:
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    base = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    eng = sa.create_engine(base)
    with eng.begin() as c:
        c.execute(sa.text(f"create schema {schema}"))
    eng.dispose()
    return f"{base}?options=-csearch_path%3D{schema}", schema


def _drop(schema: str) -> None:
    import sqlalchemy as sa

    eng = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    with eng.begin() as c:
        c.execute(sa.text(f"drop schema if exists {schema} cascade"))
    eng.dispose()


_WEEK: list = []
"""The week being measured: a module global, not a flow parameter (Prefect records parameters)."""


def _one(n_workers: int, week, semantic: bool, shard_rows: int) -> dict:
    """One measurement inside a flow run, as a pilot runs it: each partition is a Prefect task
    run through DaskTaskRunner, and the workers report to this process's Prefect API."""
    from prefect import flow

    _WEEK[:] = week
    return flow(name="bench-cluster", persist_result=False)(_measure)(
        n_workers, semantic, shard_rows
    )


def _measure(n_workers: int, semantic: bool, shard_rows: int) -> dict:
    week = _WEEK
    from flows.cluster import (
        ClusterSpec,
        PartitionSpec,
        connect,
        route_week_on_cluster,
        warm_workers,
    )

    url, schema = _schema_url()
    cache = tempfile.mkdtemp(prefix="bench-emb-")
    os.environ["AMAIMA_EMBEDDING_CACHE_DIR"] = cache  # cold store, inherited by the workers
    client, cluster = connect(ClusterSpec("local", n_workers))
    try:
        # Warm every worker (model load is a one-off per process, not throughput).
        warm_workers(client, PartitionSpec(None, None, semantic, url, "warm"))
        spec = PartitionSpec(None, None, semantic, url, f"bench-{uuid.uuid4().hex[:6]}")
        rows = sum(t.num_rows for _, t in week)
        t0 = time.perf_counter()
        results, parts = route_week_on_cluster(
            client, spec, iter(week), shard_rows, lambda *_: None
        )
        wall = time.perf_counter() - t0
        route_s = sum(r.route_s for r in results)
        write_s = sum(r.write_s for r in results)
        return {
            "workers": n_workers,
            "rows": rows,
            "partitions": parts,
            "wall_s": round(wall, 2),
            "decisions_per_s": round(rows / wall, 1),
            "route_s_per_1k": round(1000 * route_s / rows, 4),
            "write_s_per_1k": round(1000 * write_s / rows, 4),
        }
    finally:
        client.close()
        cluster.close()
        _drop(schema)


def _embedding_store_rows_per_s(rows: int = 20_000, batch: int = 250) -> float:
    """Insert rate of the shared canonical embedding store (PostgreSQL table, 384 float32 per
    text, first vector wins), in the batch size a hybrid partition writes."""
    import numpy as np

    from router.semantic import _database_store, _db_insert

    url, schema = _schema_url()
    try:
        db = _database_store(url)
        vecs = np.random.default_rng(0).standard_normal((rows, 384)).astype(np.float32)
        t0 = time.perf_counter()
        for a in range(0, rows, batch):
            _db_insert(db, {f"{i:064x}": vecs[i] for i in range(a, min(a + batch, rows))})
        rate = rows / (time.perf_counter() - t0)
        db[0].dispose()
        return rate
    finally:
        _drop(schema)


def run(hybrid_rows: int = 4_000, rule_rows: int = 1_000_000) -> dict:
    out: dict = {}
    # (mode, corpus rows, corpus seed, semantic, shard rows)
    for mode, rows, seed, semantic, shard_rows in (
        ("hybrid", hybrid_rows, 31, True, 250),  # ~21 partitions: 2 workers stay busy to the end
        ("rules", rule_rows, 32, False, 20_000),
    ):
        week = _week(rows, seed)
        one, two = (_one(n, week, semantic, shard_rows) for n in (1, 2))
        out[f"{mode}_1_worker"] = one
        out[f"{mode}_2_workers"] = two
        out[f"{mode}_speedup_2_workers"] = round(two["decisions_per_s"] / one["decisions_per_s"], 2)
    h1, r1 = out["hybrid_1_worker"], out["rules_1_worker"]
    # Throughput model: each worker routes at 1 / route_s_per_row; one PostgreSQL absorbs
    # decision writes (COPY) at 1 / write_s_per_row and, on a cold week, one embedding per new
    # text at the embedding store's insert rate, whatever the worker count. The scheduler's
    # per-task cost (~ms) is negligible at thousands of rows per partition.
    per_worker_hybrid = 1000 / h1["route_s_per_1k"]
    store_rate = 1000 / max(r1["write_s_per_1k"], 1e-9)
    emb_rate = _embedding_store_rows_per_s()
    limits = {"decision store writes": store_rate, "embedding store writes (cold)": emb_rate}
    first = min(limits, key=limits.get)
    ceiling = limits[first]
    out["model"] = {
        "per_worker_hybrid_decisions_per_s": round(per_worker_hybrid, 1),
        "store_write_rows_per_s": round(store_rate, 1),
        "embedding_store_rows_per_s": round(emb_rate, 1),
        "hybrid_10_workers": round(min(10 * per_worker_hybrid, ceiling), 1),
        "hybrid_100_workers": round(min(100 * per_worker_hybrid, ceiling), 1),
        "first_bottleneck": first,
        "first_bottleneck_hybrid_workers": int(ceiling // per_worker_hybrid),
    }
    return out


if __name__ == "__main__":
    import json
    import sys

    args = [int(a) for a in sys.argv[1:]]
    print(json.dumps(run(*args), indent=1))
