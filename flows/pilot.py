"""Prefect flow: replay a recorded query corpus through the router in decision-only (shadow) mode,
day by day, and decide go / no-go from evidence.

The flow orchestrates; the logic lives in data.corpus, router, telemetry and reports. Memory is
bounded by one day of queries plus a slim per-decision frame for week-level statistics.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import staging
from flows.progress import report
from flows.run_logger import run_logger
from router.toggle import ENV_VAR as TOGGLE_ENV
from router.toggle import resolve_toggle, toggle_from_env
from telemetry.pilot_run import (
    CorpusFacts,
    DayResult,
    Determinism,
    PilotOutcome,
    TelemetryFacts,
    route_and_write,
    run_record_counts,
)

log = logging.getLogger(__name__)


@task(name="validate-corpus", cache_policy=NO_CACHE)
def validate_corpus(
    corpus: str, fmt: str | None, start: str | None, days: int, work: Path, quarantine: Path
):
    from data.corpus import load_corpus

    report("validate corpus", 0, None)
    prepared = load_corpus(
        corpus,
        format=fmt,
        quarantine_path=quarantine,
        work_dir=work,
        start=start,
        days=days,
        progress=lambda n: report("validate corpus", n, None),
        remove_work_dir=True,  # day partitions hold query text: never left in the report folder
    )
    s = prepared.summary
    report("validate corpus", s.total_rows, s.total_rows)
    run_logger(log).info(
        "corpus %s: %d rows, %d accepted, %d quarantined; window %s",
        Path(corpus).name,
        s.total_rows,
        s.accepted,
        s.quarantined,
        " .. ".join(d.isoformat() for d in s.window) if s.window else "empty",
    )
    return prepared


@task(name="route-day", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=1)
def route_day(router, candidate, store, day: date, table, run_id: str) -> DayResult:
    """Route one day in decision-only mode and write its telemetry (spooled if the store fails)."""
    return route_and_write(router, candidate, store, day, table, run_id, logger=run_logger(log))


@task(name="check-day", cache_policy=NO_CACHE)
def check_day(
    store,
    validator,
    replay_router,
    corpus,
    day: date,
    run_id: str,
    expected_rows: int,
    models: list[str],
    data_docs: Path,
    sample_min: int,
    seed: int,
) -> tuple[dict, dict]:
    """Data quality of the day's stored telemetry, and a deterministic-replay sample."""
    from router.replay import compare_replay, sample_indices
    from telemetry.errors import StoreUnavailableError

    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    try:
        stored = store.read(run_id=run_id, start=start, end=start + timedelta(days=1))
    except StoreUnavailableError as exc:
        # The day's decisions are safe in the spool, but nothing stored can be checked.
        why = f"telemetry store unavailable ({exc.kind}): not measured"
        quality = {
            "day": day.isoformat(),
            "success": False,
            "evaluated": 0,
            "successful": 0,
            "failed": [{"expectation": "store_readable", "detail": why}],
            "data_docs": None,
        }
        return quality, {
            "sample": 0,
            "matched": 0,
            "mismatched": 0,
            "rate": None,
            "mismatched_fields": {},
        }
    q = validator.validate(
        stored,
        expected_rows=expected_rows,
        models=models,
        day_label=day.isoformat(),
        data_docs_dir=data_docs,
    )
    table = corpus.read_day(day)
    idx = sample_indices(table.num_rows, fraction=0.01, minimum=sample_min, seed=seed)
    sample = table.take(idx)
    replayed = replay_router.route_batch(
        sample.column("text").to_pylist(),
        query_ids=sample.column("query_id").to_pylist(),
        ts=sample.column("ts"),
        run_id=run_id,
        tenants=sample.column("tenant").to_pylist(),
    )
    det = compare_replay(stored, replayed)
    quality = {
        "day": day.isoformat(),
        "success": bool(q.success),
        "evaluated": q.evaluated_expectations,
        "successful": q.successful_expectations,
        "failed": q.failed,
        "data_docs": None,
    }
    if q.data_docs_index is not None:
        quality["data_docs"] = os.path.relpath(q.data_docs_index, data_docs.parent)
    return quality, det.to_dict()


def _stored_rows(store, run_id: str) -> int:
    from telemetry.errors import StoreUnavailableError

    try:
        return store.count(run_id)
    except StoreUnavailableError:
        return 0  # nothing could be stored; the spool count says where the decisions are


def _finish_run(store, run_id: str, status: str, counts: dict) -> None:
    """Close the run record; a store that is down must not turn a finished pilot into a crash."""
    try:
        store.finish_run(run_id, status, counts)
    except Exception as exc:  # noqa: BLE001 - the run record is metadata; the evidence is on disk
        run_logger(log).warning("run record %s not updated (%s)", run_id, type(exc).__name__)


@contextlib.contextmanager
def _embedding_store(cluster_spec, db: str | None):
    """The driver's replay reads the same canonical embeddings as the cluster's workers."""
    from flows.cluster import shared_embedding_store
    from router.engine import EMBEDDING_STORE_URL_ENV
    from telemetry.store import default_url

    url = shared_embedding_store(db or default_url()) if cluster_spec is not None else None
    if not url:
        yield
        return
    old = os.environ.get(EMBEDDING_STORE_URL_ENV)
    os.environ[EMBEDDING_STORE_URL_ENV] = url
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(EMBEDDING_STORE_URL_ENV, None)
        else:
            os.environ[EMBEDDING_STORE_URL_ENV] = old


class RemoteRouter:
    """A deployed router behind ``POST /v1/simulate``, with ``route_batch``'s signature, so the
    rest of the pilot (store, quality, determinism replay, verdict) is unchanged."""

    hash_key = "remote"  # the service hashes; no local key warning

    def __init__(self, target: str, config) -> None:
        self.target = target.rstrip("/")
        self.config = config
        self.config_hash = config.config_hash

    @classmethod
    def connect(cls, target: str, config) -> RemoteRouter:
        """Check the target answers its health endpoint before any work."""
        import httpx

        from live.shadow import ShadowTargetError

        if not target.startswith(("http://", "https://")):
            raise ShadowTargetError(f"--target {target!r} is not an http(s) URL")
        try:
            r = httpx.get(target.rstrip("/") + "/v1/health", timeout=5.0)
        except httpx.HTTPError as exc:
            raise ShadowTargetError(
                f"--target {target} does not answer ({type(exc).__name__}); is the service up?"
            ) from None
        if r.status_code >= 500 and r.status_code != 503:
            raise ShadowTargetError(f"--target {target}/v1/health answered {r.status_code}")
        return cls(target, config)

    def route_batch(self, texts, *, query_ids, ts, run_id, tenants=None):
        from live.shadow import shadow_decisions

        return shadow_decisions(self.target, texts, query_ids, ts, run_id, tenants=tenants)


def _claim_run(out_root: Path, **identity_inputs):
    """The run's identity (corpus fingerprint included) and its lock: one process per run id."""
    from telemetry.run_identity import make_identity

    identity = make_identity(**identity_inputs)
    return identity, staging.acquire_run_lock(out_root, identity.run_id)


@flow(name="pilot-week", log_prints=False)
def pilot_week(
    corpus: str,
    start: str | None = None,
    days: int = 7,
    config: str | None = None,
    compare_config: str | None = None,
    db: str | None = None,
    out: str = "reports/out",
    series: str = "pilot",
    semantic: bool | None = None,
    format: str | None = None,
    target: str | None = None,
    cluster: str | None = None,
    shard_rows: int = 20_000,
) -> dict:
    """One decision-only pilot over ``days`` days of ``corpus`` (default: its last ``days`` days).

    Returns the outcome (run id, verdict, report paths). Never executes a model: the router is
    forced to decision-only whatever ``AMAIMA_EXECUTION_MODE`` says.
    """
    from reports.pilot import build_pilot_report
    from reports.site import build_index
    from router.config import load_config
    from router.engine import Router
    from telemetry import pilot_evidence as ev
    from telemetry.evidence_store import save_evidence, save_labels
    from telemetry.quality import default_validator
    from telemetry.run_identity import check_series
    from telemetry.store import TelemetryStore, default_url, safe_url

    logger = run_logger(log)
    warnings: list[str] = []
    check_series(series)
    out_root = Path(out)
    if out_root.exists() and not out_root.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the reports")
    cfg = load_config(config)
    use_semantic = cfg.semantic.enabled if semantic is None else semantic
    env_toggle = toggle_from_env(warn=False)
    if env_toggle.active or env_toggle.invalid:
        warnings.append(
            f"{TOGGLE_ENV} is {env_toggle.raw!r} in this environment; the pilot forced decision-only "
            "(a pilot never executes)."
        )
    forced = resolve_toggle("decision-only")
    if target:
        router = RemoteRouter.connect(target, cfg)
        warnings.append(
            f"Shadow of the deployed router at {router.target}: decisions are the service's; "
            "cost baselines and interactive tiers come from the local config "
            f"{cfg.config_hash[:12]} — pass the deployed config with --config."
        )
    else:
        router = Router(cfg, semantic=use_semantic, toggle=forced)
    if router.hash_key is None:
        warnings.append(
            "AMAIMA_TELEMETRY_HASH_KEY is not set: query hashes are plain SHA-256, which a "
            "dictionary attack can reverse for short queries."
        )
    candidate = None
    candidate_cfg = None
    if compare_config:
        candidate_cfg = load_config(compare_config)
        candidate = Router(candidate_cfg, semantic=use_semantic, toggle=forced)

    client = local_cluster = cluster_spec = None
    if cluster:
        if target:
            raise ValueError(
                "--cluster routes in process on the workers; it cannot shadow a --target"
            )
        from flows.cluster import parse_cluster, probe

        cluster_spec = parse_cluster(cluster, db or default_url())
        probe(cluster_spec)  # before any work: a clear error if the scheduler is down

    timings: dict[str, float] = {}
    t_stage = time.perf_counter()
    # Staged day partitions hold query text: a private temp dir, never the report folder.
    work = staging.new_work_dir(out_root)
    prepared = validate_corpus(corpus, format, start, days, work, work / "quarantine.parquet")
    summary = prepared.summary
    timings["load_validate_s"] = time.perf_counter() - t_stage
    if not prepared.days:
        prepared.close()
        raise ValueError(
            f"corpus {corpus} has no accepted rows in the window {summary.window} "
            f"(days with rows: {', '.join(d.isoformat() for d in summary.days) or 'none'})"
        )
    window = (summary.window[0], summary.window[1])
    try:
        identity, lock = _claim_run(
            out_root,
            series=series,
            window=window,
            config_hash=cfg.config_hash,
            semantic=use_semantic,
            candidate_config_hash=candidate.config_hash if candidate else None,
            corpus_days=(table for _, table in prepared.iter_days()),
            db_url=db or default_url(),
            target=target,
        )
    except BaseException:
        prepared.close()
        staging.remove_work_dir(work)
        raise
    run_id = identity.run_id
    run_dir = out_root / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    quarantine = run_dir / "quarantine.parquet"
    shutil.move(str(prepared.quarantine_path), quarantine)

    from telemetry.errors import StoreUnavailableError

    store = TelemetryStore(db)
    params = {
        "identity": identity.to_dict(),
        "corpus": Path(corpus).name,
        "window": [d.isoformat() for d in window],
        "days": days,
        "semantic": use_semantic,
        "compare_config_hash": candidate.config_hash if candidate else None,
    }
    try:
        store.start_run(run_id, "pilot", params, cfg.config_hash)
    except StoreUnavailableError as exc:
        warnings.append(f"Run record not written: {exc}. Decisions spool until the store is back.")
    logger.info(
        "pilot %s: %d days, telemetry in %s", run_id, len(prepared.days), safe_url(store.url)
    )

    try:
        # 1-2. Route each day in decision-only mode and write its telemetry.
        results: list[DayResult] = []
        total_days = len(prepared.days)
        if cluster_spec is not None:
            from flows.cluster import (
                PartitionSpec,
                connect,
                route_week_on_cluster,
                shared_embedding_store,
                warm_workers,
                workers_of,
            )

            client, local_cluster = connect(cluster_spec)

            spec = PartitionSpec(
                config_path=str(Path(config).resolve()) if config else None,
                candidate_path=str(Path(compare_config).resolve()) if compare_config else None,
                semantic=use_semantic,
                db=db or default_url(),
                run_id=run_id,
                embedding_store=shared_embedding_store(db or default_url()),
            )
            report("route + write telemetry (dask)", 0, None)
            warm_workers(client, spec)
            results, partitions = route_week_on_cluster(
                client,
                spec,
                prepared.iter_days(),
                shard_rows,
                lambda done, total: report("route + write telemetry (dask)", done, total),
            )
            execution = {
                "engine": "dask",
                "address": cluster_spec.address,
                "workers": workers_of(client),
                "partitions": partitions,
                "shard_rows": shard_rows,
            }
        else:
            report("route + write telemetry", 0, total_days)
            for i, (day, table) in enumerate(prepared.iter_days()):
                results.append(route_day(router, candidate, store, day, table, run_id))
                report("route + write telemetry", i + 1, total_days)
            execution = {"engine": "local", "workers": 1, "partitions": total_days}
        timings["route_s"] = sum(r.route_s for r in results)
        timings["write_s"] = sum(r.write_s for r in results)
        t_stage = time.perf_counter()
        drained = store.drain()
        timings["drain_s"] = time.perf_counter() - t_stage
        if not drained.complete:
            warnings.append(
                f"{drained.rows_remaining} decisions are still in the spool ({drained.error_kind}); "
                "run `harness telemetry drain` when the store is back."
            )

        # 3-4. Data quality per day (Great Expectations) and deterministic replay.
        t_stage = time.perf_counter()
        validator = default_validator()
        replay_router = (
            RemoteRouter(target, cfg)
            if target
            else Router(cfg, semantic=use_semantic, toggle=forced)
        )
        sample_min = math.ceil(1000 / total_days)
        quality, det_parts = [], []
        report("quality + determinism", 0, total_days)
        for i, r in enumerate(results):
            q, d = check_day(
                store,
                validator,
                replay_router,
                prepared,
                r.day,
                run_id,
                r.accepted,
                cfg.model_names,
                run_dir / "data_docs",
                sample_min,
                seed=i,
            )
            quality.append(q)
            det_parts.append(d)
            report("quality + determinism", i + 1, total_days)
        determinism = Determinism.merge(det_parts).to_dict()
        timings["quality_determinism_s"] = time.perf_counter() - t_stage
        t_stage = time.perf_counter()

        # 5-8. Metrics, alert back-test, comparison, labels, verdict.
        report("metrics + alerts + verdict", 0, 1)
        df = pd.concat([r.slim for r in results], ignore_index=True)
        cand_pair = None
        if candidate is not None:
            cand = pd.concat([r.candidate for r in results], ignore_index=True)
            cand_pair = (cand, candidate_cfg)
        label_frames = [r.labels for r in results if r.labels is not None]
        labels = pd.concat(label_frames, ignore_index=True) if label_frames else None
        corpus_summary = CorpusFacts.of(summary, quarantine.name).to_dict()
        telemetry_info = TelemetryFacts.of(
            results,
            db=safe_url(store.url),
            stored_rows=_stored_rows(store, run_id),
            drained=drained.rows_written,
        ).to_dict()
        evidence = ev.build_evidence(
            df,
            cfg,
            run_id=run_id,
            corpus={"name": Path(corpus).name, "format": summary.format},
            window=window,
            semantic=use_semantic,
            corpus_summary=corpus_summary,
            telemetry_info=telemetry_info,
            quality=quality,
            determinism=determinism,
            labels=labels,
            warnings=warnings,
            candidate=cand_pair,
            identity=identity.to_dict(),
            execution=execution,
        )
        report("metrics + alerts + verdict", 1, 1)
        timings["metrics_alerts_verdict_s"] = time.perf_counter() - t_stage
        evidence["timings"] = {k: round(v, 3) for k, v in timings.items()}
        evidence_path = ev.write_evidence(evidence, run_dir)

        # 9. Report, index and Prefect artifacts.
        report("report", 0, 1)
        t_stage = time.perf_counter()
        paths = build_pilot_report(evidence, out_root)
        build_index(out_root)
        timings["report_s"] = time.perf_counter() - t_stage
        evidence["timings"]["report_s"] = round(timings["report_s"], 3)
        ev.write_evidence(evidence, run_dir)
        if evidence.get("comparison"):
            ev.write_changed_decisions(df, cand_pair, run_dir)
        try:
            save_evidence(store, evidence)
            if labels is not None:
                save_labels(store, run_id, labels)
        except StoreUnavailableError as exc:
            logger.warning(
                "evidence of %s not stored in the database (%s); evidence.json holds it",
                run_id,
                exc.kind,
            )
        report("report", 1, 1)
        _publish_artifacts(evidence, paths)
        _finish_run(store, run_id, "completed", run_record_counts(evidence))
    except BaseException as exc:
        _finish_run(store, run_id, "failed", {"error": type(exc).__name__})
        raise
    finally:
        prepared.close()
        store.close()
        staging.remove_work_dir(work)
        lock.release()
        if client is not None:
            client.close()
        if local_cluster is not None:
            local_cluster.close()
    outcome = PilotOutcome.of(evidence, paths, evidence_path)
    logger.info("pilot %s: %s — %s", run_id, evidence["verdict"].upper(), paths.html)
    return outcome.to_dict()


def _publish_artifacts(evidence: dict, paths) -> None:
    """Markdown summary, criteria table and a link to the HTML report, in the Prefect UI."""
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    key = "pilot-" + "".join(ch if ch.isalnum() else "-" for ch in evidence["run_id"].lower())[:90]
    crit = [
        {
            "criterion": c["description"],
            "threshold": c["threshold"],
            "measured": c["measured"],
            "n": c["n"],
            "interval": "" if c["ci_low"] is None else f"{c['ci_low']:.4g} .. {c['ci_high']:.4g}",
            "status": c["status"],
            "severity": c["severity"],
        }
        for c in evidence["criteria"]
    ]
    t = evidence["telemetry"]
    md = (
        f"# Pilot {evidence['run_id']}: **{evidence['verdict'].upper()}**\n\n"
        f"Window {evidence['window']['start']} .. {evidence['window']['end']}, "
        f"{evidence['corpus_summary']['accepted']:,} queries accepted, "
        f"{evidence['corpus_summary']['quarantined']:,} quarantined; "
        f"{t['rows']:,} decisions stored.\n\nReport: {paths.html}\n"
    )
    try:
        create_markdown_artifact(md, key=key + "-summary", description="Pilot summary")
        create_table_artifact(crit, key=key + "-criteria", description="Go / no-go criteria")
        create_link_artifact(
            Path(paths.html).resolve().as_uri(),
            link_text="Pilot report (HTML)",
            key=key + "-report",
        )
    except Exception as exc:  # noqa: BLE001 - artifacts are a convenience, never a failure
        run_logger(log).warning("could not publish Prefect artifacts: %s", type(exc).__name__)
