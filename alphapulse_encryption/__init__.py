"""Field-level AES-256-GCM encryption for Django models.

Public names are imported lazily so that ``alphapulse_encryption.crypto`` can be used,
and the package imported, without Django configured.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .crypto.errors import (
    ConfigurationError,
    DecryptionError,
    EncryptionError,
    KeyProviderError,
    PlaintextTooLarge,
)

__version__ = "0.1.0"

_LAZY = {
    "encrypt_field": ".api",
    "decrypt_field": ".api",
    "get_cipher": ".api",
    "get_searchable_cipher": ".api",
    "get_optimized_cipher": ".api",
    "EncryptionKeyManager": ".keys",
}

__all__ = [
    "ConfigurationError",
    "DecryptionError",
    "EncryptionError",
    "EncryptionKeyManager",
    "KeyProviderError",
    "PlaintextTooLarge",
    "decrypt_field",
    "encrypt_field",
    "get_cipher",
    "get_optimized_cipher",
    "get_searchable_cipher",
]

if TYPE_CHECKING:
    from .api import (
        decrypt_field,
        encrypt_field,
        get_cipher,
        get_optimized_cipher,
        get_searchable_cipher,
    )
    from .keys import EncryptionKeyManager


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
