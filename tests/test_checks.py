"""System checks for keys and settings (``alphapulse_encryption.E00x`` / ``W00x``)."""

from __future__ import annotations

import base64

import pytest
from django.core import checks
from django.test import override_settings

from alphapulse_encryption.checks import check_keys
from alphapulse_encryption.crypto import Keyring
from alphapulse_encryption.keys import KeyProvider
from tests.settings import TEST_KEY_V1, TEST_KEY_V2

MASTER = "ALPHAPULSE_ENCRYPTION_MASTER_KEY"
VERSION = "ALPHAPULSE_ENCRYPTION_KEY_VERSION"
SHORT_KEY = base64.b64encode(b"sixteen byte key").decode()
LONG_KEY = base64.b64encode(bytes(range(48))).decode()
NOT_BASE64 = "definitely not base64 ***"


class FixedKeyProvider(KeyProvider):
    """A provider that needs no master key in settings or the environment."""

    def load(self) -> Keyring:
        return Keyring({1: bytes(32)}, 1)


def _messages() -> list[checks.CheckMessage]:
    """Our messages from a full check run (proves the check is registered)."""
    return [m for m in checks.run_checks() if (m.id or "").startswith("alphapulse_encryption.")]


def _only(check_id: str) -> checks.CheckMessage:
    messages = check_keys()
    assert [m.id for m in messages] == [check_id], messages
    assert messages[0].hint
    return messages[0]


@pytest.fixture(autouse=True)
def _no_key_variables(key_env):
    """The outer environment must not supply or break keys."""


def test_valid_settings_yield_no_messages():
    assert check_keys() == []
    assert _messages() == []


def test_valid_rotated_settings_yield_no_messages(settings):
    settings.ALPHAPULSE_ENCRYPTION = {
        "MASTER_KEYS": {1: TEST_KEY_V1, 2: TEST_KEY_V2},
        "ACTIVE_KEY_VERSION": 2,
        "KDF_ITERATIONS": 200_000,
        "PAD_TO": 16,
    }
    assert _messages() == []


def test_valid_environment_keys_yield_no_messages(env_keys_only):
    env_keys_only.set(**{MASTER: TEST_KEY_V2, VERSION: "2", f"{MASTER}_V1": TEST_KEY_V1})
    assert _messages() == []


@override_settings(ALPHAPULSE_ENCRYPTION={})
def test_no_master_key_warns_so_makemigrations_still_works():
    message = _only("alphapulse_encryption.W001")
    assert message.level == checks.WARNING
    assert MASTER in message.msg
    assert "encryption_keys generate" in message.hint
    assert "alphapulse_encryption.W001" in [m.id for m in _messages()]


@override_settings(ALPHAPULSE_ENCRYPTION={})
def test_e001_no_master_key_is_an_error_under_check_deploy():
    deploy = [
        m
        for m in checks.run_checks(include_deployment_checks=True)
        if m.id == "alphapulse_encryption.E001"
    ]
    assert len(deploy) == 1 and deploy[0].level == checks.ERROR
    assert "encryption_keys generate" in deploy[0].hint


def test_no_key_warning_for_an_empty_environment_key(env_keys_only):
    env_keys_only.set(**{MASTER: ""})
    _only("alphapulse_encryption.W001")


@pytest.mark.parametrize(
    "bad_key",
    [SHORT_KEY, LONG_KEY, bytes(range(32)).hex(), NOT_BASE64, ""],
    ids=["16 bytes", "48 bytes", "hex", "not base64", "empty"],
)
def test_e002_bad_settings_key(settings, bad_key):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {1: TEST_KEY_V1, 2: bad_key}}
    message = _only("alphapulse_encryption.E002")
    assert message.level == checks.ERROR
    assert "version 2" in message.msg
    assert "32" in message.hint and "base64" in message.hint
    if bad_key:
        assert bad_key not in message.msg + message.hint


@pytest.mark.parametrize("bad_key", [SHORT_KEY, NOT_BASE64], ids=["16 bytes", "not base64"])
def test_e002_bad_environment_key(env_keys_only, bad_key):
    env_keys_only.set(**{MASTER: bad_key})
    message = _only("alphapulse_encryption.E002")
    assert "version 1" in message.msg
    assert bad_key not in message.msg + message.hint


def test_e002_does_not_echo_a_key_used_as_a_version(settings):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {TEST_KEY_V1: 1}}
    message = _only("alphapulse_encryption.E002")
    assert TEST_KEY_V1 not in message.msg + message.hint


def test_e003_active_settings_version_without_key(settings):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {1: TEST_KEY_V1}, "ACTIVE_KEY_VERSION": 2}
    message = _only("alphapulse_encryption.E003")
    assert message.level == checks.ERROR
    assert "2" in message.msg
    assert "ACTIVE_KEY_VERSION" in message.hint


def test_e003_active_environment_version_without_key(env_keys_only):
    env_keys_only.set(**{VERSION: "3", f"{MASTER}_V1": TEST_KEY_V1})
    message = _only("alphapulse_encryption.E003")
    assert "3" in message.msg


@pytest.mark.parametrize("iterations", [99_999, 1_000, 0, "100000", None])
def test_e004_kdf_iterations_below_the_minimum(settings, iterations):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {1: TEST_KEY_V1}, "KDF_ITERATIONS": iterations}
    message = _only("alphapulse_encryption.E004")
    assert message.level == checks.ERROR
    assert "100,000" in message.msg
    assert "SILENCED_SYSTEM_CHECKS" in message.hint


@pytest.mark.parametrize("iterations", [100_000, 600_000])
def test_kdf_iterations_at_or_above_the_minimum_pass(settings, iterations):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {1: TEST_KEY_V1}, "KDF_ITERATIONS": iterations}
    assert check_keys() == []


def test_w002_unknown_setting_keys(settings):
    settings.ALPHAPULSE_ENCRYPTION = {
        "MASTER_KEYS": {1: TEST_KEY_V1},
        "MASTER_KEY": TEST_KEY_V2,
        "KDF_ITERATION": 5,
    }
    message = _only("alphapulse_encryption.W002")
    assert message.level == checks.WARNING
    assert "KDF_ITERATION, MASTER_KEY" in message.msg
    assert TEST_KEY_V2 not in message.msg
    assert "alphapulse_encryption.W002" in [m.id for m in _messages()]


def test_problems_are_reported_together(settings):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {}, "KDF_ITERATIONS": 10, "TYPO": 1}
    ids = sorted(m.id for m in check_keys())
    assert ids == [
        "alphapulse_encryption.E004",
        "alphapulse_encryption.W001",
        "alphapulse_encryption.W002",
    ]
    assert all(m.hint for m in check_keys())


@override_settings(ALPHAPULSE_ENCRYPTION={"KEY_PROVIDER": "tests.test_checks.FixedKeyProvider"})
def test_other_providers_do_not_need_settings_keys():
    assert check_keys() == []


def test_makemigrations_works_without_any_key(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHAPULSE_ENCRYPTION")}
    env["DJANGO_SETTINGS_MODULE"] = "tests.keyless_settings"
    result = subprocess.run(
        [sys.executable, "-m", "django", "makemigrations", "--check", "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
