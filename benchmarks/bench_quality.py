"""Routing quality on a labelled corpus: rank correlation, downgrade, overpay, borderline rate,
domain recall per domain and a level histogram per source.

Without ``--corpus`` it measures the seeded generated corpus; with ``--corpus PATH`` any labelled
JSONL (``text``, ``expected_level``, optional ``expected_domain`` and ``source``; the dev corpus's
``prior_level``/``prior_domain`` are accepted too). ``--sources``/``--exclude-sources`` take one
part of a by-source split. Run from the repo root:

    .venv/bin/python -m benchmarks.bench_quality --corpus dev.jsonl --exclude-sources koala_test

``--loso`` estimates quality on unseen sources: each of ``--sources`` is held out in turn, the head
is fitted on the others (``harness router fit``) and the held-out rows are routed with it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

TS = datetime(2026, 11, 16, tzinfo=UTC)


def _generated(n: int):
    from data.generate import generate_corpus
    from router.quality import LabelledCorpus, _level_of

    t = generate_corpus(n, seed=7)
    levels = [_level_of(v) for v in t.column("expected_level").to_pylist()]
    import numpy as np

    return LabelledCorpus(
        t.column("text").to_pylist(),
        np.array(levels, dtype=np.int64),
        t.column("expected_domain").to_pylist(),
        ["generated"] * t.num_rows,
    )


def run(
    corpus: str | None = None,
    *,
    config: str | None = None,
    modes: tuple[str, ...] = ("hybrid", "rules"),
    sources: set[str] | None = None,
    exclude_sources: set[str] | None = None,
    n: int = 5_000,
    cache_dir: str | None = None,
    embed_all: bool = False,
) -> dict:
    """Measures per routing mode (``hybrid``, ``rules``) on one corpus. ``embed_all``: the
    learned head's cascade decides nothing alone (every text embedded), the reference the
    cascade's quality is compared with."""
    from router.config import MAX_CASCADE_MARGIN, load_config
    from router.engine import Router
    from router.quality import load_corpus, measure
    from router.toggle import resolve_toggle

    data = (
        load_corpus(corpus, sources=sources, exclude_sources=exclude_sources)
        if corpus
        else _generated(n)
    )
    out: dict = {"corpus": Path(corpus).name if corpus else f"generated({n})"}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            cfg = load_config(config)
            if embed_all and cfg.head is not None:
                # no row is this far from a level boundary: the fast head decides none alone
                no_cascade = cfg.head.model_copy(update={"cascade_margin": MAX_CASCADE_MARGIN})
                cfg = cfg.model_copy(update={"head": no_cascade})
            router = Router(
                cfg,
                semantic=None if mode == "hybrid" else False,
                hash_key=b"bench",
                toggle=resolve_toggle(None),
                cache_dir=cache_dir or tmp,
            )
            table = router.route_batch(data.texts, ts=TS, run_id="quality")
            out[mode] = measure(data, table)
            out[mode]["config_hash"] = router.config_hash
    return out


def loso(
    corpus: str,
    sources: set[str],
    *,
    extra: tuple[str, ...] = (),
    cache_dir: str | None = None,
    progress=lambda _m: None,
) -> dict:
    """Leave-one-source-out: for each source, `harness router fit` on the other sources (plus
    ``extra`` corpora, e.g. the seed prompts) and route the held-out source with that head. The
    pooled held-out measures estimate quality on sources never seen, which the fitted-part
    numbers cannot (the head memorises its fitting sources)."""
    import pyarrow as pa

    from router.engine import Router
    from router.fit import fit, merge_corpora
    from router.quality import load_corpus, measure
    from router.toggle import resolve_toggle

    extra_sources = {s for p in extra for s in load_corpus(p).sources}
    held, tables = [], []
    with tempfile.TemporaryDirectory() as tmp:
        store = cache_dir or str(Path(tmp) / "emb")
        for k, src in enumerate(sorted(sources)):
            progress(f"fold {k + 1}/{len(sources)}: {src} held out")
            rest = (sources - {src}) | extra_sources
            report = fit([corpus, *extra], Path(tmp) / f"fold{k}.yaml", sources=rest,
                         cache_dir=store)  # fmt: skip
            part = load_corpus(corpus, sources={src})
            router = Router.from_config(
                report.config_path, hash_key=b"bench", toggle=resolve_toggle(None),
                cache_dir=store,
            )  # fmt: skip
            tables.append(router.route_batch(part.texts, ts=TS, run_id="loso"))
            held.append(part)
    pooled = merge_corpora(held, [f"{i}" for i in range(len(held))])
    return {"corpus": Path(corpus).name, "loso": measure(pooled, pa.concat_tables(tables))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", help="labelled JSONL (default: the generated corpus)")
    ap.add_argument("--config", help="router config (default: the packaged one)")
    ap.add_argument("--sources", help="comma-separated sources to keep")
    ap.add_argument("--exclude-sources", help="comma-separated sources to leave out")
    ap.add_argument("--mode", choices=["hybrid", "rules", "both"], default="both")
    ap.add_argument("--n", type=int, default=5_000, help="rows of the generated corpus")
    ap.add_argument(
        "--cache-dir", help="embedding store to reuse between runs (default: a temporary one)"
    )
    ap.add_argument(
        "--loso",
        action="store_true",
        help="leave-one-source-out over --sources: fit on the others, measure the one left out",
    )
    ap.add_argument(
        "--fit-extra", action="append", default=[], help="corpus added to every LOSO fit"
    )
    ap.add_argument(
        "--embed-all",
        action="store_true",
        help="embed every text (no cascade): the reference for the cascade's quality",
    )
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = ap.parse_args(argv)
    from router.config import ConfigError
    from router.quality import CorpusError, format_report

    split = lambda s: {x.strip() for x in s.split(",") if x.strip()} if s else None  # noqa: E731
    modes = ("hybrid", "rules") if args.mode == "both" else (args.mode,)
    if args.loso and not (args.corpus and args.sources):
        print("error: --loso needs --corpus and --sources", file=sys.stderr)
        return 64
    try:
        if args.loso:
            res = loso(
                args.corpus,
                split(args.sources),
                extra=tuple(args.fit_extra),
                cache_dir=args.cache_dir,
                progress=lambda m: print(m, file=sys.stderr, flush=True),
            )
            print(json.dumps(res, indent=1) if args.json else format_report(
                f"{res['corpus']} / leave-one-source-out", res["loso"]))  # fmt: skip
            return 0
        res = run(
            args.corpus,
            config=args.config,
            modes=modes,
            sources=split(args.sources),
            exclude_sources=split(args.exclude_sources),
            n=args.n,
            cache_dir=args.cache_dir,
            embed_all=args.embed_all,
        )
    except (CorpusError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        for mode in modes:
            print(format_report(f"{res['corpus']} / {mode}", res[mode]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
