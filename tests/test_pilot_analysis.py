"""Readiness verdict, shadow comparison, labelled evaluation and deterministic replay."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
import yaml

from router.config import default_config_path, load_config
from router.engine import Router
from router.replay import compare_replay, sample_indices
from router.toggle import resolve_toggle
from telemetry.comparison import compare_decisions
from telemetry.labels import evaluate_labels
from telemetry.readiness import ReadinessError, evaluate, load_criteria

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


GOOD = {
    "quality_pass_rate": 1.0,
    "determinism_rate": 1.0,
    "borderline_rate": 0.08,
    "max_confidence_drop_pct": 1.0,
    "median_confidence": 0.9,
    "latency_p95_interactive_ms": 150.0,
    "downgrade_rate": 0.02,
    "noisy_rule_count": 0,
}


def test_all_criteria_met_is_go():
    v = evaluate(GOOD)
    assert v.go and v.label == "go"
    assert all(c.passed for c in v.criteria)


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
        ("noisy_rule_count", 1),
    ],
)
def test_one_failed_criterion_is_no_go(measure, value):
    v = evaluate(GOOD | {measure: value})
    assert not v.go
    failed = [c for c in v.criteria if c.passed is False]
    assert len(failed) == 1 and failed[0].value == pytest.approx(value)


def test_missing_measure_fails_closed_but_optional_is_not_applicable():
    v = evaluate(
        {k: val for k, val in GOOD.items() if k not in {"determinism_rate", "downgrade_rate"}}
    )
    by_id = {c.id: c for c in v.criteria}
    assert by_id["determinism"].passed is False and by_id["determinism"].measured == "not measured"
    assert (
        by_id["downgrade_rate"].passed is None
        and by_id["downgrade_rate"].measured == "not applicable"
    )
    assert not v.go


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
