"""The report site's memory: overall status, drills grouped by scenario with their history
(journals written by the real drill runner), pilot series with week-over-week trends, run ids
that carry wall-clock time, and `harness report prune --keep N` retention."""

from __future__ import annotations

import copy
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drills.runner import run_scenario
from drills.scenario import load_scenario, parse_scenario
from reports.site import HISTORY, PruneError, build_index, prune

SAMPLE = Path(__file__).parent / "data" / "pilot_evidence_sample.json"
QPS = 2  # the lightest rate at which the spike drill still holds every guarantee


def _spike(failing: bool = False):
    """The built-in latency spike; ``failing`` demands the alert within 10 s (it takes 60 s)."""
    data = load_scenario("upstream-latency-spike").model_dump(mode="json")
    if failing:
        for g in data["guarantees"]:
            if g["id"] == "latency-alert":
                g["expect"] = {"within": "10s"}
    return parse_scenario(data, "spike (test)")


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Three real runs of one scenario (pass, FAIL, pass, in that order), journals as written."""
    root = tmp_path_factory.mktemp("drills")
    out: dict[str, dict] = {}
    for label, failing in (("first", False), ("failed", True), ("last", False)):
        result = run_scenario(
            _spike(failing),
            db=f"sqlite:///{root / 'telemetry.db'}",
            out=root / "out",
            spool_dir=root / "spool",
            qps=QPS,
        )
        out[label] = json.loads(result.journal_path.read_text("utf-8"))
    assert out["first"]["status"] == "completed" and out["failed"]["status"] == "completed"
    return out


def place_journal(site: Path, journal: dict, created: str) -> Path:
    j = copy.deepcopy(journal)
    j["created_at"] = created
    folder = site / "drills" / j["run_id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "journal.json").write_text(json.dumps(j), encoding="utf-8")
    return folder


def place_pilot(
    site: Path, week: int, verdict: str, borderline: float, series: str = "pilot"
) -> Path:
    """Sample evidence moved to week ``week`` of November with a given borderline rate."""
    doc = json.loads(SAMPLE.read_text("utf-8"))
    start, end = f"2026-11-{2 + 7 * week:02d}", f"2026-11-{8 + 7 * week:02d}"
    doc["run_id"] = f"{series}-{start.replace('-', '')}-run{week}"
    doc["identity"] = {"series": series}
    doc["window"] = {"start": start, "end": end, "days": 7}
    doc["created_at"] = f"2026-11-{9 + 7 * week:02d}T06:00:00Z"
    doc["verdict"] = verdict
    for c in doc["criteria"]:
        if c["id"] == "borderline_rate":
            c["value"] = borderline
            c["threshold_value"] = 0.15  # real evidence has it (criteria[].threshold_value)
            c["status"] = "fail" if borderline > 0.15 else "pass"
    folder = site / doc["run_id"]
    folder.mkdir(parents=True)
    (folder / "evidence.json").write_text(json.dumps(doc), encoding="utf-8")
    return folder


def section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    end = html.find("<section", start)
    return html[start : end if end != -1 else len(html)]


def test_drill_run_ids_carry_the_wall_clock_not_the_virtual_start(journals: dict) -> None:
    for j in journals.values():
        assert j["started_at"] == "2026-11-16T02:00:00Z"  # virtual, the same every run
        stamp = re.search(r"-(\d{8}T\d{6}Z)-", j["run_id"]).group(1)
        ran = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        assert abs((ran - datetime.now(UTC)).total_seconds()) < 3600, j["run_id"]
    assert len({j["run_id"] for j in journals.values()}) == 3


def test_drills_are_grouped_by_scenario_with_pass_fail_history(
    journals: dict, tmp_path: Path
) -> None:
    place_journal(tmp_path, journals["first"], "2026-11-27T10:00:00Z")
    place_journal(tmp_path, journals["failed"], "2026-11-28T10:00:00Z")
    place_journal(tmp_path, journals["last"], "2026-11-29T10:00:00Z")
    html = build_index(tmp_path).read_text("utf-8")
    drills = section(html, "drills")
    assert drills.count('class="scenario"') == 1  # three runs, one scenario block
    block = drills[drills.index('id="drill-upstream-latency-spike"') :]
    assert "2 of the last 3 passed" in block
    # the sparkline: one square per run, oldest left, the failed one red in the middle
    svg = block[block.index("<svg") : block.index("</svg>")]
    colours = re.findall(r'<rect [^>]*fill="(#[0-9a-f]+)"', svg)
    assert colours == ["#15803d", "#b91c1c", "#15803d"]
    # runs listed newest first; the failed run says FAILED, never a green "completed"
    rows = block.split("<tr")[2:]
    assert [journals[k]["run_id"] in rows[i] for i, k in enumerate(("last", "failed", "first"))]
    assert all(journals[k]["run_id"] in rows[i] for i, k in enumerate(("last", "failed", "first")))
    assert "FAILED" in rows[1] and "7 / 8 held, 1 failed" in rows[1]
    assert "PASSED" in rows[0] and "FAILED" not in rows[0]
    # resilience score over time: one dot per run with a score
    assert block.count("<circle") == 3
    # the latest run passed: the overall status does not call the drill failing
    assert "failed its latest run" not in section(html, "status")


def test_a_failing_latest_drill_is_at_the_top(journals: dict, tmp_path: Path) -> None:
    place_journal(tmp_path, journals["first"], "2026-11-27T10:00:00Z")
    place_journal(tmp_path, journals["failed"], "2026-11-29T10:00:00Z")
    html = build_index(tmp_path).read_text("utf-8")
    status = section(html, "status")
    assert "ATTENTION" in status
    assert "Drill upstream-latency-spike failed its latest run" in status
    assert "7 / 8 held, 1 failed" in status
    assert html.index('id="status"') < html.index('id="pilots"') < html.index('id="drills"')


def test_only_the_last_runs_are_listed_and_the_rest_counted(journals: dict, tmp_path: Path) -> None:
    base = journals["first"]
    for i in range(HISTORY + 2):
        j = copy.deepcopy(base)
        j["run_id"] = f"{base['run_id']}-{i:02d}"
        place_journal(tmp_path, j, f"2026-11-{10 + i:02d}T10:00:00Z")
    block = section(build_index(tmp_path).read_text("utf-8"), "drills")
    assert "2 older runs not listed" in block
    assert f"{base['run_id']}-{HISTORY + 1:02d}" in block  # newest listed
    assert f"{base['run_id']}-00<" not in block and f"{base['run_id']}-01<" not in block


def test_pilot_series_show_latest_verdict_and_week_over_week_trend(tmp_path: Path) -> None:
    place_pilot(tmp_path, 0, "go", 0.10)
    place_pilot(tmp_path, 1, "go", 0.12)
    place_pilot(tmp_path, 2, "no-go", 0.19)
    place_pilot(tmp_path, 1, "inconclusive", 0.14, series="canary")
    html = build_index(tmp_path).read_text("utf-8")
    status = section(html, "status")
    assert "Pilot series pilot: NO-GO for 2026-11-16 – 2026-11-22" in status
    assert "Pilot series canary: INCONCLUSIVE" in status
    assert "1 pilot series at NO-GO" in status
    pilots = section(html, "pilots")
    main = pilots[pilots.index('id="series-pilot"') : pilots.index('id="series-canary"')]
    weeks = [main.index(w) for w in ("2026-11-16 – 2026-11-22", "2026-11-09", "2026-11-02")]
    assert weeks == sorted(weeks)  # newest week first
    assert "19.0 %" in main and "+7.0 pts" in main and "+2.0 pts" in main
    # the trend chart: three weeks, the threshold drawn, the failing week's dot red
    assert "3 weeks, latest 19.0 %; dashed line: threshold 15.0 %" in main
    svg = main[main.index('aria-label="Borderline rate week over week"') :]
    svg = svg[: svg.index("</svg>")]
    assert re.findall(r'<circle [^>]*fill="(#[0-9a-f]+)"', svg) == [
        "#15803d",
        "#15803d",
        "#b91c1c",
    ]


def test_all_clear_only_when_every_series_is_go_and_every_drill_passes(
    journals: dict, tmp_path: Path
) -> None:
    place_pilot(tmp_path, 2, "go", 0.10)
    place_journal(tmp_path, journals["last"], "2026-11-29T10:00:00Z")
    status = section(build_index(tmp_path).read_text("utf-8"), "status")
    assert "ALL CLEAR" in status and "ATTENTION" not in status


def test_index_pages_load_nothing_from_the_network(journals: dict, tmp_path: Path) -> None:
    place_pilot(tmp_path, 0, "go", 0.10)
    place_journal(tmp_path, journals["first"], "2026-11-27T10:00:00Z")
    html = build_index(tmp_path).read_text("utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<svg" in html and "<script" not in html


# ------------------------------------------------------------------------------ retention


def _site_with_history(journals: dict, root: Path) -> dict[str, list[Path]]:
    drills = [
        place_journal(root, {**journals["first"], "run_id": f"d-{i}"}, f"2026-11-2{i}T10:00:00Z")
        for i in range(4)
    ]
    pilots = [place_pilot(root, w, "go", 0.1) for w in range(3)]
    other = [place_pilot(root, 1, "go", 0.1, series="canary")]
    return {"drills": drills, "pilots": pilots, "other": other}


def test_prune_keeps_the_newest_runs_per_series_and_scenario(
    journals: dict, tmp_path: Path
) -> None:
    runs = _site_with_history(journals, tmp_path)
    (tmp_path / "pilot-broken").mkdir()
    (tmp_path / "pilot-broken" / "evidence.json").write_text("{not json")
    result = prune(tmp_path, 2)
    assert sorted(result.removed) == sorted([*runs["drills"][:2], runs["pilots"][0]])
    assert all(not p.exists() for p in result.removed)
    assert all(p.exists() for p in [*runs["drills"][2:], *runs["pilots"][1:], *runs["other"]])
    assert (tmp_path / "pilot-broken").exists()  # unreadable: series unknown, kept
    html = (tmp_path / "index.html").read_text("utf-8")
    assert "d-0" not in html and "d-3" in html


def test_prune_never_leaves_the_site_root(journals: dict, tmp_path: Path) -> None:
    site, outside = tmp_path / "site", tmp_path / "outside"
    site.mkdir()
    for i in range(3):
        place_journal(
            outside, {**journals["first"], "run_id": f"ext-{i}"}, f"2026-11-1{i}T00:00:00Z"
        )
    place_journal(site, {**journals["first"], "run_id": "own-new"}, "2026-11-29T10:00:00Z")
    # an old run folder that is a symlink to a folder outside the site
    os.symlink(outside / "drills" / "ext-0", site / "drills" / "old-link")
    result = prune(site, 1)
    assert result.removed == []
    assert any("old-link" in s for s in result.skipped)
    assert (outside / "drills" / "ext-0" / "journal.json").exists()
    # a drills folder that is itself a symlink out of the site is refused outright
    site2 = tmp_path / "site2"
    site2.mkdir()
    os.symlink(outside / "drills", site2 / "drills")
    with pytest.raises(PruneError, match="symlink"):
        prune(site2, 1)
    assert len(list((outside / "drills").iterdir())) == 3


def test_cli_prune_prints_what_it_removed_and_rejects_bad_keep(
    journals: dict, tmp_path: Path
) -> None:
    from flows.cli import app
    from reports.failure_modes import build_failure_modes

    runs = _site_with_history(journals, tmp_path)
    fm = build_failure_modes(tmp_path)
    assert "4 runs; earlier" in fm.read_text("utf-8")
    runner = CliRunner()
    dry = runner.invoke(
        app, ["report", "prune", "--keep", "3", "--out", str(tmp_path), "--dry-run"]
    )
    assert dry.exit_code == 0, dry.output
    assert f"would remove: {runs['drills'][0]}" in dry.output and runs["drills"][0].exists()
    done = runner.invoke(app, ["report", "prune", "--keep", "3", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert f"removed: {runs['drills'][0]}" in done.output
    assert "removed 1 run folder(s), kept 7" in done.output
    assert not runs["drills"][0].exists()
    assert "3 runs; earlier" in fm.read_text("utf-8")  # the page no longer counts it
    bad = runner.invoke(app, ["report", "prune", "--keep", "0", "--out", str(tmp_path)])
    assert bad.exit_code == 1 and "error: --keep must be" in bad.output
    assert "Traceback" not in bad.output
    missing = runner.invoke(app, ["report", "prune", "--keep", "1", "--out", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "is not a folder" in missing.output
