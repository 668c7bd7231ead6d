"""Loading, validating, quarantining and streaming a corpus by day, in parquet, CSV and JSONL."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from data.corpus import (
    ACCEPTED_SCHEMA,
    TEXT_LIMIT,
    CorpusError,
    Reason,
    load_corpus,
    parse_ts,
    read_quarantine,
    validate_corpus,
)
from data.generate import BAD_KINDS, generate_corpus, write_corpus
from flows.commands.corpus import app as corpus_app
from router.privacy import HASH_KEY_ENV

FORMATS = ("parquet", "csv", "jsonl")
SECRET_USER = "user-SECRET-4711"


def _row(qid, ts, text, **extra):
    return {"query_id": qid, "ts": ts, "text": text, "user_id": SECRET_USER, **extra}


# Every kind of row the loader must handle. (row, expected reason or None for accepted, where the
# kind is representable: "all" formats or only the text formats).
BAD_CORPUS: list[tuple[dict, str | None, str]] = [
    (_row("q1", "2026-11-16T09:00:00Z", "hello there"), None, "all"),
    (_row("q2", "2026-11-16 10:00:00", "naive timestamp is UTC"), None, "all"),
    (_row("q3", "1794826800", "epoch seconds as text"), None, "all"),
    (_row("q4", "2026-11-16T11:00:00Z", None), "missing_text", "all"),
    (_row("q5", "2026-11-16T11:00:00Z", "   \t "), "empty_text", "all"),
    (_row("q6", "not a time", "bad ts"), "unparseable_ts", "all"),
    (_row("q7", "1794826800000", "epoch in milliseconds"), "unparseable_ts", "all"),
    (_row("q1", "2026-11-16T12:00:00Z", "same id again"), "duplicate_query_id", "all"),
    (_row("q8", "2026-11-16T12:00:00Z", "x" * (TEXT_LIMIT + 1)), "text_too_long", "all"),
    (_row("q9", "2026-11-16T12:00:00Z", "caf\ud800 au lait"), "invalid_encoding", "all"),
    (_row("q10", "2026-11-16T12:00:00Z", "hi", expected_level="ULTRA"), "invalid_label", "all"),
    (
        _row("q11", "2026-11-16T12:00:00Z", "hi", expected_domain="astrology"),
        "invalid_label",
        "all",
    ),
    (_row(" ", "2026-11-16T12:00:00Z", "no id"), "missing_query_id", "all"),
    (_row("q12", "2026-11-16T13:00:00Z", "rocket 🚀👩🏽‍💻"), None, "all"),
    (_row("q13", "2026-11-16T13:00:00Z", "מה השעה עכשיו?"), None, "all"),
    (_row("q14", "2026-11-16T13:00:00Z", "nul\x00inside"), None, "all"),
    (_row("q15", "2026-11-16T13:00:00Z", "y" * TEXT_LIMIT), None, "all"),
    (_row("q16", "2026-11-17T01:30:00+02:00", "offset: still the 16th in UTC"), None, "all"),
    (
        _row(
            "q17",
            "2026-11-18T08:00:00Z",
            "labels",
            expected_level=" trivial ",
            expected_domain="GENERAL",
        ),
        None,
        "all",
    ),
    (_row("q4", "2026-11-18T09:00:00Z", "id first seen on a quarantined row"), None, "all"),
    (None, "malformed_row", "text"),  # a record that cannot be split into the header's fields
    (_row("q18", "2026-11-19T23:59:59.999999Z", "last microsecond of the day"), None, "all"),
]


def _rows_for(fmt: str) -> list[tuple[dict | None, str | None]]:
    return [(r, why) for r, why, where in BAD_CORPUS if where == "all" or fmt != "parquet"]


def _string_array(values: list[str | None]) -> pa.Array:
    """Arrow strings that may carry invalid UTF-8 (a broken producer's parquet file)."""
    data = [b"" if v is None else v.encode("utf-8", "surrogatepass") for v in values]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in data], out=offsets[1:])
    valid = np.array([v is not None for v in values])
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    return pa.Array.from_buffers(
        pa.string(),
        len(values),
        [bitmap, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(data))],
        null_count=int((~valid).sum()),
    )


COLUMNS = ("query_id", "ts", "text", "user_id", "expected_level", "expected_domain")


def write_rows(path: Path, fmt: str, rows: list[dict | None]) -> Path:
    if fmt == "parquet":
        cols = {c: [r.get(c) for r in rows] for c in COLUMNS}
        table = pa.table(
            {
                c: (_string_array(v) if c == "text" else pa.array(v, pa.string()))
                for c, v in cols.items()
            }
        )
        pq.write_table(table, path)
        return path
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogatepass", newline="")
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in rows:
            if r is None:
                out.write(f"qX,2026-11-16T00:00:00Z,hi,{SECRET_USER},TRIVIAL,general,extra\n")
            else:
                writer.writerow([r.get(c) for c in COLUMNS])
    else:
        for r in rows:
            if r is None:
                out.write(f'{{"query_id": "qX", "user_id": "{SECRET_USER}", "text": oops}}\n')
                continue
            obj = {c: r.get(c) for c in COLUMNS if r.get(c) is not None}
            if obj.get("ts", "").isdigit():
                obj["ts"] = int(obj["ts"])  # JSON has real numbers
            out.write(json.dumps(obj) + "\n")
            if r["query_id"] == "q5":
                out.write("\n")  # a blank line: skipped, but row numbers stay line numbers
    out.flush()
    path.write_bytes(raw.getvalue())
    return path


def _expected(fmt: str) -> dict[int, str | None]:
    """Row number -> expected reason (None: accepted)."""
    out: dict[int, str | None] = {}
    number = 0
    for r, why in _rows_for(fmt):
        number += 1
        out[number] = why
        if fmt == "jsonl" and r is not None and r["query_id"] == "q5":
            number += 1
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_bad_row_is_quarantined_with_its_reason_and_row_number(tmp_path, fmt):
    path = write_rows(tmp_path / f"bad.{fmt}", fmt, [r for r, _ in _rows_for(fmt)])
    expected = _expected(fmt)
    q_path = tmp_path / "out" / "quarantine.parquet"
    with load_corpus(path, quarantine_path=q_path, work_dir=tmp_path / "work") as prepared:
        summary = prepared.summary
        accepted = pa.concat_tables(t for _, t in prepared.iter_days())
    quarantine = read_quarantine(q_path)
    got = dict(
        zip(
            quarantine.column("row_number").to_pylist(),
            quarantine.column("reason").to_pylist(),
            strict=True,
        )
    )
    assert got == {n: why for n, why in expected.items() if why is not None}
    want_ok = sorted(n for n, why in expected.items() if why is None)
    assert sorted(accepted.column("row_number").to_pylist()) == want_ok
    assert summary.accepted == len(want_ok) == accepted.num_rows
    assert summary.quarantined == quarantine.num_rows
    assert summary.accepted + summary.quarantined == summary.total_rows == len(expected)
    reason_counts = {k: v for k, v in summary.reasons.items() if v}
    assert reason_counts == {
        r: sum(1 for why in expected.values() if why == r) for r in set(expected.values()) if r
    }
    details = dict(
        zip(
            quarantine.column("reason").to_pylist(),
            quarantine.column("detail").to_pylist(),
            strict=False,
        )
    )
    assert "row 1" in details["duplicate_query_id"]
    assert "100,000" in details["text_too_long"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_accepted_rows_are_normalised(tmp_path, fmt):
    path = write_rows(tmp_path / f"bad.{fmt}", fmt, [r for r, _ in _rows_for(fmt)])
    with load_corpus(path, work_dir=tmp_path / "work") as prepared:
        rows = {r["query_id"]: r for _, t in prepared.iter_days() for r in t.to_pylist()}
    assert rows["q2"]["ts"] == datetime(2026, 11, 16, 10, tzinfo=UTC)  # naive means UTC
    assert rows["q3"]["ts"] == datetime(2026, 11, 16, 11, tzinfo=UTC)  # epoch seconds
    assert rows["q16"]["ts"] == datetime(2026, 11, 16, 23, 30, tzinfo=UTC)
    assert rows["q17"]["expected_level"] == "TRIVIAL"
    assert rows["q17"]["expected_domain"] == "general"
    assert rows["q1"]["tenant"] == "default"
    assert rows["q1"]["expected_level"] is None
    assert rows["q14"]["text"] == "nul\x00inside"
    assert rows["q13"]["text"] == "מה השעה עכשיו?"
    assert len(rows["q15"]["text"]) == TEXT_LIMIT
    assert rows["q4"]["text"] == "id first seen on a quarantined row"


@pytest.mark.parametrize("fmt", FORMATS)
def test_quarantine_identifies_rows_without_holding_their_text(tmp_path, fmt):
    path = write_rows(tmp_path / f"bad.{fmt}", fmt, [r for r, _ in _rows_for(fmt)])
    q_path = tmp_path / "q.parquet"
    validate_corpus(path, quarantine_path=q_path)
    q = read_quarantine(q_path).to_pylist()
    assert "text" not in read_quarantine(q_path).column_names
    (row,) = [r for r in q if r["reason"] == Reason.INVALID_ENCODING]
    assert row["query_id"] == "q9"
    assert len(row["text_hash"]) == 64 and row["text_chars"] > 0
    assert "text" in row["detail"]
    assert b"au lait" not in q_path.read_bytes()


@pytest.mark.parametrize("fmt", FORMATS)
def test_user_id_is_hashed_and_never_written_raw(tmp_path, fmt, monkeypatch):
    monkeypatch.setenv(HASH_KEY_ENV, "test-key")
    path = write_rows(tmp_path / f"bad.{fmt}", fmt, [r for r, _ in _rows_for(fmt)])
    work = tmp_path / "work"
    q_path = tmp_path / "q.parquet"
    with load_corpus(path, work_dir=work, quarantine_path=q_path) as prepared:
        tables = [t for _, t in prepared.iter_days()]
    expected = hmac.new(b"test-key", SECRET_USER.encode(), hashlib.sha256).hexdigest()
    for t in tables:
        assert "user_id" not in t.column_names
        assert set(t.column("user_hash").to_pylist()) == {expected}
    outputs = [*work.rglob("*.parquet"), q_path]
    for f in outputs:
        data = pq.read_table(f).to_pandas().to_string()
        assert SECRET_USER not in data
        assert SECRET_USER.encode() not in f.read_bytes()


def test_generated_bad_rows_are_all_quarantined_in_every_format(tmp_path):
    n = 3_500
    table = generate_corpus(n, seed=9, bad_rows=0.02)  # 70 bad rows: 10 per kind
    for fmt in FORMATS:
        path = write_corpus(table, tmp_path / f"gen.{fmt}")
        summary = validate_corpus(path, quarantine_path=tmp_path / f"q_{fmt}.parquet")
        assert summary.total_rows == n
        assert summary.quarantined == 70
        assert {k: v for k, v in summary.reasons.items() if v} == dict.fromkeys(BAD_KINDS, 10)
        assert summary.accepted == n - 70


def test_rows_are_checked_once_and_duplicates_found_across_batches(tmp_path):
    rows = [_row(f"d{i % 40}", f"2026-11-16T{i % 24:02d}:00:00Z", f"text {i}") for i in range(100)]
    path = write_rows(tmp_path / "dups.jsonl", "jsonl", rows)
    with load_corpus(path, work_dir=tmp_path / "w", batch_rows=7) as prepared:
        assert prepared.summary.accepted == 40
        assert prepared.summary.reasons["duplicate_query_id"] == 60
        ids = pa.concat_tables(t for _, t in prepared.iter_days()).column("query_id").to_pylist()
    assert sorted(ids) == sorted(f"d{i}" for i in range(40))
    q = read_quarantine(prepared.quarantine_path)
    first_seen = {f"d{i}": i + 1 for i in range(40)}
    for qid, detail in zip(
        q.column("query_id").to_pylist(), q.column("detail").to_pylist(), strict=True
    ):
        assert detail.endswith(f"at row {first_seen[qid]}")


def test_iter_days_yields_each_day_once_in_order_with_only_its_rows(tmp_path):
    table = generate_corpus(5_000, seed=4, days=5, start="2026-11-19")
    order = list(range(table.num_rows))
    random.Random(1).shuffle(order)  # a corpus file need not be sorted
    path = write_corpus(table.take(order), tmp_path / "shuffled.parquet")
    with load_corpus(path, work_dir=tmp_path / "w", batch_rows=999) as prepared:
        days = []
        total = 0
        for day, rows in prepared.iter_days():
            days.append(day)
            total += rows.num_rows
            assert rows.schema == ACCEPTED_SCHEMA
            ts = rows.column("ts").to_pylist()
            assert all(t.date() == day for t in ts)
            assert ts == sorted(ts)
        assert days == [date(2026, 11, 19) + timedelta(days=i) for i in range(5)]
        assert total == 5_000
        assert (
            prepared.summary.rows_per_day[date(2026, 11, 21)]
            < prepared.summary.rows_per_day[date(2026, 11, 20)]
        )  # Saturday is quieter than Friday


def test_window_selects_the_last_days_or_a_start(tmp_path):
    path = write_corpus(generate_corpus(2_000, seed=4, days=7), tmp_path / "c.parquet")
    with load_corpus(path, days=2) as last_two:
        assert last_two.days == (date(2026, 11, 21), date(2026, 11, 22))
        assert last_two.summary.window == (date(2026, 11, 21), date(2026, 11, 22))
        assert last_two.summary.in_window == sum(t.num_rows for _, t in last_two.iter_days())
        assert last_two.summary.accepted == 2_000
    with load_corpus(path, start="2026-11-17", days=3) as middle:
        assert [d for d, _ in middle.iter_days()] == [
            date(2026, 11, 17),
            date(2026, 11, 18),
            date(2026, 11, 19),
        ]
    with load_corpus(path, start=date(2026, 11, 20)) as tail:
        assert tail.days[0] == date(2026, 11, 20) and tail.days[-1] == date(2026, 11, 22)


def test_temporary_work_dir_is_removed_on_close(tmp_path):
    path = write_corpus(generate_corpus(200, seed=1), tmp_path / "c.csv")
    prepared = load_corpus(path)
    work = prepared.work_dir
    assert work.exists()
    prepared.close()
    assert not work.exists()


@pytest.mark.parametrize(
    "ts_array, expected",
    [
        (
            pa.array([datetime(2026, 11, 16, 9)], pa.timestamp("ms")),
            datetime(2026, 11, 16, 9, tzinfo=UTC),
        ),
        (pa.array([1794819600], pa.int64()), datetime(2026, 11, 16, 9, tzinfo=UTC)),
        (
            pa.array([1794819600.5], pa.float64()),
            datetime(2026, 11, 16, 9, 0, 0, 500000, tzinfo=UTC),
        ),
        (pa.array(["2026-11-16T10:00:00+01:00"]), datetime(2026, 11, 16, 9, tzinfo=UTC)),
        (pa.array(["2026-11-16T09:00:00"]), datetime(2026, 11, 16, 9, tzinfo=UTC)),
    ],
)
def test_timestamps_naive_or_epoch_or_with_offset_become_utc(ts_array, expected):
    us, ok = parse_ts(ts_array)
    assert ok.tolist() == [True]
    assert datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us[0])) == expected


def test_timestamp_columns_in_parquet_are_accepted(tmp_path):
    ts = [datetime(2026, 11, 16, 9), datetime(2026, 11, 17, 9)]
    for typ in (pa.timestamp("ns"), pa.timestamp("us", tz="Europe/Paris"), pa.int64()):
        values = [int(t.replace(tzinfo=UTC).timestamp()) for t in ts] if typ == pa.int64() else ts
        table = pa.table({"query_id": ["a", "b"], "ts": pa.array(values, typ), "text": ["x", "y"]})
        pq.write_table(table, tmp_path / "t.parquet")
        with load_corpus(tmp_path / "t.parquet") as prepared:
            assert prepared.summary.accepted == 2
            assert prepared.days == (date(2026, 11, 16), date(2026, 11, 17))


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_required_column_names_the_file_and_the_column(tmp_path, fmt):
    path = tmp_path / f"notext.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.table({"query_id": ["a"], "ts": ["2026-11-16T00:00:00Z"]}), path)
    elif fmt == "csv":
        path.write_text("query_id,ts\na,2026-11-16T00:00:00Z\n")
    else:
        path.write_text('{"query_id": "a", "ts": "2026-11-16T00:00:00Z"}\n')
    with pytest.raises(CorpusError) as err:
        load_corpus(path)
    assert str(path) in str(err.value)
    assert "'text'" in str(err.value)


def test_whole_file_problems_raise_one_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="not found: .*missing.parquet"):
        load_corpus(tmp_path / "missing.parquet")
    (tmp_path / "c.txt").write_text("hello")
    with pytest.raises(CorpusError, match=r"c\.txt.*format="):
        load_corpus(tmp_path / "c.txt")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(CorpusError, match="broken.parquet"):
        load_corpus(tmp_path / "broken.parquet")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CorpusError, match="empty.csv.*empty"):
        load_corpus(tmp_path / "empty.csv")
    pq.write_table(pa.table({"query_id": ["a"], "ts": [1], "text": [3]}), tmp_path / "int.parquet")
    with pytest.raises(CorpusError, match="int.parquet.*'text'.*int64"):
        load_corpus(tmp_path / "int.parquet")


def test_format_option_overrides_the_extension(tmp_path):
    path = tmp_path / "export.dat"
    path.write_text('{"query_id": "a", "ts": "2026-11-16T00:00:00Z", "text": "hi"}\n')
    with load_corpus(path, format="jsonl") as prepared:
        assert prepared.summary.accepted == 1
    with pytest.raises(CorpusError, match="unknown format 'xml'"):
        load_corpus(path, format="xml")


def test_summary_renders_as_a_rich_table(tmp_path):
    from rich.console import Console

    path = write_rows(tmp_path / "bad.csv", "csv", [r for r, _ in _rows_for("csv")])
    summary = validate_corpus(path)
    console = Console(record=True, width=120)
    console.print(summary)
    text = console.export_text()
    for word in ("accepted", "quarantined", "duplicate_query_id", "2026-11-16"):
        assert word in text
    assert summary.to_dict()["rows_per_day"]["2026-11-16"] > 0


def test_cli_validate_exit_codes(tmp_path):
    runner = CliRunner()
    good = write_rows(tmp_path / "bad.csv", "csv", [r for r, _ in _rows_for("csv")])
    q_path = tmp_path / "q.parquet"
    result = runner.invoke(corpus_app, ["validate", str(good), "--quarantine", str(q_path)])
    assert result.exit_code == 0, result.output
    assert "duplicate_query_id" in result.output
    assert q_path.exists()
    assert "caf" not in result.output  # quarantined text is not printed
    (tmp_path / "notext.csv").write_text("query_id,ts\na,1\n")
    result = runner.invoke(corpus_app, ["validate", str(tmp_path / "notext.csv")])
    assert result.exit_code == 1
    assert "notext.csv" in result.output and "'text'" in result.output


def test_cli_generate_writes_the_requested_corpus(tmp_path):
    out = tmp_path / "g.jsonl"
    result = CliRunner().invoke(
        corpus_app,
        ["generate", "--n", "700", "--seed", "3", "--out", str(out), "--bad-rows", "0.01"],
    )
    assert result.exit_code == 0, result.output
    assert "700" in result.output and "TRIVIAL" in result.output
    assert validate_corpus(out).total_rows == 700


def test_quarantine_file_is_written_even_when_empty(tmp_path):
    path = write_corpus(generate_corpus(100, seed=1), tmp_path / "c.parquet")
    with load_corpus(path, quarantine_path=tmp_path / "q.parquet") as prepared:
        assert prepared.summary.quarantined == 0
    assert read_quarantine(tmp_path / "q.parquet").num_rows == 0


def test_jsonl_numbers_and_wrong_types(tmp_path):
    path = tmp_path / "types.jsonl"
    lines = [
        {"query_id": 12, "ts": 1794826800, "text": "numeric id and epoch", "tenant": 7},
        {"query_id": "12", "ts": "2026-11-16T11:00:00Z", "text": "same id as a string"},
        {"query_id": 1.5, "ts": 1, "text": "float id"},
        {"query_id": "b", "ts": True, "text": "boolean ts"},
        {"query_id": "c", "ts": 1794826800, "text": ["not", "a", "string"]},
        [1, 2],
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    q_path = tmp_path / "q.parquet"
    with load_corpus(path, quarantine_path=q_path) as prepared:
        (rows,) = [t for _, t in prepared.iter_days()]
    assert rows.column("query_id").to_pylist() == ["12"]
    assert rows.column("tenant").to_pylist() == ["7"]
    q = read_quarantine(q_path).to_pylist()
    assert [(r["row_number"], r["reason"]) for r in q] == [
        (2, "duplicate_query_id"),
        (3, "malformed_row"),
        (4, "malformed_row"),
        (5, "malformed_row"),
        (6, "malformed_row"),
    ]
    assert "query_id is a JSON number; expected a string or an integer" in q[1]["detail"]
    assert "ts is a JSON boolean" in q[2]["detail"]
    assert "text is a JSON array" in q[3]["detail"]


def test_jsonl_that_is_not_jsonl_is_a_whole_file_error(tmp_path):
    (tmp_path / "g.jsonl").write_text("garbage\nmore garbage\n")
    with pytest.raises(CorpusError, match=r"g\.jsonl: none of its 2 non-blank lines"):
        load_corpus(tmp_path / "g.jsonl")
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(CorpusError, match=r"e\.jsonl: the file is empty"):
        load_corpus(tmp_path / "e.jsonl")


@pytest.mark.parametrize("ext", ["csv.gz", "jsonl.gz"])
def test_gzipped_text_formats_are_read(tmp_path, ext):
    path = write_corpus(generate_corpus(300, seed=8), tmp_path / f"c.{ext}")
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert validate_corpus(path).accepted == 300
