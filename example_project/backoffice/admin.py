"""A plain admin over the back office.

Encrypted fields cannot be ordered, filtered or searched by the database (it only sees
ciphertext), so ``sortable_by``, ``list_filter`` and ``search_fields`` name plaintext
columns only. Exact-match search on an e-mail works through the ORM, not the admin's
``icontains`` search.
"""

from django.contrib import admin

from . import models


@admin.register(models.UserProfile)
class UserProfileAdmin(admin.ModelAdmin):
    list_display = ["id", "email", "first_name", "last_name", "country", "created_at"]
    sortable_by = ["id", "country", "created_at"]
    list_filter = ["country"]


class PositionInline(admin.TabularInline):
    model = models.Position
    extra = 0


@admin.register(models.TradingAccount)
class TradingAccountAdmin(admin.ModelAdmin):
    list_display = ["id", "account_number", "owner", "balance", "base_currency", "is_active"]
    sortable_by = ["id", "base_currency", "is_active"]
    list_filter = ["base_currency", "is_active"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    inlines = [PositionInline]


@admin.register(models.Position)
class PositionAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "symbol", "quantity", "average_price"]
    sortable_by = ["id", "symbol"]
    search_fields = ["symbol"]
    raw_id_fields = ["account"]


@admin.register(models.Trade)
class TradeAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "symbol", "side", "executed_at", "realized_pnl", "is_short"]
    sortable_by = ["id", "symbol", "side"]
    list_filter = ["side", "booked_on"]
    search_fields = ["symbol"]
    raw_id_fields = ["account"]


@admin.register(models.PnLSnapshot)
class PnLSnapshotAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "as_of", "realized", "unrealized", "equity"]
    sortable_by = ["id", "as_of"]
    date_hierarchy = "as_of"
    raw_id_fields = ["account"]


@admin.register(models.RiskMetric)
class RiskMetricAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "computed_at", "value_at_risk", "leverage", "limit_breached"]
    sortable_by = ["id", "computed_at"]
    raw_id_fields = ["account"]


@admin.register(models.LegacyClient)
class LegacyClientAdmin(admin.ModelAdmin):
    list_display = ["id", "full_name", "email", "credit_score"]
    search_fields = ["full_name", "email"]
