"""Admin integration: masked encrypted fields, an audited reveal, the audit log (see
docs/admin.md). Importing this module registers the audit log with the default site."""

from django.contrib import admin

from ..audit.models import AuditLogEntry
from .audit import AuditLogEntryAdmin
from .options import EncryptedFieldsAdminMixin, EncryptedInlineMixin, MaskedColumn
from .widgets import MaskedField, MaskedInput, MaskedSelect, MaskedTextarea


class EncryptedModelAdmin(EncryptedFieldsAdminMixin, admin.ModelAdmin):
    """A ``ModelAdmin`` that shows encrypted fields masked and can reveal them."""


class EncryptedTabularInline(EncryptedInlineMixin, admin.TabularInline):
    pass


class EncryptedStackedInline(EncryptedInlineMixin, admin.StackedInline):
    pass


if not admin.site.is_registered(AuditLogEntry):
    admin.site.register(AuditLogEntry, AuditLogEntryAdmin)

__all__ = [
    "AuditLogEntryAdmin",
    "EncryptedFieldsAdminMixin",
    "EncryptedInlineMixin",
    "EncryptedModelAdmin",
    "EncryptedStackedInline",
    "EncryptedTabularInline",
    "MaskedColumn",
    "MaskedField",
    "MaskedInput",
    "MaskedSelect",
    "MaskedTextarea",
]
