"""Routing quality on a labelled corpus: one loader and one set of measures, shared by
``benchmarks/bench_quality.py`` and ``harness router fit``.

Labels on real prompts are coarse per-source priors, not gold, so the measures are about ordering
and systematic shifts (rank correlation, downgrade of the hardest, overpay on the easiest,
per-source histograms), not per-prompt accuracy. Errors name line numbers, never the text.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from router.decision import DOMAINS, LEVELS

LEVEL_NAMES = [lv.value for lv in LEVELS]
DOMAIN_NAMES = [d.value for d in DOMAINS]
_WS = re.compile(r"\s+")


class CorpusError(ValueError):
    """A labelled corpus that cannot be used; the message names the rows (line numbers)."""


@dataclass
class LabelledCorpus:
    texts: list[str]
    levels: np.ndarray  # int 0..4
    domains: list[str | None]
    sources: list[str]
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, mask: np.ndarray) -> LabelledCorpus:
        idx = np.flatnonzero(mask)
        return LabelledCorpus(
            [self.texts[i] for i in idx],
            self.levels[idx],
            [self.domains[i] for i in idx],
            [self.sources[i] for i in idx],
            [self.lines[i] for i in idx] if self.lines else [],
        )


def _rows(lines: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(n) for n in lines[:limit])
    return shown + (f" and {len(lines) - limit} more" if len(lines) > limit else "")


def _level_of(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value < len(LEVEL_NAMES):
        return value
    if isinstance(value, str) and value.upper() in LEVEL_NAMES:
        return LEVEL_NAMES.index(value.upper())
    return None


def load_corpus(
    path: str | Path,
    *,
    sources: set[str] | None = None,
    exclude_sources: set[str] | None = None,
) -> LabelledCorpus:
    """Read a labelled JSONL corpus: ``text``, ``expected_level`` (name or 0-4), optional
    ``expected_domain`` and ``source``. ``prior_level``/``prior_domain`` are accepted as aliases
    (the dev corpus's names). Bad rows and duplicate texts with conflicting labels raise one
    ``CorpusError`` naming every offending line."""
    p = Path(path)
    try:
        raw_lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise CorpusError(f"corpus not found: {p}") from None
    except UnicodeDecodeError:
        raise CorpusError(f"corpus {p} is not UTF-8 text") from None
    problems: dict[str, list[int]] = defaultdict(list)
    texts, levels, domains, srcs, linenos = [], [], [], [], []
    for n, line in enumerate(raw_lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            problems["not a JSON object"].append(n)
            continue
        if not isinstance(row, dict):
            problems["not a JSON object"].append(n)
            continue
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            problems["missing or empty 'text'"].append(n)
            continue
        lv_raw = row.get("expected_level", row.get("prior_level"))
        lv = _level_of(lv_raw)
        if lv is None:
            problems[f"unknown level (valid: {', '.join(LEVEL_NAMES)} or 0-4)"].append(n)
            continue
        dom = row.get("expected_domain", row.get("prior_domain"))
        if dom is not None and dom not in DOMAIN_NAMES:
            problems[f"unknown domain (valid: {', '.join(DOMAIN_NAMES)} or null)"].append(n)
            continue
        src = row.get("source") or "unknown"
        if not isinstance(src, str):
            problems["'source' must be a string"].append(n)
            continue
        if sources is not None and src not in sources:
            continue
        if exclude_sources and src in exclude_sources:
            continue
        texts.append(text.strip())
        levels.append(lv)
        domains.append(dom)
        srcs.append(src)
        linenos.append(n)
    # Duplicate texts (after collapsing whitespace) must agree on their labels.
    first: dict[str, int] = {}
    conflicts: list[int] = []
    for i, t in enumerate(texts):
        k = _WS.sub(" ", t).lower()
        j = first.setdefault(k, i)
        if j != i and (levels[j], domains[j]) != (levels[i], domains[i]):
            conflicts.extend([linenos[j], linenos[i]])
    if conflicts:
        problems["duplicate text with conflicting labels"] = sorted(set(conflicts))
    if problems:
        detail = "; ".join(f"{why}: line {_rows(rows)}" for why, rows in problems.items())
        raise CorpusError(f"corpus {p}: {detail}")
    if not texts:
        raise CorpusError(
            f"corpus {p} has no rows" + (" for the chosen sources" if sources else "")
        )
    return LabelledCorpus(texts, np.array(levels, dtype=np.int64), domains, srcs, linenos)


def routed_ranks(table: pa.Table) -> np.ndarray:
    """The level whose model serves each query: the scored level, one up when upscaled."""
    idx = {n: i for i, n in enumerate(LEVEL_NAMES)}
    lv = np.array([idx[v] for v in table.column("complexity_level").to_pylist()], dtype=np.int64)
    return lv + np.array(table.column("upscaled").to_pylist(), dtype=np.int64)


def measure(corpus: LabelledCorpus, table: pa.Table) -> dict:
    """The issue's measures for decisions aligned with the corpus rows."""
    from scipy.stats import spearmanr

    got = np.minimum(routed_ranks(table), len(LEVEL_NAMES) - 1)
    exp = corpus.levels
    dom = np.array(table.column("domain").to_pylist(), dtype=object)
    reasons = table.column("reason_codes").to_pylist()
    out: dict = {"rows": len(corpus)}
    rho = spearmanr(got, exp).statistic if len(set(got)) > 1 and len(set(exp)) > 1 else float("nan")
    out["rank_corr"] = round(float(rho), 4)
    hard, easy = exp == 4, exp <= 1
    out["downgrade"] = round(float((got[hard] <= 1).mean()), 4) if hard.any() else None
    out["overpay"] = round(float((got[easy] >= 3).mean()), 4) if easy.any() else None
    out["expert_on_hardest"] = round(float((got[hard] == 4).mean()), 4) if hard.any() else None
    out["borderline"] = round(float(np.mean(table.column("borderline").to_pylist())), 4)
    out["embedded_share"] = round(
        float(np.mean(["LEVEL_FROM_HYBRID" in r.split(",") for r in reasons])), 4
    )
    exp_dom = np.array(corpus.domains, dtype=object)
    recall = {}
    for d in DOMAIN_NAMES:
        m = exp_dom == d
        if m.any():
            recall[d] = round(float((dom[m] == d).mean()), 4)
    out["domain_recall"] = recall
    chit = (exp_dom == "general") & easy
    out["false_domain_easy_general"] = (
        round(float((dom[chit] != "general").mean()), 4) if chit.any() else None
    )
    hist: dict[str, dict[str, int]] = {}
    src = np.array(corpus.sources, dtype=object)
    for s in sorted(set(corpus.sources)):
        m = src == s
        c = Counter(got[m].tolist())
        hist[s] = {"n": int(m.sum()), "prior": round(float(exp[m].mean()), 2)} | {
            LEVEL_NAMES[k][:3]: int(c.get(k, 0)) for k in range(len(LEVEL_NAMES))
        }
        # The pooled false-domain rate mixes sources whose coarse "general" prior is wrong for
        # many rows (Alpaca instructions that are small coding or maths tasks) with real
        # chit-chat and factoid questions: per source, the two can be told apart.
        if (chit & m).any():
            hist[s]["false_dom"] = round(float((dom[chit & m] != "general").mean()), 4)
    out["per_source"] = hist
    return out


def format_report(name: str, m: dict) -> str:
    """A plain-text table of the measures (no query text)."""
    lines = [f"== {name}: {m['rows']} rows"]
    for k in (
        "rank_corr",
        "downgrade",
        "overpay",
        "expert_on_hardest",
        "borderline",
        "false_domain_easy_general",
        "embedded_share",
    ):
        lines.append(f"  {k:<28} {m.get(k)}")
    lines.append(
        "  domain recall: " + ", ".join(f"{d} {v:.2f}" for d, v in m["domain_recall"].items())
    )
    head = f"  {'source':<20} {'n':>5} {'prior':>5} " + " ".join(
        f"{lv[:3]:>5}" for lv in LEVEL_NAMES
    )
    lines.append(head + "  false domain (easy general rows)")
    for s, h in m["per_source"].items():
        fd = h.get("false_dom")
        lines.append(
            f"  {s[:20]:<20} {h['n']:>5} {h['prior']:>5} "
            + " ".join(f"{h[lv[:3]]:>5}" for lv in LEVEL_NAMES)
            + ("" if fd is None else f"  {fd:.3f}")
        )
    return "\n".join(lines)
