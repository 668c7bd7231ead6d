"""The learned head: small linear models fitted by ``harness router fit`` (router/fit.py).

Two heads, each a level model (5 classes) and a domain model:

* **fast**: rule features + hashed word uni/bigrams. No embedding. It decides a text alone when
  its score is far from every level boundary and its domain is clear (the cascade).
* **full**: the same plus the MiniLM embedding, for every other text.

Why integer grids: a BLAS product sums in an order that depends on the batch shape, so a float
logit of one text could differ in its last bits between ``route`` and ``route_batch``. Inputs and
weights are put on integer grids (held as float64), so every partial sum is an exact integer and
the result does not depend on the batch (same trick as ``semantic.quantise``).

The weights file is versioned: its meta records the encoder variant, the feature layout, the
levels and domains; a file that does not match the config is refused with what was expected.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from router import features

if TYPE_CHECKING:
    from router.scoring import Scores

HEAD_FORMAT = "amaima-router-head/1"
W_SCALE = 2.0**14  # weight grid
X_SCALE = 2.0**12  # dense-feature grid
EMB_SCALE = 2.0**14  # = semantic.QUANT_SCALE: embeddings arrive already on this grid
MAX_TOKENS = 256  # words per text that feed the hashed features (bounded cost)
TOKEN_PATTERN = r"[^\w+#]+"  # keep c++ / c# / x+1 pieces together


class HeadError(ValueError):
    """A weights file that cannot be used with this config; says what was expected."""


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dense_features(out: Scores, f) -> tuple[np.ndarray, list[str]]:
    """The rule-side dense features (n x k) from ``Router._score``'s output and raw features."""
    cols = dict(out.features)
    cols["log_words"] = np.log1p(f.words) / 6.0
    cols["numbers"] = np.minimum(f.numbers, 10.0) / 10.0
    cols["questions"] = np.minimum(f.questions, 5.0) / 5.0
    cols["arithmetic"] = np.minimum(f.arithmetic, 4.0) / 4.0
    cols["trivial_any"] = f.trivial
    cols["clinical"] = np.minimum(f.clinical, 6.0) / 6.0
    cols["quantitative"] = np.minimum(f.quantitative, 3.0) / 3.0
    cols["image_intent"] = out.image_intent.astype(np.float64)
    cols["speech_intent"] = out.speech_intent.astype(np.float64)
    cols["rule_score"] = out.rule
    for j, d in enumerate(out.domain_names):
        cols[f"dom_rule:{d}"] = out.dom_rule[:, j]
    names = list(cols)
    return np.column_stack([np.asarray(cols[k], dtype=np.float64) for k in names]), names


def _bucket(token: str, dim: int) -> int:
    return zlib.crc32(token.encode("utf-8", "surrogatepass")) % dim


def hashed_tokens(col: pa.Array, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Word unigrams and bigrams hashed into ``dim`` buckets: (row id per token, bucket per
    token, tokens per row). Vectorised with Arrow; each distinct token string is hashed once.
    Small ASCII batches take compiled `re` (five Arrow kernel calls cost ~0.5 ms for one text),
    with the same tokens in the same order (tests/test_features_small_batch.py)."""
    texts = features.small_batch_texts(col)
    if texts is not None:
        return _hashed_tokens_compiled(texts, dim)
    n = len(col)
    lists = pc.split_pattern_regex(pc.utf8_lower(col), TOKEN_PATTERN)
    lens = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(lists)
    rows = np.repeat(np.arange(n, dtype=np.int64), lens)
    # position of each token in its row (drop empties and cap the words per row)
    starts = np.repeat(np.cumsum(lens) - lens, lens)
    pos = np.arange(len(rows), dtype=np.int64) - starts
    # Words of two or more characters that are not bare numbers: single letters and numbers
    # mostly encode a source's layout (option letters, list numbering), not what is asked.
    tok_len = pc.utf8_length(flat).to_numpy(zero_copy_only=False)
    numeric = pc.match_substring_regex(flat, r"^[\d.,]+$").to_numpy(zero_copy_only=False)
    keep = (tok_len > 1) & ~numeric & (pos < MAX_TOKENS)
    idx = np.flatnonzero(keep)
    uni = flat.take(pa.array(idx, pa.int64()))
    urows = rows[idx]
    same = urows[1:] == urows[:-1]
    bidx = np.flatnonzero(same)
    bi = pc.binary_join_element_wise(
        uni.take(pa.array(bidx, pa.int64())), uni.take(pa.array(bidx + 1, pa.int64())), " "
    )
    allt = pa.concat_arrays([uni, bi.cast(pa.string())])
    all_rows = np.concatenate([urows, urows[bidx]])
    enc = pc.dictionary_encode(allt)
    buckets_of = np.array([_bucket(s, dim) for s in enc.dictionary.to_pylist()], dtype=np.int64)
    buckets = buckets_of[enc.indices.to_numpy(zero_copy_only=False)]
    ntok = np.bincount(all_rows, minlength=n).astype(np.float64)
    return all_rows, buckets, ntok


_TOKEN_SPLIT = re.compile(TOKEN_PATTERN, re.ASCII)
_NUMERIC_TOKEN = re.compile(r"[\d.,]+", re.ASCII)  # fullmatch: the Arrow path's ^[\d.,]+$


def _hashed_tokens_compiled(
    texts: list[str | None], dim: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``hashed_tokens`` for ASCII texts in Python: the same split, filter and order (every
    row's unigrams, then every row's bigrams). A null text has no tokens."""
    uni_rows: list[int] = []
    uni: list[str] = []
    for i, t in enumerate(texts):
        if t is None:
            continue
        parts = _TOKEN_SPLIT.split(t.lower())[:MAX_TOKENS]
        kept = [p for p in parts if len(p) > 1 and not _NUMERIC_TOKEN.fullmatch(p)]
        uni += kept
        uni_rows += [i] * len(kept)
    bi_rows, bi = [], []
    for k in range(len(uni) - 1):
        if uni_rows[k] == uni_rows[k + 1]:
            bi.append(uni[k] + " " + uni[k + 1])
            bi_rows.append(uni_rows[k])
    buckets = [_bucket(s, dim) for s in uni + bi]
    all_rows = np.asarray(uni_rows + bi_rows, dtype=np.int64)
    ntok = np.bincount(all_rows, minlength=len(texts)).astype(np.float64)
    return all_rows, np.asarray(buckets, dtype=np.int64), ntok


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class _Linear:
    """One multinomial linear model on integer grids: dense part, hashed part, optional embedding."""

    dense: np.ndarray  # k x C (grid)
    hashed: np.ndarray  # dim x C (grid)
    bias: np.ndarray  # C (float)
    emb: np.ndarray | None  # 384 x C (grid) or None

    @classmethod
    def from_arrays(cls, z: dict, prefix: str) -> _Linear:
        q = lambda a: np.rint(np.asarray(a, dtype=np.float64) * W_SCALE)  # noqa: E731
        emb = z.get(f"{prefix}.emb")
        return cls(
            dense=q(z[f"{prefix}.dense"]),
            hashed=q(z[f"{prefix}.hashed"]),
            bias=np.asarray(z[f"{prefix}.bias"], dtype=np.float64),
            emb=None if emb is None else q(emb),
        )

    def logits(self, xq: np.ndarray, tok: tuple, embq: np.ndarray | None) -> np.ndarray:
        rows, buckets, ntok = tok
        n, c = xq.shape[0], self.dense.shape[1]
        z = (xq @ self.dense) / (X_SCALE * W_SCALE)
        hs = np.zeros((n, c), dtype=np.float64)
        for k in range(c):
            hs[:, k] = np.bincount(rows, weights=self.hashed[buckets, k], minlength=n)
        z = z + hs / W_SCALE / np.sqrt(np.maximum(ntok, 1.0))[:, None]
        if self.emb is not None:
            z = z + (embq @ self.emb) / (EMB_SCALE * W_SCALE)
        return z + self.bias[None, :]


class LearnedHead:
    """Fast and full heads loaded from a weights file (see module docstring)."""

    def __init__(self, path: str | Path, expected: dict) -> None:
        p = Path(path)
        try:
            z = dict(np.load(p, allow_pickle=False))
        except FileNotFoundError:
            raise HeadError(f"router head weights not found: {p}") from None
        except (ValueError, OSError) as exc:
            raise HeadError(
                f"router head weights {p} are not a readable .npz file ({exc})"
            ) from None
        try:
            meta = json.loads(str(np.asarray(z.pop("meta")).reshape(-1)[0]))
        except (KeyError, ValueError):
            raise HeadError(f"router head weights {p} have no meta record") from None
        for key, want in (expected | {"feature_set": features.FEATURE_SET}).items():
            got = meta.get(key)
            if got != want:
                raise HeadError(
                    f"router head weights {p} do not match the config: {key} is {got!r}, "
                    f"expected {want!r} (refit with `harness router fit`)"
                )
        self.meta = meta
        self.levels: list[str] = meta["levels"]
        self.domains: list[str] = meta["domains"]
        self.dim = int(meta["hash_dim"])
        self.centers = np.asarray(meta["score_centers"], dtype=np.float64)
        # The head's own score scale: fixed at fit time, whatever thresholds a config sets later.
        self.boundaries = (self.centers[:-1] + self.centers[1:]) / 2.0
        try:
            self.fast_level = _Linear.from_arrays(z, "fast_level")
            self.fast_domain = _Linear.from_arrays(z, "fast_domain")
            self.full_level = _Linear.from_arrays(z, "full_level")
            self.full_domain = _Linear.from_arrays(z, "full_domain")
        except KeyError as exc:
            raise HeadError(f"router head weights {p} lack array {exc}") from None
        k = len(meta["dense_features"])
        for m in (self.fast_level, self.fast_domain, self.full_level, self.full_domain):
            if m.dense.shape[0] != k or m.hashed.shape[0] != self.dim:
                raise HeadError(f"router head weights {p}: array shapes do not match the meta")

    def boundary_distance(self, score: np.ndarray) -> np.ndarray:
        """How far each score lies from the nearest level boundary: what the cascade's margin is
        compared with, in serving (``CascadeScorer``) and in the fit that chooses the margin.
        Both sides count: a margin on the upper side alone embedded 15 % fewer check-part texts
        but raised overpay 4.6 -> 5.2 % and borderline 7.0 -> 11.6 % (docs/router-calibration.md)."""
        return np.abs(score[:, None] - self.boundaries[None, :]).min(axis=1)

    def expected_score(self, probs: np.ndarray) -> np.ndarray:
        """Probability-weighted level centre, summed column by column (batch-invariant)."""
        acc = np.zeros(probs.shape[0], dtype=np.float64)
        for j in range(probs.shape[1]):
            acc = acc + probs[:, j] * self.centers[j]
        return acc

    @staticmethod
    def grid(x: np.ndarray) -> np.ndarray:
        return np.rint(x * X_SCALE)

    def predict(
        self, which: str, xq: np.ndarray, tok: tuple, embq: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(level probabilities n x 5, domain probabilities n x D) from the fast or full head."""
        lv, dm = (
            (self.fast_level, self.fast_domain)
            if which == "fast"
            else (self.full_level, self.full_domain)
        )
        return _softmax(lv.logits(xq, tok, embq)), _softmax(dm.logits(xq, tok, embq))


def domain_clear(
    dp: np.ndarray,
    head_domains: list[str],
    dom_rule: np.ndarray,
    rule_domains: list[str],
    clarity: float,
) -> np.ndarray:
    """Rows whose domain the fast head may decide alone: its domain probability is at least
    ``clarity`` AND it names the domain the keyword evidence names (``general`` when no keyword
    hit, and no tie). Two views that fail differently must agree: the fast head reads word identity and
    counts (numbers make a clinical vignette look like a maths word problem to it), the keywords
    read vocabulary. A row where they disagree is embedded."""
    fast_dom = np.asarray(head_domains, dtype=object)[dp.argmax(axis=1)]
    rule_dom = np.asarray(rule_domains, dtype=object)[dom_rule.argmax(axis=1)]
    top2 = np.sort(dom_rule, axis=1)[:, -2:]
    unique = top2[:, 1] > top2[:, 0]  # a tie between two domains' keywords names neither
    return (dp.max(axis=1) >= clarity) & unique & (fast_dom == rule_dom)


def cascade_clear(
    dp: np.ndarray, head_domains: list[str], rules: Scores, clarity: float, rows=slice(None)
) -> np.ndarray:
    """The cascade's domain gate, one definition for serving (``CascadeScorer``) and for the fit
    that chooses its margin: ``domain_clear``, or an image/speech intent the rules recognise."""
    return (
        domain_clear(dp, head_domains, rules.dom_rule[rows], rules.domain_names, clarity)
        | rules.image_intent[rows]
        | rules.speech_intent[rows]
    )


def subset_tokens(tok: tuple, rows_sel: np.ndarray) -> tuple:
    """The hashed tokens of the selected rows, renumbered 0..len(rows_sel)-1."""
    rows, buckets, ntok = tok
    remap = np.full(len(ntok), -1, dtype=np.int64)
    remap[rows_sel] = np.arange(len(rows_sel))
    m = remap[rows] >= 0
    return remap[rows[m]], buckets[m], ntok[rows_sel]
