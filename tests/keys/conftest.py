"""Fixtures for the database keyring: a provider backed by the test database."""

from __future__ import annotations

import base64

import pytest

from alphapulse_encryption.keys import EncryptionKeyManager
from alphapulse_encryption.keys.wrapping import MasterKeyWrapper
from alphapulse_encryption.models import KeyVersion
from tests.settings import TEST_KEY_V1

DATABASE_PROVIDER = "alphapulse_encryption.keys.DatabaseKeyProvider"


def database_keyring_settings(**extra):
    return {"MASTER_KEYS": {1: TEST_KEY_V1}, "KEY_PROVIDER": DATABASE_PROVIDER, **extra}


@pytest.fixture
def db_keyring(settings, db) -> EncryptionKeyManager:
    """The database keyring provider, its key-encryption key the test master key."""
    settings.ALPHAPULSE_ENCRYPTION = database_keyring_settings()
    return EncryptionKeyManager()


def data_keys() -> dict[int, bytes]:
    """The unwrapped version keys (for asserting that they appear nowhere)."""
    wrapper = MasterKeyWrapper()
    return {
        row.version: wrapper.unwrap(row.version, row.wrapped_key, row.wrapped_by)
        for row in KeyVersion.objects.exclude(status=KeyVersion.Status.DESTROYED)
    }


def key_forms(raw: bytes) -> list[str]:
    """Every textual form in which a key could leak."""
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    return [standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("="), raw.hex(), repr(raw)]
