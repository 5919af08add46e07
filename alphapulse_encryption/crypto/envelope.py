"""The versioned envelope: binary layout and its compact ASCII text form.

Layout (see docs/format.md)::

    0   1   format version (1)
    1   1   flags (bit 0: plaintext padded)
    2   4   key version, unsigned big-endian
    6   4   PBKDF2 iterations, unsigned big-endian
    10  12  nonce
    22  n   ciphertext
    22+n 16 GCM tag

Text form: ``"ape:" + base64url(binary)`` without padding. A searchable value is a
fixed-width search token (see :mod:`.tokens`) immediately followed by an envelope.
:func:`decode` validates everything; :func:`quick_decode` only what a header validated
before still needs (the batch decryption path).
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import NamedTuple

from .errors import DecryptionError

FORMAT_VERSION = 1
PREFIX = "ape:"
FLAG_PADDED = 0x01
_KNOWN_FLAGS = FLAG_PADDED

HEADER = struct.Struct(">BBII")
HEADER_SIZE = HEADER.size
NONCE_SIZE = 12
TAG_SIZE = 16
MIN_SIZE = HEADER_SIZE + NONCE_SIZE + TAG_SIZE

MAX_KEY_VERSION = 2**32 - 1
# An iteration count read from untrusted bytes is bounded so that a forged header cannot
# make us spend minutes in PBKDF2.
MAX_KDF_ITERATIONS = 10_000_000


URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
PADDING = (b"", b"===", b"==", b"=")  # indexed by len % 4; 1 is invalid and rejected
_new_envelope = tuple.__new__


class Envelope(NamedTuple):
    header: bytes  # the first HEADER_SIZE bytes, authenticated as associated data
    flags: int
    key_version: int
    kdf_iterations: int
    nonce: bytes
    sealed: bytes  # ciphertext followed by the tag, as AESGCM returns it


def pack_header(flags: int, key_version: int, kdf_iterations: int) -> bytes:
    return HEADER.pack(FORMAT_VERSION, flags, key_version, kdf_iterations)


def encode(header: bytes, nonce: bytes, sealed: bytes) -> str:
    raw = header + nonce + sealed
    return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def looks_like_envelope(text: object) -> bool:
    return isinstance(text, str) and text.startswith(PREFIX)


def _unbase64(body: str) -> bytes:
    # strict_mode rejects characters outside the alphabet instead of skipping them.
    return binascii.a2b_base64(
        body.encode("ascii").translate(URLSAFE_TO_STANDARD) + PADDING[len(body) & 3],
        strict_mode=True,
    )


def quick_decode(text: str) -> bytes | None:
    """The binary form of an envelope's text, its header unchecked: for a header that
    :func:`decode` validated before. ``None`` where the prefix, the base64 or the length
    is wrong; :func:`decode` then names the defect."""
    if not text.startswith(PREFIX):
        return None
    try:
        raw = _unbase64(text[len(PREFIX) :])
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) >= MIN_SIZE else None


def decode(text: str | bytes) -> Envelope:
    """Parse an envelope's text form; every defect raises ``DecryptionError('malformed')``."""
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("ascii")
        except (UnicodeDecodeError, TypeError):
            raise DecryptionError("malformed") from None
    if not text.startswith(PREFIX):
        raise DecryptionError("malformed")
    try:
        raw = _unbase64(text[len(PREFIX) :])
    except (binascii.Error, ValueError):  # UnicodeEncodeError is a ValueError
        raise DecryptionError("malformed") from None
    if len(raw) < MIN_SIZE:
        raise DecryptionError("malformed")
    version, flags, key_version, iterations = HEADER.unpack_from(raw)
    if version != FORMAT_VERSION or flags & ~_KNOWN_FLAGS:
        raise DecryptionError("malformed", key_version)
    if not 1 <= iterations <= MAX_KDF_ITERATIONS:
        raise DecryptionError("malformed", key_version)
    # tuple.__new__ skips the generated __new__'s argument handling (a hot path).
    return _new_envelope(
        Envelope,
        (
            raw[:HEADER_SIZE],
            flags,
            key_version,
            iterations,
            raw[HEADER_SIZE : HEADER_SIZE + NONCE_SIZE],
            raw[HEADER_SIZE + NONCE_SIZE :],
        ),
    )
