"""Small ASCII batches take compiled Python `re` instead of Arrow's regex kernels (the service
decides one query per request: 30 kernel calls cost ~4.6 ms for one text). The two paths must give
the same features row for row, or a decision would depend on its batch size."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from router import features as F

ROOT = Path(__file__).resolve().parents[1]

EDGE_CASES = [
    "",
    "Will there be hail on 11/12/2036 in Singapore",  # \b after a match: Arrow restarts the search
    "1. first\n2. second\n3. third\n- a bullet\n* another",
    "```python\ndef f(x):\n    return x**2\n```",
    "Solve for x: 3x^2 + 2x = 5; x^2 - 4 = 0. Prove the theorem for all integers n.",
    "A 58-year-old man presents with fever, BP 150/90 mm Hg, WBC 12,000/mm3. Most likely diagnosis?",
    "SELECT name FROM users WHERE id = 4;\nconsole.log(x) => y",
    "Draw me a picture of a cat; read this aloud",
    "v = 1.8 x 10^7 m/s, c = 3e8 m/s, 50 eV, 12 volts, 2.2 nF; 8k wallpaper, 10 minutes\n5\nC 9 m/s",
]


def _project_texts() -> list[str]:
    texts = list(EDGE_CASES)
    dev = yaml.safe_load((ROOT / "tests/data/dev_queries.yaml").read_text())
    texts += [q["text"] for q in dev["queries"]] if isinstance(dev, dict) else []
    seed = (ROOT / "router/calibration/seed_prompts.jsonl").read_text().splitlines()
    texts += [json.loads(line)["text"] for line in seed if line.strip()]
    return texts


def _arrow(texts: list[str | None]) -> dict[str, np.ndarray]:
    return _arrow_col(pa.array(texts, pa.string()))


def _assert_same(texts: list[str | None]) -> None:
    want, got = _arrow(texts), F._run_compiled(texts)
    for name in F._KERNELS:
        bad = np.flatnonzero(want[name] != got[name])
        assert not len(bad), (name, [(texts[i], want[name][i], got[name][i]) for i in bad[:3]])


def test_compiled_re_equals_the_arrow_kernels_on_the_projects_texts():
    texts = _project_texts()
    assert len(texts) > 100 and all(t.isascii() for t in texts)
    _assert_same(texts + [None])


def test_the_check_can_fail_counting_with_finditer_differs_from_arrow():
    """The counting rule matters: plain finditer sees the date as one arithmetic match, Arrow two."""
    text = "Will there be hail on 11/12/2036 in Singapore"
    rx = F._COMPILED["math"][1]
    assert sum(1 for _ in rx.finditer(text)) != _arrow([text])["math"][0]
    assert F._count_like_arrow(rx, text) == _arrow([text])["math"][0]


def test_no_pattern_matches_the_empty_text():
    """`_count_like_arrow` stops at the end of the text; that is Arrow's count only if no pattern
    can match an empty string."""
    assert all(rx.search("") is None for _, rx in F._COMPILED.values())


def test_small_batches_take_the_compiled_path_and_non_ascii_ones_do_not(monkeypatch):
    calls = []
    real = F._run_compiled
    monkeypatch.setattr(F, "_run_compiled", lambda t: calls.append(len(t)) or real(t))
    F.extract(pa.array(["what time is it"]))
    assert calls == [1]
    F.extract(pa.array(["what is 2 K (Kelvin sign \u212a) in celsius"]))  # RE2 folds \u212a to k
    F.extract(pa.array(["what\vtime is it"]))  # RE2's \s has no vertical tab
    F.extract(pa.array(["what time is it"] * F.SMALL_BATCH_ROWS))
    assert calls == [1]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(max_codepoint=127), max_size=200), max_size=5))
def test_compiled_re_equals_arrow_on_any_ascii_text(texts):
    _assert_same([t for t in texts if F._compiled_reads_alike(t)])


def test_extract_is_the_same_for_a_text_alone_and_in_a_big_batch():
    texts = _project_texts()
    big = F.extract(pa.array(texts * (F.SMALL_BATCH_ROWS // len(texts) + 1)))
    for i, t in enumerate(texts[:40]):
        alone = F.extract(pa.array([t]))
        assert alone.words[0] == big.words[i] and alone.math[0] == big.math[i]
        for d in F.DOMAIN_PATTERNS:
            assert alone.domain_hits[d][0] == big.domain_hits[d][i], (d, t)


def test_invalid_utf8_in_a_small_batch_takes_the_arrow_path():
    """A column Arrow holds but Python cannot decode must not raise from the compiled path."""
    col = pa.Array.from_buffers(
        pa.string(), 1, [None, pa.py_buffer(np.array([0, 4], np.int32)), pa.py_buffer(b"a\xedb?")]
    )
    with pytest.raises(UnicodeDecodeError):
        col.to_pylist()
    assert F._run_kernels(col)["questions"].tolist() == _arrow_col(col)["questions"].tolist()


def _arrow_col(col: pa.Array) -> dict[str, np.ndarray]:
    return {
        name: F._count(col, p) if kind == "count" else F._match(col, p)
        for name, (kind, p) in F._KERNELS.items()
    }


# --- the head's hashed words: the same small-batch gate, the same tokens in the same order -------


def _tokens_both_ways(texts: list[str | None], monkeypatch) -> tuple[tuple, tuple]:
    from router import head

    col = pa.array(texts, pa.string())
    compiled = head.hashed_tokens(col, 4096)
    with monkeypatch.context() as m:
        m.setattr(F, "SMALL_BATCH_ROWS", 0)  # every column takes Arrow's path
        arrow = head.hashed_tokens(col, 4096)
    return compiled, arrow


def _assert_same_tokens(texts: list[str | None], monkeypatch) -> None:
    compiled, arrow = _tokens_both_ways(texts, monkeypatch)
    for got, want in zip(compiled, arrow, strict=True):
        assert got.dtype == want.dtype and got.tolist() == want.tolist(), texts


def test_hashed_tokens_compiled_equal_arrow_on_the_projects_texts(monkeypatch):
    texts = _project_texts()
    for i in range(0, len(texts), F.SMALL_BATCH_ROWS - 1):
        chunk = texts[i : i + F.SMALL_BATCH_ROWS - 1]
        assert F.small_batch_texts(pa.array(chunk)) is not None  # the compiled path is taken
        _assert_same_tokens(chunk, monkeypatch)
    long = " ".join(f"w{k} x" for k in range(400))  # past MAX_TOKENS words
    _assert_same_tokens([long, None, "", "C++ and c# at 3.5, 1,000 ok"], monkeypatch)


def test_the_token_check_can_fail(monkeypatch):
    """Counting a bare number as a word changes the tokens: the comparison sees it."""
    from router import head

    monkeypatch.setattr(head, "_NUMERIC_TOKEN", re.compile(r"(?!)"))  # matches nothing
    compiled, arrow = _tokens_both_ways(["pay 1,000 now"], monkeypatch)
    assert compiled[1].tolist() != arrow[1].tolist()


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(max_codepoint=127), max_size=200), max_size=5))
def test_hashed_tokens_compiled_equal_arrow_on_any_ascii_text(texts):
    with pytest.MonkeyPatch.context() as mp:
        _assert_same_tokens([t for t in texts if F._compiled_reads_alike(t)], mp)
