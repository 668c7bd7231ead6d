"""Routing quality against labels: confusion matrix, downgrade and overpay rates, domain accuracy,
and the cost of the router's choices against what production actually served."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from router.config import RouterConfig
from router.decision import LEVELS

LEVEL_NAMES = [lv.value for lv in LEVELS]


@dataclass
class LabelledResult:
    rows: int
    confusion: dict
    level_accuracy: float | None
    downgrade_rate: float | None
    overpay_rate: float | None
    domain_accuracy: float | None
    per_domain_accuracy: dict[str, float]
    served: dict | None
    level_rows: int = 0
    downgrades: int | None = None
    overpays: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def routed_rank(decisions: pd.DataFrame) -> np.ndarray:
    """The level whose model serves the query: the scored level, one up when upscaled."""
    rank = decisions["complexity_level"].map({n: i for i, n in enumerate(LEVEL_NAMES)}).to_numpy()
    return rank + decisions["upscaled"].to_numpy().astype(int)


def evaluate_labels(
    decisions: pd.DataFrame, labels: pd.DataFrame, config: RouterConfig | None = None
) -> LabelledResult | None:
    """``labels`` has query_id and any of expected_level, expected_domain, served_model.

    Downgrade: served below the expected level (the seed's 95 % no-downgrade guarantee is
    downgrade <= 5 %). Overpay: served above it.
    """
    have = [c for c in ("expected_level", "expected_domain", "served_model") if c in labels.columns]
    if not have:
        return None
    j = decisions.merge(labels[["query_id", *have]], on="query_id", how="inner")
    result = LabelledResult(
        rows=len(j),
        confusion={"levels": LEVEL_NAMES, "matrix": []},
        level_accuracy=None,
        downgrade_rate=None,
        overpay_rate=None,
        domain_accuracy=None,
        per_domain_accuracy={},
        served=None,
    )
    if "expected_level" in j.columns:
        lj = j[j["expected_level"].isin(LEVEL_NAMES)]
        if len(lj):
            exp = lj["expected_level"].map({n: i for i, n in enumerate(LEVEL_NAMES)}).to_numpy()
            got = routed_rank(lj)
            scored = (
                lj["complexity_level"].map({n: i for i, n in enumerate(LEVEL_NAMES)}).to_numpy()
            )
            m = np.zeros((len(LEVEL_NAMES), len(LEVEL_NAMES)), dtype=int)
            np.add.at(m, (exp, scored), 1)
            result.confusion["matrix"] = m.tolist()
            result.level_accuracy = float((scored == exp).mean())
            result.downgrade_rate = float((got < exp).mean())
            result.overpay_rate = float((got > exp).mean())
            result.level_rows = int(len(lj))
            result.downgrades = int((got < exp).sum())
            result.overpays = int((got > exp).sum())
    if "expected_domain" in j.columns:
        dj = j[j["expected_domain"].notna()]
        if len(dj):
            ok = dj["domain"].to_numpy() == dj["expected_domain"].to_numpy()
            result.domain_accuracy = float(ok.mean())
            per = pd.Series(ok).groupby(dj["expected_domain"].to_numpy()).mean()
            result.per_domain_accuracy = {str(k): float(v) for k, v in per.items()}
    if "served_model" in j.columns and config is not None:
        sj = j[j["served_model"].notna()]
        if len(sj):
            prices = {m.name: (m.price_per_1k_input, m.price_per_1k_output) for m in config.models}
            known = sj["served_model"].isin(list(prices))
            sk = sj[known]
            # Same token counts as the router's estimate, priced at the model production served.
            out_tok = _router_output_tokens(sk, config)
            in_tok = np.maximum(sk["tokens_estimate"].to_numpy().astype(float) - out_tok, 0.0)
            in_price = sk["served_model"].map(lambda m: prices[m][0]).to_numpy(dtype=float)
            out_price = sk["served_model"].map(lambda m: prices[m][1]).to_numpy(dtype=float)
            served_cost = float((in_tok / 1000 * in_price + out_tok / 1000 * out_price).sum())
            result.served = {
                "rows": int(len(sj)),
                "unknown_models": int((~known).sum()),
                "router_usd": float(sk["cost_estimate_usd"].sum()),
                "served_usd": served_cost,
            }
    return result


def _router_output_tokens(d: pd.DataFrame, config: RouterConfig) -> np.ndarray:
    """The output-token part of the router's estimate (expected tokens, capped by the model)."""
    exp = config.routing.expected_output_tokens
    caps = {m.name: m.max_output_tokens for m in config.models}
    ranks = np.minimum(routed_rank(d), len(LEVEL_NAMES) - 1)
    expected = np.array([exp[LEVEL_NAMES[r]] for r in ranks], dtype=float)
    cap = d["model"].map(caps).to_numpy(dtype=float)
    return np.minimum(expected, cap)
