"""All five steps on LegacyClient (a string, a number, JSON, a searchable e-mail), from a
table with plaintext columns only to one with encrypted columns only."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from alphapulse_encryption.crypto import looks_like_envelope
from alphapulse_encryption.crypto.cipher import split_searchable
from alphapulse_encryption.management.commands.encrypt_migrate import Command
from alphapulse_encryption.migration.pairs import table_columns
from alphapulse_encryption.migration.views import view_name
from tests.testapp.models import LegacyClient

from .conftest import ENCRYPTED, PLAINTEXT, TABLE, historical_legacy_client, original_values


def run(*args: str) -> str:
    out = StringIO()
    call_command("encrypt_migrate", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def assert_add_columns_applies_one_new_migration(migrations: Path) -> None:
    """The encrypted columns come from a generated and applied migration; the nested
    migrate's lines arrive whole."""
    output = run("--add-columns")
    assert "Added the encrypted columns" in output
    assert re.search(r"^  Applying testapp\.0003_\w+\.\.\. OK$", output, re.MULTILINE)
    written = sorted(p.name for p in migrations.glob("0003_*.py"))
    assert len(written) == 1
    call_command("makemigrations", "testapp", "--check", "--dry-run", verbosity=0)
    assert "already exist" in run("--add-columns")


def assert_the_state_is_the_edited_model_and_values_are_found(view: str) -> None:
    """The migration state is the edited model: no plaintext fields, no migrate_from."""
    After = historical_legacy_client()
    expected = {f.name for f in LegacyClient._meta.concrete_fields if f.name not in PLAINTEXT}
    assert {f.name for f in After._meta.concrete_fields} == expected
    assert all(
        getattr(After._meta.get_field(name), "migrate_from", None) is None for name in ENCRYPTED
    )

    client = After.objects.get(email_encrypted="CLIENT7@example.COM")
    values = original_values(7)
    assert (client.name, client.email_encrypted) == (values["name"], values["email"])
    assert client.balance_encrypted == int(values["balance"])
    assert client.preferences_encrypted == values["preferences"]
    assert After.objects.filter(email_encrypted__in=["client1@example.com", "x@y.z"]).count() == 1
    assert After.objects.get(name="no e-mail").email_encrypted is None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {view}")
        assert cursor.fetchone()[0] == 26


def assert_each_step_says_what_it_can_still_do_or_prove() -> None:
    """With the plaintext gone."""
    assert Command.NOTHING_TO_MIGRATE in run("--migrate-data")
    output = run("--verify")
    assert Command.VERIFY_COMPLETE_DROPPED in output
    assert Command.PLAINTEXT_DROPPED.format(label=f"{TABLE}.email_encrypted") in output
    assert "to its plaintext" not in output


def test_five_steps_leave_an_encrypted_only_table_with_correct_values_and_search(
    legacy_before_encryption,
):
    Before = historical_legacy_client()
    Before.objects.bulk_create([Before(**original_values(i)) for i in range(25)])
    Before.objects.create(name="no e-mail", email=None, balance=None, preferences=None)

    # 1.
    assert_add_columns_applies_one_new_migration(legacy_before_encryption)

    # 2.
    output = run("--migrate-data", "--batch-size", "7")
    assert f"{TABLE}.email_encrypted: 25 row(s) encrypted, 0 failed" in output

    # 3.
    output = run("--verify")
    assert Command.VERIFY_COMPLETE in output
    assert f"{TABLE}.balance_encrypted" in output

    # 4. Plaintext names, ciphertext values.
    run("--create-views")
    view = connection.ops.quote_name(view_name(TABLE, connection))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT email, balance FROM {view} WHERE name = %s", ["client 3"])
        email, balance = cursor.fetchone()
    assert looks_like_envelope(split_searchable(email)[1])
    assert looks_like_envelope(balance)

    # 5.
    with pytest.raises(CommandError, match="--confirm"):
        run("--drop-unencrypted")
    output = run("--drop-unencrypted", "--confirm")
    assert "Dropped the plaintext column(s) testapp.LegacyClient.email" in output
    assert re.search(r"^  Applying testapp\.0004_remove_plaintext_\w+\.\.\. OK$", output, re.M)
    assert "- delete the field `email`" in output
    assert '- remove migrate_from="balance" from `balance_encrypted`' in output
    assert len(list(legacy_before_encryption.glob("0004_remove_plaintext_*.py"))) == 1

    columns = table_columns(connection, TABLE)
    assert not set(PLAINTEXT) & set(columns)
    assert set(ENCRYPTED) <= set(columns)

    assert_the_state_is_the_edited_model_and_values_are_found(view)
    assert "already dropped" in run("--drop-unencrypted", "--confirm")

    assert_each_step_says_what_it_can_still_do_or_prove()
