"""The audit log in the admin: readable by users with its view permission, never added
to, changed or deleted through the admin. Each row says what happened, who did it, on
what, from where, and with what result, in columns that fit a 1,280 px screen."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from ..audit.models import AuditLogEntry

Action = AuditLogEntry.Action
AUDIT_CSS = "alphapulse_encryption/admin/audit.css"
# Key operations that report a problem rather than a change made.
_FAILED_KEY_OPERATIONS = frozenset({"decrypt_failed", "reencrypt_failed_rows"})
_SUMMARY = ("what", "who", "on_what", "from_where", "result")


_BREAK_AFTER = re.compile(r"([.@/])")
_CAMEL_CASE = re.compile(r"(?<=[a-z])(?=[A-Z])")


def _breakable(text: str) -> SafeString:
    """``text`` with line-break opportunities after dots, "@" and "/" and inside CamelCase
    ("backoffice.User<wbr>Profile"), so narrow columns wrap between words, not letters."""
    marked = _CAMEL_CASE.sub("<wbr>", _BREAK_AFTER.sub(r"\1<wbr>", str(escape(text))))
    return mark_safe(marked)  # noqa: S308 - escaped above; only <wbr> added


def _words(value: Any) -> str:
    # "authentication_failed" -> "authentication failed": readable, and wraps in a narrow cell.
    return str(value).replace("_", " ")


def _what(entry: AuditLogEntry) -> str:
    detail = entry.detail or {}
    label = str(Action(entry.action).label) if entry.action in Action.values else entry.action
    if entry.action == Action.KEY_OPERATION:
        shown = f"key {_words(detail.get('operation', '?'))}"
        version = detail.get("key_version")
        return shown if version is None else f"{shown}, v{version}"
    if entry.action == Action.MIGRATION_RUN:
        return f"migration: {_words(detail.get('step', '?'))}"
    if entry.action == Action.CHANGE:
        return "change"
    return label


def _who(entry: AuditLogEntry) -> str:
    if entry.username:
        return entry.username
    detail = entry.detail or {}
    if detail.get("os_user") or detail.get("host"):
        return f"{detail.get('os_user') or '?'}@{detail.get('host') or '?'}"
    return "anonymous" if entry.ip_address else "-"


def _on_what(entry: AuditLogEntry) -> str:
    detail = entry.detail or {}
    # Key operations name no model: what they act on is the provider's keyring.
    model = entry.model_label or detail.get("model") or detail.get("table")
    model = model or detail.get("provider") or ""
    parts = [str(model)] if model else []
    if entry.object_pk:
        parts.append(f"#{entry.object_pk}")
    if entry.field_name:
        parts.append(f"· {entry.field_name}")
    return " ".join(parts) or "-"


def _from_where(entry: AuditLogEntry) -> str:
    if entry.ip_address:
        return entry.ip_address
    command = (entry.detail or {}).get("command")
    return f"command {command}" if command else "-"


def _result(entry: AuditLogEntry) -> tuple[str, bool]:
    """The outcome as shown, and whether it is a failure or refusal."""
    detail = entry.detail or {}
    action = entry.action
    if action == Action.REVEAL:
        return "revealed", False
    if action == Action.REVEAL_DENIED:
        return f"refused: {_words(detail.get('reason', '?'))}", True
    if action == Action.CHANGE:
        return ("added" if detail.get("added") else "changed"), False
    if action == Action.DECRYPTION_FAILED:
        return f"failed: {_words(detail.get('reason', '?'))}", True
    if action == Action.MIGRATION_RUN:
        outcome = str(detail.get("outcome", "?"))
        return outcome, outcome != "ok"
    operation = detail.get("operation")
    if operation in _FAILED_KEY_OPERATIONS:
        reason = detail.get("reason")
        failed_rows = len(detail.get("pks") or ())
        return (f"failed: {_words(reason)}" if reason else f"{failed_rows} rows failed"), True
    if operation == "retire_forced":
        return f"{detail.get('values_left_unreadable', '?')} values left unreadable", True
    if operation == "reencrypt":
        moved, scanned = detail.get("moved", "?"), detail.get("scanned", "?")
        return f"{moved} of {scanned} moved", bool(detail.get("failed"))
    return "ok", False


class AuditLogEntryAdmin(admin.ModelAdmin):
    list_display = ["when", *_SUMMARY]
    list_display_links = ["when"]
    list_filter = ["action", "timestamp"]
    search_fields = ["=username", "=object_pk", "model_label", "field_name"]
    date_hierarchy = "timestamp"

    @property
    def media(self) -> forms.Media:
        return super().media + forms.Media(css={"all": [AUDIT_CSS]})

    @admin.display(description="when", ordering="timestamp")
    def when(self, entry: AuditLogEntry) -> str:
        return timezone.localtime(entry.timestamp).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="what")
    def what(self, entry: AuditLogEntry) -> str:
        return _what(entry)

    @admin.display(description="who")
    def who(self, entry: AuditLogEntry) -> SafeString:
        return _breakable(_who(entry))

    @admin.display(description="on what")
    def on_what(self, entry: AuditLogEntry) -> SafeString:
        return _breakable(_on_what(entry))

    @admin.display(description="from where")
    def from_where(self, entry: AuditLogEntry) -> SafeString:
        return _breakable(_from_where(entry))

    @admin.display(description="result")
    def result(self, entry: AuditLogEntry) -> SafeString:
        shown, failed = _result(entry)
        css = "ape-result ape-result-failed" if failed else "ape-result"
        return format_html('<span class="{}">{}</span>', css, shown)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        stored = [field.name for field in self.opts.fields]
        return [(None, {"fields": list(_SUMMARY)}), ("Stored entry", {"fields": stored})]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*_SUMMARY, *(field.name for field in self.opts.fields)]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
