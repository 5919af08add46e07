"""The database keyring: bootstrap, wrapped storage, rotation, and data under every version."""

from __future__ import annotations

import pytest
from django.db import connection

from alphapulse_encryption import ConfigurationError, KeyProviderError, decrypt_field
from alphapulse_encryption.crypto import fingerprint, key_version_of
from alphapulse_encryption.keys import DatabaseKeyProvider, EncryptionKeyManager
from alphapulse_encryption.models import KeyVersion
from tests.factories import CustomerFactory, TradingAccountFactory
from tests.keys.conftest import data_keys, database_keyring_settings
from tests.settings import TEST_KEY_V2
from tests.testapp.models import Customer, TradingAccount


def _stored(model, pk, column):
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE id = %s", [pk]
        )
        return cursor.fetchone()[0]


def _write_under_versions(manager, count=3):
    """One customer and account per key version 1..count; returns them by version."""
    written = {}
    for version in range(1, count + 1):
        if version > 1:
            assert manager.rotate_keys() == version
        customer = CustomerFactory(email=f"Trader{version}@Example.com", first_name=f"N{version}")
        account = TradingAccountFactory(customer=customer, account_number=f"ACC-{version}")
        written[version] = (customer.pk, account.pk)
    return written


def test_first_use_of_an_empty_keyring_bootstraps_version_1(db_keyring):
    assert not KeyVersion.objects.exists()
    assert db_keyring.active_version == 1
    row = KeyVersion.objects.get()
    assert (row.version, row.status) == (1, KeyVersion.Status.ACTIVE)
    assert row.fingerprint == fingerprint(data_keys()[1])
    assert row.wrapped_by == "master:1"


def test_rotating_an_empty_keyring_creates_version_1(db_keyring):
    assert db_keyring.rotate_keys() == 1
    assert db_keyring.rotate_keys() == 2


def test_version_keys_are_random_and_stored_wrapped(db_keyring):
    db_keyring.rotate_keys()
    db_keyring.rotate_keys()
    keys = data_keys()
    assert keys[1] != keys[2]
    for row in KeyVersion.objects.all():
        assert row.wrapped_key.startswith("apw1:")
        assert keys[row.version].hex() not in row.wrapped_key


def test_rotation_returns_the_new_version_and_retires_the_old_one(db_keyring):
    assert db_keyring.active_version == 1
    assert db_keyring.rotate_keys() == 2
    assert db_keyring.rotate_keys() == 3
    statuses = dict(KeyVersion.objects.values_list("version", "status"))
    assert statuses == {1: "retired", 2: "retired", 3: "active"}
    assert db_keyring.active_version == 3
    assert db_keyring.versions == [1, 2, 3]
    assert [(i.version, i.status) for i in db_keyring.key_versions()] == [
        (1, "retired (decrypt-only)"),
        (2, "retired (decrypt-only)"),
        (3, "active"),
    ]


def test_data_written_under_versions_1_2_and_3_all_decrypts(db_keyring):
    written = _write_under_versions(db_keyring)
    for version, (customer_pk, account_pk) in written.items():
        assert key_version_of(_stored(Customer, customer_pk, "email")) == version
        assert key_version_of(_stored(Customer, customer_pk, "first_name")) == version
        assert key_version_of(_stored(TradingAccount, account_pk, "balance")) == version
        customer = Customer.objects.get(pk=customer_pk)
        assert customer.email == f"Trader{version}@Example.com"
        assert customer.first_name == f"N{version}"
        assert customer.notification_settings == {"email": True, "sms": False}
        assert TradingAccount.objects.get(pk=account_pk).balance == 10_500.25


def test_new_writes_use_the_active_version(db_keyring):
    _write_under_versions(db_keyring)
    customer = Customer.objects.get(email="trader1@example.com")
    customer.first_name = "Renamed"
    customer.save()
    assert key_version_of(_stored(Customer, customer.pk, "first_name")) == 3
    new = CustomerFactory()
    assert key_version_of(_stored(Customer, new.pk, "email")) == 3


def test_searchable_lookups_find_rows_from_every_version(db_keyring):
    written = _write_under_versions(db_keyring)
    for version, (customer_pk, account_pk) in written.items():
        assert Customer.objects.get(email=f"  trader{version}@EXAMPLE.com ").pk == customer_pk
        assert Customer.objects.get(email_search=f"trader{version}@example.com").pk == customer_pk
        assert TradingAccount.objects.get(account_number=f"ACC-{version}").pk == account_pk
    emails = [f"trader{v}@example.com" for v in written]
    assert Customer.objects.filter(email__in=emails).count() == 3
    assert not Customer.objects.filter(email="nobody@example.com").exists()


def test_unique_searchable_value_is_enforced_across_versions(db_keyring):
    _write_under_versions(db_keyring, count=2)
    duplicate = Customer(email="TRADER1@example.com", first_name="Dup")
    with pytest.raises(Exception, match="already exists"):
        duplicate.full_clean()


def test_rotate_keys_with_the_settings_provider_still_raises(settings):
    with pytest.raises(KeyProviderError, match="read-only"):
        EncryptionKeyManager().rotate_keys()


def test_a_different_master_key_cannot_unwrap_the_keyring(db_keyring, settings):
    assert db_keyring.active_version == 1
    settings.ALPHAPULSE_ENCRYPTION = {
        **database_keyring_settings(),
        "MASTER_KEYS": {1: TEST_KEY_V2},
    }
    with pytest.raises(ConfigurationError, match="does not unwrap with master key version 1"):
        EncryptionKeyManager().active_version  # noqa: B018


def test_a_wrapped_key_moved_to_another_version_fails_to_unwrap(db_keyring):
    db_keyring.rotate_keys()
    db_keyring.rotate_keys()
    first = KeyVersion.objects.get(version=1)
    KeyVersion.objects.filter(version=2).update(
        wrapped_key=first.wrapped_key, fingerprint=first.fingerprint
    )
    with pytest.raises(ConfigurationError, match="key version 2"):
        DatabaseKeyProvider().load()


def test_the_master_key_can_move_to_a_new_version_while_old_wraps_stay_readable(
    db_keyring, settings
):
    old = CustomerFactory(first_name="Before")
    settings.ALPHAPULSE_ENCRYPTION = database_keyring_settings(
        MASTER_KEYS={1: settings.ALPHAPULSE_ENCRYPTION["MASTER_KEYS"][1], 2: TEST_KEY_V2},
        ACTIVE_KEY_VERSION=2,
    )
    manager = EncryptionKeyManager()
    assert manager.rotate_keys() == 2
    assert KeyVersion.objects.get(version=2).wrapped_by == "master:2"
    assert Customer.objects.get(pk=old.pk).first_name == "Before"


def test_retiring_the_active_version_is_refused(db_keyring):
    db_keyring.active_version  # noqa: B018
    with pytest.raises(KeyProviderError, match="active version"):
        db_keyring.retire_key(1)


def test_retired_version_is_destroyed_and_its_data_no_longer_decrypts(db_keyring):
    stored = _stored(Customer, CustomerFactory(first_name="Old").pk, "first_name")
    db_keyring.rotate_keys()
    db_keyring.retire_key(1)
    row = KeyVersion.objects.get(version=1)
    assert (row.status, row.wrapped_key) == ("destroyed", "")
    assert db_keyring.versions == [2]
    with pytest.raises(Exception) as info:
        decrypt_field(stored, context="testapp.customer.first_name")
    assert getattr(info.value, "reason", None) == "unknown_key_version"


def test_an_invalid_cache_time_is_a_configuration_error(settings, db):
    settings.ALPHAPULSE_ENCRYPTION = database_keyring_settings(KEYRING_CACHE_SECONDS="soon")
    with pytest.raises(ConfigurationError, match="KEYRING_CACHE_SECONDS"):
        EncryptionKeyManager().active_version  # noqa: B018
