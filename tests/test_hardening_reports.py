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
