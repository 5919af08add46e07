"""The admin mixins: encrypted fields masked in lists, read-only fields, forms and inlines;
changes of encrypted values audited. The reveal view is in ``reveal``, the search in
``search``, what admins share with their inlines in ``masked``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import flatten_fieldsets
from django.db import models
from django.http import HttpRequest, HttpResponse

from ..audit import log as audit
from ..audit.models import AuditLogEntry
from ..introspection import encrypted_fields, is_encrypted
from .forms import tolerant_form
from .masked import (
    MASKED_CSS,
    REVEAL_JS,
    MaskedColumn,
    _field_at,
    _InlineBase,
    _MaskingAdmin,
    _ModelAdminBase,
    _replace_names,
)
from .reveal import RevealViewMixin
from .search import TokenSearchMixin
from .widgets import HIDDEN_BY_POLICY_NOTE

__all__ = [
    "MASKED_CSS",
    "REVEAL_JS",
    "EncryptedFieldsAdminMixin",
    "EncryptedInlineMixin",
    "MaskedColumn",
]


class EncryptedInlineMixin(_MaskingAdmin, _InlineBase):
    """Mixed into inlines of an :class:`EncryptedFieldsAdminMixin` admin (done for you by
    that admin); reveals go through the parent admin's reveal view."""

    def _reveal_route_opts(self) -> Any:
        return self.parent_model._meta

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = tolerant_form(kwargs.pop("form", self.form))
        return super().get_formset(request, obj, form=form, **kwargs)


_MASKED_INLINES: dict[type, type] = {}


def _masked_inline(inline_class: type) -> type:
    if issubclass(inline_class, EncryptedInlineMixin):
        return inline_class
    if inline_class not in _MASKED_INLINES:
        _MASKED_INLINES[inline_class] = type(
            inline_class.__name__,
            (EncryptedInlineMixin, inline_class),
            {"__module__": inline_class.__module__},
        )
    return _MASKED_INLINES[inline_class]


class EncryptedFieldsAdminMixin(RevealViewMixin, TokenSearchMixin, _MaskingAdmin, _ModelAdminBase):
    """Put before ``admin.ModelAdmin`` (or its subclass) in the bases of an admin."""

    def _reveal_route_opts(self) -> Any:
        return self.opts

    # -- change list ---------------------------------------------------------------

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        masked = request.method == "GET" and any(
            isinstance(c, MaskedColumn) for c in self.get_list_display(request)
        )
        if masked and not self.has_reveal_permission(request):
            # Shown above the list (and used up) by the page this request renders.
            messages.info(
                request, HIDDEN_BY_POLICY_NOTE, extra_tags="ape-policy-note", fail_silently=True
            )
        return super().changelist_view(request, extra_context)

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        editable = set(self.list_editable)
        columns: list[Any] = []
        for entry in super().get_list_display(request):
            column = None
            if isinstance(entry, str) and entry not in editable:
                column = self.masked_column(request, entry)
            columns.append(column or entry)
        return columns

    def get_list_display_links(
        self, request: HttpRequest, list_display: Sequence[Any]
    ) -> Any:  # a list, or None for "no links"
        links = super().get_list_display_links(request, list(list_display))
        if links is None:
            return None  # "no links", as Django allows
        columns = {c.path: c for c in list_display if isinstance(c, MaskedColumn)}
        return [columns.get(link, link) if isinstance(link, str) else link for link in links]

    def _is_encrypted_name(self, name: Any) -> bool:
        return isinstance(name, str) and is_encrypted(_field_at(self.model, name.lstrip("-")))

    def get_sortable_by(self, request: HttpRequest) -> list[Any]:
        return [n for n in super().get_sortable_by(request) if not self._is_encrypted_name(n)]

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        return [n for n in super().get_ordering(request) if not self._is_encrypted_name(n)]

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return [
            entry
            for entry in super().get_list_filter(request)
            if not self._is_encrypted_name(entry[0] if isinstance(entry, tuple) else entry)
        ]

    # -- change form ---------------------------------------------------------------

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        # Opens on a value that fails to decrypt ("undecryptable"), so it can be replaced.
        form = tolerant_form(kwargs.pop("form", self.form))
        return super().get_form(request, obj, change=change, form=form, **kwargs)

    def get_inlines(self, request: HttpRequest, obj: models.Model | None) -> list[Any]:
        return [_masked_inline(inline) for inline in super().get_inlines(request, obj)]

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        with audit.request_context(request):
            return super().changeform_view(request, object_id, form_url, extra_context)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: models.Model | None = None,
    ) -> HttpResponse:
        # Read-only fields (all of them for a user without change permission) are shown
        # through lookup_field(), which would print the value: swap in masked columns.
        adminform = context.get("adminform")
        if adminform is not None:
            self._mask_read_only(request, adminform, self, everything=False)
        for inline_formset in context.get("inline_admin_formsets", ()):
            owner = inline_formset.opts
            if isinstance(owner, _MaskingAdmin):
                self._mask_read_only(
                    request,
                    inline_formset,
                    owner,
                    everything=not inline_formset.has_change_permission,
                )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @staticmethod
    def _mask_read_only(
        request: HttpRequest, holder: Any, owner: _MaskingAdmin, *, everything: bool
    ) -> None:
        names = list(holder.readonly_fields)
        if everything:
            names += flatten_fieldsets(holder.fieldsets)
        columns: dict[str, MaskedColumn] = {}
        for name in names:
            if isinstance(name, str) and name not in columns:
                column = owner.masked_column(request, name, reveal=True)
                if column is not None:
                    columns[name] = column
        if not columns:
            return
        holder.readonly_fields = _replace_names(holder.readonly_fields, columns)
        holder.fieldsets = [
            (title, {**options, "fields": _replace_names(options.get("fields", ()), columns)})
            for title, options in holder.fieldsets
        ]

    # -- audit of changes ----------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        self._audit_changes(request, form, change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        for inline_form in formset.forms:
            if inline_form.instance.pk is not None:
                self._audit_changes(request, inline_form, change)

    @staticmethod
    def _audit_changes(request: HttpRequest, form: Any, change: bool) -> None:
        """One entry per encrypted field the form changed: its name, never its value.
        Raises when the entry cannot be written, so the change is rolled back."""
        model = form._meta.model
        names = {f.name for f in encrypted_fields(model)}
        for name in form.changed_data:
            if name in names:
                audit.record(
                    AuditLogEntry.Action.CHANGE,
                    request=request,
                    model=model,
                    object_pk=form.instance.pk,
                    field_name=name,
                    detail={"via": "admin", "added": not change},
                )
