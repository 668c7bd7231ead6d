"""Issue 9, property-based: hostile files and arguments against the corpus loader and the CLI
entry points (`corpus validate`, `route --file`, `corpus generate`, `drill run`).

For every generated input: a clear error (one `error:` line, exit 1; a usage error is Click's
exit 2 here, 64 through the `harness` entry point) or rows quarantined; rows in == accepted +
quarantined; no traceback; no canary text in any output (stdout, stderr, quarantine file);
nothing written outside the folder given as --out. In-process (CliRunner) so the suite stays
well under a minute; one subprocess run checks the real stderr.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from data.corpus import CorpusError, read_quarantine, validate_corpus
from drills.scenario import SCENARIO_DIR
from flows.cli import app

CANARY = "CANARY secret prompt"  # has a space: never shaped like an id
runner = CliRunner()
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ids = st.one_of(
    st.from_regex(r"q[0-9]{1,4}", fullmatch=True),
    st.just(""),
    st.just("q\x00nul"),
    st.integers(-5, 10**6).map(str),
)
stamps = st.one_of(
    st.just("2026-11-16T10:00:00Z"),
    st.datetimes().map(lambda d: d.isoformat()),
    st.integers(-(10**12), 10**13).map(str),
    st.sampled_from(["", "yesterday", "9999-12-31T23:59:59Z", "nan", "1e999"]),
)
texts = st.one_of(
    st.text(min_size=0, max_size=40).map(lambda t: f"{CANARY} {t}"),
    st.sampled_from(['"', '""', ",", "\n", "\r\n", "\x00", "   ", "]\\[", "{{x}}", "[x](y)"]).map(
        lambda t: f"{CANARY}{t}{CANARY}"
    ),
    st.none(),
)
rows = st.lists(st.tuples(ids, stamps, texts), min_size=0, max_size=12)
corruptions = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "cut"]),
        st.integers(0, 10_000),
        st.sampled_from([b'"', b"\n", b",", b"\xff\xfe", b"\x00", b"{", b"\r", b"[" * 50]),
    ),
    max_size=3,
)


def _serialise(fmt: str, data: list[tuple[str, str, str | None]]) -> bytes:
    if fmt == "csv":
        buf = io.StringIO()
        # RFC 4180 line ends, so the writer quotes every field holding a CR or LF: with "\n"
        # it leaves a bare CR unquoted, which CSV readers (Python's too) take as a line end.
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(["query_id", "ts", "text"])
        w.writerows([(q, t, "" if x is None else x) for q, t, x in data])
        return buf.getvalue().encode("utf-8", "surrogatepass")
    lines = [json.dumps({"query_id": q, "ts": t, "text": x}) for q, t, x in data]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _corrupt(raw: bytes, edits: list[tuple[str, int, bytes]]) -> bytes:
    for kind, at, what in edits:
        at = at % (len(raw) + 1)
        if kind == "insert":
            raw = raw[:at] + what + raw[at:]
        elif kind == "delete":
            raw = raw[:at] + raw[at + len(what) :]
        else:
            raw = raw[:at]
    return raw


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _clean_exit(res, *, codes=(0, 1)) -> None:
    """Exit code allowed, no traceback, no uncaught exception, one error line when failing."""
    usage = res.exit_code == 2 and "Usage:" in res.output
    assert res.exit_code in codes or usage, (res.exit_code, res.output[-2000:])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1, res.output


@SETTINGS
@given(fmt=st.sampled_from(["csv", "jsonl"]), data=rows, edits=corruptions)
def test_loader_accounts_for_every_row_and_never_leaks(tmp_path_factory, fmt, data, edits):
    base = tmp_path_factory.mktemp("load")
    src = base / f"in.{fmt}"
    raw = _serialise(fmt, data)
    src.write_bytes(_corrupt(raw, edits))
    q = base / "out" / "q.parquet"
    try:
        s = validate_corpus(src, quarantine_path=q)
    except CorpusError as exc:
        assert CANARY not in str(exc)
        return
    assert s.accepted + s.quarantined == s.total_rows
    assert sum(s.reasons.values()) == s.quarantined
    if not edits:  # a well-formed file: every record is a row
        assert s.total_rows == len(data)
    quarantine = read_quarantine(q)
    assert quarantine.num_rows == s.quarantined
    for col in ("query_id", "detail"):
        for v in quarantine.column(col).to_pylist():
            assert v is None or CANARY not in v
    assert CANARY.encode() not in q.read_bytes()


@SETTINGS
@given(fmt=st.sampled_from(["csv", "jsonl"]), data=rows, edits=corruptions)
def test_corpus_validate_cli(tmp_path_factory, fmt, data, edits):
    base = tmp_path_factory.mktemp("cli")
    src = base / f"in.{fmt}"
    src.write_bytes(_corrupt(_serialise(fmt, data), edits))
    out = base / "out"
    before = _files(base)
    res = runner.invoke(
        app, ["corpus", "validate", str(src), "--quarantine", str(out / "q.parquet")]
    )
    _clean_exit(res)
    assert CANARY not in res.output
    assert all(out in p.parents for p in _files(base) - before)


@SETTINGS
@given(
    lines=st.lists(
        st.one_of(
            st.builds(
                lambda q, t: json.dumps({"query_id": q, "text": t}),
                st.one_of(ids, st.integers(), st.booleans(), st.none()),
                st.one_of(texts, st.integers(), st.just(CANARY + "x" * 100_001)),
            ),
            st.just("[" * 5000 + "]" * 5000),
            st.just("not json " + CANARY),
            st.just(""),
        ),
        max_size=8,
    )
)
def test_route_file_cli(tmp_path_factory, lines):
    base = tmp_path_factory.mktemp("route")
    src = base / "q.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    out = base / "out" / "d.parquet"
    before = _files(base)
    res = runner.invoke(app, ["route", "--file", str(src), "--out", str(out), "--rule-only"])
    _clean_exit(res)
    assert CANARY not in res.output
    assert all(out.parent in p.parents for p in _files(base) - before)
    nonblank = sum(1 for line in lines if line.strip())
    routed = pq.read_table(out).num_rows
    not_routed = (
        int(res.output.split(" lines not routed")[0].split()[-1]) if routed < nonblank else 0
    )
    assert routed + not_routed == nonblank, res.output


@SETTINGS
@given(
    n=st.one_of(st.integers(-3, 300), st.integers(10**13, 10**18)),
    days=st.one_of(st.integers(-2, 40), st.integers(10**6, 10**12)),
    start=st.one_of(
        st.dates().map(str), st.sampled_from(["9999-12-31", "0001-01-01", "x", "2026-02-30"])
    ),
    bad=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(0.01)),
    ext=st.sampled_from(["csv", "jsonl", "parquet", "txt"]),
)
def test_corpus_generate_args(tmp_path_factory, n, days, start, bad, ext):
    assume(0 < n <= 300 or n >= 10**13 or n <= 0)
    base = tmp_path_factory.mktemp("gen")
    out = base / "out" / f"c.{ext}"
    args = ["corpus", "generate", "--n", str(n), "--days", str(days), "--start", start]
    res = runner.invoke(app, [*args, "--bad-rows", repr(bad), "--out", str(out)])
    _clean_exit(res)
    new = _files(base)
    assert all(base / "out" in p.parents for p in new)
    if res.exit_code == 0:
        assert new == {out}
        assert validate_corpus(out).total_rows == n
    else:
        assert not out.exists()


BASE = (SCENARIO_DIR / "model-failure.yaml").read_text(encoding="utf-8")
SCENARIO_EDITS = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(["qps: 20", "max: 0.02", "error_rate: 1.0", "at: 5m", "name: model"]),
            st.sampled_from(
                [
                    "qps: .nan",
                    "max: .inf",
                    "error_rate: nan",
                    "at: 99999999999h",
                    "name: [a-z0-9]",
                    "qps: 1e999",
                    "at: -1s",
                    "name: Model_Failure",
                ]
            ),
        ),
        st.tuples(st.just("\nguarantees:"), st.just("\nduration: 5m\nguarantees:")),
        st.tuples(st.just("traffic:"), st.just("traffic: {corpus: missing.csv}\nx:")),
        st.tuples(st.just("title: "), st.text(max_size=20).map(lambda t: f"title: {t!r}\n#")),
    ),
    max_size=3,
)


@SETTINGS
@given(edits=SCENARIO_EDITS, tail=st.sampled_from([b"", b"\n# caf\xe9\n", b"\n\x00", b"[" * 3000]))
def test_drill_run_with_bad_scenarios(tmp_path_factory, edits, tail):
    base = tmp_path_factory.mktemp("drill")
    text = BASE
    for old, new in edits:
        text = text.replace(old, new, 1)
    src = base / "sc.yaml"
    src.write_bytes(text.encode("utf-8") + tail)
    out = base / "out"
    before = _files(base)
    res = runner.invoke(app, ["drill", "run", str(src), "--dry-run", "--out", str(out)])
    _clean_exit(res)
    assert all(out in p.parents for p in _files(base) - before)


def test_real_stderr_has_no_traceback_for_hostile_files(tmp_path):
    """One real process: what a user sees on stderr for a runaway quote and a headerless file."""
    runaway = tmp_path / "a.csv"
    runaway.write_text(
        'query_id,ts,text\nq1,2026-11-16T10:00:00Z,"' + CANARY + "\nq2,2026-11-16T10:00:01Z,x\n"
    )
    headerless = tmp_path / "b.csv"
    headerless.write_text(f"q1,2026-11-16T10:00:00Z,{CANARY}\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "60"}
    for path, code in ((runaway, 0), (headerless, 1)):
        proc = subprocess.run(
            [sys.executable, "-m", "flows.cli", "corpus", "validate", str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr and CANARY not in proc.stderr + proc.stdout
        if code:
            assert proc.stderr.count("error:") == 1 and len(proc.stderr.strip().splitlines()) == 1
