"""Masks per kind, chosen from the field or overridden, and masking of free text."""

from __future__ import annotations

import pytest

from alphapulse_encryption import masking
from alphapulse_encryption.masking import mask_for_field, mask_kind, mask_text, mask_value
from tests.testapp import models


@pytest.mark.parametrize(
    ("kind", "value", "shown"),
    [
        ("email", "alice@example.com", "a***@e***.com"),
        ("email", "Jo@mail.example.co.uk", "***@m***.uk"),  # too short to show a letter
        ("email", "not an address", "••••"),
        ("phone", "+1 (555) 010-1234", "****1234"),
        ("phone", "12345", "••••"),
        ("account", "DE89 3704 0044 0532 0130 00", "****3000"),
        ("account", "1234567", "••••"),
        ("number", 10500.25, "••••"),
        ("json", {"a": 1}, "{…}"),
        ("default", "anything", "••••"),
    ],
)
def test_masks_by_kind(kind, value, shown):
    assert mask_value(value, kind) == shown


def test_none_and_empty_stay_empty_and_false_is_masked():
    assert mask_value(None, "email") == mask_value("", "default") == ""
    assert mask_value(False, "default") == "••••"
    assert mask_value(0, "number") == "••••"


def test_the_kind_is_guessed_from_the_field_name_and_type():
    kinds = {
        f.name: mask_kind(f)
        for model in (models.Customer, models.TradingAccount)
        for f in model._meta.concrete_fields
        if getattr(f, "encrypted", False)
    }
    assert kinds == {
        "email": "email",
        "phone": "phone",
        "first_name": "default",
        "last_name": "default",
        "date_of_birth": "default",
        "api_secret": "default",
        "notification_settings": "json",
        "is_verified": "default",
        "account_number": "account",
        "balance": "number",
        "credit_limit": "number",
        "risk_profile": "default",
        "metadata": "json",
        "opened_on": "default",
    }


def test_a_field_can_declare_its_mask_and_an_admin_can_override_it(monkeypatch):
    field = models.Customer._meta.get_field("first_name")
    monkeypatch.setattr(field, "mask", "email", raising=False)
    assert mask_kind(field) == "email"
    assert mask_for_field(field, "phone")("+1 555 010 9999") == "****9999"
    assert mask_for_field(field, lambda value: value[:1] + ".")("Zoe") == "Z."


def test_an_unknown_mask_is_refused():
    with pytest.raises(ValueError, match="unknown mask 'secret'"):
        masking.resolve_mask("secret")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("login alice.smith@example.com ok", "login a***@e***.com ok"),
        ("call +1-555-867-5309", "call ****5309"),
        ("call (555) 867-5309", "call ****5309"),
        ("(phone +49 (30) 1234567)", "(phone ****4567)"),
        ("card 4111 1111 1111 1111 charged", "card ****1111 charged"),
        ("iban DE89 3704 0044 0532 0130 00.", "iban ****3000."),
        # Not masked: dates, times, amounts, ids that fail the card check, addresses.
        ("at 2026-03-04 14:30:15.250000+00:00", "at 2026-03-04 14:30:15.250000+00:00"),
        ("order 1234567890123 of 10500.25 EUR", "order 1234567890123 of 10500.25 EUR"),
        ("from 192.168.10.1:5432", "from 192.168.10.1:5432"),
    ],
)
def test_mask_text(text, masked):
    assert mask_text(text) == masked
