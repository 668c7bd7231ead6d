"""The local spool: durable, ordered, and it never deletes a batch on its own."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from telemetry_rows import make_decision_table

from router.decision import DECISION_ARROW_SCHEMA
from telemetry.errors import SpoolError
from telemetry.spool import CORRUPT_DIR, Spool


def test_put_then_read_returns_the_same_batch_with_the_record_schema(tmp_path):
    spool = Spool(tmp_path / "spool")
    table = make_decision_table(50)

    path = spool.put(table, metadata={"harness.error_kind": "locked"})

    assert path.parent == spool.directory and path.suffix == ".parquet"
    back = spool.read(path)
    assert back.equals(table)
    assert back.schema.equals(DECISION_ARROW_SCHEMA)
    assert pq.read_schema(path).metadata[b"harness.error_kind"] == b"locked"


def test_pending_lists_batches_oldest_first_and_counts_rows_without_loading(tmp_path):
    spool = Spool(tmp_path)
    paths = [spool.put(make_decision_table(n, first_query=100 * n)) for n in (3, 5, 7)]

    assert spool.pending() == paths
    assert spool.rows_pending() == 15


def test_empty_or_missing_spool_has_nothing_pending(tmp_path):
    spool = Spool(tmp_path / "never-created")
    assert spool.pending() == []
    assert spool.rows_pending() == 0


def test_a_partial_file_left_by_a_crash_is_not_a_pending_batch(tmp_path):
    spool = Spool(tmp_path)
    kept = spool.put(make_decision_table(4))
    (tmp_path / "00000000000000000001-deadbeef.partial").write_bytes(b"half a parquet")

    assert spool.pending() == [kept]
    assert spool.rows_pending() == 4


def test_remove_deletes_only_that_batch_and_tolerates_a_parallel_drain(tmp_path):
    spool = Spool(tmp_path)
    first = spool.put(make_decision_table(2))
    second = spool.put(make_decision_table(3, first_query=10))

    spool.remove(first)
    spool.remove(first)  # already gone: another drain took it

    assert spool.pending() == [second]


def test_quarantine_moves_an_unreadable_batch_aside_and_keeps_it(tmp_path):
    spool = Spool(tmp_path)
    bad = tmp_path / "00000000000000000001-bad.parquet"
    bad.write_bytes(b"not parquet")

    moved = spool.quarantine(bad)

    assert spool.pending() == []
    assert moved == tmp_path / CORRUPT_DIR / bad.name
    assert moved.read_bytes() == b"not parquet"


def test_put_where_no_directory_can_exist_raises_a_spool_error_naming_it(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    spool = Spool(blocker / "spool")

    with pytest.raises(SpoolError, match="could not spool 6 decision rows") as info:
        spool.put(make_decision_table(6))

    assert str(blocker) in str(info.value)
    assert list(tmp_path.iterdir()) == [blocker]
