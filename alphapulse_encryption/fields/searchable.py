"""Searchable encryption: a deterministic token beside each ciphertext.

An :class:`EncryptedSearchableString` stores ``token || envelope``. The token (HMAC of the
normalised value) is a fixed-width prefix, so a :class:`SearchTokenIndex` is a database
generated column over that prefix: indexed, optionally unique, and in sync on every write
path by construction. Exact lookups compare tokens and never decrypt a row.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from django.core import checks
from django.core.exceptions import EmptyResultSet, FieldError, ValidationError
from django.db import models
from django.db.models import F, GeneratedField, Lookup
from django.db.models.expressions import Col
from django.db.models.functions import Substr
from django.db.models.query_utils import DeferredAttribute
from django.utils.functional import cached_property
from django.utils.text import capfirst

from ..crypto import TOKEN_LENGTH, is_search_token
from ..keys import current_cipher
from .base import PUBLIC_MODULE, EncryptedCol, Prepared
from .scalars import EncryptedString

NORMALIZE_STEPS: dict[str, Callable[[str], str]] = {
    "strip": str.strip,
    "lower": str.lower,
    "casefold": str.casefold,
    "nfkc": lambda text: unicodedata.normalize("NFKC", text),
}
_CASE_FOLDING = frozenset({"lower", "casefold"})

NormalizeOption = str | Sequence[str] | Callable[[str], str] | None


def _steps(normalize: NormalizeOption) -> list[str]:
    if normalize is None or callable(normalize):
        return []
    names = normalize.split("+") if isinstance(normalize, str) else list(normalize)
    unknown = [name for name in names if name not in NORMALIZE_STEPS]
    if unknown:
        raise ValueError(
            f"unknown normalize step(s) {unknown}; use any of {sorted(NORMALIZE_STEPS)}, "
            "joined with '+', a list of them, or a callable"
        )
    return names


def build_normalizer(normalize: NormalizeOption) -> Callable[[Any], Any] | None:
    if normalize is None:
        return None
    if callable(normalize):
        custom = normalize

        def apply_custom(value: Any) -> Any:
            return custom(value) if isinstance(value, str) else value

        return apply_custom
    functions = [NORMALIZE_STEPS[name] for name in _steps(normalize)]

    def apply_steps(value: Any) -> Any:
        if isinstance(value, str):
            for function in functions:
                value = function(value)
        return value

    return apply_steps


class TokenLookup(Lookup):
    """``exact`` / ``iexact`` / ``in`` answered by comparing search tokens."""

    prepare_rhs = False
    can_use_none_as_rhs = False
    many: ClassVar[bool] = False

    def get_prep_lookup(self) -> Any:
        if hasattr(self.rhs, "resolve_expression"):
            raise FieldError(
                f"{self.searchable_field().describe()}: the '{self.lookup_name}' lookup needs "
                "Python values; the database cannot compare encrypted values with an expression"
            )
        return self.rhs

    def searchable_field(self) -> EncryptedSearchableString:
        field = self.lhs.output_field
        if isinstance(field, SearchTokenIndex):
            return field.source_field
        assert isinstance(field, EncryptedSearchableString)
        return field

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        field = self.searchable_field()
        values: Iterable[Any] = self.rhs if self.many else [self.rhs]
        tokens = list(
            dict.fromkeys(
                t
                for v in values
                if v is not None
                for t in ([v] if is_search_token(v) else field.search_tokens(v))
            )
        )
        if not tokens:
            raise EmptyResultSet
        lhs_sql, lhs_params = self.token_column_sql(compiler, connection)
        placeholders = ", ".join(["%s"] * len(tokens))
        return f"{lhs_sql} IN ({placeholders})", [*lhs_params, *tokens]

    def token_column_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        field = self.lhs.output_field
        if isinstance(field, SearchTokenIndex):
            sql, params = compiler.compile(self.lhs)
            return sql, list(params)
        alias = getattr(self.lhs, "alias", None)
        index = field.token_index()
        if index is not None and alias is not None:
            sql, params = compiler.compile(index.get_col(alias))
            return sql, list(params)
        # No companion column: compare the stored prefix (correct, but not indexed).
        sql, params = compiler.compile(self.lhs)
        return f"SUBSTR({sql}, 1, {TOKEN_LENGTH})", list(params)


class TokenExact(TokenLookup):
    lookup_name = "exact"


class TokenIExact(TokenLookup):
    lookup_name = "iexact"


class TokenIn(TokenLookup):
    lookup_name = "in"
    many = True

    def get_prep_lookup(self) -> Any:
        rhs = super().get_prep_lookup()
        if isinstance(rhs, str) or not isinstance(rhs, Iterable):
            raise TypeError(f"the 'in' lookup on {self.searchable_field().describe()} needs a list")
        return list(rhs)


_TOKEN_LOOKUPS: dict[str, type[Lookup]] = {
    "exact": TokenExact,
    "iexact": TokenIExact,
    "in": TokenIn,
}


def _token_lookup(field: Any, lookup_name: str) -> type[Lookup] | None:
    if lookup_name == "iexact" and not field.folds_case:
        raise FieldError(
            f"{field.describe()} does not support 'iexact': its search tokens are "
            "case-sensitive. Declare it with normalize='lower' (then 'exact' and 'iexact' "
            "both ignore case)."
        )
    return _TOKEN_LOOKUPS.get(lookup_name)


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
        return bool(_CASE_FOLDING.intersection(_steps(self.normalize)))

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
        if lookup_name in _TOKEN_LOOKUPS:
            return _token_lookup(self, lookup_name)
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
        errors = super().check(**kwargs)
        index = self.token_index()
        if self.unique_plaintext and (index is None or not index.unique):
            errors.append(
                checks.Error(
                    f"{self.describe()} has unique=True, which the database can only enforce "
                    "on its search token.",
                    hint=f"Add `{self.name}_search = SearchTokenIndex('{self.name}', "
                    "unique=True)` to the model.",
                    obj=self,
                    id="alphapulse_encryption.E010",
                )
            )
        return errors


class TokenPrefix(Substr):
    """The search-token prefix of a stored searchable value (the generated column's SQL)."""

    def __init__(self, source: str) -> None:
        super().__init__(F(source), 1, TOKEN_LENGTH)


EncryptedCol.allowed_wrappers = (*EncryptedCol.allowed_wrappers, TokenPrefix)


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
        if lookup_name in _TOKEN_LOOKUPS:
            return _token_lookup(self, lookup_name)
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise FieldError(
            f"{self.describe()} supports only exact, in, isnull (and iexact when its source "
            f"normalises case), with plaintext values; not '{lookup_name}'"
        )

    def get_transform(self, lookup_name: str) -> Any:
        raise FieldError(f"{self.describe()} has no transform '{lookup_name}'")

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        try:
            self.source_field  # noqa: B018
        except Exception as exc:  # FieldDoesNotExist or FieldError
            errors.append(
                checks.Error(
                    str(exc),
                    hint="SearchTokenIndex('<name of an EncryptedSearchableString field>')",
                    obj=self,
                    id="alphapulse_encryption.E012",
                )
            )
        return errors
