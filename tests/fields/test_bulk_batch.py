"""bulk_create and bulk_update encrypt each column's new values in one batch."""

import decimal
from unittest import mock

import pytest
from django.db import IntegrityError

from alphapulse_encryption.crypto import Cipher, PlaintextTooLarge
from alphapulse_encryption.fields import EncryptedDateTime, EncryptedString
from tests.factories import CustomerFactory
from tests.testapp.models import Customer, LegacyClient, TradingAccount

from .conftest import assert_no_plaintext, raw_row

pytestmark = pytest.mark.django_db(transaction=True)


def _accounts(n, customer):
    return [
        TradingAccount(
            customer=customer,
            account_number=f"GB{i:08d}",
            balance=i + 0.5,
            credit_limit=decimal.Decimal(f"{i}.129"),  # quantized to 2 places on the way
            metadata={"i": i},
        )
        for i in range(n)
    ]


def test_bulk_create_encrypts_each_column_in_one_batch_and_gives_the_values_back():
    customer = CustomerFactory()
    accounts = _accounts(5, customer)
    spy = mock.patch.object(
        Cipher, "batch_encrypt", autospec=True, side_effect=Cipher.batch_encrypt
    )
    with spy as batch_encrypt, mock.patch.object(Cipher, "encrypt", autospec=True) as one:
        TradingAccount.objects.bulk_create(accounts)
    # One batch per encrypted column with values (opened_on is None everywhere).
    contexts = sorted(call.args[2] for call in batch_encrypt.call_args_list)
    assert contexts == sorted(
        f"testapp.tradingaccount.{name}"
        for name in ("account_number", "balance", "credit_limit", "risk_profile", "metadata")
    )
    assert one.call_count == 0
    # The instances hold their values again, as Django leaves them after a bulk_create.
    assert [a.balance for a in accounts] == [i + 0.5 for i in range(5)]
    assert accounts[3].credit_limit == decimal.Decimal("3.129")
    assert accounts[2].metadata == {"i": 2}
    for account in accounts:
        assert "GB0000" not in str(raw_row(TradingAccount, account.pk))
        assert_no_plaintext(TradingAccount, account.pk, [account.account_number])
    loaded = {a.account_number: a for a in TradingAccount.objects.all()}
    assert loaded["GB00000003"].credit_limit == decimal.Decimal("3.13")
    assert loaded["GB00000004"].metadata == {"i": 4}
    assert TradingAccount.objects.get(account_number="GB00000002").balance == 2.5


def test_a_value_too_large_stops_bulk_create_before_any_row_and_keeps_the_values(settings):
    customer = CustomerFactory()
    accounts = _accounts(3, customer)
    accounts[2].risk_profile = "x" * 2_000_000
    with pytest.raises(PlaintextTooLarge, match=r"testapp\.tradingaccount\.risk_profile"):
        TradingAccount.objects.bulk_create(accounts)
    assert TradingAccount.objects.count() == 0
    assert [a.balance for a in accounts] == [0.5, 1.5, 2.5]
    assert accounts[0].risk_profile == "low"


def test_a_failed_insert_gives_the_instances_their_values_back():
    customer = CustomerFactory(email="taken@example.com")
    duplicate = Customer(email="TAKEN@example.com ", first_name="Dup")
    with pytest.raises(IntegrityError):
        Customer.objects.bulk_create([duplicate])
    assert duplicate.email == "TAKEN@example.com "
    assert duplicate.first_name == "Dup"
    assert customer.email == "taken@example.com"


def test_the_same_instance_twice_and_instances_loaded_from_the_database():
    customer = CustomerFactory()
    account = _accounts(1, customer)[0]
    TradingAccount.objects.bulk_create([account])
    copy = TradingAccount.objects.get(pk=account.pk)  # values still sealed, never read
    copy.pk = None
    TradingAccount.objects.bulk_create([copy])
    assert (
        raw_row(TradingAccount, copy.pk)["balance"]
        == raw_row(TradingAccount, account.pk)["balance"]
    )
    assert TradingAccount.objects.get(pk=copy.pk).balance == 0.5
    assert TradingAccount.objects.filter(account_number="GB00000000").count() == 2


def test_bulk_create_still_mirrors_fields_being_migrated():
    client = LegacyClient(email="Old@Example.com", balance="12", preferences={"a": 1})
    LegacyClient.objects.bulk_create([client])
    loaded = LegacyClient.objects.get(pk=client.pk)
    assert loaded.balance_encrypted == 12
    assert loaded.preferences_encrypted == {"a": 1}


def test_bulk_update_encrypts_in_batches_and_gives_the_values_back():
    customer = CustomerFactory()
    accounts = _accounts(4, customer)
    TradingAccount.objects.bulk_create(accounts)
    for account in accounts:
        account.balance = -account.balance
        account.account_number = account.account_number.lower()
    with mock.patch.object(Cipher, "encrypt", autospec=True) as one:
        TradingAccount.objects.bulk_update(accounts, ["balance", "account_number"])
    assert one.call_count == 0
    assert [a.balance for a in accounts] == [-0.5, -1.5, -2.5, -3.5]
    assert accounts[1].account_number == "gb00000001"
    loaded = TradingAccount.objects.order_by("pk")
    assert [a.balance for a in loaded] == [-0.5, -1.5, -2.5, -3.5]
    assert TradingAccount.objects.get(account_number="gb00000003").pk == accounts[3].pk
    assert_no_plaintext(TradingAccount, accounts[0].pk, ["gb00000000"])


def test_bulk_update_of_unread_loaded_rows_keeps_their_values():
    customer = CustomerFactory()
    TradingAccount.objects.bulk_create(_accounts(3, customer))
    loaded = list(TradingAccount.objects.order_by("pk"))
    loaded[0].balance = 99.0
    TradingAccount.objects.bulk_update(loaded, ["balance", "metadata"])
    assert [a.balance for a in TradingAccount.objects.order_by("pk")] == [99.0, 1.5, 2.5]
    assert [a.metadata for a in TradingAccount.objects.order_by("pk")] == [
        {"i": 0},
        {"i": 1},
        {"i": 2},
    ]


def test_fields_whose_pre_save_sets_the_value_are_not_encrypted_ahead():
    assert EncryptedString().can_encrypt_ahead()
    assert not EncryptedDateTime(auto_now=True).can_encrypt_ahead()
    assert not EncryptedDateTime(auto_now_add=True).can_encrypt_ahead()
    assert not EncryptedString(null=True, migrate_from="plain").can_encrypt_ahead()


def test_a_model_defined_after_startup_gets_the_encrypted_queryset_too():
    from django.db import models
    from django.test.utils import isolate_apps

    from alphapulse_encryption.fields.queryset import EncryptedQuerySetMixin

    with isolate_apps("tests.testapp"):

        class LateModel(models.Model):
            secret = EncryptedString()

            class Meta:
                app_label = "testapp"

    assert isinstance(LateModel.objects.all(), EncryptedQuerySetMixin)


def test_a_subclass_that_overrides_encrypt_alone_keeps_it_in_bulk_writes():
    from alphapulse_encryption.fields import EncryptedSearchableString

    class Tagged(EncryptedSearchableString):
        def encrypt(self, value):
            return f"tagged:{value}"

    class Batched(Tagged):
        def seal_batch(self, values):
            return [f"batched:{value}" for value in values]

    assert Tagged(context="t").encrypt_many(["a", None]) == ["tagged:a", None]
    assert Batched(context="t").encrypt_many(["a"]) == ["batched:a"]
    plain = EncryptedSearchableString(context="t").encrypt_many(["a"])[0]
    assert plain is not None and plain.startswith("apt1")


def test_subclasses_that_change_values_keep_their_own_code():
    from alphapulse_encryption.fields.stored import Prepared

    class Upper(EncryptedString):
        def to_python(self, value):
            value = super().to_python(value)
            return value.upper() if isinstance(value, str) else value

    class Stamped(EncryptedString):
        def pre_save(self, model_instance, add):
            return super().pre_save(model_instance, add)

    upper = Upper(context="tests.upper")
    stored = upper.get_db_prep_save("abc", None)
    assert upper.from_db_value(stored, None, None) == "ABC"
    assert upper.open_many([stored]) == ["ABC"]
    assert not Stamped().can_encrypt_ahead()
    # During bulk writes the attribute still reads the value, never the ciphertext.
    customer = Customer(first_name="Ann", email="Ann@Example.com")
    customer.__dict__["first_name"] = Prepared("ape:x", "Ann")
    assert customer.first_name == "Ann"
    token = customer.email_search
    customer.__dict__["email"] = Prepared("apt1...", "Ann@Example.com")
    assert customer.email_search == token
