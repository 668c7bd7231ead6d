"""Readiness verdict, shadow comparison, labelled evaluation and deterministic replay."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
import yaml

from router.config import default_config_path, load_config
from router.engine import Router
from router.replay import compare_replay, sample_indices
from router.toggle import resolve_toggle
from telemetry.comparison import compare_decisions
from telemetry.labels import evaluate_labels
from telemetry.readiness import Measurement, ReadinessError, evaluate, load_criteria
from telemetry.stats import quantile_interval, wilson

TS = datetime(2026, 11, 16, 12, tzinfo=UTC)
TEXTS = [
    "hi",
    "thanks!",
    "what is the capital of Peru",
    "Write a python function that parses ISO dates.",
    "Prove that there are infinitely many primes.",
    "Design a multi-region key-value store with strong consistency; discuss trade-offs.",
    "Tom has 3 apples and buys 5 more. How many apples does he have?",
    "generate an image of a lighthouse",
]


@pytest.fixture(scope="module")
def router() -> Router:
    return Router.from_config(semantic=False, hash_key=b"k", toggle=resolve_toggle(None))


@pytest.fixture(scope="module")
def decisions(router) -> pd.DataFrame:
    return router.route_batch(TEXTS, ts=TS, run_id="r").to_pandas()


GOOD_VALUES = {
    "quality_pass_rate": 1.0,
    "determinism_rate": 1.0,
    "borderline_rate": 0.08,
    "max_confidence_drop_pct": 1.0,
    "median_confidence": 0.9,
    "latency_p95_interactive_ms": 150.0,
    "downgrade_rate": 0.02,
    "noisy_rule_count": 0,
}


def exact(values: dict) -> dict:
    """Measurements without sampling uncertainty and a large n: the threshold alone decides."""
    return {k: Measurement(v, 10_000, exact=True) for k, v in values.items()}


GOOD = exact(GOOD_VALUES)


def test_all_criteria_met_is_go():
    v = evaluate(GOOD)
    assert v.go and v.label == "go" and v.exit_code == 0
    assert all(c.status == "pass" for c in v.criteria)


@pytest.mark.parametrize(
    ("measure", "value"),
    [
        ("quality_pass_rate", 6 / 7),
        ("determinism_rate", 0.999),
        ("borderline_rate", 0.16),
        ("max_confidence_drop_pct", 5.5),
        ("median_confidence", 0.84),
        ("latency_p95_interactive_ms", 201.0),
        ("downgrade_rate", 0.051),
    ],
)
def test_one_failed_critical_criterion_is_no_go(measure, value):
    v = evaluate(exact(GOOD_VALUES | {measure: value}))
    assert v.label == "no-go" and v.exit_code == 2
    failed = [c for c in v.criteria if c.status == "fail"]
    assert len(failed) == 1 and failed[0].value == pytest.approx(value)


def test_a_failed_advisory_criterion_never_decides():
    v = evaluate(exact(GOOD_VALUES | {"noisy_rule_count": 1}))
    by_id = {c.id: c for c in v.criteria}
    assert by_id["noisy_rules"].status == "fail" and by_id["noisy_rules"].severity == "advisory"
    assert v.label == "go"


def test_missing_measure_fails_closed_but_optional_is_not_applicable():
    v = evaluate(
        {k: val for k, val in GOOD.items() if k not in {"determinism_rate", "downgrade_rate"}}
    )
    by_id = {c.id: c for c in v.criteria}
    assert by_id["determinism"].status == "fail" and by_id["determinism"].measured == "not measured"
    assert (
        by_id["downgrade_rate"].status == "not_applicable"
        and by_id["downgrade_rate"].measured == "not applicable"
    )
    assert v.label == "no-go"


def _borderline(hits: int, n: int) -> dict:
    w = wilson(hits, n)
    return GOOD | {"borderline_rate": Measurement(w.value, w.n, w.ci_low, w.ci_high, w.method)}


def test_an_interval_straddling_the_threshold_is_inconclusive_and_more_data_settles_it():
    # 14 % of 300 queries: the Wilson interval (10.5 %, 18.4 %) straddles the 15 % threshold.
    v = evaluate(_borderline(42, 300), total_queries=300)
    c = {c.id: c for c in v.criteria}["borderline_rate"]
    assert c.status == "inconclusive" and c.ci_low < 0.15 < c.ci_high
    assert v.label == "inconclusive" and v.exit_code == 3
    assert c.more_queries and c.more_queries > 1000  # roughly how many more would settle it
    assert "borderline_rate" in v.reason
    # The same 14 % on 30,000 queries: the whole interval is below 15 % -> pass.
    more = evaluate(_borderline(4200, 30_000))
    assert {c.id: c for c in more.criteria}["borderline_rate"].status == "pass"
    assert more.label == "go"
    # 17 % on 30,000: the whole interval is above -> fail.
    worse = evaluate(_borderline(5100, 30_000))
    assert {c.id: c for c in worse.criteria}["borderline_rate"].status == "fail"
    assert worse.label == "no-go"


def test_below_min_samples_is_inconclusive_even_when_the_value_looks_fine():
    w = wilson(2, 50)  # 4 %: fine, but 50 < min_samples 200
    v = evaluate(GOOD | {"borderline_rate": Measurement(w.value, w.n, w.ci_low, w.ci_high)})
    c = {c.id: c for c in v.criteria}["borderline_rate"]
    assert c.status == "inconclusive" and "below" in c.reason and c.more_queries == 150


def test_a_measurement_without_data_is_inconclusive_never_a_pass():
    v = evaluate(GOOD | {"noisy_rule_count": Measurement(0.0, 0, exact=True, no_data="no data")})
    c = {c.id: c for c in v.criteria}["noisy_rules"]
    assert c.status == "inconclusive"


def test_wilson_interval_matches_the_formula_and_handles_the_edges():
    w = wilson(0, 100)
    assert w.ci_low == 0.0 and 0.03 < w.ci_high < 0.04  # rule-of-three-like upper bound
    w = wilson(100, 100)
    assert w.ci_high == 1.0 and 0.96 < w.ci_low < 0.97
    w = wilson(50, 100)
    assert w.ci_low == pytest.approx(0.4038, abs=1e-4) and w.ci_high == pytest.approx(
        0.5962, abs=1e-4
    )


def test_quantile_interval_covers_the_true_median():
    rng = np.random.default_rng(1)
    x = rng.normal(10, 2, 2000)
    q = quantile_interval(x, 0.5)
    assert q.ci_low < 10 < q.ci_high and q.ci_high - q.ci_low < 0.4


def test_bad_criteria_file_names_file_and_field(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "criteria": [
                    {
                        "id": "x",
                        "description": "d",
                        "measure": "m",
                        "comparator": "=~",
                        "threshold": 1,
                    }
                ]
            }
        )
    )
    with pytest.raises(ReadinessError) as exc:
        load_criteria(p)
    assert str(p) in str(exc.value) and "comparator" in str(exc.value)


def test_comparing_a_config_with_itself_gives_zero_mismatches(router, decisions):
    again = Router.from_config(semantic=False, hash_key=b"k", toggle=resolve_toggle(None))
    other = again.route_batch(TEXTS, ts=TS, run_id="r").to_pandas()
    res = compare_decisions(decisions, other)
    assert res.mismatched == 0 and res.matched == len(TEXTS)
    assert sum(map(sum, res.transition["matrix"])) == len(TEXTS)
    assert res.cost_delta_usd == 0


def test_a_stricter_candidate_shows_transitions_and_reasons(tmp_path, decisions):
    raw = yaml.safe_load(default_config_path().read_text())
    raw["levels"].update(SIMPLE=0.1, MODERATE=0.25, COMPLEX=0.4, EXPERT=0.55)
    p = tmp_path / "candidate.yaml"
    p.write_text(yaml.safe_dump(raw, sort_keys=False))
    cand = Router.from_config(p, semantic=False, hash_key=b"k", toggle=resolve_toggle(None))
    res = compare_decisions(decisions, cand.route_batch(TEXTS, ts=TS, run_id="r").to_pandas())
    assert res.mismatched > 0
    m = res.transition["matrix"]
    above_diagonal = sum(m[i][j] for i in range(5) for j in range(5) if j > i)
    assert above_diagonal > 0  # lower thresholds move queries up
    assert res.cost_delta_usd > 0
    assert res.candidate_config_hash == cand.config_hash


def test_labelled_evaluation_counts_downgrades_and_overpay(decisions):
    levels = ["TRIVIAL", "SIMPLE", "MODERATE", "COMPLEX", "EXPERT"]
    routed = decisions["complexity_level"].map(levels.index) + decisions["upscaled"].astype(int)
    # Label every query two levels above what it got (or EXPERT): all downgrades except at the top.
    expected = [levels[min(4, r + 2)] for r in routed]
    labels = pd.DataFrame(
        {
            "query_id": decisions["query_id"],
            "expected_level": expected,
            "expected_domain": decisions["domain"],
        }
    )
    res = evaluate_labels(decisions, labels)
    should_down = sum(1 for r in routed if min(4, r + 2) > r)
    assert res.downgrade_rate == pytest.approx(should_down / len(decisions))
    assert res.overpay_rate == 0.0
    assert res.domain_accuracy == 1.0
    assert sum(map(sum, res.confusion["matrix"])) == len(decisions)


def test_served_model_cost_is_priced_from_the_catalog(decisions):
    cfg = load_config()
    labels = pd.DataFrame({"query_id": decisions["query_id"], "served_model": "deepseek-r1"})
    res = evaluate_labels(decisions, labels, cfg)
    assert res.served["rows"] == len(decisions) and res.served["unknown_models"] == 0
    assert res.served["served_usd"] > res.served["router_usd"]  # all-frontier costs more


def test_unlabelled_corpus_gives_no_labelled_section(decisions):
    assert evaluate_labels(decisions, pd.DataFrame({"query_id": decisions["query_id"]})) is None


def test_replay_detects_a_changed_field(router, decisions):
    replayed = router.route_batch(TEXTS, ts=TS, run_id="r")
    ok = compare_replay(decisions, replayed)
    assert ok.rate == 1.0 and ok.mismatched == 0
    tampered = decisions.copy()
    tampered.loc[2, "confidence_overall"] += 1e-9
    bad = compare_replay(tampered, replayed)
    assert bad.mismatched == 1 and bad.mismatched_fields == {"confidence_overall": 1}


def test_determinism_sample_is_one_percent_or_at_least_a_thousand():
    assert len(sample_indices(50_000)) == 1000
    assert len(sample_indices(500_000)) == 5000
    assert len(sample_indices(300)) == 300
    assert (sample_indices(50_000, seed=3) == sample_indices(50_000, seed=3)).all()
