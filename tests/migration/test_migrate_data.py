"""--migrate-data and --verify on LegacyClient: batches, resuming, failures, dual write."""

from __future__ import annotations

from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alphapulse_encryption.management.commands.encrypt_migrate import Command
from alphapulse_encryption.migration import data, writers
from alphapulse_encryption.migration.models import EncryptionMigrationFailure
from alphapulse_encryption.migration.verify import verify
from tests.testapp.models import LegacyClient

from .conftest import ENCRYPTED, TABLE, assert_migrated, make_legacy_clients

pytestmark = pytest.mark.django_db


def run(*args: str, **options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("encrypt_migrate", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def verify_fails() -> str:
    out = StringIO()
    with pytest.raises(CommandError, match="Verification incomplete"):
        call_command("encrypt_migrate", "--verify", stdout=out)
    return out.getvalue()


def count_writes(monkeypatch) -> Counter:
    """Counts, per (column, pk), how often a ciphertext was written."""
    writes: Counter = Counter()
    real_write = writers._write

    def counting_write(pairs, pks, values, connection):
        written = real_write(pairs, pks, values, connection)
        writes.update((pair.column, pk) for pair in pairs for pk in pks)
        return written

    monkeypatch.setattr(writers, "_write", counting_write)
    return writes


def test_migrates_every_column_in_batches_and_verify_proves_it():
    originals = make_legacy_clients(23)
    LegacyClient.objects.create(name="empty")  # nothing to migrate: counted as migrated
    verify_fails()
    out, _ = run("--migrate-data", "--batch-size", "5", verbosity=2)
    # Progress after the first batch, for each column: they advance together.
    assert f"{TABLE}.email_encrypted: 5/23 rows" in out
    assert f"{TABLE}.balance_encrypted: 5/23 rows" in out
    assert "rows/s, ETA" in out
    assert f"{TABLE}.preferences_encrypted: 23 row(s) encrypted, 0 failed" in out
    assert_migrated(originals)
    out, _ = run("--verify")
    assert Command.VERIFY_COMPLETE in out
    report = verify()
    assert [(c.total, c.migrated, c.pending, c.failed) for c in report.columns] == [
        (24, 24, 0, 0)
    ] * 3


def test_a_second_run_finds_nothing_to_do(monkeypatch):
    make_legacy_clients(4)
    run("--migrate-data")
    writes = count_writes(monkeypatch)
    out, _ = run("--migrate-data")
    assert not writes
    assert "0 row(s) encrypted" in out


def test_batches_never_load_more_than_the_batch_size():
    make_legacy_clients(12)
    with CaptureQueriesContext(connection) as queries:
        data.migrate_data(batch_size=4)
    table = f"FROM {connection.ops.quote_name(TABLE)}"
    row_reads = [
        q["sql"]
        for q in queries
        if q["sql"].startswith("SELECT")
        and table in q["sql"]
        and "1 = 0" not in q["sql"]  # the column list
        and "COUNT(" not in q["sql"].upper()
    ]
    assert row_reads and all("LIMIT 4" in sql for sql in row_reads)


def test_a_run_killed_between_batches_resumes_and_migrates_each_row_exactly_once(monkeypatch):
    originals = make_legacy_clients(30)
    writes = count_writes(monkeypatch)
    real_run_batch = data._run_batch
    calls = {"n": 0}

    def killed_after_four_batches(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("worker killed")
        return real_run_batch(*args, **kwargs)

    monkeypatch.setattr(data, "_run_batch", killed_after_four_batches)
    with pytest.raises(KeyboardInterrupt):
        run("--migrate-data", "--batch-size", "7")
    # Four committed batches, every column of a row written together.
    assert sum(writes.values()) == 28 * len(ENCRYPTED)
    report = verify()
    assert [(c.migrated, c.pending) for c in report.columns] == [(28, 2)] * len(ENCRYPTED)

    monkeypatch.setattr(data, "_run_batch", real_run_batch)
    run("--migrate-data", "--batch-size", "7")
    assert set(writes.values()) == {1}
    assert len(writes) == 30 * len(ENCRYPTED)
    assert Command.VERIFY_COMPLETE in run("--verify")[0]
    assert_migrated(originals)


def test_a_row_that_cannot_be_encrypted_is_recorded_and_the_rest_goes_on():
    originals = make_legacy_clients(6)
    bad = LegacyClient.objects.create(name="bad", email="bad@x.com", balance="not a number")
    LegacyClient.objects.filter(pk=bad.pk).update(email_encrypted=None)
    out, err = run("--migrate-data", "--batch-size", "2")
    assert f"{TABLE}.balance_encrypted: 6 row(s) encrypted, 1 failed" in out
    assert "recorded in the encryption_migrations table" in err
    assert_migrated(originals)
    failure = EncryptionMigrationFailure.objects.get()
    assert (failure.table_name, failure.column_name, failure.source_column_name) == (
        TABLE,
        "balance_encrypted",
        "balance",
    )
    assert (failure.app_label, failure.model_name, failure.row_pk) == (
        "testapp",
        "legacyclient",
        str(bad.pk),
    )
    assert failure.attempts == 1
    assert "ValidationError" in failure.error
    assert "not a number" not in failure.error  # no plaintext in the failure table

    report = verify_fails()
    assert "balance_encrypted" in report
    run("--migrate-data")  # recorded rows are skipped, not retried
    assert EncryptionMigrationFailure.objects.get().attempts == 1
    run("--migrate-data", "--retry-failed")
    assert EncryptionMigrationFailure.objects.get().attempts == 2

    LegacyClient.objects.filter(pk=bad.pk).update(balance="17")  # dual write fixes it
    run("--migrate-data")
    assert not EncryptionMigrationFailure.objects.exists()  # the resolved record is gone
    assert Command.VERIFY_COMPLETE in run("--verify")[0]


def test_retry_failed_migrates_a_value_fixed_without_dual_write():
    make_legacy_clients(2)
    bad = LegacyClient.objects.create(name="bad", balance="12 EUR")
    LegacyClient.objects.filter(pk=bad.pk).update(balance_encrypted=None)
    run("--migrate-data")
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:  # fixed by SQL, as an operator would
        cursor.execute(f"UPDATE {qn(TABLE)} SET balance = '12' WHERE id = %s", [bad.pk])
    run("--migrate-data")
    assert EncryptionMigrationFailure.objects.count() == 1
    out, _ = run("--migrate-data", "--retry-failed")
    assert "1 row(s) encrypted, 0 failed" in out
    assert not EncryptionMigrationFailure.objects.exists()
    assert LegacyClient.objects.get(pk=bad.pk).balance_encrypted == 12


def test_rows_written_through_the_orm_during_the_run_end_up_encrypted():
    make_legacy_clients(20)
    first_pk = LegacyClient.objects.order_by("pk").values_list("pk", flat=True)[0]
    writes = {"n": 0}

    def application_writes(progress: data.MigrateProgress) -> None:
        # Between two batches, as the live application would.
        writes["n"] += 1
        LegacyClient.objects.create(name=f"new {writes['n']}", email=f"N{writes['n']}@x.com")
        LegacyClient.objects.filter(pk=first_pk + 19).update(balance=str(writes["n"]))
        row = LegacyClient.objects.get(pk=first_pk + 18)
        row.preferences = {"changed": writes["n"]}
        row.save()

    data.migrate_data(batch_size=3, on_batch=application_writes)
    assert writes["n"] > 3
    assert verify().complete
    assert LegacyClient.objects.get(pk=first_pk + 19).balance_encrypted == writes["n"]
    assert LegacyClient.objects.get(pk=first_pk + 18).preferences_encrypted == {
        "changed": writes["n"]
    }
    assert LegacyClient.objects.get(name="new 1").email_encrypted == "N1@x.com"


def test_verify_lists_mismatches_and_values_that_do_not_decrypt():
    make_legacy_clients(3)
    run("--migrate-data")
    first, second, third = LegacyClient.objects.order_by("pk").values_list("pk", flat=True)
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(TABLE)} SET balance_encrypted = "
            f"(SELECT balance_encrypted FROM (SELECT * FROM {qn(TABLE)}) t WHERE t.id = %s) "
            "WHERE id = %s",
            [first, second],
        )
        cursor.execute(
            f"UPDATE {qn(TABLE)} SET preferences_encrypted = 'garbage' WHERE id = %s", [third]
        )
    out = verify_fails()
    assert f"{TABLE}.balance_encrypted pk={second}: decrypts to a value different" in out
    assert f"{TABLE}.preferences_encrypted pk={third}: does not decrypt (malformed)" in out
    report = verify()
    assert [c.mismatched for c in report.columns] == [0, 1, 1]


def test_verbosity_zero_prints_nothing():
    make_legacy_clients(2)
    out, err = run("--migrate-data", verbosity=0)
    assert (out, err) == ("", "")


def test_dual_write_survives_the_app_registry_rebuilding_its_managers():
    # apps.clear_cache() (called whenever a model is registered) rebuilds _meta.managers
    # from the declared managers; rows written afterwards must still be dual-written.
    from django.apps import apps

    apps.clear_cache()
    client = LegacyClient.objects.create(name="a", email="a@x.com")
    LegacyClient.objects.filter(pk=client.pk).update(balance="3")
    assert LegacyClient.objects.get(pk=client.pk).balance_encrypted == 3
    assert verify().complete


def test_a_json_null_is_a_failure_for_migrate_data_and_for_verify_alike():
    make_legacy_clients(1)
    client = LegacyClient.objects.create(name="json null")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(TABLE)} SET preferences = 'null' WHERE id = %s",
            [client.pk],
        )
    _, err = run("--migrate-data")
    assert "converts to NULL" in err
    column = verify().columns[2]
    assert (column.label, column.failed, column.pending) == (f"{TABLE}.preferences_encrypted", 1, 0)
    LegacyClient.objects.filter(pk=client.pk).update(preferences=None)  # SQL NULL
    run("--migrate-data")
    assert verify().complete


def test_ciphertext_found_in_a_plaintext_column_is_not_encrypted_again():
    client = LegacyClient.objects.create(name="a", email="x@y.z")
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT email_encrypted FROM {qn(TABLE)} WHERE id = %s", [client.pk])
        (ciphertext,) = cursor.fetchone()
        cursor.execute(
            f"UPDATE {qn(TABLE)} SET email = %s, email_encrypted = NULL WHERE id = %s",
            [ciphertext, client.pk],
        )
    _, err = run("--migrate-data")
    assert "already holds an encrypted value" in err
    assert EncryptionMigrationFailure.objects.get().column_name == "email_encrypted"
