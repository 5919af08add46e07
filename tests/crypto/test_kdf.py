"""PBKDF2 runs once per key version per process; HKDF per context is cheap and cached."""

import subprocess
import sys
from unittest import mock

from alphapulse_encryption.crypto import Cipher, Keyring, kdf

from .conftest import KEY_1, KEY_2


def test_pbkdf2_runs_once_per_version_not_per_context_or_value():
    kdf.clear_cache()
    with mock.patch.object(kdf, "_pbkdf2", wraps=kdf._pbkdf2) as counted:
        cipher = Cipher(Keyring({1: KEY_1, 2: KEY_2}, 2))
        for context in ("a", "b", "c"):
            for value in range(20):
                cipher.decrypt(cipher.encrypt(value, context), context)
        assert counted.call_count == 1
        cipher.search_token("x", "a", version=1)
        assert counted.call_count == 2
        # A new keyring object with the same keys (e.g. after a settings reload) reuses roots.
        Cipher(Keyring({1: KEY_1, 2: KEY_2}, 2)).encrypt("x", "zzz")
        assert counted.call_count == 2


def test_pbkdf2_uses_the_configured_iteration_count():
    kdf.clear_cache()
    with mock.patch.object(kdf, "_pbkdf2", wraps=kdf._pbkdf2) as counted:
        Cipher(Keyring({1: KEY_1}, 1, kdf_iterations=120_000)).encrypt("x", "c")
    counted.assert_called_once_with(KEY_1, 1, 120_000)


def test_iterations_are_recorded_so_changing_them_does_not_strand_data():
    old = Cipher(Keyring({1: KEY_1}, 1, kdf_iterations=100_000)).encrypt("kept", "c")
    new = Cipher(Keyring({1: KEY_1}, 1, kdf_iterations=150_000))
    assert new.decrypt(old, "c") == "kept"


def test_crypto_core_imports_without_django():
    code = (
        "import sys; import alphapulse_encryption.crypto as c; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith('django')); "
        "k = c.Keyring({1: bytes(32)}, 1); x = c.Cipher(k); "
        "assert x.decrypt(x.encrypt('ok', 'c'), 'c') == 'ok'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
