"""Timestamps in every shape a corpus holds them: Arrow timestamps and dates, epoch seconds,
ISO-8601 strings (any offset; naive is UTC). One parser for the loader and the generator's summary.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data.corpus.schema import TS_TYPE, to_numpy

_MIN_EPOCH_S = 0  # 1970-01-01
_MAX_EPOCH_S = 7_258_118_400  # 2200-01-01: larger numbers are usually milliseconds
# Seconds beyond this overflow int64 microseconds (garbage that could land in range): refused.
_MAX_ABS_EPOCH_S = 1e12


def parse_ts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds since the epoch (int64) and a validity mask.

    Accepts timestamps (naive ones are UTC), dates, epoch-second numbers, and strings holding
    ISO-8601 (any offset; naive is UTC) or epoch seconds. Values outside 1970..2199 are
    invalid: an epoch in milliseconds is the usual culprit.
    """
    n = len(arr)
    typ = arr.type
    zeros = np.zeros(n, dtype=np.int64)
    if pa.types.is_dictionary(typ):
        arr, typ = arr.dictionary_decode(), arr.type.value_type
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        if pa.types.is_date(typ):
            arr = pc.cast(arr, pa.timestamp("s"))
        us = pc.cast(arr, pa.timestamp("us", tz=arr.type.tz), safe=False)
        values = to_numpy(pc.cast(us, pa.int64()).fill_null(0)).astype(np.int64)
        valid = ~to_numpy(us.is_null()).astype(bool)
    elif pa.types.is_integer(typ) or pa.types.is_floating(typ):
        secs = to_numpy(pc.cast(arr, pa.float64()).fill_null(np.nan)).astype(np.float64)
        valid = np.isfinite(secs) & (np.abs(secs) < _MAX_ABS_EPOCH_S)
        values = np.round(np.where(valid, secs, 0) * 1e6).astype(np.int64)
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        values, valid = _parse_ts_strings(arr)
    else:
        return zeros, np.zeros(n, dtype=bool)
    lo, hi = _MIN_EPOCH_S * 10**6, _MAX_EPOCH_S * 10**6
    valid &= (values >= lo) & (values < hi)
    return np.where(valid, values, 0), valid


def _parse_ts_strings(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    s = pc.utf8_trim_whitespace(arr)
    n = len(s)
    values = np.zeros(n, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    numeric = to_numpy(pc.match_substring_regex(s, r"^[+-]?\d+(\.\d+)?$").fill_null(False)).astype(
        bool
    )
    if numeric.any():
        idx = np.flatnonzero(numeric)
        secs = to_numpy(pc.cast(s.filter(pa.array(numeric)), pa.float64())).astype(np.float64)
        ok = np.isfinite(secs) & (np.abs(secs) < _MAX_ABS_EPOCH_S)
        values[idx] = np.where(ok, np.round(np.where(ok, secs, 0) * 1e6), 0).astype(np.int64)
        valid[idx] = ok
    rest = ~numeric & ~to_numpy(s.is_null()).astype(bool)
    if rest.any():
        idx = np.flatnonzero(rest)
        texts = pd.Series(to_numpy(s.filter(pa.array(rest))), dtype=object)
        parsed = pd.to_datetime(texts, format="ISO8601", utc=True, errors="coerce")
        ok = ~parsed.isna().to_numpy()
        as_arrow = pc.cast(pa.Array.from_pandas(parsed), TS_TYPE, safe=False)
        us = to_numpy(pc.cast(as_arrow, pa.int64()).fill_null(0)).astype(np.int64)
        values[idx] = np.where(ok, us, 0)
        valid[idx] = ok
    return values, valid
