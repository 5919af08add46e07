"""AWS KMS as the key-encryption key of the database keyring (boto3, imported lazily)."""

from __future__ import annotations

import base64
import binascii
import threading
import time
from typing import TypedDict

from ..conf import encryption_settings
from ..crypto import ConfigurationError, KeyProviderError
from .database import DatabaseKeyProvider
from .wrapping import WRAP_PURPOSE, KeyWrapper, NewKey

_PREFIX = "apk1:"
# Unwrapped keys by (KMS key, version, wrapped key): a KMS outage or throttling does not
# stop a process that reloads its keyring within the cache time.
_cache: dict[tuple[str, int, str], tuple[bytes, float]] = {}
_cache_lock = threading.Lock()


class _KMSResponse(TypedDict, total=False):
    """The fields of an AWS KMS answer read here (boto3 answers with plain dicts)."""

    CiphertextBlob: bytes
    Plaintext: bytes


def _now() -> float:
    return time.monotonic()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def encryption_context(version: int) -> dict[str, str]:
    return {"purpose": WRAP_PURPOSE, "key_version": str(version)}


class KMSKeyWrapper(KeyWrapper):
    """GenerateDataKey creates each version key; Decrypt unwraps it. Both bind the key
    version and purpose as the KMS encryption context."""

    def __init__(
        self,
        key_id: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        cache_seconds: float = 300,
    ) -> None:
        self.key_id = key_id
        self.region = region
        self.endpoint_url = endpoint_url
        self.cache_seconds = cache_seconds

    def __repr__(self) -> str:
        return f"<KMSKeyWrapper key_id={self.key_id!r}>"

    def _client(self) -> object:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ConfigurationError(
                "KMSKeyProvider needs boto3: pip install 'alphapulse-encryption[aws]'"
            ) from None
        return boto3.client(
            "kms",
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2}),
        )

    def _call(self, operation: str, **kwargs: object) -> _KMSResponse:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response: _KMSResponse = getattr(self._client(), operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            raise KeyProviderError(
                f"AWS KMS refused {operation} with key {self.key_id!r}: {code}"
            ) from None
        except BotoCoreError as exc:
            raise KeyProviderError(
                f"AWS KMS is unreachable ({type(exc).__name__}) for {operation} with key "
                f"{self.key_id!r}; keys unwrapped in the last {self.cache_seconds:g} s stay usable"
            ) from None
        return response

    def new_key(self, version: int) -> NewKey:
        response = self._call(
            "generate_data_key",
            KeyId=self.key_id,
            KeySpec="AES_256",
            EncryptionContext=encryption_context(version),
        )
        wrapped = _PREFIX + base64.b64encode(response["CiphertextBlob"]).decode("ascii")
        key: bytes = response["Plaintext"]
        self._remember(f"kms:{self.key_id}", version, wrapped, key)
        return NewKey(key, wrapped, f"kms:{self.key_id}")

    def unwrap(self, version: int, wrapped: str, wrapped_by: str) -> bytes:
        kind, _, key_id = wrapped_by.partition(":")
        if kind != "kms" or not wrapped.startswith(_PREFIX):
            raise ConfigurationError(
                f"key version {version} of the database keyring was not wrapped by AWS KMS "
                f"({wrapped_by!r}); configure the key provider that wrapped it"
            )
        with _cache_lock:
            cached = _cache.get((wrapped_by, version, wrapped))
        if cached is not None and _now() < cached[1]:
            return cached[0]
        try:
            blob = base64.b64decode(wrapped[len(_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(
                f"key version {version} of the database keyring is not a KMS ciphertext"
            ) from None
        response = self._call(
            "decrypt",
            KeyId=key_id,
            CiphertextBlob=blob,
            EncryptionContext=encryption_context(version),
        )
        key: bytes = response["Plaintext"]
        self._remember(wrapped_by, version, wrapped, key)
        return key

    def _remember(self, wrapped_by: str, version: int, wrapped: str, key: bytes) -> None:
        with _cache_lock:
            _cache[(wrapped_by, version, wrapped)] = (key, _now() + self.cache_seconds)


class KMSKeyProvider(DatabaseKeyProvider):
    """The database keyring with its version keys wrapped by an AWS KMS key
    (``KMS_KEY_ID``) instead of the master key; no master key is configured at all."""

    uses_master_key = False

    def wrapper(self) -> KeyWrapper:
        key_id = encryption_settings.KMS_KEY_ID
        if not key_id:
            raise ConfigurationError(
                "KMSKeyProvider needs ALPHAPULSE_ENCRYPTION['KMS_KEY_ID'] (a key id, ARN or alias)"
            )
        return KMSKeyWrapper(
            key_id,
            region=encryption_settings.KMS_REGION,
            endpoint_url=encryption_settings.KMS_ENDPOINT_URL,
            cache_seconds=encryption_settings.KMS_CACHE_SECONDS,
        )
