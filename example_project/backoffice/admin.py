"""The back office admin, masked: encrypted fields show as ``a***@e***.com``, ``****1234``
or ``••••``, and a user with the reveal permission reveals one field at a time, each
reveal recorded in the audit log (see docs/admin.md).

The database cannot order, filter or search ciphertext: the mixin leaves encrypted fields
out of sorting and filters, and searches the searchable ones (e-mail, phone, account
number) by exact match through their search token.
"""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from alphapulse_encryption.admin import EncryptedModelAdmin

from . import models


@admin.register(models.UserProfile)
class UserProfileAdmin(EncryptedModelAdmin):
    list_display = ["id", "email", "phone", "first_name", "last_name", "country"]
    list_filter = ["country"]
    search_fields = ["email", "phone"]
    encrypted_masks = {
        "api_key": lambda value: f"{value[:8]}…" if value.startswith("ak_") else "••••"
    }


class PositionInline(admin.TabularInline):
    model = models.Position
    extra = 0


@admin.register(models.TradingAccount)
class TradingAccountAdmin(EncryptedModelAdmin):
    list_display = ["id", "account_number", "owner", "balance", "base_currency", "is_active"]
    list_filter = ["base_currency", "is_active"]
    search_fields = ["account_number", "owner__email"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    inlines = [PositionInline]  # masked too: the mixin wraps its inlines


@admin.register(models.Position)
class PositionAdmin(EncryptedModelAdmin):
    list_display = ["id", "account", "symbol", "quantity", "average_price"]
    search_fields = ["symbol"]
    raw_id_fields = ["account"]


@admin.register(models.Trade)
class TradeAdmin(EncryptedModelAdmin):
    list_display = ["id", "account", "symbol", "side", "executed_at", "realized_pnl", "is_short"]
    list_filter = ["side", "booked_on"]
    search_fields = ["symbol"]
    raw_id_fields = ["account"]


@admin.register(models.PnLSnapshot)
class PnLSnapshotAdmin(EncryptedModelAdmin):
    list_display = ["id", "account", "as_of", "realized", "unrealized", "equity"]
    date_hierarchy = "as_of"
    raw_id_fields = ["account"]


@admin.register(models.RiskMetric)
class RiskMetricAdmin(EncryptedModelAdmin):
    list_display = ["id", "account", "computed_at", "value_at_risk", "leverage", "limit_breached"]
    raw_id_fields = ["account"]


@admin.register(models.LegacyClient)
class LegacyClientAdmin(EncryptedModelAdmin):
    """The legacy table through its encrypted twins only, read-only.

    It never reads the plaintext columns, so it works while they exist and after
    ``encrypt_migrate --drop-unencrypted`` has dropped them but before the model code
    is edited to match (the state the demo leaves the database in). Read-only, because
    while the plaintext columns exist they stay the source of truth.
    """

    list_display = ["id", "full_name_encrypted", "email_encrypted", "credit_score_encrypted"]
    search_fields = ["email_encrypted"]  # exact match, through the search token
    fields = [
        "full_name_encrypted",
        "email_encrypted",
        "tax_id_encrypted",
        "credit_score_encrypted",
        "preferences_encrypted",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[models.LegacyClient]:
        plaintext = [
            getattr(field, "migrate_from", None) for field in self.model._meta.concrete_fields
        ]
        return super().get_queryset(request).defer(*filter(None, plaintext))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: models.LegacyClient | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: models.LegacyClient | None = None
    ) -> bool:
        return False
