"""While a plaintext column is migrated, every write path also writes its encrypted twin."""

import pytest
from django.core.exceptions import FieldError
from django.db.models import F

from tests.testapp.models import LegacyClient

from .conftest import raw_row

pytestmark = pytest.mark.django_db


def _assert_mirrored(client, email, balance, preferences):
    fresh = LegacyClient.objects.get(pk=client.pk)
    assert (fresh.email_encrypted, fresh.balance_encrypted, fresh.preferences_encrypted) == (
        email,
        balance,
        preferences,
    )
    row = raw_row(LegacyClient, client.pk)
    for column in ("email_encrypted", "balance_encrypted", "preferences_encrypted"):
        assert row[column] is None or "ape:" in row[column]


def test_save_and_create_write_both_columns():
    client = LegacyClient.objects.create(
        name="A", email="A@x.com", balance="42", preferences={"sms": True}
    )
    _assert_mirrored(client, "A@x.com", 42, {"sms": True})
    client.email = "b@x.com"
    client.save()
    _assert_mirrored(client, "b@x.com", 42, {"sms": True})
    assert LegacyClient.objects.get(email_encrypted="B@X.COM") == client


def test_bulk_create_writes_both_columns():
    LegacyClient.objects.bulk_create([LegacyClient(name="A", email="a@x.com", balance="7")])
    client = LegacyClient.objects.get()
    _assert_mirrored(client, "a@x.com", 7, None)


def test_update_writes_both_columns():
    client = LegacyClient.objects.create(name="A", email="a@x.com", balance="1")
    LegacyClient.objects.filter(pk=client.pk).update(email="c@x.com", balance="2")
    _assert_mirrored(client, "c@x.com", 2, None)


def test_update_from_an_expression_is_refused():
    LegacyClient.objects.create(name="A", email="a@x.com")
    with pytest.raises(FieldError, match="email_encrypted"):
        LegacyClient.objects.update(email=F("name"))


def test_bulk_update_writes_both_columns():
    clients = [LegacyClient.objects.create(name=str(i), email=f"{i}@x.com") for i in range(3)]
    for client in clients:
        client.email = f"new-{client.name}@x.com"
        client.balance = "9"
    LegacyClient.objects.bulk_update(clients, ["email", "balance"])
    for client in clients:
        _assert_mirrored(client, f"new-{client.name}@x.com", 9, None)


def test_save_with_update_fields_naming_only_the_plaintext_field_is_refused():
    client = LegacyClient.objects.create(name="A", email="a@x.com")
    client.email = "z@x.com"
    with pytest.raises(FieldError, match="update_fields"):
        client.save(update_fields=["email"])
    client.save(update_fields=["email", "email_encrypted"])
    _assert_mirrored(client, "z@x.com", None, None)


def test_a_value_the_encrypted_field_rejects_is_left_pending_not_fatal():
    client = LegacyClient.objects.create(name="A", email="a@x.com", balance="not a number")
    assert raw_row(LegacyClient, client.pk)["balance_encrypted"] is None
    assert LegacyClient.objects.get(pk=client.pk).balance == "not a number"


def test_chained_querysets_also_dual_write():
    client = LegacyClient.objects.create(name="A", email="a@x.com")
    LegacyClient.objects.all().filter(name="A").update(email="q@x.com")
    _assert_mirrored(client, "q@x.com", None, None)
