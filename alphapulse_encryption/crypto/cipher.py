"""AES-256-GCM encryption of typed values, search tokens, and the batch fast path."""

from __future__ import annotations

import binascii
import hmac
import os
from collections.abc import Callable, Iterable
from typing import Any

from cryptography.exceptions import InvalidTag

from . import envelope
from .envelope import FLAG_PADDED, HEADER_SIZE, MIN_SIZE, NONCE_SIZE, PREFIX
from .errors import ConfigurationError, DecryptionError, PlaintextTooLarge
from .keyring import Keyring
from .serialize import deserialize, serialize

TOKEN_PREFIX = "apt1"  # noqa: S105 (a format marker, not a secret)
TOKEN_LENGTH = len(TOKEN_PREFIX) + 8 + 64  # prefix, key version as 8 hex digits, HMAC hex

Normalizer = Callable[[Any], Any]
# Told (key version, context, number of values) after values are sealed: each (version,
# context) pair is one AES-GCM key, whose random-nonce safety bound is counted per key.
SealObserver = Callable[[int, str, int], None]
# What a header already validated once opens with: its AES-GCM object, whether the plaintext
# is padded, and the key version (for errors).
_Opener = tuple[Any, bool, int]
# Contexts (and headers per context) remembered by one Cipher; more, and the cache starts over.
_MAX_CACHED_CONTEXTS = 1024
_MAX_CACHED_HEADERS = 64
_NONCE_END = HEADER_SIZE + NONCE_SIZE
_BODY = len(PREFIX)  # where the base64 starts in an envelope, and in a searchable value
_SEARCHABLE_BODY = TOKEN_LENGTH + len(PREFIX)
_a2b_base64 = binascii.a2b_base64


def _pad(data: bytes, block: int) -> bytes:
    # ISO/IEC 7816-4: a 0x80 marker, then zeros up to the next multiple of ``block``.
    padded_len = (len(data) // block + 1) * block
    return data + b"\x80" + b"\x00" * (padded_len - len(data) - 1)


def _unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise DecryptionError("malformed")
    return stripped[:-1]


def is_search_token(text: object) -> bool:
    return isinstance(text, str) and len(text) == TOKEN_LENGTH and text.startswith(TOKEN_PREFIX)


def split_searchable(text: str) -> tuple[str | None, str]:
    """Split a stored value into (search token or None, envelope text)."""
    if text.startswith(TOKEN_PREFIX):
        return text[:TOKEN_LENGTH], text[TOKEN_LENGTH:]
    return None, text


def key_version_of(text: str) -> int:
    """The key version a stored value was written under, read without decrypting."""
    _, body = split_searchable(text)
    return envelope.decode(body).key_version


class Cipher:
    """Encrypts and decrypts values for a context with one :class:`Keyring`.

    ``max_plaintext_bytes`` bounds each value's serialised size (``None``: no limit);
    ``on_seal`` is told how many values each (key version, context) key has sealed.
    """

    def __init__(
        self,
        keyring: Keyring,
        *,
        max_plaintext_bytes: int | None = None,
        on_seal: SealObserver | None = None,
    ) -> None:
        if max_plaintext_bytes is not None and (
            type(max_plaintext_bytes) is not int or max_plaintext_bytes < 1
        ):
            raise ConfigurationError("MAX_PLAINTEXT_BYTES must be None or a positive integer")
        self.keyring = keyring
        self.max_plaintext_bytes = max_plaintext_bytes
        self.on_seal = on_seal
        self._openers: dict[str, dict[bytes, _Opener]] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.keyring!r}>"

    # -- single values -------------------------------------------------------------

    def encrypt(self, value: Any, context: str, *, as_json: bool = False) -> str:
        return self._seal(serialize(value, as_json=as_json), context)

    def decrypt(self, text: str | bytes, context: str) -> Any:
        result = self.open_many((text,), context)[0]
        if isinstance(result, DecryptionError):
            raise result
        return result

    def open_many(self, items: Iterable[str | bytes | None], context: str) -> list[Any]:
        """Decrypt many values for one context without stopping at a bad one: each result
        is the value, ``None`` for ``None``, or the :class:`DecryptionError` it raised.

        The common case, a text envelope whose 10-byte header this cipher has validated
        before, is opened inline; anything else goes through the full parser, which
        validates the header, names any defect, and lets later values with that header
        take the inline path.
        """
        openers = self._openers.get(context)
        if openers is None:
            if len(self._openers) >= _MAX_CACHED_CONTEXTS:
                self._openers.clear()
            openers = self._openers[context] = {}
        aad_tail = context.encode("utf-8")
        to_standard = envelope.URLSAFE_TO_STANDARD
        padding = envelope.PADDING
        results: list[Any] = []
        append = results.append
        failed: list[tuple[int, str | bytes]] = []
        for text in items:
            if text is None:
                append(None)
                continue
            try:
                if type(text) is str:
                    start = _SEARCHABLE_BODY if text.startswith(TOKEN_PREFIX) else _BODY
                    body = text[start:]
                    try:
                        raw = _a2b_base64(
                            body.encode("ascii").translate(to_standard) + padding[len(body) & 3],
                            strict_mode=True,
                        )
                    except (binascii.Error, ValueError):
                        raw = b""
                    header = raw[:HEADER_SIZE]
                    opener = openers.get(header)
                    if (
                        opener is not None
                        and len(raw) >= MIN_SIZE
                        and text.startswith(PREFIX, start - _BODY)
                    ):
                        aead, padded, key_version = opener
                        try:
                            data = aead.decrypt(
                                raw[HEADER_SIZE:_NONCE_END], raw[_NONCE_END:], header + aad_tail
                            )
                        except InvalidTag:
                            raise DecryptionError("authentication_failed", key_version) from None
                        append(deserialize(_unpad(data) if padded else data))
                        continue
                append(deserialize(self._open_parsed(text, context, openers)))
            except DecryptionError as exc:
                failed.append((len(results), text))
                append(exc)
        if failed:
            self._after_failures(results, failed, context)
        return results

    def _after_failures(
        self, results: list[Any], failed: list[tuple[int, str | bytes]], context: str
    ) -> None:
        """Told which values of an :meth:`open_many` failed (index, stored text), with
        their errors in ``results``; a subclass may open them again and replace them."""

    def encrypt_searchable(
        self,
        value: Any,
        context: str,
        *,
        normalizer: Normalizer | None = None,
        as_json: bool = False,
    ) -> str:
        """A search token for the active version followed by the envelope."""
        sealed = self._seal(serialize(value, as_json=as_json), context)  # checks the size
        return self.search_token(value, context, normalizer=normalizer) + sealed

    # -- search tokens -------------------------------------------------------------

    def search_token(
        self,
        value: Any,
        context: str,
        *,
        version: int | None = None,
        normalizer: Normalizer | None = None,
    ) -> str:
        version = self.keyring.active_version if version is None else version
        normalized = normalizer(value) if normalizer is not None else value
        key = self.keyring.search_key(version, context)
        mac = hmac.digest(key, serialize(normalized), "sha256")
        return f"{TOKEN_PREFIX}{version:08x}{mac.hex()}"

    def search_tokens(
        self, value: Any, context: str, *, normalizer: Normalizer | None = None
    ) -> list[str]:
        """The value's token under every configured version (for lookups after rotation)."""
        return [
            self.search_token(value, context, version=v, normalizer=normalizer)
            for v in self.keyring.versions
        ]

    # -- batches -------------------------------------------------------------------

    def batch_encrypt(
        self, items: Iterable[Any], context: str = "default", *, as_json: bool = False
    ) -> list[str | None]:
        """Encrypt many values for one context: one key lookup, one call for all nonces."""
        values = list(items)
        keyring = self.keyring
        flags = FLAG_PADDED if keyring.pad_to else 0
        header = envelope.pack_header(flags, keyring.active_version, keyring.kdf_iterations)
        aad = header + context.encode("utf-8")
        seal = keyring.data_aead(keyring.active_version, context).encrypt
        nonces = os.urandom(NONCE_SIZE * len(values))
        results: list[str | None] = []
        append = results.append
        sealed = 0
        try:
            for i, value in enumerate(values):
                if value is None:
                    append(None)
                    continue
                plaintext = serialize(value, as_json=as_json)
                self._check_size(plaintext, context)
                if keyring.pad_to:
                    plaintext = _pad(plaintext, keyring.pad_to)
                nonce = nonces[i * NONCE_SIZE : (i + 1) * NONCE_SIZE]
                append(envelope.encode(header, nonce, seal(nonce, plaintext, aad)))
                sealed += 1
        finally:
            # Counted even when a later value fails: the nonces were used.
            if sealed and self.on_seal is not None:
                self.on_seal(keyring.active_version, context, sealed)
        return results

    def batch_encrypt_searchable(
        self,
        items: Iterable[Any],
        context: str = "default",
        *,
        normalizer: Normalizer | None = None,
        as_json: bool = False,
    ) -> list[str | None]:
        """:meth:`batch_encrypt`, each result prefixed with its value's search token."""
        values = list(items)
        # Cipher's own batch_encrypt: a subclass's (SearchableCipher's) calls this method.
        sealed = Cipher.batch_encrypt(self, values, context, as_json=as_json)
        token = self.search_token
        return [
            None if text is None else token(value, context, normalizer=normalizer) + text
            for value, text in zip(values, sealed, strict=True)
        ]

    def batch_decrypt(
        self, items: Iterable[str | bytes | None], context: str = "default"
    ) -> list[Any]:
        """Decrypt many values for one context; same results and errors as one by one."""
        results = self.open_many(items, context)
        for result in results:
            if isinstance(result, DecryptionError):
                raise result
        return results

    # -- internals -----------------------------------------------------------------

    def _check_size(self, plaintext: bytes, context: str) -> None:
        # The type tag is not the caller's data: a str of exactly the limit in UTF-8 fits.
        limit = self.max_plaintext_bytes
        if limit is not None and len(plaintext) - 1 > limit:
            raise PlaintextTooLarge(context, len(plaintext) - 1, limit)

    def _seal(self, plaintext: bytes, context: str) -> str:
        self._check_size(plaintext, context)
        keyring = self.keyring
        flags = 0
        if keyring.pad_to:
            plaintext = _pad(plaintext, keyring.pad_to)
            flags = FLAG_PADDED
        header = envelope.pack_header(flags, keyring.active_version, keyring.kdf_iterations)
        nonce = os.urandom(NONCE_SIZE)
        aead = keyring.data_aead(keyring.active_version, context)
        sealed = aead.encrypt(nonce, plaintext, header + context.encode("utf-8"))
        if self.on_seal is not None:
            self.on_seal(keyring.active_version, context, 1)
        return envelope.encode(header, nonce, sealed)

    def _open_parsed(self, text: str | bytes, context: str, openers: dict[bytes, _Opener]) -> bytes:
        """Open one value through the full parser, and remember its validated header."""
        env = _parse(text)
        aead = self.keyring.data_aead(env.key_version, context, env.kdf_iterations)
        if len(openers) >= _MAX_CACHED_HEADERS:
            openers.clear()
        openers[env.header] = (aead, bool(env.flags & FLAG_PADDED), env.key_version)
        return _open_with(aead, env, context.encode("utf-8"))


def _parse(text: str | bytes) -> envelope.Envelope:
    if isinstance(text, str) and text.startswith(TOKEN_PREFIX):
        text = text[TOKEN_LENGTH:]
    elif not isinstance(text, str) and bytes(text[:4]) == TOKEN_PREFIX.encode():
        text = bytes(text[TOKEN_LENGTH:])
    return envelope.decode(text)


def _open_with(aead: Any, env: envelope.Envelope, context_bytes: bytes) -> bytes:
    try:
        plaintext: bytes = aead.decrypt(env.nonce, env.sealed, env.header + context_bytes)
    except InvalidTag:
        raise DecryptionError("authentication_failed", env.key_version) from None
    if env.flags & FLAG_PADDED:
        plaintext = _unpad(plaintext)
    return plaintext
