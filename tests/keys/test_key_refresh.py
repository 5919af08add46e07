"""Rotations in quick succession: each new version's first value triggers a reload, however
soon after the previous one; only fruitless reloads (forged versions) are rate-limited."""

from __future__ import annotations

import pytest

from alphapulse_encryption import DecryptionError, decrypt_field
from alphapulse_encryption.crypto import Cipher, Keyring
from alphapulse_encryption.keys import DatabaseKeyProvider
from tests.keys import test_keyring_cache

# The fixtures of the keyring cache tests: a fake clock, key-operation events, and the
# database keyring with a five-second cache.
clock = test_keyring_cache.clock
operations = test_keyring_cache.operations
short_cache = test_keyring_cache.short_cache


def _rotate_elsewhere_and_write(value: str, context: str = "ctx") -> str:
    """Another app server rotates and writes; nothing in this process is reset."""
    DatabaseKeyProvider().rotate()
    return Cipher(DatabaseKeyProvider().load()).encrypt(value, context)


def test_two_rotations_within_a_second_each_reload_at_first_sight(short_cache, clock):
    """Regression: the forced reload was limited to one per second whatever its outcome,
    so a value under a version created less than a second after the previous forced
    reload failed with unknown_key_version although its key existed."""
    assert short_cache.active_version == 1
    second = _rotate_elsewhere_and_write("under version 2")
    assert decrypt_field(second, context="ctx") == "under version 2"
    clock.now += 0.2
    third = _rotate_elsewhere_and_write("under version 3")
    assert decrypt_field(third, context="ctx") == "under version 3"
    assert short_cache.active_version == 3


def test_a_forged_version_still_costs_at_most_one_reload_per_second(
    short_cache, clock, monkeypatch, operations
):
    assert short_cache.active_version == 1
    forged = Cipher(Keyring({50: bytes(range(32))}, 50)).encrypt("x", "ctx")
    loads = []
    real_load = DatabaseKeyProvider.load
    monkeypatch.setattr(
        DatabaseKeyProvider, "load", lambda self: loads.append(1) or real_load(self)
    )
    for _ in range(5):
        with pytest.raises(DecryptionError):
            decrypt_field(forged, context="ctx")
    assert len(loads) == 1
    clock.now += 1.0
    with pytest.raises(DecryptionError):
        decrypt_field(forged, context="ctx")
    assert len(loads) == 2
    # A real rotation right after a fruitless reload waits for the rate limit too: the
    # value fails now and decrypts once a second has passed.
    genuine = _rotate_elsewhere_and_write("genuine")
    with pytest.raises(DecryptionError):
        decrypt_field(genuine, context="ctx")
    clock.now += 1.0
    assert decrypt_field(genuine, context="ctx") == "genuine"
