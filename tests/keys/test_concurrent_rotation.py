"""Rotations racing from several threads, each with its own database connection."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from alphapulse_encryption.keys import DatabaseKeyProvider, EncryptionKeyManager
from alphapulse_encryption.keys.wrapping import MasterKeyWrapper
from alphapulse_encryption.models import KeyVersion
from tests.keys.conftest import database_keyring_settings

THREADS = 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_rotations_create_one_active_version_each(settings, monkeypatch):
    # On SQLite the test database is a shared-cache in-memory database, which every
    # thread's own connection opens, so this runs on all three backends.
    settings.ALPHAPULSE_ENCRYPTION = database_keyring_settings()
    assert EncryptionKeyManager().active_version == 1

    real_new_key = MasterKeyWrapper.new_key

    def slow_new_key(self, version):
        # Widen the window between reading the highest version and inserting the next.
        time.sleep(0.05)
        return real_new_key(self, version)

    monkeypatch.setattr(MasterKeyWrapper, "new_key", slow_new_key)
    barrier = threading.Barrier(THREADS)
    results: list[int] = []
    errors: list[BaseException] = []

    def rotate() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(DatabaseKeyProvider().rotate())
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=rotate) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(results) == list(range(2, THREADS + 2))
    rows = list(KeyVersion.objects.order_by("version").values_list("version", "status"))
    assert [v for v, _ in rows] == list(range(1, THREADS + 2))
    assert [v for v, s in rows if s == "active"] == [THREADS + 1]
    keyring = DatabaseKeyProvider().load()
    assert (keyring.versions, keyring.active_version) == (list(range(1, THREADS + 2)), THREADS + 1)


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_use_bootstraps_a_single_version(settings):
    settings.ALPHAPULSE_ENCRYPTION = database_keyring_settings()
    barrier = threading.Barrier(THREADS)
    actives: list[int] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            barrier.wait(timeout=10)
            actives.append(DatabaseKeyProvider().load().active_version)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=load) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert actives == [1] * THREADS
    assert list(KeyVersion.objects.values_list("version", "status")) == [(1, "active")]
