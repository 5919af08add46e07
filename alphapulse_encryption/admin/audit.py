"""The audit log in the admin: readable by users with its view permission, never added
to, changed or deleted through the admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class AuditLogEntryAdmin(admin.ModelAdmin):
    list_display = [
        "timestamp",
        "action",
        "username",
        "model_label",
        "object_pk",
        "field_name",
        "ip_address",
    ]
    list_filter = ["action", "timestamp"]
    search_fields = ["=username", "=object_pk", "model_label", "field_name"]
    date_hierarchy = "timestamp"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.opts.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
