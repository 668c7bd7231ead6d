"""Shadow comparison: the same queries routed by the production config and a candidate config.

Comparing a config with itself must give zero mismatches — that is the noise baseline, and a
test holds it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from router.decision import LEVELS, split_reasons

LEVEL_NAMES = [lv.value for lv in LEVELS]
COMPARED = ("complexity_level", "model", "domain", "upscaled")


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

    def to_dict(self) -> dict:
        return asdict(self)


def compare_decisions(
    base: pd.DataFrame, candidate: pd.DataFrame, candidate_config_hash: str | None = None
) -> ComparisonResult:
    """Join on query_id; a row mismatches when level, model, domain or upscale differ."""
    cols = ["query_id", *COMPARED, "reason_codes", "cost_estimate_usd", "latency_estimate_ms"]
    b = base[cols].set_index("query_id")
    c = candidate[cols].set_index("query_id")
    missing = b.index.difference(c.index)
    if len(missing):
        raise ValueError(
            f"candidate routing lacks {len(missing)} query ids present in the baseline"
        )
    c = c.loc[b.index]
    diff = np.zeros(len(b), dtype=bool)
    by_field = {}
    for col in COMPARED:
        d = b[col].to_numpy() != c[col].to_numpy()
        by_field[col] = int(d.sum())
        diff |= d
    levels = pd.Categorical(b["complexity_level"], categories=LEVEL_NAMES)
    cand_levels = pd.Categorical(c["complexity_level"], categories=LEVEL_NAMES)
    matrix = pd.crosstab(levels, cand_levels, dropna=False).reindex(
        index=LEVEL_NAMES, columns=LEVEL_NAMES, fill_value=0
    )
    reasons: Counter[str] = Counter()
    for rb, rc in zip(b["reason_codes"][diff], c["reason_codes"][diff], strict=True):
        # The reasons that differ between the two decisions explain the mismatch.
        reasons.update(set(split_reasons(rb)) ^ set(split_reasons(rc)))
    cand_hash = candidate_config_hash
    if cand_hash is None:
        cand_hash = (
            str(candidate["config_hash"].iloc[0]) if "config_hash" in candidate and len(c) else ""
        )
    return ComparisonResult(
        candidate_config_hash=cand_hash,
        queries=len(b),
        matched=int((~diff).sum()),
        mismatched=int(diff.sum()),
        transition={"levels": LEVEL_NAMES, "matrix": matrix.to_numpy().tolist()},
        cost_delta_usd=float(c["cost_estimate_usd"].sum() - b["cost_estimate_usd"].sum()),
        latency_delta_ms_mean=float(
            (c["latency_estimate_ms"].to_numpy() - b["latency_estimate_ms"].to_numpy()).mean()
        )
        if len(b)
        else 0.0,
        mismatch_reasons=dict(reasons.most_common()),
        mismatch_by_field=by_field,
    )
