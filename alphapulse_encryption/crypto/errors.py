"""The exception hierarchy. Messages never carry key material or plaintext."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

DecryptionReason = Literal["unknown_key_version", "malformed", "authentication_failed"]
# What DecryptionError.__reduce__ gives pickle: rebuilt from (reason, key_version, where).
_Rebuild = tuple[
    Callable[[DecryptionReason, int | None, str | None], "DecryptionError"],
    tuple[DecryptionReason, int | None, str | None],
]

_EXPLANATIONS: dict[str, str] = {
    "unknown_key_version": "no key is configured for the key version in its header",
    "malformed": "it is not a well-formed alphapulse-encryption envelope",
    "authentication_failed": (
        "authentication failed (wrong key, wrong context, or tampered ciphertext)"
    ),
}


class EncryptionError(Exception):
    """Base class of every error raised by alphapulse-encryption."""


class ConfigurationError(EncryptionError):
    """Keys or settings are missing or invalid."""


class KeyProviderError(EncryptionError):
    """A key provider cannot do what was asked (read-only, unreachable, ...)."""


class PlaintextTooLarge(EncryptionError, ValueError):
    """A value is larger than ``MAX_PLAINTEXT_BYTES``: refused before it is encrypted.
    Also a ``ValueError``, as it was first: code that catches that keeps working."""

    def __init__(self, context: str, size: int, limit: int) -> None:
        self.context = context
        self.size = size
        self.limit = limit
        super().__init__(
            f"the value for context {context!r} is {size:,} bytes, over the limit of "
            f"{limit:,} bytes per value (MAX_PLAINTEXT_BYTES)"
        )


class DecryptionError(EncryptionError):
    """A stored value could not be decrypted; ``reason`` says why."""

    def __init__(
        self,
        reason: DecryptionReason,
        key_version: int | None = None,
        *,
        where: str | None = None,
    ) -> None:
        self.reason = reason
        self.key_version = key_version
        self.where = where
        super().__init__(self._message())

    def _message(self) -> str:
        subject = f"Failed to decrypt {self.where}" if self.where else "Failed to decrypt data"
        text = f"{subject}: {_EXPLANATIONS[self.reason]} [reason={self.reason}"
        if self.key_version is not None:
            text += f", key_version={self.key_version}"
        return text + "]"

    def located(self, where: str) -> DecryptionError:
        """The same failure, with the place (model, field, primary key) named."""
        error = DecryptionError(self.reason, self.key_version, where=where)
        error.__cause__ = self.__cause__
        return error

    def __reduce__(self) -> _Rebuild:
        return (_rebuild_decryption_error, (self.reason, self.key_version, self.where))


def _rebuild_decryption_error(
    reason: DecryptionReason, key_version: int | None, where: str | None
) -> DecryptionError:
    return DecryptionError(reason, key_version, where=where)
