"""Unread values of an instance loaded before a rotation: saving the instance must not
write ciphertext under an older key version over what ``reencrypt`` has moved."""

from __future__ import annotations

import pytest
from django.db import connection

from alphapulse_encryption.crypto import key_version_of
from alphapulse_encryption.migration import reencrypt
from tests.factories import CustomerFactory
from tests.settings import TEST_KEY_V1, TEST_KEY_V2
from tests.testapp.models import Customer

from .conftest import encrypted_columns, raw_row

pytestmark = pytest.mark.django_db


def _use_version(settings, active: int) -> None:
    settings.ALPHAPULSE_ENCRYPTION = {
        "MASTER_KEYS": {1: TEST_KEY_V1, 2: TEST_KEY_V2},
        "ACTIVE_KEY_VERSION": active,
    }


def _versions(pk) -> set[int]:
    row = raw_row(Customer, pk)
    return {
        key_version_of(row[f.column])
        for f in encrypted_columns(Customer)
        if row[f.column] is not None
    }


def test_saving_an_instance_loaded_before_reencrypt_keeps_its_values_under_the_new_key(
    settings,
):
    """Regression: unread (still sealed) values were written back as loaded, so an
    instance loaded before ``reencrypt`` and saved after it put the old version's
    ciphertext back; retiring that version would then have destroyed those values."""
    _use_version(settings, 1)
    customer = CustomerFactory(first_name="Before", api_secret="sk_kept")
    stale = Customer.objects.get(pk=customer.pk)  # nothing read: every value sealed
    _use_version(settings, 2)
    reencrypt.reencrypt("testapp.Customer")
    assert _versions(customer.pk) == {2}

    stale.first_name = "After"
    stale.save()

    assert _versions(customer.pk) == {2}
    assert reencrypt.values_using(1) == 0
    fresh = Customer.objects.get(pk=customer.pk)
    assert (fresh.first_name, fresh.api_secret, fresh.email) == (
        "After",
        "sk_kept",
        customer.email,
    )
    assert Customer.objects.get(email=customer.email).pk == customer.pk


def test_an_unreadable_value_under_an_old_version_is_still_written_back_unchanged(settings):
    _use_version(settings, 1)
    customer = CustomerFactory(last_name="Shown")
    with connection.cursor() as cursor:
        # Another field's ciphertext: a well-formed version-1 envelope that fails here.
        cursor.execute(
            "UPDATE testapp_customer SET last_name = first_name WHERE id = %s", [customer.pk]
        )
    garbage = raw_row(Customer, customer.pk)["last_name"]
    _use_version(settings, 2)
    loaded = Customer.objects.get(pk=customer.pk)
    loaded.save()
    assert raw_row(Customer, customer.pk)["last_name"] == garbage
