"""The cryptographic core: pure Python over ``cryptography``, no Django."""

from .cipher import Cipher, SearchableCipher, key_version_of
from .envelope import FORMAT_VERSION, looks_like_envelope
from .errors import (
    ConfigurationError,
    DecryptionError,
    EncryptionError,
    KeyProviderError,
    PlaintextTooLarge,
)
from .kdf import DEFAULT_ITERATIONS
from .keyring import Keyring, fingerprint
from .tokens import TOKEN_LENGTH, TOKEN_PREFIX, is_search_token, split_searchable

__all__ = [
    "DEFAULT_ITERATIONS",
    "FORMAT_VERSION",
    "TOKEN_LENGTH",
    "TOKEN_PREFIX",
    "Cipher",
    "ConfigurationError",
    "DecryptionError",
    "EncryptionError",
    "KeyProviderError",
    "Keyring",
    "PlaintextTooLarge",
    "SearchableCipher",
    "fingerprint",
    "is_search_token",
    "key_version_of",
    "looks_like_envelope",
    "split_searchable",
]
