"""What someone reading the database sees, beyond the claims proved elsewhere (the list
with every proof is in docs/security.md): the leaks the threat model admits, shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connection

from alphapulse_encryption.crypto import Cipher, Keyring
from alphapulse_encryption.crypto.cipher import split_searchable
from tests.factories import CustomerFactory, TradingAccountFactory
from tests.fields.conftest import raw_row
from tests.testapp.models import Customer, TradingAccount

KEY = bytes(range(32))


def test_without_padding_the_length_shows_and_with_it_only_the_bucket():
    plain = Cipher(Keyring({1: KEY}, 1))
    assert len(plain.encrypt("a" * 5, "c")) < len(plain.encrypt("a" * 40, "c"))
    padded = Cipher(Keyring({1: KEY}, 1, pad_to=64))
    lengths = {len(padded.encrypt("a" * n, "c")) for n in range(0, 63)}
    assert len(lengths) == 1  # one bucket for 0-62 bytes (one byte marks the padding)
    assert len(padded.encrypt("a" * 63, "c")) > lengths.pop()


@pytest.mark.django_db
def test_equal_searchable_values_share_a_token_and_other_fields_show_no_equality():
    first = TradingAccountFactory(account_number="DE00 SAME", label="one")
    second = TradingAccountFactory(account_number="DE00 SAME", label="two")
    a, b = raw_row(TradingAccount, first.pk), raw_row(TradingAccount, second.pk)
    assert split_searchable(a["account_number"])[0] == split_searchable(b["account_number"])[0]
    assert a["account_number"] != b["account_number"]  # the envelopes still differ
    assert a["risk_profile"] != b["risk_profile"]  # same plaintext, no visible equality


@pytest.mark.django_db
def test_nullness_is_visible():
    customer = CustomerFactory(phone=None, api_secret="")
    row = raw_row(Customer, customer.pk)
    assert row["phone"] is None
    assert row["api_secret"] is not None  # an empty string is encrypted like any value


@pytest.mark.django_db
def test_a_value_copied_to_another_row_of_the_same_column_is_not_detected():
    """The row is not part of the associated data (the context is the column): someone
    who can write to the database can swap two customers' values of one field. Restrict
    write access; the audit log records changes made through the application only."""
    alice, bob = CustomerFactory(first_name="Alice"), CustomerFactory(first_name="Bob")
    table = connection.ops.quote_name(Customer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET first_name = %s WHERE id = %s",
            [raw_row(Customer, alice.pk)["first_name"], bob.pk],
        )
    assert Customer.objects.get(pk=bob.pk).first_name == "Alice"


def test_every_test_docs_security_md_cites_as_proof_exists():
    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "security.md").read_text()
    cited = set(re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", text))
    assert len(cited) > 40
    missing = []
    for path, name in sorted(cited):
        source = root / path
        if not source.exists() or (
            name and not re.search(rf"^def {name}\(", source.read_text(), re.M)
        ):
            missing.append(f"{path}::{name}" if name else path)
    assert not missing, missing
