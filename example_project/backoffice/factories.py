"""factory-boy factories with realistic trading data, used by ``seed_demo`` and the demo."""

from __future__ import annotations

import datetime
import decimal
import random

import factory
from django.utils import timezone
from faker import Faker

from . import models

SYMBOLS = {
    "AAPL": 187.42,
    "MSFT": 411.20,
    "NVDA": 875.30,
    "AMZN": 178.15,
    "GOOGL": 152.60,
    "META": 495.10,
    "JPM": 198.75,
    "XOM": 113.40,
    "TSLA": 172.80,
    "BRK.B": 408.55,
}
VENUES = ["XNAS", "XNYS", "ARCX", "BATS", "IEXG"]
CURRENCIES = ["USD", "USD", "USD", "EUR", "GBP", "CHF"]

fake = Faker()


def _money(value: float, places: str = "0.01") -> decimal.Decimal:
    return decimal.Decimal(str(value)).quantize(decimal.Decimal(places))


class UserProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.UserProfile

    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    # A sequence keeps e-mails unique however many profiles are created.
    email = factory.LazyAttributeSequence(
        lambda o, n: f"{o.first_name}.{o.last_name}{n}@{fake.free_email_domain()}".lower()
    )
    phone = factory.Faker("phone_number")
    date_of_birth = factory.Faker("date_of_birth", minimum_age=21, maximum_age=85)
    api_key = factory.LazyFunction(lambda: f"ak_live_{fake.sha256()[:40]}")
    notification_settings = factory.LazyFunction(
        lambda: {
            "email": True,
            "sms": random.random() < 0.4,
            "push": random.random() < 0.7,
            "margin_call_threshold": round(random.uniform(0.2, 0.5), 2),
            "daily_digest": random.choice(["07:00", "08:30", "18:00"]),
        }
    )
    is_verified = factory.LazyFunction(lambda: random.random() < 0.85)
    country = factory.Faker("country_code")


class TradingAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.TradingAccount

    owner = factory.SubFactory(UserProfileFactory)
    account_number = factory.Sequence(lambda n: f"{fake.iban()[:12]}{n:010d}")
    balance = factory.LazyFunction(lambda: _money(random.lognormvariate(11, 1.2)))
    credit_limit = factory.LazyFunction(
        lambda: random.choice([None, 50_000.0, 100_000.0, 250_000.0, 1_000_000.0])
    )
    risk_profile = factory.LazyFunction(
        lambda: random.choice([choice for choice, _ in models.TradingAccount.RISK_PROFILES])
    )
    metadata = factory.LazyFunction(
        lambda: {
            "desk": random.choice(["equities", "macro", "quant", "retail"]),
            "margin": random.random() < 0.5,
            "tier": random.randint(1, 3),
            "advisor": fake.name(),
        }
    )
    opened_on = factory.Faker("date_between", start_date="-8y", end_date="-30d")
    base_currency = factory.LazyFunction(lambda: random.choice(CURRENCIES))


class PositionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Position

    account = factory.SubFactory(TradingAccountFactory)
    symbol = factory.LazyFunction(lambda: random.choice(list(SYMBOLS)))
    quantity = factory.LazyFunction(lambda: random.choice([1, -1]) * random.randint(1, 50) * 100)
    average_price = factory.LazyAttribute(
        lambda o: _money(SYMBOLS[o.symbol] * random.uniform(0.8, 1.1), "0.0001")
    )
    unrealized_pnl = factory.LazyAttribute(
        lambda o: round(o.quantity * float(o.average_price) * random.uniform(-0.15, 0.2), 2)
    )
    opened_at = factory.Faker("date_time_between", start_date="-2y", tzinfo=datetime.UTC)


class TradeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Trade

    account = factory.SubFactory(TradingAccountFactory)
    symbol = factory.LazyFunction(lambda: random.choice(list(SYMBOLS)))
    side = factory.LazyFunction(lambda: random.choice(["buy", "sell"]))
    executed_at = factory.Faker("date_time_between", start_date="-90d", tzinfo=datetime.UTC)
    execution = factory.LazyAttribute(
        lambda o: {
            "venue": random.choice(VENUES),
            "order_id": fake.uuid4(),
            "qty": random.randint(1, 20) * 50,
            "price": str(_money(SYMBOLS[o.symbol] * random.uniform(0.97, 1.03), "0.0001")),
            "fees": str(_money(random.uniform(0.5, 25.0))),
            "fills": random.randint(1, 4),
        }
    )
    realized_pnl = factory.LazyAttribute(
        lambda o: _money(random.gauss(0, 2_500), "0.0001") if o.side == "sell" else None
    )
    is_short = factory.LazyFunction(lambda: random.random() < 0.15)
    booked_on = factory.LazyAttribute(lambda o: o.executed_at.date())


class PnLSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.PnLSnapshot

    account = factory.SubFactory(TradingAccountFactory)
    as_of = factory.Sequence(lambda n: timezone.now().date() - datetime.timedelta(days=n))
    realized = factory.LazyFunction(lambda: _money(random.gauss(0, 12_000)))
    unrealized = factory.LazyFunction(lambda: _money(random.gauss(0, 30_000)))
    equity = factory.LazyFunction(lambda: round(random.lognormvariate(12, 1.0), 2))
    breakdown = factory.LazyFunction(
        lambda: {
            symbol: round(random.gauss(0, 3_000), 2) for symbol in random.sample(list(SYMBOLS), 3)
        }
    )


class RiskMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.RiskMetric

    account = factory.SubFactory(TradingAccountFactory)
    computed_at = factory.Faker("date_time_between", start_date="-30d", tzinfo=datetime.UTC)
    value_at_risk = factory.LazyFunction(lambda: round(random.lognormvariate(9, 1.0), 2))
    expected_shortfall = factory.LazyAttribute(
        lambda o: round(o.value_at_risk * random.uniform(1.2, 1.6), 2)
    )
    leverage = factory.LazyFunction(lambda: _money(random.uniform(0.5, 6.0), "0.001"))
    max_drawdown = factory.LazyFunction(lambda: round(random.uniform(0.01, 0.35), 4))
    limit_breached = factory.LazyAttribute(lambda o: o.leverage > 5)
    notes = factory.LazyAttribute(
        lambda o: "Leverage above the 5x desk limit." if o.limit_breached else ""
    )


class LegacyClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.LegacyClient

    full_name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"legacy{n}@{fake.free_email_domain()}")
    tax_id = factory.Faker("ssn")
    credit_score = factory.LazyFunction(lambda: random.randint(300, 850))
    preferences = factory.LazyFunction(
        lambda: {"statements": random.choice(["paper", "email"]), "language": "en"}
    )
