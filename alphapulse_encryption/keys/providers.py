"""Key providers: where master keys come from. The settings/environment one is read-only."""

from __future__ import annotations

import abc
import base64
import binascii
import datetime
import logging
from typing import NamedTuple, SupportsIndex, SupportsInt

from ..conf import ENV_KEY_VERSION, ENV_MASTER_KEY, encryption_settings, environment_keys
from ..crypto import ConfigurationError, KeyProviderError, Keyring
from ..crypto.kdf import KEY_SIZE

logger = logging.getLogger("alphapulse_encryption.keys")


def parse_master_key(value: object, version: int) -> bytes:
    """Decode a base64 (standard or URL-safe, e.g. ``Fernet.generate_key()``) 32-byte key."""
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"master key of version {version} is empty or not a string")
    text = value.strip()
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"master key of version {version} is not valid base64") from None
    if len(raw) != KEY_SIZE:
        raise ConfigurationError(
            f"master key of version {version} decodes to {len(raw)} bytes; "
            f"it must be {KEY_SIZE} random bytes, base64-encoded"
        )
    return raw


def _parse_version(value: object) -> int:
    try:
        if not isinstance(value, str | bytes | bytearray | SupportsInt | SupportsIndex):
            raise TypeError  # what int() refuses too
        version = int(value)
    except (TypeError, ValueError):
        version = 0
    if version < 1 or str(version) != str(value).strip():
        # Only an int is echoed: in a MASTER_KEYS dict written the wrong way round
        # ({key: version}) the "version" is a master key.
        shown = repr(value) if isinstance(value, int) else f"of type {type(value).__name__}"
        raise ConfigurationError(
            f"key version {shown} is not an integer >= 1 "
            "(MASTER_KEYS maps each version number to its key)"
        )
    return version


class KeyVersionInfo(NamedTuple):
    """What may be shown about a key version (never the key)."""

    version: int
    status: str  # "active", "decrypt-only", "retired (decrypt-only)" or "destroyed"
    fingerprint: str | None
    created_at: datetime.datetime | None = None


class KeyProvider(abc.ABC):
    """Base class: ``load()`` returns the current :class:`Keyring`."""

    read_only = True
    # Whether the master key from settings/environment is needed (the system checks ask).
    uses_master_key = False

    @abc.abstractmethod
    def load(self) -> Keyring: ...

    def rotate(self) -> int:
        raise KeyProviderError(f"{type(self).__name__} cannot rotate keys")

    def retire(self, version: int) -> None:
        raise KeyProviderError(f"{type(self).__name__} cannot retire key versions")

    def cache_seconds(self) -> float | None:
        """How long a loaded keyring stays current; ``None``: until keys.reset()."""
        return None

    def key_versions(self) -> list[KeyVersionInfo]:
        keyring = self.load()
        return [
            KeyVersionInfo(v, "active" if v == keyring.active_version else "decrypt-only", fp)
            for v, fp in keyring.fingerprints().items()
        ]


class SettingsKeyProvider(KeyProvider):
    """Master keys from ``settings.ALPHAPULSE_ENCRYPTION`` or, failing that, the environment."""

    uses_master_key = True

    def configured_keys(self) -> tuple[dict[int, bytes], int]:
        raw_keys = encryption_settings.MASTER_KEYS
        active = encryption_settings.ACTIVE_KEY_VERSION
        source = "settings.ALPHAPULSE_ENCRYPTION['MASTER_KEYS']"
        if raw_keys is None:
            raw_keys, env_active = environment_keys()
            active = env_active if active is None else active
            source = f"the {ENV_MASTER_KEY} environment variable"
        if not isinstance(raw_keys, dict):
            raise ConfigurationError("ALPHAPULSE_ENCRYPTION['MASTER_KEYS'] must be a dict")
        if not raw_keys:
            raise ConfigurationError(
                f"no master key is configured: set {ENV_MASTER_KEY} (generate one with "
                "`python manage.py encryption_keys generate`) or "
                "settings.ALPHAPULSE_ENCRYPTION['MASTER_KEYS']"
            )
        keys = {
            _parse_version(version): parse_master_key(key, _parse_version(version))
            for version, key in raw_keys.items()
        }
        active_version = max(keys) if active is None else _parse_version(active)
        if active_version not in keys:
            raise ConfigurationError(
                f"the active key version {active_version} has no key in {source}"
            )
        return keys, active_version

    def load(self) -> Keyring:
        keys, active = self.configured_keys()
        keyring = Keyring(
            keys,
            active,
            kdf_iterations=encryption_settings.KDF_ITERATIONS,
            pad_to=encryption_settings.PAD_TO,
        )
        logger.debug(
            "loaded %d key version(s) from settings/environment, active version %d",
            len(keys),
            active,
        )
        return keyring

    def rotate(self) -> int:
        raise KeyProviderError(
            "the settings/environment key provider is read-only, so rotate_keys() cannot "
            "change it. To rotate: generate a key with `python manage.py encryption_keys "
            "generate`; keep the current key configured under its version (in "
            "ALPHAPULSE_ENCRYPTION['MASTER_KEYS'] or as ALPHAPULSE_ENCRYPTION_MASTER_KEY_V<n>); "
            f"set the new key as {ENV_MASTER_KEY} and its version in {ENV_KEY_VERSION} (or "
            "add it to MASTER_KEYS and set ACTIVE_KEY_VERSION); restart the processes. "
            "For online rotation use the database keyring provider."
        )

    def retire(self, version: int) -> None:
        raise KeyProviderError(
            f"the settings/environment key provider is read-only: to retire key version "
            f"{version}, remove its key from ALPHAPULSE_ENCRYPTION['MASTER_KEYS'] (or unset "
            f"{ENV_MASTER_KEY}_V{version}) and restart the processes"
        )
