"""`harness router fit`: fit the router's learned head on a labelled corpus and write a config.

What is fitted (see router/head.py): a fast head over rule features and hashed word n-grams, a
full head over rule features and the MiniLM embedding, each an ordinal logistic model for the level
and a multinomial one for the domain, and the cascade margin that decides when the fast head may decide alone. The output
is a config (the base config plus a ``head:`` section), the weights file (.npz) whose sha256 the
config records, and a data card beside the weights naming the corpus, its sources and the counts.

Why sources are weighted equally: a corpus is many rows from few sources; weighting rows would
teach the head the style of the biggest source instead of what makes a prompt hard.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

from router.config import RouterConfig, default_config_path, load_config
from router.features import FEATURE_SET
from router.quality import LEVEL_NAMES, CorpusError, LabelledCorpus, _rows, load_corpus

MIN_ROWS_PER_LEVEL = 10
MIN_DOMAIN_ROWS = 10  # a domain with fewer labelled rows keeps keyword evidence only
HASH_DIM = 1 << 12  # few buckets: 32k hashed words memorised each source's vocabulary
EMB_GAIN = 4.0  # embedding inputs are scaled up so the L2 penalty does not silence them
EXEMPLAR_WEIGHT = 20.0  # a config exemplar: hand-written, so it counts as much as 20 corpus rows
# Chosen by leave-one-source-out cross-validation over the licence-OK dev-corpus sources
# (docs/router-calibration.md); the held-out numbers, not the fitted ones, picked every constant
# below.
LEVEL_L2 = 1e-3  # L2 penalty of the ordinal level models (per unit of total row weight)
LEVEL_UPSHIFT = 0.5  # latent difficulty added to every text: fewer downgrades, overpay <= 5 %
LEVEL_SHARPEN = 2.0  # logit temperature: fewer texts in the borderline band, order unchanged
DOMAIN_C = 2.0  # inverse L2 strength of the domain models
GENERAL_BIAS = 1.5  # "general" unless a domain is clearly more likely (false domain on chit-chat)
MARGINS = (0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08)  # boundaries are 0.2 apart: 0.1 embeds all
FAST_DOMAIN_USES_HASHED = True  # keyword evidence generalises; word identity memorises sources
FULL_USES_HASHED = False  # the full head sees meaning (embedding) + rules, not word identity
# The cascade: the fast head decides alone where its level is below the full head's on at most
# CASCADE_MAX_BELOW of the fitting rows it would decide, and its domain probability is at least
# DOMAIN_CLARITY and agrees with the keywords (head.cascade_clear; 0.99 was needed without that
# gate). Only a *lower* level is a fault: it is a downgrade the embedding would have prevented,
# while a higher one costs money, which the overpay measure watches. The earlier rule asked for
# 80 % agreement in both directions; with the per-domain seed sources the fast head sits a level
# above the full head on ~20 % of the rows it decides, that rule took the widest margin and
# embedded 68 % of the check part, with lower rank correlation than the cascade at 0.02
# (docs/router-calibration.md). Chosen on LOSO and the check part.
CASCADE_MAX_BELOW = 0.05
DOMAIN_CLARITY = 0.8


@dataclass
class FitReport:
    config_path: Path
    weights_path: Path
    card_path: Path
    rows: int
    sources: dict[str, int]
    level_counts: dict[str, int]
    head_domains: list[str]
    cascade_margin: float
    fast_share: float
    seconds: float


def merge_corpora(parts: list[LabelledCorpus], paths: list) -> LabelledCorpus:
    """One corpus from several files; a text labelled differently in two files is an error."""
    if len(parts) == 1:
        return parts[0]
    seen: dict[str, tuple] = {}
    clashes = []
    for k, c in enumerate(parts):
        for t, lv, d, line in zip(c.texts, c.levels, c.domains, c.lines, strict=True):
            key = " ".join(t.split()).lower()
            prev = seen.setdefault(key, (int(lv), d, k, line))
            if prev[:2] != (int(lv), d):
                clashes.append(
                    f"{Path(paths[prev[2]]).name} line {prev[3]} vs {Path(paths[k]).name} line {line}"
                )
    if clashes:
        raise CorpusError(
            "duplicate text with conflicting labels across corpora: "
            + "; ".join(clashes[:8])
            + (f" and {len(clashes) - 8} more" if len(clashes) > 8 else "")
        )
    return LabelledCorpus(
        [t for c in parts for t in c.texts],
        np.concatenate([c.levels for c in parts]),
        [d for c in parts for d in c.domains],
        [s for c in parts for s in c.sources],
        [n for c in parts for n in c.lines],
    )


def _check_fit_input(c: LabelledCorpus) -> None:
    """Enough rows per level to fit; the message names the thin levels and their rows."""
    thin = []
    for k, name in enumerate(LEVEL_NAMES):
        idx = np.flatnonzero(c.levels == k)
        if idx.size < MIN_ROWS_PER_LEVEL:
            where = f" (line {_rows([c.lines[i] for i in idx])})" if idx.size else ""
            thin.append(f"{name} has {idx.size} rows{where}")
    if thin:
        raise CorpusError(
            f"too few rows per level to fit (need at least {MIN_ROWS_PER_LEVEL} each): "
            + "; ".join(thin)
        )


def _features(base: RouterConfig, texts: list[str], cache_dir: Path | None, hash_dim: int):
    """Dense rule features, hashed tokens and quantised embeddings, exactly as the engine
    computes them at decision time."""
    from router.engine import Router, _clean
    from router.head import dense_features, hashed_tokens
    from router.semantic import quantise
    from router.toggle import resolve_toggle

    router = Router(
        base, semantic=True, hash_key=None, toggle=resolve_toggle(None), cache_dir=cache_dir
    )
    bounded = [router._bounded(_clean(t))[0] for t in texts]
    rules = Router(base, semantic=False, hash_key=None, toggle=resolve_toggle(None))
    out = rules._score(bounded)
    dense, names = dense_features(out, out.rule_features)
    tok = hashed_tokens(pa.array(bounded, pa.string()), hash_dim)
    emb = quantise(router.embed(bounded))
    return dense, names, tok, emb, out


def _design(dense, tok, emb, n: int, hash_dim: int, *, with_emb: bool, with_hash: bool = True):
    """Training matrix on the same grids the engine uses (so fitted = served)."""
    from scipy import sparse

    from router.head import EMB_SCALE, X_SCALE

    rows, buckets, ntok = tok
    vals = 1.0 / np.sqrt(np.maximum(ntok, 1.0))[rows]
    h = sparse.csr_matrix((vals, (rows, buckets)), shape=(n, hash_dim))
    if not with_hash:
        h = sparse.csr_matrix((n, hash_dim))
    parts = [sparse.csr_matrix(np.rint(dense * X_SCALE) / X_SCALE), h]
    if with_emb:
        parts.insert(0, sparse.csr_matrix(emb / EMB_SCALE * EMB_GAIN))
    return sparse.hstack(parts, format="csr")


def _ordinal(x, y, w, lam: float, n_classes: int, *, upshift: float, sharpen: float):
    """Adjacent-category ordinal logit: one latent difficulty ``eta = x . v`` and class logits
    ``z_k = k * eta + b_k``, fitted by weighted maximum likelihood with an L2 penalty ``lam``.

    Why ordinal: one direction of "harder" shared by every level generalises to sources never
    seen; a multinomial model learns a separate direction per level from each level's few sources.
    It is a multinomial model whose columns are multiples of ``v``, so it is stored and served
    exactly like one. ``upshift`` moves every text up the latent scale (asymmetric cost: a
    downgrade breaks the no-downgrade promise, an overpay only costs money); ``sharpen`` scales
    the logits (a calibration temperature) so fewer texts sit in the borderline band.
    Returns (coef C x F, intercept C)."""
    from scipy import optimize

    f_dim = x.shape[1]
    ks = np.arange(n_classes, dtype=np.float64)
    wn = w / w.sum()
    onehot = np.eye(n_classes)[y]

    def loss(p):
        v, b = p[:f_dim], np.concatenate([[0.0], p[f_dim:]])
        z = np.asarray(x @ v)[:, None] * ks[None, :] + b[None, :]
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        prob = np.exp(logp)
        nll = -(wn * (logp * onehot).sum(axis=1)).sum() + 0.5 * lam * (v @ v)
        gv = np.asarray(x.T @ (wn * (prob @ ks - y))).ravel() + lam * v
        gb = (wn[:, None] * (prob - onehot)).sum(axis=0)[1:]
        return nll, np.concatenate([gv, gb])

    p0 = np.zeros(f_dim + n_classes - 1)
    res = optimize.minimize(loss, p0, jac=True, method="L-BFGS-B", options={"maxiter": 3000})
    v, b = res.x[:f_dim], np.concatenate([[0.0], res.x[f_dim:]])
    coef = sharpen * ks[:, None] * v[None, :]
    bias = sharpen * (b + upshift * ks)
    return coef, bias


def _logreg(x, y, w, c: float, n_classes: int):
    """Multinomial logistic regression; returns (coef C x F, intercept C) over all n_classes."""
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=c, max_iter=500, tol=1e-5)
    m.fit(x, y, sample_weight=w)
    coef = np.zeros((n_classes, x.shape[1]))
    bias = np.full(n_classes, -30.0)  # a class never seen is never predicted
    coef[m.classes_] = m.coef_ if len(m.classes_) > 2 else np.vstack([-m.coef_, m.coef_]) / 2
    bias[m.classes_] = m.intercept_ if len(m.classes_) > 2 else np.array([-1, 1]) * m.intercept_ / 2
    return coef, bias


def _split(coef: np.ndarray, n_dense: int, hash_dim: int, with_emb: bool) -> dict:
    from router.semantic import EMBEDDING_DIM

    k = 0
    out = {}
    if with_emb:
        out["emb"] = (coef[:, :EMBEDDING_DIM] * EMB_GAIN).T
        k = EMBEDDING_DIM
    out["dense"] = coef[:, k : k + n_dense].T
    out["hashed"] = coef[:, k + n_dense : k + n_dense + hash_dim].T
    return out


def _source_weights(sources: list[str]) -> np.ndarray:
    counts = Counter(sources)
    mean = len(sources) / len(counts)
    return np.array([mean / counts[s] for s in sources], dtype=np.float64)


def _head_block(weights_name: str, sha: str, hash_dim: int, margin: float) -> str:
    return (
        "# Learned head written by `harness router fit` (router/fit.py); the weights' sha256 is\n"
        "# part of config_hash. Data card: the .card.yaml beside the weights.\n"
        "head:\n"
        f"  weights: {weights_name}\n"
        f"  sha256: {sha}\n"
        f"  hash_dim: {hash_dim}\n"
        f"  cascade_margin: {margin}      # fast head decides alone this far from a boundary\n"
        f"  domain_clarity: {DOMAIN_CLARITY}      # ... and when its domain probability is this high\n"
    )


def _strip_head(text: str) -> str:
    """The base config text without a previous fit's ``head:`` block and its comment lines."""
    out, skipping = [], False
    for line in text.splitlines():
        if line.startswith(("# Learned head written by", "# part of config_hash")):
            continue
        if line.startswith("head:"):
            skipping = True
            continue
        if skipping and (line.startswith(" ") or not line.strip()):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out).rstrip() + "\n"


def fit(
    corpus_paths: str | Path | list[str | Path],
    out: str | Path,
    *,
    base_config: str | Path | None = None,
    sources: set[str] | None = None,
    exclude_sources: set[str] | None = None,
    cache_dir: str | Path | None = None,
    hash_dim: int = HASH_DIM,
    progress: Callable[[str], None] | None = None,
) -> FitReport:
    """Fit the head on the corpora and write ``out`` (+ weights and data card beside it).

    The weights must not depend on the machine's core count: BLAS and OpenMP split their sums
    by thread count (one thread vs two gave another sha256 on the same corpus), so they run on
    one thread here, and every array, biases included, is rounded to the serving grid. MiniLM's
    vectors do not depend on the thread count (checked bit for bit)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _fit(
            corpus_paths,
            out,
            base_config=base_config,
            sources=sources,
            exclude_sources=exclude_sources,
            cache_dir=cache_dir,
            hash_dim=hash_dim,
            progress=progress,
        )


def _fit(
    corpus_paths: str | Path | list[str | Path],
    out: str | Path,
    *,
    base_config: str | Path | None,
    sources: set[str] | None,
    exclude_sources: set[str] | None,
    cache_dir: str | Path | None,
    hash_dim: int,
    progress: Callable[[str], None] | None,
) -> FitReport:
    import time

    step = progress or (lambda _m: None)
    t0 = time.perf_counter()
    base_path = Path(base_config) if base_config else default_config_path()
    base = load_config(base_path)
    if base.head is not None:  # fit on the rule features, never on a previous head
        base = RouterConfig.model_validate(base.model_dump(exclude={"head"}))
    step("reading the corpus")
    paths = [corpus_paths] if isinstance(corpus_paths, str | Path) else list(corpus_paths)
    corpus = merge_corpora(
        [load_corpus(p, sources=sources, exclude_sources=exclude_sources) for p in paths], paths
    )
    _check_fit_input(corpus)

    # The config's own exemplars join as labelled rows (level-only and domain-only).
    ex_texts, ex_lv, ex_dom = [], [], []
    for k, name in enumerate(LEVEL_NAMES):
        for t in base.exemplars.levels[name]:
            ex_texts.append(t), ex_lv.append(k), ex_dom.append(None)
    for d, phrases in base.exemplars.domains.items():
        for t in phrases:
            ex_texts.append(t), ex_lv.append(-1), ex_dom.append(d)
    texts = corpus.texts + ex_texts
    levels = np.concatenate([corpus.levels, np.array(ex_lv, dtype=np.int64)])
    domains = list(corpus.domains) + ex_dom
    weights = np.concatenate(
        [_source_weights(corpus.sources), np.full(len(ex_texts), EXEMPLAR_WEIGHT)]
    )
    n = len(texts)

    step(f"features and embeddings for {n} texts")
    dense, dense_names, tok, emb, rule_out = _features(
        base, texts, Path(cache_dir) if cache_dir else None, hash_dim
    )
    x_fast = _design(dense, tok, emb, n, hash_dim, with_emb=False)
    x_fast_dense = _design(dense, tok, emb, n, hash_dim, with_emb=False, with_hash=False)
    x_full = _design(dense, tok, emb, n, hash_dim, with_emb=True, with_hash=FULL_USES_HASHED)

    dom_counts = Counter(d for d in domains if d is not None)
    head_domains = sorted(d for d, c in dom_counts.items() if c >= MIN_DOMAIN_ROWS)
    if len(head_domains) < 2:
        raise CorpusError(
            f"too few domain labels to fit a domain head: need at least {MIN_DOMAIN_ROWS} rows "
            f"in two domains, got {dict(dom_counts)}"
        )
    lv_rows = np.flatnonzero(levels >= 0)
    dm_rows = np.array([i for i, d in enumerate(domains) if d in head_domains], dtype=np.int64)
    dm_y = np.array([head_domains.index(domains[i]) for i in dm_rows], dtype=np.int64)

    arrays: dict[str, np.ndarray] = {}
    for kind, x, with_emb in (("fast", x_fast, False), ("full", x_full, True)):
        step(f"fitting the {kind} head")
        coef, bias = _ordinal(
            x[lv_rows],
            levels[lv_rows],
            weights[lv_rows],
            LEVEL_L2,
            len(LEVEL_NAMES),
            upshift=LEVEL_UPSHIFT,
            sharpen=LEVEL_SHARPEN,
        )
        for part, arr in _split(coef, dense.shape[1], hash_dim, with_emb).items():
            arrays[f"{kind}_level.{part}"] = arr
        arrays[f"{kind}_level.bias"] = bias
        xd = x if kind == "full" or FAST_DOMAIN_USES_HASHED else x_fast_dense
        coef, bias = _logreg(xd[dm_rows], dm_y, weights[dm_rows], DOMAIN_C, len(head_domains))
        if "general" in head_domains:
            bias[head_domains.index("general")] += GENERAL_BIAS
        for part, arr in _split(coef, dense.shape[1], hash_dim, with_emb).items():
            arrays[f"{kind}_domain.{part}"] = arr
        arrays[f"{kind}_domain.bias"] = bias

    # Weights are stored on the serving grid, so the file is exactly what is served; biases on
    # the same grid, because the solvers leave last-bit differences (1e-10) between thread layouts.
    from router.engine import Router, head_expectations
    from router.head import W_SCALE

    for k, v in list(arrays.items()):
        arrays[k] = (np.rint(v * W_SCALE) / W_SCALE).astype(np.float64)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    weights_path = out.with_name(out.stem + ".head.npz")
    card_path = out.with_name(out.stem + ".head.card.yaml")
    probe = Router(base, semantic=False, hash_key=None)
    fake_head = base.model_copy(update={"head": _placeholder_head(hash_dim)})
    meta = head_expectations(fake_head, probe._domain_names) | {
        "feature_set": FEATURE_SET,
        "domains": head_domains,
        "dense_features": dense_names,
        "score_centers": [round(float(c), 6) for c in probe._centers],
        "fitted_at": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    _write_npz(weights_path, arrays, meta)
    sha = hashlib.sha256(weights_path.read_bytes()).hexdigest()

    # Cascade margin: the smallest margin at which the fast head's level is below the full
    # head's on at most CASCADE_MAX_BELOW of the fitting rows it would decide alone.
    step("choosing the cascade margin")
    margin, fast_share = _choose_margin(
        base, weights_path, sha, hash_dim, dense, tok, emb, rule_out, lv_rows
    )

    base_text = base_path.read_text(encoding="utf-8")
    out.write_text(
        _strip_head(base_text) + "\n" + _head_block(weights_path.name, sha, hash_dim, margin),
        encoding="utf-8",
    )
    load_config(out)  # what we wrote must load (and its head must match)
    Router(load_config(out), semantic=False, hash_key=None)
    level_counts = {LEVEL_NAMES[k]: int((corpus.levels == k).sum()) for k in range(5)}
    card = {
        "weights": weights_path.name,
        "sha256": sha,
        "format": meta["format"],
        "encoder": meta["encoder"],
        "fitted_at": meta["fitted_at"],
        "fitted_on": _fitted_on(),
        "corpus": [Path(p).name for p in paths],
        "rows": len(corpus),
        "fitting_sources": dict(sorted(Counter(corpus.sources).items())),
        "plus_config_exemplars": len(ex_texts),
        "level_counts": level_counts,
        "head_domains": head_domains,
        "feature_set": meta["feature_set"],
        "level_model": "ordinal (adjacent-category logit), fast and full head",
        "fit_constants": {
            "hash_dim": hash_dim,
            "level_l2": LEVEL_L2,
            "level_upshift": LEVEL_UPSHIFT,
            "level_sharpen": LEVEL_SHARPEN,
            "domain_c": DOMAIN_C,
            "general_bias": GENERAL_BIAS,
            "cascade_max_below": CASCADE_MAX_BELOW,
            "domain_clarity": DOMAIN_CLARITY,
        },
        "cascade_margin": margin,
        "fast_share_on_fit_rows": round(fast_share, 4),
        "command": "harness router fit --corpus <corpus> --out <config>",
    }
    card_path.write_text(
        "# Data card of a router head (written by `harness router fit`).\n"
        + yaml.safe_dump(card, sort_keys=False),
        encoding="utf-8",
    )
    return FitReport(
        config_path=out,
        weights_path=weights_path,
        card_path=card_path,
        rows=len(corpus),
        sources=card["fitting_sources"],
        level_counts=level_counts,
        head_domains=head_domains,
        cascade_margin=margin,
        fast_share=fast_share,
        seconds=round(time.perf_counter() - t0, 1),
    )


def _fitted_on() -> dict:
    """What the int8 vectors depend on besides the text: torch and the CPU instruction set it
    dispatched to (AVX2 and AVX-512 kernels give vectors with cosine down to 0.987 on the same
    text; docs/router-calibration.md). A refit elsewhere is a close head, not the same bytes."""
    import platform

    import torch

    return {
        "torch": str(torch.__version__),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine": platform.machine(),
    }


def _placeholder_head(hash_dim: int):
    from router.config import HeadConfig

    return HeadConfig(weights="-", sha256="0" * 64, hash_dim=hash_dim)


def _write_npz(path: Path, arrays: dict, meta: dict) -> None:
    """np.savez with a fixed member order and no timestamps: same fit, same bytes."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in ["meta", *sorted(arrays)]:
            buf = io.BytesIO()
            value = (
                np.array([json.dumps(meta, sort_keys=True)])
                if name == "meta"
                else np.ascontiguousarray(arrays[name])
            )
            np.lib.format.write_array(buf, value, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def _choose_margin(
    base, weights_path, sha, hash_dim, dense, tok, emb, rule_out, rows
) -> tuple[float, float]:
    from router.config import HeadConfig
    from router.head import LearnedHead, cascade_clear, subset_tokens

    cfg = base.model_copy(
        update={"head": HeadConfig(weights=str(weights_path), sha256=sha, hash_dim=hash_dim)}
    )
    from router.engine import Router, head_expectations

    probe = Router(cfg.model_copy(update={"head": None}), semantic=False, hash_key=None)
    head = LearnedHead(weights_path, head_expectations(cfg, probe._domain_names))
    xq = head.grid(dense[rows])
    t = subset_tokens(tok, rows)
    lp, dp = head.predict("fast", xq, t)
    lp2, _ = head.predict("full", xq, t, emb[rows])
    fast, full = head.expected_score(lp), head.expected_score(lp2)
    dist = head.boundary_distance(fast)
    clear = cascade_clear(dp, head.domains, rule_out, DOMAIN_CLARITY, rows)
    below = probe._levels_of(fast) < probe._levels_of(full)
    for m in MARGINS:
        decided = (dist >= m) & clear
        if decided.any() and below[decided].mean() <= CASCADE_MAX_BELOW:
            return m, float(decided.mean())
    m = MARGINS[-1]
    return m, float(((dist >= m) & clear).mean())
