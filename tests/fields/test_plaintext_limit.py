"""MAX_PLAINTEXT_BYTES on model fields: a ValidationError in full_clean and forms, a
PlaintextTooLarge (ValueError) naming the field's context on save, update() and migration."""

from __future__ import annotations

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction

from alphapulse_encryption.crypto import PlaintextTooLarge
from alphapulse_encryption.migration import data
from alphapulse_encryption.migration.models import EncryptionMigrationFailure
from tests.factories import CustomerFactory
from tests.migration.conftest import make_legacy_clients
from tests.testapp.models import Customer, LegacyClient

pytestmark = pytest.mark.django_db

LIMIT = 100


@pytest.fixture
def small_limit(settings):
    settings.ALPHAPULSE_ENCRYPTION = {
        **settings.ALPHAPULSE_ENCRYPTION,
        "MAX_PLAINTEXT_BYTES": LIMIT,
    }


def test_full_clean_reports_an_oversized_value_on_its_field(small_limit):
    customer = CustomerFactory.build(api_secret="s" * (LIMIT + 1))
    with pytest.raises(ValidationError) as info:
        customer.full_clean()
    [error] = info.value.error_dict["api_secret"]
    assert error.code == "max_plaintext_bytes"
    assert error.messages == [
        f"Ensure this value is at most {LIMIT} bytes once encoded (it is {LIMIT + 1} bytes)."
    ]
    customer.api_secret = "s" * LIMIT
    customer.full_clean()


def test_json_and_multibyte_text_are_measured_as_encoded(small_limit):
    customer = CustomerFactory.build(
        first_name="é" * (LIMIT // 2 + 1),  # 102 bytes in UTF-8
        notification_settings={"note": "n" * LIMIT},
    )
    with pytest.raises(ValidationError) as info:
        customer.full_clean()
    assert set(info.value.error_dict) >= {"first_name", "notification_settings"}


def test_a_model_form_shows_the_error_on_the_field(small_limit):
    class NotesForm(forms.ModelForm):
        class Meta:
            model = Customer
            fields = ["email", "first_name", "api_secret"]

    form = NotesForm(
        data={"email": "limit@example.com", "first_name": "Ann", "api_secret": "k" * 500}
    )
    assert not form.is_valid()
    assert form.errors["api_secret"] == [
        f"Ensure this value is at most {LIMIT} bytes once encoded (it is 500 bytes)."
    ]


def test_saving_without_validation_raises_naming_the_context_and_writes_nothing(small_limit):
    with pytest.raises(PlaintextTooLarge) as info, transaction.atomic():
        Customer.objects.create(email="big@example.com", first_name="B", api_secret="s" * 101)
    assert info.value.context == "testapp.customer.api_secret"
    assert info.value.limit == LIMIT
    assert not Customer.objects.exists()


def test_update_with_an_oversized_value_raises_and_changes_nothing(small_limit):
    customer = CustomerFactory(api_secret="short")
    with pytest.raises(PlaintextTooLarge), transaction.atomic():
        Customer.objects.filter(pk=customer.pk).update(api_secret="s" * 101)
    assert Customer.objects.get(pk=customer.pk).api_secret == "short"


def test_the_default_limit_is_one_mebibyte():
    customer = CustomerFactory(api_secret="m" * 1024 * 1024)
    customer.refresh_from_db()
    assert len(customer.api_secret) == 1024 * 1024
    with pytest.raises(PlaintextTooLarge, match="1,048,576 bytes"), transaction.atomic():
        CustomerFactory(api_secret="m" * (1024 * 1024 + 1))


def test_migrate_data_records_an_oversized_value_as_a_failure_and_goes_on(settings):
    make_legacy_clients(4)
    settings.ALPHAPULSE_ENCRYPTION = {**settings.ALPHAPULSE_ENCRYPTION, "MAX_PLAINTEXT_BYTES": 60}
    # Dual write leaves a value it cannot encrypt pending instead of failing the save.
    big = LegacyClient.objects.create(name="big", email="e" * 70 + "@x.com")
    assert LegacyClient.objects.get(pk=big.pk).email_encrypted is None
    results = {p.label.split(".")[-1]: p for p in data.migrate_data(batch_size=2)}
    assert (results["email_encrypted"].migrated, results["email_encrypted"].failed) == (4, 1)
    failure = EncryptionMigrationFailure.objects.get()
    assert failure.row_pk == str(big.pk)
    assert "PlaintextTooLarge" in failure.error and "MAX_PLAINTEXT_BYTES" in failure.error
    assert "eeee" not in failure.error
