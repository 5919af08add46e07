"""Key derivation: PBKDF2 once per key version per process, HKDF per context."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

KEY_SIZE = 32
DEFAULT_ITERATIONS = 100_000
PURPOSE_DATA = b"data"
PURPOSE_SEARCH = b"search"

# Bounded because iteration counts are read from envelopes, which an attacker may forge.
_ROOT_CACHE_SIZE = 64
_root_cache: OrderedDict[tuple[bytes, int, int], bytes] = OrderedDict()
_root_lock = threading.Lock()


def _root_salt(version: int) -> bytes:
    return b"alphapulse-encryption/root/v%d" % version


def _pbkdf2(master_key: bytes, version: int, iterations: int) -> bytes:
    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=_root_salt(version),
        iterations=iterations,
    )
    return kdf.derive(master_key)


def root_key(master_key: bytes, version: int, iterations: int) -> bytes:
    """The version's root key; the slow PBKDF2 runs once per (key, version, iterations)."""
    cache_key = (hashlib.sha256(master_key).digest(), version, iterations)
    with _root_lock:
        cached = _root_cache.get(cache_key)
        if cached is not None:
            _root_cache.move_to_end(cache_key)
            return cached
    derived = _pbkdf2(master_key, version, iterations)
    with _root_lock:
        _root_cache[cache_key] = derived
        while len(_root_cache) > _ROOT_CACHE_SIZE:
            _root_cache.popitem(last=False)
    return derived


def subkey(root: bytes, purpose: bytes, context: str) -> bytes:
    """A per-context key for ``purpose`` (data encryption or search tokens); cheap."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=None,
        info=b"alphapulse-encryption/" + purpose + b"\x00" + context.encode("utf-8"),
    ).derive(root)


def clear_cache() -> None:
    with _root_lock:
        _root_cache.clear()
