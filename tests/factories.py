"""factory-boy factories for the test app (one place for all of them)."""

import datetime
import decimal

import factory

from tests.testapp import models


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Customer

    email = factory.Sequence(lambda n: f"trader{n}@alphapulse.example")
    phone = factory.Sequence(lambda n: f"+1-555-{n:07d}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    date_of_birth = factory.Faker("date_of_birth", minimum_age=18, maximum_age=90)
    api_secret = factory.Faker("sha256")
    notification_settings = factory.LazyFunction(lambda: {"email": True, "sms": False})
    is_verified = True


class TradingAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.TradingAccount

    customer = factory.SubFactory(CustomerFactory)
    account_number = factory.Sequence(lambda n: f"DE8937040044{n:010d}")
    balance = 10_500.25
    credit_limit = decimal.Decimal("50000.00")
    risk_profile = "medium"
    metadata = factory.LazyFunction(lambda: {"desk": "equities", "limits": [1, 2.5]})
    opened_on = datetime.date(2024, 1, 15)


class PositionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Position

    account = factory.SubFactory(TradingAccountFactory)
    symbol = "AAPL"
    quantity = 1200
    average_price = decimal.Decimal("187.42")
    unrealized_pnl = -1520.5


class TradeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Trade

    account = factory.SubFactory(TradingAccountFactory)
    symbol = "MSFT"
    executed_at = factory.LazyFunction(
        lambda: datetime.datetime(2026, 3, 4, 14, 30, 15, 250000, tzinfo=datetime.UTC)
    )
    execution = factory.LazyFunction(lambda: {"venue": "XNAS", "qty": 300, "price": "411.20"})
    realized_pnl = decimal.Decimal("1234.5678")
    is_short = False


class RiskMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.RiskMetric

    account = factory.SubFactory(TradingAccountFactory)
    value_at_risk = 25_000.0
    exposure = decimal.Decimal("1500000.10")
    notes = "within limits"
