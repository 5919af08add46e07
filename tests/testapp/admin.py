"""The test app's models in the admin, through the encrypted-fields mixin (also combined
with another mixin, and with a plain inline that the mixin masks)."""

import csv
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from alphapulse_encryption.admin import EncryptedFieldsAdminMixin, EncryptedModelAdmin

from . import models


class CsvExportMixin:
    """Another admin mixin: an export action that writes what the admin shows."""

    actions = ["export_csv"]
    export_fields: tuple[str, ...] = ()

    @admin.action(description="Export selected as CSV")
    def export_csv(self, request: HttpRequest, queryset: Any) -> HttpResponse:
        response = HttpResponse(content_type="text/csv")
        writer = csv.writer(response)
        writer.writerow(self.export_fields)
        for obj in queryset:
            writer.writerow([self.masked_value(obj, name) for name in self.export_fields])
        return response


@admin.register(models.Customer)
class CustomerAdmin(CsvExportMixin, EncryptedFieldsAdminMixin, admin.ModelAdmin):
    list_display = ["id", "email", "phone", "first_name", "last_name", "date_of_birth", "created"]
    list_filter = ["is_verified", "created"]
    search_fields = ["email", "=phone", "first_name"]
    ordering = ["email", "-created"]
    readonly_fields = ["api_secret"]
    encrypted_masks = {"api_secret": lambda value: "[API secret]"}
    export_fields = ("email", "phone", "first_name")


class PositionInline(admin.TabularInline):
    model = models.Position
    extra = 0


@admin.register(models.TradingAccount)
class TradingAccountAdmin(EncryptedModelAdmin):
    list_display = [
        "id",
        "account_number",
        "customer",
        "customer__email",
        "balance",
        "risk_profile",
        "label",
    ]
    list_filter = ["risk_profile", "label"]
    search_fields = ["account_number", "label", "customer__email"]
    list_editable = ["risk_profile", "label"]
    sortable_by = ["id", "balance", "label"]
    exclude = ["metadata"]
    inlines = [PositionInline]
