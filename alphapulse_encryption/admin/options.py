"""The admin mixins: encrypted fields masked in lists, read-only fields and forms; exact
search through search tokens; an audited, permission-checked, rate-limited reveal view."""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial, reduce
from operator import or_
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import flatten_fieldsets, lookup_spawns_duplicates, quote, unquote
from django.core.cache import caches
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.safestring import SafeString
from django.utils.text import unescape_string_literal
from django.views.decorators.csrf import csrf_exempt

from ..audit import log as audit
from ..audit.models import AuditLogEntry
from ..audit.permissions import can_reveal, encrypted_fields
from ..crypto import DecryptionError
from ..fields import EncryptedSearchableString, SearchTokenIndex
from ..masking import Mask, mask_for_field, mask_value
from .forms import tolerant_form
from .widgets import HIDDEN_BY_POLICY_NOTE, MaskedField, render_masked, render_undecryptable

if TYPE_CHECKING:
    from django.contrib.admin.options import BaseModelAdmin, InlineModelAdmin, ModelAdmin

    _AdminBase = BaseModelAdmin[Any]
    _ModelAdminBase = ModelAdmin[Any]
    _InlineBase = InlineModelAdmin[Any, Any]
else:
    _AdminBase = _ModelAdminBase = _InlineBase = object

logger = logging.getLogger("alphapulse_encryption.admin")

REVEAL_JS = "alphapulse_encryption/admin/reveal.js"
MASKED_CSS = "alphapulse_encryption/admin/masked.css"
# True while Django's own search runs, so get_search_fields() hands it plaintext fields only.
_plaintext_search_only: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "alphapulse_plaintext_search_only", default=False
)


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


def _is_encrypted(field: Any) -> bool:
    return bool(getattr(field, "encrypted", False))


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
        if not _is_encrypted(field):
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
        if not _is_encrypted(db_field):
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


class EncryptedFieldsAdminMixin(_MaskingAdmin, _ModelAdminBase):
    """Put before ``admin.ModelAdmin`` (or its subclass) in the bases of an admin."""

    #: At most this many reveals per user per that many seconds (``None``: no limit),
    #: counted in the cache named by ``reveal_rate_cache``, across all admins that use it.
    reveal_rate_limit: tuple[int, int] | None = (30, 60)
    reveal_rate_cache: str = "default"

    REVEAL_REFUSED = {
        "permission": "You do not have permission to reveal this value.",
        "not_found": "There is no such object or field to reveal.",
        "rate_limited": "Too many reveals; try again later.",
        "method": "Values are revealed by POST only.",
        "csrf": "The request failed the CSRF check: it did not come from this site's pages.",
    }
    REVEAL_UNDECRYPTABLE = "The stored value cannot be decrypted."
    REVEAL_NOT_AUDITED = "The value was not revealed: the audit log could not record it."

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
        return isinstance(name, str) and _is_encrypted(_field_at(self.model, name.lstrip("-")))

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

    # -- search --------------------------------------------------------------------

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
            if not _is_encrypted(field := _field_at(self.model, str(spec).lstrip("^=@")))
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

    # -- reveal --------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_reveal"
        reveal = path(
            "reveal/<str:model_label>/<path:object_id>/<str:field_name>/",
            # Login, staff, no cache. The CSRF check is made by the view itself, after the
            # method check, so that a refused cross-site request is audited too.
            self.admin_site.admin_view(csrf_exempt(self.reveal_view)),
            name=name,
        )
        return [reveal, *super().get_urls()]

    def reveal_view(
        self, request: HttpRequest, model_label: str, object_id: str, field_name: str
    ) -> HttpResponse:
        """POST only, CSRF-checked: the plaintext of one field of one object, as JSON,
        once its audit entry is written. Every refusal is audited."""
        with audit.request_context(request):
            refuse = partial(
                self._refuse_reveal,
                request,
                object_id,
                field_name,
                model=None,
                detail={"model": model_label[:100]},
            )
            if request.method != "POST":
                response = refuse("method")
                response["Allow"] = "POST"
                return response
            if _fails_csrf_check(request):
                return refuse("csrf")
            return self._reveal(request, model_label, object_id, field_name)

    def _reveal(
        self, request: HttpRequest, model_label: str, object_id: str, field_name: str
    ) -> HttpResponse:
        targets: dict[str, _MaskingAdmin] = {self.opts.label_lower: self}
        for inline in self.get_inline_instances(request):
            if isinstance(inline, _MaskingAdmin):
                targets.setdefault(inline.opts.label_lower, inline)
        target = targets.get(model_label)
        refuse = partial(self._refuse_reveal, request, object_id, field_name)
        if target is None:
            return refuse("not_found", None, detail={"model": model_label[:100]})
        model = target.model
        if not target.has_reveal_permission(request):
            return refuse("permission", model)
        obj = _get_object(target, request, object_id)
        field = {f.name: f for f in encrypted_fields(model)}.get(field_name)
        if obj is None or field is None or field_name not in _shown_fields(target, request, obj):
            return refuse("not_found", model)
        if not target.has_reveal_permission(request, obj):
            return refuse("permission", model)
        if not self._within_reveal_rate(request):
            return refuse("rate_limited", model)
        try:
            value = getattr(obj, field.attname)
        except DecryptionError:
            return JsonResponse({"error": self.REVEAL_UNDECRYPTABLE}, status=409)
        try:
            audit.record(
                AuditLogEntry.Action.REVEAL,
                request=request,
                model=model,
                object_pk=obj.pk,
                field_name=field.name,
            )
        except Exception as exc:
            logger.error("reveal refused: audit entry not written: %s", type(exc).__name__)
            return JsonResponse({"error": self.REVEAL_NOT_AUDITED}, status=503)
        return JsonResponse({"field": field.name, "value": _as_text(field, value)})

    def _refuse_reveal(
        self,
        request: HttpRequest,
        object_id: str,
        field_name: str,
        reason: str,
        model: type[models.Model] | None,
        detail: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            audit.record(
                AuditLogEntry.Action.REVEAL_DENIED,
                request=request,
                model=model,
                object_pk=unquote(object_id)[:255],
                field_name=field_name[:255],
                detail={"reason": reason, **(detail or {})},
            )
        except Exception as exc:
            logger.error("refused reveal not audited: %s", type(exc).__name__)
        status = {
            "permission": 403,
            "not_found": 404,
            "rate_limited": 429,
            "method": 405,
            "csrf": 403,
        }[reason]
        return JsonResponse({"error": self.REVEAL_REFUSED[reason]}, status=status)

    def _within_reveal_rate(self, request: HttpRequest) -> bool:
        if self.reveal_rate_limit is None:
            return True
        limit, period = self.reveal_rate_limit
        cache = caches[self.reveal_rate_cache]
        window = int(time.time() // period)
        key = f"alphapulse_encryption:reveal:{request.user.pk}:{period}:{window}"
        cache.add(key, 0, timeout=period)
        try:
            used = cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.set(key, 1, timeout=period)
            used = 1
        return used <= limit


def _fails_csrf_check(request: HttpRequest) -> bool:
    """Django's CSRF check, as ``csrf_protect`` would make it."""
    middleware = CsrfViewMiddleware(lambda request: HttpResponse())
    return middleware.process_view(request, _checked_view, (), {}) is not None


def _checked_view(request: HttpRequest) -> HttpResponse:
    raise AssertionError("never called: only passed to the CSRF check")


def _get_object(admin: _MaskingAdmin, request: HttpRequest, object_id: str) -> Any:
    queryset = admin.get_queryset(request)
    try:
        pk = queryset.model._meta.pk.to_python(unquote(object_id))
        return queryset.get(pk=pk)
    except (queryset.model.DoesNotExist, ValidationError, ValueError):
        return None


def _shown_fields(admin: _MaskingAdmin, request: HttpRequest, obj: models.Model) -> set[str]:
    """The fields the admin shows on the change page: only those can be revealed."""
    parent = obj if isinstance(admin, EncryptedFieldsAdminMixin) else None
    return {
        n for n in flatten_fieldsets(admin.get_fieldsets(request, parent)) if isinstance(n, str)
    }


def _as_text(field: models.Field, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)
