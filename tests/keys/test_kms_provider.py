"""The KMS-wrapped database keyring against a real KMS API server (moto) on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alphapulse_encryption import KeyProviderError, decrypt_field, encrypt_field
from alphapulse_encryption.crypto import key_version_of
from alphapulse_encryption.keys import EncryptionKeyManager, KMSKeyProvider, kms, reset
from alphapulse_encryption.models import KeyVersion

KMS_PROVIDER = "alphapulse_encryption.keys.KMSKeyProvider"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def kms_endpoint():
    executable = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    port = _free_port()
    server = subprocess.Popen(
        [executable, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def aws_env(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def kms_keyring(kms_endpoint, aws_env, settings, db, monkeypatch):
    import boto3

    client = boto3.client("kms", region_name="us-east-1", endpoint_url=kms_endpoint)
    key_id = client.create_key(Description="alphapulse tests")["KeyMetadata"]["KeyId"]
    kms.clear_cache()
    settings.ALPHAPULSE_ENCRYPTION = {
        "KEY_PROVIDER": KMS_PROVIDER,
        "KMS_KEY_ID": key_id,
        "KMS_REGION": "us-east-1",
        "KMS_ENDPOINT_URL": kms_endpoint,
    }
    yield key_id
    kms.clear_cache()


def test_keys_are_generated_and_unwrapped_through_kms(kms_keyring):
    manager = EncryptionKeyManager()
    old = encrypt_field("under v1", context="c")
    assert manager.rotate_keys() == 2
    new = encrypt_field("under v2", context="c")
    assert (key_version_of(old), key_version_of(new)) == (1, 2)
    kms.clear_cache()  # unwrap through KMS Decrypt, not from memory
    reset()
    assert decrypt_field(old, context="c") == "under v1"
    assert decrypt_field(new, context="c") == "under v2"
    rows = list(KeyVersion.objects.values_list("wrapped_by", "wrapped_key"))
    assert all(by == f"kms:{kms_keyring}" and key.startswith("apk1:") for by, key in rows)


def test_the_kms_encryption_context_binds_the_version(kms_keyring):
    EncryptionKeyManager().rotate_keys()
    EncryptionKeyManager().rotate_keys()
    first = KeyVersion.objects.get(version=1)
    KeyVersion.objects.filter(version=2).update(
        wrapped_key=first.wrapped_key, fingerprint=first.fingerprint
    )
    kms.clear_cache()
    with pytest.raises(KeyProviderError, match="refused decrypt"):
        KMSKeyProvider().load()


def test_a_down_kms_is_a_clear_error_after_the_cache_time(kms_keyring, settings, monkeypatch):
    value = encrypt_field("cached", context="c")
    now = [1000.0]
    monkeypatch.setattr(kms, "_now", lambda: now[0])
    kms.clear_cache()
    reset()
    assert decrypt_field(value, context="c") == "cached"  # unwrapped at t=1000, cached
    settings.ALPHAPULSE_ENCRYPTION = {
        **settings.ALPHAPULSE_ENCRYPTION,
        "KMS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}",  # nothing listens: KMS down
    }
    now[0] += 299
    assert decrypt_field(value, context="c") == "cached"  # keyring reloaded, key from cache
    now[0] += 2
    reset()
    with pytest.raises(KeyProviderError, match="unreachable") as info:
        decrypt_field(value, context="c")
    assert kms_keyring in str(info.value)
