"""The admin's search over encrypted fields: searchable ones are matched exactly through
their search tokens, beside Django's own search of the plaintext fields."""

from __future__ import annotations

import contextvars
from functools import reduce
from operator import or_
from typing import Any

from django.contrib.admin.utils import lookup_spawns_duplicates
from django.db import models
from django.http import HttpRequest
from django.utils.text import unescape_string_literal

from ..fields import EncryptedSearchableString, SearchTokenIndex
from ..introspection import is_encrypted
from .masked import _field_at, _ModelAdminBase

# True while Django's own search runs, so get_search_fields() hands it plaintext fields only.
_plaintext_search_only: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "alphapulse_plaintext_search_only", default=False
)


class TokenSearchMixin(_ModelAdminBase):
    """``search_fields`` may name encrypted fields: see docs/admin.md, "Sorting, filters
    and search"."""

    def _token_search_path(self, spec: str) -> str | None:
        lookup_path = spec.lstrip("^=@")
        field = _field_at(self.model, lookup_path)
        if isinstance(field, EncryptedSearchableString | SearchTokenIndex):
            return lookup_path
        return None

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        fields = list(super().get_search_fields(request))
        if not _plaintext_search_only.get():
            return fields  # all of them, so the changelist shows its search box
        # The database cannot search ciphertext: inside Django's own search (which would
        # raise FieldError) only plaintext fields remain; searchable encrypted ones are
        # matched through their tokens in get_search_results().
        return [
            spec
            for spec in fields
            if not is_encrypted(field := _field_at(self.model, str(spec).lstrip("^=@")))
            and not isinstance(field, SearchTokenIndex)
        ]

    def get_search_results(
        self, request: HttpRequest, queryset: models.QuerySet[Any], search_term: str
    ) -> tuple[models.QuerySet[Any], bool]:
        reset = _plaintext_search_only.set(True)
        try:
            results, may_have_duplicates = super().get_search_results(
                request, queryset, search_term
            )
            plaintext_fields = self.get_search_fields(request)
        finally:
            _plaintext_search_only.reset(reset)
        token_paths = [
            p
            for p in (self._token_search_path(str(s)) for s in super().get_search_fields(request))
            if p is not None
        ]
        term = search_term.strip()
        if term[:1] in ("'", '"') and len(term) > 1 and term[0] == term[-1]:
            term = unescape_string_literal(term)
        if not token_paths or not term:
            return results, may_have_duplicates
        # Exact match on the whole term: a token matches only the complete value.
        matches = reduce(or_, (models.Q(**{p: term}) for p in token_paths))
        if plaintext_fields:
            matches |= models.Q(pk__in=results.values("pk"))
        duplicates = any(lookup_spawns_duplicates(self.opts, p) for p in token_paths)
        return queryset.filter(matches), may_have_duplicates or duplicates
