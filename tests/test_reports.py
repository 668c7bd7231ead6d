"""The report layer: pilot report (HTML + Markdown), offline assets, figures and the site index."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import refused_document
from markupsafe import escape

from reports.assets import PLOTLY_JS, ensure_plotly_js, plotly_src, relative_root
from reports.pilot import PilotEvidenceError, build_pilot_report, validate_evidence
from reports.render import md_escape, pct, render, usd
from reports.site import build_index

SAMPLE = Path(__file__).parent / "data" / "pilot_evidence_sample.json"
XSS = "<script>alert(1)</script>"
GENERATED = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sample_doc() -> dict:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def evidence(sample_doc: dict) -> dict:
    return copy.deepcopy(sample_doc)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, sample_doc: dict):
    """The sample report built once from the committed evidence file."""
    root = tmp_path_factory.mktemp("site")
    paths = build_pilot_report(SAMPLE, root, generated_at=GENERATED)
    return root, paths


def _as_go(doc: dict) -> dict:
    for c in doc["criteria"]:
        if c["status"] == "fail":
            c["status"] = "pass"
    doc["verdict"] = "go"
    return doc


# ------------------------------------------------------------------------------ pilot report


def test_sample_evidence_is_a_complete_week(sample_doc: dict):
    assert len(sample_doc["metrics_hourly"]) == 168
    assert len(sample_doc["metrics_daily"]) == 7
    assert SAMPLE.stat().st_size < 400_000
    validate_evidence(sample_doc, str(SAMPLE))


def test_report_html_and_markdown_show_the_verdict_and_every_criterion(built, sample_doc):
    root, paths = built
    assert paths.html == root / sample_doc["run_id"] / "report.html"
    assert paths.markdown == root / sample_doc["run_id"] / "report.md"
    page = paths.html.read_text(encoding="utf-8")
    md = paths.markdown.read_text(encoding="utf-8")
    assert sample_doc["verdict"] == "no-go"
    assert 'class="verdict-word">NO-GO<' in page
    assert "## Verdict: NO-GO" in md
    for c in sample_doc["criteria"]:
        for text in (c["description"], c["measured"], c["threshold"]):
            assert str(escape(text)) in page, text
            assert md_escape(text) in md, text
    row = next(r for r in page.split("<tr") if "confidence_drop</span>" in r)
    assert "FAIL" in row
    md_row = next(line for line in md.splitlines() if "`confidence_drop`" in line)
    assert md_row.rstrip().endswith("**FAIL** |")


def test_sections_appear_in_the_specified_order(built):
    page = built[1].html.read_text(encoding="utf-8")
    order = [
        "verdict",
        "criteria",
        "traffic",
        "routing",
        "rates",
        "confidence",
        "cost",
        "latency",
        "alerts",
        "quality",
        "quarantine",
        "determinism",
        "comparison",
        "labelled",
        "warnings",
    ]
    positions = [page.index(f'id="{section}"') for section in order]
    assert positions == sorted(positions)


def test_go_verdict_is_shown_as_go(evidence, tmp_path):
    paths = build_pilot_report(_as_go(evidence), tmp_path, generated_at=GENERATED)
    page = paths.html.read_text(encoding="utf-8")
    assert 'class="verdict go"' in page and 'class="verdict-word">GO<' in page
    assert "## Verdict: GO" in paths.markdown.read_text(encoding="utf-8")


def test_comparison_and_labelled_sections_appear_only_when_present(built, evidence, tmp_path):
    page = built[1].html.read_text(encoding="utf-8")
    md = built[1].markdown.read_text(encoding="utf-8")
    assert 'id="comparison"' in page and 'id="fig-transition"' in page
    assert 'id="labelled"' in page and 'id="fig-confusion"' in page
    assert "## Candidate config comparison" in md and "## Labelled evaluation" in md

    evidence["comparison"] = None
    evidence["labelled"] = None  # "not measured" is null; an absent key is refused
    paths = build_pilot_report(evidence, tmp_path, generated_at=GENERATED)
    page = paths.html.read_text(encoding="utf-8")
    md = paths.markdown.read_text(encoding="utf-8")
    for marker in ('id="comparison"', 'id="labelled"', "fig-transition", "fig-confusion"):
        assert marker not in page
    assert "Candidate config" not in md and "Labelled evaluation" not in md


def test_corpus_strings_are_escaped_in_html_and_markdown(built, sample_doc):
    assert XSS in json.dumps(sample_doc)  # the sample really carries the payload
    page = built[1].html.read_text(encoding="utf-8")
    md = built[1].markdown.read_text(encoding="utf-8")
    assert XSS not in page and XSS not in md
    assert "<script>alert" not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    # rendered (escaped) in the header, the quarantine table and the warnings, both formats
    assert page.count(escaped) >= 3
    assert md.count(escaped) >= 3
    # every script tag on the page is ours: plotly.js by relative path or inline figure code
    allowed = {
        "<script>",
        '<script type="text/javascript">',
        '<script src="../assets/plotly.min.js">',
    }
    assert set(re.findall(r"<script[^>]*>", page)) <= allowed


def test_no_written_html_references_a_cdn_or_remote_script(built, evidence):
    root, _ = built
    build_index(root, generated_at=GENERATED)
    pages = list(root.rglob("*.html"))
    assert len(pages) >= 2
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "cdn." not in text and "https://cdn" not in text, page
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), page


def test_plotly_js_is_copied_once_and_loaded_by_relative_path(built, evidence):
    root, paths = built
    js = root / "assets" / PLOTLY_JS
    assert paths.plotly_js == js and js.stat().st_size > 1_000_000
    before = js.stat().st_mtime_ns
    evidence["run_id"] = "pilot-20261123-second"
    second = build_pilot_report(evidence, root, generated_at=GENERATED)
    assert js.stat().st_mtime_ns == before  # not rewritten
    assert [p.name for p in root.rglob("*.js")] == [PLOTLY_JS]
    for report in (paths.html, second.html):
        assert '<script src="../assets/plotly.min.js"></script>' in report.read_text("utf-8")
    assert plotly_src(root / "drills" / "x" / "postmortem.html", root) == (
        "../../assets/plotly.min.js"
    )
    assert relative_root(root / "index.html", root) == "."


def test_ensure_plotly_js_replaces_a_truncated_copy(tmp_path):
    js = tmp_path / "assets" / PLOTLY_JS
    js.parent.mkdir()
    js.write_text("/* truncated */")
    assert ensure_plotly_js(tmp_path).stat().st_size > 1_000_000


def test_rebuilding_a_report_gives_identical_bytes(evidence, tmp_path):
    first = build_pilot_report(evidence, tmp_path / "a", generated_at=GENERATED)
    second = build_pilot_report(evidence, tmp_path / "b", generated_at=GENERATED)
    assert first.html.read_bytes() == second.html.read_bytes()
    assert first.markdown.read_bytes() == second.markdown.read_bytes()


def test_evidence_passed_as_a_dict_is_saved_for_the_index(evidence, tmp_path):
    paths = build_pilot_report(evidence, tmp_path, generated_at=GENERATED)
    assert json.loads(paths.evidence.read_text("utf-8"))["run_id"] == evidence["run_id"]


def test_data_docs_link_is_relative_and_unsafe_links_are_not_followed(evidence, tmp_path):
    run_dir = tmp_path / evidence["run_id"]
    (run_dir / "data_docs").mkdir(parents=True)
    (run_dir / "data_docs" / "index.html").write_text("<html></html>")
    page = build_pilot_report(evidence, tmp_path).html.read_text("utf-8")
    assert 'href="data_docs/index.html"' in page
    assert "not found next to this report" not in page

    evidence["quality"][0]["data_docs"] = "javascript:alert(1)"
    evidence["quality"][1]["data_docs"] = "/etc/passwd"
    page = build_pilot_report(evidence, tmp_path).html.read_text("utf-8")
    assert 'href="javascript:' not in page and 'href="/etc/passwd"' not in page


def test_a_missing_key_names_the_key_and_the_evidence_file(evidence, tmp_path):
    del evidence["determinism"]
    del evidence["criteria"][2]["status"]
    message = refused_document(build_pilot_report, evidence, tmp_path, PilotEvidenceError)
    assert "missing key 'determinism'" in message
    assert "missing key 'criteria[2].status'" in message


def test_a_go_verdict_with_a_failed_criterion_is_refused(evidence):
    evidence["verdict"] = "go"
    with pytest.raises(PilotEvidenceError, match="confidence_drop"):
        validate_evidence(evidence, "sample")


def test_unreadable_evidence_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "evidence.json"
    path.write_text("{not json")
    with pytest.raises(PilotEvidenceError, match="not valid JSON"):
        build_pilot_report(path, tmp_path)
    with pytest.raises(PilotEvidenceError, match="file not found"):
        build_pilot_report(tmp_path / "absent.json", tmp_path)


def test_unmeasured_values_render_as_a_dash_not_none_or_nan(evidence, tmp_path):
    evidence["metrics_daily"][2]["borderline_rate"] = None
    evidence["metrics_daily"][3]["latency_estimate_p95_ms"] = float("nan")
    paths = build_pilot_report(evidence, tmp_path, generated_at=GENERATED)
    md = paths.markdown.read_text("utf-8")
    day = next(line for line in md.splitlines() if line.startswith("| Wed 18 Nov | 6,858"))
    assert "| — |" in day
    for text in (paths.html.read_text("utf-8"), md):
        assert ">None<" not in text
        assert "| None |" not in text
        assert not re.search(r"\bnan\b", text, re.IGNORECASE)


# ------------------------------------------------------------------------------------ render


def test_filters_format_for_people():
    assert pct(0.0831) == "8.3 %" and pct(None) == "—" and pct(float("nan")) == "—"
    assert usd(12.3) == "$12.30" and usd(-3.21) == "-$3.21" and usd(0.0015) == "$0.001500"
    out = render("base.html.j2", page_title=XSS, generated_at="2026-11-24T23:10:00Z", root="..")
    assert XSS not in out and "2026-11-24 23:10 UTC" in out


def test_markdown_escaping_keeps_tables_intact():
    assert md_escape("a|b <i>\nc") == "a\\|b &lt;i&gt; c"


# ----------------------------------------------------------------------------------- figures


def test_timeline_figure_puts_series_windows_and_markers_on_one_time_axis():
    from reports.figures import timeline_figure

    t0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    ts = [t0 + timedelta(minutes=i) for i in range(10)]
    fig = timeline_figure(
        {"latency": [(t, 100.0 + i) for i, t in enumerate(ts)], "errors": [(t, None) for t in ts]},
        windows=[(ts[2], ts[5], "fault"), (ts[7].isoformat(), None, "open fault")],
        markers=[(ts[3], "OUTAGE BEGINS"), ("2026-11-24T02:06:00Z", "MITIGATED")],
        thresholds={"latency": 105.0},
    )
    assert len(fig.data) == 2
    assert fig.layout.xaxis.matches == "x2"  # one shared time axis
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    lines = [s for s in fig.layout.shapes if s.type == "line" and s.yref == "paper"]
    assert len(rects) == 2 and len(lines) == 2
    assert rects[1].x1 == ts[-1].replace(tzinfo=None)  # an open window runs to the last point
    labels = {a.text for a in fig.layout.annotations}
    assert {"fault", "open fault", "OUTAGE BEGINS", "MITIGATED"} <= labels


def test_alert_timeline_lists_rules_that_never_fired():
    from reports.figures import alert_timeline

    fig = alert_timeline(
        [{"rule": "b", "severity": "critical", "start": "2026-11-16T01:00:00Z", "end": None}],
        rules=["a", "b"],
        start="2026-11-16T00:00:00Z",
        end="2026-11-16T06:00:00Z",
    )
    assert list(fig.layout.yaxis.categoryarray) == ["a", "b"]
    bar = fig.data[0]
    assert bar.x[0] == 5 * 3600 * 1000  # still firing: runs to the end of the window


# -------------------------------------------------------------------------------------- site


def _journal(name: str, started: str, verdicts: list[str], status: str = "completed") -> dict:
    return {
        "name": name,
        "title": f"Drill {name}",
        "run_id": f"{name}-run",
        "status": status,
        "started_at": started,
        "resilience_score": 0.875,
        "guarantees": [{"id": f"g{i}", "verdict": v} for i, v in enumerate(verdicts)],
    }


def test_index_lists_runs_newest_first_and_survives_corrupt_files(evidence, tmp_path):
    for run_id, created in (
        ("pilot-b-middle", "2026-11-20T10:00:00Z"),
        ("pilot-c-newest", "2026-11-27T10:00:00Z"),
        ("pilot-a-oldest", "2026-11-10T10:00:00Z"),
    ):
        doc = copy.deepcopy(evidence)
        doc["run_id"], doc["created_at"] = run_id, created
        build_pilot_report(doc, tmp_path, generated_at=GENERATED)
    (tmp_path / "pilot-broken").mkdir()
    (tmp_path / "pilot-broken" / "evidence.json").write_text('{"run_id": "pilot-bro')
    (tmp_path / "pilot-partial").mkdir()
    (tmp_path / "pilot-partial" / "evidence.json").write_text(
        json.dumps({"run_id": "pilot-partial", "created_at": "2026-11-21T00:00:00Z"})
    )
    drills = tmp_path / "drills"
    for folder, journal in (
        ("latency-old", _journal("upstream-latency", "2026-11-20T02:00:00Z", ["pass", "pass"])),
        ("store-new", _journal("store-outage", "2026-11-26T02:00:00Z", ["pass", "fail"])),
    ):
        (drills / folder).mkdir(parents=True)
        (drills / folder / "journal.json").write_text(json.dumps(journal))
    (drills / "store-new" / "postmortem.html").write_text("<html></html>")
    (drills / "garbled").mkdir()
    (drills / "garbled" / "journal.json").write_text("[1, 2]")
    (tmp_path / "failure-modes.html").write_text("<html></html>")

    page = build_index(tmp_path, generated_at=GENERATED).read_text("utf-8")

    runs = [page.index(r) for r in ("pilot-c-newest", "pilot-b-middle", "pilot-a-oldest")]
    assert runs == sorted(runs)
    assert 'href="pilot-c-newest/report.html"' in page
    assert page.count("UNREADABLE") == 3
    assert "pilot-broken/evidence.json</code>: not valid JSON" in page
    assert "missing keys verdict, window" in page
    assert "expected a JSON object, found list" in page
    assert page.index("store-outage") < page.index("upstream-latency")
    assert "1 / 2 held, 1 fail" in page and "2 / 2 held" in page
    assert 'href="drills/store-new/postmortem.html"' in page
    assert 'href="failure-modes.html"' in page
    assert "0.875" in page


def test_index_of_an_empty_site_says_so(tmp_path):
    page = build_index(tmp_path / "new", generated_at=GENERATED).read_text("utf-8")
    assert "No pilot run yet" in page and "No drill run yet" in page


def test_backtest_rows_render_condition_times_and_observed_range(evidence, tmp_path):
    row = evidence["alerts"]["backtest"][0]
    row.update(
        rule="latency_estimate_p95_high",
        metric="latency_estimate_p95_ms",
        comparator=">",
        threshold=200.0,
        severity="warning",
        firings=4,
        first_fired="2026-11-17T14:00:00Z",
        last_fired="2026-11-20T14:00:00Z",
        noisy=True,
        slack=False,
        suggested_threshold=243.0,
        observed_min=136.0,
        observed_median=154.0,
        observed_p95=184.0,
        observed_max=220.0,
    )
    evidence["alerts"]["backtest"] = [row]
    evidence["criteria"][-1].update(measured="1", value=1.0, status="fail")
    md = build_pilot_report(evidence, tmp_path).markdown.read_text("utf-8")
    row_md = next(line for line in md.splitlines() if line.startswith("| `latency_estimate_p95"))
    assert "latency_estimate_p95_ms &gt; 200" in row_md
    assert "Tue 17 Nov 14:00" in row_md and "136 / 154 / 184 / 220" in row_md
    assert "noisy" in row_md


def test_backtest_rows_in_the_alert_engines_own_column_names_are_refused(evidence):
    """One spelling per key: the engine's columns (first_firing, min, ...) are translated by the
    writer (``pilot_evidence.backtest_rows``), never accepted as a second name by the reader."""
    row = evidence["alerts"]["backtest"][0]
    row["first_firing"] = row.pop("first_fired")
    row["min"] = row.pop("observed_min")
    with pytest.raises(PilotEvidenceError) as err:
        validate_evidence(evidence, "sample")
    message = str(err.value)
    assert "missing key 'alerts.backtest[0].first_fired'" in message
    assert "missing key 'alerts.backtest[0].observed_min'" in message
    assert "key 'alerts.backtest[0].first_firing'" in message


# ----------------------------------------------------------------- pilot report visuals


def test_equal_thresholds_get_one_label_and_distinct_ones_do_not_collide():
    from reports.figures import rates_vs_thresholds

    points = [
        {"bucket": f"2026-11-16T{h:02d}:00:00Z", "queries": 100, "a": 0.1, "b": 0.2}
        for h in range(4)
    ]
    same = rates_vs_thresholds(points, {"a": 0.15, "b": 0.15}, labels={"a": "A", "b": "B"})
    texts = [a.text for a in same.layout.annotations]
    assert texts == ["A & B threshold 15%"]
    apart = rates_vs_thresholds(points, {"a": 0.15, "b": 0.3}, labels={"a": "A", "b": "B"})
    notes = sorted(apart.layout.annotations, key=lambda a: a.y)
    assert [a.text for a in notes] == ["A threshold 15%", "B threshold 30%"]
    assert notes[0].xanchor != notes[1].xanchor  # one label on each side


def test_toolbar_stands_aside_from_the_legend():
    from reports.assets import FIGURE_CONFIG
    from reports.figures import rates_vs_thresholds

    fig = rates_vs_thresholds(
        [{"bucket": "2026-11-16T00:00:00Z", "queries": 9, "a": 0.1}], {"a": 0.15}
    )
    assert fig.layout.modebar.orientation == "v"  # upright in the right margin
    assert fig.layout.legend.orientation == "h" and fig.layout.margin.r >= 40
    assert FIGURE_CONFIG["displayModeBar"] == "hover"


def test_confidence_axis_spans_the_observed_bins_only():
    from reports.figures import confidence_distribution

    edges = [i / 20 for i in range(21)]
    counts = [0] * 16 + [5, 10, 20, 40]  # only 0.80 .. 1.00 populated
    fig = confidence_distribution(edges, {"2026-11-16": counts})
    lo, hi = fig.layout.xaxis.range
    assert 0.78 <= lo < 0.8 and hi == 1.0


def test_alert_table_keeps_every_column_and_no_row_is_hidden(built):
    root, paths = built
    page = paths.html.read_text("utf-8")
    alerts = page[page.index('id="alerts"') : page.index('id="quality"')]
    assert "<th>Flags</th>" not in alerts  # flags sit beside the rule name
    assert 'class="scroll"' not in alerts  # no fixed-height box that hides rules
    assert alerts.count("<tr>") - 1 == alerts.count("<code>") // 2


def test_timeline_marker_labels_close_in_time_do_not_share_a_row():
    from reports.figures import timeline_figure

    t0 = datetime(2026, 11, 16, 2, 0, tzinfo=UTC)
    series = {"x": [(t0 + timedelta(minutes=m), float(m)) for m in range(31)]}
    marks = [
        (t0 + timedelta(minutes=5), "OUTAGE BEGINS"),
        (t0 + timedelta(minutes=5, seconds=2), "MITIGATED"),
        (t0 + timedelta(minutes=7), "alert error_rate_high"),
        (t0 + timedelta(minutes=25), "OUTAGE ENDS"),
    ]
    fig = timeline_figure(series, markers=marks)
    shifts = {a.text: a.yshift for a in fig.layout.annotations if a.text in dict(marks).values()}
    near = [shifts["OUTAGE BEGINS"], shifts["MITIGATED"], shifts["alert error_rate_high"]]
    assert len(set(near)) == 3  # three labels within two minutes: three rows
    assert shifts["OUTAGE ENDS"] == min(shifts.values())  # far away: back on the first row
