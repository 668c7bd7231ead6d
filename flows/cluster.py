"""Pilot weeks on a Dask cluster: day × shard partitions routed and written by the workers
straight to the shared store; everything after routing runs unchanged on the driver.

Inside the pilot's flow run each partition is a Prefect task run submitted through prefect-dask's
``DaskTaskRunner``, so the flow run in the Prefect UI shows every partition with its state. The workers report to the
driver's Prefect API: a LocalCluster's workers are started with the driver's API URL (also the
temporary server's, which otherwise each worker would start for itself and lose); workers on
other machines need ``PREFECT_API_URL`` of a real ``prefect server start`` (README). Dask
reschedules a partition whose worker died, and the idempotent store (decision ids are uuid5 of
run + query id) keeps exactly one copy.

Determinism across workers: every worker builds the same router from the same config and key;
on one machine the canonical embedding store (a SQLite file, first vector wins) is shared by all
workers, so a text embedded on worker A and again on worker B gets the same vector. Workers on
other machines need that file on a shared path (`AMAIMA_EMBEDDING_CACHE_DIR`) — see the README.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import pyarrow as pa

from telemetry.pilot_run import DayResult, merge_shards, route_and_write

log = logging.getLogger(__name__)

DEFAULT_SHARD_ROWS = 20_000
_LOCAL = re.compile(r"^local(?::(\d+))?$")


class ClusterError(ValueError):
    """A cluster address that cannot be used, or a store it cannot share."""


@dataclass(frozen=True)
class ClusterSpec:
    address: str  # "local" or tcp://host:port
    workers: int | None  # local only

    @property
    def local(self) -> bool:
        return self.address == "local"


def shared_embedding_store(db_url: str) -> str | None:
    """A cluster with a database store shares the canonical embeddings there (a table next to
    the telemetry); with SQLite the local file is shared by the workers of this machine."""
    return None if db_url.startswith("sqlite") else db_url


def parse_cluster(value: str, db_url: str) -> ClusterSpec:
    """``local``, ``local:N`` or ``tcp://HOST:PORT``; SQLite only with local workers."""
    m = _LOCAL.match(value.strip())
    if m:
        n = int(m.group(1) or 2)
        if not 1 <= n <= 64:
            raise ClusterError(f"--cluster {value!r}: local:N takes 1 to 64 workers")
        return ClusterSpec("local", n)
    if not value.startswith("tcp://"):
        raise ClusterError(
            f"--cluster {value!r} is not 'local', 'local:N' or 'tcp://HOST:PORT' (a Dask scheduler)"
        )
    if db_url.startswith("sqlite"):
        raise ClusterError(
            "a cluster on other machines needs a shared store: SQLite is a local file; use "
            "--db postgresql+psycopg://... (local:N workers may share a SQLite file)"
        )
    return ClusterSpec(value, None)


@dataclass(frozen=True)
class PartitionSpec:
    """Everything a worker needs to route and write a shard (no text: that travels as Arrow)."""

    config_path: str | None
    candidate_path: str | None
    semantic: bool
    db: str | None
    run_id: str
    embedding_store: str | None = None
    """Database URL of the canonical embedding store shared by every worker (None: the local
    SQLite file, shared by workers of one machine)."""


_WORKER_STATE: dict[tuple, object] = {}


def _worker_objects(spec: PartitionSpec):
    """One router, candidate and store per worker process (built on first use)."""
    key = (spec.config_path, spec.candidate_path, spec.semantic, spec.db, spec.embedding_store)
    if key not in _WORKER_STATE:
        import os

        from router.config import load_config
        from router.engine import EMBEDDING_STORE_URL_ENV

        if spec.embedding_store:
            os.environ[EMBEDDING_STORE_URL_ENV] = spec.embedding_store
        from router.engine import Router
        from router.toggle import resolve_toggle
        from telemetry.store import TelemetryStore

        forced = resolve_toggle("decision-only")
        router = Router(load_config(spec.config_path), semantic=spec.semantic, toggle=forced)
        cand = None
        if spec.candidate_path:
            cand = Router(load_config(spec.candidate_path), semantic=spec.semantic, toggle=forced)
        _WORKER_STATE[key] = (router, cand, TelemetryStore(spec.db))
    return _WORKER_STATE[key]


def _one_core_per_thread(worker=None) -> None:
    """A worker process gets as many compute threads as Dask gave it task threads: otherwise
    every worker's PyTorch and Arrow pools grab all cores and N workers on one machine fight
    over them instead of adding up."""
    try:
        if worker is None:
            from distributed import get_worker

            worker = get_worker()
        n = max(1, int(worker.state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    import pyarrow as _pa

    _pa.set_cpu_count(n)


def route_partition(spec: PartitionSpec, day: date, ipc: bytes) -> DayResult:
    """Runs on a worker: route one shard and write it to the shared store."""
    table = pa.ipc.open_stream(ipc).read_all()
    _one_core_per_thread()
    router, cand, store = _worker_objects(spec)
    return route_and_write(router, cand, store, day, table, spec.run_id, logger=log)


def _warm(spec: PartitionSpec, dask_worker=None) -> bool:
    _one_core_per_thread(dask_worker)  # client.run passes the worker object
    router, _, _ = _worker_objects(spec)
    router.route_batch(["warm up"], query_ids=["warm"], run_id="warm")  # loads the encoder
    return True


def warm_workers(client, spec: PartitionSpec) -> int:
    """Build the router on every worker before the week starts (model load is per process, not
    per partition); returns the number of workers warmed."""
    return len(client.run(_warm, spec))


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def probe(spec: ClusterSpec) -> None:
    """Before any work: is a remote scheduler listening at all?"""
    import socket
    from urllib.parse import urlsplit

    if spec.local:
        return
    u = urlsplit(spec.address)
    try:
        socket.create_connection((u.hostname, u.port or 8786), timeout=5).close()
    except OSError as exc:
        raise ClusterError(
            f"Dask scheduler {spec.address} unreachable ({type(exc).__name__}); start it with "
            "`dask scheduler` and workers with `dask worker tcp://HOST:8786`"
        ) from None


def prefect_api_url() -> str | None:
    """The Prefect API this process reports to (a real server, or the temporary one once a flow
    or the test harness started it)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if url:
        return str(url)
    try:
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
        return str(ctx.client.api_url) if ctx is not None else None
    except (ImportError, AttributeError):
        return None


def connect(spec: ClusterSpec):
    """A Dask client: a LocalCluster of worker processes (reporting to this process's Prefect
    API), or an existing scheduler."""
    from distributed import Client, LocalCluster

    if spec.local:
        api = prefect_api_url()
        cluster = LocalCluster(
            n_workers=spec.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            env={"PREFECT_API_URL": api} if api else None,
        )
        return Client(cluster), cluster
    try:
        return Client(spec.address, timeout="5s"), None
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"Dask scheduler {spec.address} unreachable ({type(exc).__name__}); start it with "
            "`dask scheduler` and workers with `dask worker tcp://HOST:8786`"
        ) from None


def workers_of(client) -> int:
    return len(client.scheduler_info().get("workers", {}))


def _partition_task():
    """The Prefect task a partition runs as (built lazily: workers import Prefect on demand)."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    return task(
        route_partition,
        name="route-partition",
        cache_policy=NO_CACHE,  # the shard carries text: never hashed into a cache key
        persist_result=False,  # nor written to result storage
        retries=2,
        retry_delay_seconds=1,
    )


@contextmanager
def _partition_submitter(client):
    """How a partition is submitted: inside a flow run, as a Prefect task run of that flow run
    (prefect-dask's ``DaskTaskRunner`` on the client's scheduler; a partition that raises is
    retried by Prefect); outside one (library calls, tests of the scheduling itself) as a plain
    Dask task, since there is no flow run to record it in and the workers would each start a
    temporary Prefect server of their own. Yields ``submit(params) -> (dask future, result)``."""
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:

        def plain(params: dict):
            fut = client.submit(route_partition, **params, pure=False, retries=2)
            return fut, fut.result

        yield plain
        return
    from prefect_dask import DaskTaskRunner

    route = _partition_task()
    with DaskTaskRunner(address=client.scheduler.address) as runner:

        def as_task_run(params: dict):
            fut = runner.submit(route, parameters=params)
            return fut.wrapped_future, fut.result

        yield as_task_run


def route_week_on_cluster(
    client, spec: PartitionSpec, days, shard_rows: int, progress
) -> tuple[list[DayResult], int]:
    """Submit every day × shard (see ``_partition_submitter``), gather in order; returns per-day
    results and the partition count. A partition whose worker dies is rescheduled by Dask (the
    store keeps one copy)."""
    from distributed import as_completed

    submitted = []
    order: list[date] = []
    with _partition_submitter(client) as submit:
        for day, table in days:
            order.append(day)
            for a in range(0, max(table.num_rows, 1), shard_rows):
                params = {"spec": spec, "day": day, "ipc": _ipc(table.slice(a, shard_rows))}
                submitted.append((day, *submit(params)))
        for done, _ in enumerate(as_completed([f for _, f, _ in submitted]), start=1):
            progress(done, len(submitted))
        by_day: dict[date, list[DayResult]] = {}
        for day, _, result in submitted:
            by_day.setdefault(day, []).append(result())
    return [merge_shards(by_day[d]) for d in order], len(submitted)
