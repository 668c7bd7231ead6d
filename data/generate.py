"""Seeded synthetic query corpus: realistic mix, daily and weekly traffic shape, optional bad rows.

Why synthetic: a pilot week needs a week of traffic that looks like production (lots of chit-chat
and voice commands, a long tail of hard requests, repeats of popular queries, quiet nights and
weekends) without real user text. Texts are composed from templates x slot fillers x optional
prefixes, suffixes, casing and typos, so a million rows hold hundreds of thousands of distinct
texts. Everything is drawn from one ``numpy`` generator: the same seed gives the same table.

Bad rows (``bad_rows > 0``) exercise every quarantine rule of ``data.corpus``. Two of them cannot
live in an ordinary Arrow table, so with bad rows the table changes shape, on purpose:

* ``ts`` becomes an ISO-8601 string column (``...Z``), so unparseable timestamps exist in every
  format (parquet included), not only in CSV and JSONL;
* ``invalid_encoding`` rows hold invalid UTF-8 bytes (an encoded lone surrogate, ``ED A0 80``)
  inside the Arrow string column, exactly what a broken producer leaves in a parquet file. Such a
  table must not be ``to_pylist()``-ed; ``write_corpus`` writes those bytes raw to parquet and CSV
  and as a ``\\ud800`` escape to JSONL.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import os
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data.corpus import FORMATS, TEXT_LIMIT, US_PER_DAY, Reason, format_of
from data.templates import Family, packaged_templates
from router.decision import ComplexityLevel, Domain

DEFAULT_TENANTS: tuple[str, ...] = ("acme-retail", "globex-health", "initech-dev", "umbrella-bank")
TENANT_WEIGHTS: tuple[float, ...] = (0.42, 0.24, 0.22, 0.12)
WEEKEND_FACTOR = 0.4  # weekend volume relative to a weekday
POPULAR_SHARE = 0.035  # rows drawn from a small pool of popular queries (exact repeats)
POPULAR_POOL = 400
ROW_GROUP_ROWS = 65_536
MAX_DAYS = 3_660  # ten years of traffic: the day x hour weights stay a small array  # parquet row groups small enough for a bounded-memory streaming read

# Bad-row kinds: the loader's quarantine reasons (data.corpus.Reason) a generated row can carry.
BAD_KINDS: tuple[str, ...] = tuple(
    r.value
    for r in (
        Reason.MISSING_TEXT,
        Reason.EMPTY_TEXT,
        Reason.UNPARSEABLE_TS,
        Reason.DUPLICATE_QUERY_ID,
        Reason.TEXT_TOO_LONG,
        Reason.INVALID_ENCODING,
        Reason.INVALID_LABEL,
    )
)
# Valid but unusual rows injected alongside bad rows: the loader must accept them.
WEIRD_KINDS: tuple[str, ...] = ("emoji", "right_to_left", "nul_char")

INVALID_UTF8_MARK = "\ud800"  # a lone surrogate; stored as bytes ED A0 80 (surrogatepass)

CORPUS_COLUMNS: tuple[str, ...] = (
    "query_id",
    "ts",
    "text",
    "tenant",
    "expected_level",
    "expected_domain",
)

# The templates are data (data/templates.yaml): slot fillers, query families, noise.
_TEMPLATES = packaged_templates()
SLOTS: dict[str, tuple[str, ...]] = _TEMPLATES.slots
FAMILIES: tuple[Family, ...] = _TEMPLATES.families
CONTEXTS: tuple[str, ...] = _TEMPLATES.contexts
CONTEXT_P: dict[ComplexityLevel, float] = _TEMPLATES.context_probability
CHAT_PREFIXES = _TEMPLATES.chat_prefixes
CHAT_SUFFIXES = _TEMPLATES.chat_suffixes
LONG_PREFIXES = _TEMPLATES.long_prefixes
LONG_SUFFIXES = _TEMPLATES.long_suffixes
RTL_TEXTS: tuple[tuple[str, ComplexityLevel, Domain], ...] = _TEMPLATES.right_to_left
EMOJI_TAILS: tuple[str, ...] = _TEMPLATES.emoji_tails
_LOG_LINE = _TEMPLATES.log_line
T, S = ComplexityLevel.TRIVIAL, ComplexityLevel.SIMPLE


def _compile(template: str) -> tuple[str, tuple[tuple[str, ...], ...]]:
    """Turn '{name}' placeholders into a %-format string and the slot lists it draws from."""
    parts: list[str] = []
    slots: list[tuple[str, ...]] = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        parts.append(literal.replace("%", "%%"))
        if field is None:
            continue
        key = field.rstrip("0123456789")
        if key not in SLOTS:
            raise KeyError(f"template {template!r} names unknown slot {field!r}")
        parts.append("%s")
        slots.append(SLOTS[key])
    return "".join(parts), tuple(slots)


_COMPILED: tuple[tuple[tuple[str, tuple[np.ndarray, ...]], ...], ...] = tuple(
    tuple(
        (fmt, tuple(np.array(s, dtype=object) for s in slots))
        for fmt, slots in map(_compile, fam.templates)
    )
    for fam in FAMILIES
)
_CONTEXTS = tuple(
    (fmt, tuple(np.array(s, dtype=object) for s in slots)) for fmt, slots in map(_compile, CONTEXTS)
)
_FAMILY_CONTEXT_P = np.array([CONTEXT_P[f.level] for f in FAMILIES])
_FAMILY_LEVEL = np.array([f.level.value for f in FAMILIES], dtype=object)
_FAMILY_DOMAIN = np.array([f.domain.value for f in FAMILIES], dtype=object)
_FAMILY_CHAT = np.array([f.chat for f in FAMILIES])


def _weights(pairs: Sequence[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([v for v, _ in pairs], dtype=object)
    w = np.array([p for _, p in pairs], dtype=np.float64)
    return values, w / w.sum()


def _family_probs(attr: str) -> np.ndarray:
    w = np.array([getattr(f, attr) for f in FAMILIES], dtype=np.float64)
    return w / w.sum()


def diurnal_weights() -> np.ndarray:
    """Relative traffic per UTC hour: quiet nights, a mid-morning and an afternoon peak, a small
    evening bump (voice assistants)."""
    h = np.arange(24) + 0.5
    w = (
        0.05
        + 1.0 * np.exp(-0.5 * ((h - 10.5) / 1.8) ** 2)
        + 0.9 * np.exp(-0.5 * ((h - 15.0) / 2.2) ** 2)
        + 0.45 * np.exp(-0.5 * ((h - 20.5) / 1.4) ** 2)
    )
    return w / w.sum()


def _cell_probs(start: date, days: int) -> np.ndarray:
    """Probability of each (day, UTC hour) cell, day-major."""
    day_w = np.array(
        [WEEKEND_FACTOR if (start + timedelta(d)).weekday() >= 5 else 1.0 for d in range(days)]
    )
    cell_p = (day_w[:, None] * diurnal_weights()[None, :]).ravel()
    cell_p /= cell_p.sum()
    return cell_p


def _work_hours(start: date, days: int, cells: np.ndarray) -> np.ndarray:
    day_idx, hour = np.divmod(cells, 24)
    weekday = np.array([(start + timedelta(d)).weekday() < 5 for d in range(days)])[day_idx]
    return weekday & (hour >= 8) & (hour < 19)


def _sample_times(
    rng: np.random.Generator, n: int, start: date, days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps (int64 microseconds since epoch, sorted) and a work-hours mask."""
    cell_p = _cell_probs(start, days)
    cells = np.sort(rng.choice(cell_p.size, size=n, p=cell_p))
    offset_us = rng.integers(0, 3_600_000_000, size=n)
    start_us = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * 10**6
    ts = start_us + cells.astype(np.int64) * 3_600_000_000 + offset_us
    order = np.argsort(ts, kind="stable")
    ts, cells = ts[order], cells[order]
    return ts, _work_hours(start, days, cells)


def _fill(
    rng: np.random.Generator,
    templates: tuple[tuple[str, tuple[np.ndarray, ...]], ...],
    out: np.ndarray,
    rows: np.ndarray,
) -> None:
    """Fill ``out[rows]``: a template per row, then an independent draw per slot."""
    tpl = rng.integers(0, len(templates), size=rows.size)
    for t in np.unique(tpl):
        sub = rows[tpl == t]
        fmt, slots = templates[t]
        if not slots:
            out[sub] = fmt
            continue
        cols = [s[rng.integers(0, s.size, size=sub.size)] for s in slots]
        out[sub] = [fmt % vals for vals in zip(*cols, strict=True)]


def _compose(rng: np.random.Generator, fam: np.ndarray) -> np.ndarray:
    """Texts for the given family indices, some with a context sentence in front."""
    out = np.empty(fam.size, dtype=object)
    for f in np.unique(fam):
        _fill(rng, _COMPILED[f], out, np.flatnonzero(fam == f))
    with_ctx = np.flatnonzero(rng.random(fam.size) < _FAMILY_CONTEXT_P[fam])
    if with_ctx.size:
        ctx = np.empty(with_ctx.size, dtype=object)
        _fill(rng, _CONTEXTS, ctx, np.arange(with_ctx.size))
        out[with_ctx] = [c + " " + t for c, t in zip(ctx, out[with_ctx], strict=True)]
    return out


def _typo(text: str, pos: float) -> str:
    """Swap two neighbouring characters: the commonest typing slip."""
    if len(text) < 4:
        return text
    i = 1 + int(pos * (len(text) - 3))
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _decorate(rng: np.random.Generator, texts: np.ndarray, chat: np.ndarray) -> np.ndarray:
    """Prefixes, suffixes, casing, dropped apostrophes, stray spaces and typos: the noise that
    makes real traffic varied. Chat-register rows get much more of it than long requests."""
    n = texts.size
    out = texts.copy()
    for mask, prefixes, suffixes in (
        (chat, CHAT_PREFIXES, CHAT_SUFFIXES),
        (~chat, LONG_PREFIXES, LONG_SUFFIXES),
    ):
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            continue
        pv, pp = _weights(prefixes)
        sv, sp = _weights(suffixes)
        pre = pv[rng.choice(pv.size, size=idx.size, p=pp)]
        suf = sv[rng.choice(sv.size, size=idx.size, p=sp)]
        out[idx] = [p + t + s for p, t, s in zip(pre, out[idx], suf, strict=True)]
    u = rng.random((4, n))
    chat_idx = np.flatnonzero(chat)
    cap = chat_idx[(u[0, chat_idx] >= 0.55) & (u[0, chat_idx] < 0.97)]
    upper = chat_idx[u[0, chat_idx] >= 0.985]
    out[cap] = [t[:1].upper() + t[1:] for t in out[cap]]
    out[upper] = [t.upper() for t in out[upper]]
    no_apos = chat_idx[u[1, chat_idx] < 0.2]
    out[no_apos] = [t.replace("'", "") for t in out[no_apos]]
    spaced = chat_idx[u[2, chat_idx] < 0.04]
    out[spaced] = [t + " " for t in out[spaced]]
    typo = np.flatnonzero(u[3] < np.where(chat, 0.08, 0.02))
    pos = rng.random(typo.size)
    out[typo] = [_typo(t, p) for t, p in zip(out[typo], pos, strict=True)]
    return out


def _popular_pool(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A few hundred popular short queries (chat register, TRIVIAL or SIMPLE) with Zipf-like
    popularity: the head of real traffic."""
    w = np.array([f.leisure + f.work for f in FAMILIES]) * _FAMILY_CHAT
    w = w * np.select([_FAMILY_LEVEL == T.value, _FAMILY_LEVEL == S.value], [3.0, 1.0], 0.0)
    fam = rng.choice(len(FAMILIES), size=POPULAR_POOL, p=w / w.sum())
    fam = fam[np.argsort(_FAMILY_LEVEL[fam] != T.value, kind="stable")]
    texts = _compose(rng, fam)
    popularity = 1.0 / np.arange(1, POPULAR_POOL + 1) ** 1.1
    return texts, fam, popularity / popularity.sum()


def _to_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"start {value!r} is not an ISO date (YYYY-MM-DD)") from None


_LOG_HEAD = _TEMPLATES.log_head


@functools.cache
def _log_dump() -> str:
    """About 125,000 characters of log lines, built once and sliced per row."""
    lines, size, i = [], 0, 0
    while size < TEXT_LIMIT + 25_000:
        line = _LOG_LINE.format(
            mm=i % 60, ss=(i * 7) % 60, ms=(i * 13) % 1000, w=i % 16, rid=f"{i:08x}", a=i % 5 + 1
        )
        lines.append(line)
        size += len(line)
        i += 1
    return "".join(lines)


def _long_text(rng: np.random.Generator) -> str:
    """A pasted log dump just over the corpus size limit."""
    target = TEXT_LIMIT + int(rng.integers(1, 20_000))
    return _LOG_HEAD + _log_dump()[: target - len(_LOG_HEAD)]


def _string_array(values: list[str | None]) -> pa.Array:
    """A string array from Python strings that may hold lone surrogates: encoded with
    surrogatepass and assembled from buffers, because Arrow refuses such strings otherwise."""
    n = len(values)
    encoded = [b"" if v is None else v.encode("utf-8", "surrogatepass") for v in values]
    valid = np.array([v is not None for v in values])
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    large = offsets[-1] >= 2**31
    typ = pa.large_string() if large else pa.string()
    off = offsets if large else offsets.astype(np.int32)
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    return pa.Array.from_buffers(
        typ,
        n,
        [bitmap, pa.py_buffer(off.tobytes()), pa.py_buffer(b"".join(encoded))],
        null_count=int((~valid).sum()),
    )


@dataclass(frozen=True, slots=True)
class _Corruption:
    positions: np.ndarray
    kinds: np.ndarray


def _plan_corruption(rng: np.random.Generator, n: int, bad_rows: float) -> _Corruption:
    """Which rows become which bad or weird kind. Row 0 stays clean (a duplicate needs an
    earlier clean row to copy its id from)."""
    n_bad = int(round(n * bad_rows))
    if n_bad == 0:
        return _Corruption(np.empty(0, dtype=np.int64), np.empty(0, dtype=object))
    n_weird = max(len(WEIRD_KINDS), n_bad * len(WEIRD_KINDS) // len(BAD_KINDS))
    n_bad = min(n_bad, max(0, n - 1 - n_weird))
    if n_bad < len(BAD_KINDS):
        raise ValueError(
            f"bad_rows={bad_rows} of n={n} leaves room for {n_bad} bad rows; at least "
            f"{len(BAD_KINDS)} (one per kind) plus {n_weird} weird rows are needed: raise n or "
            "bad_rows"
        )
    kinds = np.array(
        [BAD_KINDS[i % len(BAD_KINDS)] for i in range(n_bad)]
        + [WEIRD_KINDS[i % len(WEIRD_KINDS)] for i in range(n_weird)],
        dtype=object,
    )
    positions = 1 + rng.choice(n - 1, size=kinds.size, replace=False)
    return _Corruption(positions.astype(np.int64), kinds)


def generate_corpus(
    n: int,
    seed: int = 42,
    days: int = 7,
    start: date | str = "2026-11-16",
    bad_rows: float = 0.0,
    tenants: Sequence[str] = DEFAULT_TENANTS,
    progress: Callable[[str], None] | None = None,
) -> pa.Table:
    """A seeded synthetic corpus of ``n`` rows over ``days`` UTC days from ``start``, sorted by ts.

    ``bad_rows`` is the fraction of rows corrupted, split evenly over ``BAD_KINDS``; as many
    valid-but-weird rows (emoji, right-to-left, NUL) are added beside them. See the module
    docstring for how bad rows change the table's types.
    """
    start_d = _check_args(n, days, start, bad_rows, tenants)
    step = progress or (lambda _msg: None)
    rng = np.random.default_rng(seed)

    step("timestamps")
    ts_us, work = _sample_times(rng, n, start_d, days)

    step("query mix")
    pool = _popular_pool(rng)
    return _rows(rng, ts_us, work, pool, seed, 0, bad_rows, tenants, step, bad_shape=False)


def _check_args(
    n: int, days: int, start: date | str, bad_rows: float, tenants: Sequence[str]
) -> date:
    """The start day, after refusing arguments no corpus can be made of."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS:,}, got {days:,}")
    if not 0.0 <= bad_rows < 0.5:
        raise ValueError(f"bad_rows is a fraction in [0, 0.5), got {bad_rows}")
    if not tenants:
        raise ValueError("tenants must name at least one tenant")
    start_d = _to_date(start)
    if start_d > date.max - timedelta(days=days):
        raise ValueError(f"start {start_d} plus {days:,} days runs past year 9999")
    return start_d


def _rows(
    rng: np.random.Generator,
    ts_us: np.ndarray,
    work: np.ndarray,
    pool: tuple[np.ndarray, np.ndarray, np.ndarray],
    seed: int,
    first: int,
    bad_rows: float,
    tenants: Sequence[str],
    step: Callable[[str], None],
    *,
    bad_shape: bool,
) -> pa.Table:
    """The rows for the given timestamps; query ids count from ``first``. ``bad_shape`` keeps
    the bad-row column types even when this table has no bad row (streamed chunks must share
    one schema)."""
    n = ts_us.size
    pool_texts, pool_fam, pool_p = pool
    popular = rng.random(n) < POPULAR_SHARE
    fam = np.empty(n, dtype=np.int64)
    for mask, probs in ((work, _family_probs("work")), (~work, _family_probs("leisure"))):
        idx = np.flatnonzero(mask & ~popular)
        fam[idx] = rng.choice(len(FAMILIES), size=idx.size, p=probs)
    pop_idx = np.flatnonzero(popular)
    pick = rng.choice(POPULAR_POOL, size=pop_idx.size, p=pool_p)
    fam[pop_idx] = pool_fam[pick]

    step("texts")
    fresh = np.flatnonzero(~popular)
    texts = np.empty(n, dtype=object)
    texts[fresh] = _decorate(rng, _compose(rng, fam[fresh]), _FAMILY_CHAT[fam[fresh]])
    texts[pop_idx] = pool_texts[pick]
    levels = _FAMILY_LEVEL[fam]
    domains = _FAMILY_DOMAIN[fam]

    tenant_w = np.array(TENANT_WEIGHTS[: len(tenants)], dtype=np.float64)
    if tenant_w.size < len(tenants):
        tenant_w = np.ones(len(tenants))
    tenant = np.array(list(tenants), dtype=object)[
        rng.choice(len(tenants), size=n, p=tenant_w / tenant_w.sum())
    ]
    query_ids = np.array([f"q{seed}-{i:08d}" for i in range(first, first + n)], dtype=object)

    try:
        plan = _plan_corruption(rng, n, bad_rows)
    except ValueError:
        if not bad_shape:
            raise
        plan = _Corruption(np.empty(0, dtype=np.int64), np.empty(0, dtype=object))  # tiny chunk
    if plan.positions.size == 0 and not bad_shape:
        step("table")
        return pa.table(
            {
                "query_id": pa.array(query_ids, pa.string()),
                "ts": pa.array(ts_us, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                "text": pa.array(texts, pa.string()),
                "tenant": pa.array(tenant, pa.string()),
                "expected_level": pa.array(levels, pa.string()),
                "expected_domain": pa.array(domains, pa.string()),
            }
        )

    step("bad rows")
    ts_str = np.char.add(np.datetime_as_string(ts_us.astype("datetime64[us]"), unit="us"), "Z")
    ts_col = ts_str.astype(object)
    text_col: np.ndarray = texts.astype(object)
    clean = np.ones(n, dtype=bool)
    clean[plan.positions] = False
    clean_idx = np.flatnonzero(clean)
    bad_ts = ("not a timestamp", "2026-02-30T25:61:00Z", "yesterday at noon", "", "16/11/2026 9am")
    for j, (pos, kind) in enumerate(zip(plan.positions, plan.kinds, strict=True)):
        if kind == "missing_text":
            text_col[pos] = None
        elif kind == "empty_text":
            text_col[pos] = (" ", "   ", "\t", " \n ")[j % 4]
        elif kind == "unparseable_ts":
            ts_col[pos] = bad_ts[j % len(bad_ts)]
        elif kind == "duplicate_query_id":
            n_earlier = int(np.searchsorted(clean_idx, pos))  # row 0 is always clean
            query_ids[pos] = query_ids[clean_idx[int(rng.integers(0, n_earlier))]]
        elif kind == "text_too_long":
            text_col[pos] = _long_text(rng)
        elif kind == "invalid_encoding":
            t = text_col[pos]
            cut = len(t) // 2
            text_col[pos] = t[:cut] + INVALID_UTF8_MARK + t[cut:]
        elif kind == "invalid_label":
            if j % 2:
                levels[pos] = "ULTRA"
            else:
                domains[pos] = "astrology"
        elif kind == "emoji":
            text_col[pos] = text_col[pos] + EMOJI_TAILS[j % len(EMOJI_TAILS)]
        elif kind == "right_to_left":
            rtl, lvl, dom = RTL_TEXTS[j % len(RTL_TEXTS)]
            text_col[pos], levels[pos], domains[pos] = rtl, lvl.value, dom.value
        elif kind == "nul_char":
            t = text_col[pos]
            text_col[pos] = t[: len(t) // 2] + "\x00" + t[len(t) // 2 :]
    step("table")
    return pa.table(
        {
            "query_id": pa.array(query_ids, pa.string()),
            "ts": pa.array(ts_col, pa.string()),
            "text": _string_array(list(text_col)),
            "tenant": pa.array(tenant, pa.string()),
            "expected_level": pa.array(levels, pa.string()),
            "expected_domain": pa.array(domains, pa.string()),
        }
    )


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def format_for(path: Path) -> str | None:
    """Format name for a path by extension, as the loader reads it (``data.corpus.format_of``)."""
    return format_of(path)


def _output_format(out: Path, format: str | None) -> str:
    """``format``, else the one ``out``'s extension names; ``ValueError`` if neither says."""
    fmt = format or format_for(out)
    if fmt not in FORMATS:
        raise ValueError(
            f"cannot tell the corpus format of {out}: use a .parquet, .csv or .jsonl extension "
            "or pass format='parquet'|'csv'|'jsonl'"
        )
    return fmt


def _python_columns(table: pa.Table) -> dict[str, list]:
    """Columns as Python values; strings decoded with surrogatepass so invalid bytes survive as
    lone surrogates, and timestamps as ISO-8601 ``Z`` strings."""
    cols: dict[str, list] = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            us = pc.cast(col, pa.timestamp("us", tz="UTC")).cast(pa.int64())
            arr = us.to_numpy(zero_copy_only=False).astype("datetime64[us]")
            iso = np.char.add(np.datetime_as_string(arr, unit="us"), "Z").tolist()
            nulls = col.is_null().to_numpy(zero_copy_only=False)
            cols[name] = [None if z else v for v, z in zip(iso, nulls, strict=True)]
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            raw = pc.cast(col, pa.large_binary()).to_pylist()
            cols[name] = [None if b is None else b.decode("utf-8", "surrogatepass") for b in raw]
        else:
            cols[name] = col.to_pylist()
    return cols


def _open_text(path: Path) -> IO[str]:
    raw = gzip.open(path, "wb") if path.name.lower().endswith(".gz") else open(path, "wb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8", errors="surrogatepass", newline="")


def write_corpus(table: pa.Table, path: str | Path, format: str | None = None) -> Path:
    """Write a corpus table as parquet, CSV or JSONL, chosen by extension unless ``format`` says.

    CSV writes nulls as empty fields (the loader reads an empty field as missing) and invalid
    UTF-8 bytes raw; JSONL writes lone surrogates as ``\\udXXX`` escapes.
    """
    import pyarrow.parquet as pq

    out = Path(path)
    fmt = _output_format(out, format)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(table, out, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        return out
    with _open_text(out) as fh:
        _write_text_rows(fh, table, fmt, header=True)
    return out


def _write_text_rows(fh: IO[str], table: pa.Table, fmt: str, *, header: bool) -> None:
    """Append ``table`` as CSV (with the header row when ``header``) or JSONL."""
    cols = _python_columns(table)
    names = list(cols)
    rows = zip(*(cols[c] for c in names), strict=True)
    if fmt == "csv":
        writer = csv.writer(fh, lineterminator="\n")
        if header:
            writer.writerow(names)
        writer.writerows(rows)
        return
    for row in rows:
        record = dict(zip(names, row, strict=True))
        try:
            line = json.dumps(record, ensure_ascii=False)
            line.encode("utf-8")
        except UnicodeEncodeError:
            line = json.dumps(record, ensure_ascii=True)
        fh.write(line)
        fh.write("\n")


# --------------------------------------------------------------------------------------------
# Streaming: any n in bounded memory
# --------------------------------------------------------------------------------------------
STREAM_CHUNK_ROWS = 200_000  # rows generated and written at a time (~100 MB of Python objects)
_MIN_BYTES_PER_ROW = {"parquet": 25, "csv": 60, "jsonl": 110}  # lower bounds, measured


@dataclass
class GeneratedCorpus:
    """What ``write_generated_corpus`` wrote: counts only, never the rows."""

    path: Path
    rows: int
    per_day: dict[date, int]
    unparseable_ts: int
    levels: dict[str, int]
    domains: dict[str, int]

    def add(self, table: pa.Table) -> None:
        from data.corpus import parse_ts

        us, ok = parse_ts(table.column("ts").combine_chunks())
        day_no, counts = np.unique(us[ok] // US_PER_DAY, return_counts=True)
        for d, c in zip(day_no.tolist(), counts.tolist(), strict=True):
            day = date(1970, 1, 1) + timedelta(days=d)
            self.per_day[day] = self.per_day.get(day, 0) + c
        self.unparseable_ts += int((~ok).sum())
        for name, into in (("expected_level", self.levels), ("expected_domain", self.domains)):
            for vc in pc.value_counts(table.column(name)).to_pylist():
                key = str(vc["values"])
                into[key] = into.get(key, 0) + vc["counts"]
        self.rows += table.num_rows


def write_generated_corpus(
    path: str | Path,
    n: int,
    *,
    seed: int = 42,
    days: int = 7,
    start: date | str = "2026-11-16",
    bad_rows: float = 0.0,
    format: str | None = None,
    tenants: Sequence[str] = DEFAULT_TENANTS,
    chunk_rows: int = STREAM_CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
) -> GeneratedCorpus:
    """Generate ``n`` rows straight to ``path``, ``chunk_rows`` at a time, so memory does not
    grow with ``n`` (``generate_corpus`` holds the whole table: 1e9 rows needed 15+ GB).

    Up to ``chunk_rows`` the file is exactly ``write_corpus(generate_corpus(...))``. Beyond,
    rows per (day, hour) cell are drawn first (multinomial), then generated cell by cell in
    time order, so the file is still sorted by ``ts`` with the same daily and weekly shape;
    each chunk has its own seeded generator (same seed, same file) and bad rows are planned per
    chunk. The file is written under a temporary name and renamed when complete; a target that
    clearly cannot fit on its disk is refused before any work.
    """
    out = Path(path)
    fmt = _output_format(out, format)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    start_d = _check_args(n, days, start, bad_rows, tenants)
    out.parent.mkdir(parents=True, exist_ok=True)
    import shutil

    need = n * _MIN_BYTES_PER_ROW[fmt]
    free = shutil.disk_usage(out.parent).free
    if need > free:
        raise ValueError(
            f"{n:,} rows need at least {need / 1e9:,.1f} GB as {fmt}; {out.parent} has "
            f"{free / 1e9:,.1f} GB free"
        )
    summary = GeneratedCorpus(out, 0, {}, 0, {}, {})
    tmp = out.with_name(f".tmp-{os.getpid()}-{out.name}")
    try:
        if n <= chunk_rows:
            table = generate_corpus(n, seed, days, start_d, bad_rows, tenants)
            write_corpus(table, tmp, format=fmt)
            summary.add(table)
        else:
            _stream_chunks(
                tmp, fmt, n, seed, start_d, days, bad_rows, tenants, chunk_rows, summary, progress
            )
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(summary.rows)
    return summary


def _segments(
    rng: np.random.Generator, n: int, start: date, days: int, chunk_rows: int
) -> Iterator[tuple[int, int, int, int]]:
    """(cell, first microsecond, end microsecond, rows) in time order; a cell with more rows
    than a chunk is split into equal time slices."""
    counts = rng.multinomial(n, _cell_probs(start, days))
    for cell in np.flatnonzero(counts).tolist():
        c = int(counts[cell])
        k = -(-c // chunk_rows)
        sub = rng.multinomial(c, [1.0 / k] * k) if k > 1 else [c]
        for j, cnt in enumerate(sub):
            if cnt:
                yield cell, j * 3_600_000_000 // k, (j + 1) * 3_600_000_000 // k, int(cnt)


def _stream_chunks(
    tmp: Path,
    fmt: str,
    n: int,
    seed: int,
    start: date,
    days: int,
    bad_rows: float,
    tenants: Sequence[str],
    chunk_rows: int,
    summary: GeneratedCorpus,
    progress: Callable[[int], None] | None,
) -> None:
    import pyarrow.parquet as pq

    plan_rng = np.random.default_rng([seed, 0x5743])
    pool = _popular_pool(np.random.default_rng([seed, 0x9001]))
    start_us = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * 10**6
    noop: Callable[[str], None] = lambda _msg: None  # noqa: E731
    writer: Any = None
    fh: IO[str] | None = None
    chunk_no = 0
    try:

        def emit(segs: list[tuple[int, int, int, int]]) -> None:
            nonlocal writer, fh, chunk_no
            rng = np.random.default_rng([seed, chunk_no, 0xC4])
            ts_parts, cell_parts = [], []
            for cell, lo, hi, cnt in segs:
                ts_parts.append(
                    start_us + cell * 3_600_000_000 + np.sort(rng.integers(lo, hi, size=cnt))
                )
                cell_parts.append(np.full(cnt, cell, dtype=np.int64))
            ts = np.concatenate(ts_parts).astype(np.int64)
            work = _work_hours(start, days, np.concatenate(cell_parts))
            table = _rows(
                rng,
                ts,
                work,
                pool,
                seed,
                summary.rows,
                bad_rows,
                tenants,
                noop,
                bad_shape=bad_rows > 0,
            )
            if fmt == "parquet":
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table.cast(writer.schema), row_group_size=ROW_GROUP_ROWS)
            else:
                if fh is None:
                    fh = _open_text(tmp)
                _write_text_rows(fh, table, fmt, header=chunk_no == 0)
            summary.add(table)
            chunk_no += 1
            if progress is not None:
                progress(summary.rows)

        buf: list[tuple[int, int, int, int]] = []
        rows = 0
        for seg in _segments(plan_rng, n, start, days, chunk_rows):
            buf.append(seg)
            rows += seg[3]
            if rows >= chunk_rows:
                emit(buf)
                buf, rows = [], 0
        if buf:
            emit(buf)
    finally:
        if writer is not None:
            writer.close()
        if fh is not None:
            fh.close()
