"""Router throughput: rule-only, hybrid with a cold embedding store, hybrid cached, and the bare
MiniLM encode rate (fp32, same token cap, length-sorted batches of 64) on the same texts in the same
run, so the cascade's speed-up is a ratio measured under the same load.

Texts: a seeded generated corpus, or ``corpus=PATH`` (labelled JSONL; real prompts).
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from datetime import UTC, datetime

BARE_SAMPLE = 1_000  # distinct texts encoded bare (enough for a stable rate)


def _bare_encode_rate(router, texts: list[str]) -> float:
    """Texts/s of the plain fp32 MiniLM at the router's token cap: the floor the cascade beats."""
    from router.semantic import load_encoder

    sc = router.config.semantic
    model = load_encoder(sc.model, max_tokens=sc.max_tokens, quantize_int8=False)
    sample = sorted(dict.fromkeys(texts))[:: max(1, len(set(texts)) // BARE_SAMPLE)][:BARE_SAMPLE]
    sample = [t[: sc.max_chars] for t in sorted(sample, key=len)]
    model.encode(sample[:8], batch_size=64)  # warm-up
    t0 = time.perf_counter()
    model.encode(sample, batch_size=64, show_progress_bar=False)
    return len(sample) / (time.perf_counter() - t0)


def run(
    n: int = 200_000,
    hybrid_n: int | None = None,
    *,
    corpus: str | None = None,
    config: str | None = None,
) -> dict:
    from router.engine import Router
    from router.toggle import resolve_toggle

    if corpus:
        from router.quality import load_corpus

        texts = load_corpus(corpus).texts
        n = len(texts)
        qids = [f"q{i}" for i in range(n)]
    else:
        from data.generate import generate_corpus

        table = generate_corpus(n, seed=42)
        texts = table.column("text").to_pylist()
        qids = table.column("query_id").to_pylist()
        del table  # keep only what a caller of route_batch holds: the texts and ids
    ts = datetime(2026, 11, 16, tzinfo=UTC)
    off = resolve_toggle(None)
    out: dict = {"queries": n, "unique_texts": len(set(texts))}

    rules = Router.from_config(config, semantic=False, hash_key=b"bench", toggle=off)
    rules.route_batch(texts[:1000], ts=ts)  # warm-up (regex compilation)
    t0 = time.perf_counter()
    rules.route_batch(texts, query_ids=qids, ts=ts, run_id="bench")
    dt = time.perf_counter() - t0
    out["rule_only_s"] = round(dt, 3)
    out["rule_only_decisions_per_s"] = round(n / dt)

    # Hybrid: a cold embedding cache, then the same texts again (served from the cache).
    hn = min(hybrid_n or n, n)
    # Evenly spaced rows: a labelled corpus is ordered by source, its first rows are one source.
    step = max(1, n // hn) if corpus else 1
    htexts, hqids = texts[::step][:hn], qids[::step][:hn]
    with tempfile.TemporaryDirectory() as cache:
        hybrid = Router.from_config(config, hash_key=b"bench", toggle=off, cache_dir=cache)
        hybrid.route_batch(["warm up the model"], ts=ts)
        # The cascade may decide the warm-up text without the model: load the encoder here, or the
        # cold run would time importing and loading it (4-14 s measured), not deciding.
        hybrid.embed(["warm up the encoder"])
        before = hybrid.texts_embedded
        t0 = time.perf_counter()
        decided = hybrid.route_batch(htexts, query_ids=hqids, ts=ts, run_id="bench")
        dt = time.perf_counter() - t0
        embedded = hybrid.texts_embedded - before
        codes = decided.column("reason_codes").to_pylist()
        out["hybrid_embedded_share"] = round(
            sum("LEVEL_FROM_HYBRID" in c for c in codes) / max(1, len(codes)), 4
        )
        stored = [t for t, c in zip(htexts, codes, strict=True) if "LEVEL_FROM_HYBRID" in c]
        del decided, codes
        out["hybrid_queries"] = hn
        out["hybrid_cold_s"] = round(dt, 3)
        out["hybrid_cold_new_texts"] = embedded
        out["hybrid_cold_new_texts_per_s"] = round(embedded / dt)
        out["hybrid_cold_decisions_per_s"] = round(hn / dt)
        bare = _bare_encode_rate(hybrid, htexts)
        out["bare_minilm_fp32_encode_per_s"] = round(bare)
        out["hybrid_cold_vs_bare_encode"] = round(hn / dt / bare, 2)
        del hybrid  # one router at a time, as in a pilot
        # A fresh router on the same cache: every embedding comes from disk.
        again = Router.from_config(config, hash_key=b"bench", toggle=off, cache_dir=cache)
        t0 = time.perf_counter()
        again.route_batch(htexts, query_ids=hqids, ts=ts, run_id="bench")
        dt = time.perf_counter() - t0
        out["hybrid_cached_s"] = round(dt, 3)
        out["hybrid_cached_decisions_per_s"] = round(hn / dt)
        t0 = time.perf_counter()
        again.embed(stored)  # embeddings alone, warm in memory (the embedded texts)
        dt = time.perf_counter() - t0
        out["embedding_cached_texts_per_s"] = round(len(stored) / max(dt, 1e-9))
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["threads"] = os.cpu_count()
    return out


if __name__ == "__main__":
    import argparse
    import json

    ap = argparse.ArgumentParser(description="router throughput")
    ap.add_argument("n", nargs="?", type=int, default=200_000)
    ap.add_argument("--hybrid-n", type=int, default=20_000)
    ap.add_argument("--corpus", help="labelled JSONL of real prompts instead of generated ones")
    ap.add_argument("--config", help="router config (default: the packaged one)")
    a = ap.parse_args()
    print(json.dumps(run(a.n, a.hybrid_n, corpus=a.corpus, config=a.config), indent=1))
