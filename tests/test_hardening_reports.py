"""Issue 9 row 13 for reports: journal text cannot become a live Markdown link or image in
postmortem.md (HTML was already escaped; Markdown now escapes brackets too)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from reports.postmortem import build_postmortem
from reports.render import md_escape

JOURNAL = Path(__file__).parent / "data" / "journals" / "model-failure-failed.json"
LINKS = (
    "[click me](javascript:alert(1))",
    "![img](http://evil.example/x.png)",
    "\\[esc\\](javascript:alert(2))",
)


def test_md_escape_breaks_every_link_form():
    for text in LINKS:
        out = md_escape(text)
        assert "[" not in out and "]" not in out
    assert md_escape("[x]: javascript:alert(1)").startswith("&#91;x&#93;:")


def test_postmortem_markdown_has_no_live_link(tmp_path):
    data = json.loads(JOURNAL.read_text(encoding="utf-8"))
    data["title"] = LINKS[0]
    data["description"] = " ".join(LINKS[1:])
    paths = build_postmortem(data, tmp_path)
    md = paths.markdown.read_text(encoding="utf-8")
    assert "javascript:alert(1)" in md  # the text is there, as text
    assert not re.search(r"\]\(", md.replace("\\]", "")), "a Markdown link survived"
    assert "[click me]" not in md and "![img]" not in md


def _local_refs(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return re.findall(
        r"<(?:script|img)\b[^>]*?\bsrc=\"([^\"#]+)\"|<link\b[^>]*?\bhref=\"([^\"#]+)\"", text
    )


def test_data_docs_work_offline(tmp_path):
    """Issue 9 row 12: no Data Docs page loads anything from the network, and every asset a
    page loads is in the folder (two builds into one site, as a pilot week does)."""
    from telemetry_rows import make_decision_table

    from reports.assets import external_asset_links
    from telemetry.quality import validate_decisions

    docs = tmp_path / "data_docs"
    for day, seed in (("2026-11-16", 1), ("2026-11-17", 2)):
        df = make_decision_table(120, seed=seed).to_pandas()
        res = validate_decisions(
            df, expected_rows=120, models=set(df["model"]), day_label=day, data_docs_dir=docs
        )
        assert res.data_docs_index is not None
    pages = sorted(docs.rglob("*.html"))
    assert len(pages) >= 4
    assert external_asset_links(docs) == {}
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"\b(?:src|href)=\"(?:https?:)?//[^\"]*\.(?:js|css)", text)
        assert "integrity=" not in text
        for ref in (a or b for a, b in _local_refs(page)):
            assert (page.parent / ref.split("?", 1)[0]).resolve().is_file(), (page, ref)
    index = (docs / "index.html").read_text(encoding="utf-8")
    for needed in ("vendor/jquery.min.js", "vendor/bootstrap-table.min.js", "vendor/all.min.css"):
        assert needed in index
    fa = (docs / "vendor" / "all.min.css").read_text(encoding="utf-8")
    for font in re.findall(r"url\(([^)]+)\)", fa):
        assert (docs / "vendor" / font).is_file()


def test_a_figure_without_plotly_says_so():
    import plotly.graph_objects as go

    from reports.assets import figure_html

    out = str(figure_html(go.Figure(go.Bar(x=[1], y=[2])), "fig-x"))
    assert 'id="fig-x-missing"' in out and "Chart not drawn" in out
    assert 'if (window.Plotly) { document.getElementById("fig-x-missing").remove(); }' in out
