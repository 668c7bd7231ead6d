"""The synthetic corpus: deterministic, realistic mix, traffic shape, and every bad-row kind."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from data import corpus, generate
from data.generate import CORPUS_COLUMNS, generate_corpus, write_corpus
from router.decision import DOMAINS, LEVELS


@pytest.fixture(scope="module")
def week() -> pa.Table:
    return generate_corpus(30_000, seed=11)


def _texts(table: pa.Table) -> list[str]:
    """Texts decoded leniently: bad-row tables hold invalid UTF-8 on purpose."""
    raw = pc.cast(table.column("text"), pa.large_binary()).to_pylist()
    return [None if b is None else b.decode("utf-8", "surrogatepass") for b in raw]


def test_same_seed_same_corpus_and_another_seed_differs():
    a = generate_corpus(3_000, seed=5)
    b = generate_corpus(3_000, seed=5)
    c = generate_corpus(3_000, seed=6)
    assert a.equals(b)
    assert not a.column("text").equals(c.column("text"))
    bad_a = generate_corpus(3_000, seed=5, bad_rows=0.01)
    bad_b = generate_corpus(3_000, seed=5, bad_rows=0.01)
    assert bad_a.equals(bad_b)


def test_columns_types_unique_ids_and_sorted_by_time(week: pa.Table):
    assert tuple(week.column_names) == CORPUS_COLUMNS
    assert week.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert pc.count_distinct(week.column("query_id")).as_py() == week.num_rows
    ts = week.column("ts").cast(pa.int64()).to_numpy()
    assert (np.diff(ts) >= 0).all()


def test_every_label_is_a_valid_level_and_domain(week: pa.Table):
    assert set(week.column("expected_level").to_pylist()) == {lvl.value for lvl in LEVELS}
    assert set(week.column("expected_domain").to_pylist()) == {d.value for d in DOMAINS}


def test_mix_is_mostly_easy_with_a_long_tail_of_hard_queries(week: pa.Table):
    n = week.num_rows
    levels = Counter(week.column("expected_level").to_pylist())
    share = {k: v / n for k, v in levels.items()}
    assert share["TRIVIAL"] + share["SIMPLE"] > 0.45
    assert 0.08 < share["COMPLEX"] + share["EXPERT"] < 0.25
    assert share["EXPERT"] < share["COMPLEX"] < share["MODERATE"]
    domains = Counter(week.column("expected_domain").to_pylist())
    assert domains.most_common(1)[0][0] == "general"
    assert all(domains[d.value] / n > 0.01 for d in DOMAINS)


def test_texts_are_varied_with_some_exact_repeats(week: pa.Table):
    texts = week.column("text")
    distinct = pc.count_distinct(texts).as_py() / week.num_rows
    assert 0.6 < distinct < 0.97  # tens of thousands of distinct texts, and popular repeats
    all_text = "\n".join(texts.to_pylist())
    for marker in ("set a timer for", "```", "Prove that", "generate an image of", "ROS 2"):
        assert marker in all_text


def test_traffic_is_quieter_at_night_and_at_weekends(week: pa.Table):
    ts = week.column("ts").cast(pa.int64()).to_numpy() // 1_000_000
    dt = ts.astype("datetime64[s]")
    hour = (ts // 3600) % 24
    weekday = (dt.astype("datetime64[D]").view("int64") - 4) % 7  # 1970-01-01 was a Thursday
    per_day = Counter(dt.astype("datetime64[D]").tolist())
    weekend = [c for d, c in per_day.items() if d.weekday() >= 5]
    weekdays = [c for d, c in per_day.items() if d.weekday() < 5]
    assert len(weekend) == 2 and len(weekdays) == 5
    assert np.mean(weekend) < 0.6 * np.mean(weekdays)
    working = weekday < 5
    night = np.bincount(hour[working & (hour < 5)], minlength=5)[:5].mean()
    peak = np.bincount(hour[working], minlength=24)[9:17].mean()
    assert night < 0.3 * peak


def test_timestamps_stay_inside_the_requested_days():
    table = generate_corpus(2_000, seed=1, days=3, start="2027-01-04")
    ts = table.column("ts").to_pylist()
    assert min(ts) >= datetime(2027, 1, 4, tzinfo=UTC)
    assert max(ts) < datetime(2027, 1, 7, tzinfo=UTC)
    also = generate_corpus(2_000, seed=1, days=3, start=date(2027, 1, 4))
    assert also.equals(table)


def test_bad_rows_cover_every_kind_with_weird_but_valid_rows_beside_them():
    table = generate_corpus(7_000, seed=3, bad_rows=0.01)  # 70 bad rows: 10 of each kind
    assert table.schema.field("ts").type == pa.string()
    with pytest.raises(pa.ArrowInvalid):
        table.column("text").combine_chunks().validate(full=True)
    texts = _texts(table)
    assert sum(t is None for t in texts) == 10
    assert sum(t is not None and t.strip() == "" for t in texts) == 10
    assert sum(t is not None and len(t) > corpus.TEXT_LIMIT for t in texts) == 10
    assert sum(t is not None and "\ud800" in t for t in texts) == 10
    ids = table.column("query_id").to_pylist()
    assert len(ids) - len(set(ids)) == 10
    assert table.column("expected_level").to_pylist().count("ULTRA") == 5
    assert table.column("expected_domain").to_pylist().count("astrology") == 5
    assert any(t and "\x00" in t for t in texts)
    assert any(t and "\u05e9" in t or t and "\u0645" in t for t in texts)  # Hebrew / Arabic


def test_generator_and_loader_agree_on_the_size_limit():
    assert generate.TEXT_LIMIT == corpus.TEXT_LIMIT


def test_too_few_rows_for_every_bad_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="bad_rows"):
        generate_corpus(100, bad_rows=0.02)


@pytest.mark.parametrize("ext", ["parquet", "csv", "jsonl"])
def test_write_corpus_picks_the_format_from_the_extension(tmp_path, ext):
    table = generate_corpus(500, seed=2)
    path = write_corpus(table, tmp_path / f"c.{ext}")
    assert path.stat().st_size > 0
    assert corpus.detect_format(path) == ext
    with corpus.load_corpus(path, work_dir=tmp_path / "w") as loaded:
        assert loaded.summary.accepted == 500
        day, rows = next(loaded.iter_days())
        assert day == date(2026, 11, 16)
        first = table.filter(pc.equal(table.column("query_id"), rows.column("query_id")[0]))
        assert first.column("text").to_pylist() == [rows.column("text")[0].as_py()]
        assert first.column("ts")[0].as_py() == rows.column("ts")[0].as_py()


def test_write_corpus_refuses_an_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=r"\.parquet, \.csv or \.jsonl"):
        write_corpus(generate_corpus(10), tmp_path / "c.txt")


def test_start_must_be_an_iso_date():
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        generate_corpus(10, start="16/11/2026")


def test_week_starting_on_a_monday_has_its_weekend_at_the_end(week: pa.Table):
    days = sorted({t.date() for t in week.column("ts").to_pylist()})
    assert days == [date(2026, 11, 16) + timedelta(days=i) for i in range(7)]
