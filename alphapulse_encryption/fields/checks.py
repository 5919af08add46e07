"""System checks of encrypted fields and search-token columns (ids
``alphapulse_encryption.E010``-``E016`` and ``W010``); each field's ``check()`` adds them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Field

from ..introspection import is_encrypted

# What the checks ask of the fields, so that this module imports none of them (each
# field's check() calls in here).


class _Described(Protocol):
    name: str

    def describe(self) -> str: ...


class _Encrypted(_Described, Protocol):
    # Also read: _unique and db_index, which Django's type stubs do not declare.
    null: bool
    migrate_from: str | None
    mask: str | Callable[[Any], str] | None

    def has_db_default(self) -> bool: ...

    def migrate_from_field(self) -> Field: ...


class _TokenIndex(Protocol):
    @property
    def unique(self) -> bool: ...


class _Searchable(_Described, Protocol):
    unique_plaintext: bool

    def token_index(self) -> _TokenIndex | None: ...


class _TokenColumn(Protocol):
    @property
    def source_field(self) -> object: ...


def encrypted_field_checks(field: _Encrypted) -> list[checks.CheckMessage]:
    """What every encrypted field refuses: options that would act on ciphertext or store
    plaintext, and a ``migrate_from`` or ``mask`` that names nothing usable."""
    errors: list[checks.CheckMessage] = []
    # EncryptedSearchableString keeps its unique=True off the column (see there).
    if field._unique:  # type: ignore[attr-defined]
        errors.append(
            checks.Error(
                f"{field.describe()} has unique=True, which a database cannot enforce on "
                "randomly encrypted values.",
                hint="Use EncryptedSearchableString with SearchTokenIndex(..., unique=True).",
                obj=field,
                id="alphapulse_encryption.E013",
            )
        )
    if field.db_index:  # type: ignore[attr-defined]
        errors.append(
            checks.Warning(
                f"{field.describe()} has db_index=True; an index on ciphertext serves no query.",
                hint="Remove db_index; for exact-match search use EncryptedSearchableString "
                "with a SearchTokenIndex.",
                obj=field,
                id="alphapulse_encryption.W010",
            )
        )
    errors.extend(_migrate_from_checks(field))
    errors.extend(_mask_checks(field))
    if field.has_db_default():
        errors.append(
            checks.Error(
                f"{field.describe()} has db_default, which the database would store as plaintext.",
                hint="Use default= (encrypted by Django on save) instead.",
                obj=field,
                id="alphapulse_encryption.E014",
            )
        )
    return errors


def _mask_checks(field: _Encrypted) -> list[checks.CheckMessage]:
    if not isinstance(field.mask, str):
        return []
    from ..masking import MASKS

    if field.mask in MASKS:
        return []
    return [
        checks.Error(
            f"{field.describe()}: unknown mask {field.mask!r}.",
            hint=f"Use one of {sorted(MASKS)}, or a callable.",
            obj=field,
            id="alphapulse_encryption.E016",
        )
    ]


def _migrate_from_checks(field: _Encrypted) -> list[checks.CheckMessage]:
    if field.migrate_from is None:
        return []
    try:
        source = field.migrate_from_field()
    except FieldDoesNotExist:
        problem = f"migrate_from='{field.migrate_from}' names no field of the model"
    else:
        if is_encrypted(source) or not source.concrete:
            problem = f"migrate_from='{field.migrate_from}' must name a plaintext column"
        elif not field.null:
            problem = "a field with migrate_from must have null=True until migrated"
        else:
            return []
    return [
        checks.Error(
            f"{field.describe()}: {problem}.",
            hint="See docs/migration.md.",
            obj=field,
            id="alphapulse_encryption.E015",
        )
    ]


def decimal_digits_error(field: object) -> checks.CheckMessage:
    return checks.Error(
        "EncryptedDecimal needs both max_digits and decimal_places, or neither.",
        obj=field,
        id="alphapulse_encryption.E011",
    )


def searchable_field_checks(field: _Searchable) -> list[checks.CheckMessage]:
    index = field.token_index()
    if field.unique_plaintext and (index is None or not index.unique):
        return [
            checks.Error(
                f"{field.describe()} has unique=True, which the database can only enforce "
                "on its search token.",
                hint=f"Add `{field.name}_search = SearchTokenIndex('{field.name}', "
                "unique=True)` to the model.",
                obj=field,
                id="alphapulse_encryption.E010",
            )
        ]
    return []


def token_index_checks(field: _TokenColumn) -> list[checks.CheckMessage]:
    try:
        field.source_field  # noqa: B018
    except Exception as exc:  # FieldDoesNotExist or FieldError
        return [
            checks.Error(
                str(exc),
                hint="SearchTokenIndex('<name of an EncryptedSearchableString field>')",
                obj=field,
                id="alphapulse_encryption.E012",
            )
        ]
    return []
