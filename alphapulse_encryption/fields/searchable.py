"""Searchable encryption: a deterministic token beside each ciphertext.

An :class:`EncryptedSearchableString` stores ``token || envelope``. The token (HMAC of the
normalised value) is a fixed-width prefix, so a :class:`SearchTokenIndex` is a database
generated column over that prefix: indexed, optionally unique, and in sync on every write
path by construction. Exact lookups (:mod:`.lookups`) compare tokens and never decrypt a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from django.core import checks
from django.core.exceptions import FieldError, ValidationError
from django.db import models
from django.db.models import GeneratedField
from django.db.models.expressions import Col
from django.db.models.query_utils import DeferredAttribute
from django.utils.functional import cached_property
from django.utils.text import capfirst

from ..crypto import TOKEN_LENGTH
from ..keys import current_cipher
from . import checks as field_checks
from .base import PUBLIC_MODULE
from .columns import TokenPrefix
from .lookups import TOKEN_LOOKUPS, token_lookup
from .normalize import NormalizeOption, build_normalizer, normalizes_case
from .scalars import EncryptedString
from .stored import Prepared


class EncryptedSearchableString(EncryptedString):
    """An encrypted string that supports ``exact``, ``iexact`` (when normalised to lower
    case), ``in`` and ``isnull`` lookups, and ``unique=True``, through its search token."""

    allowed_lookups = frozenset({"isnull", "exact", "iexact", "in"})

    def __init__(
        self, *args: Any, normalize: NormalizeOption = None, unique: bool = False, **kwargs: Any
    ) -> None:
        self.normalize = normalize
        self.normalizer = build_normalizer(normalize)
        # Uniqueness is enforced on the token (SearchTokenIndex(unique=True)) and validated
        # by a token lookup; a UNIQUE index on random ciphertext would enforce nothing.
        self.unique_plaintext = unique
        super().__init__(*args, **kwargs)

    @property
    def folds_case(self) -> bool:
        return normalizes_case(self.normalize)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.normalize is not None:
            kwargs["normalize"] = self.normalize
        if self.unique_plaintext:
            kwargs["unique"] = True
        return name, path, args, kwargs

    def encrypt(self, value: Any) -> str:
        return current_cipher().encrypt_searchable(
            value, self.encryption_context, normalizer=self.normalizer
        )

    def seal_batch(self, values: Sequence[Any]) -> list[str | None]:
        return current_cipher().batch_encrypt_searchable(
            values, self.encryption_context, normalizer=self.normalizer
        )

    def search_tokens(self, value: Any) -> list[str]:
        """The tokens ``value`` has under every configured key version."""
        value = self.to_python(value)
        return current_cipher().search_tokens(
            value, self.encryption_context, normalizer=self.normalizer
        )

    def token_index(self) -> SearchTokenIndex | None:
        for field in self.model._meta.concrete_fields:
            if isinstance(field, SearchTokenIndex) and field.source == self.name:
                return field
        return None

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name in TOKEN_LOOKUPS:
            return token_lookup(self, lookup_name)
        return super().get_lookup(lookup_name)

    def equality_hint(self, operation: str) -> str:
        index = self.token_index()
        if index is None:
            return ""
        # Equal values have equal tokens (under one search-key version), which is all the
        # token column shows.
        return f" Its SearchTokenIndex '{index.name}' is equal for equal values: {operation} that."

    def validate(self, value: Any, model_instance: Any) -> None:
        super().validate(value, model_instance)
        if not self.unique_plaintext or value is None or model_instance is None:
            return
        others = type(model_instance)._default_manager.filter(**{self.name: value})
        if not model_instance._state.adding and model_instance.pk is not None:
            others = others.exclude(pk=model_instance.pk)
        if others.exists():
            raise ValidationError(
                self.error_messages["unique"],
                code="unique",
                params={
                    "model_name": capfirst(model_instance._meta.verbose_name),
                    "field_label": self.verbose_name,
                },
            )

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return [*super().check(**kwargs), *field_checks.searchable_field_checks(self)]


class _TokenAttribute(DeferredAttribute):
    """Before the row exists, the token is computed from the source value (Django would
    refuse to read a generated field of an unsaved model, e.g. in ``validate_unique``)."""

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        field = self.field
        if field.attname not in instance.__dict__ and not instance._is_pk_set():
            source = field.source_field  # type: ignore[attr-defined]
            value = instance.__dict__.get(source.attname)
            if isinstance(value, Prepared):  # inside bulk_create
                value = value.value
            if value is None:
                return None
            return current_cipher().search_token(
                source.to_python(value), source.encryption_context, normalizer=source.normalizer
            )
        return super().__get__(instance, cls)


class SearchTokenIndex(GeneratedField):
    """An indexed column holding the search token of an :class:`EncryptedSearchableString`,
    generated by the database from the stored value, and queryable with the plaintext."""

    encrypted: ClassVar[bool] = False
    descriptor_class = _TokenAttribute

    def __init__(
        self, source: str, *, unique: bool = False, db_index: bool = True, **kwargs: Any
    ) -> None:
        self.source = source
        kwargs.setdefault("serialize", False)
        kwargs.setdefault("null", True)  # the token is NULL exactly when the value is
        super().__init__(
            expression=TokenPrefix(source),
            output_field=models.CharField(max_length=TOKEN_LENGTH),
            db_persist=True,
            unique=unique,
            db_index=db_index and not unique,
            **kwargs,
        )

    @property
    def source_field(self) -> EncryptedSearchableString:
        field = self.model._meta.get_field(self.source)
        if not isinstance(field, EncryptedSearchableString):
            raise FieldError(
                f"SearchTokenIndex '{self.name}' on {self.model._meta.label}: its source "
                f"'{self.source}' is not an EncryptedSearchableString"
            )
        return field

    @property
    def folds_case(self) -> bool:
        return self.source_field.folds_case

    def describe(self) -> str:
        return f"SearchTokenIndex '{self.name}' on {self.model._meta.label}"

    def deconstruct(self) -> Any:
        name, _, _, kwargs = super().deconstruct()
        for key in ("expression", "output_field", "db_persist", "serialize", "null"):
            kwargs.pop(key, None)
        if kwargs.get("unique") or kwargs.get("db_index", True):
            kwargs.pop("db_index", None)
        else:
            kwargs["db_index"] = False
        return name, f"{PUBLIC_MODULE}.SearchTokenIndex", [self.source], kwargs

    def db_type(self, connection: Any) -> str:
        # Fixed width, and CHAR rather than VARCHAR so PostgreSQL adds no "_like" pattern
        # index beside the unique/plain one: tokens are only ever compared for equality.
        return f"char({TOKEN_LENGTH})"

    def db_parameters(self, connection: Any) -> dict[str, Any]:
        return {**super().db_parameters(connection), "type": self.db_type(connection)}

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        # Never called to save (the database computes the column). Django's SQLite schema
        # editor adds a nullable column with ALTER TABLE ADD COLUMN, which SQLite refuses for
        # STORED generated columns; a non-None "effective default" makes it rebuild the
        # table instead (the generated column takes no default from it).
        if value is None and connection.vendor == "sqlite":
            return ""
        return super().get_db_prep_save(value, connection)

    # GeneratedField gives its columns the output field (a plain CharField), whose exact
    # lookup would compare a plaintext with tokens and silently match nothing.
    @cached_property
    def cached_col(self) -> Col:
        return Col(self.model._meta.db_table, self)

    def get_col(self, alias: str, output_field: Any = None) -> Col:
        return Col(alias, self, self if output_field is None else output_field)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name in TOKEN_LOOKUPS:
            return token_lookup(self, lookup_name)
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise FieldError(
            f"{self.describe()} supports only exact, in, isnull (and iexact when its source "
            f"normalises case), with plaintext values; not '{lookup_name}'"
        )

    def get_transform(self, lookup_name: str) -> Any:
        raise FieldError(f"{self.describe()} has no transform '{lookup_name}'")

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return [*super().check(**kwargs), *field_checks.token_index_checks(self)]
