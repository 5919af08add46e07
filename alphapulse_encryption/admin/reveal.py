"""The reveal view: the plaintext of one encrypted field of one object, POST only,
CSRF-checked, permission-checked, rate-limited, and never without its audit entry."""

from __future__ import annotations

import datetime
import json
import logging
import time
from functools import partial
from typing import Any

from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from ..audit import log as audit
from ..audit.models import AuditLogEntry
from ..crypto import DecryptionError
from ..introspection import encrypted_fields
from .masked import _MaskingAdmin, _ModelAdminBase

logger = logging.getLogger("alphapulse_encryption.admin")


class RevealViewMixin(_MaskingAdmin, _ModelAdminBase):
    """Adds the reveal view to a model admin's URLs; reveals of its inlines' fields go
    through it too."""

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
        parent = obj if target is self else None  # inlines list their fields without one
        if obj is None or field is None or field_name not in _shown_fields(target, request, parent):
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


def _shown_fields(
    admin: _MaskingAdmin, request: HttpRequest, parent: models.Model | None
) -> set[str]:
    """The fields the admin shows on the change page: only those can be revealed."""
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
