"""Drill traffic: which queries arrive when, seeded, with no text ever leaving memory.

Texts come from the synthetic generator (``data.generate``) or from a corpus file validated by
``data.corpus``. The pool is shuffled with the drill's seed so every minute of the drill sees the
same mix (the generator orders a day by time; replaying it in order would make the first minutes
a night-time baseline). Arrivals are evenly spaced at ``qps`` or a seeded Poisson process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_POOL = 50_000  # distinct texts kept in memory; longer drills cycle through the pool


@dataclass
class Traffic:
    """``offsets[i]`` is when query ``i`` arrives (seconds since the drill started)."""

    offsets: np.ndarray
    pool_texts: list[str]
    pool_tenants: list[str]
    source: str
    quarantined: int = 0

    def __len__(self) -> int:
        return len(self.offsets)

    def texts(self, lo: int, hi: int) -> list[str]:
        n = len(self.pool_texts)
        return [self.pool_texts[i % n] for i in range(lo, hi)]

    def tenants(self, lo: int, hi: int) -> list[str]:
        n = len(self.pool_tenants)
        return [self.pool_tenants[i % n] for i in range(lo, hi)]

    @staticmethod
    def query_id(i: int) -> str:
        return f"q{i:08d}"


def arrival_offsets(
    qps: float, duration_s: float, kind: str = "uniform", seed: int = 0
) -> np.ndarray:
    """Arrival times in ``[0, duration_s)``."""
    if kind == "uniform":
        n = int(round(qps * duration_s))
        return np.arange(n, dtype=np.float64) / qps
    if kind == "poisson":
        rng = np.random.default_rng([seed, 0x7A11])
        expected = int(qps * duration_s)
        gaps = rng.exponential(1.0 / qps, size=expected + 10 * int(np.sqrt(expected + 1)) + 10)
        times = np.cumsum(gaps) - gaps[0]
        return times[times < duration_s]
    raise ValueError(f"arrivals {kind!r}; valid: uniform, poisson")


def _generated_pool(n: int, seed: int) -> tuple[list[str], list[str]]:
    from data.generate import generate_corpus

    table = generate_corpus(max(1, n), seed=seed, days=1)
    order = np.random.default_rng([seed, 0x5EED]).permutation(table.num_rows)
    texts = table.column("text").to_numpy(zero_copy_only=False)[order].tolist()
    tenants = table.column("tenant").to_numpy(zero_copy_only=False)[order].tolist()
    return texts, tenants


def _corpus_pool(path: str, n: int, seed: int) -> tuple[list[str], list[str], int]:
    from data.corpus import load_corpus

    texts: list[str] = []
    tenants: list[str] = []
    with load_corpus(Path(path)) as corpus:
        quarantined = int(getattr(corpus.summary, "quarantined", 0) or 0)
        for _day, table in corpus.iter_days():
            texts += table.column("text").to_pylist()
            tenants += (
                table.column("tenant").to_pylist()
                if "tenant" in table.column_names
                else ["default"] * table.num_rows
            )
            if len(texts) >= n:
                break
    if not texts:
        raise ValueError(f"traffic.corpus {path}: no accepted rows to replay")
    order = np.random.default_rng([seed, 0x5EED]).permutation(len(texts))[:n]
    return [texts[i] for i in order], [tenants[i] or "default" for i in order], quarantined


def build_traffic(
    qps: float,
    duration_s: float,
    *,
    seed: int = 7,
    corpus: str | None = None,
    arrivals: str = "uniform",
) -> Traffic:
    offsets = arrival_offsets(qps, duration_s, arrivals, seed)
    pool = min(max(1, len(offsets)), MAX_POOL)
    if corpus is None:
        texts, tenants = _generated_pool(pool, seed)
        return Traffic(offsets, texts, tenants, "generated")
    texts, tenants, quarantined = _corpus_pool(corpus, pool, seed)
    return Traffic(offsets, texts, tenants, f"corpus:{Path(corpus).name}", quarantined)
