"""The encrypted fields behave like Django fields across the ORM, forms and serializers."""

import datetime
import decimal
import json
from io import StringIO

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection

from alphapulse_encryption import DecryptionError
from alphapulse_encryption.fields import EncryptedSearchableString, EncryptedString
from tests.factories import (
    CustomerFactory,
    PositionFactory,
    RiskMetricFactory,
    TradeFactory,
    TradingAccountFactory,
)
from tests.testapp.models import Customer, Position, Trade, TradingAccount

from .conftest import raw_row

pytestmark = pytest.mark.django_db


def test_values_and_values_list_return_plaintext():
    account = TradingAccountFactory(balance=12.5, metadata={"k": [1, 2]})
    assert list(TradingAccount.objects.values("balance", "metadata")) == [
        {"balance": 12.5, "metadata": {"k": [1, 2]}}
    ]
    assert list(TradingAccount.objects.values_list("account_number", flat=True)) == [
        account.account_number
    ]
    assert list(
        TradingAccount.objects.filter(pk=account.pk).values_list("customer__email", "balance")
    ) == [(account.customer.email, 12.5)]


def test_only_defer_and_refresh_from_db():
    account = TradingAccountFactory(balance=7.25)
    deferred = TradingAccount.objects.defer("balance").get(pk=account.pk)
    assert "balance" in deferred.get_deferred_fields()
    assert deferred.balance == 7.25
    only = TradingAccount.objects.only("label").get(pk=account.pk)
    assert only.metadata == account.metadata
    TradingAccount.objects.filter(pk=account.pk).update(balance=99.0)
    account.refresh_from_db(fields=["balance"])
    assert account.balance == 99.0


def test_saving_a_model_with_deferred_encrypted_fields_keeps_them():
    account = TradingAccountFactory(balance=7.25)
    partial = TradingAccount.objects.only("label").get(pk=account.pk)
    partial.label = "renamed"
    partial.save()
    assert TradingAccount.objects.get(pk=account.pk).balance == 7.25


def test_select_related_and_prefetch_related():
    account = TradingAccountFactory()
    PositionFactory(account=account, quantity=5)
    PositionFactory(account=account, quantity=7)
    RiskMetricFactory(account=account, value_at_risk=3.5)
    position = Position.objects.select_related("account__customer").get(
        quantity__isnull=False, pk=account.positions.first().pk
    )
    assert position.account.customer.email == account.customer.email
    prefetched = TradingAccount.objects.prefetch_related("positions").get(pk=account.pk)
    assert sorted(p.quantity for p in prefetched.positions.all()) == [5, 7]
    assert TradingAccount.objects.select_related("riskmetric").get().riskmetric.value_at_risk == 3.5


def test_model_form_round_trip_with_plaintext_initial_values():
    class AccountForm(forms.ModelForm):
        class Meta:
            model = TradingAccount
            fields = ["account_number", "balance", "credit_limit", "risk_profile", "metadata"]

    account = TradingAccountFactory(balance=10.0, credit_limit=decimal.Decimal("5.00"))
    form = AccountForm(instance=account)
    html = form.as_p()
    assert account.account_number in html  # the form shows plaintext, never ciphertext
    assert "ape:" not in html
    assert isinstance(form.fields["balance"], forms.FloatField)
    assert isinstance(form.fields["credit_limit"], forms.DecimalField)
    assert isinstance(form.fields["risk_profile"], forms.TypedChoiceField)
    bound = AccountForm(
        instance=account,
        data={
            "account_number": "NEW-123",
            "balance": "11.5",
            "credit_limit": "6.25",
            "risk_profile": "high",
            "metadata": '{"x": 1}',
        },
    )
    assert bound.is_valid(), bound.errors
    bound.save()
    fresh = TradingAccount.objects.get(pk=account.pk)
    assert (fresh.account_number, fresh.balance, fresh.credit_limit, fresh.metadata) == (
        "NEW-123",
        11.5,
        decimal.Decimal("6.25"),
        {"x": 1},
    )


def test_full_clean_validates_the_plaintext():
    customer = CustomerFactory.build(first_name="x" * 51, email="ok@example.com")
    with pytest.raises(ValidationError) as info:
        customer.full_clean()
    assert "first_name" in info.value.message_dict
    account = TradingAccountFactory.build(risk_profile="extreme", customer=CustomerFactory())
    with pytest.raises(ValidationError) as info:
        account.full_clean()
    assert "risk_profile" in info.value.message_dict
    account = TradingAccountFactory.build(
        credit_limit=decimal.Decimal("1234567890123.45"), customer=CustomerFactory()
    )
    with pytest.raises(ValidationError) as info:
        account.full_clean()
    assert "credit_limit" in info.value.message_dict


def test_defaults_and_choices():
    customer = Customer.objects.create(email="d@example.com", first_name="D")
    fresh = Customer.objects.get(pk=customer.pk)
    assert fresh.notification_settings == {}
    assert fresh.is_verified is False
    assert fresh.last_name == ""
    account = TradingAccount.objects.create(customer=customer, account_number="N1")
    fresh_account = TradingAccount.objects.get(pk=account.pk)
    assert fresh_account.risk_profile == "low"
    assert fresh_account.get_risk_profile_display() == "Low"
    assert fresh_account.balance == 0.0


def test_dumpdata_writes_ciphertext_and_loaddata_restores_it(tmp_path):
    account = TradingAccountFactory(
        balance=424242.5,
        credit_limit=decimal.Decimal("31337.00"),
        opened_on=datetime.date(2011, 11, 11),
        metadata={"desk": "secret-desk"},
    )
    TradeFactory(account=account, realized_pnl=decimal.Decimal("777.7777"))
    PositionFactory(account=account, quantity=8675309)
    email = account.customer.email
    for fmt in ("json", "jsonl", "python"):
        out = StringIO()
        call_command("dumpdata", "testapp", format="json" if fmt == "python" else fmt, stdout=out)
        dump = out.getvalue()
        for plaintext in (
            email,
            "424242.5",
            "31337",
            "2011-11-11",
            "secret-desk",
            "777.7777",
            "8675309",
            account.account_number,
        ):
            assert plaintext not in dump, (fmt, plaintext)
        assert "ape:" in dump
    out = StringIO()
    call_command("dumpdata", "testapp", format="json", stdout=out)
    fixture = tmp_path / "backup.json"
    fixture.write_text(out.getvalue())
    for model in (Position, Trade, TradingAccount, Customer):
        model.objects.all().delete()
    call_command("loaddata", str(fixture), verbosity=0)
    restored = TradingAccount.objects.get(pk=account.pk)
    assert restored.balance == 424242.5
    assert restored.credit_limit == decimal.Decimal("31337.00")
    assert restored.opened_on == datetime.date(2011, 11, 11)
    assert Customer.objects.get(email=email).pk == account.customer_id
    assert Position.objects.get().quantity == 8675309
    assert json.loads(out.getvalue())


def test_a_value_that_fails_to_decrypt_raises_on_access_and_is_never_overwritten():
    customer = CustomerFactory(first_name="Alpha", last_name="Omega")
    row = raw_row(Customer, customer.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE testapp_customer SET last_name = %s WHERE id = %s",
            [row["first_name"], customer.pk],
        )
    loaded = Customer.objects.get(pk=customer.pk)
    with pytest.raises(DecryptionError) as info:
        _ = loaded.last_name
    assert info.value.reason == "authentication_failed"
    assert f"testapp.Customer.last_name (pk={customer.pk})" in str(info.value)
    loaded.first_name = "Changed"
    loaded.save()
    after = raw_row(Customer, customer.pk)
    assert after["last_name"] == row["first_name"]  # stored ciphertext untouched
    assert Customer.objects.get(pk=customer.pk).first_name == "Changed"
    placeholder = Customer.objects.filter(pk=customer.pk).values_list("last_name", flat=True)[0]
    with pytest.raises(DecryptionError):
        str(placeholder)


def test_failed_decryption_sends_the_signal():
    from alphapulse_encryption.signals import decryption_failed

    received = []

    def receiver(sender, **kwargs):
        received.append((sender, kwargs["field"].name, kwargs["reason"]))

    customer = CustomerFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE testapp_customer SET phone = 'ape:AAAA' WHERE id = %s", [customer.pk]
        )
    decryption_failed.connect(receiver)
    try:
        with pytest.raises(DecryptionError):
            _ = Customer.objects.get(pk=customer.pk).phone
    finally:
        decryption_failed.disconnect(receiver)
    assert received == [(Customer, "phone", "malformed")]


def test_makemigrations_is_clean():
    out = StringIO()
    call_command("makemigrations", "testapp", check=True, dry_run=True, stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.parametrize(
    "field",
    [
        EncryptedString(max_length=20, context="c"),
        EncryptedSearchableString(normalize=["strip", "lower"], unique=True),
        EncryptedString(null=True, blank=True),
    ],
)
def test_deconstruct_round_trips(field):
    _name, path, args, kwargs = field.deconstruct()
    assert path.startswith("alphapulse_encryption.fields.")
    rebuilt = type(field)(*args, **kwargs)
    assert rebuilt.deconstruct()[1:] == (path, args, kwargs)


def test_default_context_names_app_model_and_field():
    field = TradingAccount._meta.get_field("balance")
    assert field.encryption_context == "testapp.tradingaccount.balance"
    assert Trade._meta.get_field("execution").encryption_context == "testapp.trade.execution"
