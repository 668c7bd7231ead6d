"""Deterministic replay: a fresh router must reproduce stored decisions bit for bit."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from router.decision import DECISION_COLUMNS


@dataclass
class DeterminismResult:
    sample: int
    matched: int
    mismatched: int
    rate: float
    mismatched_fields: dict[str, int]

    def to_dict(self) -> dict:
        return asdict(self)


def sample_indices(
    n: int, *, fraction: float = 0.01, minimum: int = 1000, seed: int = 0
) -> np.ndarray:
    """A seeded sample: ``fraction`` of the rows, at least ``minimum`` (or all when fewer)."""
    k = min(n, max(minimum, int(np.ceil(n * fraction))))
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def compare_replay(stored: pd.DataFrame, replayed: pa.Table) -> DeterminismResult:
    """Compare every decision column of the replayed rows with the stored rows (by decision_id)."""
    r = replayed.to_pandas().set_index("decision_id")
    s = stored.set_index("decision_id")
    common = r.index.intersection(s.index)
    missing = len(r) - len(common)
    fields: Counter[str] = Counter()
    bad = np.zeros(len(common), dtype=bool)
    for col in DECISION_COLUMNS:
        if col == "decision_id":
            continue
        a = s.loc[common, col]
        b = r.loc[common, col]
        if col == "ts":
            a = pd.to_datetime(a, utc=True)
            b = pd.to_datetime(b, utc=True)
        same = (a.to_numpy() == b.to_numpy()) | (a.isna().to_numpy() & b.isna().to_numpy())
        fields[col] += int((~same).sum())
        bad |= ~same
    mismatched = int(bad.sum()) + missing
    if missing:
        fields["<not stored>"] = missing
    total = len(r)
    return DeterminismResult(
        sample=total,
        matched=total - mismatched,
        mismatched=mismatched,
        rate=(total - mismatched) / total if total else 1.0,
        mismatched_fields={k: v for k, v in fields.items() if v},
    )
