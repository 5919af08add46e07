"""Turn a batch's plaintexts into ciphertexts as the encrypted field would store them,
naming each row that fails and why, without the plaintext in the reason."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db.backends.base.base import BaseDatabaseWrapper

from ..crypto import looks_like_envelope, split_searchable
from .pairs import MigrationPair

# What converting or encrypting a bad value raises; anything else (a missing key, a lost
# connection) stops the run instead of being recorded against every row.
_VALUE_ERRORS = (ValidationError, ValueError, TypeError, ArithmeticError)


def encrypt_rows(
    pair: MigrationPair, rows: Iterable[tuple[Any, Any]], connection: BaseDatabaseWrapper
) -> tuple[list[tuple[Any, str]], list[tuple[Any, str]]]:
    """(pk, ciphertext) for the rows that convert and encrypt, (pk, error) for the rest."""
    converted, failures = _convert(pair, rows)
    if not converted:
        return [], failures
    field_ = pair.field
    try:
        # No value is None here, so neither is any result.
        sealed = cast(list[str], field_.encrypt_many([value for _, value, _ in converted]))
    except _VALUE_ERRORS:
        # One value the cipher refuses (too large, say) fails the batch call: find it.
        encrypted = []
        for pk, value, plaintext in converted:
            try:
                encrypted.append((pk, field_.encrypt(value)))
            except _VALUE_ERRORS as exc:
                failures.append((pk, _error_text(exc, plaintext)))
        return encrypted, failures
    return [(pk, stored) for (pk, _, _), stored in zip(converted, sealed, strict=True)], failures


def _convert(
    pair: MigrationPair, rows: Iterable[tuple[Any, Any]]
) -> tuple[list[tuple[Any, Any, Any]], list[tuple[Any, str]]]:
    """(pk, value to encrypt, plaintext) for the rows whose plaintext converts to the
    field's type, (pk, error) for the rest."""
    field_ = pair.field
    to_python, get_prep_value = field_.to_python, field_.get_prep_value
    converted: list[tuple[Any, Any, Any]] = []
    failures = []
    for pk, plaintext in rows:
        if isinstance(plaintext, str) and looks_like_envelope(split_searchable(plaintext)[1]):
            # Encrypting it would bury the ciphertext under a second layer.
            failures.append((pk, "the plaintext column already holds an encrypted value"))
            continue
        try:
            # What field.mirror_value() and then saving do, keeping the error message.
            value = to_python(plaintext)
            if value is not None:
                value = get_prep_value(value)
        except _VALUE_ERRORS as exc:
            failures.append((pk, _error_text(exc, plaintext)))
            continue
        if value is None:
            failures.append((pk, f"the value converts to NULL for {type(field_).__name__}"))
        else:
            converted.append((pk, value, plaintext))
    return converted, failures


def _error_text(exc: Exception, plaintext: Any) -> str:
    text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    # Keep the plaintext out of the failure table: it outlives the plaintext column.
    if isinstance(plaintext, str | int | float) and str(plaintext):
        text = text.replace(str(plaintext), "<value>")
    return f"{type(exc).__name__}: {text}"[:1000]
