"""Drill postmortems and the Failure Modes & Guarantees page, built from sample journals
(tests/data/journals: a passing upstream latency spike, a FAILED model failure, a passing
misconfigured toggle) written to the drill journal contract (docs/journal.md, schema 2.0)."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import refused_document
from typer.testing import CliRunner

from reports.failure_modes import CatalogueError, build_failure_modes, load_catalogue
from reports.postmortem import (
    DrillJournalError,
    build_postmortem,
    find_markers,
    load_journal,
    summarise,
)

JOURNALS = Path(__file__).parent / "data" / "journals"
SPIKE = JOURNALS / "upstream-latency-spike-passed.json"
FAILURE = JOURNALS / "model-failure-failed.json"
TOGGLE = JOURNALS / "misconfigured-toggle-passed.json"
ALERT_RULES = Path(__file__).parents[1] / "telemetry" / "alert_rules.yaml"
CATALOGUE = Path(__file__).parents[1] / "reports" / "failure_modes.yaml"
SCRIPT = "<script>alert(1)</script>"

SRE_SECTIONS = (
    "summary",
    "impact",
    "root-cause",
    "detection",
    "resolution",
    "guarantees",
    "action-items",
    "lessons",
    "timeline",
)


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def place(out: Path, journal: dict[str, Any], *, mtime: float | None = None) -> Path:
    """Put a journal where the drill engine writes it: <out>/drills/<run_id>/journal.json."""
    path = out / "drills" / journal["run_id"] / "journal.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(journal), encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    end = html.find("<section", start)
    return html[start : end if end != -1 else len(html)]


def fm_row(html: str, mode_id: str) -> str:
    start = html.index(f'<tr id="fm-{mode_id}"')
    return html[start : html.index("</tr>", start)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One report site with the three sample drills, their postmortems and the page."""
    out = tmp_path_factory.mktemp("site")
    for i, src in enumerate((SPIKE, FAILURE, TOGGLE)):
        place(out, read(src), mtime=1_790_000_000 + i)
        build_postmortem(src, out)
    build_failure_modes(out)
    return out


def postmortem_of(site: Path, src: Path, ext: str = "html") -> str:
    run_id = read(src)["run_id"]
    return (site / "drills" / run_id / f"postmortem.{ext}").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ postmortem


def test_postmortem_has_every_sre_section_and_says_drill(site: Path) -> None:
    html = postmortem_of(site, SPIKE)
    md = postmortem_of(site, SPIKE, "md")
    for sid in SRE_SECTIONS:
        assert f'id="{sid}"' in html, sid
    assert "Postmortem (DRILL)" in html and "This was an exercise" in html
    for heading in (
        "## Summary",
        "## Impact",
        "## Root cause and trigger",
        "## Detection",
        "## Resolution",
        "## Expected vs actual",
        "## Action items",
        "## Lessons learned",
        "### What went well",
        "### What went wrong",
        "### Where we got lucky",
        "## Timeline",
    ):
        assert heading in md, heading
    assert "DRILL — not a real incident" in md
    impact = section(html, "impact")
    assert "36,000" in impact and "2,710 ms" in impact and "$3.06" in impact


def test_timeline_markers_in_order_with_their_utc_times(site: Path) -> None:
    for text in (section(postmortem_of(site, SPIKE), "timeline"), postmortem_of(site, SPIKE, "md")):
        begins, mitigated, ends = (
            text.index("OUTAGE BEGINS"),
            text.index("MITIGATED"),
            text.index("OUTAGE ENDS"),
        )
        assert begins < mitigated < ends
    md = postmortem_of(site, SPIKE, "md")
    assert re.search(r"\*\*02:05:00\*\* \| \*\*T\+05:00\*\* \| \*\*OUTAGE BEGINS\*\*", md)
    assert re.search(r"\*\*02:06:30\*\* \| \*\*T\+06:30\*\* \| \*\*MITIGATED\*\*", md)
    assert re.search(r"\*\*02:15:00\*\* \| \*\*T\+15:00\*\* \| \*\*OUTAGE ENDS\*\*", md)


def test_markers_fall_back_to_events_but_mitigation_is_the_journals_only() -> None:
    data = read(SPIKE)
    data["mitigation"] = {"mitigated_at": None, "time_to_mitigate_s": None, "how": None}
    data["events"] = [e for e in data["events"] if e["kind"] != "fault_off"]
    j, _ = load_journal(data)
    m = find_markers(j)
    assert m.begins.strftime("%H:%M:%S") == "02:05:00"  # first fault_on
    # "mitigated" is decided once, by the drill engine: a breaker_open event does not re-derive it
    assert m.mitigated is None and m.mitigated_by is None
    assert m.ends.strftime("%H:%M:%S") == "02:30:00"  # no fault_off: the rollback ended it


def test_failed_guarantee_becomes_an_action_item_with_the_gap(site: Path) -> None:
    j, src = load_journal(FAILURE)
    items = summarise(j, src)["action_items"]
    fix = [a for a in items if a["guarantee"] == "errors-contained"]
    assert len(fix) == 1 and fix[0]["priority"] == "P1"
    assert "error rate under 5 %" in fix[0]["text"]  # expected
    assert "stayed at 8.3 %" in fix[0]["text"]  # actual
    # detection took 120 s of a 3 min window (> half): a follow-up, not a pass without comment
    follow = [a for a in items if a["guarantee"] == "detected"]
    assert follow and follow[0]["priority"] == "P3" and "67%" in follow[0]["text"]
    html = section(postmortem_of(site, FAILURE), "action-items")
    assert "errors-contained" in html and "No action items" not in html
    assert "FAILED" in section(postmortem_of(site, FAILURE), "verdict")


def test_all_guarantees_held_says_no_action_items(site: Path) -> None:
    j, src = load_journal(SPIKE)
    assert summarise(j, src)["action_items"] == []
    assert "No action items" in section(postmortem_of(site, SPIKE), "action-items")
    assert "No action items" in postmortem_of(site, SPIKE, "md")


def test_lessons_come_from_the_journal_not_boilerplate(site: Path) -> None:
    j, src = load_journal(FAILURE)
    lessons = summarise(j, src)["lessons"]
    assert any("errors-contained failed" in line for line in lessons["wrong"])
    assert any("error_rate was violated" in line and "8 of 30" in line for line in lessons["wrong"])
    assert any("detected passed, but" in line for line in lessons["lucky"])
    # the breaker opened 12 s in, the alert 2 min in: containment did not wait for a human
    assert any("before any alert fired" in line for line in lessons["lucky"])


@pytest.mark.parametrize("src", [SPIKE, FAILURE, TOGGLE], ids=lambda p: p.stem)
def test_expected_vs_actual_lists_every_guarantee(site: Path, src: Path) -> None:
    table = section(postmortem_of(site, src), "guarantees")
    md = postmortem_of(site, src, "md")
    for g in read(src)["guarantees"]:
        assert f'id="g-{g["id"]}"' in table
        row = table[table.index(f'id="g-{g["id"]}"') :]
        row = row[: row.index("</tr>")]
        assert g["verdict"].upper() in row
        assert f"| `{g['id']}` |" in md


def test_journal_text_is_escaped_in_html_and_markdown(site: Path) -> None:
    html = postmortem_of(site, FAILURE)
    md = postmortem_of(site, FAILURE, "md")
    assert SCRIPT in FAILURE.read_text()  # the sample really carries the payload
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert SCRIPT not in md and "&lt;script&gt;" in md


def test_pages_load_nothing_from_the_network(site: Path) -> None:
    pages = [site / "failure-modes.html"] + sorted(site.glob("drills/*/postmortem.html"))
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "cdn.plot.ly" not in html and "cdn.jsdelivr" not in html
        for src in re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="([^"]+)"', html):
            assert not src.startswith(("http:", "https:", "//")), (page, src)
            assert (page.parent / src).resolve().is_file(), (page, src)
    assert '<script src="../../assets/plotly.min.js">' in postmortem_of(site, SPIKE)


def test_journal_with_a_missing_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    data = read(SPIKE)
    del data["guarantees"]
    data["status"] = "exploded"
    message = refused_document(build_postmortem, data, tmp_path, DrillJournalError)
    assert "missing key 'guarantees'" in message
    assert "'status'" in message and "completed" in message


def test_unreadable_journal_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "journal.json"
    bad.write_text('{"kind": "drill", ')
    with pytest.raises(DrillJournalError, match="not valid JSON"):
        load_journal(bad)


# ---------------------------------------------------------------------------- failure modes


def test_one_row_per_failure_mode_and_no_evidence_for_undrilled(site: Path) -> None:
    html = (site / "failure-modes.html").read_text(encoding="utf-8")
    catalogue = load_catalogue()
    assert html.count('<tr id="fm-') == len(catalogue.failure_modes) == 6
    drilled = {"upstream-latency-spike", "model-failure", "misconfigured-toggle"}
    for mode in catalogue.failure_modes:
        row = fm_row(html, mode.id)
        if mode.id in drilled:
            assert "NO EVIDENCE" not in row and "postmortem.html" in row
        else:
            assert "NO EVIDENCE" in row and "PASSED" not in row and "FAILED" not in row
    toggle = fm_row(html, "misconfigured-toggle")
    assert "AMAIMA_EXECUTION_MODE=execution-enabled" in toggle  # the 2 a.m. step is concrete
    assert re.search(r"upstream calls while invalid</span><span>0<", toggle)
    assert "harness telemetry drain" in fm_row(html, "telemetry-store-outage")
    md = (site / "failure-modes.md").read_text(encoding="utf-8")
    assert md.count("NO EVIDENCE") >= 3 and "## Cost spike" in md


def test_failed_latest_drill_is_shown_prominently(site: Path) -> None:
    html = (site / "failure-modes.html").read_text(encoding="utf-8")
    row = fm_row(html, "model-failure")
    assert 'class="fm fm-failed"' in row
    assert "LATEST DRILL FAILED" in row and "errors-contained" in row and "8.3 %" in row
    assert "the latest drill FAILED for Model failure" in section(html, "status")
    assert SCRIPT not in html


def test_the_latest_run_of_a_scenario_is_the_evidence(tmp_path: Path) -> None:
    passed = read(SPIKE)
    passed["created_at"] = None  # first without the engine's real timestamp: file mtime decides
    failed = copy.deepcopy(passed)
    failed["run_id"] = passed["run_id"].replace("1a2b3c", "ffffff")
    failed["guarantees"][1]["verdict"] = "failed"
    failed["guarantees"][1]["actual_text"] = "never fired"
    place(tmp_path, passed, mtime=1_790_000_000)
    newer = place(tmp_path, failed, mtime=1_790_000_600)
    row = fm_row(build_failure_modes(tmp_path).read_text(), "upstream-latency-spike")
    assert failed["run_id"] in row and "LATEST DRILL FAILED" in row and "2 runs" in row

    os.utime(newer, (1_780_000_000, 1_780_000_000))  # now the passing run is the newer one
    row = fm_row(build_failure_modes(tmp_path).read_text(), "upstream-latency-spike")
    assert passed["run_id"] in row and "PASSED" in row and "LATEST DRILL FAILED" not in row

    failed["created_at"] = "2031-01-01T00:00:00Z"  # the journal's own real time beats mtime
    place(tmp_path, failed, mtime=1_780_000_000)
    row = fm_row(build_failure_modes(tmp_path).read_text(), "upstream-latency-spike")
    assert failed["run_id"] in row and "LATEST DRILL FAILED" in row


def test_corrupt_journals_are_listed_not_fatal(tmp_path: Path) -> None:
    place(tmp_path, read(TOGGLE))
    (tmp_path / "drills" / "truncated").mkdir(parents=True)
    (tmp_path / "drills" / "truncated" / "journal.json").write_text('{"kind": "drill", "run')
    incomplete = read(SPIKE)
    del incomplete["events"]
    place(tmp_path, incomplete)
    html = build_failure_modes(tmp_path).read_text()
    problems = section(html, "problems")
    assert "drills/truncated/journal.json" in problems and "not valid JSON" in problems
    assert "missing key" in problems and "events" in problems
    assert "NO EVIDENCE" in fm_row(html, "upstream-latency-spike")  # unreadable is not evidence
    assert "PASSED" in fm_row(html, "misconfigured-toggle")


def test_drill_not_in_the_catalogue_is_listed_separately(tmp_path: Path) -> None:
    stray = read(TOGGLE)
    stray["name"], stray["run_id"] = "disk-full", "drill-disk-full-1"
    place(tmp_path, stray)
    html = build_failure_modes(tmp_path).read_text()
    assert "disk-full" in section(html, "other-drills")
    assert html.count("NO EVIDENCE") == 6


def test_catalogue_alerts_are_real_alert_rules() -> None:
    rules = {r["name"] for r in yaml.safe_load(ALERT_RULES.read_text())["rules"]}
    for mode in load_catalogue().failure_modes:
        assert mode.operator, mode.id
        for alert in mode.detection.alerts:
            assert alert in rules, (mode.id, alert)


def test_bad_catalogue_names_the_entry_and_field(tmp_path: Path) -> None:
    data = yaml.safe_load(CATALOGUE.read_text())
    del data["failure_modes"][4]["guarantee"]
    data["failure_modes"][0]["evidence"][0]["path"] = "derived.nope"
    bad = tmp_path / "modes.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogueError) as err:
        load_catalogue(bad)
    msg = str(err.value)
    assert str(bad) in msg and "'model-failure'" in msg and "guarantee" in msg
    assert "derived.nope" in msg or "unknown derived measure" in msg


# ------------------------------------------------------------------------------------ CLI


def test_cli_report_failure_modes_writes_the_page(tmp_path: Path) -> None:
    from flows.cli import app

    place(tmp_path, read(FAILURE))
    result = CliRunner().invoke(app, ["report", "failure-modes", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = tmp_path / "failure-modes.html"
    assert page.is_file() and str(page) in result.output
    assert (tmp_path / "failure-modes.md").is_file()
    run_id = read(FAILURE)["run_id"]
    assert (tmp_path / "drills" / run_id / "postmortem.html").is_file()  # built for the link


def test_cli_report_postmortem_copies_the_journal_and_rejects_a_bad_one(tmp_path: Path) -> None:
    from flows.cli import app

    runner = CliRunner()
    src = tmp_path / "elsewhere.json"
    shutil.copy(TOGGLE, src)
    out = tmp_path / "site"
    result = runner.invoke(app, ["report", "postmortem", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    run_dir = out / "drills" / read(TOGGLE)["run_id"]
    assert (run_dir / "postmortem.html").is_file() and (run_dir / "journal.json").is_file()
    assert "PASSED" in fm_row((out / "failure-modes.html").read_text(), "misconfigured-toggle")

    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    result = runner.invoke(app, ["report", "postmortem", str(bad), "--out", str(out)])
    assert result.exit_code == 1
    assert str(bad) in result.output and "JSON object" in result.output


def test_aborted_drill_without_metrics_still_gets_a_postmortem(tmp_path: Path) -> None:
    data = read(SPIKE)
    data.update(
        status="aborted",
        error="upstream simulator crashed at T+03:00",
        metrics=[],
        events=data["events"][:2],
        faults=[],
        detection={"alert": None, "fired_at": None, "time_to_detect_s": None},
        mitigation={"mitigated_at": None, "time_to_mitigate_s": None, "how": None},
        timeline_markers={"outage_begins": None, "outage_ends": None},
    )
    for g in data["guarantees"]:
        g.update(verdict="error", actual={}, actual_text="not evaluated: drill aborted")
    paths = build_postmortem(data, tmp_path)
    html = paths.html.read_text()
    assert "FAILED" in section(html, "verdict") and "upstream simulator crashed" in html
    items = section(html, "action-items")
    assert "ended &#39;aborted&#39;" in items and "could not be evaluated" in items
    assert "OUTAGE BEGINS" not in section(html, "timeline")
    assert json.loads(paths.journal.read_text())["status"] == "aborted"


def test_invalid_toggle_from_the_start_is_the_outage(tmp_path: Path) -> None:
    data = read(TOGGLE)
    data["execution_mode"] = "Execution-Enabled "
    data["faults"] = []
    data["events"] = [e for e in data["events"] if e["kind"] not in ("fault_on", "fault_off")]
    j, src = load_journal(data)
    s = summarise(j, src)
    assert s["markers"].begins.strftime("%H:%M") == "02:00"  # misconfigured from the start
    assert s["markers"].ends.strftime("%H:%M") == "02:30"  # the rollback restored it
    assert "'Execution-Enabled '" in s["toggle_note"] and "fail closed" in s["toggle_note"]
    html = build_postmortem(data, tmp_path).html.read_text()
    assert "Execution-Enabled" in section(html, "root-cause")


# ------------------------------------------- numbers that agree, on journals the runner wrote


@pytest.fixture(scope="module")
def real_site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The latency-spike drill run by the real runner twice — as shipped (passes) and with the
    alert demanded within 10 s (it takes 60 s: fails) — and every page built from the journals."""
    from drills.runner import run_scenario
    from drills.scenario import load_scenario, parse_scenario
    from reports.site import build_index

    root = tmp_path_factory.mktemp("real")
    out = root / "out"
    journals = {}
    for label, within in (("passed", None), ("failed", "10s")):
        data = load_scenario("upstream-latency-spike").model_dump(mode="json")
        if within:
            for g in data["guarantees"]:
                if g["id"] == "latency-alert":
                    g["expect"] = {"within": within}
        result = run_scenario(
            parse_scenario(data, f"spike ({label})"),
            db=f"sqlite:///{root / 'telemetry.db'}",
            out=out,
            spool_dir=root / "spool",
            qps=2,
        )
        build_postmortem(result.journal_path, out)
        journals[label] = read(result.journal_path)
    build_failure_modes(out)
    build_index(out)
    return {"out": out, "journals": journals}


def _real_page(real_site: dict[str, Any], label: str, ext: str = "html") -> str:
    run_id = real_site["journals"][label]["run_id"]
    return (real_site["out"] / "drills" / run_id / f"postmortem.{ext}").read_text("utf-8")


def test_failures_are_counted_the_way_the_error_rate_alert_counts_them(real_site) -> None:
    j = real_site["journals"]["passed"]
    imp = j["impact"]
    assert "error_rate_high" in {a["rule"] for a in j["alerts"]}  # the alert fired ...
    failed = imp["errors"] + imp["rejected"]
    assert failed > 0  # ... because rejections count as failures
    md = _real_page(real_site, "passed", "md")
    html = _real_page(real_site, "passed")
    assert f"| Failed (rejected + error + timeout, what the error rate counts) | {failed:,} (" in md
    assert f"| Rejected (retryable decision id) | {imp['rejected']:,} |" in md
    assert f"| Upstream error or timeout | {imp['errors']:,} |" in md
    served = imp["executed"] - failed - imp["fallbacks"]
    assert f"| Served by the routed model | {served:,} |" in md
    for page in (md, html):
        assert not re.search(r"ended in error(?!, timeout or rejection)", page)
        assert "executed by a model" not in page
        assert f"{failed:,} of {imp['executed']:,} queries sent to execution failed" in page
        assert "count rejections as failures" in page


def test_a_tier_fault_shows_the_tier_p95_not_the_all_tier_p95(real_site) -> None:
    md = _real_page(real_site, "passed", "md")
    row = next(line for line in md.splitlines() if line.startswith("| tier large"))
    during = float(row.split("|")[3].replace(",", "").replace("ms", ""))
    assert during > 3000  # the fault adds 4 s to the large tier
    all_row = next(line for line in md.splitlines() if line.startswith("| all executed queries"))
    assert float(all_row.split("|")[3].replace(",", "").replace("ms", "")) < during
    fm = (real_site["out"] / "failure-modes.html").read_text("utf-8")
    cell = fm[fm.index("p95 of the faulted tier during") :][:200]
    value = re.search(r"<span>([\d,]+) ms</span>", cell)
    assert value and float(value.group(1).replace(",", "")) > 3000


def test_cost_change_is_explained_in_words(real_site) -> None:
    j = real_site["journals"]["passed"]
    md = _real_page(real_site, "passed", "md")
    extra = j["impact"]["extra_cost_usd"]
    sign = "+" if extra > 0 else "−"
    assert f"| Cost change during the faults | {sign}${abs(extra):.2f} |" in md
    assert "per 1,000 queries during" in md and "Extra cost" not in md
    from reports.postmortem import cost_change

    for value, signed, words in (
        (1.95, "+$1.95", "The faults cost $1.95 more than the same queries cost before them"),
        (-1.95, "−$1.95", "$1.95 less was billed during the faults than before them"),
    ):
        other = copy.deepcopy(j)
        other["impact"]["extra_cost_usd"] = value
        c = cost_change(load_journal(other)[0])
        assert c is not None
        assert c["signed"] == signed and c["text"].startswith(words)
        if value < 0 and j["impact"]["rejected"]:
            assert "rejected queries were never billed" in c["text"]


def test_numbers_are_rounded_for_people(real_site) -> None:
    for label in ("passed", "failed"):
        for ext in ("html", "md"):
            page = _real_page(real_site, label, ext)
            text = re.sub(r"<script.*?</script>", "", page, flags=re.S)
            text = re.sub(r'<div class="figure.*?</div>', "", text, flags=re.S)
            assert not re.search(r"\d\.\d{5,}", text), re.search(r".{40}\d\.\d{5,}.{20}", text)
            assert "&#34;max&#34;" not in text and '{"max"' not in text and "{'max'" not in text
    html = _real_page(real_site, "passed")
    ss = section(html, "supporting")
    assert "≤ 2.0 %" in ss and "≥ 100.0 %" in ss and "≤ 1,500 ms" in ss
    assert ss.count("tier large") == 3  # before, during (worst) and after


def test_each_breaker_event_is_listed_once(real_site) -> None:
    j = real_site["journals"]["passed"]
    reopen = sum(
        e["kind"] == "breaker_open" and e["detail"].get("old") == "half_open" for e in j["events"]
    )
    assert reopen > 0
    html = _real_page(real_site, "passed")
    md = _real_page(real_site, "passed", "md")
    assert (
        section(html, "timeline").count("Circuit breaker re-opened (half-open probe failed)")
        == reopen
    )
    assert section(html, "resolution").count("half-open") == 0 or "re-opened" not in section(
        html, "resolution"
    ).replace("Re-opened after a failed probe", "")
    assert md.count("Circuit breaker re-opened (half-open probe failed)") == reopen
    # a failed probe and its re-open are one row; only probes that did not fail keep a row
    probes = sum(e["kind"] == "breaker_half_open" for e in j["events"])
    assert md.count("Circuit breaker half-open (probing)") == probes - reopen
    for model in {e["detail"]["model"] for e in j["events"] if e["kind"] == "breaker_open"}:
        assert md.count(f"- Circuit breaker `{model}`") == 1


def test_a_failed_drill_is_failed_on_every_page(real_site) -> None:
    j = real_site["journals"]["failed"]
    assert j["status"] == "completed"  # the run ended normally; a guarantee did not hold
    html = _real_page(real_site, "failed")
    md = _real_page(real_site, "failed", "md")
    header = html[: html.index("</header>")]
    assert "DRILL · FAILED" in header and "completed" not in header.split("Result", 1)[1]
    assert 'class="verdict-word">FAILED' in html
    assert "| Result | DRILL · verdict **FAILED** (7 of 8 guarantees held" in md
    assert 'status good">completed' not in html
    index = (real_site["out"] / "index.html").read_text("utf-8")
    at = index.index(f'<code class="id-full">{j["run_id"]}</code>')
    row = index[index.rindex("<tr", 0, at) : at]
    assert "FAILED" in row and "PASSED" not in row and "status good" not in index
    assert "Drill upstream-latency-spike failed its latest run" in section(index, "status")
    fm = (real_site["out"] / "failure-modes.html").read_text("utf-8")
    assert fm_row(fm, "upstream-latency-spike").count("FAILED") >= 1


def test_a_few_failures_in_many_are_not_shown_as_zero_percent(real_site) -> None:
    from reports.postmortem import failed_text, outcomes, share_text

    j = copy.deepcopy(real_site["journals"]["passed"])
    j["impact"].update(executed=36000, errors=6, rejected=0, fallbacks=3000)
    o = outcomes(load_journal(j)[0])
    assert share_text(o["failed_rate"]) == "< 0.1 %"
    assert failed_text(o) == (
        "6 of 36,000 queries sent to execution failed (< 0.1 %): 6 upstream errors or timeouts."
    )
    j["impact"].update(errors=1, rejected=1586)
    o = outcomes(load_journal(j)[0])
    assert failed_text(o).startswith(
        "1,587 of 36,000 queries sent to execution failed (4.4 %): 1,586 rejected with a "
        "retryable decision id and 1 upstream error or timeout."
    )


def test_a_real_journal_round_trips_to_the_same_numbers_on_every_page(real_site) -> None:
    """The runner's journal, read back by the postmortem builder and the Failure Modes page:
    detection, mitigation and outcome numbers are the journal's own, not re-derived ones."""
    from drills.journal import parse_journal
    from reports.postmortem import human_duration
    from reports.render import parse_ts

    data = real_site["journals"]["failed"]  # the latest run: the Failure Modes evidence
    parse_journal(data)  # the writer's output is valid under the reader's (one) model
    j, src = load_journal(data)
    s = summarise(j, src)
    det, mit, imp = data["detection"], data["mitigation"], data["impact"]
    assert det["time_to_detect_s"] is not None and mit["mitigated_at"] is not None
    assert s["detection"]["ttd"] == det["time_to_detect_s"]
    assert s["detection"]["alert"] == det["alert"]
    assert s["detection"]["at"] == parse_ts(det["fired_at"])
    assert s["mitigation"]["ttm"] == mit["time_to_mitigate_s"]
    assert s["markers"].mitigated == parse_ts(mit["mitigated_at"])
    assert s["markers"].begins == parse_ts(data["timeline_markers"]["outage_begins"])
    assert s["markers"].begins == parse_ts(data["faults"][0]["start"])
    fired = parse_ts(det["fired_at"]) - parse_ts(data["faults"][0]["start"])
    assert fired.total_seconds() == det["time_to_detect_s"]
    assert s["outcomes"]["executed"] == imp["executed"]
    assert s["outcomes"]["failed"] == imp["errors"] + imp["rejected"]
    md = _real_page(real_site, "failed", "md")
    assert f"**{human_duration(det['time_to_detect_s'])}** after the fault began" in md
    fm_md = (real_site["out"] / "failure-modes.md").read_text("utf-8")
    block = fm_md[fm_md.index(data["run_id"]) :]
    assert f"time to detect: {human_duration(det['time_to_detect_s'])}" in block
    assert f"time to mitigate: {human_duration(mit['time_to_mitigate_s'])}" in block
    assert f"fallbacks: {imp['fallbacks']:,}" in block
