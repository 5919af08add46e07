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
fixed-width search token (:mod:`.tokens`) immediately followed by an envelope.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Envelope:
    flags: int
    key_version: int
    kdf_iterations: int
    nonce: bytes
    sealed: bytes  # ciphertext followed by the tag, as AESGCM returns it

    @property
    def header(self) -> bytes:
        return pack_header(self.flags, self.key_version, self.kdf_iterations)


def pack_header(flags: int, key_version: int, kdf_iterations: int) -> bytes:
    return HEADER.pack(FORMAT_VERSION, flags, key_version, kdf_iterations)


def encode(header: bytes, nonce: bytes, sealed: bytes) -> str:
    raw = header + nonce + sealed
    return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def looks_like_envelope(text: object) -> bool:
    return isinstance(text, str) and text.startswith(PREFIX)


def decode(text: str | bytes) -> Envelope:
    """Parse an envelope's text form; every defect raises ``DecryptionError('malformed')``."""
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("ascii")
        except UnicodeDecodeError:
            raise DecryptionError("malformed") from None
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise DecryptionError("malformed")
    body = text[len(PREFIX) :]
    if not body.isascii() or len(body) % 4 == 1:
        raise DecryptionError("malformed")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError("malformed") from None
    # Reject non-canonical encodings (stray characters the decoder skipped, unused bits set).
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != body:
        raise DecryptionError("malformed")
    if len(raw) < MIN_SIZE:
        raise DecryptionError("malformed")
    version, flags, key_version, iterations = HEADER.unpack_from(raw)
    if version != FORMAT_VERSION or flags & ~_KNOWN_FLAGS:
        raise DecryptionError("malformed", key_version)
    if not 1 <= iterations <= MAX_KDF_ITERATIONS:
        raise DecryptionError("malformed", key_version)
    return Envelope(
        flags=flags,
        key_version=key_version,
        kdf_iterations=iterations,
        nonce=raw[HEADER_SIZE : HEADER_SIZE + NONCE_SIZE],
        sealed=raw[HEADER_SIZE + NONCE_SIZE :],
    )
