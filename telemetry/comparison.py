"""Shadow comparison: the same queries routed by the production config and a candidate config.

What a pilot lead needs to decide on a candidate: what changed in the config (field by field),
which decisions moved and in which direction (a downgrade is a risk to the no-downgrade
guarantee, never a saving), whether each difference is real (paired tests on the same queries)
and the changed decisions by query id and hash (never text). Comparing a config with itself must
give zero mismatches — that is the noise baseline, and a test holds it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from router.decision import LEVELS, split_reasons
from telemetry import stats
from telemetry.labels import routed_rank

LEVEL_NAMES = [lv.value for lv in LEVELS]
COMPARED = ("complexity_level", "model", "domain", "upscaled")
CHANGED_LISTED = 200
"""Changed decisions kept in the evidence, most consequential first (the CSV beside it has all)."""


@dataclass
class ComparisonResult:
    candidate_config_hash: str
    queries: int
    matched: int
    mismatched: int
    transition: dict
    cost_delta_usd: float
    latency_delta_ms_mean: float
    mismatch_reasons: dict[str, int]
    mismatch_by_field: dict[str, int]
    flips: dict = field(default_factory=dict)
    transition_by_domain: dict[str, dict] = field(default_factory=dict)
    changed: list[dict] = field(default_factory=list)
    changed_total: int = 0
    paired_tests: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _matrix(a: pd.Series, b: pd.Series) -> list[list[int]]:
    la = pd.Categorical(a.astype(str), categories=LEVEL_NAMES)
    lb = pd.Categorical(b.astype(str), categories=LEVEL_NAMES)
    m = pd.crosstab(la, lb, dropna=False).reindex(
        index=LEVEL_NAMES, columns=LEVEL_NAMES, fill_value=0
    )
    return m.to_numpy().astype(int).tolist()


def compare_decisions(
    base: pd.DataFrame,
    candidate: pd.DataFrame,
    candidate_config_hash: str | None = None,
    labels: pd.DataFrame | None = None,
) -> ComparisonResult:
    """Join on query_id; a row mismatches when level, model, domain or upscale differ.

    Flips compare the *served* level (scored level, one up when upscaled): that is what the
    query's user gets, and what the no-downgrade guarantee is about.
    """
    cols = ["query_id", *COMPARED, "reason_codes", "cost_estimate_usd", "latency_estimate_ms"]
    extra = [
        c
        for c in ("query_hash", "borderline", "confidence_overall")
        if c in base and c in candidate
    ]
    b = base[cols + extra].set_index("query_id")
    c = candidate[cols + extra].set_index("query_id")
    missing = b.index.difference(c.index)
    if len(missing):
        raise ValueError(
            f"candidate routing lacks {len(missing)} query ids present in the baseline"
        )
    c = c.loc[b.index]
    diff = np.zeros(len(b), dtype=bool)
    by_field = {}
    for col in COMPARED:
        d = b[col].astype(str).to_numpy() != c[col].astype(str).to_numpy()
        by_field[col] = int(d.sum())
        diff |= d
    reasons: Counter[str] = Counter()
    for rb, rc in zip(b["reason_codes"][diff], c["reason_codes"][diff], strict=True):
        # The reasons that differ between the two decisions explain the mismatch.
        reasons.update(set(split_reasons(str(rb))) ^ set(split_reasons(str(rc))))
    cand_hash = candidate_config_hash
    if cand_hash is None:
        cand_hash = (
            str(candidate["config_hash"].iloc[0]) if "config_hash" in candidate and len(c) else ""
        )
    rb_rank = routed_rank(b.reset_index())
    rc_rank = routed_rank(c.reset_index())
    up = rc_rank > rb_rank
    down = rc_rank < rb_rank
    n = len(b)
    flips = {
        "upgrades": int(up.sum()),
        "downgrades": int(down.sum()),
        "unchanged_level": int(n - up.sum() - down.sum()),
        "upgrade_rate": float(up.mean()) if n else 0.0,
        "downgrade_rate": float(down.mean()) if n else 0.0,
        "basis": "served level (scored level, +1 when upscaled)",
    }
    by_domain = {}
    for dom, idx in b.groupby(b["domain"].astype(str), observed=True).groups.items():
        by_domain[str(dom)] = {
            "levels": LEVEL_NAMES,
            "matrix": _matrix(b.loc[idx, "complexity_level"], c.loc[idx, "complexity_level"]),
        }
    cost_delta = c["cost_estimate_usd"].to_numpy(float) - b["cost_estimate_usd"].to_numpy(float)
    changed = _changed(b, c, diff, rb_rank, rc_rank, cost_delta)
    return ComparisonResult(
        candidate_config_hash=cand_hash,
        queries=n,
        matched=int((~diff).sum()),
        mismatched=int(diff.sum()),
        transition={
            "levels": LEVEL_NAMES,
            "matrix": _matrix(b["complexity_level"], c["complexity_level"]),
        },
        cost_delta_usd=float(cost_delta.sum()),
        latency_delta_ms_mean=float(
            (c["latency_estimate_ms"].to_numpy() - b["latency_estimate_ms"].to_numpy()).mean()
        )
        if n
        else 0.0,
        mismatch_reasons=dict(reasons.most_common()),
        mismatch_by_field=by_field,
        flips=flips,
        transition_by_domain=by_domain,
        changed=changed.head(CHANGED_LISTED).to_dict(orient="records"),
        changed_total=int(diff.sum()),
        paired_tests=[t.to_dict() for t in paired_tests(b, c, rb_rank, rc_rank, labels)],
    )


def changed_decisions(base: pd.DataFrame, candidate: pd.DataFrame) -> pd.DataFrame:
    """Every changed decision (query id and hash, never text), most consequential first."""
    cols = ["query_id", *COMPARED, "cost_estimate_usd"]
    extra = ["query_hash"] if "query_hash" in base else []
    b = base[cols + extra].set_index("query_id")
    c = candidate[cols].set_index("query_id").loc[b.index]
    diff = np.zeros(len(b), dtype=bool)
    for col in COMPARED:
        diff |= b[col].astype(str).to_numpy() != c[col].astype(str).to_numpy()
    cost_delta = c["cost_estimate_usd"].to_numpy(float) - b["cost_estimate_usd"].to_numpy(float)
    return _changed(
        b, c, diff, routed_rank(b.reset_index()), routed_rank(c.reset_index()), cost_delta
    )


def _changed(b, c, diff, rb_rank, rc_rank, cost_delta) -> pd.DataFrame:
    """Changed decisions, most consequential first: downgrades (largest drop first), then
    upgrades, then same-level changes; ties by the size of the cost change."""
    idx = np.flatnonzero(diff)
    if not len(idx):
        return pd.DataFrame(columns=["query_id", "query_hash", "direction"])
    step = (rc_rank - rb_rank)[idx]
    direction = np.where(step < 0, "downgrade", np.where(step > 0, "upgrade", "same level"))
    out = pd.DataFrame(
        {
            "query_id": b.index[idx].astype(str),
            "query_hash": b["query_hash"].to_numpy()[idx] if "query_hash" in b else None,
            "direction": direction,
            "level_step": step.astype(int),
            "baseline_level": b["complexity_level"].astype(str).to_numpy()[idx],
            "candidate_level": c["complexity_level"].astype(str).to_numpy()[idx],
            "baseline_model": b["model"].astype(str).to_numpy()[idx],
            "candidate_model": c["model"].astype(str).to_numpy()[idx],
            "domain": b["domain"].astype(str).to_numpy()[idx],
            "candidate_domain": c["domain"].astype(str).to_numpy()[idx],
            "cost_delta_usd": np.round(cost_delta[idx], 8),
        }
    )
    rank = np.where(step < 0, 0, np.where(step > 0, 1, 2))
    order = np.lexsort(
        (out["query_id"].to_numpy(), -np.abs(out["cost_delta_usd"].to_numpy()), -np.abs(step), rank)
    )
    return out.iloc[order].reset_index(drop=True)


# (metric, column, label): yes/no per query -> McNemar; amounts -> paired bootstrap (statistic).
PAIRED_FLAGS = (
    ("borderline_rate", "borderline", "Borderline rate"),
    ("upscale_rate", "upscaled", "Upscale rate"),
)
PAIRED_AMOUNTS = (
    ("cost_per_query_usd", "cost_estimate_usd", "Estimated cost per query", "mean"),
    ("latency_estimate_ms", "latency_estimate_ms", "Mean latency estimate", "mean"),
    ("median_confidence", "confidence_overall", "Median overall confidence", "median"),
)


def paired_tests(b, c, rb_rank, rc_rank, labels: pd.DataFrame | None) -> list[stats.PairedTest]:
    """Is each difference real? McNemar for yes/no per query, paired bootstrap for amounts."""
    pairs = [
        (metric, b[col].to_numpy(bool), c[col].to_numpy(bool), label)
        for metric, col, label in PAIRED_FLAGS
        if col in b
    ]
    if labels is not None and "expected_level" in labels:
        lab = labels.set_index("query_id")["expected_level"].reindex(b.index)
        known = lab.isin(LEVEL_NAMES).to_numpy()
        if known.any():
            exp = lab[known].map({n: i for i, n in enumerate(LEVEL_NAMES)}).to_numpy()
            rb, rc = rb_rank[known], rc_rank[known]
            pairs.append(
                ("downgrade_rate", rb < exp, rc < exp, "Downgrade rate against the labels")
            )
            pairs.append(("overpay_rate", rb > exp, rc > exp, "Overpay rate against the labels"))
    tests = [stats.mcnemar(*p) for p in pairs]
    tests += [
        stats.paired_bootstrap(
            metric, b[col].to_numpy(float), c[col].to_numpy(float), label, stat=stat
        )
        for metric, col, label, stat in PAIRED_AMOUNTS
        if col in b
    ]
    return tests


def config_diff(baseline: Any, candidate: Any) -> list[dict]:
    """Every field that differs between two router configs, as dotted paths (catalog entries are
    keyed by model name, so a reordered catalog is no change)."""
    a = _flatten(baseline.model_dump(mode="json"))
    b = _flatten(candidate.model_dump(mode="json"))
    out = []
    for path in sorted(set(a) | set(b)):
        va, vb = a.get(path), b.get(path)
        if va != vb:
            out.append({"path": path, "baseline": va, "candidate": vb})
    return out


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, dict) and "name" in v for v in value)
    ):
        out = {}
        for v in value:
            out.update(
                _flatten({k: x for k, x in v.items() if k != "name"}, f"{prefix}[{v['name']}]")
            )
        return out
    return {prefix: value}
