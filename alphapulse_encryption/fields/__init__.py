"""Encrypted model fields."""

from .base import EncryptedFieldMixin, UndecryptableValue
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
