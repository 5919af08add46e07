"""The ``ALPHAPULSE_ENCRYPTION`` settings object: defaults, lazy reads, reload on change."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings as django_settings
from django.utils.module_loading import import_string

SETTING_NAME = "ALPHAPULSE_ENCRYPTION"
ENV_MASTER_KEY = "ALPHAPULSE_ENCRYPTION_MASTER_KEY"
ENV_KEY_VERSION = "ALPHAPULSE_ENCRYPTION_KEY_VERSION"
# Keys of older versions stay readable: ALPHAPULSE_ENCRYPTION_MASTER_KEY_V1=..., _V2=...
ENV_OLD_KEY_PREFIX = "ALPHAPULSE_ENCRYPTION_MASTER_KEY_V"

DEFAULTS: dict[str, Any] = {
    # {version: base64 key}. When set, the environment variables are not read.
    "MASTER_KEYS": None,
    # Defaults to ALPHAPULSE_ENCRYPTION_KEY_VERSION, else the highest configured version.
    "ACTIVE_KEY_VERSION": None,
    "KDF_ITERATIONS": 100_000,
    # Pad plaintexts to a multiple of this many bytes to hide exact lengths (None: off).
    "PAD_TO": None,
    "KEY_PROVIDER": "alphapulse_encryption.keys.SettingsKeyProvider",
    # How long a process trusts its loaded keyring before re-reading it from a dynamic
    # provider (database keyring, KMS); other processes see a rotation within this time.
    "KEYRING_CACHE_SECONDS": 60,
    # KMSKeyProvider: the KMS key that wraps the keyring, where to reach KMS, and how long
    # unwrapped version keys stay in memory (they keep working while KMS is down).
    "KMS_KEY_ID": None,
    "KMS_REGION": None,
    "KMS_ENDPOINT_URL": None,
    "KMS_CACHE_SECONDS": 300,
    # Largest value (its serialised form: UTF-8 text, JSON, raw bytes) encrypted at all;
    # None: no limit. Larger values raise PlaintextTooLarge (a ValidationError in full_clean).
    "MAX_PLAINTEXT_BYTES": 1024 * 1024,
    # Encryptions per (key version, context) key after which `check --database` and
    # `encryption_keys status` warn: AES-GCM with random nonces allows 2**32 per key.
    "KEY_USAGE_WARN_AT": 2**30,
    # How often a process writes its encryption counts to the database (also after
    # 10,000 values, and at the end of a request), when outside a transaction.
    "KEY_USAGE_FLUSH_SECONDS": 60,
}
IMPORT_STRINGS = {"KEY_PROVIDER"}


class EncryptionSettings:
    """Attribute access to the merged settings; nothing is read until first use."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(django_settings, SETTING_NAME, None) or {}
        if not isinstance(value, dict):
            raise TypeError(f"settings.{SETTING_NAME} must be a dict")
        return value

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"invalid {SETTING_NAME} setting: {name!r}")
        if name in self._cache:
            return self._cache[name]
        value = self.user_settings.get(name, DEFAULTS[name])
        if name in IMPORT_STRINGS and isinstance(value, str):
            value = import_string(value)
        self._cache[name] = value
        return value

    def unknown_keys(self) -> list[str]:
        return sorted(set(self.user_settings) - set(DEFAULTS))

    def reload(self) -> None:
        self._cache.clear()


encryption_settings = EncryptionSettings()


def environment_keys() -> tuple[dict[int, str], int | None]:
    """Master keys and the active version as given by environment variables."""
    keys: dict[int, str] = {}
    for name, value in os.environ.items():
        suffix = name[len(ENV_OLD_KEY_PREFIX) :]
        if name.startswith(ENV_OLD_KEY_PREFIX) and _is_ascii_number(suffix):
            keys[int(suffix)] = value
    active: int | None = None
    raw_version = os.environ.get(ENV_KEY_VERSION)
    if raw_version is not None:
        text = raw_version.strip()
        if not _is_ascii_number(text) or int(text) < 1:
            from .crypto import ConfigurationError

            raise ConfigurationError(f"{ENV_KEY_VERSION} must be a positive integer")
        active = int(text)
    master = os.environ.get(ENV_MASTER_KEY)
    if master:
        active = 1 if active is None else active
        keys[active] = master
    return keys, active


def _is_ascii_number(text: str) -> bool:
    # str.isdigit() also accepts digits such as "²" that int() rejects.
    return text.isascii() and text.isdigit()
