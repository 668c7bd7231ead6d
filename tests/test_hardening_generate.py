"""Issue 9 row 10 for the generator: `corpus generate` streams to disk in chunks, so memory
does not grow with --n; the streamed file is a valid, sorted, deterministic corpus."""

from __future__ import annotations

import tracemalloc

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from data.corpus import validate_corpus
from data.generate import generate_corpus, write_corpus, write_generated_corpus


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_streamed_corpus_is_complete_sorted_and_valid(tmp_path, fmt):
    out = tmp_path / f"c.{fmt}"
    res = write_generated_corpus(out, 5_000, seed=3, days=3, bad_rows=0.02, chunk_rows=700)
    assert res.rows == 5_000 and sum(res.per_day.values()) + res.unparseable_ts == 5_000
    assert len(res.per_day) == 3
    s = validate_corpus(out)
    assert s.total_rows == 5_000 and s.accepted + s.quarantined == 5_000
    for reason in ("missing_text", "text_too_long", "unparseable_ts", "duplicate_query_id"):
        assert s.reasons[reason] > 0, reason
    if fmt == "parquet":
        t = pq.read_table(out)
        ids = t.column("query_id")
        assert len(pc.unique(ids)) >= 5_000 - s.reasons["duplicate_query_id"]
    again = tmp_path / f"d.{fmt}"
    write_generated_corpus(again, 5_000, seed=3, days=3, bad_rows=0.02, chunk_rows=700)
    if fmt != "parquet":
        assert out.read_bytes() == again.read_bytes()  # same seed, same file


def test_streamed_timestamps_are_sorted(tmp_path):
    out = tmp_path / "c.parquet"
    write_generated_corpus(out, 8_000, seed=1, days=2, chunk_rows=500)
    us = pc.cast(pq.read_table(out).column("ts"), "int64").to_numpy()
    assert (us[1:] >= us[:-1]).all()


def test_small_n_is_exactly_the_in_memory_corpus(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_generated_corpus(a, 2_000, seed=9, bad_rows=0.01)
    write_corpus(generate_corpus(2_000, seed=9, bad_rows=0.01), b)
    assert a.read_bytes() == b.read_bytes()


def test_memory_does_not_grow_with_n(tmp_path):
    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            write_generated_corpus(tmp_path / "m.csv", n, seed=2, chunk_rows=2_000)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(4_000)  # warm the module caches (log dump, templates)
    small, large = peak(8_000), peak(48_000)
    assert large < small * 1.5, (small, large)


def test_a_target_that_cannot_fit_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="need at least"):
        write_generated_corpus(tmp_path / "huge.csv", 10**15)
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_a_corpus_the_disk_cannot_hold(tmp_path):
    from typer.testing import CliRunner

    from flows.commands.corpus import app

    res = CliRunner().invoke(
        app, ["generate", "--n", str(10**15), "--out", str(tmp_path / "x.csv")]
    )
    assert res.exit_code == 1 and "need at least" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
