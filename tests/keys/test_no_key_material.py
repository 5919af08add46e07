"""Key material appears in no log record, repr(), exception or dumpdata output."""

from __future__ import annotations

import base64
import logging
import traceback
from io import StringIO

import pytest
from django.core.management import call_command

from alphapulse_encryption import ConfigurationError, DecryptionError, decrypt_field, get_cipher
from alphapulse_encryption.crypto import Cipher, Keyring
from alphapulse_encryption.keys import DatabaseKeyProvider, current_keyring
from alphapulse_encryption.keys.wrapping import MasterKeyWrapper
from alphapulse_encryption.migration import reencrypt
from alphapulse_encryption.models import KeyVersion
from tests.factories import CustomerFactory
from tests.keys.conftest import data_keys, database_keyring_settings, key_forms
from tests.settings import TEST_KEY_V1, TEST_KEY_V2


def _secrets() -> list[str]:
    raw = [base64.b64decode(TEST_KEY_V1), *data_keys().values()]
    return [form for key in raw for form in key_forms(key)]


def _assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text


def test_key_operations_log_no_key_material(db_keyring, caplog):
    caplog.set_level(logging.DEBUG, logger="alphapulse_encryption")
    CustomerFactory()
    db_keyring.rotate_keys()
    CustomerFactory()
    reencrypt.reencrypt()
    reencrypt.retire(1)
    with pytest.raises(DecryptionError):
        decrypt_field(Cipher(Keyring({9: bytes(32)}, 9)).encrypt("x", "c"), context="c")
    actions = {r.getMessage().split(":")[0] for r in caplog.records if "key operation" in r.msg}
    assert actions >= {
        "key operation bootstrap",
        "key operation load",
        "key operation rotate",
        "key operation reencrypt",
        "key operation retire",
        "key operation decrypt_failed",
    }
    secrets = _secrets() + key_forms(base64.b64decode(TEST_KEY_V1))
    _assert_clean(caplog.text, secrets)


def test_reprs_show_no_key_material(db_keyring):
    db_keyring.rotate_keys()
    objects = [
        db_keyring,
        DatabaseKeyProvider(),
        MasterKeyWrapper(),
        current_keyring(),
        get_cipher(),
        *KeyVersion.objects.all(),
        *db_keyring.key_versions(),
    ]
    text = "\n".join(repr(o) + str(o) for o in objects)
    _assert_clean(text, _secrets())


def test_unwrap_failure_names_versions_not_keys(db_keyring, settings):
    db_keyring.active_version  # noqa: B018
    secrets = _secrets()
    settings.ALPHAPULSE_ENCRYPTION = database_keyring_settings(MASTER_KEYS={1: TEST_KEY_V2})
    with pytest.raises(ConfigurationError) as info:
        current_keyring()
    rendered = "".join(traceback.format_exception(info.value))
    assert "version 1" in rendered
    _assert_clean(rendered, secrets + key_forms(base64.b64decode(TEST_KEY_V2)))


def test_dumpdata_of_the_keyring_holds_only_wrapped_keys(db_keyring):
    db_keyring.active_version  # noqa: B018
    db_keyring.rotate_keys()
    out = StringIO()
    call_command("dumpdata", "alphapulse_encryption", stdout=out)
    dump = out.getvalue()
    assert '"model": "alphapulse_encryption.keyversion"' in dump
    assert dump.count('"wrapped_key": "apw1:') == 2
    _assert_clean(dump, _secrets())
