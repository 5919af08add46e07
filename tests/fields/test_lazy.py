"""Values loaded with model instances are decrypted on first read, not when the row loads."""

from contextlib import contextmanager
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.db.models import F

from alphapulse_encryption.crypto import Cipher
from tests.factories import CustomerFactory, PositionFactory, TradingAccountFactory
from tests.testapp.models import Customer, Position, TradingAccount

from .conftest import raw_row

pytestmark = pytest.mark.django_db


class _Opened:
    call_count = 0  # values decrypted, whichever path (one value, a batch) opened them


@contextmanager
def counted_decryptions():
    opened = _Opened()
    real = Cipher.open_many

    def counting(self, items, context):
        items = list(items)
        opened.call_count += len(items)
        return real(self, items, context)

    with mock.patch.object(Cipher, "open_many", counting):
        yield opened


def test_loading_rows_decrypts_nothing_until_a_field_is_read():
    for _ in range(3):
        TradingAccountFactory()
    with counted_decryptions() as spy:
        accounts = list(TradingAccount.objects.all())
        labels = [a.label for a in accounts]
        assert spy.call_count == 0
        first = accounts[0].balance
        assert spy.call_count == 3  # the column's values of this query, decrypted together
        balances = [a.balance for a in accounts]
        assert spy.call_count == 3
        assert balances[0] == first
        assert [a.balance for a in accounts] == balances  # decrypted once, then cached
        assert spy.call_count == 3
    assert labels == ["", "", ""]


def test_select_related_and_prefetched_rows_are_lazy_too():
    position = PositionFactory()
    with counted_decryptions() as spy:
        loaded = Position.objects.select_related("account__customer").get(pk=position.pk)
        prefetched = list(TradingAccount.objects.prefetch_related("positions"))
        assert spy.call_count == 0
        assert loaded.account.customer.email == position.account.customer.email
        assert prefetched[0].positions.all()[0].quantity == position.quantity
        assert spy.call_count == 2


def test_values_raw_and_annotations_are_decrypted_eagerly():
    account = TradingAccountFactory(balance=12.5)
    assert TradingAccount.objects.values_list("balance", flat=True).get() == 12.5
    annotated = TradingAccount.objects.annotate(copy=F("balance")).get()
    assert annotated.copy == 12.5
    (raw,) = TradingAccount.objects.raw("SELECT * FROM testapp_tradingaccount")
    assert raw.balance == 12.5 and raw.pk == account.pk


def test_saving_unread_fields_writes_the_stored_ciphertext_back_unchanged():
    customer = CustomerFactory()
    before = raw_row(Customer, customer.pk)
    with counted_decryptions() as spy:
        loaded = Customer.objects.get(pk=customer.pk)
        loaded.save()
        assert spy.call_count == 0
    after = raw_row(Customer, customer.pk)
    assert {k: v for k, v in after.items() if k != "created"} == {
        k: v for k, v in before.items() if k != "created"
    }


def test_dumpdata_writes_unread_values_as_stored():
    customer = CustomerFactory()
    stored = raw_row(Customer, customer.pk)["first_name"]
    out = StringIO()
    with counted_decryptions() as spy:
        call_command("dumpdata", "testapp.customer", format="json", stdout=out)
        assert spy.call_count == 0
    assert stored in out.getvalue()


def test_a_value_that_fails_to_decrypt_does_not_break_loading_the_row():
    from django.db import connection

    from alphapulse_encryption import DecryptionError

    customer = CustomerFactory(first_name="Kept")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE testapp_customer SET last_name = 'ape:AAAA' WHERE id = %s", [customer.pk]
        )
    loaded = Customer.objects.get(pk=customer.pk)
    assert loaded.first_name == "Kept"
    with pytest.raises(DecryptionError, match=f"pk={customer.pk}"):
        _ = loaded.last_name


def test_a_batch_holds_at_most_one_fetch_of_rows_and_each_value_its_own_row():
    from alphapulse_encryption.fields.stored import SEALED_BATCH_SIZE

    accounts = [TradingAccountFactory(balance=float(i)) for i in range(SEALED_BATCH_SIZE + 20)]
    with counted_decryptions() as spy:
        loaded = list(TradingAccount.objects.order_by("pk"))
        assert loaded[0].balance == 0.0
        assert spy.call_count == SEALED_BATCH_SIZE
        assert loaded[-1].balance == float(len(accounts) - 1)
        assert spy.call_count == len(accounts)
    assert [a.balance for a in loaded] == [a.balance for a in accounts]
    streamed = TradingAccount.objects.order_by("pk").iterator(chunk_size=7)
    assert [a.balance for a in streamed] == [a.balance for a in accounts]


def test_one_bad_value_in_a_batch_fails_alone():
    from django.db import connection

    from alphapulse_encryption import DecryptionError

    customers = [CustomerFactory(last_name=f"Name {i}") for i in range(3)]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE testapp_customer SET last_name = 'ape:AAAA' WHERE id = %s", [customers[1].pk]
        )
    loaded = list(Customer.objects.order_by("pk"))
    assert loaded[0].last_name == "Name 0"
    assert loaded[2].last_name == "Name 2"
    with pytest.raises(DecryptionError, match=f"pk={customers[1].pk}"):
        _ = loaded[1].last_name


def test_a_pickled_instance_carries_its_own_ciphertext_only():
    import pickle

    customers = [CustomerFactory(last_name=f"Secret {i}") for i in range(3)]
    loaded = list(Customer.objects.order_by("pk"))
    assert loaded[1].last_name == "Secret 1"  # the batch is open: plaintexts in memory
    data = pickle.dumps(loaded[0])
    assert b"Secret" not in data
    for other in customers[1:]:
        assert raw_row(Customer, other.pk)["last_name"].encode() not in data
    restored = pickle.loads(data)  # noqa: S301 (our own bytes)
    assert restored.last_name == "Secret 0"


def test_a_value_this_field_cannot_hold_fails_alone_without_showing_its_content():
    from django.db import connection

    from alphapulse_encryption import DecryptionError, encrypt_field

    positions = [PositionFactory(quantity=i + 1) for i in range(3)]
    field = Position._meta.get_field("quantity")
    wrong = encrypt_field("not-a-number", context=field.encryption_context)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE testapp_position SET quantity = %s WHERE id = %s", [wrong, positions[1].pk]
        )
    loaded = list(Position.objects.order_by("pk"))
    assert loaded[0].quantity == 1
    assert loaded[2].quantity == 3
    with pytest.raises(DecryptionError, match=f"pk={positions[1].pk}") as info:
        _ = loaded[1].quantity
    assert info.value.reason == "malformed"
    assert "not-a-number" not in str(info.value)
    values = list(Position.objects.order_by("pk").values_list("quantity", flat=True))
    assert values[0] == 1 and values[2] == 3
    assert "not-a-number" not in repr(values[1])


def test_a_value_sealed_after_its_batch_was_opened_still_opens_to_its_own_value():
    from alphapulse_encryption.fields.stored import Sealed

    customers = [CustomerFactory(last_name=f"Name {i}") for i in range(2)]
    first = Customer.objects.order_by("pk")[0]
    sealed = first.__dict__["last_name"]
    assert first.last_name == "Name 0"  # opens the batch
    batch = sealed[0]
    # Another thread still iterating appends to the batch it just saw opened.
    batch.stored.append(raw_row(Customer, customers[1].pk)["last_name"])
    late = tuple.__new__(Sealed, (batch, len(batch.stored) - 1))
    field = Customer._meta.get_field("last_name")
    assert late.open(field) == "Name 1"
    assert sealed.open(field) == "Name 0"
