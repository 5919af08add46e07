"""Models used by the test suite: the trading and user data the library exists for."""

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


class Customer(models.Model):
    """User data: searchable, unique e-mail with an indexed token; personal details."""

    email = EncryptedSearchableString(normalize="strip+lower", unique=True)
    email_search = SearchTokenIndex("email", unique=True)
    phone = EncryptedSearchableString(max_length=32, null=True, blank=True)
    first_name = EncryptedString(max_length=50)
    last_name = EncryptedString(max_length=50, blank=True, default="")
    date_of_birth = EncryptedDate(null=True, blank=True)
    api_secret = EncryptedText(null=True, blank=True)
    notification_settings = EncryptedJSON(default=dict, blank=True)
    is_verified = EncryptedBoolean(default=False)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Customer {self.pk}"


class TradingAccount(models.Model):
    """Trading data: account number searchable without a companion column."""

    RISK_CHOICES = [("low", "Low"), ("medium", "Medium"), ("high", "High")]

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="accounts")
    account_number = EncryptedSearchableString()
    balance = EncryptedFloat(default=0.0)
    credit_limit = EncryptedDecimal(max_digits=14, decimal_places=2, null=True, blank=True)
    risk_profile = EncryptedString(max_length=10, choices=RISK_CHOICES, default="low")
    metadata = EncryptedJSON(null=True, blank=True)
    opened_on = EncryptedDate(null=True, blank=True)
    label = models.CharField(max_length=50, blank=True, default="")

    def __str__(self) -> str:
        return f"Account {self.pk}"


class Position(models.Model):
    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="positions")
    symbol = models.CharField(max_length=12)
    quantity = EncryptedInteger()
    average_price = EncryptedDecimal()
    unrealized_pnl = EncryptedFloat(null=True)


class Trade(models.Model):
    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="trades")
    symbol = models.CharField(max_length=12)
    executed_at = EncryptedDateTime()
    execution = EncryptedJSON()
    realized_pnl = EncryptedDecimal(max_digits=18, decimal_places=4, null=True)
    is_short = EncryptedBoolean(default=False)


class RiskMetric(models.Model):
    account = models.OneToOneField(TradingAccount, on_delete=models.CASCADE)
    value_at_risk = EncryptedFloat()
    exposure = EncryptedDecimal(context="risk.exposure")
    notes = EncryptedText(blank=True, default="")


class LegacyClient(models.Model):
    """A table being migrated: plaintext columns and their encrypted replacements."""

    name = models.CharField(max_length=100)
    email = models.CharField(max_length=254, null=True, blank=True)
    balance = models.CharField(max_length=20, null=True, blank=True)
    preferences = models.JSONField(null=True, blank=True)
    email_encrypted = EncryptedSearchableString(
        null=True, blank=True, normalize="lower", migrate_from="email"
    )
    email_encrypted_search = SearchTokenIndex("email_encrypted")
    balance_encrypted = EncryptedInteger(null=True, blank=True, migrate_from="balance")
    preferences_encrypted = EncryptedJSON(null=True, blank=True, migrate_from="preferences")
