"""``manage.py encryption_keys``: generate, status, rotate."""

from __future__ import annotations

import base64
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from alphapulse_encryption import decrypt_field, encrypt_field
from alphapulse_encryption.crypto import fingerprint
from tests.settings import TEST_KEY_V1, TEST_KEY_V2

RAW_V1 = base64.b64decode(TEST_KEY_V1)
RAW_V2 = base64.b64decode(TEST_KEY_V2)


def _run(*args: str) -> str:
    out = StringIO()
    call_command("encryption_keys", *args, stdout=out)
    return out.getvalue()


def _key_forms(key: str) -> list[str]:
    raw = base64.b64decode(key)
    return [key, key.rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("="), raw.hex()]


# -- generate -----------------------------------------------------------------------------


def test_generate_prints_a_32_byte_base64_key_that_fernet_accepts():
    key = _run("generate").strip()
    assert len(base64.urlsafe_b64decode(key)) == 32
    Fernet(key)  # raises ValueError unless 32 url-safe base64-encoded bytes


def test_generate_prints_a_new_key_each_time():
    assert _run("generate") != _run("generate")


def test_generated_key_works_as_a_master_key(settings):
    key = _run("generate").strip()
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {1: key}}
    assert decrypt_field(encrypt_field("round trip", context="c"), context="c") == "round trip"


def test_generate_needs_no_configured_key(env_keys_only):
    assert len(base64.urlsafe_b64decode(_run("generate").strip())) == 32


# -- status -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_status_lists_the_version_and_fingerprint_but_never_the_key():
    output = _run("status")
    assert "version 1" in output
    assert "active" in output
    assert fingerprint(RAW_V1) in output
    for form in _key_forms(TEST_KEY_V1):
        assert form not in output


@pytest.mark.django_db
def test_status_marks_the_active_version_and_older_ones(settings):
    settings.ALPHAPULSE_ENCRYPTION = {
        "MASTER_KEYS": {1: TEST_KEY_V1, 2: TEST_KEY_V2},
        "ACTIVE_KEY_VERSION": 2,
    }
    output = _run("status")
    lines = [line for line in output.splitlines() if line.startswith("version ")]
    assert len(lines) == 2
    v1, v2 = lines
    assert "version 1" in v1 and "decrypt-only" in v1 and fingerprint(RAW_V1) in v1
    assert "version 2" in v2 and "active" in v2 and fingerprint(RAW_V2) in v2
    for form in _key_forms(TEST_KEY_V1) + _key_forms(TEST_KEY_V2):
        assert form not in output


def test_status_without_a_key_is_a_command_error(env_keys_only):
    with pytest.raises(CommandError, match="ALPHAPULSE_ENCRYPTION_MASTER_KEY"):
        _run("status")


def test_status_with_a_bad_key_names_the_version_not_the_key(settings):
    bad = base64.b64encode(b"too short").decode()
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {4: bad}}
    with pytest.raises(CommandError) as info:
        _run("status")
    assert "version 4" in str(info.value)
    assert bad not in str(info.value)


# -- rotate / arguments -------------------------------------------------------------------


def test_rotate_on_the_settings_provider_is_a_command_error_with_the_hint():
    with pytest.raises(CommandError) as info:
        _run("rotate")
    message = str(info.value)
    assert "read-only" in message
    assert "ALPHAPULSE_ENCRYPTION_MASTER_KEY" in message
    assert "ALPHAPULSE_ENCRYPTION_KEY_VERSION" in message
    assert "encryption_keys generate" in message


def test_an_action_is_required():
    with pytest.raises(CommandError):
        call_command("encryption_keys", stdout=StringIO())


def test_an_unknown_action_is_refused():
    with pytest.raises(CommandError):
        _run("destroy")
