"""The trading back office's models: every encrypted field type, plus a legacy table whose
plaintext columns are being migrated to encrypted ones."""

from django.db import models

from alphapulse_encryption.fields import (
    EncryptedBoolean,
    EncryptedDate,
    EncryptedDateTime,
    EncryptedDecimal,
    EncryptedFloat,
    EncryptedInteger,
    EncryptedJSON,
    EncryptedSearchableString,
    EncryptedString,
    EncryptedText,
    SearchTokenIndex,
)


class UserProfile(models.Model):
    """A client's personal data: searchable unique e-mail, phone, names, DOB, API key."""

    email = EncryptedSearchableString(normalize="strip+lower", unique=True)
    email_search = SearchTokenIndex("email", unique=True)
    phone = EncryptedSearchableString(normalize="strip", null=True, blank=True)
    phone_search = SearchTokenIndex("phone")
    first_name = EncryptedString(max_length=60)
    last_name = EncryptedString(max_length=60)
    date_of_birth = EncryptedDate(null=True, blank=True)
    api_key = EncryptedText(blank=True, default="")
    notification_settings = EncryptedJSON(default=dict, blank=True)
    is_verified = EncryptedBoolean(default=False)
    country = models.CharField(max_length=2, default="US")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"UserProfile #{self.pk}"


class TradingAccount(models.Model):
    RISK_PROFILES = [
        ("conservative", "Conservative"),
        ("balanced", "Balanced"),
        ("aggressive", "Aggressive"),
    ]

    owner = models.ForeignKey(UserProfile, on_delete=models.CASCADE, related_name="accounts")
    account_number = EncryptedSearchableString(normalize="strip")
    account_number_search = SearchTokenIndex("account_number", unique=True)
    balance = EncryptedDecimal(max_digits=18, decimal_places=2, default=0)
    credit_limit = EncryptedFloat(null=True, blank=True)
    risk_profile = EncryptedString(max_length=20, choices=RISK_PROFILES, default="balanced")
    metadata = EncryptedJSON(default=dict, blank=True)
    opened_on = EncryptedDate(null=True, blank=True)
    base_currency = models.CharField(max_length=3, default="USD")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"TradingAccount #{self.pk}"


class Position(models.Model):
    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="positions")
    symbol = models.CharField(max_length=12)
    quantity = EncryptedInteger()
    average_price = EncryptedDecimal(max_digits=18, decimal_places=4)
    unrealized_pnl = EncryptedFloat(null=True, blank=True)
    opened_at = EncryptedDateTime(null=True, blank=True)

    class Meta:
        ordering = ["account_id", "symbol"]

    def __str__(self) -> str:
        return f"{self.symbol} position #{self.pk}"


class Trade(models.Model):
    SIDES = [("buy", "Buy"), ("sell", "Sell")]

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="trades")
    symbol = models.CharField(max_length=12)
    side = models.CharField(max_length=4, choices=SIDES)
    executed_at = EncryptedDateTime()
    execution = EncryptedJSON()
    realized_pnl = EncryptedDecimal(max_digits=18, decimal_places=4, null=True, blank=True)
    is_short = EncryptedBoolean(default=False)
    booked_on = models.DateField()

    class Meta:
        ordering = ["-booked_on", "id"]

    def __str__(self) -> str:
        return f"{self.side} {self.symbol} #{self.pk}"


class PnLSnapshot(models.Model):
    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="pnl")
    as_of = models.DateField()
    realized = EncryptedDecimal(max_digits=18, decimal_places=2)
    unrealized = EncryptedDecimal(max_digits=18, decimal_places=2)
    equity = EncryptedFloat()
    breakdown = EncryptedJSON(default=dict, blank=True)

    class Meta:
        ordering = ["account_id", "-as_of"]
        # Django would derive "pn l snapshot" from the class name.
        verbose_name = "P&L snapshot"
        verbose_name_plural = "P&L snapshots"
        constraints = [
            models.UniqueConstraint(fields=["account", "as_of"], name="unique_pnl_per_day"),
        ]

    def __str__(self) -> str:
        return f"P&L {self.as_of} #{self.pk}"


class RiskMetric(models.Model):
    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="risk")
    computed_at = models.DateTimeField()
    value_at_risk = EncryptedFloat()
    expected_shortfall = EncryptedFloat()
    leverage = EncryptedDecimal(max_digits=8, decimal_places=3)
    max_drawdown = EncryptedFloat()
    limit_breached = EncryptedBoolean(default=False)
    notes = EncryptedText(blank=True, default="")

    class Meta:
        ordering = ["account_id", "-computed_at"]

    def __str__(self) -> str:
        return f"Risk {self.computed_at:%Y-%m-%d} #{self.pk}"


class LegacyClient(models.Model):
    """A table from before encryption, half-way through ``encrypt_migrate``.

    The plaintext columns are the original ones. Each has an encrypted twin declared with
    ``migrate_from=``: the state after step 1 (``--add-columns``), whose migration
    (0002) is committed. Seeded rows hold plaintext only, as rows written before the
    twins existed; the demo runs steps 2 to 5 on them (see docs/migration.md).
    """

    full_name = models.CharField(max_length=120)
    email = models.CharField(max_length=254)
    tax_id = models.CharField(max_length=20)
    credit_score = models.IntegerField()
    preferences = models.JSONField(default=dict, blank=True)

    full_name_encrypted = EncryptedString(
        "full name", max_length=120, null=True, blank=True, migrate_from="full_name"
    )
    email_encrypted = EncryptedSearchableString(
        "e-mail", normalize="strip+lower", null=True, blank=True, migrate_from="email"
    )
    email_encrypted_search = SearchTokenIndex("email_encrypted")
    tax_id_encrypted = EncryptedString(
        "tax id", max_length=20, null=True, blank=True, migrate_from="tax_id"
    )
    credit_score_encrypted = EncryptedInteger(
        "credit score", null=True, blank=True, migrate_from="credit_score"
    )
    preferences_encrypted = EncryptedJSON(
        "preferences", null=True, blank=True, migrate_from="preferences"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"LegacyClient #{self.pk}"
