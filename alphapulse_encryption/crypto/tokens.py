"""The search token: its fixed-width text form, its HMAC, and how a searchable value splits.

A token is ``"apt1"``, the key version as 8 hex digits, then the HMAC-SHA256 (hex) of
the serialised, normalised plaintext under the version's search key for the context. A
searchable stored value is a token immediately followed by an envelope.
"""

from __future__ import annotations

import hmac
from typing import overload

TOKEN_PREFIX = "apt1"  # noqa: S105 (a format marker, not a secret)
TOKEN_LENGTH = len(TOKEN_PREFIX) + 8 + 64  # prefix, key version as 8 hex digits, HMAC hex
_TOKEN_PREFIX_BYTES = TOKEN_PREFIX.encode("ascii")


def make_token(search_key: bytes, version: int, data: bytes) -> str:
    """The token of ``data`` (a serialised, normalised plaintext) under ``search_key``."""
    mac = hmac.digest(search_key, data, "sha256")
    return f"{TOKEN_PREFIX}{version:08x}{mac.hex()}"


def is_search_token(text: object) -> bool:
    return isinstance(text, str) and len(text) == TOKEN_LENGTH and text.startswith(TOKEN_PREFIX)


@overload
def split_searchable(text: str) -> tuple[str | None, str]: ...
@overload
def split_searchable(text: bytes) -> tuple[bytes | None, bytes]: ...
def split_searchable(text: str | bytes) -> tuple[str | bytes | None, str | bytes]:
    """Split a stored value into (search token or None, envelope text)."""
    if isinstance(text, str):
        if text.startswith(TOKEN_PREFIX):
            return text[:TOKEN_LENGTH], text[TOKEN_LENGTH:]
        return None, text
    if bytes(text[: len(_TOKEN_PREFIX_BYTES)]) == _TOKEN_PREFIX_BYTES:
        return bytes(text[:TOKEN_LENGTH]), bytes(text[TOKEN_LENGTH:])
    return None, text
