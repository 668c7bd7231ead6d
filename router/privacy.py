"""Keyed query hashing: telemetry can join and deduplicate queries without ever holding their text."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os

HASH_KEY_ENV = "AMAIMA_TELEMETRY_HASH_KEY"

log = logging.getLogger(__name__)

UNKEYED_WARNING = (
    f"{HASH_KEY_ENV} is not set: query hashes are plain SHA-256, and short queries can be "
    "recovered by a dictionary attack. Set a secret key for any real pilot."
)


_warned = False


def hash_key_from_env(environ: dict[str, str] | None = None, *, warn: bool = True) -> bytes | None:
    """The HMAC key, or None (with the dictionary-attack warning, once per process)."""
    global _warned
    env = os.environ if environ is None else environ
    key = env.get(HASH_KEY_ENV)
    if key:
        return key.encode("utf-8")
    if warn and not _warned:
        _warned = True
        log.warning(UNKEYED_WARNING)
    return None


def text_bytes(text: str) -> bytes:
    """UTF-8 with lone surrogates kept distinct (surrogatepass), so any Python str hashes."""
    return text.encode("utf-8", "surrogatepass")


def hash_text(text: str, key: bytes | None) -> str:
    """HMAC-SHA256 under ``key``; plain SHA-256 when there is no key. 64 lowercase hex digits."""
    data = text_bytes(text)
    if key:
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()
