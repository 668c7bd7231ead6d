"""`pilot run --target URL` shadows a deployed router (`harness serve` as a real process): the
decisions it stores are the service's, equal to the in-process router's on the same corpus; a
target that is down is one clear error before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from live import procs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from data.generate import generate_corpus, write_corpus

    path = tmp_path_factory.mktemp("t") / "week.parquet"
    return write_corpus(generate_corpus(400, seed=12, days=2, start="2026-11-16"), path)


def test_a_shadow_pilot_stores_the_services_decisions(
    prefect_harness, corpus, served_router, tmp_path, monkeypatch
):
    import pandas as pd

    from flows.pilot import pilot_week
    from telemetry.store import TelemetryStore

    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 't.db'}"
    common = dict(corpus=str(corpus), days=2, out=str(tmp_path / "out"), db=db, semantic=False)
    shadow = pilot_week(**common, target=served_router.url)
    local = pilot_week(**common)
    assert shadow["run_id"] != local["run_id"] and "-target-" in shadow["run_id"]
    ev = json.loads(Path(shadow["evidence"]).read_text())
    assert ev["determinism"]["mismatched"] == 0 and ev["determinism"]["sample"] > 0
    assert any("Shadow of the deployed router" in w for w in ev["warnings"])
    store = TelemetryStore(db)
    cols = ["query_id", "complexity_level", "complexity_score", "domain", "model", "reason_codes"]
    a = store.read(run_id=shadow["run_id"], columns=cols).sort_values("query_id")
    b = store.read(run_id=local["run_id"], columns=cols).sort_values("query_id")
    store.close()
    assert len(a) == len(b) == ev["telemetry"]["rows"] > 0
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_a_target_that_is_down_is_one_clear_error(corpus, tmp_path):
    port = procs.free_port()  # nothing listens here
    res = CliRunner().invoke(
        __import__("flows.cli", fromlist=["app"]).app,
        [
            "pilot",
            "run",
            "--corpus",
            str(corpus),
            "--days",
            "2",
            "--out",
            str(tmp_path / "out"),
            "--db",
            f"sqlite:///{tmp_path / 't.db'}",
            "--target",
            f"http://127.0.0.1:{port}",
        ],
    )
    assert res.exit_code == 1, res.output
    assert "does not answer" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*/evidence.json"))
