"""--migrate-data migrates all the columns of a table in one pass: each row is selected
and written once, whatever state each of its columns is in."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection, transaction

from alphapulse_encryption.crypto import TOKEN_LENGTH
from alphapulse_encryption.fields import EncryptedString
from alphapulse_encryption.migration import data, encryption, writers
from alphapulse_encryption.migration.models import EncryptionMigrationFailure
from alphapulse_encryption.migration.pairs import select_pairs
from alphapulse_encryption.migration.verify import verify
from tests.testapp.models import LegacyClient

from .conftest import ENCRYPTED, TABLE, assert_migrated, make_legacy_clients

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL only: its write path and settings"
)


def stored(pk: int, column: str) -> str | None:
    """A column's stored text, as the database holds it."""
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn(column)} FROM {qn(TABLE)} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def record_write_statements(monkeypatch) -> list[tuple[tuple[str, ...], list[int]]]:
    """(columns, pks) of every write statement the engine issues."""
    statements: list[tuple[tuple[str, ...], list[int]]] = []
    real_write = writers._write

    def recording_write(pairs, pks, values, connection):
        statements.append((tuple(pair.column for pair in pairs), list(pks)))
        return real_write(pairs, pks, values, connection)

    monkeypatch.setattr(writers, "_write", recording_write)
    return statements


@pytest.mark.django_db
def test_every_column_of_a_row_is_written_by_one_statement(monkeypatch):
    originals = make_legacy_clients(9)
    statements = record_write_statements(monkeypatch)
    results = data.migrate_data(batch_size=4)
    assert [(p.label, p.migrated, p.failed, p.skipped) for p in results] == [
        (f"{TABLE}.{column}", 9, 0, 0) for column in ENCRYPTED
    ]
    assert [columns for columns, _ in statements] == [ENCRYPTED] * 3  # batches of 4, 4, 1
    assert sorted(pk for _, pks in statements for pk in pks) == sorted(originals)
    assert_migrated(originals)


@pytest.mark.django_db
def test_a_value_that_fails_leaves_the_other_columns_of_its_row_encrypted(monkeypatch):
    originals = make_legacy_clients(3)
    bad = LegacyClient.objects.create(name="bad", email="Bad@X.com", balance="12 EUR")
    LegacyClient.objects.filter(pk=bad.pk).update(email_encrypted=None)
    statements = record_write_statements(monkeypatch)
    results = {p.label.split(".")[1]: p for p in data.migrate_data()}
    assert (results["email_encrypted"].migrated, results["email_encrypted"].failed) == (4, 0)
    assert (results["balance_encrypted"].migrated, results["balance_encrypted"].failed) == (3, 1)
    row = LegacyClient.objects.get(pk=bad.pk)
    assert (row.email_encrypted, row.balance_encrypted) == ("Bad@X.com", None)
    assert LegacyClient.objects.filter(email_encrypted="bad@x.com").get().pk == bad.pk
    failure = EncryptionMigrationFailure.objects.get()
    assert (failure.column_name, failure.row_pk) == ("balance_encrypted", str(bad.pk))
    assert "12 EUR" not in failure.error
    # The row without a balance went with the rows that have every column to write.
    assert [(columns, len(pks)) for columns, pks in statements] == [
        (ENCRYPTED, 3),
        (("email_encrypted",), 1),
    ]
    assert_migrated(originals)
    column = {c.label.split(".")[1]: c for c in verify().columns}["balance_encrypted"]
    assert (column.failed, column.pending) == (1, 0)


@pytest.mark.django_db
def test_a_column_dual_write_encrypted_already_is_left_as_it_was():
    originals = make_legacy_clients(4)
    first = min(originals)
    # The application saved the e-mail (dual write) before the run; the rest is pending.
    LegacyClient.objects.filter(pk=first).update(email="Saved@X.com")
    ciphertext = stored(first, "email_encrypted")
    assert ciphertext is not None and stored(first, "balance_encrypted") is None
    results = {p.label.split(".")[1]: p for p in data.migrate_data()}
    assert results["email_encrypted"].migrated == 3
    assert results["balance_encrypted"].migrated == 4
    assert stored(first, "email_encrypted") == ciphertext
    assert LegacyClient.objects.get(pk=first).balance_encrypted == int(originals[first]["balance"])
    assert verify().complete


@pytest.mark.django_db
def test_a_value_stored_between_read_and_write_is_kept_and_the_row_still_migrates(monkeypatch):
    originals = make_legacy_clients(3)
    first = min(originals)
    real_encrypt = encryption.encrypt_rows

    def another_writer_meanwhile(pair, rows, connection):
        encrypted = real_encrypt(pair, rows, connection)
        if pair.column == "balance_encrypted":
            # A writer that got to the row after it was read: the write must keep its value.
            LegacyClient.objects.filter(pk=first).update(balance="777")
        return encrypted

    monkeypatch.setattr(encryption, "encrypt_rows", another_writer_meanwhile)
    results = {p.label.split(".")[1]: p for p in data.migrate_data()}
    counts = {column: (p.migrated, p.skipped) for column, p in results.items()}
    assert counts == {
        "email_encrypted": (3, 0),
        "balance_encrypted": (2, 1),
        "preferences_encrypted": (3, 0),
    }
    row = LegacyClient.objects.get(pk=first)
    assert row.balance_encrypted == 777
    assert row.email_encrypted == originals[first]["email"]
    assert verify().complete


@pytest.mark.django_db
def test_the_batch_encryption_stores_what_the_field_would_store():
    make_legacy_clients(1)
    pairs = {pair.column: pair for pair in select_pairs(TABLE)}
    values = {
        "email_encrypted": ["A@B.example", "", "Zoë@Example.com"],
        "balance_encrypted": [0, -12, 10**30],
        "preferences_encrypted": [{"a": [1, 2.5, None]}, [], "text"],
    }
    for column, column_values in values.items():
        field = pairs[column].field
        sealed = field.encrypt_many(column_values)
        assert [field.decrypt(text) for text in sealed] == column_values
        if column == "email_encrypted":
            # Same search token as a save: lookups find migrated rows.
            assert [text[:TOKEN_LENGTH] for text in sealed] == [
                field.encrypt(value)[:TOKEN_LENGTH] for value in column_values
            ]


def test_a_field_with_its_own_encrypt_keeps_it():
    class Reversed(EncryptedString):
        def encrypt(self, value):
            return f"reversed:{value[::-1]}"

    assert Reversed(context="tests.reversed").encrypt_many(["abc", None]) == ["reversed:cba", None]


def test_texts_are_joined_for_the_database_only_when_they_can_be_split_back():
    assert writers._joined(["ape:AAA", "apt1ff", "17"]) == "ape:AAA,apt1ff,17"
    assert writers._joined(["a,b", "c"]) is None
    assert writers._joined(["a", ""]) is None


@postgresql_only
@pytest.mark.django_db
def test_texts_that_cannot_be_joined_are_sent_as_arrays():
    (client,) = make_legacy_clients(1)
    (pair,) = [p for p in select_pairs(TABLE) if p.column == "balance_encrypted"]
    with transaction.atomic():
        written = writers._write([pair], [client], [["not, a ciphertext"]], connection)
    assert written == 1
    assert stored(client, "balance_encrypted") == "not, a ciphertext"


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.fixture
def settings_seen_by_batches(monkeypatch) -> Counter:
    """The synchronous_commit setting each batch's encryption ran under, counted."""
    seen: Counter = Counter()
    real_encrypt = encryption.encrypt_rows

    def looking(pair, rows, connection):
        seen[synchronous_commit()] += 1
        return real_encrypt(pair, rows, connection)

    monkeypatch.setattr(encryption, "encrypt_rows", looking)
    return seen


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_batches_commit_without_waiting_for_the_flush_and_nothing_else_does(
    settings_seen_by_batches,
):
    seen = settings_seen_by_batches
    originals = make_legacy_clients(5)
    assert synchronous_commit() == "on"
    data.migrate_data(batch_size=2)
    assert seen == {"off": 3 * len(ENCRYPTED)}  # batches of 2, 2, 1
    assert synchronous_commit() == "on"  # SET LOCAL ended with each batch
    assert_migrated(originals)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_inside_a_callers_transaction_the_commit_setting_is_left_alone(settings_seen_by_batches):
    seen = settings_seen_by_batches
    make_legacy_clients(2)
    with transaction.atomic():
        data.migrate_data()
        assert synchronous_commit() == "on"
    assert seen == {"on": len(ENCRYPTED)}
    assert verify().complete


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_with_autocommit_turned_off_by_the_caller_the_commit_setting_is_left_alone(
    settings_seen_by_batches,
):
    seen = settings_seen_by_batches
    make_legacy_clients(2)
    transaction.set_autocommit(False)
    try:
        data.migrate_data()
        assert synchronous_commit() == "on"
        transaction.commit()
    finally:
        transaction.set_autocommit(True)
    assert seen == {"on": len(ENCRYPTED)}
    assert verify().complete
