"""A keyring: the master key of each version, which one is active, and derived-key caches."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import ConfigurationError, DecryptionError
from .kdf import DEFAULT_ITERATIONS, KEY_SIZE, PURPOSE_DATA, PURPOSE_SEARCH, root_key, subkey

MAX_PAD_TO = 4096
# Search keys always come from a root derived with this many iterations, whatever
# KDF_ITERATIONS says: tokens carry no iteration count, and changing the setting must not
# change every token (lookups would silently stop matching).
SEARCH_KDF_ITERATIONS = DEFAULT_ITERATIONS
# Iteration counts come from envelopes (untrusted), so the per-context cache is bounded.
_MAX_CACHED_AEADS = 10_000


def fingerprint(master_key: bytes) -> str:
    """A short, non-secret identifier of a key (safe to log and display)."""
    return hashlib.sha256(b"alphapulse-encryption/fingerprint\x00" + master_key).hexdigest()[:16]


class Keyring:
    """Immutable set of master keys by version. Never shows key material in its repr."""

    __slots__ = (
        "_aeads",
        "_lock",
        "_master_keys",
        "_search_keys",
        "active_version",
        "kdf_iterations",
        "pad_to",
    )

    def __init__(
        self,
        master_keys: Mapping[int, bytes],
        active_version: int,
        *,
        kdf_iterations: int = DEFAULT_ITERATIONS,
        pad_to: int | None = None,
    ) -> None:
        if not master_keys:
            raise ConfigurationError("the keyring holds no master key")
        for version, key in master_keys.items():
            if not isinstance(version, int) or not 1 <= version <= 2**32 - 1:
                raise ConfigurationError(f"key version {version!r} is not an integer >= 1")
            if not isinstance(key, bytes) or len(key) != KEY_SIZE:
                raise ConfigurationError(
                    f"master key of version {version} must be {KEY_SIZE} bytes"
                )
        if active_version not in master_keys:
            raise ConfigurationError(
                f"the active key version {active_version} has no master key configured"
            )
        if not isinstance(kdf_iterations, int) or kdf_iterations < 1:
            raise ConfigurationError("KDF_ITERATIONS must be a positive integer")
        if pad_to is not None and not (isinstance(pad_to, int) and 1 <= pad_to <= MAX_PAD_TO):
            raise ConfigurationError(f"PAD_TO must be None or an integer from 1 to {MAX_PAD_TO}")
        self._master_keys = dict(master_keys)
        self.active_version = active_version
        self.kdf_iterations = kdf_iterations
        self.pad_to = pad_to
        self._aeads: dict[tuple[int, int, str], AESGCM] = {}
        self._search_keys: dict[tuple[int, str], bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"<Keyring versions={self.versions} active={self.active_version} "
            f"kdf_iterations={self.kdf_iterations}>"
        )

    @property
    def versions(self) -> list[int]:
        return sorted(self._master_keys)

    def fingerprints(self) -> dict[int, str]:
        return {v: fingerprint(k) for v, k in sorted(self._master_keys.items())}

    def _root(self, version: int, iterations: int) -> bytes:
        master = self._master_keys.get(version)
        if master is None:
            raise DecryptionError("unknown_key_version", version)
        return root_key(master, version, iterations)

    def data_aead(self, version: int, context: str, iterations: int | None = None) -> AESGCM:
        iterations = self.kdf_iterations if iterations is None else iterations
        cache_key = (version, iterations, context)
        aead = self._aeads.get(cache_key)
        if aead is None:
            aead = AESGCM(subkey(self._root(version, iterations), PURPOSE_DATA, context))
            with self._lock:
                if len(self._aeads) >= _MAX_CACHED_AEADS:
                    self._aeads.clear()
                self._aeads[cache_key] = aead
        return aead

    def search_key(self, version: int, context: str) -> bytes:
        cache_key = (version, context)
        key = self._search_keys.get(cache_key)
        if key is None:
            key = subkey(self._root(version, SEARCH_KDF_ITERATIONS), PURPOSE_SEARCH, context)
            with self._lock:
                self._search_keys[cache_key] = key
        return key
