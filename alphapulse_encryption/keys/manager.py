"""EncryptionKeyManager and the process-wide cache of the current keyring and cipher."""

from __future__ import annotations

import threading
import time
from typing import TypedDict

from ..conf import encryption_settings
from ..crypto import Cipher, DecryptionError, Keyring
from ..crypto.serialize import Plaintext
from .events import logger, record_key_operation
from .providers import KeyProvider, KeyVersionInfo
from .usage import counter

__all__ = [
    "EncryptionKeyManager",
    "current_cipher",
    "current_keyring",
    "logger",
    "refresh",
    "reset",
]

# A value naming an unknown, newer key version makes us reload the keyring at once. An
# attacker could forge such values, so after a reload that did not find the version the
# next forced reload waits this long; reloads that find their version (real rotations,
# however close together) are not limited.
MIN_FORCED_RELOAD_SECONDS = 1.0


class _State(TypedDict, total=False):
    """What this process has loaded; empty until the first use of a key."""

    provider: KeyProvider
    keyring: Keyring
    expires_at: float | None  # when the keyring is to be loaded again; None: never
    cipher: Cipher
    hot: tuple[Cipher, float | None]  # the cipher and expires_at, read in one lookup
    fruitless_reload_at: float  # the last forced reload that did not find its version


_lock = threading.Lock()
_state: _State = {}


def _now() -> float:
    return time.monotonic()


def _provider() -> KeyProvider:
    provider = _state.get("provider")
    if provider is None:
        provider = encryption_settings.KEY_PROVIDER()
        _state["provider"] = provider
    assert isinstance(provider, KeyProvider)
    return provider


def _load_locked() -> tuple[Keyring, bool]:
    """Load from the provider (caller holds ``_lock``); keeps the previous keyring object,
    and so its derived-key caches, when nothing changed. Returns (keyring, changed)."""
    _state.pop("hot", None)
    provider = _provider()
    loaded = provider.load()
    previous = _state.get("keyring")
    changed = not (isinstance(previous, Keyring) and _same(previous, loaded))
    keyring = loaded if changed or previous is None else previous
    seconds = provider.cache_seconds()
    _state["keyring"] = keyring
    _state["expires_at"] = None if seconds is None else _now() + seconds
    return keyring, changed


def _same(a: Keyring, b: Keyring) -> bool:
    return (a.fingerprints(), a.active_version, a.kdf_iterations, a.pad_to) == (
        b.fingerprints(),
        b.active_version,
        b.kdf_iterations,
        b.pad_to,
    )


def _fresh(keyring: object) -> bool:
    if keyring is None:
        return False
    expires_at = _state.get("expires_at")
    return expires_at is None or _now() < expires_at


def _record_load(keyring: Keyring) -> None:
    record_key_operation(
        "load",
        type(_state.get("provider")),
        keyring.active_version,
        versions=keyring.versions,
        fingerprints=keyring.fingerprints(),
    )


def current_keyring() -> Keyring:
    keyring = _state.get("keyring")
    if _fresh(keyring):
        assert isinstance(keyring, Keyring)
        return keyring
    changed = False
    with _lock:
        keyring = _state.get("keyring")
        if not _fresh(keyring):
            keyring, changed = _load_locked()
    assert isinstance(keyring, Keyring)
    if changed:  # outside the lock: a listener may use the keys itself
        _record_load(keyring)
    return keyring


def current_cipher() -> Cipher:
    # Called for every value encrypted or decrypted one by one: while the keyring is fresh,
    # one lookup and one clock read.
    hot = _state.get("hot")
    if hot is not None:
        cipher, expires_at = hot
        if expires_at is None or _now() < expires_at:
            return cipher
    cached = _state.get("cipher")
    keyring = current_keyring()
    if cached is not None and cached.keyring is keyring:
        cipher = cached
    else:
        cipher = _RefreshingCipher(
            keyring,
            max_plaintext_bytes=encryption_settings.MAX_PLAINTEXT_BYTES,
            on_seal=counter.add,
        )
        _state["cipher"] = cipher
    with _lock:
        if _state.get("keyring") is keyring:  # not reloaded or reset meanwhile
            _state["hot"] = (cipher, _state.get("expires_at"))
    return cipher


def refresh(stale: Keyring, missing_version: int) -> Keyring | None:
    """Reload the keyring because ``stale`` lacks ``missing_version``; ``None`` when a reload
    cannot help (static provider, older version, reloaded very recently)."""
    if missing_version <= max(stale.versions):
        return None  # versions only grow: an older unknown one was destroyed or never existed
    with _lock:
        current = _state.get("keyring")
        if isinstance(current, Keyring) and missing_version in current.versions:
            return current  # another thread reloaded already
        provider = _provider()
        last = _state.get("fruitless_reload_at")
        now = _now()
        if provider.cache_seconds() is None or (
            last is not None and now - last < MIN_FORCED_RELOAD_SECONDS
        ):
            return None
        keyring, changed = _load_locked()
        if missing_version not in keyring.versions:
            _state["fruitless_reload_at"] = now
    if changed:
        _record_load(keyring)
    return keyring if missing_version in keyring.versions else None


def reset() -> None:
    """Forget the cached provider, keyring and cipher (settings changed, keys rotated)."""
    global _state
    with _lock:
        # Settings first: a keyring loaded between the two steps must not see stale settings.
        encryption_settings.reload()
        _state = {}


class _RefreshingCipher(Cipher):
    """The process-wide cipher: a value written under a version this process has not loaded
    yet (another process rotated) triggers one keyring reload before the error stands."""

    def _after_failures(
        self, results: list[Plaintext], failed: list[tuple[int, str | bytes]], context: str
    ) -> None:
        for index, text in failed:
            retry = self._retry_cipher(results[index])
            if retry is None:
                _record_failure(results[index])
            else:  # the reloaded cipher records its own failure, if any
                results[index] = retry.open_many((text,), context)[0]

    def _retry_cipher(self, exc: DecryptionError) -> Cipher | None:
        if exc.reason != "unknown_key_version" or exc.key_version is None:
            return None
        keyring = refresh(self.keyring, exc.key_version)
        return None if keyring is None else current_cipher()


def _record_failure(exc: DecryptionError) -> None:
    record_key_operation(
        "decrypt_failed", type(_state.get("provider")), exc.key_version, reason=exc.reason
    )


class EncryptionKeyManager:
    """Which key versions exist, which is active, rotation and retirement (where the
    provider allows)."""

    def __init__(self, provider: KeyProvider | None = None) -> None:
        self._provider = provider

    @property
    def provider(self) -> KeyProvider:
        return self._provider if self._provider is not None else _provider()

    def keyring(self) -> Keyring:
        return self.provider.load() if self._provider is not None else current_keyring()

    @property
    def active_version(self) -> int:
        return self.keyring().active_version

    @property
    def versions(self) -> list[int]:
        return self.keyring().versions

    def fingerprints(self) -> dict[int, str]:
        return self.keyring().fingerprints()

    def key_versions(self) -> list[KeyVersionInfo]:
        """Every version the provider knows, with its status (destroyed ones included)."""
        return self.provider.key_versions()

    def rotate_keys(self) -> int:
        """Create and activate a new key version; returns its number."""
        new_version = self.provider.rotate()
        reset()
        return new_version

    def retire_key(self, version: int) -> None:
        """Take ``version`` out of the keyring for good. Check first that no stored value
        uses it (``migration.reencrypt.retire`` does)."""
        self.provider.retire(version)
        reset()

    def __repr__(self) -> str:
        return f"<EncryptionKeyManager provider={type(self.provider).__name__}>"
