"""EncryptionKeyManager and the process-wide cache of the current keyring and cipher."""

from __future__ import annotations

import logging
import threading

from ..conf import encryption_settings
from ..crypto import Cipher, Keyring
from .providers import KeyProvider

logger = logging.getLogger("alphapulse_encryption.keys")

_lock = threading.Lock()
_state: dict[str, object] = {}


def _provider() -> KeyProvider:
    provider = _state.get("provider")
    if provider is None:
        provider = encryption_settings.KEY_PROVIDER()
        _state["provider"] = provider
    assert isinstance(provider, KeyProvider)
    return provider


def current_keyring() -> Keyring:
    keyring = _state.get("keyring")
    if keyring is None:
        with _lock:
            keyring = _state.get("keyring")
            if keyring is None:
                keyring = _provider().load()
                _state["keyring"] = keyring
    assert isinstance(keyring, Keyring)
    return keyring


def current_cipher() -> Cipher:
    cipher = _state.get("cipher")
    keyring = current_keyring()
    if not isinstance(cipher, Cipher) or cipher.keyring is not keyring:
        cipher = Cipher(keyring)
        _state["cipher"] = cipher
    return cipher


def reset() -> None:
    """Forget the cached provider, keyring and cipher (settings changed, keys rotated)."""
    with _lock:
        # Settings first: a keyring loaded between the two steps must not see stale settings.
        encryption_settings.reload()
        _state.clear()


class EncryptionKeyManager:
    """Which key versions exist, which is active, and rotation (where the provider allows)."""

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

    def rotate_keys(self) -> int:
        """Create and activate a new key version; returns its number."""
        new_version = self.provider.rotate()
        reset()
        logger.info("rotated keys: version %d is now active", new_version)
        return new_version

    def __repr__(self) -> str:
        return f"<EncryptionKeyManager provider={type(self.provider).__name__}>"
