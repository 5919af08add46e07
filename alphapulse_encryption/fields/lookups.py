"""The lookups of a searchable field and its ``SearchTokenIndex``: ``exact``, ``iexact``
and ``in`` answered by comparing search tokens, never by decrypting a row."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Protocol

from django.core.exceptions import EmptyResultSet, FieldError
from django.db.models import GeneratedField, Lookup

from ..crypto import TOKEN_LENGTH, is_search_token


class _Searchable(Protocol):
    """What these lookups ask of an ``EncryptedSearchableString``."""

    def describe(self) -> str: ...

    def search_tokens(self, value: Any) -> list[str]: ...


def _is_token_column(field: Any) -> bool:
    # The lookups below are only ever given a searchable field or its SearchTokenIndex,
    # the one generated field among the two (the fields import this module, not the reverse).
    return isinstance(field, GeneratedField)


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

    def searchable_field(self) -> _Searchable:
        field = self.lhs.output_field
        if _is_token_column(field):
            return field.source_field
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
        if _is_token_column(field):
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


TOKEN_LOOKUPS: dict[str, type[Lookup]] = {
    "exact": TokenExact,
    "iexact": TokenIExact,
    "in": TokenIn,
}


def token_lookup(field: Any, lookup_name: str) -> type[Lookup] | None:
    """The token lookup ``lookup_name`` of a searchable field or its token column."""
    if lookup_name == "iexact" and not field.folds_case:
        raise FieldError(
            f"{field.describe()} does not support 'iexact': its search tokens are "
            "case-sensitive. Declare it with normalize='lower' (then 'exact' and 'iexact' "
            "both ignore case)."
        )
    return TOKEN_LOOKUPS.get(lookup_name)
