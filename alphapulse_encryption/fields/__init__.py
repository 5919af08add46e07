"""Encrypted model fields."""

from .base import EncryptedFieldMixin
from .scalars import (
    EncryptedBoolean,
    EncryptedDate,
    EncryptedDateTime,
    EncryptedDecimal,
    EncryptedFloat,
    EncryptedInteger,
    EncryptedJSON,
    EncryptedString,
    EncryptedText,
)
from .searchable import EncryptedSearchableString, SearchTokenIndex
from .stored import UndecryptableValue

__all__ = [
    "EncryptedBoolean",
    "EncryptedDate",
    "EncryptedDateTime",
    "EncryptedDecimal",
    "EncryptedFieldMixin",
    "EncryptedFloat",
    "EncryptedInteger",
    "EncryptedJSON",
    "EncryptedSearchableString",
    "EncryptedString",
    "EncryptedText",
    "SearchTokenIndex",
    "UndecryptableValue",
]
