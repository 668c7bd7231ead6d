"""`harness router fit`, the learned head and the cascade, on small corpora made here."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import assert_batch_matches_single, text_lists
from hypothesis import HealthCheck, given, settings

from router.config import ConfigError, default_config_path, load_config
from router.engine import Router
from router.fit import fit
from router.quality import CorpusError, load_corpus, measure
from router.toggle import resolve_toggle

TS = datetime(2026, 11, 16, tzinfo=UTC)
KEY = b"fit-key"
REPO = Path(__file__).resolve().parents[1]
LICENCE_OK = {  # sources of the dev corpus whose licence allows fitting (README: router calibration)
    "clinc150", "snips", "webquestions", "medquad", "hallusionbench", "svamp", "aqua_rat",
    "leetcode", "putnambench", "olympiadbench",
    # the project's hand-written seed prompts, one source per domain
    "amaima_seed_general", "amaima_seed_coding", "amaima_seed_math", "amaima_seed_biology",
    "amaima_seed_image_gen",
}  # fmt: skip


def _labelled(seed: int, per_level: int) -> list[dict]:
    """Rows of the generated corpus, up to ``per_level`` distinct texts per level."""
    from data.generate import generate_corpus

    t = generate_corpus(6000, seed=seed).to_pylist()
    seen, counts, rows = set(), Counter(), []
    for r in t:
        if r["text"] in seen or counts[r["expected_level"]] >= per_level:
            continue
        seen.add(r["text"])
        counts[r["expected_level"]] += 1
        rows.append(
            {
                "text": r["text"],
                "expected_level": r["expected_level"],
                "expected_domain": r["expected_domain"],
                "source": f"gen-{r['expected_domain']}",
            }
        )
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    d = tmp_path_factory.mktemp("fit")
    corpus = _write(d / "train.jsonl", _labelled(seed=1, per_level=60))
    report = fit(corpus, d / "cfg.yaml", cache_dir=d / "emb")
    return report, d


@pytest.fixture(scope="module")
def fitted_router(fitted):
    report, d = fitted
    return Router.from_config(
        report.config_path, hash_key=KEY, cache_dir=d / "emb", toggle=resolve_toggle(None)
    )


def test_fit_writes_a_loadable_config_weights_and_data_card(fitted):
    report, _ = fitted
    cfg = load_config(report.config_path)
    assert cfg.head is not None and report.weights_path.exists()
    assert cfg.config_hash != load_config(default_config_path()).config_hash
    card = yaml.safe_load(report.card_path.read_text())
    assert card["sha256"] == cfg.head.sha256
    assert set(card["fitting_sources"]) == set(report.sources)
    assert sum(card["level_counts"].values()) == report.rows
    import torch

    assert card["fitted_on"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_fitted_router_orders_unseen_rows_and_cascade_is_recorded(fitted, fitted_router, tmp_path):
    held = load_corpus(_write(tmp_path / "held.jsonl", _labelled(seed=2, per_level=30)))
    table = fitted_router.route_batch(held.texts, ts=TS)
    m = measure(held, table)
    assert m["rank_corr"] >= 0.6, m["rank_corr"]
    reasons = [r.split(",") for r in table.column("reason_codes").to_pylist()]
    cascade = sum("LEVEL_FROM_CASCADE" in r for r in reasons)
    hybrid = sum("LEVEL_FROM_HYBRID" in r for r in reasons)
    assert cascade + hybrid == len(reasons) and cascade > 0
    # Only the texts the cascade passed on were embedded.
    fresh = Router.from_config(
        fitted[0].config_path, hash_key=b"other", cache_dir=tmp_path / "e2",
        toggle=resolve_toggle(None),
    )  # fmt: skip
    fresh.route_batch(held.texts, ts=TS)
    assert fresh.texts_embedded == hybrid


def test_margin_half_embeds_everything_and_rule_only_embeds_nothing(fitted, tmp_path):
    report, d = fitted
    text = report.config_path.read_text().replace(
        f"cascade_margin: {report.cascade_margin}", "cascade_margin: 0.5"
    )
    cfg = report.config_path.with_name("all.yaml")
    cfg.write_text(text)
    texts = [r["text"] for r in _labelled(seed=3, per_level=4)]
    r = Router.from_config(cfg, hash_key=KEY, cache_dir=d / "emb", toggle=resolve_toggle(None))
    codes = r.route_batch(texts, ts=TS).column("reason_codes").to_pylist()
    assert all("LEVEL_FROM_HYBRID" in c for c in codes)
    rules = Router.from_config(cfg, semantic=False, hash_key=KEY, toggle=resolve_toggle(None))
    codes = rules.route_batch(texts, ts=TS).column("reason_codes").to_pylist()
    assert all("LEVEL_FROM_RULES" in c.split(",") for c in codes)


texts_strategy = text_lists(
    [r["text"] for r in _labelled(seed=4, per_level=6)], max_chars=120, max_size=10
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=texts_strategy)
def test_route_batch_equals_route_with_the_cascade(fitted_router, texts):
    assert_batch_matches_single(fitted_router, texts, TS)


def test_a_fresh_router_in_another_process_decides_bit_for_bit(fitted, fitted_router, tmp_path):
    import pyarrow.parquet as pq

    report, d = fitted
    texts = [r["text"] for r in _labelled(seed=5, per_level=5)]
    here = fitted_router.route_batch(texts, ts=TS, run_id="det")
    src = tmp_path / "t.json"
    src.write_text(json.dumps(texts))
    code = (
        "import sys, json, pyarrow.parquet as pq; from datetime import datetime, UTC;"
        "from router.engine import Router; from router.toggle import resolve_toggle;"
        f"r = Router.from_config(sys.argv[1], hash_key={KEY!r}, cache_dir=sys.argv[2], "
        "toggle=resolve_toggle(None));"
        "pq.write_table(r.route_batch(json.load(open(sys.argv[3])), "
        "ts=datetime(2026, 11, 16, tzinfo=UTC), run_id='det'), sys.argv[4])"
    )
    out = tmp_path / "o.parquet"
    subprocess.run(
        [sys.executable, "-c", code, str(report.config_path), str(d / "emb"), str(src), str(out)],
        check=True,
        cwd=REPO,
    )
    there = pq.read_table(out)
    assert there.equals(here.cast(there.schema))


def test_weights_that_do_not_match_are_refused_with_what_was_expected(fitted, tmp_path):
    report, _ = fitted
    cfg_text = report.config_path.read_text()
    other = tmp_path / "cfg.yaml"
    # 1. a different file under the same name: the sha256 in the config no longer matches
    (tmp_path / report.weights_path.name).write_bytes(report.weights_path.read_bytes() + b"x")
    other.write_text(cfg_text)
    with pytest.raises(ConfigError, match="the config expects"):
        Router.from_config(other, semantic=False, hash_key=KEY)
    # 2. the right file, but the config's encoder differs from the one it was fitted for
    (tmp_path / report.weights_path.name).write_bytes(report.weights_path.read_bytes())
    other.write_text(cfg_text.replace("max_tokens: 64", "max_tokens: 128"))
    with pytest.raises(ValueError, match=r"encoder is .*64.*expected .*128"):
        Router.from_config(other, semantic=False, hash_key=KEY)


def test_too_few_rows_per_level_names_the_level_and_rows(tmp_path):
    rows = _labelled(seed=6, per_level=12)
    expert = [i for i, r in enumerate(rows) if r["expected_level"] == "EXPERT"]
    keep = [r for i, r in enumerate(rows) if i not in expert[2:]]
    p = _write(tmp_path / "thin.jsonl", keep)
    with pytest.raises(CorpusError) as err:
        fit(p, tmp_path / "x.yaml")
    lines = [i + 1 for i, r in enumerate(keep) if r["expected_level"] == "EXPERT"]
    assert f"EXPERT has 2 rows (line {lines[0]}, {lines[1]})" in str(err.value)
    assert not (tmp_path / "x.yaml").exists()


def test_cli_bad_corpus_is_one_error_line_and_exit_1(tmp_path):
    p = _write(
        tmp_path / "c.jsonl",
        [
            {"text": "private words", "expected_level": "SIMPLE"},
            {"text": "private  words", "expected_level": "EXPERT"},
        ],
    )
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "router", "fit", "--corpus", str(p), "--out",
         str(tmp_path / "o.yaml")],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "conflicting labels: line 1, 2" in proc.stderr
    assert "Traceback" not in proc.stderr and "private" not in proc.stderr + proc.stdout


def test_cli_fit_reads_no_embedding_store_unless_told(fitted, tmp_path):
    """int8 vectors depend on their batch-mates, so a fit that read a store filled by earlier
    runs would depend on them: the CLI encodes afresh by default, makes the same head as a fit
    with a fresh store, and leaves no store behind in the working directory."""
    report, d = fitted
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "router", "fit", "--corpus", str(d / "train.jsonl"),
         "--out", str(tmp_path / "cli.yaml")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (
        load_config(tmp_path / "cli.yaml").head.sha256
        == load_config(report.config_path).head.sha256
    )
    assert not (tmp_path / ".harness").exists()


def test_the_head_does_not_depend_on_the_number_of_blas_threads(fitted, tmp_path):
    """OpenBLAS and scikit-learn's OpenMP split their sums by thread count, which changed the
    weights between one thread and two: the fit pins both to one thread, so a machine with more
    cores fits the same bytes."""
    from threadpoolctl import threadpool_limits

    report, d = fitted
    shas = []
    for n in (2, 1):
        with threadpool_limits(limits=n):
            again = fit(d / "train.jsonl", tmp_path / f"blas{n}.yaml")
        shas.append(load_config(again.config_path).head.sha256)
    assert shas == [load_config(report.config_path).head.sha256] * 2


def test_shipped_head_loads_and_was_fitted_only_on_licence_ok_sources():
    cfg = load_config()
    assert cfg.head is not None, "the shipped default is produced by `harness router fit`"
    card = yaml.safe_load(cfg.head_path().with_name(
        cfg.head_path().name.replace(".npz", ".card.yaml")).read_text())  # fmt: skip
    assert card["sha256"] == cfg.head.sha256
    assert set(card["fitting_sources"]) <= LICENCE_OK
    r = Router(cfg, semantic=False, hash_key=KEY)
    t = r.route_batch(["hi there", "Prove that there are infinitely many primes."], ts=TS)
    lv = t.column("complexity_level").to_pylist()
    assert lv[0] in {"TRIVIAL", "SIMPLE"} and lv[1] in {"COMPLEX", "EXPERT"}
    assert np.all(np.isfinite(t.column("complexity_score").to_numpy()))


def test_leave_one_source_out_measures_every_row_once_with_a_head_not_fitted_on_it(tmp_path):
    from benchmarks.bench_quality import loso, main

    rows = _labelled(seed=7, per_level=36)
    for i, r in enumerate(rows):
        r["source"] = f"s{i % 3}"
    corpus = _write(tmp_path / "c.jsonl", rows)
    folds: list[str] = []
    res = loso(str(corpus), {"s0", "s1", "s2"}, cache_dir=str(tmp_path / "emb"),
               progress=folds.append)  # fmt: skip
    m = res["loso"]
    assert len(folds) == 3 and m["rows"] == len(rows)
    assert {s: h["n"] for s, h in m["per_source"].items()} == dict(
        Counter(r["source"] for r in rows)
    )
    assert m["rank_corr"] >= 0.6, m["rank_corr"]
    assert main(["--loso", "--corpus", str(corpus)]) == 64  # which sources: a usage error


def test_weights_fitted_on_other_rule_features_are_refused(fitted, monkeypatch):
    """The rule features' layout is recorded in the weights (FEATURE_SET): weights fitted before a
    pattern changed are refused at load, naming both, instead of being served on other inputs."""
    import router.features as feat

    report, _ = fitted
    fitted_with = feat.FEATURE_SET
    monkeypatch.setattr(feat, "FEATURE_SET", fitted_with + "-changed")
    with pytest.raises(ValueError, match=rf"feature_set is '{fitted_with}', expected"):
        Router.from_config(report.config_path, semantic=False, hash_key=KEY)


def test_the_fast_head_decides_a_domain_alone_only_when_the_keywords_agree():
    from router.head import domain_clear

    head_domains = ["biology", "general", "math"]
    rule_domains = ["math", "biology", "general"]
    dp = np.array([[0.95, 0.03, 0.02], [0.02, 0.03, 0.95], [0.02, 0.95, 0.03], [0.6, 0.2, 0.2],
                   [0.95, 0.03, 0.02]])  # fmt: skip
    dom_rule = np.array(
        [
            [0.0, 1.0, 0.2],  # keywords say biology, so does the head: clear
            [0.0, 1.0, 0.2],  # keywords say biology, the head says math: embed
            [0.0, 0.0, 0.2],  # no keyword hit (general), the head says general: clear
            [0.0, 1.0, 0.2],  # agree, but the head is unsure: embed
            [1.0, 1.0, 0.2],  # keywords tie between maths and biology: embed
        ]
    )
    got = domain_clear(dp, head_domains, dom_rule, rule_domains, 0.8)
    assert got.tolist() == [True, False, True, False, False]


def test_a_clinical_vignette_is_biology_evidence_not_a_word_problem():
    import pyarrow as pa

    from router.features import extract

    f = extract(pa.array([
        "A 58-year-old woman presents to the emergency department with a blood pressure of "
        "168/102 mm Hg and a pulse of 96/min. What is the most likely diagnosis?",
        "Tom has 5 boxes with 12 apples in each box. How many apples does he have in total?",
    ]))  # fmt: skip
    assert f.clinical[0] >= 3 and f.clinical[1] == 0
    assert f.domain_hits["biology"][0] > f.domain_hits["math"][0]
    assert f.domain_hits["math"][1] > f.domain_hits["biology"][1]


def test_bench_quality_embed_all_embeds_every_text(fitted, tmp_path):
    from benchmarks.bench_quality import run

    report, d = fitted
    rows = _labelled(seed=5, per_level=6)
    corpus = _write(tmp_path / "c.jsonl", rows)
    kw = {"config": str(report.config_path), "modes": ("hybrid",), "cache_dir": str(d / "emb")}
    cascade = run(str(corpus), **kw)["hybrid"]
    every = run(str(corpus), embed_all=True, **kw)["hybrid"]
    assert every["embedded_share"] == 1.0
    assert cascade["embedded_share"] < 1.0
