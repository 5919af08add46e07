"""Application writes racing the bulk commands, and keys changing under readers. Each
thread has its own database connection. Afterwards nothing is lost, no search token is
stale (the token column holds the token of the value beside it, under its key version),
and no value is left under a key version that is no longer active.

Two rotations at once are tested in tests/keys/test_concurrent_rotation.py, several
``--migrate-data`` workers at once in tests/migration/test_workers.py.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from alphapulse_encryption import decrypt_field, encrypt_field, keys
from alphapulse_encryption.crypto import Cipher, key_version_of
from alphapulse_encryption.keys import DatabaseKeyProvider, EncryptionKeyManager
from alphapulse_encryption.migration import data
from alphapulse_encryption.migration import reencrypt as reencrypt_service
from tests.keys.conftest import database_keyring_settings
from tests.reliability import scenarios
from tests.testapp.models import Customer, LegacyClient

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WRITERS = 3
# Writers go on while the command runs, and do at least this many operations each.
MIN_OPERATIONS = 25
MAX_OPERATIONS = 600
ROTATIONS = 8


def run_threads(targets: dict[str, Callable[[], None]], timeout: float = 120) -> None:
    """Start every target in its own thread at once; re-raise the first failure."""
    barrier = threading.Barrier(len(targets))
    errors: list[tuple[str, BaseException]] = []

    def run(name: str, target: Callable[[], None]) -> None:
        try:
            barrier.wait(timeout=30)
            target()
        except BaseException as exc:
            errors.append((name, exc))
            barrier.abort()
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(name, target), name=name)
        for name, target in targets.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        name, error = errors[0]
        raise AssertionError(f"{name} failed: {error!r} ({len(errors)} failure(s))") from error


class Writers:
    """Application threads, each owning some rows, writing until the command is done."""

    def __init__(self, expected: dict[Any, dict[str, Any]], done: threading.Event) -> None:
        self.expected = expected
        self.done = done
        self.lock = threading.Lock()
        self.operations: Counter[str] = Counter()
        pks = sorted(expected)
        self.owned = {n: pks[n::WRITERS] for n in range(WRITERS)}

    def targets(self, operations: dict[str, Callable[[int, int, random.Random], None]]):
        def loop(n: int) -> None:
            rng = random.Random(n)
            names = sorted(operations)
            for i in range(MAX_OPERATIONS):
                if self.done.is_set() and i >= MIN_OPERATIONS:
                    return
                name = rng.choice(names)
                operations[name](n, i, rng)
                with self.lock:
                    self.operations[name] += 1

        return {f"writer-{n}": (lambda n=n: loop(n)) for n in range(WRITERS)}

    def expect(self, pk: Any, **values: Any) -> None:
        with self.lock:
            self.expected.setdefault(pk, {}).update(values)

    @property
    def total(self) -> int:
        return sum(self.operations.values())


def _legacy_values(email: str, balance: int, preferences: Any) -> dict[str, Any]:
    return {
        "email": email,
        "email_encrypted": email,
        "balance": str(balance),
        "balance_encrypted": balance,
        "preferences": preferences,
        "preferences_encrypted": preferences,
    }


@pytest.mark.backends("postgresql", "mysql")
def test_orm_writes_racing_migrate_data_lose_nothing(reliability):
    """PostgreSQL and MariaDB (row locks, SKIP LOCKED). On SQLite one writer at a time
    holds the database, so there is no race to test; tests/migration/test_migrate_data.py
    covers writes between batches there."""
    expected = scenarios.seed(scenarios.LEGACY, 150)
    done = threading.Event()
    writers = Writers(expected, done)
    batches = []

    def migrate() -> None:
        try:
            data.migrate_data(batch_size=5, on_batch=lambda progress: batches.append(1))
        finally:
            done.set()

    def save(n: int, i: int, rng: random.Random) -> None:
        pk = rng.choice(writers.owned[n])
        row = LegacyClient.objects.get(pk=pk)
        row.email, row.preferences = f"Saved{n}.{i}@Example.com", {"writer": n, "op": i}
        row.save()
        old = writers.expected[pk]
        writers.expect(pk, **_legacy_values(row.email, old["balance_encrypted"], row.preferences))

    def update_balance(n: int, i: int, rng: random.Random) -> None:
        pk = rng.choice(writers.owned[n])
        LegacyClient.objects.filter(pk=pk).update(balance=str(n * 10_000 + i))
        writers.expect(pk, balance=str(n * 10_000 + i), balance_encrypted=n * 10_000 + i)

    def update_email(n: int, i: int, rng: random.Random) -> None:
        pk = rng.choice(writers.owned[n])
        email = f"Updated{n}.{i}@Example.com"
        LegacyClient.objects.filter(pk=pk).update(email=email)
        writers.expect(pk, email=email, email_encrypted=email)

    def bulk_update(n: int, i: int, rng: random.Random) -> None:
        rows = list(LegacyClient.objects.filter(pk__in=rng.sample(writers.owned[n], 2)))
        for row in rows:
            row.balance = str(-i)
        LegacyClient.objects.bulk_update(rows, ["balance"])
        for row in rows:
            writers.expect(row.pk, balance=str(-i), balance_encrypted=-i)

    def create(n: int, i: int, rng: random.Random) -> None:
        values = _legacy_values(f"New{n}.{i}@Example.com", i, {"new": True})
        row = LegacyClient.objects.create(
            name=f"new {n}.{i}",
            **{k: v for k, v in values.items() if not k.endswith("_encrypted")},
        )
        writers.expect(row.pk, **values)
        with writers.lock:
            writers.owned[n].append(row.pk)

    operations = {
        "save": save,
        "update_balance": update_balance,
        "update_email": update_email,
        "bulk_update": bulk_update,
        "create": create,
    }
    run_threads({"migrate": migrate, **writers.targets(operations)})

    result = scenarios.check(scenarios.LEGACY, writers.expected)
    reliability.add(
        concurrent_operations=writers.total + len(batches),
        rows_checked=result.checked,
        rows_lost=result.lost,
    )
    assert result.ok, result.as_dict()
    assert batches and all(writers.operations[name] for name in operations), writers.operations


@pytest.mark.backends("postgresql", "mysql")
def test_orm_writes_racing_reencrypt_lose_nothing_and_the_old_key_can_go(settings, reliability):
    """PostgreSQL and MariaDB (row locks): re-encryption locks each batch's rows, so a
    write waits for the batch or the batch re-reads the written value. Afterwards no value
    is under the old version, which retires (its key destroyed) without loss."""
    settings.ALPHAPULSE_ENCRYPTION = database_keyring_settings()
    expected = scenarios.seed(scenarios.CUSTOMERS, 120)
    assert EncryptionKeyManager().rotate_keys() == 2
    done = threading.Event()
    writers = Writers(expected, done)
    progress = []

    def reencrypt() -> None:
        try:
            progress.extend(reencrypt_service.reencrypt(batch_size=5))
        finally:
            done.set()

    def save(n: int, i: int, rng: random.Random) -> None:
        pk = rng.choice(writers.owned[n])
        customer = Customer.objects.get(pk=pk)
        customer.first_name = f"Saved{n}.{i}"
        customer.notification_settings = {"writer": n, "op": i}
        customer.save()
        writers.expect(
            pk, first_name=customer.first_name, notification_settings=customer.notification_settings
        )

    def save_some_fields(n: int, i: int, rng: random.Random) -> None:
        pk = rng.choice(writers.owned[n])
        customer = Customer.objects.get(pk=pk)
        customer.api_secret = f"sk_rotated_{n}_{i}"
        customer.save(update_fields=["api_secret"])
        writers.expect(pk, api_secret=customer.api_secret)

    def update_phone(n: int, i: int, rng: random.Random) -> None:
        pk = rng.choice(writers.owned[n])
        Customer.objects.filter(pk=pk).update(phone=f"+1 555 {n}{i:04d}")
        writers.expect(pk, phone=f"+1 555 {n}{i:04d}")

    def update_email(n: int, i: int, rng: random.Random) -> None:
        pk = rng.choice(writers.owned[n])
        email = f"Changed{n}.{i}@Example.com"
        Customer.objects.filter(pk=pk).update(email=email)
        writers.expect(pk, email=email)

    def create(n: int, i: int, rng: random.Random) -> None:
        values = scenarios.customer_values(100_000 + n * 1_000 + i)
        customer = Customer.objects.create(**values)
        writers.expect(customer.pk, **values)
        with writers.lock:
            writers.owned[n].append(customer.pk)

    operations = {
        "save": save,
        "save_some_fields": save_some_fields,
        "update_phone": update_phone,
        "update_email": update_email,
        "create": create,
    }
    run_threads({"reencrypt": reencrypt, **writers.targets(operations)})

    result = scenarios.check(scenarios.CUSTOMERS, writers.expected)
    assert result.ok, result.as_dict()
    assert reencrypt_service.retire(1) == 0  # refused if a value still used version 1
    after = scenarios.check(scenarios.CUSTOMERS, writers.expected)
    batches = sum(p.batches for p in progress)
    reliability.add(
        concurrent_operations=writers.total + batches,
        rows_checked=result.checked,
        rows_lost=after.lost,
    )
    assert after.ok, after.as_dict()
    assert all(writers.operations[name] for name in operations), writers.operations


@pytest.mark.backends("postgresql", "mysql")
def test_a_rotation_in_the_middle_of_reencrypt_is_finished_by_a_rerun(settings, reliability):
    """PostgreSQL and MariaDB: another thread rotates while re-encryption is half-way.
    Rows done before the rotation are under the previous version; a rerun moves them."""
    settings.ALPHAPULSE_ENCRYPTION = database_keyring_settings()
    expected = scenarios.seed(scenarios.CUSTOMERS, 60)
    EncryptionKeyManager().rotate_keys()
    rotated = threading.Event()
    asked = threading.Event()
    versions_seen = set()

    def reencrypt() -> None:
        def on_batch(progress: reencrypt_service.ReencryptProgress) -> None:
            versions_seen.add(keys.current_keyring().active_version)
            if progress.batches == 2 and not asked.is_set():
                asked.set()
                assert rotated.wait(timeout=30)

        reencrypt_service.reencrypt("testapp.Customer", batch_size=5, on_batch=on_batch)

    def rotate() -> None:
        assert asked.wait(timeout=30)
        EncryptionKeyManager().rotate_keys()
        rotated.set()

    run_threads({"reencrypt": reencrypt, "rotate": rotate})
    assert versions_seen == {2, 3}
    [rerun] = reencrypt_service.reencrypt("testapp.Customer", batch_size=5)
    assert 0 < rerun.moved < 60  # only the rows done before the rotation
    result = scenarios.check(scenarios.CUSTOMERS, expected)
    reliability.add(concurrent_operations=2, rows_checked=result.checked, rows_lost=result.lost)
    assert result.ok, result.as_dict()


def test_threads_decrypt_while_other_processes_rotate_and_this_one_reloads(settings, reliability):
    """Readers in this process decrypt values written under every version while another
    process (the rotator, on its own connection, never resetting this process's cache)
    rotates every 0.1 s or so and writes under each new version, and this process drops
    its cached keyring now and then (a settings change). Every value decrypts, at once
    (regression: a version created within a second of the previous forced reload was
    refused). Runs on all three backends."""
    settings.ALPHAPULSE_ENCRYPTION = database_keyring_settings(KEYRING_CACHE_SECONDS=60)
    values = [(encrypt_field(f"v1 #{i}", context="refresh"), f"v1 #{i}") for i in range(10)]
    lock = threading.Lock()
    stop = threading.Event()
    counts: Counter[str] = Counter()

    def rotator() -> None:
        try:
            for _ in range(ROTATIONS):
                version = DatabaseKeyProvider().rotate()
                cipher = Cipher(DatabaseKeyProvider().load())
                fresh = [
                    (cipher.encrypt(f"v{version} #{i}", "refresh"), f"v{version} #{i}")
                    for i in range(5)
                ]
                with lock:
                    values.extend(fresh)
                    counts["rotations"] += 1
                time.sleep(0.1)
        finally:
            stop.set()

    def resetter() -> None:
        while not stop.wait(0.6):
            keys.reset()
            with lock:
                counts["resets"] += 1

    def reader(n: int) -> None:
        rng = random.Random(n)
        while not stop.is_set():
            with lock:
                sample = rng.sample(values, min(8, len(values)))
            for text, plaintext in sample:
                assert decrypt_field(text, context="refresh") == plaintext, key_version_of(text)
            own = encrypt_field(f"reader {n}", context="refresh")
            assert decrypt_field(own, context="refresh") == f"reader {n}"
            with lock:
                counts["decryptions"] += len(sample) + 1
                counts["encryptions"] += 1
            time.sleep(0.002)  # let the rotator have the interpreter now and then

    run_threads(
        {
            "rotator": rotator,
            "resetter": resetter,
            **{f"reader-{n}": (lambda n=n: reader(n)) for n in range(4)},
        }
    )
    assert counts["rotations"] == ROTATIONS and counts["decryptions"] > 100, counts
    for text, plaintext in values:  # every version's values, after the dust settles
        assert decrypt_field(text, context="refresh") == plaintext
    reliability.add(
        concurrent_operations=sum(counts.values()), rows_checked=len(values), rows_lost=0
    )
