"""No plaintext reaches the database, on any write path, for any field type."""

import datetime
import decimal

import pytest
from django.db import transaction

from tests.factories import CustomerFactory, TradeFactory, TradingAccountFactory
from tests.testapp.models import Customer, Position, RiskMetric, Trade, TradingAccount

from .conftest import assert_no_plaintext, raw_row

pytestmark = pytest.mark.django_db

SECRETS = {
    "email": "zeta.secret@alphapulse.example",
    "phone": "+44-7700-900123",
    "first_name": "Zebedee",
    "last_name": "Quartermaine",
    "date_of_birth": datetime.date(1971, 2, 3),
    "api_secret": "sk_live_SECRETSECRET",
    "notification_settings": {"channel": "pager-xyz", "threshold": 98765},
    "is_verified": True,
}
ACCOUNT = {
    "account_number": "GB29NWBK60161331926819",
    "balance": 987654.321,
    "credit_limit": decimal.Decimal("76543.21"),
    "risk_profile": "high",
    "metadata": {"desk": "fx-exotics-77"},
    "opened_on": datetime.date(2019, 9, 9),
}
PLAINTEXT_MARKERS = [
    "zeta.secret",
    "7700-900123",
    "Zebedee",
    "Quartermaine",
    "1971-02-03",
    "SECRETSECRET",
    "pager-xyz",
    "98765",
    "GB29NWBK60161331926819",
    "987654.321",
    "76543.21",
    "fx-exotics-77",
    "2019-09-09",
]


def _account(**overrides):
    customer = Customer.objects.create(**SECRETS)
    return TradingAccount(customer=customer, **{**ACCOUNT, **overrides})


def test_save_and_create_store_only_ciphertext():
    account = _account()
    account.save()
    assert_no_plaintext(Customer, account.customer_id, PLAINTEXT_MARKERS)
    assert_no_plaintext(TradingAccount, account.pk, PLAINTEXT_MARKERS)


def test_every_type_round_trips_through_the_database():
    account = _account()
    account.save()
    customer = Customer.objects.get(pk=account.customer_id)
    for name, value in SECRETS.items():
        assert getattr(customer, name) == value, name
        assert type(getattr(customer, name)) is type(value), name
    loaded = TradingAccount.objects.get(pk=account.pk)
    for name, value in ACCOUNT.items():
        assert getattr(loaded, name) == value, name
        assert type(getattr(loaded, name)) is type(value), name


def test_bulk_create_stores_ciphertext():
    customer = CustomerFactory()
    objs = TradingAccount.objects.bulk_create(
        [TradingAccount(customer=customer, **ACCOUNT) for _ in range(3)]
    )
    for obj in TradingAccount.objects.filter(customer=customer):
        assert_no_plaintext(TradingAccount, obj.pk, PLAINTEXT_MARKERS)
        assert obj.balance == ACCOUNT["balance"]
    assert len(objs) == 3


def test_bulk_update_encrypts_the_value_not_the_case_expression():
    accounts = [TradingAccountFactory() for _ in range(3)]
    for i, account in enumerate(accounts):
        account.balance = 1000.5 + i
        account.metadata = {"n": i, "desk": "fx-exotics-77"}
        account.account_number = f"GB29NWBK6016133192681{i}"
    TradingAccount.objects.bulk_update(accounts, ["balance", "metadata", "account_number"])
    for i, account in enumerate(accounts):
        assert_no_plaintext(TradingAccount, account.pk, ["fx-exotics-77", "GB29NWBK"])
        stored = raw_row(TradingAccount, account.pk)["balance"]
        assert "CASE" not in stored and "WHEN" not in stored
        loaded = TradingAccount.objects.get(pk=account.pk)
        assert loaded.balance == 1000.5 + i
        assert loaded.metadata == {"n": i, "desk": "fx-exotics-77"}
        assert TradingAccount.objects.get(account_number=f"GB29NWBK6016133192681{i}") == loaded


def test_queryset_update_with_python_values_stores_ciphertext():
    account = TradingAccountFactory()
    TradingAccount.objects.filter(pk=account.pk).update(
        balance=987654.321, metadata={"desk": "fx-exotics-77"}, account_number="GB29NWBK6016"
    )
    assert_no_plaintext(TradingAccount, account.pk, ["987654.321", "fx-exotics-77", "GB29NWBK"])
    account.refresh_from_db()
    assert account.balance == 987654.321
    assert TradingAccount.objects.filter(account_number="GB29NWBK6016").get() == account


def test_update_or_create_and_get_or_create_store_ciphertext():
    customer, created = Customer.objects.get_or_create(
        email="zeta.secret@alphapulse.example", defaults={"first_name": "Zebedee"}
    )
    assert created
    again, created = Customer.objects.get_or_create(email="ZETA.secret@alphapulse.example")
    assert not created and again.pk == customer.pk
    updated, created = Customer.objects.update_or_create(
        email="zeta.secret@alphapulse.example", defaults={"last_name": "Quartermaine"}
    )
    assert not created and updated.pk == customer.pk
    assert_no_plaintext(Customer, customer.pk, ["zeta.secret", "Zebedee", "Quartermaine"])
    assert Customer.objects.get(pk=customer.pk).last_name == "Quartermaine"


def test_queryset_update_from_a_database_expression_is_refused():
    from django.core.exceptions import FieldError
    from django.db.models import F, Value

    account = TradingAccountFactory()
    with pytest.raises(FieldError, match=r"balance.*database expression"), transaction.atomic():
        TradingAccount.objects.update(balance=F("balance") + 1)
    with pytest.raises(FieldError, match="risk_profile"), transaction.atomic():
        TradingAccount.objects.update(risk_profile=F("label"))
    with pytest.raises(FieldError, match="balance"), transaction.atomic():
        TradingAccount.objects.update(balance=Value(5.0))
    account.refresh_from_db()
    assert account.balance == 10_500.25


@pytest.mark.parametrize(
    ("value", "field"),
    [("", "last_name"), (0.0, "balance"), (False, "is_verified"), (0, "quantity")],
)
def test_empty_zero_and_false_are_encrypted_not_null(value, field):
    if field == "quantity":
        obj = Position.objects.create(
            account=TradingAccountFactory(), symbol="X", quantity=0, average_price=0
        )
        model = Position
    elif field == "balance":
        obj = TradingAccountFactory(balance=value)
        model = TradingAccount
    else:
        obj = CustomerFactory(**{field: value})
        model = Customer
    stored = raw_row(model, obj.pk)[model._meta.get_field(field).column]
    assert stored is not None and stored.startswith("ape:")
    reloaded = model.objects.get(pk=obj.pk)
    assert getattr(reloaded, field) == value
    assert type(getattr(reloaded, field)) is type(value)


def test_none_stays_null():
    customer = CustomerFactory(phone=None, date_of_birth=None, api_secret=None)
    row = raw_row(Customer, customer.pk)
    assert row["phone"] is None and row["date_of_birth"] is None and row["api_secret"] is None
    assert Customer.objects.filter(phone__isnull=True).get() == customer
    assert not Customer.objects.filter(phone__isnull=False).exists()


def test_aware_datetime_keeps_its_offset_and_naive_ones_follow_django():
    tz = datetime.timezone(datetime.timedelta(hours=9))
    when = datetime.datetime(2026, 5, 6, 7, 8, 9, tzinfo=tz)
    trade = TradeFactory(executed_at=when)
    loaded = Trade.objects.get(pk=trade.pk)
    assert loaded.executed_at == when
    assert loaded.executed_at.utcoffset() == datetime.timedelta(hours=9)


def test_decimal_is_quantized_like_a_database_column():
    account = TradingAccountFactory(credit_limit=decimal.Decimal("12.5"))
    assert TradingAccount.objects.get(pk=account.pk).credit_limit == decimal.Decimal("12.50")
    assert str(TradingAccount.objects.get(pk=account.pk).credit_limit) == "12.50"


def test_risk_metric_uses_explicit_context():
    metric = RiskMetric.objects.create(
        account=TradingAccountFactory(), value_at_risk=1.5, exposure=decimal.Decimal("2.25")
    )
    from alphapulse_encryption import decrypt_field

    stored = raw_row(RiskMetric, metric.pk)["exposure"]
    assert decrypt_field(stored, context="risk.exposure") == decimal.Decimal("2.25")
    stored_var = raw_row(RiskMetric, metric.pk)["value_at_risk"]
    assert decrypt_field(stored_var, context="testapp.riskmetric.value_at_risk") == 1.5


def test_ciphertext_moved_to_another_column_fails_to_decrypt():
    from alphapulse_encryption import DecryptionError

    customer = CustomerFactory(first_name="Alpha", last_name="Omega")
    row = raw_row(Customer, customer.pk)
    Customer.objects.filter(pk=customer.pk).update()  # no-op, keeps row
    from django.db import connection

    table = connection.ops.quote_name("testapp_customer")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {connection.ops.quote_name('last_name')} = %s WHERE id = %s",
            [row["first_name"], customer.pk],
        )
    loaded = Customer.objects.get(pk=customer.pk)
    assert loaded.first_name == "Alpha"
    with pytest.raises(DecryptionError) as info:
        _ = loaded.last_name
    assert info.value.reason == "authentication_failed"
    assert f"testapp.Customer.last_name (pk={customer.pk})" in str(info.value)
    assert "Alpha" not in str(info.value)


def _trade_values(marker: int) -> dict:
    return {
        "executed_at": datetime.datetime(2031, 7, 8, 9, 10, 11, tzinfo=datetime.UTC),
        "execution": {"venue": f"VENUE-{marker}", "qty": 4242},
        "realized_pnl": decimal.Decimal(f"{marker}.1234"),
        "is_short": True,
    }


TRADE_MARKERS = ["2031-07-08", "VENUE-", "4242"]


@pytest.mark.parametrize(
    "write", ["save", "create", "bulk_create", "bulk_update", "update", "update_or_create"]
)
def test_datetime_int_json_decimal_bool_store_ciphertext_on_every_write_path(write):
    account = TradingAccountFactory()
    values = _trade_values(909090)
    if write == "save":
        trade = Trade(account=account, symbol="X", **values)
        trade.save()
    elif write == "create":
        trade = Trade.objects.create(account=account, symbol="X", **values)
    elif write == "bulk_create":
        Trade.objects.bulk_create([Trade(account=account, symbol="X", **values)])
        trade = Trade.objects.get(account=account)
    elif write == "bulk_update":
        trade = TradeFactory(account=account)
        for name, value in values.items():
            setattr(trade, name, value)
        Trade.objects.bulk_update([trade], list(values))
    elif write == "update":
        trade = TradeFactory(account=account)
        Trade.objects.filter(pk=trade.pk).update(**values)
    else:
        trade, _ = Trade.objects.update_or_create(account=account, symbol="X", defaults=values)
    assert_no_plaintext(Trade, trade.pk, [*TRADE_MARKERS, "909090"])
    loaded = Trade.objects.get(pk=trade.pk)
    for name, value in values.items():
        assert getattr(loaded, name) == value, name

    position = Position.objects.create(
        account=account, symbol="Y", quantity=31415926, average_price=decimal.Decimal("2.7182")
    )
    Position.objects.filter(pk=position.pk).update(quantity=27182818)
    assert_no_plaintext(Position, position.pk, ["27182818", "2.7182"])
    assert Position.objects.get(pk=position.pk).quantity == 27182818


def test_bulk_create_keeps_djangos_fast_insert_path():
    """Encrypted fields define no get_placeholder(), so PostgreSQL can use UNNEST."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    customer = CustomerFactory()
    with CaptureQueriesContext(connection) as ctx:
        TradingAccount.objects.bulk_create(
            [TradingAccount(customer=customer, account_number=f"N{i}") for i in range(5)]
        )
    assert TradingAccount.objects.filter(account_number="N3").count() == 1
    insert = next(q["sql"] for q in ctx.captured_queries if q["sql"].startswith("INSERT"))
    if connection.vendor == "postgresql":
        assert "UNNEST" in insert


def test_a_refused_update_leaves_the_transaction_usable():
    from django.core.exceptions import FieldError
    from django.db.models import F

    account = TradingAccountFactory()
    with transaction.atomic():
        with pytest.raises(FieldError):
            TradingAccount.objects.update(balance=F("balance") + 1)
        # Refused before any SQL ran: the transaction is not marked for rollback.
        assert TradingAccount.objects.get(pk=account.pk).balance == 10_500.25


def test_saving_an_expression_assigned_to_an_encrypted_attribute_is_refused():
    from django.core.exceptions import FieldError
    from django.db.models import F

    account = TradingAccountFactory()
    account.balance = F("balance") + 1
    with pytest.raises(FieldError, match="balance"), transaction.atomic():
        account.save()


def test_the_refusal_of_an_expression_does_not_repeat_the_assigned_value():
    from django.core.exceptions import FieldError
    from django.db.models import Value

    TradingAccountFactory()
    with pytest.raises(FieldError) as info:
        TradingAccount.objects.update(risk_profile=Value("top-secret-profile"))
    assert "top-secret-profile" not in str(info.value)
    assert "Value()" in str(info.value)


def test_saving_a_plaintext_column_expression_into_an_encrypted_field_is_refused():
    from django.core.exceptions import FieldError
    from django.db.models import F

    account = TradingAccountFactory(label="plain-label")
    account.risk_profile = F("label")
    with pytest.raises(FieldError, match="risk_profile"), transaction.atomic():
        account.save()
    assert "plain-label" not in raw_row(TradingAccount, account.pk)["risk_profile"]
