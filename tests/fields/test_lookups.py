"""Lookups and ordering the database cannot answer on ciphertext fail loudly."""

import pytest
from django.core.exceptions import FieldError

from tests.factories import TradingAccountFactory
from tests.testapp.models import Customer, Trade, TradingAccount

pytestmark = pytest.mark.django_db

UNSUPPORTED = [
    (TradingAccount, "balance", "gt", 5),
    (TradingAccount, "balance", "exact", 5.0),
    (TradingAccount, "balance", "range", (1, 2)),
    (TradingAccount, "risk_profile", "contains", "hi"),
    (TradingAccount, "risk_profile", "icontains", "hi"),
    (TradingAccount, "risk_profile", "startswith", "h"),
    (TradingAccount, "risk_profile", "in", ["high"]),
    (Customer, "email", "contains", "example"),
    (Customer, "email", "startswith", "a"),
    (Customer, "email", "gt", "a"),
    (Customer, "first_name", "exact", "Ann"),
    (Trade, "executed_at", "year", 2026),
    (Trade, "executed_at", "date", "2026-01-01"),
    (Trade, "execution", "venue", "XNAS"),
    (Trade, "execution", "has_key", "venue"),
    (Customer, "email_search", "startswith", "apt1"),
]


@pytest.mark.parametrize(
    ("model", "field", "lookup", "value"), UNSUPPORTED, ids=lambda v: str(v)[:20]
)
def test_unsupported_lookup_raises_naming_model_field_and_lookup(model, field, lookup, value):
    TradingAccountFactory()
    with pytest.raises(FieldError) as info:
        list(model.objects.filter(**{f"{field}__{lookup}": value}))
    message = str(info.value)
    assert model._meta.label in message
    assert f"'{field}'" in message
    assert lookup in message


@pytest.mark.parametrize("ordering", ["balance", "-balance", "account_number", "metadata"])
def test_order_by_an_encrypted_field_raises(ordering):
    TradingAccountFactory()
    with pytest.raises(FieldError, match="order_by") as info:
        list(TradingAccount.objects.order_by(ordering))
    assert ordering.lstrip("-") in str(info.value)


def test_order_by_expression_on_an_encrypted_field_raises():
    from django.db.models import F

    with pytest.raises(FieldError, match="order_by"):
        list(TradingAccount.objects.order_by(F("balance").desc()))


def test_order_by_a_plain_field_still_works():
    a = TradingAccountFactory(label="b")
    b = TradingAccountFactory(label="a")
    assert list(TradingAccount.objects.order_by("label")) == [b, a]
    assert [x.balance for x in TradingAccount.objects.order_by("-label")] == [a.balance, b.balance]
