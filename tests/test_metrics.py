"""Per-bucket metrics: every expected number is recomputed from the hand-built rows with plain
Python, never typed in, so the test states the definition rather than a snapshot."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from router.decision import DECISION_COLUMNS, DOMAINS, LEVELS
from telemetry.metrics import (
    DOMAIN_COLUMNS,
    KNOWN_METRICS,
    LEVEL_COLUMNS,
    compute_metrics,
    daily_summary,
)

T0 = pd.Timestamp("2026-03-02 00:00", tz="UTC")


def decision(ts: pd.Timestamp, **over) -> dict:
    row = {c: None for c in DECISION_COLUMNS}
    row.update(
        decision_id="d",
        run_id="r",
        query_id="q",
        query_hash="0" * 64,
        ts=ts,
        tenant="t",
        complexity_level="SIMPLE",
        complexity_score=0.3,
        borderline=False,
        upscaled=False,
        domain="general",
        domain_confidence=0.9,
        model="m-small",
        model_tier="small",
        execution_style="streaming",
        confidence_complexity=0.9,
        confidence_model_fit=0.9,
        confidence_execution_fit=0.9,
        confidence_overall=0.9,
        reason_codes="LEVEL_FROM_RULES,DECISION_ONLY_MODE",
        latency_estimate_ms=120.0,
        cost_estimate_usd=0.001,
        tokens_estimate=100,
        execution_mode="decision-only",
        execution_mode_active=False,
        simulated=True,
        outcome="not_executed",
        actual_latency_ms=None,
        actual_cost_usd=None,
        error_code=None,
        privacy_required=False,
        router_version="1",
        config_hash="c",
        decision_schema_version="1.0.0",
    )
    row.update(over)
    return row


def frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    for col in ("actual_latency_ms", "actual_cost_usd"):
        df[col] = df[col].astype(float)
    return df


@pytest.fixture
def hand_built() -> pd.DataFrame:
    """Hour 0: mixed decision-only and executed rows; hour 1: empty; hour 2: two rows."""
    h0 = T0 + pd.Timedelta(minutes=5)
    h2 = T0 + pd.Timedelta(hours=2, minutes=30)
    rows = [
        decision(h0, borderline=True, upscaled=True, confidence_overall=0.95, model_tier="tiny"),
        decision(h0, borderline=True, confidence_overall=0.70, latency_estimate_ms=300.0),
        decision(
            h0,
            complexity_level="EXPERT",
            domain="coding",
            model_tier="large",
            latency_estimate_ms=2500.0,
            confidence_overall=0.80,
            outcome="ok",
            simulated=False,
            actual_latency_ms=2100.0,
            actual_cost_usd=0.02,
        ),
        decision(
            h0,
            model_tier="medium",
            latency_estimate_ms=450.0,
            outcome="timeout",
            simulated=False,
            actual_latency_ms=9000.0,
            actual_cost_usd=None,
            cost_estimate_usd=0.004,
        ),
        decision(
            h0,
            outcome="rejected",
            actual_latency_ms=0.0,  # the plane records 0 ms: no model was called
            reason_codes="LEVEL_FROM_RULES,EXECUTION_MODE_INVALID",
            confidence_overall=0.60,
        ),
        decision(h0, outcome="fallback", actual_latency_ms=800.0, actual_cost_usd=0.003),
        decision(h2, complexity_level="TRIVIAL", domain="math", confidence_overall=0.99),
        decision(h2, complexity_level="COMPLEX", model_tier="large", confidence_overall=0.85),
    ]
    return frame(rows)


def oracle(records: list[dict], tiers=("tiny", "small", "medium")) -> dict[str, float]:
    """The definitions in telemetry/metrics.py, written the slow and obvious way."""
    n = len(records)
    executed = [r for r in records if r["outcome"] != "not_executed"]
    est = [r["latency_estimate_ms"] for r in records if r["model_tier"] in tiers]
    called = [
        r
        for r in records
        if r["outcome"] in ("ok", "fallback", "error", "timeout")
        and r["actual_latency_ms"] is not None
        and not math.isnan(r["actual_latency_ms"])
    ]
    act = [r["actual_latency_ms"] for r in called]
    per_tier = [
        float(np.quantile([r["actual_latency_ms"] for r in called if r["model_tier"] == t], 0.95))
        for t in {r["model_tier"] for r in called}
    ]

    def cost(r: dict) -> float:
        actual = r["actual_cost_usd"]
        known = actual is not None and not math.isnan(actual)
        return actual if r["outcome"] != "not_executed" and known else r["cost_estimate_usd"]

    def share_exec(pred) -> float:
        return sum(pred(r) for r in executed) / len(executed) if executed else math.nan

    out = {
        "queries": n,
        "executed": len(executed),
        "borderline_rate": sum(r["borderline"] for r in records) / n,
        "upscale_rate": sum(r["upscaled"] for r in records) / n,
        "confidence_mean": sum(r["confidence_overall"] for r in records) / n,
        "confidence_median": float(np.median([r["confidence_overall"] for r in records])),
        "latency_estimate_p95_ms": float(np.quantile(est, 0.95)) if est else math.nan,
        "actual_latency_p95_ms": float(np.quantile(act, 0.95)) if act else math.nan,
        "actual_latency_p95_worst_tier_ms": max(per_tier) if per_tier else math.nan,
        "cost_per_query_usd": sum(cost(r) for r in records) / n,
        "error_rate": share_exec(lambda r: r["outcome"] in ("error", "timeout", "rejected")),
        "rejected_rate": share_exec(lambda r: r["outcome"] == "rejected"),
        "fallback_rate": share_exec(lambda r: r["outcome"] == "fallback"),
        "executed_rate": len(executed) / n,
        "misconfigured_toggle_count": sum(
            "EXECUTION_MODE_INVALID" in r["reason_codes"].split(",") for r in records
        ),
        "upstream_calls": sum(not r["simulated"] for r in records),
    }
    for lvl in LEVELS:
        out[f"level_{lvl.value}"] = sum(r["complexity_level"] == lvl.value for r in records) / n
    for d in DOMAINS:
        out[f"domain_{d.value}"] = sum(r["domain"] == d.value for r in records) / n
    return out


def assert_row_matches(row: pd.Series, expected: dict[str, float]) -> None:
    for key, want in expected.items():
        got = row[key]
        if isinstance(want, float) and math.isnan(want):
            assert math.isnan(got), f"{key}: expected NaN, got {got}"
        else:
            assert got == pytest.approx(want), f"{key}: expected {want}, got {got}"


def test_rates_match_their_definitions_on_a_hand_built_frame(hand_built):
    m = compute_metrics(hand_built, "1h")
    records = hand_built.to_dict("records")
    for bucket in (T0, T0 + pd.Timedelta(hours=2)):
        in_bucket = [r for r in records if bucket <= r["ts"] < bucket + pd.Timedelta(hours=1)]
        assert_row_matches(m.loc[bucket], oracle(in_bucket))


def test_the_frame_exercises_every_definition(hand_built):
    """Guards the test above against a fixture that makes every rate trivially 0 or NaN."""
    row = compute_metrics(hand_built, "1h").loc[T0]
    for key in ("error_rate", "rejected_rate", "fallback_rate", "borderline_rate"):
        assert 0 < row[key] < 1, key
    assert row["misconfigured_toggle_count"] == 1
    assert row["upstream_calls"] == 2


def test_rejected_rows_never_called_a_model_so_they_do_not_count_in_latency(hand_built):
    row = compute_metrics(hand_built, "1h").loc[T0]
    called = hand_built[hand_built.outcome.isin(["ok", "fallback", "error", "timeout"])]
    called = called[called.ts < T0 + pd.Timedelta(hours=1)]
    assert row["actual_latency_p95_ms"] == pytest.approx(called.actual_latency_ms.quantile(0.95))
    worst = called.groupby("model_tier").actual_latency_ms.quantile(0.95).max()
    assert row["actual_latency_p95_worst_tier_ms"] == pytest.approx(worst)
    assert row["actual_latency_p95_worst_tier_ms"] > row["actual_latency_p95_ms"]


def test_interactive_tiers_select_the_rows_of_the_estimate_percentile(hand_built):
    m = compute_metrics(hand_built, "1h", interactive_tiers=("large",))
    records = hand_built.to_dict("records")
    h0 = [r for r in records if r["ts"] < T0 + pd.Timedelta(hours=1)]
    assert m.loc[T0, "latency_estimate_p95_ms"] == pytest.approx(
        oracle(h0, tiers=("large",))["latency_estimate_p95_ms"]
    )


def test_empty_buckets_are_present_with_zero_queries_and_nan_rates(hand_built):
    m = compute_metrics(hand_built, "1h")
    assert list(m.index) == [T0 + pd.Timedelta(hours=h) for h in range(3)]
    empty = m.loc[T0 + pd.Timedelta(hours=1)]
    assert empty["queries"] == 0
    for col in ("misconfigured_toggle_count", "upstream_calls", "telemetry_write_failures"):
        assert empty[col] == 0
    for col in ("borderline_rate", "confidence_mean", "error_rate", "actual_latency_p95_ms"):
        assert math.isnan(empty[col]), col
    assert m.index.tz is not None and str(m.index.tz) == "UTC"


def test_every_known_metric_is_a_column_and_mix_columns_sum_to_one(hand_built):
    m = compute_metrics(hand_built, "1h")
    assert set(KNOWN_METRICS) <= set(m.columns)
    full = m[m["queries"] > 0]
    assert np.allclose(full[list(LEVEL_COLUMNS)].sum(axis=1), 1.0)
    assert np.allclose(full[list(DOMAIN_COLUMNS)].sum(axis=1), 1.0)


def test_start_and_end_widen_the_range_to_show_silent_minutes(hand_built):
    start = T0 - pd.Timedelta(hours=2)
    end = T0 + pd.Timedelta(hours=5)  # exclusive: last bucket starts at +4h
    m = compute_metrics(hand_built, "1h", start=start, end=end)
    assert m.index[0] == start and m.index[-1] == T0 + pd.Timedelta(hours=4)
    assert int(m["queries"].sum()) == len(hand_built)


def test_no_rows_and_a_window_gives_a_frame_of_empty_buckets():
    empty = frame([decision(T0)]).iloc[0:0]
    m = compute_metrics(empty, "1min", start=T0, end=T0 + pd.Timedelta(minutes=3))
    assert len(m) == 3 and (m["queries"] == 0).all() and m["confidence_mean"].isna().all()


def test_confidence_drop_compares_with_the_previous_day():
    day1 = [0.9, 0.8, 1.0]
    day2 = [0.7, 0.8]
    rows = [decision(T0 + pd.Timedelta(hours=i), confidence_overall=c) for i, c in enumerate(day1)]
    rows += [
        decision(T0 + pd.Timedelta(days=1, hours=i), confidence_overall=c)
        for i, c in enumerate(day2)
    ]
    m = compute_metrics(frame(rows), "1D")
    m1, m2 = np.mean(day1), np.mean(day2)
    assert math.isnan(m["confidence_drop_pct"].iloc[0])  # no previous day yet
    assert m["confidence_drop_pct"].iloc[1] == pytest.approx(100 * (m1 - m2) / m1)
    assert m["confidence_drop_pct"].iloc[1] > 0  # positive means confidence fell


def test_hourly_confidence_drop_uses_the_query_weighted_24h_before_the_bucket():
    rng = np.random.default_rng(3)
    rows = []
    for h in range(30):
        for _ in range(int(rng.integers(1, 4))):
            ts = T0 + pd.Timedelta(hours=h, minutes=int(rng.integers(0, 60)))
            rows.append(decision(ts, confidence_overall=float(rng.uniform(0.6, 1.0))))
    df = frame(rows)
    m = compute_metrics(df, "1h")
    assert m["confidence_drop_pct"].iloc[:24].isna().all()  # the look-back is not complete yet
    for h in (24, 29):
        bucket = T0 + pd.Timedelta(hours=h)
        before = df[(df.ts >= bucket - pd.Timedelta(hours=24)) & (df.ts < bucket)]
        now = df[(df.ts >= bucket) & (df.ts < bucket + pd.Timedelta(hours=1))]
        base = before.confidence_overall.mean()
        want = 100 * (base - now.confidence_overall.mean()) / base
        assert m.loc[bucket, "confidence_drop_pct"] == pytest.approx(want)


def test_events_become_bucket_columns_and_extend_the_range(hand_built):
    events = pd.DataFrame(
        {
            "ts": pd.to_datetime(
                [
                    T0 + pd.Timedelta(minutes=1),
                    T0 + pd.Timedelta(minutes=2),
                    T0 + pd.Timedelta(hours=4),
                ],
                utc=True,
            ),
            "kind": ["telemetry_write_failure", "telemetry_write_failure", "spooled_rows"],
            "value": [1, 2, 40],
        }
    )
    m = compute_metrics(hand_built, "1h", events)
    assert m.loc[T0, "telemetry_write_failures"] == 3
    assert m.index[-1] == T0 + pd.Timedelta(hours=4)  # only an event there: still a bucket
    assert m.loc[T0 + pd.Timedelta(hours=4), "spooled_rows"] == 40
    assert m.loc[T0 + pd.Timedelta(hours=4), "queries"] == 0


def test_bad_event_kind_names_the_row():
    events = pd.DataFrame(
        {"ts": pd.to_datetime([T0], utc=True), "kind": ["Write Failure!"], "value": [1]}
    )
    with pytest.raises(ValueError, match="events row 0: kind 'Write Failure!'"):
        compute_metrics(frame([decision(T0)]), "1h", events)


def test_naive_timestamps_and_missing_columns_are_refused_with_the_reason(hand_built):
    naive = hand_built.assign(ts=hand_built["ts"].dt.tz_localize(None))
    with pytest.raises(ValueError, match="'ts' must be tz-aware UTC"):
        compute_metrics(naive)
    with pytest.raises(ValueError, match="missing column.*outcome"):
        compute_metrics(hand_built.drop(columns="outcome"))
    with pytest.raises(ValueError, match="not a fixed duration"):
        compute_metrics(hand_built, "1M")


def test_daily_summary_is_the_one_day_bucket_view(hand_built):
    d = daily_summary(hand_built)
    assert d.index.name == "day" and len(d) == 1
    assert d.iloc[0]["queries"] == len(hand_built)
    assert_row_matches(d.iloc[0], oracle(hand_built.to_dict("records")))


def test_bucket_boundaries_follow_the_frequency(hand_built):
    m = compute_metrics(hand_built, "30min")
    assert m.attrs["freq"] == str(pd.Timedelta("30min"))
    assert (m.index.minute % 30 == 0).all()
    assert int(m["queries"].sum()) == len(hand_built)
