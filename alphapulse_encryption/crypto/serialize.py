"""Type-tagged serialisation of plaintext values: JSON or fixed binary forms, never pickle."""

from __future__ import annotations

import datetime
import decimal
import json
import struct
from typing import Any

from .errors import DecryptionError

# One byte names the Python type so a value comes back as the type it went in.
TAG_STR = b"s"
TAG_INT = b"i"
TAG_FLOAT = b"f"
TAG_BOOL = b"b"
TAG_DECIMAL = b"d"
TAG_DATE = b"D"
TAG_DATETIME = b"t"
TAG_JSON = b"j"
TAG_BYTES = b"y"

_FLOAT = struct.Struct(">d")

SUPPORTED_TYPES = "str, int, float, bool, Decimal, date, datetime, dict, list, bytes"

# A decrypted value: one of SUPPORTED_TYPES, JSON's nesting included. Typed as json.loads
# types what it returns (the one Any of the core), so callers use it as the type they stored.
Plaintext = Any  # type: ignore[explicit-any]


def serialize(value: object, *, as_json: bool = False) -> bytes:
    """Encode ``value`` as tag byte + payload. ``as_json`` forces the JSON form."""
    if as_json:
        return TAG_JSON + _dump_json(value)
    # bool before int and datetime before date: each is a subclass of the other.
    if isinstance(value, str):
        return TAG_STR + value.encode("utf-8")
    if isinstance(value, bool):
        return TAG_BOOL + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return TAG_INT + str(value).encode("ascii")
    if isinstance(value, float):
        return TAG_FLOAT + _FLOAT.pack(value)
    if isinstance(value, decimal.Decimal):
        return TAG_DECIMAL + str(value).encode("ascii")
    if isinstance(value, datetime.datetime):
        return TAG_DATETIME + value.isoformat().encode("ascii")
    if isinstance(value, datetime.date):
        return TAG_DATE + value.isoformat().encode("ascii")
    if isinstance(value, dict | list):
        return TAG_JSON + _dump_json(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return TAG_BYTES + bytes(value)
    raise TypeError(
        f"cannot encrypt a value of type {type(value).__name__}; supported: {SUPPORTED_TYPES}"
    )


def deserialize(data: bytes) -> Plaintext:
    """Decode what :func:`serialize` produced; anything else is ``malformed``."""
    if data[:1] == TAG_STR:  # the common case first, with the fewest steps
        try:
            return data[1:].decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError("malformed") from None
    if not data:
        raise DecryptionError("malformed")
    tag, payload = data[:1], data[1:]
    try:
        if tag == TAG_INT:
            return _parse_int(payload)
        if tag == TAG_FLOAT:
            return _FLOAT.unpack(payload)[0]
        if tag == TAG_BOOL:
            if payload not in (b"\x00", b"\x01"):
                raise ValueError("bad bool")
            return payload == b"\x01"
        if tag == TAG_DECIMAL:
            return decimal.Decimal(payload.decode("ascii"))
        if tag == TAG_DATETIME:
            return datetime.datetime.fromisoformat(payload.decode("ascii"))
        if tag == TAG_DATE:
            return datetime.date.fromisoformat(payload.decode("ascii"))
        if tag == TAG_JSON:
            return json.loads(payload.decode("utf-8"))
        if tag == TAG_BYTES:
            return payload
    except (ValueError, struct.error, decimal.InvalidOperation, RecursionError) as exc:
        raise DecryptionError("malformed") from exc
    raise DecryptionError("malformed")


def _dump_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _parse_int(payload: bytes) -> int:
    text = payload.decode("ascii")
    # int() accepts "_" and spaces; our own encoder writes neither.
    if not text or not (text.isdigit() or (text[0] == "-" and text[1:].isdigit())):
        raise ValueError("bad int")
    return int(text)
