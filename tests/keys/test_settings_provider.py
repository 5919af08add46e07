"""The settings/environment key provider, EncryptionKeyManager, and lazy reloading."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from alphapulse_encryption import (
    ConfigurationError,
    DecryptionError,
    EncryptionError,
    EncryptionKeyManager,
    KeyProviderError,
    decrypt_field,
    encrypt_field,
    get_cipher,
    keys,
)
from alphapulse_encryption.crypto import fingerprint, key_version_of
from tests.settings import TEST_KEY_V1, TEST_KEY_V2

RAW_V1 = base64.b64decode(TEST_KEY_V1)
RAW_V2 = base64.b64decode(TEST_KEY_V2)
# Bytes whose base64 forms contain "+/" (standard) and "-_" (URL-safe).
RAW_SYMBOLS = bytes([0xFB, 0xFF]) * 16
RAW_3 = bytes(range(100, 132))
KEY_3 = base64.b64encode(RAW_3).decode()

MASTER = "ALPHAPULSE_ENCRYPTION_MASTER_KEY"
VERSION = "ALPHAPULSE_ENCRYPTION_KEY_VERSION"

BAD_KEYS = {
    "16 bytes": base64.b64encode(bytes(16)).decode(),
    "64 bytes": base64.b64encode(bytes(range(64))).decode(),
    "hex of 32 bytes": bytes(range(32)).hex(),
    "not base64": "this is *not* base64 at all!",
    "base64 with a stray character": TEST_KEY_V1[:10] + "$" + TEST_KEY_V1[11:],
    "empty": "",
    "blank": "   ",
}


def _assert_reports_version_without_key(exc: BaseException, version: int, key: str) -> None:
    assert f"version {version}" in str(exc)
    if key.strip():
        rendered = "".join(traceback.format_exception(exc))
        assert key.strip() not in rendered


# -- keys from settings ----------------------------------------------------------------


def test_default_test_settings_configure_version_1():
    manager = EncryptionKeyManager()
    assert manager.active_version == 1
    assert manager.versions == [1]
    assert manager.fingerprints() == {1: fingerprint(RAW_V1)}


def test_settings_master_keys_and_active_version(settings):
    settings.ALPHAPULSE_ENCRYPTION = {
        "MASTER_KEYS": {1: TEST_KEY_V1, 2: TEST_KEY_V2},
        "ACTIVE_KEY_VERSION": 2,
    }
    manager = EncryptionKeyManager()
    assert manager.active_version == 2
    assert manager.versions == [1, 2]
    assert manager.fingerprints() == {1: fingerprint(RAW_V1), 2: fingerprint(RAW_V2)}
    assert key_version_of(encrypt_field("x", context="c")) == 2


def test_settings_active_version_may_be_an_older_configured_version(settings):
    settings.ALPHAPULSE_ENCRYPTION = {
        "MASTER_KEYS": {1: TEST_KEY_V1, 2: TEST_KEY_V2},
        "ACTIVE_KEY_VERSION": 1,
    }
    assert EncryptionKeyManager().active_version == 1
    assert key_version_of(encrypt_field("x", context="c")) == 1


def test_settings_without_active_version_use_the_highest_version(settings):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {2: TEST_KEY_V2, 1: TEST_KEY_V1}}
    assert EncryptionKeyManager().active_version == 2


def test_settings_versions_may_be_numeric_strings(settings):
    settings.ALPHAPULSE_ENCRYPTION = {
        "MASTER_KEYS": {"1": TEST_KEY_V1, "2": TEST_KEY_V2},
        "ACTIVE_KEY_VERSION": "2",
    }
    manager = EncryptionKeyManager()
    assert manager.versions == [1, 2]
    assert manager.active_version == 2


@pytest.mark.parametrize("version", [0, -1, "two", 1.5, None, True])
def test_settings_with_an_invalid_version_are_refused(settings, version):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {version: TEST_KEY_V1}}
    with pytest.raises(ConfigurationError, match="key version"):
        EncryptionKeyManager().active_version  # noqa: B018


def test_master_keys_written_the_wrong_way_round_do_not_leak_the_key(settings):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {TEST_KEY_V1: 1}}
    with pytest.raises(ConfigurationError) as info:
        EncryptionKeyManager().active_version  # noqa: B018
    assert "key version" in str(info.value)
    assert TEST_KEY_V1 not in "".join(traceback.format_exception(info.value))


# -- keys from the environment -----------------------------------------------------------


def test_environment_master_key_defaults_to_version_1(env_keys_only):
    env_keys_only.set(**{MASTER: TEST_KEY_V1})
    manager = EncryptionKeyManager()
    assert manager.active_version == 1
    assert manager.fingerprints() == {1: fingerprint(RAW_V1)}


def test_environment_key_version_and_older_versions(env_keys_only):
    env_keys_only.set(
        **{
            MASTER: KEY_3,
            VERSION: "3",
            f"{MASTER}_V1": TEST_KEY_V1,
            f"{MASTER}_V2": TEST_KEY_V2,
        }
    )
    manager = EncryptionKeyManager()
    assert manager.active_version == 3
    assert manager.versions == [1, 2, 3]
    assert manager.fingerprints() == {
        1: fingerprint(RAW_V1),
        2: fingerprint(RAW_V2),
        3: fingerprint(RAW_3),
    }


def test_environment_old_versions_decrypt_after_the_active_version_moves(env_keys_only):
    env_keys_only.set(**{MASTER: TEST_KEY_V1})
    old = encrypt_field("old secret", context="c")
    env_keys_only.set(**{MASTER: TEST_KEY_V2, VERSION: "2", f"{MASTER}_V1": TEST_KEY_V1})
    assert decrypt_field(old, context="c") == "old secret"
    assert key_version_of(encrypt_field("new", context="c")) == 2


def test_environment_key_version_without_master_key_selects_an_older_key(env_keys_only):
    env_keys_only.set(**{VERSION: "2", f"{MASTER}_V1": TEST_KEY_V1, f"{MASTER}_V2": TEST_KEY_V2})
    manager = EncryptionKeyManager()
    assert manager.active_version == 2
    assert manager.versions == [1, 2]


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "", "²"])
def test_environment_key_version_must_be_a_positive_integer(env_keys_only, value):
    env_keys_only.set(**{MASTER: TEST_KEY_V1, VERSION: value})
    with pytest.raises(ConfigurationError, match=VERSION):
        EncryptionKeyManager().active_version  # noqa: B018


def test_environment_old_key_with_non_ascii_digits_is_ignored(env_keys_only):
    env_keys_only.set(**{MASTER: TEST_KEY_V1, f"{MASTER}_V²": TEST_KEY_V2})
    assert EncryptionKeyManager().versions == [1]


def test_settings_win_over_the_environment(settings, key_env):
    key_env.set(**{MASTER: TEST_KEY_V2, VERSION: "2", f"{MASTER}_V3": KEY_3})
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {1: TEST_KEY_V1}}
    manager = EncryptionKeyManager()
    assert manager.versions == [1]
    assert manager.active_version == 1
    assert manager.fingerprints() == {1: fingerprint(RAW_V1)}


def test_settings_active_version_applies_to_environment_keys(settings, key_env):
    key_env.set(**{MASTER: TEST_KEY_V2, VERSION: "2", f"{MASTER}_V1": TEST_KEY_V1})
    settings.ALPHAPULSE_ENCRYPTION = {"ACTIVE_KEY_VERSION": 1}
    manager = EncryptionKeyManager()
    assert manager.versions == [1, 2]
    assert manager.active_version == 1


# -- accepted key encodings ----------------------------------------------------------------


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_fernet_generated_keys_are_accepted(settings, as_bytes):
    key = Fernet.generate_key()
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {1: key if as_bytes else key.decode()}}
    raw = base64.urlsafe_b64decode(key)
    assert EncryptionKeyManager().fingerprints() == {1: fingerprint(raw)}
    assert decrypt_field(encrypt_field(42, context="c"), context="c") == 42


@pytest.mark.parametrize(
    "encoded",
    [
        base64.b64encode(RAW_SYMBOLS).decode(),
        base64.urlsafe_b64encode(RAW_SYMBOLS).decode(),
        base64.b64encode(RAW_SYMBOLS).decode().rstrip("="),
        f"  {base64.b64encode(RAW_SYMBOLS).decode()}\n",
    ],
    ids=["standard", "url-safe", "unpadded", "surrounding whitespace"],
)
def test_standard_and_url_safe_base64_name_the_same_key(settings, encoded):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {1: encoded}}
    assert EncryptionKeyManager().fingerprints() == {1: fingerprint(RAW_SYMBOLS)}


def test_fernet_key_from_the_environment_is_accepted(env_keys_only):
    key = Fernet.generate_key().decode()
    env_keys_only.set(**{MASTER: key})
    assert EncryptionKeyManager().fingerprints() == {1: fingerprint(base64.urlsafe_b64decode(key))}


# -- rejected keys -----------------------------------------------------------------------


@pytest.mark.parametrize("bad_key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_bad_settings_key_names_the_version_but_not_the_key(settings, bad_key):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {1: TEST_KEY_V1, 3: bad_key}}
    with pytest.raises(ConfigurationError) as info:
        EncryptionKeyManager().active_version  # noqa: B018
    _assert_reports_version_without_key(info.value, 3, bad_key)


@pytest.mark.parametrize("bad_key", [None, 12345, ["a", "b"]], ids=repr)
def test_settings_key_that_is_not_text_is_refused(settings, bad_key):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {2: bad_key}}
    with pytest.raises(ConfigurationError, match="version 2"):
        EncryptionKeyManager().active_version  # noqa: B018


@pytest.mark.parametrize(
    "bad_key", [k for k in BAD_KEYS.values() if k], ids=[n for n, k in BAD_KEYS.items() if k]
)
def test_bad_environment_key_names_the_version_but_not_the_key(env_keys_only, bad_key):
    env_keys_only.set(**{MASTER: bad_key, VERSION: "3", f"{MASTER}_V1": TEST_KEY_V1})
    with pytest.raises(ConfigurationError) as info:
        EncryptionKeyManager().active_version  # noqa: B018
    _assert_reports_version_without_key(info.value, 3, bad_key)


@pytest.mark.parametrize("bad_key", [k for k in BAD_KEYS.values() if k.strip()])
def test_bad_older_environment_key_names_its_version(env_keys_only, bad_key):
    env_keys_only.set(**{MASTER: TEST_KEY_V2, VERSION: "2", f"{MASTER}_V1": bad_key})
    with pytest.raises(ConfigurationError) as info:
        EncryptionKeyManager().active_version  # noqa: B018
    _assert_reports_version_without_key(info.value, 1, bad_key)


def test_no_key_configured_says_how_to_configure_one(env_keys_only):
    with pytest.raises(ConfigurationError) as info:
        EncryptionKeyManager().active_version  # noqa: B018
    assert MASTER in str(info.value)
    assert "encryption_keys generate" in str(info.value)


def test_active_settings_version_without_a_key_is_refused(settings):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {1: TEST_KEY_V1}, "ACTIVE_KEY_VERSION": 2}
    with pytest.raises(ConfigurationError, match="active key version 2"):
        EncryptionKeyManager().active_version  # noqa: B018


def test_active_environment_version_without_a_key_is_refused(env_keys_only):
    env_keys_only.set(**{VERSION: "2", f"{MASTER}_V1": TEST_KEY_V1})
    with pytest.raises(ConfigurationError, match="active key version 2"):
        EncryptionKeyManager().active_version  # noqa: B018


def test_master_keys_must_be_a_dict(settings):
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": [TEST_KEY_V1]}
    with pytest.raises(ConfigurationError, match="must be a dict"):
        EncryptionKeyManager().active_version  # noqa: B018


# -- manager and rotation ------------------------------------------------------------------


def test_rotation_is_refused_by_the_read_only_provider_with_instructions():
    manager = EncryptionKeyManager()
    with pytest.raises(KeyProviderError) as info:
        manager.rotate_keys()
    message = str(info.value)
    assert MASTER in message
    assert VERSION in message
    assert "encryption_keys generate" in message
    assert isinstance(info.value, EncryptionError)
    assert manager.active_version == 1
    assert manager.versions == [1]


def test_manager_repr_shows_no_key_material():
    text = repr(EncryptionKeyManager())
    assert "SettingsKeyProvider" in text
    assert TEST_KEY_V1 not in text and RAW_V1.hex() not in text


# -- lazy reads and reloading ----------------------------------------------------------------


def test_cipher_is_cached_until_settings_change():
    cipher = get_cipher()
    assert get_cipher() is cipher
    with override_settings(ALPHAPULSE_ENCRYPTION={"MASTER_KEYS": {1: TEST_KEY_V1}}):
        assert get_cipher() is not cipher
    assert get_cipher() is not cipher


def test_override_settings_switches_keys_immediately_and_old_data_stays_readable():
    old = encrypt_field("written under v1", context="trades.note")
    assert key_version_of(old) == 1
    with override_settings(
        ALPHAPULSE_ENCRYPTION={
            "MASTER_KEYS": {1: TEST_KEY_V1, 2: TEST_KEY_V2},
            "ACTIVE_KEY_VERSION": 2,
        }
    ):
        assert EncryptionKeyManager().active_version == 2
        new = encrypt_field("written under v2", context="trades.note")
        assert key_version_of(new) == 2
        assert decrypt_field(old, context="trades.note") == "written under v1"
        assert decrypt_field(new, context="trades.note") == "written under v2"
    # Back to the test settings, which have no key for version 2.
    assert EncryptionKeyManager().active_version == 1
    with pytest.raises(DecryptionError) as info:
        decrypt_field(new, context="trades.note")
    assert info.value.reason == "unknown_key_version"
    assert info.value.key_version == 2


def test_override_settings_changes_kdf_iterations_without_stranding_data():
    old = encrypt_field("kept", context="c")
    config = {"MASTER_KEYS": {1: TEST_KEY_V1}, "KDF_ITERATIONS": 120_000}
    with override_settings(ALPHAPULSE_ENCRYPTION=config):
        assert get_cipher().keyring.kdf_iterations == 120_000
        assert decrypt_field(old, context="c") == "kept"


def test_invalid_settings_are_reported_on_use_not_when_they_are_set():
    with override_settings(ALPHAPULSE_ENCRYPTION={"MASTER_KEYS": {1: "not a key"}}):
        manager = EncryptionKeyManager()
        with pytest.raises(ConfigurationError, match="version 1"):
            manager.active_version  # noqa: B018
        with pytest.raises(ConfigurationError):
            encrypt_field("x")
    assert decrypt_field(encrypt_field("x")) == "x"


def test_environment_is_read_once_until_reset(env_keys_only, monkeypatch):
    env_keys_only.set(**{MASTER: TEST_KEY_V1})
    assert EncryptionKeyManager().fingerprints() == {1: fingerprint(RAW_V1)}
    monkeypatch.setenv(MASTER, TEST_KEY_V2)
    assert EncryptionKeyManager().fingerprints() == {1: fingerprint(RAW_V1)}
    keys.reset()
    assert EncryptionKeyManager().fingerprints() == {1: fingerprint(RAW_V2)}


_IMPORT_WITHOUT_KEYS = textwrap.dedent(
    """
    import importlib, importlib.util, sys

    # Before Django is configured: touching settings here would raise ImproperlyConfigured.
    import alphapulse_encryption
    import alphapulse_encryption.conf
    import alphapulse_encryption.keys
    alphapulse_encryption.EncryptionKeyManager

    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "alphapulse_encryption",
        ],
        **({"ALPHAPULSE_ENCRYPTION": CONFIG} if CONFIG is not None else {}),
    )
    django.setup()
    for name in (
        "alphapulse_encryption.api",
        "alphapulse_encryption.checks",
        "alphapulse_encryption.fields",
        "alphapulse_encryption.management.commands.encryption_keys",
    ):
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    from alphapulse_encryption import EncryptionKeyManager, get_cipher
    from alphapulse_encryption.keys import manager

    EncryptionKeyManager()
    assert not manager._state, "keys were loaded before first use"
    try:
        get_cipher()
    except EXPECTED as exc:
        print("deferred:", type(exc).__name__)
    else:
        raise AssertionError("a cipher was built without a key")
    """
)


@pytest.mark.parametrize(
    ("config", "env_key", "expected"),
    [
        (None, None, "ConfigurationError"),
        (None, "garbage", "ConfigurationError"),
        ({"MASTER_KEYS": {1: "garbage"}}, None, "ConfigurationError"),
        ("not a dict, so reading it raises", None, "TypeError"),
    ],
    ids=["no key", "bad environment key", "bad settings key", "invalid setting"],
)
def test_importing_and_setting_up_the_app_reads_no_settings_or_keys(config, env_key, expected):
    code = f"CONFIG = {config!r}\nfrom alphapulse_encryption import ConfigurationError\n"
    code += f"EXPECTED = {expected}\n" + _IMPORT_WITHOUT_KEYS
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("ALPHAPULSE_ENCRYPTION") and name != "DJANGO_SETTINGS_MODULE"
    }
    if env_key is not None:
        env[MASTER] = env_key
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"deferred: {expected}" in result.stdout
