"""How other processes learn of a rotation: the keyring cache time and the reload that a
value under an unknown, newer version triggers."""

from __future__ import annotations

import pytest

from alphapulse_encryption import DecryptionError, decrypt_field, get_cipher
from alphapulse_encryption.crypto import Cipher, Keyring, key_version_of
from alphapulse_encryption.keys import DatabaseKeyProvider, EncryptionKeyManager, manager
from alphapulse_encryption.signals import key_operation
from tests.keys.conftest import database_keyring_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(manager, "_now", clock)
    return clock


@pytest.fixture
def operations():
    seen = []

    def receiver(sender, action, key_version, detail, **kwargs):
        seen.append((action, key_version))

    key_operation.connect(receiver)
    yield seen
    key_operation.disconnect(receiver)


@pytest.fixture
def short_cache(settings, db, clock):
    settings.ALPHAPULSE_ENCRYPTION = database_keyring_settings(KEYRING_CACHE_SECONDS=5)
    return EncryptionKeyManager()


def _other_process_rotates_and_writes(value, context="ctx"):
    """What another app server does: rotate in the shared database, write under the new
    version. Nothing in this process is reset."""
    version = DatabaseKeyProvider().rotate()
    return version, Cipher(DatabaseKeyProvider().load()).encrypt(value, context)


def test_a_new_version_is_seen_after_the_cache_time(short_cache, clock):
    assert short_cache.active_version == 1
    version, _ = _other_process_rotates_and_writes("x")
    assert version == 2
    clock.now += 4.9
    assert short_cache.active_version == 1  # still trusting the cached keyring
    assert key_version_of(get_cipher().encrypt("y", "ctx")) == 1
    clock.now += 0.2
    assert short_cache.active_version == 2
    assert key_version_of(get_cipher().encrypt("y", "ctx")) == 2


def test_the_cached_cipher_itself_expires_with_the_keyring(short_cache, clock):
    first = get_cipher()
    assert get_cipher() is first
    _other_process_rotates_and_writes("x")
    clock.now += 4.9
    assert get_cipher() is first
    clock.now += 0.2
    assert key_version_of(get_cipher().encrypt("y", "ctx")) == 2
    manager.reset()
    assert get_cipher() is not first


def test_a_value_that_still_fails_after_the_reload_is_recorded_once(short_cache, clock, operations):
    assert short_cache.active_version == 1
    _, text = _other_process_rotates_and_writes("x", context="ctx")
    operations.clear()
    with pytest.raises(DecryptionError) as info:
        decrypt_field(text, context="other")  # reload finds version 2; the context is wrong
    assert info.value.reason == "authentication_failed"
    assert [op for op in operations if op[0] == "decrypt_failed"] == [("decrypt_failed", 2)]
    assert ("load", 2) in operations


def test_a_value_under_an_unknown_newer_version_triggers_one_reload(short_cache, clock, operations):
    assert short_cache.active_version == 1
    _, written = _other_process_rotates_and_writes("from another server")
    operations.clear()
    assert decrypt_field(written, context="ctx") == "from another server"
    assert operations == [("load", 2)]
    assert short_cache.active_version == 2


def test_batch_decrypt_also_reloads_for_an_unknown_newer_version(short_cache, clock):
    old = get_cipher().encrypt("old", "ctx")
    _, new = _other_process_rotates_and_writes("new")
    assert get_cipher().batch_decrypt([old, None, new], "ctx") == ["old", None, "new"]


def test_forced_reloads_are_rate_limited(short_cache, clock, operations):
    assert short_cache.active_version == 1
    forged = Cipher(_keyring_with_version(99)).encrypt("x", "ctx")
    operations.clear()
    for _ in range(3):
        with pytest.raises(DecryptionError) as info:
            decrypt_field(forged, context="ctx")
        assert info.value.reason == "unknown_key_version"
    # One reload (nothing changed, so no "load" event), then three reported failures.
    assert operations == [("decrypt_failed", 99)] * 3
    clock.now += 1.0
    _, written = _other_process_rotates_and_writes("later")
    assert decrypt_field(written, context="ctx") == "later"


def test_a_value_under_a_destroyed_version_fails_without_a_reload(short_cache, clock, monkeypatch):
    old = get_cipher().encrypt("x", "ctx")
    short_cache.rotate_keys()
    short_cache.retire_key(1)
    get_cipher()
    loads = []
    real_load = DatabaseKeyProvider.load
    monkeypatch.setattr(
        DatabaseKeyProvider, "load", lambda self: loads.append(1) or real_load(self)
    )
    with pytest.raises(DecryptionError) as info:
        decrypt_field(old, context="ctx")
    assert (info.value.reason, info.value.key_version) == ("unknown_key_version", 1)
    assert loads == []


def test_the_settings_provider_does_not_reload_for_an_unknown_version(settings, operations):
    forged = Cipher(_keyring_with_version(2)).encrypt("x", "ctx")
    get_cipher()
    operations.clear()
    with pytest.raises(DecryptionError) as info:
        decrypt_field(forged, context="ctx")
    assert info.value.key_version == 2
    assert operations == [("decrypt_failed", 2)]


def test_a_reload_that_changes_nothing_keeps_the_keyring_and_its_caches(short_cache, clock):
    first = get_cipher()
    clock.now += 60
    assert get_cipher() is first


def _keyring_with_version(version):
    return Keyring({version: bytes(range(32))}, version)
