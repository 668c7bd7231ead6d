"""`harness pilot compare RUN_A RUN_B`: week over week, or two deployments, judged the way
Kayenta judges a canary.

Per metric, a Mann–Whitney U test on the two hourly series plus an effect-size tolerance: a
metric is ``high`` or ``low`` only when the difference is both significant and larger than the
tolerance, ``nodata`` with fewer than ``min_points`` judged hours. A weighted score 0–100 sums the
weights of metrics that did not move in their bad direction; a critical metric that did vetoes.
Beside it, the same test between the two halves of RUN_A: the noise floor, so a lead can see
whether RUN_A alone would already "differ" from itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from telemetry import stats


@dataclass(frozen=True)
class CompareMetric:
    name: str
    description: str
    bad: str  # "high" | "low": the direction that hurts
    critical: bool
    weight: float


METRICS = (
    CompareMetric("borderline_rate", "Borderline rate per hour", "high", True, 2.0),
    CompareMetric("upscale_rate", "Upscale rate per hour", "high", False, 1.0),
    CompareMetric("confidence_mean", "Mean overall confidence per hour", "low", True, 2.0),
    CompareMetric("latency_estimate_p95_ms", "p95 latency estimate per hour", "high", True, 2.0),
    CompareMetric("cost_per_query_usd", "Estimated cost per query per hour", "high", False, 1.0),
)
MIN_QUERIES_PER_HOUR = 20
"""Hours with fewer queries are not judged (a rate over 3 queries is noise)."""
PASS_SCORE, FAIL_SCORE = 75.0, 50.0


@dataclass
class RunComparison:
    run_a: str
    run_b: str
    window_a: list[str]
    window_b: list[str]
    same_window: bool
    tolerance: float
    min_points: int
    metrics: list[dict] = field(default_factory=list)
    noise_floor: list[dict] = field(default_factory=list)
    score: float | None = None
    vetoed_by: list[str] = field(default_factory=list)
    result: str = "nodata"  # pass | marginal | fail | nodata
    summary: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def exit_code(self) -> int:
        return {"pass": 0, "fail": 2}.get(self.result, 3)


def hourly_series(df: pd.DataFrame, interactive_tiers: list[str]) -> pd.DataFrame:
    from telemetry.metrics import compute_metrics

    frame = compute_metrics(df, pd.Timedelta(hours=1), interactive_tiers=interactive_tiers)
    return frame[frame["queries"] >= MIN_QUERIES_PER_HOUR]


def _judge(a: pd.DataFrame, b: pd.DataFrame, tolerance: float, min_points: int) -> list[dict]:
    rows = []
    for m in METRICS:
        xa = a[m.name].to_numpy(float) if m.name in a else np.array([])
        xb = b[m.name].to_numpy(float) if m.name in b else np.array([])
        r = stats.mann_whitney(m.name, xa, xb, tolerance=tolerance, min_points=min_points)
        rows.append(
            {
                **r.to_dict(),
                "description": m.description,
                "critical": m.critical,
                "weight": m.weight,
                "bad_direction": m.bad,
                "harmful": r.result == m.bad,
            }
        )
    return rows


def compare_runs(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    run_a: str,
    run_b: str,
    window_a: list[str],
    window_b: list[str],
    interactive_tiers: list[str],
    tolerance: float = 0.10,
    min_points: int = 50,
) -> RunComparison:
    ha, hb = hourly_series(a, interactive_tiers), hourly_series(b, interactive_tiers)
    out = RunComparison(
        run_a=run_a,
        run_b=run_b,
        window_a=window_a,
        window_b=window_b,
        same_window=window_a == window_b,
        tolerance=tolerance,
        min_points=min_points,
    )
    out.metrics = _judge(ha, hb, tolerance, min_points)
    half = len(ha) // 2
    out.noise_floor = _judge(ha.iloc[:half], ha.iloc[half:], tolerance, max(1, min_points // 2))
    judged = [r for r in out.metrics if r["result"] != "nodata"]
    out.vetoed_by = [r["metric"] for r in out.metrics if r["critical"] and r["harmful"]]
    if judged:
        total = sum(r["weight"] for r in judged)
        good = sum(r["weight"] for r in judged if not r["harmful"])
        out.score = round(100.0 * good / total, 1)
    critical_nodata = [
        r["metric"] for r in out.metrics if r["critical"] and r["result"] == "nodata"
    ]
    if out.vetoed_by:
        out.result = "fail"
        out.summary = (
            f"{run_b} is worse than {run_a} on critical metrics ({', '.join(out.vetoed_by)}): "
            "veto, whatever the score."
        )
    elif out.score is None or critical_nodata:
        out.result = "nodata"
        out.summary = (
            f"Not enough judged hours (need {min_points} with at least {MIN_QUERIES_PER_HOUR} "
            f"queries) for: {', '.join(critical_nodata) or 'every metric'}."
        )
    elif out.score >= PASS_SCORE:
        out.result = "pass"
        out.summary = f"{run_b} is not worse than {run_a} (score {out.score:.0f}/100)."
    elif out.score < FAIL_SCORE:
        out.result = "fail"
        out.summary = f"{run_b} is worse than {run_a} (score {out.score:.0f}/100)."
    else:
        out.result = "marginal"
        out.summary = f"Marginal (score {out.score:.0f}/100): a human should look."
    noisy = [r["metric"] for r in out.noise_floor if r["result"] in ("high", "low")]
    if noisy:
        out.summary += (
            f" Noise floor: the two halves of {run_a} already differ on {', '.join(noisy)}, so a "
            "difference there may be the week's own drift."
        )
    if not out.same_window:
        out.summary += (
            f" The runs cover different windows ({' .. '.join(window_a)} vs "
            f"{' .. '.join(window_b)}): traffic shape may differ as well as the router."
        )
    return out
