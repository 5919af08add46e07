"""AES-256-GCM sealing and opening of typed values, one by one and in batches."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import envelope
from .envelope import FLAG_PADDED, HEADER_SIZE, NONCE_SIZE
from .errors import ConfigurationError, DecryptionError, PlaintextTooLarge
from .keyring import Keyring
from .serialize import Plaintext, deserialize, serialize
from .tokens import TOKEN_LENGTH, is_search_token, make_token, split_searchable

__all__ = ["Cipher", "Normalizer", "SealObserver", "SearchableCipher", "key_version_of"]
# Also importable from here, for callers written before .tokens held them.
__all__ += ["TOKEN_LENGTH", "is_search_token", "split_searchable"]

Normalizer = Callable[[Plaintext], Plaintext]
# Told (key version, context, number of values) after values are sealed: each (version,
# context) pair is one AES-GCM key, whose random-nonce safety bound is counted per key.
SealObserver = Callable[[int, str, int], None]
# What a header already validated once opens with: its AES-GCM object, whether the plaintext
# is padded, and the key version (for errors).
_Opener = tuple[AESGCM, bool, int]
# Contexts (and headers per context) remembered by one Cipher; more, and the cache starts over.
_MAX_CACHED_CONTEXTS = 1024
_MAX_CACHED_HEADERS = 64
_NONCE_END = HEADER_SIZE + NONCE_SIZE


def _pad(data: bytes, block: int) -> bytes:
    # ISO/IEC 7816-4: a 0x80 marker, then zeros up to the next multiple of ``block``.
    padded_len = (len(data) // block + 1) * block
    return data + b"\x80" + b"\x00" * (padded_len - len(data) - 1)


def _unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise DecryptionError("malformed")
    return stripped[:-1]


def _open_sealed(
    aead: AESGCM, nonce: bytes, sealed: bytes, aad: bytes, padded: bool, key_version: int
) -> bytes:
    try:
        plaintext = aead.decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise DecryptionError("authentication_failed", key_version) from None
    return _unpad(plaintext) if padded else plaintext


def key_version_of(text: str) -> int:
    """The key version a stored value was written under, read without decrypting."""
    return envelope.decode(split_searchable(text)[1]).key_version


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

    def encrypt(self, value: object, context: str, *, as_json: bool = False) -> str:
        return self._seal(serialize(value, as_json=as_json), context)

    def decrypt(self, text: str | bytes, context: str) -> Plaintext:
        result = self.open_many((text,), context)[0]
        if isinstance(result, DecryptionError):
            raise result
        return result

    def encrypt_searchable(
        self,
        value: object,
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
        value: object,
        context: str,
        *,
        version: int | None = None,
        normalizer: Normalizer | None = None,
    ) -> str:
        version = self.keyring.active_version if version is None else version
        normalized = normalizer(value) if normalizer is not None else value
        return make_token(self.keyring.search_key(version, context), version, serialize(normalized))

    def search_tokens(
        self, value: object, context: str, *, normalizer: Normalizer | None = None
    ) -> list[str]:
        """The value's token under every configured version (for lookups after rotation)."""
        return [
            self.search_token(value, context, version=v, normalizer=normalizer)
            for v in self.keyring.versions
        ]

    # -- batches -------------------------------------------------------------------

    def batch_encrypt(
        self, items: Iterable[object], context: str = "default", *, as_json: bool = False
    ) -> list[str | None]:
        """Encrypt many values for one context: one key lookup, one call for all nonces."""
        values = list(items)
        return self._seal_each(_serialized(values, as_json), len(values), context)

    def batch_encrypt_searchable(
        self,
        items: Iterable[object],
        context: str = "default",
        *,
        normalizer: Normalizer | None = None,
        as_json: bool = False,
    ) -> list[str | None]:
        """:meth:`batch_encrypt`, each result prefixed with its value's search token."""
        values = list(items)
        sealed = self._sealed_without_tokens(values, context, as_json)
        return self._with_tokens(values, sealed, context, normalizer)

    def _sealed_without_tokens(
        self, values: list[object], context: str, as_json: bool
    ) -> list[str | None]:
        """The values sealed, no token added: :meth:`batch_encrypt` itself, so what wraps
        or patches it sees the searchable batches too."""
        return self.batch_encrypt(values, context, as_json=as_json)

    def batch_decrypt(
        self, items: Iterable[str | bytes | None], context: str = "default"
    ) -> list[Plaintext]:
        """Decrypt many values for one context; same results and errors as one by one."""
        results = self.open_many(items, context)
        for result in results:
            if isinstance(result, DecryptionError):
                raise result
        return results

    def open_many(self, items: Iterable[str | bytes | None], context: str) -> list[Plaintext]:
        """Decrypt many values for one context without stopping at a bad one: each result
        is the value, ``None`` for ``None``, or the :class:`DecryptionError` it raised.

        A text envelope whose 10-byte header this cipher has validated before opens at
        once; anything else goes through the full parser, which validates the header,
        names any defect, and lets later values with that header open at once.
        """
        openers = self._openers.get(context)
        if openers is None:
            if len(self._openers) >= _MAX_CACHED_CONTEXTS:
                self._openers.clear()
            openers = self._openers[context] = {}
        aad_tail = context.encode("utf-8")
        results: list[Plaintext] = []
        failed: list[tuple[int, str | bytes]] = []
        for text in items:
            if text is None:
                results.append(None)
                continue
            try:
                results.append(deserialize(self._open(text, context, aad_tail, openers)))
            except DecryptionError as exc:
                failed.append((len(results), text))
                results.append(exc)
        if failed:
            self._after_failures(results, failed, context)
        return results

    def _after_failures(
        self, results: list[Plaintext], failed: list[tuple[int, str | bytes]], context: str
    ) -> None:
        """Told which values of an :meth:`open_many` failed (index, stored text), with
        their errors in ``results``; a subclass may open them again and replace them."""

    # -- internals -----------------------------------------------------------------

    def _check_size(self, plaintext: bytes, context: str) -> None:
        # The type tag is not the caller's data: a str of exactly the limit in UTF-8 fits.
        limit = self.max_plaintext_bytes
        if limit is not None and len(plaintext) - 1 > limit:
            raise PlaintextTooLarge(context, len(plaintext) - 1, limit)

    def _seal(self, plaintext: bytes, context: str) -> str:
        (sealed,) = self._seal_each((plaintext,), 1, context)
        assert sealed is not None  # only a None plaintext gives None
        return sealed

    def _seal_each(
        self, plaintexts: Iterable[bytes | None], count: int, context: str
    ) -> list[str | None]:
        """Seal ``count`` serialised values (``None`` stays ``None``) under the active key:
        one header, one key lookup, one call for all nonces. ``plaintexts`` may be lazy:
        a value that fails leaves those before it sealed and counted."""
        keyring = self.keyring
        version = keyring.active_version
        header = envelope.pack_header(
            FLAG_PADDED if keyring.pad_to else 0, version, keyring.kdf_iterations
        )
        aad = header + context.encode("utf-8")
        seal = keyring.data_aead(version, context).encrypt
        nonces = os.urandom(NONCE_SIZE * count)
        results: list[str | None] = []
        sealed = 0
        try:
            for i, plaintext in enumerate(plaintexts):
                if plaintext is None:
                    results.append(None)
                    continue
                self._check_size(plaintext, context)
                if keyring.pad_to:
                    plaintext = _pad(plaintext, keyring.pad_to)
                nonce = nonces[i * NONCE_SIZE : (i + 1) * NONCE_SIZE]
                results.append(envelope.encode(header, nonce, seal(nonce, plaintext, aad)))
                sealed += 1
        finally:
            # Counted even when a later value fails: the nonces were used.
            if sealed and self.on_seal is not None:
                self.on_seal(version, context, sealed)
        return results

    def _with_tokens(
        self,
        values: list[object],
        sealed: list[str | None],
        context: str,
        normalizer: Normalizer | None,
    ) -> list[str | None]:
        token = self.search_token
        return [
            None if text is None else token(value, context, normalizer=normalizer) + text
            for value, text in zip(values, sealed, strict=True)
        ]

    def _open(
        self, text: str | bytes, context: str, aad_tail: bytes, openers: dict[bytes, _Opener]
    ) -> bytes:
        """One value's serialised plaintext: at once under a header validated before,
        else through the full parser."""
        if type(text) is str:
            raw = envelope.quick_decode(split_searchable(text)[1])
            opener = None if raw is None else openers.get(raw[:HEADER_SIZE])
            if raw is not None and opener is not None:
                aead, padded, key_version = opener
                header = raw[:HEADER_SIZE]
                nonce, sealed = raw[HEADER_SIZE:_NONCE_END], raw[_NONCE_END:]
                return _open_sealed(aead, nonce, sealed, header + aad_tail, padded, key_version)
        return self._open_parsed(text, context, aad_tail, openers)

    def _open_parsed(
        self, text: str | bytes, context: str, aad_tail: bytes, openers: dict[bytes, _Opener]
    ) -> bytes:
        """Open one value through the full parser, and remember its validated header."""
        env = envelope.decode(split_searchable(text)[1])
        aead = self.keyring.data_aead(env.key_version, context, env.kdf_iterations)
        padded = bool(env.flags & FLAG_PADDED)
        if len(openers) >= _MAX_CACHED_HEADERS:
            openers.clear()
        openers[env.header] = (aead, padded, env.key_version)
        return _open_sealed(
            aead, env.nonce, env.sealed, env.header + aad_tail, padded, env.key_version
        )


def _serialized(values: list[object], as_json: bool) -> Iterable[bytes | None]:
    # Lazy, so a value that cannot be serialised leaves those before it sealed.
    return (None if value is None else serialize(value, as_json=as_json) for value in values)


class SearchableCipher(Cipher):
    """A cipher whose ``encrypt`` and ``batch_encrypt`` output starts with the value's
    search token."""

    def encrypt(self, value: object, context: str, *, as_json: bool = False) -> str:
        return self.encrypt_searchable(value, context, as_json=as_json)

    def batch_encrypt(
        self, items: Iterable[object], context: str = "default", *, as_json: bool = False
    ) -> list[str | None]:
        return self.batch_encrypt_searchable(items, context, as_json=as_json)

    def _sealed_without_tokens(
        self, values: list[object], context: str, as_json: bool
    ) -> list[str | None]:
        # This class's batch_encrypt adds tokens: seal with the plain one.
        return super().batch_encrypt(values, context, as_json=as_json)
