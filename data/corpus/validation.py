"""The row rules: each chunk's rows accepted (``ACCEPTED_SCHEMA``) or quarantined with a
reason and a detail that never quotes query text; duplicate ids across the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data.corpus.schema import (
    ACCEPTED_SCHEMA,
    DEFAULT_TENANT,
    DOMAIN_SET,
    ID_LIMIT,
    LABEL_SHAPE,
    LEVEL_SET,
    TEXT_LIMIT,
    TS_SHAPE,
    TS_TYPE,
    Chunk,
    Reason,
    Reject,
    is_valid_utf8,
    short_value,
    to_numpy,
)
from data.corpus.timestamps import parse_ts


@dataclass(slots=True)
class _SeenIds:
    """Accepted query ids as sorted 64-bit hashes with their row numbers: 16 bytes per id.

    A 64-bit collision (probability ~n^2 / 2^65: 3e-8 for a million ids) would quarantine a
    unique row as a duplicate; that row would still be in the quarantine file, never lost.
    """

    runs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Row number of the accepted id with each hash, or 0."""
        found = np.zeros(hashes.size, dtype=np.int64)
        for keys, rows in self.runs:
            pos = np.searchsorted(keys, hashes)
            pos_c = np.minimum(pos, keys.size - 1)
            hit = (pos < keys.size) & (keys[pos_c] == hashes) & (found == 0)
            found[hit] = rows[pos_c[hit]]
        return found

    def add(self, hashes: np.ndarray, rows: np.ndarray) -> None:
        if hashes.size == 0:
            return
        order = np.argsort(hashes, kind="stable")
        self.runs.append((hashes[order], rows[order]))
        # Merge runs of similar size (a binary counter): O(log n) runs, O(n log n) total work.
        while len(self.runs) > 1 and self.runs[-2][0].size <= 2 * self.runs[-1][0].size:
            (k2, r2), (k1, r1) = self.runs.pop(), self.runs.pop()
            self.runs.append(_merge_sorted(k1, r1, k2, r2))


def _merge_sorted(
    k1: np.ndarray, r1: np.ndarray, k2: np.ndarray, r2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Merge two sorted runs without a full re-sort (less temporary memory than argsort)."""
    at = np.searchsorted(k1, k2, side="right") + np.arange(k2.size)
    from_first = np.ones(k1.size + k2.size, dtype=bool)
    from_first[at] = False
    keys = np.empty(k1.size + k2.size, dtype=k1.dtype)
    rows = np.empty(k1.size + k2.size, dtype=r1.dtype)
    keys[at], rows[at] = k2, r2
    keys[from_first], rows[from_first] = k1, r1
    return keys, rows


def _hash_ids(ids: pa.Array) -> np.ndarray:
    import pandas as pd

    return pd.util.hash_array(to_numpy(ids).astype(object), categorize=False)


@dataclass(slots=True)
class Validator:
    hash_key: bytes | None
    seen: _SeenIds = field(default_factory=_SeenIds)

    def check(self, chunk: Chunk) -> tuple[pa.Table, list[Reject]]:
        """Accepted rows (ACCEPTED_SCHEMA) and quarantine rows for one chunk."""
        cols = chunk.columns
        rows = chunk.row_number
        n = rows.size
        rejects = list(chunk.rejects)
        if n == 0:
            return ACCEPTED_SCHEMA.empty_table(), rejects
        qid = cols["query_id"]
        text = cols["text"]
        ts_us, ts_ok = parse_ts(cols["ts"])
        text_len = to_numpy(pc.utf8_length(text).fill_null(0)).astype(np.int64)
        missing_qid = to_numpy(pc.equal(pc.utf8_trim_whitespace(qid), "").fill_null(True)).astype(
            bool
        )
        missing_text = to_numpy(text.is_null()).astype(bool)
        empty_text = to_numpy(pc.equal(pc.utf8_trim_whitespace(text), "").fill_null(False)).astype(
            bool
        )
        level, level_bad = _labels(cols.get("expected_level"), n, upper=True, allowed=LEVEL_SET)
        domain, domain_bad = _labels(
            cols.get("expected_domain"), n, upper=False, allowed=DOMAIN_SET
        )
        value_problems = _value_problems(cols, n)
        invalid_value = np.zeros(n, dtype=bool)
        for mask in value_problems.values():
            invalid_value |= mask
        checks = [
            (Reason.MISSING_QUERY_ID, missing_qid),
            (Reason.INVALID_VALUE, invalid_value),
            (Reason.MISSING_TEXT, missing_text),
            (Reason.EMPTY_TEXT, empty_text),
            (Reason.TEXT_TOO_LONG, text_len > TEXT_LIMIT),
            (Reason.UNPARSEABLE_TS, ~ts_ok),
            (Reason.INVALID_LABEL, level_bad | domain_bad),
        ]
        code = np.select([m for _, m in checks], list(range(1, len(checks) + 1)), default=0)
        # Duplicates among rows that pass every other rule, in row order.
        ok_idx = np.flatnonzero(code == 0)
        dup_of = np.zeros(n, dtype=np.int64)
        if ok_idx.size:
            hashes = _hash_ids(qid.take(pa.array(ok_idx)))
            earlier = self.seen.lookup(hashes)
            _uniq, first = np.unique(hashes, return_index=True)
            is_first = np.zeros(ok_idx.size, dtype=bool)
            is_first[first] = True
            # Within the chunk, later copies point at the first copy's row.
            first_row = dict(zip(hashes[first].tolist(), rows[ok_idx[first]].tolist(), strict=True))
            within = ~is_first & (earlier == 0)
            earlier[within] = [first_row[h] for h in hashes[within].tolist()]
            dup_of[ok_idx] = earlier
            new = earlier == 0
            self.seen.add(hashes[new], rows[ok_idx[new]])
        code = np.where((code == 0) & (dup_of > 0), len(checks) + 1, code)
        reasons = [None, *(r for r, _ in checks), Reason.DUPLICATE_QUERY_ID]

        bad_idx = np.flatnonzero(code > 0)
        if bad_idx.size:
            take = pa.array(bad_idx)
            b_qid = qid.take(take).to_pylist()
            b_text = text.take(take).to_pylist()
            b_ts = cols["ts"].take(take).to_pylist()
            b_level = (
                cols["expected_level"].take(take).to_pylist() if "expected_level" in cols else None
            )
            b_dom = (
                cols["expected_domain"].take(take).to_pylist()
                if "expected_domain" in cols
                else None
            )
            for j, i in enumerate(bad_idx):
                reason = reasons[code[i]]
                if reason is Reason.INVALID_VALUE:
                    detail = "; ".join(what for what, m in value_problems.items() if m[i])
                    rejects.append(Reject(int(rows[i]), None, reason, detail, b_text[j]))
                    continue
                detail = _detail(
                    reason,
                    ts=b_ts[j],
                    length=int(text_len[i]),
                    level=(b_level[j] if b_level is not None and level_bad[i] else None),
                    domain=(b_dom[j] if b_dom is not None and domain_bad[i] else None),
                    dup_of=int(dup_of[i]),
                )
                rejects.append(Reject(int(rows[i]), b_qid[j], reason, detail, b_text[j]))
        rejects.sort(key=lambda r: r.row_number)

        good = pa.array(code == 0)
        user_id, served = cols.get("user_id"), cols.get("served_model")
        accepted_rows = rows[code == 0]
        accepted = {
            "query_id": qid.filter(good),
            "ts": pa.array(ts_us[code == 0], pa.int64()).cast(TS_TYPE),
            "text": text.filter(good),
            "tenant": _tenant(cols.get("tenant"), n).filter(good),
            "user_hash": (
                pa.nulls(len(accepted_rows), pa.string())
                if user_id is None
                else self._user_hash(user_id.filter(good))
            ),
            "expected_level": level.filter(good),
            "expected_domain": domain.filter(good),
            "served_model": (pa.nulls(n, pa.string()) if served is None else served).filter(good),
            "row_number": pa.array(accepted_rows, pa.int64()),
        }
        return pa.table(accepted, schema=ACCEPTED_SCHEMA), rejects

    def _user_hash(self, user_id: pa.Array) -> pa.Array:
        """Keyed hash of accepted rows' user ids; the raw id never leaves this function."""
        from router.privacy import hash_text

        values = user_id.to_pylist()
        memo = {u: hash_text(u, self.hash_key) for u in set(values) if u is not None}
        return pa.array([None if u is None else memo[u] for u in values], pa.string())


def check_single_row(query_id: str, text: Any) -> tuple[Reason, str] | None:
    """The loader's row rules for one row outside a corpus file (``route --file``): the same
    limits, reason codes and wording; ``None`` when the row is fine. Never quotes the text."""
    if (isinstance(query_id, str) and not is_valid_utf8(query_id)) or (
        isinstance(text, str) and not is_valid_utf8(text)
    ):
        return Reason.INVALID_ENCODING, "not valid UTF-8 (invalid bytes or a lone surrogate)"
    if not query_id.strip():
        return Reason.MISSING_QUERY_ID, _detail(Reason.MISSING_QUERY_ID, **_NO_DETAIL)
    problems = _value_problems({"query_id": pa.array([query_id], pa.string())}, 1)
    if problems:
        return Reason.INVALID_VALUE, "; ".join(problems)
    if not isinstance(text, str):
        return Reason.MISSING_TEXT, "text is missing or not a string"
    if not text.strip():
        return Reason.EMPTY_TEXT, _detail(Reason.EMPTY_TEXT, **_NO_DETAIL)
    if len(text) > TEXT_LIMIT:
        return Reason.TEXT_TOO_LONG, _detail(
            Reason.TEXT_TOO_LONG, **{**_NO_DETAIL, "length": len(text)}
        )
    return None


_NO_DETAIL: dict[str, Any] = {"ts": None, "length": 0, "level": None, "domain": None, "dup_of": 0}


def _value_problems(cols: dict[str, pa.Array], n: int) -> dict[str, np.ndarray]:
    """Per problem, the rows whose stored columns the telemetry store would refuse (a NUL:
    PostgreSQL text cannot hold U+0000) or could not index (an id over ``ID_LIMIT``)."""
    out: dict[str, np.ndarray] = {}
    for name in ("query_id", "tenant", "served_model"):
        arr = cols.get(name)
        if arr is None:
            continue
        nul = to_numpy(pc.match_substring(arr, "\x00").fill_null(False)).astype(bool)
        if nul.any():
            out[f"{name} contains a NUL character (U+0000)"] = nul
        long = to_numpy(pc.greater(pc.utf8_length(arr), ID_LIMIT).fill_null(False)).astype(bool)
        if long.any():
            out[f"{name} is over {ID_LIMIT} characters"] = long
    return out


def _tenant(arr: pa.Array | None, n: int) -> pa.Array:
    if arr is None:
        return pa.array([DEFAULT_TENANT] * n, pa.string())
    trimmed = pc.utf8_trim_whitespace(arr)
    blank = pc.or_kleene(pc.is_null(trimmed), pc.equal(trimmed, ""))
    return pc.if_else(blank, DEFAULT_TENANT, trimmed)


def _labels(
    arr: pa.Array | None, n: int, *, upper: bool, allowed: frozenset[str]
) -> tuple[pa.Array, np.ndarray]:
    """Normalised labels (case-insensitive, trimmed; blank means unlabelled) and a bad mask."""
    if arr is None:
        return pa.nulls(n, pa.string()), np.zeros(n, dtype=bool)
    norm = pc.utf8_trim_whitespace(arr)
    norm = pc.utf8_upper(norm) if upper else pc.utf8_lower(norm)
    blank = pc.or_kleene(pc.is_null(norm), pc.equal(norm, ""))
    norm = pc.if_else(blank, pa.scalar(None, pa.string()), norm)
    known = pc.is_in(norm, value_set=pa.array(sorted(allowed), pa.string()))
    bad = to_numpy(pc.and_not(pc.invert(blank), known).fill_null(False)).astype(bool)
    return norm, bad


def _detail(reason: Reason, *, ts: Any, length: int, level: Any, domain: Any, dup_of: int) -> str:
    """A human reason; never contains query text."""
    if reason is Reason.MISSING_QUERY_ID:
        return "query_id is missing or blank"
    if reason is Reason.MISSING_TEXT:
        return "text is missing (null or an empty CSV field)"
    if reason is Reason.EMPTY_TEXT:
        return "text is empty or whitespace only"
    if reason is Reason.TEXT_TOO_LONG:
        return f"text has {length:,} characters; the limit is {TEXT_LIMIT:,}"
    if reason is Reason.UNPARSEABLE_TS:
        if ts is None:
            return "ts is missing"
        return f"ts {short_value(ts, shape=TS_SHAPE)} is not an ISO-8601 timestamp or epoch seconds between 1970 and 2199"
    if reason is Reason.INVALID_LABEL:
        parts = []
        if level is not None:
            parts.append(
                f"expected_level {short_value(level, shape=LABEL_SHAPE)} is not one of {', '.join(sorted(LEVEL_SET))}"
            )
        if domain is not None:
            parts.append(
                f"expected_domain {short_value(domain, shape=LABEL_SHAPE)} is not one of {', '.join(sorted(DOMAIN_SET))}"
            )
        return "; ".join(parts)
    if reason is Reason.DUPLICATE_QUERY_ID:
        return f"query_id already accepted at row {dup_of}"
    return reason.value
