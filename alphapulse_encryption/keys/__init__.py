"""Key providers and the key manager."""

from .manager import EncryptionKeyManager, current_cipher, current_keyring, reset
from .providers import KeyProvider, SettingsKeyProvider, parse_master_key

__all__ = [
    "EncryptionKeyManager",
    "KeyProvider",
    "SettingsKeyProvider",
    "current_cipher",
    "current_keyring",
    "parse_master_key",
    "reset",
]
