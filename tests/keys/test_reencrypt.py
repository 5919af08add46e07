"""``encryption_keys status / reencrypt / retire`` and the service behind them."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from alphapulse_encryption.management.commands.encryption_keys import Command
from alphapulse_encryption.migration import reencrypt as service
from alphapulse_encryption.models import KeyVersion
from tests.factories import CustomerFactory, PositionFactory, TradeFactory
from tests.testapp.models import Customer, Position, Trade

# Non-NULL encrypted values per version: 3 customers (8 fields), accounts (6),
# positions (3), trades (4).
VALUES_PER_VERSION = 3 * (8 + 6 + 3 + 4)


def _run(*args: str, **options) -> str:
    out = StringIO()
    call_command("encryption_keys", *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def _usage():
    return {entry.label: dict(entry.counts) for entry in service.key_version_usage()}


def _counts_in_status(output: str, label: str) -> dict[int, int]:
    line = next(line for line in output.splitlines() if line.strip().startswith(label + ":"))
    return {int(v): int(n) for v, n in re.findall(r"v(\d+)=(\d+)", line)}


@pytest.fixture
def three_versions(db_keyring):
    """Customers, positions and trades written under key versions 1, 2 and 3."""
    snapshot = {}
    for version in (1, 2, 3):
        if version > 1:
            db_keyring.rotate_keys()
        for i in range(3):
            customer = CustomerFactory(email=f"v{version}c{i}@example.com")
            position = PositionFactory(account__customer=customer, quantity=version * 100 + i)
            TradeFactory(account=position.account)
            snapshot[customer.pk] = (customer.email, customer.first_name, customer.date_of_birth)
    return snapshot


def test_status_counts_values_per_version_without_decrypting(three_versions, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("status decrypted a value")

    monkeypatch.setattr("alphapulse_encryption.crypto.cipher.Cipher.decrypt", refuse)
    monkeypatch.setattr("alphapulse_encryption.crypto.cipher.Cipher.batch_decrypt", refuse)
    output = _run("status")
    assert re.search(r"version 1 +retired \(decrypt-only\) +fingerprint [0-9a-f]{16}", output)
    assert re.search(r"version 3 +active +fingerprint [0-9a-f]{16}", output)
    assert _counts_in_status(output, "testapp.Customer.email") == {1: 3, 2: 3, 3: 3}
    assert _counts_in_status(output, "testapp.Position.quantity") == {1: 3, 2: 3, 3: 3}
    # NULLs are not values: unrealized_pnl is set, RiskMetric has no rows.
    assert _counts_in_status(output, "testapp.RiskMetric.exposure") == {1: 0, 2: 0, 3: 0}


def test_reencrypt_moves_every_row_and_status_counts_of_old_versions_drop_to_zero(
    three_versions,
):
    _run("reencrypt", "--batch-size", "2")
    for label, counts in _usage().items():
        assert set(counts) <= {3}, (label, counts)
    output = _run("status")
    assert _counts_in_status(output, "testapp.Customer.email") == {1: 0, 2: 0, 3: 9}
    assert _counts_in_status(output, "testapp.Trade.execution") == {1: 0, 2: 0, 3: 9}
    for pk, (email, first_name, born) in three_versions.items():
        customer = Customer.objects.get(email=email)
        assert (customer.pk, customer.first_name, customer.date_of_birth) == (pk, first_name, born)
    assert sorted(Position.objects.values_list("quantity", flat=True)) == [
        v * 100 + i for v in (1, 2, 3) for i in range(3)
    ]


def test_reencrypt_of_one_model_leaves_the_others(three_versions):
    _run("reencrypt", "--model", "testapp.Customer")
    usage = _usage()
    assert usage["testapp.Customer.email"] == {3: 9}
    assert usage["testapp.Trade.execution"] == {1: 3, 2: 3, 3: 3}


def test_reencrypt_skips_rows_already_at_the_active_version(three_versions):
    first = service.reencrypt(batch_size=4)
    again = service.reencrypt(batch_size=4)
    by_model = {p.model: p for p in first}
    assert by_model["testapp.Customer"].moved == 6
    assert by_model["testapp.Customer"].scanned == 9
    assert all(p.moved == 0 and p.failed == 0 for p in again)


def test_reencrypt_progress_respects_verbosity(three_versions):
    quiet = _run("reencrypt", "--model", "testapp.Customer", verbosity=0)
    assert quiet == ""
    _run("rotate")
    normal = _run("reencrypt", "--model", "testapp.Customer", "--batch-size", "4")
    assert normal.strip() == Command.REENCRYPT_DONE.format(
        model="testapp.Customer", moved=9, scanned=9, version=4
    )
    _run("rotate")
    verbose = _run("reencrypt", "--model", "testapp.Customer", "--batch-size", "4", verbosity=2)
    batches = [line for line in verbose.splitlines() if "rows scanned" in line]
    assert batches == [
        Command.REENCRYPT_BATCH.format(model="testapp.Customer", scanned=4, moved=4, failed=0),
        Command.REENCRYPT_BATCH.format(model="testapp.Customer", scanned=8, moved=8, failed=0),
        Command.REENCRYPT_BATCH.format(model="testapp.Customer", scanned=9, moved=9, failed=0),
    ]


def test_interrupted_reencrypt_resumes_without_losing_a_row(three_versions, monkeypatch):
    real = service._rewrite_batch
    calls = []

    def crash_after_first_batch(*args, **kwargs):
        if calls:
            raise RuntimeError("worker killed")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "_rewrite_batch", crash_after_first_batch)
    with pytest.raises(RuntimeError, match="worker killed"):
        service.reencrypt("testapp.Customer", batch_size=2)
    assert _usage()["testapp.Customer.email"] == {1: 1, 2: 3, 3: 5}  # first batch moved
    monkeypatch.setattr(service, "_rewrite_batch", real)
    resumed = service.reencrypt("testapp.Customer", batch_size=2)
    assert resumed[0].moved == 4  # only the rows still under versions 1 and 2
    assert _usage()["testapp.Customer.email"] == {3: 9}
    assert Customer.objects.count() == 9
    for pk, (email, first_name, born) in three_versions.items():
        customer = Customer.objects.get(pk=pk)
        assert (customer.email, customer.first_name, customer.date_of_birth) == (
            email,
            first_name,
            born,
        )


def test_reencrypt_leaves_rows_that_do_not_decrypt_and_goes_on(three_versions):
    victim, other = Customer.objects.order_by("pk")[:2]
    table = connection.ops.quote_name(Customer._meta.db_table)
    with connection.cursor() as cursor:
        # Another field's ciphertext: a well-formed envelope that fails authentication here.
        cursor.execute(f"SELECT last_name FROM {table} WHERE id = %s", [other.pk])
        foreign = cursor.fetchone()[0]
        cursor.execute(f"UPDATE {table} SET first_name = %s WHERE id = %s", [foreign, victim.pk])
    results = service.reencrypt("testapp.Customer")
    assert (results[0].moved, results[0].failed, results[0].failed_pks) == (5, 1, [victim.pk])
    assert _usage()["testapp.Customer.first_name"] == {1: 1, 3: 8}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT first_name FROM {table} WHERE id = %s", [victim.pk])
        assert cursor.fetchone()[0] == foreign  # left exactly as it was


def test_retire_is_refused_while_values_use_the_version(three_versions):
    with pytest.raises(CommandError) as info:
        _run("retire", "1")
    assert str(info.value) == Command.RETIRE_IN_USE.format(version=1, count=VALUES_PER_VERSION)
    assert KeyVersion.objects.get(version=1).status == "retired"


def test_forced_retirement_needs_confirmation(three_versions):
    with pytest.raises(CommandError) as info:
        _run("retire", "1", "--force")
    assert str(info.value) == Command.RETIRE_NEEDS_CONFIRMATION.format(version=1)
    assert KeyVersion.objects.get(version=1).status == "retired"


def test_forced_and_confirmed_retirement_destroys_the_key(three_versions):
    output = _run("retire", "2", "--force", "--yes")
    assert output.strip() == Command.RETIRED_FORCED.format(version=2, count=VALUES_PER_VERSION)
    assert KeyVersion.objects.get(version=2).status == "destroyed"


def test_retire_after_reencrypt_succeeds(three_versions):
    _run("reencrypt")
    assert _run("retire", "1").strip() == Command.RETIRED.format(version=1)
    assert _run("retire", "2").strip() == Command.RETIRED.format(version=2)
    assert list(KeyVersion.objects.values_list("status", flat=True)) == [
        "destroyed",
        "destroyed",
        "active",
    ]
    assert Trade.objects.count() == 9
    assert all(t.execution["venue"] == "XNAS" for t in Trade.objects.all())


def test_retiring_the_active_version_is_a_command_error(three_versions):
    with pytest.raises(CommandError, match="active version"):
        _run("retire", "3")


def test_retire_with_the_settings_provider_says_what_to_do(db):
    with pytest.raises(CommandError, match="remove its key"):
        _run("retire", "7")


def test_rotate_command_prints_the_new_version(db_keyring):
    db_keyring.active_version  # noqa: B018
    assert _run("rotate").strip() == Command.ROTATED.format(version=2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "testapp.Nope"], "no installed model"),
        (["--model", "auth.Group"], "has no encrypted fields"),
        (["--batch-size", "0"], "at least 1"),
    ],
)
def test_reencrypt_bad_arguments_are_command_errors(db_keyring, args, message):
    with pytest.raises(CommandError, match=message):
        _run("reencrypt", *args)
