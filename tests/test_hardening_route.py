"""Issue 9 rows 7 and 14 for `route --file`: the corpus loader's row rules (duplicates, the text
limit, ids the store refuses, deep JSON), every line routed or reported, one error line."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from typer.testing import CliRunner

from data.corpus import TEXT_LIMIT
from flows.cli import app

runner = CliRunner()
CANARY = "CANARY-route-9c1e"


def test_route_file_follows_the_corpus_rules(tmp_path):
    src = tmp_path / "q.jsonl"
    lines = [
        json.dumps({"query_id": "a", "text": f"{CANARY} hello there"}),
        json.dumps({"query_id": "a", "text": f"{CANARY} same id again"}),
        json.dumps({"query_id": "long", "text": CANARY + "x" * (TEXT_LIMIT * 2)}),
        json.dumps({"query_id": "n\x00ul", "text": f"{CANARY} nul in the id"}),
        "[" * 100_000 + "]" * 100_000,
        json.dumps({"query_id": 7, "text": f"{CANARY} integer ids are fine"}),
        json.dumps({"text": f"{CANARY} no id: line number"}),
    ]
    src.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    out = tmp_path / "out.parquet"
    res = runner.invoke(app, ["route", "--file", str(src), "--out", str(out), "--rule-only"])
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and CANARY not in res.output
    table = pq.read_table(out)
    assert sorted(table.column("query_id").to_pylist()) == ["7", "a", "line-7"]
    assert len(table.column("decision_id").unique()) == table.num_rows
    assert "routed 3 of 7 queries" in res.output and "4 lines not routed" in res.output
    for expected in (
        ":2 (query_id a): duplicate_query_id: query_id already routed at line 1",
        f":3 (query_id long): text_too_long: text has {TEXT_LIMIT * 2 + len(CANARY):,} characters",
        ":4: invalid_value: query_id contains a NUL character",
        ":5: malformed_row: JSON nested too deeply",
    ):
        assert expected in res.output


def test_route_file_unwritable_out_is_one_error(tmp_path):
    src = tmp_path / "q.jsonl"
    src.write_text(json.dumps({"text": "hi"}) + "\n", encoding="utf-8")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = runner.invoke(
        app, ["route", "--file", str(src), "--out", str(blocker / "o.parquet"), "--rule-only"]
    )
    assert res.exit_code == 1 and "error: cannot write" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
