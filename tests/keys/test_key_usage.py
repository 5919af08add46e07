"""Encryptions counted per (key version, context): in memory, flushed to the keyusage
table, summed across processes, and warned about (system check W003, ``encryption_keys
status``) before the AES-GCM bound for random nonces (2**32 per key) comes near."""

from __future__ import annotations

import threading
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core import checks
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connections, transaction

from alphapulse_encryption import encrypt_field, get_optimized_cipher, get_searchable_cipher
from alphapulse_encryption.checks import check_key_usage, check_keys
from alphapulse_encryption.keys import usage
from alphapulse_encryption.management.commands.encryption_keys import Command
from alphapulse_encryption.models import KeyUsage
from tests.factories import CustomerFactory
from tests.settings import TEST_KEY_V1, TEST_KEY_V2


@pytest.fixture(autouse=True)
def fresh_counter():
    """Counts left pending by earlier tests must not leak into these."""
    usage.counter.discard()
    yield usage.counter
    usage.counter.discard()


def _table() -> dict[tuple[int, str], int]:
    return {(u.version, u.context): u.encryptions for u in KeyUsage.objects.all()}


def _status() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("encryption_keys", "status", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_fields_and_the_functional_api_count_every_value_they_encrypt(fresh_counter):
    CustomerFactory(email="count@example.com", phone=None, api_secret=None)
    encrypt_field("x", context="api.ctx")
    encrypt_field("y", searchable=True, context="api.ctx")
    get_optimized_cipher().batch_encrypt(["a", None, "b"], context="batch.ctx")
    get_searchable_cipher().encrypt("z", "search.ctx")
    pending = fresh_counter.pending()
    assert pending[(1, "testapp.customer.email")] == 1
    assert (1, "testapp.customer.phone") not in pending  # NULL encrypts nothing
    assert pending[(1, "api.ctx")] == 2
    assert pending[(1, "batch.ctx")] == 2
    assert pending[(1, "search.ctx")] == 1


@pytest.mark.django_db
def test_flushes_add_up_in_the_table_and_pending_counts_are_included_in_reads(fresh_counter):
    for _ in range(3):
        encrypt_field("v", context="flush.ctx")
    assert fresh_counter.flush() == 3
    assert _table() == {(1, "flush.ctx"): 3}
    encrypt_field("v", context="flush.ctx")
    assert usage.usage_counts()[(1, "flush.ctx")] == 4  # table 3 + pending 1
    fresh_counter.flush()
    assert _table() == {(1, "flush.ctx"): 4}
    assert fresh_counter.pending() == {}


@pytest.mark.django_db
def test_a_failed_flush_keeps_the_counts_for_the_next_one(fresh_counter, monkeypatch):
    encrypt_field("v", context="kept.ctx")

    def fail(counts):
        raise DatabaseError("disk full")

    monkeypatch.setattr(usage, "_add_to_table", fail)
    with pytest.raises(DatabaseError):
        fresh_counter.flush()
    assert fresh_counter.pending() == {(1, "kept.ctx"): 1}
    monkeypatch.undo()
    fresh_counter.flush()
    assert _table() == {(1, "kept.ctx"): 1}


@pytest.mark.django_db
def test_no_automatic_flush_inside_a_transaction_and_a_failing_one_never_breaks_encryption(
    fresh_counter, monkeypatch, settings
):
    settings.ALPHAPULSE_ENCRYPTION = {
        **settings.ALPHAPULSE_ENCRYPTION,
        "KEY_USAGE_FLUSH_SECONDS": 0,
    }
    encrypt_field("in a transaction", context="atomic.ctx")  # the test runs in one
    assert _table() == {}
    fresh_counter._not_before = 0.0  # the pause after a flush refused in a transaction is over

    attempts = []

    def broken_table(counts):
        attempts.append(counts)
        raise DatabaseError("no space left on device")

    monkeypatch.setattr(usage, "_add_to_table", broken_table)
    outside = {"default": SimpleNamespace(in_atomic_block=False)}
    monkeypatch.setattr(usage, "connections", outside)
    assert encrypt_field("still encrypted", context="atomic.ctx").startswith("ape:")
    assert len(attempts) == 1
    assert fresh_counter.pending()[(1, "atomic.ctx")] == 2


@pytest.mark.django_db
def test_inside_a_transaction_a_due_flush_is_looked_at_again_only_after_a_pause(
    fresh_counter, monkeypatch, settings
):
    settings.ALPHAPULSE_ENCRYPTION = {
        **settings.ALPHAPULSE_ENCRYPTION,
        "KEY_USAGE_FLUSH_SECONDS": 0,
    }
    looked = []
    real = usage.router.db_for_write

    def counted(model, **hints):
        if model is KeyUsage:
            looked.append(model)
        return real(model, **hints)

    monkeypatch.setattr(usage.router, "db_for_write", counted)
    get_optimized_cipher().batch_encrypt(["x"] * 3, context="bulk.ctx")
    for _ in range(50):
        encrypt_field("sealed inside bulk_create's transaction", context="bulk.ctx")
    assert len(looked) == 1
    assert fresh_counter.pending()[(1, "bulk.ctx")] == 53


@pytest.mark.django_db(transaction=True)
def test_outside_transactions_counts_are_flushed_when_due(fresh_counter, settings):
    settings.ALPHAPULSE_ENCRYPTION = {
        **settings.ALPHAPULSE_ENCRYPTION,
        "KEY_USAGE_FLUSH_SECONDS": 0,
    }
    encrypt_field("v", context="due.ctx")
    assert _table() == {(1, "due.ctx"): 1}
    settings.ALPHAPULSE_ENCRYPTION = {
        **settings.ALPHAPULSE_ENCRYPTION,
        "KEY_USAGE_FLUSH_SECONDS": 3600,
    }
    fresh_counter.flush()
    encrypt_field("v", context="due.ctx")
    assert _table() == {(1, "due.ctx"): 1}  # not due yet
    get_optimized_cipher().batch_encrypt(["v"] * usage.FLUSH_EVERY_VALUES, context="due.ctx")
    assert _table() == {(1, "due.ctx"): 2 + usage.FLUSH_EVERY_VALUES}  # due by volume


@pytest.mark.django_db(transaction=True)
def test_threads_lose_no_count_and_concurrent_flushes_add_up(fresh_counter):
    """Eight threads encrypt and flush at once, each on its own connection; the table ends
    with exactly the number of values encrypted (the row is created once, then added to)."""
    threads_n, per_thread = 8, 300
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            for i in range(per_thread):
                encrypt_field(i, context="threads.ctx")
                if i % 100 == 99:
                    own = usage.UsageCounter()  # another process's counter
                    own.add(1, "threads.other", 1)
                    own.flush()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not errors, errors
    fresh_counter.flush()
    assert _table() == {(1, "threads.ctx"): threads_n * per_thread, (1, "threads.other"): 24}


def test_a_long_context_is_stored_as_a_prefix_and_a_hash():
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    label_a, label_b = usage.context_label(long_a), usage.context_label(long_b)
    assert len(label_a) == len(label_b) == 255
    assert label_a != label_b and label_a.startswith("a" * 200)
    assert usage.context_label("short") == "short"


@pytest.mark.django_db
def test_status_shows_encryptions_per_version_and_its_busiest_context(fresh_counter, settings):
    settings.ALPHAPULSE_ENCRYPTION = {
        "MASTER_KEYS": {1: TEST_KEY_V1, 2: TEST_KEY_V2},
        "ACTIVE_KEY_VERSION": 1,
    }
    for _ in range(3):
        encrypt_field("v", context="status.busy")
    encrypt_field("v", context="status.quiet")
    settings.ALPHAPULSE_ENCRYPTION = {**settings.ALPHAPULSE_ENCRYPTION, "ACTIVE_KEY_VERSION": 2}
    encrypt_field("v", context="status.quiet")
    out, err = _status()
    assert Command.ENCRYPTIONS_HEADER.format(warn_at=2**30) in out
    assert (
        Command.ENCRYPTIONS_LINE.format(
            version=1, total=4, contexts=2, busiest=3, busiest_context="status.busy"
        )
        in out
    )
    assert "  version 2: 1 in 1 context(s)" in out
    assert err == ""
    assert _table()[(1, "status.busy")] == 3  # status flushed this process's counts


@pytest.mark.django_db
def test_status_and_the_database_check_warn_when_the_active_key_nears_the_bound(
    fresh_counter, settings
):
    settings.ALPHAPULSE_ENCRYPTION = {
        "MASTER_KEYS": {1: TEST_KEY_V1, 2: TEST_KEY_V2},
        "ACTIVE_KEY_VERSION": 1,
        "KEY_USAGE_WARN_AT": 5,
    }
    KeyUsage.objects.create(version=1, context="hot.ctx", encryptions=4)
    assert check_key_usage(databases=["default"]) == []
    encrypt_field("one more", context="hot.ctx")
    [warning] = check_key_usage(databases=["default"])
    assert warning.id == "alphapulse_encryption.W003"
    assert warning.level == checks.WARNING
    assert "key version 1 has encrypted 5 values under the context 'hot.ctx'" in warning.msg
    assert "2**32 (4,294,967,296)" in warning.msg and "rotate" in warning.hint
    _, err = _status()
    assert (
        Command.ENCRYPTIONS_WARNING.format(version=1, context="hot.ctx", count=5, warn_at=5) in err
    )
    # Without databases (plain `check`, makemigrations) the table is not read.
    assert check_key_usage() == []
    # Once a new version is active the old key encrypts no more: no warning.
    settings.ALPHAPULSE_ENCRYPTION = {**settings.ALPHAPULSE_ENCRYPTION, "ACTIVE_KEY_VERSION": 2}
    assert check_key_usage(databases=["default"]) == []
    assert _status()[1] == ""


@pytest.mark.django_db
def test_the_database_check_is_quiet_before_migrate(monkeypatch):
    monkeypatch.setattr(
        usage, "usage_counts", lambda: (_ for _ in ()).throw(DatabaseError("no table"))
    )
    assert check_key_usage(databases=["default"]) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_PLAINTEXT_BYTES", 0),
        ("MAX_PLAINTEXT_BYTES", "1MB"),
        ("KEY_USAGE_WARN_AT", 2**32 + 1),
        ("KEY_USAGE_WARN_AT", 0.5),
        ("KEY_USAGE_FLUSH_SECONDS", -1),
    ],
)
def test_bad_limit_settings_are_configuration_errors(settings, key_env, name, value):
    settings.ALPHAPULSE_ENCRYPTION = {**settings.ALPHAPULSE_ENCRYPTION, name: value}
    [error] = [m for m in check_keys() if m.id == "alphapulse_encryption.E005"]
    assert name in error.msg


@pytest.mark.django_db
def test_an_explicit_flush_inside_the_callers_transaction_is_rolled_back_with_it(
    fresh_counter,
):
    """Why automatic flushes wait for the connection to leave its transaction."""
    encrypt_field("v", context="rollback.ctx")
    with pytest.raises(RuntimeError), transaction.atomic():
        fresh_counter.flush()
        raise RuntimeError("the caller's transaction fails")
    assert _table() == {}


@pytest.mark.django_db
def test_the_database_check_creates_no_key_version(settings):
    from alphapulse_encryption.models import KeyVersion
    from tests.keys.conftest import database_keyring_settings

    settings.ALPHAPULSE_ENCRYPTION = database_keyring_settings()
    assert check_key_usage(databases=["default"]) == []
    assert not KeyVersion.objects.exists()  # an empty keyring is bootstrapped on use only


MISSING_TABLE = "alphapulse_encryption_keyusage_not_migrated"


def _said_missing(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.msg == usage.UsageCounter.TABLE_MISSING
    ]


@pytest.mark.django_db(transaction=True)
def test_a_missing_table_is_said_once_not_on_every_flush(
    fresh_counter, monkeypatch, settings, caplog
):
    """As before `migrate`: the table is really absent (the model points at a name no
    database has), and every value sealed makes a flush due."""
    settings.ALPHAPULSE_ENCRYPTION = {
        **settings.ALPHAPULSE_ENCRYPTION,
        "KEY_USAGE_FLUSH_SECONDS": 0,
    }
    monkeypatch.setattr(usage, "_RETRY_AFTER_FAILURE_SECONDS", 0)
    monkeypatch.setattr(KeyUsage._meta, "db_table", MISSING_TABLE)
    caplog.set_level("WARNING", logger="alphapulse_encryption.keys")
    for _ in range(20):
        encrypt_field("v", context="missing.ctx")
    assert _said_missing(caplog) == [usage.UsageCounter.TABLE_MISSING % MISSING_TABLE]
    assert "manage.py migrate" in _said_missing(caplog)[0]
    assert not [r for r in caplog.records if r.msg == usage.UsageCounter.NOT_WRITTEN]
    assert fresh_counter.pending() == {(1, "missing.ctx"): 20}

    # The table appears: the kept counts are written; once it goes missing again that is
    # said again, once.
    monkeypatch.undo()
    settings.ALPHAPULSE_ENCRYPTION = {
        **settings.ALPHAPULSE_ENCRYPTION,
        "KEY_USAGE_FLUSH_SECONDS": 0,
    }
    monkeypatch.setattr(usage, "_RETRY_AFTER_FAILURE_SECONDS", 0)
    encrypt_field("v", context="missing.ctx")
    assert _table() == {(1, "missing.ctx"): 21}
    monkeypatch.setattr(KeyUsage._meta, "db_table", MISSING_TABLE)
    for _ in range(5):
        encrypt_field("v", context="missing.ctx")
    assert len(_said_missing(caplog)) == 2


@pytest.mark.django_db
def test_after_a_failed_flush_the_next_try_waits(fresh_counter, monkeypatch, settings):
    """Counts kept after a failure keep a flush due by volume; without the pause every
    value sealed would query the database again."""
    settings.ALPHAPULSE_ENCRYPTION = {
        **settings.ALPHAPULSE_ENCRYPTION,
        "KEY_USAGE_FLUSH_SECONDS": 3600,
    }
    attempts = []

    def broken_table(counts):
        attempts.append(counts)
        raise DatabaseError("no space left on device")

    monkeypatch.setattr(usage, "_add_to_table", broken_table)
    monkeypatch.setattr(usage, "connections", {"default": SimpleNamespace(in_atomic_block=False)})
    get_optimized_cipher().batch_encrypt(["v"] * usage.FLUSH_EVERY_VALUES, context="wait.ctx")
    for _ in range(50):
        encrypt_field("v", context="wait.ctx")
    assert len(attempts) == 1
    assert fresh_counter.pending() == {(1, "wait.ctx"): usage.FLUSH_EVERY_VALUES + 50}


@pytest.mark.django_db(transaction=True)
def test_status_without_the_table_says_to_run_migrate(fresh_counter, monkeypatch):
    monkeypatch.setattr(KeyUsage._meta, "db_table", MISSING_TABLE)
    encrypt_field("v", context="status.missing")
    with pytest.raises(CommandError) as caught:
        _status()
    assert str(caught.value) == Command.TABLE_MISSING.format(table=MISSING_TABLE)
