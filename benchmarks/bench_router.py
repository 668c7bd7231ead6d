"""Router throughput on a seeded 200k-query generated corpus: rule-only, hybrid cold, hybrid cached."""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime


def run(n: int = 200_000, hybrid_n: int | None = None) -> dict:
    from data.generate import generate_corpus
    from router.engine import Router
    from router.toggle import resolve_toggle

    table = generate_corpus(n, seed=42)
    texts = table.column("text").to_pylist()
    qids = table.column("query_id").to_pylist()
    del table  # keep only what a caller of route_batch holds: the texts and ids
    ts = datetime(2026, 11, 16, tzinfo=UTC)
    off = resolve_toggle(None)
    out: dict = {"queries": n, "unique_texts": len(set(texts))}

    rules = Router.from_config(semantic=False, hash_key=b"bench", toggle=off)
    rules.route_batch(texts[:1000], ts=ts)  # warm-up (regex compilation)
    t0 = time.perf_counter()
    rules.route_batch(texts, query_ids=qids, ts=ts, run_id="bench")
    dt = time.perf_counter() - t0
    out["rule_only_s"] = round(dt, 3)
    out["rule_only_decisions_per_s"] = round(n / dt)

    # Hybrid: a cold embedding cache, then the same texts again (served from the cache).
    hn = hybrid_n or n
    htexts, hqids = texts[:hn], qids[:hn]
    with tempfile.TemporaryDirectory() as cache:
        hybrid = Router.from_config(hash_key=b"bench", toggle=off, cache_dir=cache)
        hybrid.route_batch(["warm up the model"], ts=ts)
        before = hybrid._scorer.computed
        t0 = time.perf_counter()
        hybrid.route_batch(htexts, query_ids=hqids, ts=ts, run_id="bench")
        dt = time.perf_counter() - t0
        embedded = hybrid._scorer.computed - before
        out["hybrid_queries"] = hn
        out["hybrid_cold_s"] = round(dt, 3)
        out["hybrid_cold_new_texts"] = embedded
        out["hybrid_cold_new_texts_per_s"] = round(embedded / dt)
        out["hybrid_cold_decisions_per_s"] = round(hn / dt)
        del hybrid  # one router at a time, as in a pilot
        # A fresh router on the same cache: every embedding comes from disk.
        again = Router.from_config(hash_key=b"bench", toggle=off, cache_dir=cache)
        t0 = time.perf_counter()
        again.route_batch(htexts, query_ids=hqids, ts=ts, run_id="bench")
        dt = time.perf_counter() - t0
        out["hybrid_cached_s"] = round(dt, 3)
        out["hybrid_cached_decisions_per_s"] = round(hn / dt)
        t0 = time.perf_counter()
        again._scorer.embed(htexts)  # embeddings alone, warm in memory
        dt = time.perf_counter() - t0
        out["embedding_cached_texts_per_s"] = round(hn / dt)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["threads"] = os.cpu_count()
    return out


if __name__ == "__main__":
    import json

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(json.dumps(run(n), indent=1))
