"""Labelled-corpus loading and the routing-quality measures (bench_quality, router fit)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from router.engine import Router
from router.quality import CorpusError, format_report, load_corpus, measure
from router.toggle import resolve_toggle

TS = datetime(2026, 11, 16, tzinfo=UTC)


def _write(tmp_path: Path, rows: list) -> Path:
    p = tmp_path / "c.jsonl"
    p.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n",
        encoding="utf-8",
    )
    return p


def test_loader_accepts_names_ints_aliases_and_filters_sources(tmp_path):
    p = _write(
        tmp_path,
        [
            {"text": "hi", "expected_level": "TRIVIAL", "source": "a"},
            {"text": "prove it", "expected_level": 4, "expected_domain": "math", "source": "b"},
            {"text": "who won", "prior_level": 1, "prior_domain": "general", "source": "a"},
            {"text": "  hi ", "expected_level": "trivial", "source": "a"},  # same labels: fine
        ],
    )
    c = load_corpus(p)
    assert c.levels.tolist() == [0, 4, 1, 0]
    assert c.domains == [None, "math", "general", None]
    assert load_corpus(p, sources={"b"}).texts == ["prove it"]
    assert len(load_corpus(p, exclude_sources={"b"})) == 3


def test_bad_rows_are_named_by_line_without_their_text(tmp_path):
    p = _write(
        tmp_path,
        [
            {"text": "secret one", "expected_level": "ULTRA"},
            {"text": "secret two", "expected_level": 2, "expected_domain": "astrology"},
            "not json",
            {"text": "secret dup", "expected_level": 1},
            {"text": "secret  dup", "expected_level": 3},
            {"text": "", "expected_level": 1},
        ],
    )
    with pytest.raises(CorpusError) as err:
        load_corpus(p)
    msg = str(err.value)
    assert "unknown level" in msg and "line 1" in msg
    assert "unknown domain" in msg and "line 2" in msg
    assert "not a JSON object: line 3" in msg
    assert "conflicting labels: line 4, 5" in msg
    assert "empty 'text': line 6" in msg
    assert "secret" not in msg


def test_measures_follow_their_definitions(tmp_path):
    rows = [
        {"text": "hi there", "expected_level": 0, "expected_domain": "general", "source": "chat"},
        {"text": "thanks!", "expected_level": 0, "expected_domain": "general", "source": "chat"},
        {
            "text": "Prove that there are infinitely many primes of the form 4k+3, rigorously.",
            "expected_level": 4,
            "expected_domain": "math",
            "source": "olymp",
        },
        {"text": "ok", "expected_level": 4, "expected_domain": "math", "source": "olymp"},
    ]
    c = load_corpus(_write(tmp_path, rows))
    router = Router.from_config(semantic=False, hash_key=b"k", toggle=resolve_toggle(None))
    t = router.route_batch(c.texts, ts=TS)
    m = measure(c, t)
    assert m["rows"] == 4
    assert m["downgrade"] == 0.5  # "ok" cannot be expert-level work: one of two hard rows
    assert m["overpay"] == 0.0
    assert m["domain_recall"]["general"] == 1.0
    assert m["per_source"]["chat"]["n"] == 2 and m["per_source"]["olymp"]["prior"] == 4.0
    assert m["embedded_share"] == 0.0
    report = format_report("x", m)
    assert "Prove" not in report and "olymp" in report


def test_false_domain_is_also_reported_per_source(tmp_path):
    """The pooled false-domain rate on easy general rows, and the same rate per source (a source
    whose coarse "general" prior is wrong for many rows is told apart from real chit-chat)."""
    import pyarrow as pa

    rows = (
        [
            {
                "text": f"chat {i}",
                "expected_level": 0,
                "expected_domain": "general",
                "source": "chat",
            }
            for i in range(4)
        ]
        + [
            {
                "text": f"task {i}",
                "expected_level": 1,
                "expected_domain": "general",
                "source": "instr",
            }
            for i in range(4)
        ]
        + [{"text": "hard", "expected_level": 3, "expected_domain": "general", "source": "instr"}]
    )
    c = load_corpus(_write(tmp_path, rows))
    routed = ["general", "general", "general", "coding"] + ["coding", "math", "general", "coding"]
    t = pa.table(
        {
            "complexity_level": ["SIMPLE"] * 9,
            "upscaled": [False] * 9,
            "domain": routed + ["coding"],  # not an easy row: counts in neither rate
            "reason_codes": ["LEVEL_FROM_CASCADE"] * 9,
            "borderline": [False] * 9,
        }
    )
    m = measure(c, t)
    assert m["false_domain_easy_general"] == 0.5
    assert m["per_source"]["chat"]["false_dom"] == 0.25
    assert m["per_source"]["instr"]["false_dom"] == 0.75
    assert "0.750" in format_report("x", m)
