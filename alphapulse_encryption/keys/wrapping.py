"""Key-encryption keys: how a version key is wrapped before it is stored."""

from __future__ import annotations

import abc
import base64
import binascii
import os
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..crypto import ConfigurationError, fingerprint
from ..crypto.kdf import KEY_SIZE, subkey
from .providers import SettingsKeyProvider

# Bound into every wrapped key (AES-GCM associated data / KMS encryption context), with
# the version, so a wrapped key copied onto another version's row fails to unwrap.
WRAP_PURPOSE = "alphapulse-encryption/data-key"
_MASTER_PREFIX = "apw1:"
_NONCE_SIZE = 12


class NewKey(NamedTuple):
    key: bytes
    wrapped: str
    wrapped_by: str


class KeyWrapper(abc.ABC):
    """Wraps and unwraps version keys; implementations hold the key-encryption key."""

    @abc.abstractmethod
    def new_key(self, version: int) -> NewKey:
        """A fresh random 32-byte key for ``version`` and its wrapped form."""

    @abc.abstractmethod
    def unwrap(self, version: int, wrapped: str, wrapped_by: str) -> bytes: ...


def associated_data(version: int) -> bytes:
    return f"{WRAP_PURPOSE}\x00version={version}".encode("ascii")


class MasterKeyWrapper(KeyWrapper):
    """The key-encryption key is derived from the configured master key (settings or
    environment); older master-key versions stay usable for unwrapping."""

    def __init__(self) -> None:
        self._master_keys, self._active = SettingsKeyProvider().configured_keys()

    def __repr__(self) -> str:
        return f"<MasterKeyWrapper master_key_version={self._active}>"

    def _kek(self, master_version: int) -> AESGCM:
        master = self._master_keys.get(master_version)
        if master is None:
            raise ConfigurationError(
                f"a key of the database keyring is wrapped by master key version "
                f"{master_version}, which is not configured; configure that master key"
            )
        return AESGCM(subkey(master, b"wrap", "keyring"))

    def new_key(self, version: int) -> NewKey:
        key = os.urandom(KEY_SIZE)
        nonce = os.urandom(_NONCE_SIZE)
        sealed = self._kek(self._active).encrypt(nonce, key, associated_data(version))
        wrapped = _MASTER_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return NewKey(key, wrapped, f"master:{self._active}")

    def unwrap(self, version: int, wrapped: str, wrapped_by: str) -> bytes:
        kind, _, master_version = wrapped_by.partition(":")
        if kind != "master" or not master_version.isdigit():
            raise ConfigurationError(
                f"key version {version} of the database keyring was wrapped by {wrapped_by!r}, "
                "not by a master key; configure the key provider that wrapped it"
            )
        try:
            if not wrapped.startswith(_MASTER_PREFIX):
                raise ValueError
            raw = base64.urlsafe_b64decode(wrapped[len(_MASTER_PREFIX) :])
            aead = self._kek(int(master_version))
            key = aead.decrypt(raw[:_NONCE_SIZE], raw[_NONCE_SIZE:], associated_data(version))
        except (InvalidTag, ValueError, binascii.Error):
            master = self._master_keys[int(master_version)]
            raise ConfigurationError(
                f"key version {version} of the database keyring does not unwrap with master "
                f"key version {master_version} (fingerprint {fingerprint(master)}): the "
                "configured master key is not the one that wrapped it, or the row was altered"
            ) from None
        return key
