"""The database fails in the middle of a batch of ``encrypt_migrate --migrate-data`` or
``encryption_keys reencrypt``: the server drops the connection, a statement times out,
the disk is full. The command stops with an error that says the run can be resumed; the
batches committed before stay, the failed one is rolled back; a rerun completes and every
row is there exactly once with its original value."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from alphapulse_encryption.keys import EncryptionKeyManager
from alphapulse_encryption.management.commands.encrypt_migrate import Command as Migrate
from alphapulse_encryption.management.commands.encryption_keys import Command as Keys
from tests.keys.conftest import database_keyring_settings
from tests.reliability import scenarios
from tests.reliability.faults import FAULTS, Injector
from tests.testapp.models import Customer, LegacyClient

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 40
BATCH = "10"
COMMANDS = {
    scenarios.LEGACY: ("encrypt_migrate", "--migrate-data", "--batch-size", BATCH),
    scenarios.CUSTOMERS: ("encryption_keys", "reencrypt", "--batch-size", BATCH),
}
HINTS = {
    scenarios.LEGACY: Migrate.DATABASE_FAILED.split("(")[0],
    scenarios.CUSTOMERS: Keys.REENCRYPT_DATABASE_FAILED.split("(")[0],
}
TABLES = {
    scenarios.LEGACY: LegacyClient._meta.db_table,
    scenarios.CUSTOMERS: Customer._meta.db_table,
}


def _run(kind: str) -> None:
    call_command(*COMMANDS[kind], stdout=StringIO(), stderr=StringIO())


def _fail_mid_run_then_rerun(kind: str, fault: str, settings, reliability) -> None:
    if kind == scenarios.CUSTOMERS:
        settings.ALPHAPULSE_ENCRYPTION = database_keyring_settings()
    expected = scenarios.seed(kind, ROWS)
    if kind == scenarios.CUSTOMERS:
        EncryptionKeyManager().rotate_keys()
    # The third UPDATE: at least one batch is committed by then, and more are to come.
    injector = Injector(TABLES[kind], 3, FAULTS[fault])
    with connection.execute_wrapper(injector), pytest.raises(CommandError) as info:
        _run(kind)
    assert injector.fired == 1
    reliability.add(faults_injected=1)
    reliability.note(f"{kind} {fault}: {info.value.__cause__!r}")
    assert str(info.value).startswith(HINTS[kind])
    assert "run" in str(info.value) and "again to resume" in str(info.value)
    connection.close_if_unusable_or_obsolete()
    left = scenarios.unfinished(kind)
    assert 0 < left < scenarios.work(kind, ROWS), "the committed batches were not kept"

    _run(kind)
    result = scenarios.check(kind, expected)
    reliability.add(rows_checked=result.checked, rows_lost=result.lost)
    assert result.ok, result.as_dict()
    assert result.checked == ROWS


@pytest.mark.parametrize("kind", [scenarios.LEGACY, scenarios.CUSTOMERS])
@pytest.mark.parametrize("fault", ["statement_timeout", "disk_full"])
def test_a_database_error_mid_batch_stops_the_run_and_a_rerun_completes(
    kind, fault, settings, reliability
):
    _fail_mid_run_then_rerun(kind, fault, settings, reliability)


@pytest.mark.backends("postgresql", "mysql")
@pytest.mark.parametrize("kind", [scenarios.LEGACY, scenarios.CUSTOMERS])
def test_a_connection_dropped_by_the_server_mid_batch_is_survived(kind, settings, reliability):
    """PostgreSQL and MariaDB only: an SQLite database has no server that could end the
    session (its failures are the other tests' timeouts and full disks)."""
    _fail_mid_run_then_rerun(kind, "connection_dropped", settings, reliability)
