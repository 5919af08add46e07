"""What the admin mixins share with their inlines: masked columns for lists and read-only
fields, masked form fields, the reveal permission and the reveal URL."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.admin.utils import quote
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString

from ..audit import log as audit
from ..audit.permissions import can_reveal
from ..crypto import DecryptionError
from ..introspection import is_encrypted
from ..masking import Mask, mask_for_field, mask_value
from .widgets import MaskedField, render_masked, render_undecryptable

if TYPE_CHECKING:
    from django.contrib.admin.options import BaseModelAdmin, InlineModelAdmin, ModelAdmin

    _AdminBase = BaseModelAdmin[Any]
    _ModelAdminBase = ModelAdmin[Any]
    _InlineBase = InlineModelAdmin[Any, Any]
else:
    _AdminBase = _ModelAdminBase = _InlineBase = object

REVEAL_JS = "alphapulse_encryption/admin/reveal.js"
MASKED_CSS = "alphapulse_encryption/admin/masked.css"


def _field_at(model: type[models.Model], lookup_path: str) -> Any:
    """The field a ``list_display`` / ``search_fields`` path ends at, following relations;
    ``None`` for anything else (methods, properties, unknown names)."""
    opts = model._meta
    field: Any = None
    for part in lookup_path.split(LOOKUP_SEP):
        if field is not None:
            if not field.is_relation or field.related_model is None:
                return None
            opts = field.related_model._meta
        try:
            field = opts.pk if part == "pk" else opts.get_field(part)
        except FieldDoesNotExist:
            return None
    return field


class MaskedColumn:
    """A ``list_display`` or read-only entry showing an encrypted field by its mask.

    Callable like the admin's own display functions; ``__name__`` keeps the ``field-<name>``
    CSS class and ``short_description`` the field's label.
    """

    boolean = False

    def __init__(
        self,
        lookup_path: str,
        field: models.Field,
        mask: Callable[[Any], str],
        request: HttpRequest | None = None,
        reveal_url: Callable[[models.Model], str | None] | None = None,
        *,
        can_reveal: bool = False,
        note: bool = False,
    ) -> None:
        self.path = lookup_path
        self.__name__ = lookup_path
        self.short_description = field.verbose_name
        self.mask = mask
        self.request = request
        self.reveal_url = reveal_url
        self.can_reveal = can_reveal
        self.note = note  # "hidden by policy" in words, where there is room (forms)

    def __str__(self) -> str:
        return self.path

    def __call__(self, obj: models.Model) -> SafeString | None:
        *relations, name = self.path.split(LOOKUP_SEP)
        owner: Any = obj
        for part in relations:
            owner = getattr(owner, part, None)
            if owner is None:
                return None
        try:
            if self.request is None:
                value = getattr(owner, name)
            else:
                with audit.request_context(self.request):
                    value = getattr(owner, name)
        except DecryptionError:
            return render_undecryptable()
        shown = mask_value(value, self.mask)
        if not shown:
            return None
        url = self.reveal_url(owner) if self.reveal_url else None
        return render_masked(shown, url, can_reveal=self.can_reveal, note=self.note)


def _replace_names(fields: Sequence[Any], columns: Mapping[str, MaskedColumn]) -> list[Any]:
    """``fields`` (names, callables, and tuples of them for one line) with the names in
    ``columns`` replaced by their masked columns."""
    replaced: list[Any] = []
    for name in fields:
        if isinstance(name, list | tuple):
            replaced.append(_replace_names(name, columns))
        elif isinstance(name, str):
            replaced.append(columns.get(name, name))
        else:
            replaced.append(name)
    return replaced


class _MaskingAdmin(_AdminBase):
    """What model admins and inlines share: masked form fields and the reveal permission."""

    #: Per field: a mask kind ("email", "phone", "account", "number", "json", "default")
    #: or a function from the value to the text shown. Others are chosen by the field.
    encrypted_masks: Mapping[str, Mask] = {}

    def _reveal_route_opts(self) -> Any:
        raise NotImplementedError

    def has_reveal_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        """Whether ``request.user`` may reveal encrypted values of this admin's model (of
        ``obj``, when given): view permission plus the global or per-model reveal one."""
        return self.has_view_or_change_permission(request, obj) and can_reveal(
            request.user, self.model
        )

    def reveal_url(self, obj: models.Model, field_name: str) -> str | None:
        if obj.pk is None:
            return None
        opts = self._reveal_route_opts()
        try:
            return reverse(
                f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_reveal",
                args=[obj._meta.label_lower, quote(obj.pk), field_name],
            )
        except NoReverseMatch:
            return None

    def masked_value(self, obj: models.Model, field_name: str) -> str:
        """The mask of ``obj.<field_name>`` as this admin shows it: for admin actions and
        exports, which must not write plaintext either."""
        field: Any = obj._meta.get_field(field_name)
        return mask_value(
            getattr(obj, field_name), mask_for_field(field, self.encrypted_masks.get(field_name))
        )

    def masked_column(
        self, request: HttpRequest | None, lookup_path: str, *, reveal: bool = False
    ) -> MaskedColumn | None:
        field = _field_at(self.model, lookup_path)
        if not is_encrypted(field):
            return None
        allowed = request is not None and self.has_reveal_permission(request)
        reveal_url = None
        if reveal and allowed and LOOKUP_SEP not in lookup_path:
            reveal_url = partial(self.reveal_url, field_name=lookup_path)
        mask = mask_for_field(field, self.encrypted_masks.get(lookup_path))
        return MaskedColumn(
            lookup_path, field, mask, request, reveal_url, can_reveal=allowed, note=reveal
        )

    def formfield_for_dbfield(
        self, db_field: models.Field, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        if not is_encrypted(db_field):
            return super().formfield_for_dbfield(db_field, request, **kwargs)
        # The admin's widgets (split date/time, calendars) render the value; the masked
        # widget replaces them, so start from the field's own form field.
        kwargs.pop("widget", None)
        inner = db_field.formfield(**kwargs)
        if inner is None:
            return None
        reveal_url = None
        if self.has_reveal_permission(request):
            reveal_url = partial(self.reveal_url, field_name=db_field.name)
        mask = mask_for_field(db_field, self.encrypted_masks.get(db_field.name))
        return MaskedField(inner, mask=mask, reveal_url=reveal_url)

    @property
    def media(self) -> forms.Media:
        return super().media + forms.Media(js=[REVEAL_JS], css={"all": [MASKED_CSS]})
