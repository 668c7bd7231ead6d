"""`harness pilot calibrate`: the thresholds and borderline band that meet every critical
criterion at the lowest estimated cost, found on a run's stored complexity scores.

Why from stored scores: a threshold or band change needs no re-routing (router/redecide.py), so
a week is swept in seconds. What is searched: the four level boundaries and the band, by
coordinate descent over grids, minimising first the total miss of the critical criteria and then
the estimated cost. Guard rails: with ``expected_level`` labels the downgrade criterion keeps
quality in; without labels no query may be served below where the current config serves it (a
cheaper config could otherwise route everything to the smallest model).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from router.config import RouterConfig
from router.decision import LEVELS
from router.redecide import redecide
from telemetry import stats
from telemetry.labels import routed_rank
from telemetry.readiness import Criterion, Measurement, judge, load_criteria

LEVEL_NAMES = [lv.value for lv in LEVELS]
SEARCH_SAMPLE = 100_000
"""The sweep runs on a seeded sample of this many decisions; the chosen point is then checked on
the whole run."""
SWEPT = ("borderline_rate", "median_confidence", "latency_p95_interactive_ms", "downgrade_rate")
STEP = 0.01
MAX_PASSES = 6


class CalibrationError(ValueError):
    """Calibration cannot run on this input; names the run."""


@dataclass
class Point:
    thresholds: list[float]
    band: float
    cost_usd: float
    borderline_rate: float
    downgrade_rate: float | None
    overpay_rate: float | None
    relative_downgrades: float
    miss: float
    feasible: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CalibrationResult:
    run_id: str
    queries: int
    labelled: int
    current: Point
    proposed: Point | None
    criteria: list[dict] = field(default_factory=list)
    """The proposed config's criteria, judged on the whole run (what a rerun must meet)."""
    current_criteria: list[dict] = field(default_factory=list)
    points: list[dict] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict:
        return {
            **{k: v for k, v in asdict(self).items() if k not in ("current", "proposed")},
            "current": self.current.to_dict(),
            "proposed": None if self.proposed is None else self.proposed.to_dict(),
        }


def _pinned_centers(cfg: RouterConfig) -> dict[str, float]:
    return dict(zip(LEVEL_NAMES, cfg.centers, strict=True))


def _with(cfg: RouterConfig, thresholds: list[float], band: float) -> RouterConfig | None:
    """A copy of ``cfg`` with other thresholds and band, or None when the config would refuse it."""
    if any(b <= a for a, b in zip(thresholds, thresholds[1:], strict=False)):
        return None
    if thresholds[0] != 0.0 or thresholds[-1] >= 1.0 or band < 0 or band > 0.2:
        return None
    if band * 2 >= min(b - a for a, b in zip(thresholds, thresholds[1:], strict=False)):
        return None
    levels = dict(zip(LEVEL_NAMES, (round(t, 6) for t in thresholds), strict=True))
    return cfg.model_copy(
        update={
            "levels": levels,
            "borderline_band": round(band, 6),
            "score_centers": _pinned_centers(cfg),
        }
    )


class _Evaluator:
    def __init__(self, stored, cfg, criteria, labels, interactive_tiers):
        self.stored = stored
        self.cfg = cfg
        self.crit = {c.measure: c for c in criteria if c.severity == "critical"}
        self.tiers = interactive_tiers
        self.base_rank = routed_rank(stored)
        self.exp = None
        if labels is not None and "expected_level" in labels:
            lab = labels.set_index("query_id")["expected_level"].reindex(stored["query_id"])
            exp = lab.map({n: i for i, n in enumerate(LEVEL_NAMES)}).to_numpy(dtype=float)
            self.exp = exp

    def measurements(self, d: pd.DataFrame) -> dict[str, Measurement | None]:
        out: dict[str, Measurement | None] = {}
        w = stats.wilson(int(d["borderline"].sum()), len(d))
        out["borderline_rate"] = Measurement(w.value, w.n, w.ci_low, w.ci_high, w.method)
        q = stats.quantile_interval(d["confidence_overall"].to_numpy(float), 0.5)
        out["median_confidence"] = Measurement(q.value, q.n, q.ci_low, q.ci_high, q.method)
        lat = d.loc[d["model_tier"].astype(str).isin(self.tiers), "latency_estimate_ms"]
        q = stats.quantile_interval(lat.to_numpy(float), 0.95) if len(lat) else None
        out["latency_p95_interactive_ms"] = (
            None if q is None else Measurement(q.value, q.n, q.ci_low, q.ci_high, q.method)
        )
        out["downgrade_rate"] = None
        if self.exp is not None:
            known = ~np.isnan(self.exp)
            if known.any():
                down = routed_rank(d)[known] < self.exp[known]
                w = stats.wilson(int(down.sum()), int(known.sum()))
                out["downgrade_rate"] = Measurement(w.value, w.n, w.ci_low, w.ci_high, w.method)
        return out

    def point(self, thresholds, band) -> tuple[Point, pd.DataFrame] | None:
        cand = _with(self.cfg, thresholds, band)
        if cand is None:
            return None
        d = redecide(self.stored, self.cfg, cand)
        ms = self.measurements(d)
        miss = 0.0
        for measure in SWEPT:
            c = self.crit.get(measure)
            if c is None:
                continue
            miss += _miss(c, ms.get(measure))
        rank = routed_rank(d)
        rel_down = float((rank < self.base_rank).mean())
        if self.exp is None:
            miss += rel_down * 10  # unlabelled: no query served below the current config
        down = ms["downgrade_rate"]
        over = None
        if self.exp is not None:
            known = ~np.isnan(self.exp)
            over = float((rank[known] > self.exp[known]).mean()) if known.any() else None
        p = Point(
            thresholds=[round(t, 6) for t in thresholds],
            band=round(band, 6),
            cost_usd=float(d["cost_estimate_usd"].sum()),
            borderline_rate=float(ms["borderline_rate"].value),
            downgrade_rate=None if down is None else float(down.value),
            overpay_rate=over,
            relative_downgrades=rel_down,
            miss=round(miss, 9),
            feasible=miss == 0.0,
        )
        return p, d


def _miss(c: Criterion, m: Measurement | None) -> float:
    """How far a criterion is from passing (0 when it passes), in units of its threshold."""
    if m is None or m.value is None:
        return 0.0 if c.optional else 1.0
    r = judge(c, m)
    if r.status == "pass":
        return 0.0
    bound = m.ci_high if c.comparator in ("<=", "<") else m.ci_low
    bound = m.value if bound is None else bound
    scale = max(abs(c.threshold), 1e-6)
    return abs(float(bound) - c.threshold) / scale + 1e-6


def calibrate(
    stored: pd.DataFrame,
    cfg: RouterConfig,
    *,
    run_id: str,
    labels: pd.DataFrame | None = None,
    criteria: list[Criterion] | None = None,
    inherited: dict[str, Measurement | None] | None = None,
    seed: int = 0,
) -> CalibrationResult:
    """Sweep thresholds and band on ``stored`` (decision rows, flows.calibrate.READ_COLUMNS)."""
    from telemetry.pilot_evidence import readiness_measures
    from telemetry.readiness import evaluate

    crit = criteria if criteria is not None else load_criteria()
    tiers = cfg.routing.interactive_tiers
    sample = stored
    if len(stored) > SEARCH_SAMPLE:
        keep = np.sort(
            np.random.default_rng(seed).choice(len(stored), SEARCH_SAMPLE, replace=False)
        )
        sample = stored.iloc[keep].reset_index(drop=True)
    ev = _Evaluator(sample, cfg, crit, labels, tiers)
    current_pt, _ = ev.point(list(cfg.thresholds), cfg.borderline_band)
    best = current_pt
    x = list(cfg.thresholds) + [cfg.borderline_band]
    points = [current_pt]

    def key(p: Point) -> tuple:
        return (p.miss, p.cost_usd, p.borderline_rate)

    for _ in range(MAX_PASSES):
        improved = False
        for y in _neighbours(x):
            r = ev.point(y[:5], y[5])
            if r is None:
                continue
            points.append(r[0])
            if key(r[0]) < key(best):
                best, x, improved = r[0], y, True
        if not improved:
            break

    full = _Evaluator(stored, cfg, crit, labels, tiers)
    current_full, current_dec = full.point(list(cfg.thresholds), cfg.borderline_band)
    result = CalibrationResult(
        run_id=run_id,
        queries=len(stored),
        labelled=0 if full.exp is None else int((~np.isnan(full.exp)).sum()),
        current=current_full,
        proposed=None,
        points=[p.to_dict() for p in _thin(points)],
    )

    def judged(decisions: pd.DataFrame) -> list[dict]:
        labelled = None
        if full.exp is not None:
            down = routed_rank(decisions) < full.exp
            known = ~np.isnan(full.exp)
            labelled = {"level_rows": int(known.sum()), "downgrades": int(down[known].sum())}
        ms = readiness_measures(decisions, [], {}, [], labelled, tiers)
        if inherited:
            ms.update(inherited)
        return [c.to_dict() for c in evaluate(ms, crit, total_queries=len(decisions)).criteria]

    result.current_criteria = judged(current_dec)
    if not best.feasible:
        result.message = (
            f"No threshold/band setting meets every critical criterion on this run: the closest "
            f"(thresholds {best.thresholds}, band {best.band}) still misses by {best.miss:.3f} "
            f"(borderline {best.borderline_rate:.2%}"
            + ("" if best.downgrade_rate is None else f", downgrade {best.downgrade_rate:.2%}")
            + "). Thresholds and band alone cannot get there: the router's scores need work "
            "(`harness router fit`)."
        )
        return result
    proposed, decisions = full.point(best.thresholds, best.band)
    result.proposed = proposed
    result.criteria = judged(decisions)
    failing = [
        c["id"]
        for c in result.criteria
        if c["severity"] == "critical" and c["status"] != "pass" and c["status"] != "not_applicable"
    ]
    if failing or not proposed.feasible:
        result.message = (
            "The best setting found on the search sample does not hold on the whole run "
            f"({', '.join(failing) or 'guard rail'}); no candidate written."
        )
        result.proposed = None
        return result
    saving = current_full.cost_usd - proposed.cost_usd
    result.message = (
        f"Proposed thresholds {proposed.thresholds} and band {proposed.band}: every critical "
        f"criterion passes on this run at an estimated ${proposed.cost_usd:,.4f} "
        f"({'saves' if saving >= 0 else 'costs'} ${abs(saving):,.4f} against the current config)."
    )
    return result


def _neighbours(x: list[float]):
    """One coordinate at a time: each level boundary (SIMPLE..EXPERT; TRIVIAL stays at 0) moved
    by up to 20 steps either way, then every band on a 0.0025 grid."""
    for i in range(1, 5):
        for k in range(-20, 21):
            if k:
                y = list(x)
                y[i] = round(x[i] + k * STEP, 6)
                yield y
    for band in np.round(np.arange(0.0, 0.2001, 0.0025), 6):
        yield x[:5] + [float(band)]


def _thin(points: list[Point], limit: int = 2000) -> list[Point]:
    uniq = {(tuple(p.thresholds), p.band): p for p in points}
    pts = list(uniq.values())
    if len(pts) > limit:
        step = math.ceil(len(pts) / limit)
        pts = pts[::step]
    return pts


def candidate_yaml(
    cfg: RouterConfig, cfg_path: str | None, proposed: Point, out_path
) -> dict[str, Any]:
    """The run's config file with the proposed thresholds and band and the run's score centres
    pinned (so every stored score means the same under the candidate); everything else as is."""
    import os
    from pathlib import Path

    from router.config import default_config_path
    from router.yaml_safe import load_yaml_file

    src = Path(cfg_path) if cfg_path else default_config_path()
    raw = load_yaml_file(src)
    raw["levels"] = dict(zip(LEVEL_NAMES, proposed.thresholds, strict=True))
    raw["borderline_band"] = proposed.band
    raw["score_centers"] = _pinned_centers(cfg)
    head = raw.get("head")
    if isinstance(head, dict) and "weights" in head:
        # The weights path is relative to the config's folder: keep it pointing at the same file.
        weights = (src.parent / head["weights"]).resolve()
        head["weights"] = os.path.relpath(weights, Path(out_path).resolve().parent)
    return raw
