"""The functional public API: encrypt_field, decrypt_field and the cipher getters."""

from __future__ import annotations

import logging
from typing import overload

from .crypto import Cipher, SearchableCipher
from .crypto.serialize import Plaintext
from .keys import current_cipher

__all__ = [
    "SearchableCipher",
    "decrypt_field",
    "encrypt_field",
    "get_cipher",
    "get_optimized_cipher",
    "get_searchable_cipher",
]

logger = logging.getLogger("alphapulse_encryption")


@overload
def encrypt_field(value: None, searchable: bool = ..., context: str = ...) -> None: ...
@overload
def encrypt_field(value: object, searchable: bool = ..., context: str = ...) -> str: ...
def encrypt_field(value: object, searchable: bool = False, context: str = "default") -> str | None:
    """Encrypt one value for ``context``; ``None`` stays ``None``."""
    if value is None:
        return None
    cipher = current_cipher()
    logger.debug(
        "encrypt context=%s searchable=%s key_version=%d",
        context,
        searchable,
        cipher.keyring.active_version,
    )
    if searchable:
        return cipher.encrypt_searchable(value, context)
    return cipher.encrypt(value, context)


def decrypt_field(encrypted_data: str | bytes | None, context: str = "default") -> Plaintext:
    """Decrypt what :func:`encrypt_field` returned for the same ``context``."""
    if encrypted_data is None:
        return None
    logger.debug("decrypt context=%s", context)
    return current_cipher().decrypt(encrypted_data, context)


def get_cipher() -> Cipher:
    """The cipher for the current keyring (cached; replaced when keys or settings change)."""
    return current_cipher()


def get_searchable_cipher() -> SearchableCipher:
    """Like :func:`get_cipher`, but ``encrypt`` prefixes each value with its search token."""
    cipher = current_cipher()
    return SearchableCipher(
        cipher.keyring, max_plaintext_bytes=cipher.max_plaintext_bytes, on_seal=cipher.on_seal
    )


# The name DESIGN.md gives the cipher for bulk work (batch_encrypt / batch_decrypt): every
# cipher has the batch methods, so it is the same cipher.
get_optimized_cipher = get_cipher
