"""The pilot week as a real Prefect flow, on SQLite and PostgreSQL, with a privacy canary."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from data.generate import BAD_KINDS, generate_corpus, write_corpus
from live import procs

CANARY = "CANARY-zebra-7f3a-quartz"


def _corpus(path: Path, n: int = 600, days: int = 3, seed: int = 5) -> tuple[Path, str]:
    """A small labelled corpus with every kind of bad row and one canary query (in a clean row,
    so it is routed); returns the path and the canary row's query_id."""
    import pyarrow.compute as pc

    from router.decision import DOMAINS, LEVELS

    table = generate_corpus(n, seed=seed, days=days, start="2026-11-16", bad_rows=0.03)
    raw = pc.cast(table.column("text"), pa.binary()).to_pylist()
    ids = table.column("query_id").to_pylist()
    ts = [str(t) for t in table.column("ts").to_pylist()]
    levels, domains = (
        table.column("expected_level").to_pylist(),
        table.column("expected_domain").to_pylist(),
    )
    ok_levels, ok_domains = {lv.value for lv in LEVELS}, {d.value for d in DOMAINS}
    pick = next(
        i
        for i, b in enumerate(raw)
        if b
        and b.strip()
        and len(b) < 1000
        and ids.count(ids[i]) == 1
        and ts[i].startswith("2026-11")
        and levels[i] in ok_levels
        and domains[i] in ok_domains
        and _utf8(b)
    )
    mask = pa.array([i == pick for i in range(table.num_rows)])
    canary_text = pa.scalar(f"{CANARY} please explain how binary search works", pa.binary())
    text = pc.if_else(mask, canary_text, pc.cast(table.column("text"), pa.binary()))
    table = table.set_column(
        table.column_names.index("text"),
        "text",
        pc.cast(text, table.schema.field("text").type, safe=False),
    )
    return write_corpus(table, path), ids[pick]


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@pytest.fixture(scope="module")
def corpus_and_canary(tmp_path_factory) -> tuple[Path, str]:
    return _corpus(tmp_path_factory.mktemp("corpus") / "week.parquet")


@pytest.fixture(scope="module")
def corpus_file(corpus_and_canary) -> Path:
    return corpus_and_canary[0]


def _run(corpus_file: Path, out: Path, db: str, **kwargs) -> dict:
    from flows.pilot import pilot_week

    kwargs.setdefault("semantic", False)
    return pilot_week(corpus=str(corpus_file), days=3, out=str(out), db=db, **kwargs)


def _all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_pilot_week_runs_end_to_end_and_never_writes_the_canary(
    prefect_harness, corpus_and_canary, tmp_path, backend, request, monkeypatch
):
    corpus_file, canary_id = corpus_and_canary
    monkeypatch.chdir(tmp_path)  # the embedding cache and spool land under the test folder
    db = (
        f"sqlite:///{tmp_path / 'telemetry.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    out = tmp_path / "out"
    outcome = _run(corpus_file, out, db)
    evidence = json.loads(Path(outcome["evidence"]).read_text())

    # Nothing lost: every accepted row is a stored decision; every bad row is quarantined.
    cs = evidence["corpus_summary"]
    assert cs["accepted"] + cs["quarantined"] == cs["rows"]
    assert evidence["telemetry"]["rows"] == cs["in_window"] == evidence["telemetry"]["routed"]
    assert set(cs["by_reason"]) >= set(BAD_KINDS)  # every kind of bad row the corpus holds
    # Every day passed the GX suite and the replay matched bit for bit.
    assert [q["success"] for q in evidence["quality"]] == [True] * 3
    assert evidence["determinism"]["rate"] == 1.0 and evidence["determinism"]["sample"] >= 600 * 0.9
    assert (out / outcome["run_id"] / evidence["quality"][0]["data_docs"]).exists()
    # The verdict follows the criteria, and the report exists.
    critical = [c["status"] for c in outcome["criteria"] if c["severity"] == "critical"]
    assert outcome["verdict"] == (
        "no-go" if "fail" in critical else ("inconclusive" if "inconclusive" in critical else "go")
    )
    assert Path(outcome["report_html"]).exists() and Path(outcome["report_md"]).exists()
    assert (out / "index.html").exists()
    assert evidence["labelled"] is not None and evidence["labelled"]["downgrade_rate"] is not None
    # What the writer wrote is what the one model reads and the report renders.
    from reports.pilot import load_evidence
    from telemetry.evidence_model import EVIDENCE_VERSION

    read, _ = load_evidence(Path(outcome["evidence"]))
    assert evidence["evidence_version"] == EVIDENCE_VERSION
    assert read.telemetry.rows == evidence["telemetry"]["rows"]
    assert read.verdict == outcome["verdict"]
    assert [c.model_dump() for c in read.criteria] == evidence["criteria"]

    # The canary is in no file the run wrote (reports, evidence, quarantine, Data Docs, caches).
    # Parquet is compressed, so a byte scan cannot see into it: read those files' values.
    for f in _all_files(tmp_path):
        if f.name == corpus_file.name:
            continue
        assert CANARY.encode() not in f.read_bytes(), f"canary leaked into {f}"
        if f.suffix == ".parquet":
            table = pq.read_table(f)
            assert "text" not in table.column_names, f"query text column in {f}"
            assert CANARY not in str(table.to_pylist()), f"canary leaked into {f}"
    assert not list(out.glob(".pilot-work-*")), "staged corpus rows were left behind"
    # ...and not in the database.
    engine = sa.create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select * from decision_telemetry")).fetchall()
        runs = conn.execute(sa.text("select * from runs")).fetchall()
    engine.dispose()
    assert rows and CANARY not in repr(rows) and CANARY not in repr(runs)
    assert canary_id in {r._mapping["query_id"] for r in rows}  # the canary query was routed


def test_rerunning_a_pilot_is_idempotent(prefect_harness, corpus_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 't.db'}"
    first = _run(corpus_file, tmp_path / "out", db)
    second = _run(corpus_file, tmp_path / "out", db)
    e1 = json.loads(Path(first["evidence"]).read_text())
    e2 = json.loads(Path(second["evidence"]).read_text())
    assert first["run_id"] == second["run_id"]
    assert e2["telemetry"]["rows"] == e1["telemetry"]["rows"]
    assert e2["telemetry"]["duplicates"] == e1["telemetry"]["rows"]  # all already stored


def test_comparing_the_config_with_itself_is_the_zero_noise_baseline(
    prefect_harness, corpus_file, tmp_path, monkeypatch
):
    from router.config import default_config_path

    monkeypatch.chdir(tmp_path)
    outcome = _run(
        corpus_file,
        tmp_path / "out",
        f"sqlite:///{tmp_path / 't.db'}",
        compare_config=str(default_config_path()),
    )
    comparison = json.loads(Path(outcome["evidence"]).read_text())["comparison"]
    assert comparison["mismatched"] == 0 and comparison["matched"] > 0
    # A comparison is its own run: a plain run of the same window does not overwrite it.
    plain = _run(corpus_file, tmp_path / "out", f"sqlite:///{tmp_path / 't.db'}")
    assert plain["run_id"] != outcome["run_id"] and Path(outcome["evidence"]).exists()


def test_a_rebuilt_report_says_exactly_what_the_run_said(
    prefect_harness, corpus_file, tmp_path, monkeypatch
):
    """Every section (labelled included) is stored with the run: a re-render has the original
    verdict and criterion values; --recompute from stored telemetry and labels finds no
    difference; a corrupted stored row is a clear error, never a partial report."""
    import sqlalchemy as sa

    from flows.pilot_report import recompute_pilot_report, rerender_pilot_report
    from telemetry.evidence_store import EvidenceError

    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 't.db'}"
    outcome = _run(corpus_file, tmp_path / "out", db)
    original = json.loads(Path(outcome["evidence"]).read_text())
    assert original["labelled"] is not None  # the corpus is labelled
    again = rerender_pilot_report(outcome["run_id"], out=tmp_path / "again", db=db)
    rebuilt = json.loads(Path(again["evidence"]).read_text())
    assert rebuilt["verdict"] == original["verdict"]
    assert rebuilt["criteria"] == original["criteria"]
    assert rebuilt["labelled"] == original["labelled"]
    _, diffs = recompute_pilot_report(outcome["run_id"], out=tmp_path / "re", db=db)
    assert diffs == []
    with pytest.raises(LookupError, match="no run"):
        recompute_pilot_report("nope", out=tmp_path / "x", db=db)
    with pytest.raises(EvidenceError, match="no stored evidence"):
        rerender_pilot_report("nope", out=tmp_path / "x", db=db)
    # Evidence stored by an earlier harness: one clear error naming its version.
    import hashlib

    from reports.pilot import PilotEvidenceError
    from telemetry.evidence_store import _canonical

    body = _canonical({**original, "evidence_version": "2"})
    engine = sa.create_engine(db)
    with engine.begin() as conn:
        conn.execute(
            sa.text("update run_evidence set evidence = :b, sha256 = :h"),
            {"b": body, "h": hashlib.sha256(body.encode()).hexdigest()},
        )
    engine.dispose()
    with pytest.raises(PilotEvidenceError, match="evidence version '2'.*re-run the pilot"):
        rerender_pilot_report(outcome["run_id"], out=tmp_path / "old", db=db)
    _, diffs = recompute_pilot_report(outcome["run_id"], out=tmp_path / "re2", db=db)
    assert diffs == []  # the way out it names: current evidence rebuilt from stored telemetry
    engine = sa.create_engine(db)
    with engine.begin() as conn:
        conn.execute(sa.text("update run_evidence set evidence = replace(evidence, 'go', 'og')"))
    engine.dispose()
    with pytest.raises(EvidenceError, match="corrupted"):
        rerender_pilot_report(outcome["run_id"], out=tmp_path / "y", db=db)


def test_different_content_over_the_same_window_gets_its_own_run(
    prefect_harness, tmp_path, monkeypatch
):
    """Same series, window and config, different corpus rows: a new run id, both reports and
    both sets of rows survive, and neither reports a false determinism failure."""
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 't.db'}"
    a, _ = _corpus(tmp_path / "a.parquet", n=300, seed=5)
    b, _ = _corpus(tmp_path / "b.parquet", n=300, seed=6)
    first = _run(a, tmp_path / "out", db)
    second = _run(b, tmp_path / "out", db)
    assert first["run_id"] != second["run_id"]
    for o in (first, second):
        ev = json.loads(Path(o["evidence"]).read_text())
        assert ev["run_id"] == o["run_id"] and ev["telemetry"]["duplicates"] == 0
        assert ev["determinism"]["mismatched"] == 0
        assert Path(o["report_html"]).exists()


@pytest.mark.parametrize("semantic", [False, True], ids=["rules", "hybrid"])
def test_calibrate_writes_a_candidate_that_keeps_its_promise(
    prefect_harness, corpus_file, tmp_path, monkeypatch, semantic
):
    """Calibrate sweeps the stored scores; a pilot of the written candidate on the same corpus
    reproduces the promised criterion values and statuses."""
    from flows.calibrate import run_calibration
    from router.config import load_config
    from telemetry.calibration import CalibrationError

    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 't.db'}"
    base = _run(corpus_file, tmp_path / "out", db, semantic=semantic)
    cand = tmp_path / "candidate.yaml"
    result, page = run_calibration(
        base["run_id"], out=cand, db=db, config=None, reports_out=tmp_path / "out"
    )
    assert page.exists() and result["labelled"] > 0
    if result["proposed"] is None:
        assert "No threshold" in result["message"] or "does not hold" in result["message"]
        pytest.skip("no setting meets the criteria on this small corpus: " + result["message"])
    assert load_config(cand).borderline_band == result["proposed"]["band"]
    rerun = _run(corpus_file, tmp_path / "out", db, config=str(cand), semantic=semantic)
    got = {c["id"]: c for c in rerun["criteria"]}
    for c in result["criteria"]:
        if c["id"] in ("noisy_rules", "data_quality", "determinism"):
            continue  # carried over from the run, measured afresh by the rerun
        assert got[c["id"]]["status"] == c["status"], c["id"]
        assert got[c["id"]]["value"] == pytest.approx(c["value"], rel=1e-9, abs=1e-9), c["id"]
    with pytest.raises(CalibrationError, match="nope"):
        run_calibration("nope", out=cand, db=db, config=None, reports_out=tmp_path / "out")


def test_run_against_run_comparison_and_its_noise_floor(
    prefect_harness, corpus_file, tmp_path, monkeypatch
):
    from flows.calibrate import compare_stored_runs

    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 't.db'}"
    base = _run(corpus_file, tmp_path / "out", db)
    result, page = compare_stored_runs(
        base["run_id"], base["run_id"], db=db, out=tmp_path / "out", tolerance=0.1, min_points=5
    )
    assert page.exists()
    assert all(m["result"] in ("pass", "nodata") for m in result["metrics"])  # self: no change
    assert result["vetoed_by"] == [] and len(result["noise_floor"]) == len(result["metrics"])


def test_a_store_that_is_down_spools_everything_and_says_no_go(
    prefect_harness, corpus_file, tmp_path, monkeypatch
):
    """PostgreSQL refusing connections for the whole run: every decision is spooled, nothing is
    lost, quality cannot be measured, and the verdict says no-go with the reason."""
    from telemetry.store import TelemetryStore

    monkeypatch.chdir(tmp_path)
    dead = "postgresql+psycopg://postgres@127.0.0.1:1/test"  # nothing listens on port 1
    outcome = _run(corpus_file, tmp_path / "out", dead)
    evidence = json.loads(Path(outcome["evidence"]).read_text())
    accepted = evidence["corpus_summary"]["in_window"]
    assert outcome["verdict"] == "no-go"
    assert evidence["telemetry"]["spooled"] == accepted and evidence["telemetry"]["written"] == 0
    assert TelemetryStore(dead).spool.rows_pending() == accepted
    assert any("spool" in w for w in evidence["warnings"])
    quality = {c["id"]: c for c in evidence["criteria"]}["data_quality"]
    assert quality["status"] == "fail"


def _harness(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """The harness CLI as a separate process (this checkout importable), output captured."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    return subprocess.run(
        procs.harness_cmd(*args), capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env
    )


def test_cli_exit_code_matches_the_verdict(corpus_file, tmp_path):
    proc = _harness(
        "pilot", "run", "--corpus", str(corpus_file), "--days", "3", "--rule-only",
        "--out", str(tmp_path / "out"), "--db", f"sqlite:///{tmp_path / 't.db'}", "--json",
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode in (0, 2, 3), proc.stderr[-2000:]
    evidence = json.loads(next((tmp_path / "out").glob("*/evidence.json")).read_text())
    assert proc.returncode == {"go": 0, "no-go": 2, "inconclusive": 3}[evidence["verdict"]]
    summary = json.loads(proc.stdout)  # --json: one document on stdout, nothing else
    assert summary["verdict"] == evidence["verdict"] and summary["run_id"] == evidence["run_id"]
    assert {"id", "value", "n", "ci_low", "ci_high", "status", "severity"} <= set(
        summary["criteria"][0]
    )
    assert CANARY not in proc.stdout + proc.stderr


def test_cli_reports_a_missing_corpus_clearly(tmp_path):
    proc = _harness("pilot", "run", "--corpus", str(tmp_path / "nope.parquet"), cwd=tmp_path)
    assert proc.returncode == 1
    assert "nope.parquet" in proc.stderr and "not found" in proc.stderr
    assert "Traceback" not in proc.stderr
