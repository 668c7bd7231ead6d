"""The statistics behind a verdict a pilot lead can sign: intervals, paired tests, sample sizes.

One place for every interval and test the harness reports, each with the name of its method so
the report can say how sure it is. All functions are deterministic (seeded) so a rebuilt report
repeats the original numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP_REPS = 1000
BOOTSTRAP_MAX_N = 50_000
"""Paired bootstraps on more pairs than this use a seeded subsample of this many pairs: the
interval gets slightly wider (conservative), the cost stays bounded on a million-row week."""


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95 % interval, sample size and the method that produced it."""

    value: float | None
    n: int
    ci_low: float | None
    ci_high: float | None
    method: str

    def to_dict(self) -> dict:
        return asdict(self)


def wilson(successes: int, n: int, z: float = Z95) -> Interval:
    """Wilson score interval for a rate: honest at 0 %, 100 % and small n (unlike Wald)."""
    if n <= 0:
        return Interval(None, 0, None, None, "wilson")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, n, lo, hi, "wilson")


def quantile_interval(values: np.ndarray, q: float, z: float = Z95) -> Interval:
    """Distribution-free interval for the q-quantile from order statistics (the binomial
    argument the percentile bootstrap approximates), exact in O(n log n) at any size."""
    x = np.sort(np.asarray(values, dtype=float)[~np.isnan(np.asarray(values, dtype=float))])
    n = len(x)
    name = "order-statistic (binomial)"
    if n == 0:
        return Interval(None, 0, None, None, name)
    value = float(np.quantile(x, q))
    half = z * math.sqrt(n * q * (1 - q))
    lo = int(max(0, math.floor(n * q - half) - 1))
    hi = int(min(n - 1, math.ceil(n * q + half)))
    return Interval(value, n, float(x[lo]), float(x[hi]), name)


@dataclass(frozen=True)
class QuantileBoundTest:
    """Is a q-quantile above a limit, or only its point estimate? (``quantile_above``)"""

    above: int
    """Values strictly above the limit."""
    n: int
    expected_share: float
    """1 - q: the share of values above the limit if the q-quantile were exactly at it."""
    p_value: float | None
    """One-sided exact binomial p of seeing ``above`` or more if the quantile were at the
    limit; None without data."""

    def exceeds(self, alpha: float = 0.05) -> bool:
        """The quantile is above the limit with 1 - alpha confidence."""
        return self.p_value is not None and self.p_value < alpha

    def describe(self) -> str:
        if not self.n:
            return "no calls"
        share = 100.0 * self.above / self.n
        return (
            f"{self.above} of {self.n} calls above the limit ({share:.1f} %, "
            f"{100 * self.expected_share:g} % expected at it; binomial p = {self.p_value:.2f})"
        )


def quantile_above(values: np.ndarray, limit: float, q: float = 0.95) -> QuantileBoundTest:
    """Exact one-sided binomial test of "the q-quantile of what produced ``values`` is above
    ``limit``": were it at the limit, each value would exceed it with probability 1 - q. A p95 of
    60 calls is their third-largest value, so its point estimate swings by +-20 % between two
    windows of the same traffic; this test separates such noise from a real shift and tightens
    to the point comparison as the sample grows."""
    from scipy.stats import binomtest

    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return QuantileBoundTest(0, 0, 1 - q, None)
    above = int((x > limit).sum())
    p = float(binomtest(above, n, 1 - q, alternative="greater").pvalue)
    return QuantileBoundTest(above, n, 1 - q, p)


def bootstrap_max_drop(day_means: list[np.ndarray], seed: int = 0) -> Interval:
    """Largest day-over-day drop in mean (percentage points of the earlier day's mean, as the
    alert rule defines it), with a percentile bootstrap that resamples queries within each day."""
    days = [np.asarray(d, dtype=float) for d in day_means if len(d)]
    name = "bootstrap (resample queries within each day)"
    n = int(sum(len(d) for d in days))
    if len(days) < 2:
        return Interval(0.0 if days else None, n, None, None, name)
    means = np.array([d.mean() for d in days])

    def max_drop(m: np.ndarray) -> np.ndarray:
        drops = (m[..., :-1] - m[..., 1:]) / np.maximum(m[..., :-1], 1e-12) * 100.0
        return np.maximum(drops.max(axis=-1), 0.0)

    rng = np.random.default_rng(seed)
    reps = np.empty((BOOTSTRAP_REPS, len(days)))
    for j, d in enumerate(days):
        if len(d) > BOOTSTRAP_MAX_N:
            # The mean of a resample of a large day is normal to a very good approximation.
            se = d.std(ddof=1) / math.sqrt(len(d))
            reps[:, j] = rng.normal(d.mean(), se, BOOTSTRAP_REPS)
        else:
            for a in range(0, BOOTSTRAP_REPS, 100):
                idx = rng.integers(0, len(d), size=(min(100, BOOTSTRAP_REPS - a), len(d)))
                reps[a : a + idx.shape[0], j] = d[idx].mean(axis=1)
    dist = max_drop(reps)
    return Interval(
        float(max_drop(means)),
        n,
        float(np.percentile(dist, 2.5)),
        float(np.percentile(dist, 97.5)),
        name,
    )


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison of baseline and candidate on the same queries."""

    metric: str
    baseline: float | None
    candidate: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    method: str
    n: int
    significant: bool
    conclusion: str

    def to_dict(self) -> dict:
        return asdict(self)


def mcnemar(metric: str, base: np.ndarray, cand: np.ndarray, label: str) -> PairedTest:
    """Exact McNemar test on paired yes/no outcomes (binomial test on the discordant pairs),
    with a Wald interval for the paired difference in rates."""
    from scipy.stats import binomtest

    b = np.asarray(base, dtype=bool)
    c = np.asarray(cand, dtype=bool)
    n = len(b)
    if n == 0:
        return PairedTest(
            metric, None, None, None, None, None, None, "mcnemar", 0, False, "no data"
        )
    only_base = int((b & ~c).sum())
    only_cand = int((~b & c).sum())
    discordant = only_base + only_cand
    p = 1.0 if discordant == 0 else float(binomtest(only_cand, discordant, 0.5).pvalue)
    diff = (only_cand - only_base) / n
    var = (discordant / n - diff * diff) / n
    half = Z95 * math.sqrt(max(var, 0.0))
    pb, pc = float(b.mean()), float(c.mean())
    return _paired(metric, pb, pc, diff, diff - half, diff + half, p, "McNemar exact", n, label)


def paired_bootstrap(
    metric: str, base: np.ndarray, cand: np.ndarray, label: str, stat: str = "mean", seed: int = 0
) -> PairedTest:
    """Paired bootstrap of the difference of a statistic (mean or median): the same resampled
    queries feed both sides, so per-query correlation is kept."""
    b = np.asarray(base, dtype=float)
    c = np.asarray(cand, dtype=float)
    n = len(b)
    method = f"paired bootstrap ({stat}, {BOOTSTRAP_REPS} resamples)"
    if n == 0:
        return PairedTest(metric, None, None, None, None, None, None, method, 0, False, "no data")
    f = np.mean if stat == "mean" else np.median
    vb, vc = float(f(b)), float(f(c))
    rng = np.random.default_rng(seed)
    if n > BOOTSTRAP_MAX_N:
        keep = rng.choice(n, BOOTSTRAP_MAX_N, replace=False)
        bs, cs = b[keep], c[keep]
        method += f" on a seeded sample of {BOOTSTRAP_MAX_N:,} pairs"
    else:
        bs, cs = b, c
    diffs = np.empty(BOOTSTRAP_REPS)
    m = len(bs)
    for a in range(0, BOOTSTRAP_REPS, 50):
        k = min(50, BOOTSTRAP_REPS - a)
        idx = rng.integers(0, m, size=(k, m))
        diffs[a : a + k] = f(cs[idx], axis=1) - f(bs[idx], axis=1)
    lo, hi = float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))
    # Two-sided bootstrap p-value: how often the resampled difference crosses zero.
    if vc - vb == 0 and lo == hi == 0:
        p = 1.0
    else:
        p = float(min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean())))
    return _paired(metric, vb, vc, vc - vb, lo, hi, p, method, n, label)


def _paired(metric, vb, vc, diff, lo, hi, p, method, n, label) -> PairedTest:
    significant = lo is not None and (lo > 0 or hi < 0)
    if diff == 0 and lo == hi:
        conclusion = f"{label}: no change."
    elif significant:
        word = "higher" if diff > 0 else "lower"
        conclusion = (
            f"{label} is {word} with the candidate; the 95 % interval of the difference "
            "excludes zero, so this is a real change, not noise."
        )
    else:
        conclusion = (
            f"{label}: the difference is within noise (the 95 % interval includes zero); "
            "this run cannot tell the configs apart on it."
        )
    return PairedTest(metric, vb, vc, diff, lo, hi, p, method, n, significant, conclusion)


@dataclass(frozen=True)
class MannWhitney:
    """Kayenta-style per-metric judgement of two series: significance plus effect size."""

    metric: str
    n_a: int
    n_b: int
    median_a: float | None
    median_b: float | None
    p_value: float | None
    effect: float | None
    """Relative change of the median (b - a) / |a|; absolute change when a is zero."""
    result: str  # pass | high | low | nodata

    def to_dict(self) -> dict:
        return asdict(self)


def mann_whitney(
    metric: str,
    a: np.ndarray,
    b: np.ndarray,
    *,
    tolerance: float,
    min_points: int,
    alpha: float = 0.05,
) -> MannWhitney:
    """``high``/``low`` when B's series differs from A's with p < alpha AND the median moved by
    more than ``tolerance`` (relative); ``nodata`` below ``min_points`` in either series."""
    from scipy.stats import mannwhitneyu

    xa = np.asarray(a, dtype=float)
    xb = np.asarray(b, dtype=float)
    xa, xb = xa[~np.isnan(xa)], xb[~np.isnan(xb)]
    if len(xa) < min_points or len(xb) < min_points:
        return MannWhitney(
            metric,
            len(xa),
            len(xb),
            float(np.median(xa)) if len(xa) else None,
            float(np.median(xb)) if len(xb) else None,
            None,
            None,
            "nodata",
        )
    ma, mb = float(np.median(xa)), float(np.median(xb))
    if np.all(xa == xa[0]) and np.all(xb == xa[0]):
        p = 1.0
    else:
        p = float(mannwhitneyu(xa, xb, alternative="two-sided").pvalue)
    effect = (mb - ma) / abs(ma) if ma != 0 else (mb - ma)
    result = "pass"
    if p < alpha and abs(effect) > tolerance:
        result = "high" if effect > 0 else "low"
    return MannWhitney(metric, len(xa), len(xb), ma, mb, p, effect, result)


def queries_to_settle(
    value: float, ci_low: float, ci_high: float, threshold: float, n: int
) -> int | None:
    """Roughly how many samples in total would make the interval clear the threshold, if the
    value stayed where it is (interval width shrinks as 1/sqrt(n)). None when it cannot."""
    gap = abs(value - threshold)
    half = (ci_high - ci_low) / 2
    if n <= 0 or gap <= 0 or half <= 0:
        return None
    return int(math.ceil(n * (half / gap) ** 2))
