"""Key providers and the key manager."""

from .database import DatabaseKeyProvider
from .kms import KMSKeyProvider
from .manager import EncryptionKeyManager, current_cipher, current_keyring, reset
from .providers import KeyProvider, KeyVersionInfo, SettingsKeyProvider, parse_master_key

__all__ = [
    "DatabaseKeyProvider",
    "EncryptionKeyManager",
    "KMSKeyProvider",
    "KeyProvider",
    "KeyVersionInfo",
    "SettingsKeyProvider",
    "current_cipher",
    "current_keyring",
    "parse_master_key",
    "reset",
]
